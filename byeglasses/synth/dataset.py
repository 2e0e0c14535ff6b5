"""Training data: pairs synthesized on the fly from a face folder, or read from a folder `byeglasses synth` wrote.

Both return `{"x": (3, R, R) float32 in [-1, 1], "y": same, "mask": (2, R, R) float32 {0, 1}
(glasses, face shape), "index": int}`; with `uint8=True` the same pixels as uint8 (0..255 and {0, 1}),
a quarter of the bytes to collate, pin and copy, turned into the float values on the device by
`batch_to_device`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ..files import list_images
from .cache import landmark_cache, read_rgb, skipped_summary
from .facecache import FaceCache, build_face_cache, face_cache_path
from .facemask import face_shape_mask
from .glasses import GlassesDistribution
from .render import SynthSample, synthesize


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def masks_tensor(glasses: np.ndarray, face: np.ndarray) -> torch.Tensor:
    """(2, H, W) float32 {0, 1}: glasses, face shape."""
    return torch.from_numpy(np.stack([glasses, face]).astype(np.float32))


def batch_to_device(batch: dict, device) -> dict:
    """x, y, mask (and x_real, eyes_real) of a batch on `device` as float32 ([-1, 1] and {0, 1}), from float or uint8 items;
    the uint8 ones give exactly the values `to_tensor` and `masks_tensor` give."""
    out = {}
    for key in ("x", "y", "mask", "x_real", "eyes_real"):
        if key not in batch:  # x_real (eyes_real): only with real glasses photos (train.real_glasses)
            continue
        t = batch[key].to(device, non_blocking=True)
        if t.dtype == torch.uint8:
            t = t.float() if key == "mask" else t.float().div_(127.5).sub_(1.0)
        out[key] = t
    return out


def square_resize(image: np.ndarray, landmarks: Optional[np.ndarray], resolution: int):
    """Centre-crop to a square and resize to `resolution` (area when shrinking); landmarks follow."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top:top + side, left:left + side]
    if side != resolution:
        interp = cv2.INTER_AREA if resolution < side else cv2.INTER_CUBIC
        image = cv2.resize(image, (resolution, resolution), interpolation=interp)
    if landmarks is not None:
        k = resolution / side  # pixel centres: (p + 0.5) * k - 0.5
        landmarks = ((landmarks - [left, top] + 0.5) * k - 0.5).astype(np.float32)
    return image, landmarks


class SynthFaceDataset(Dataset):
    """Glasses drawn onto the faces of `faces_dir` at `resolution`; new glasses every epoch.

    Sample `index` of epoch `e` is a deterministic function of (seed, e, index). Glasses are drawn
    at the training resolution (after the face is resized), so the masks are exact there.
    `decoded_cache=True` decodes and resizes every face once, with its face-shape mask, into a file
    beside the landmark cache (`facecache.py`) and reads faces from there: the same pairs, faster.
    `uint8=True`: items hold uint8 pixels (see the module docstring).
    """

    def __init__(self, faces_dir, resolution: int, seed: int = 0, cache_path=None,
                 dist: Optional[GlassesDistribution] = None, files: Optional[Sequence[str]] = None,
                 progress: bool = True, no_glasses: float = 0.0, decoded_cache: bool = False,
                 uint8: bool = False):
        self.faces_dir = str(Path(faces_dir).resolve())
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.dist = dist or GlassesDistribution()
        self.epoch = 0
        self.no_glasses = float(no_glasses)  # share of samples left without glasses (x == y, empty glasses mask)
        names = list_images(self.faces_dir) if files is None else [Path(f).name for f in files]
        cache = landmark_cache(self.faces_dir, cache_path, names=names, progress=progress)
        self.names = [n for n in names if n in cache.landmarks]
        self.skipped = {n: cache.skipped[n] for n in names if n in cache.skipped}
        if self.skipped:
            print(f"{self.faces_dir}: {skipped_summary(self.skipped, names)}", file=sys.stderr)
        if not self.names:
            raise InputError(f"{self.faces_dir}: no usable face image ({skipped_summary(self.skipped, names)})")
        self.landmarks = np.stack([cache.landmarks[n] for n in self.names])  # (N, 68, 2)
        self.uint8 = bool(uint8)
        self.faces = None
        if decoded_cache:
            path = face_cache_path(cache.path, self.resolution, self.names,
                                   [cache.content_key(n) for n in self.names], self.landmarks)
            if not path.is_file():
                build_face_cache(path, len(self.names), self.resolution, self._decode, progress=progress)
            self.faces = FaceCache(path, self.resolution)

    def __len__(self) -> int:
        return len(self.names)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _decode(self, index: int):
        """(face (R, R, 3) uint8, face-shape mask (R, R) uint8 0/1, landmarks (68, 2) at R) from the image."""
        face = read_rgb(Path(self.faces_dir) / self.names[index])
        face, lm = square_resize(face, self.landmarks[index], self.resolution)
        return face, (face_shape_mask(lm, *face.shape[:2]) >= 0.5).astype(np.uint8), lm

    def sample(self, index: int, epoch: Optional[int] = None) -> SynthSample:
        """The uint8 sample (x, y, masks, glasses parameters) at the training resolution."""
        epoch = self.epoch if epoch is None else int(epoch)
        face, face_mask, lm = self.faces[index] if self.faces is not None else self._decode(index)
        if self.no_glasses and np.random.default_rng([self.seed, epoch, int(index), 1]).random() < self.no_glasses:
            # a negative: teaches the generator to leave glasses-free faces alone and SD to predict no glasses
            return SynthSample(x=face.copy(), y=face, glasses_mask=np.zeros(face.shape[:2], np.uint8),
                               face_mask=face_mask, params=None)
        rng = np.random.default_rng([self.seed, epoch, int(index)])
        return synthesize(face, lm, rng, self.dist, face_mask=face_mask)

    def __getitem__(self, index: int) -> dict:
        s = self.sample(index)
        if self.uint8:  # (3, R, R) views of the (R, R, 3) arrays: collating makes them contiguous
            return {"x": torch.from_numpy(s.x).permute(2, 0, 1), "y": torch.from_numpy(s.y).permute(2, 0, 1),
                    "mask": torch.from_numpy(np.stack([s.glasses_mask, s.face_mask])), "index": int(index)}
        return {"x": to_tensor(s.x), "y": to_tensor(s.y), "mask": masks_tensor(s.glasses_mask, s.face_mask),
                "index": int(index)}


FOLDERS = ("x", "y", "glasses-mask", "face-mask")


class SynthFolderDataset(Dataset):
    """Pairs written by `byeglasses synth`: x/, y/, glasses-mask/, face-mask/ PNGs with the same names."""

    def __init__(self, folder, resolution: int):
        self.folder = Path(folder)
        self.resolution = int(resolution)
        for sub in FOLDERS:
            if not (self.folder / sub).is_dir():
                raise InputError(f"{self.folder}: missing {sub}/ (not a folder written by `byeglasses synth`)")
        self.names = list_images(self.folder / "x")
        if not self.names:
            raise InputError(f"{self.folder}: x/ holds no images")

    def __len__(self) -> int:
        return len(self.names)

    def _read(self, sub: str, index: int, mask: bool) -> np.ndarray:
        path = self.folder / sub / self.names[index]
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if mask else cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{path}: missing or not an image")
        if mask:
            img = (img > 127).astype(np.float32)
            if img.shape[0] != self.resolution or img.shape[1] != self.resolution:
                img = (square_resize(img, None, self.resolution)[0] >= 0.5).astype(np.float32)
            return img
        return square_resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), None, self.resolution)[0]

    def __getitem__(self, index: int) -> dict:
        x, y = self._read("x", index, False), self._read("y", index, False)
        g, f = self._read("glasses-mask", index, True), self._read("face-mask", index, True)
        return {"x": to_tensor(x), "y": to_tensor(y), "mask": masks_tensor(g, f), "index": int(index)}


class RealPhotoDataset(Dataset):
    """Real photos of people wearing glasses (no ground truth), framed like the training faces, at
    `resolution`: items {"x_real": (3, R, R) uint8}, mirrored at random (a deterministic function
    of seed, epoch and index). With `eyes`, also {"eyes_real": (12, 2) float32}: each eye's six
    landmarks in the item's pixels (from the folder's landmark cache; NaN where no face was
    found). Unreadable files are refused up front, by name."""

    def __init__(self, folder, resolution: int, seed: int = 0, eyes: bool = False, cache_path=None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: not a folder (train.real_glasses)")
        self.names = list_images(self.folder)
        if not self.names:
            raise InputError(f"{self.folder}: holds no images (train.real_glasses)")
        self.resolution, self.seed, self.epoch = int(resolution), int(seed), 0
        # read_rgb refuses an unreadable file with an InputError naming it
        photos = [read_rgb(self.folder / name) for name in self.names]
        landmarks = (landmark_cache(self.folder, cache_path, names=self.names).landmarks if eyes else {})
        self.images, self.eyes = [], []
        for name, photo in zip(self.names, photos):
            lm = landmarks.get(name)
            image, lm = square_resize(photo, None if lm is None else lm[36:48], self.resolution)
            self.images.append(image)
            self.eyes.append(np.full((12, 2), np.nan, np.float32) if lm is None else lm)
        self.with_eyes = bool(eyes)

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        image, eyes = self.images[index], self.eyes[index]
        if np.random.default_rng([self.seed, self.epoch, int(index), 2]).random() < 0.5:
            image = image[:, ::-1]
            eyes = np.concatenate([eyes[6:], eyes[:6]]) * [-1.0, 1.0] + [self.resolution - 1.0, 0.0]
        item = {"x_real": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)}
        if self.with_eyes:
            item["eyes_real"] = torch.from_numpy(np.asarray(eyes, np.float32))
        return item
