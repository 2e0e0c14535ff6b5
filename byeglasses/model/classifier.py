"""Does this face wear glasses? A small CNN on the eye band of the aligned face crop.

`remove` asks it before running the generator, and the verification benchmark asks it again after
removal ("still wearing glasses"). It sees the band of the canonical crop (`pipeline` alignment,
the same template the generator uses) that holds brows, eyes, lenses and the nose bridge.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

CROP = 128  # side of the aligned face crop the band is cut from
BAND = (slice(36, 84), slice(16, 112))  # rows, cols of that crop: (48, 96) around eyes, brows, bridge
THRESHOLD = 0.5  # P(glasses) at which a face counts as wearing glasses
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "glasses_classifier.safetensors"


class GlassesClassifier(nn.Module):
    """(B, 3, 48, 96) eye band in [-1, 1] -> (B,) logit of P(glasses)."""

    def __init__(self, width: int = 16):
        super().__init__()
        layers, c_in = [], 3
        for c_out in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)  # (B, 8w, 3, 6)
        self.head = nn.Linear(c_in, 1)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))[:, 0]


def eye_band(crop: np.ndarray) -> np.ndarray:
    """(CROP, CROP, 3) aligned crop -> (48, 96, 3) eye band (a view)."""
    if crop.shape[:2] != (CROP, CROP):
        import cv2

        crop = cv2.resize(crop, (CROP, CROP), interpolation=cv2.INTER_AREA)
    return crop[BAND]


def band_from_photo(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(48, 96, 3) uint8 eye band of the face with these 68 landmarks in an RGB photo."""
    from ..pipeline.geometry import align, estimate_alignment

    return eye_band(align(rgb, estimate_alignment(landmarks, CROP)))


def to_input(bands: np.ndarray) -> torch.Tensor:
    """(N, 48, 96, 3) uint8 -> (N, 3, 48, 96) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(bands.transpose(0, 3, 1, 2))).float().div_(127.5).sub_(1.0)


class GlassesJudge:
    """P(glasses) for faces, from the shipped classifier or `weights=` a trained one."""

    def __init__(self, weights: Optional[Union[str, os.PathLike]] = None, device: str = "cpu"):
        self.model = load_classifier(weights).to(device).eval()
        self.device = torch.device(device)

    @torch.inference_mode()
    def probability_bands(self, bands: np.ndarray) -> np.ndarray:
        """(N, 48, 96, 3) uint8 eye bands -> (N,) float P(glasses)."""
        if len(bands) == 0:
            return np.zeros(0, np.float32)
        return torch.sigmoid(self.model(to_input(np.asarray(bands)).to(self.device))).float().cpu().numpy()

    def probability_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, R, R, 3) uint8 aligned face crops (any R) -> (N,) P(glasses)."""
        return self.probability_bands(np.stack([eye_band(c) for c in crops]) if len(crops) else
                                      np.zeros((0, 48, 96, 3), np.uint8))

    def __call__(self, rgb: np.ndarray, landmarks: np.ndarray) -> float:
        """P(glasses) of the face with these 68 landmarks in an RGB photo."""
        return float(self.probability_bands(band_from_photo(rgb, landmarks)[None])[0])


def save_classifier(model: GlassesClassifier, path, metadata: Optional[dict] = None,
                    dtype: torch.dtype = torch.float32) -> None:
    from safetensors.torch import save_file

    from ..files import atomic_write

    tensors = {k: v.detach().to(dtype).cpu().contiguous() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    meta = {"kind": "glasses-classifier", "width": str(model.width), **(metadata or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_classifier(path: Optional[Union[str, os.PathLike]] = None) -> GlassesClassifier:
    """The classifier at `path` (the shipped one when None); a clear error for a wrong file."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    return _load(str(path.resolve()) if path.exists() else str(path))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> GlassesClassifier:
    from safetensors import safe_open

    from ..errors import CheckpointError

    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such glasses-classifier file")
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise CheckpointError(f"{path}: not a safetensors file ({e})") from None
    if meta.get("kind") != "glasses-classifier":
        raise CheckpointError(f"{path}: not a glasses-classifier checkpoint (kind={meta.get('kind')!r})")
    try:
        width = int(meta.get("width", "16"))
        if not 1 <= width <= 256:
            raise ValueError(width)
    except ValueError:
        raise CheckpointError(f"{path}: bad width {meta.get('width')!r} in its metadata") from None
    model = GlassesClassifier(width)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(f"{path}: does not match the classifier (missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]})")
    return model.eval()
