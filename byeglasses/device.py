"""Device choice: CUDA, else MPS, else CPU; an explicit name overrides."""

from __future__ import annotations

from typing import Optional, Union

import torch

from .errors import ByeGlassesError


def pick_device(name: Optional[Union[str, torch.device]] = None) -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ByeGlassesError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ByeGlassesError(f"device {name!r} asked for, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ByeGlassesError(f"device {name!r} asked for, but MPS is not available here")
    return device
