"""Identity extractors for the ID loss (eq. 7): frozen networks taking (B, 3, R, R) canonical crops
in [-1, 1] to (B, D) L2-normalised embeddings. `load_identity_extractor` picks one by name or file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from ..pipeline.geometry import similarity_transform
from .chip import FaceChipWarp, chip_theta, warp_chip
from .dlib_resnet import DlibFaceNet, load_dlib_facenet
from .resnet import ArcFace, IdentityConfig, IdentityExtractor

FORMAT = "byeglasses-identity-1"


class DlibIdentity(nn.Module):
    """dlib's face-recognition ResNet behind the warp from our crop to dlib's 150 px face chip."""

    def __init__(self, resolution: int, net: Optional[DlibFaceNet] = None):
        super().__init__()
        self.warp = FaceChipWarp(resolution)
        self.net = net if net is not None else load_dlib_facenet()

    def forward(self, crops: torch.Tensor, landmarks: Optional[torch.Tensor] = None) -> torch.Tensor:
        return F.normalize(self.net(self.warp(crops, landmarks)), dim=1)

    def features(self, crops: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """(unit embeddings (B, 128), the network's activations at each resolution; see
        `DlibFaceNet.forward_features`), from one pass."""
        descriptors, feats = self.net.forward_features(self.warp(crops))
        return F.normalize(descriptors, dim=1), feats


class ArcFaceAligned(nn.Module):
    """An insightface network behind a fixed warp from our template to ArcFace's 112 px framing."""

    def __init__(self, resolution: int, net: nn.Module):
        super().__init__()
        from ..pipeline.template import template
        from .iresnet import ARCFACE_5

        self.net = net
        m = similarity_transform(ARCFACE_5, template(resolution, 5))  # (2, 3) ArcFace crop pixel -> our crop pixel
        self.register_buffer("theta", chip_theta(torch.tensor(m[None], dtype=torch.float32), resolution, 112))
        self.scale = float(np.hypot(m[0, 0], m[1, 0]))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(warp_chip(crops, self.theta, 112, self.scale)), dim=1)


class Normalized(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(crops), dim=1)


def save_identity_checkpoint(path, extractor: IdentityExtractor, meta: Optional[dict] = None) -> None:
    """safetensors weights + `<path>.json` with the architecture, written atomically."""
    from safetensors.torch import save_file

    from .. import __version__
    from ..files import atomic_write

    info = {"format": FORMAT, "byeglasses_version": __version__, "kind": "resnet-arcface",
            "identity_config": extractor.config.to_dict(), **(meta or {})}
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in extractor.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT, "meta": json.dumps(info)}))
    atomic_write(f"{path}.json", lambda tmp: Path(tmp).write_text(json.dumps(info, indent=2, sort_keys=True)))


def load_identity_checkpoint(path) -> IdentityExtractor:
    """The IdentityExtractor saved by `byeglasses train-identity`, in eval mode."""
    from ..errors import ByeGlassesError
    from ..model.weights import check_module_shapes, load_module, read_safetensors

    tensors, header = read_safetensors(path)
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an identity checkpoint written by byeglasses train-identity "
                              f"(no '{FORMAT}' metadata)")
    try:
        config = IdentityConfig.from_dict(json.loads(header["meta"])["identity_config"])
    except (KeyError, TypeError, ValueError, ByeGlassesError) as e:
        raise CheckpointError(f"{path}: its stored identity config is invalid ({e})") from None
    tensors = {f"extractor.{k}": v for k, v in tensors.items()}
    with torch.device("meta"):  # shapes first: a config that lies allocates nothing
        check_module_shapes(IdentityExtractor(config), tensors, "extractor", path)
    model = IdentityExtractor(config)
    load_module(model, tensors, "extractor", path)
    return model.eval()


def load_identity_extractor(spec: str, resolution: int, device=None) -> Optional[nn.Module]:
    """"dlib": dlib's ResNet behind the template warp; "none": None; a path: a train-identity
    checkpoint (.safetensors) or an insightface iresnet state dict (.pth/.pt). Frozen, in eval
    mode, on `device`; maps (B, 3, R, R) crops in [-1, 1] to (B, D) unit vectors."""
    from ..device import pick_device

    if spec is None or spec.lower() == "none":
        return None
    if spec.lower() == "dlib":
        model = DlibIdentity(resolution)
    else:
        if not os.path.isfile(spec):
            raise CheckpointError(f"identity extractor {spec!r}: no such file (use dlib, none, or a checkpoint path)")
        with open(spec, "rb") as f:
            head = f.read(8)
        if spec.endswith(".dat"):
            model = DlibIdentity(resolution, load_dlib_facenet(spec))
        elif head[:2] == b"PK" or spec.endswith((".pth", ".pt")):  # torch zip archive
            from .iresnet import load_iresnet

            model = ArcFaceAligned(resolution, load_iresnet(spec))
        else:
            model = Normalized(load_identity_checkpoint(spec))
    return model.to(pick_device(device)).eval().requires_grad_(False)


__all__ = ["ArcFace", "DlibFaceNet", "DlibIdentity", "IdentityConfig", "IdentityExtractor", "FaceChipWarp",
           "load_identity_extractor", "load_identity_checkpoint", "save_identity_checkpoint", "load_dlib_facenet"]
