"""dlib's 150x150 face chip (`get_face_chip_details(shape, 150, 0.25)` + `extract_image_chip`)
as a differentiable warp of our canonical crop, so an identity loss reaches the generator.

Coordinates are pixels with pixel centres at integers (dlib's and our landmarks' convention).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..pipeline.geometry import similarity_transform

# dlib's mean face shape for 68-point landmarks 17..67, in [0,1] chip units before padding
_MEAN_X = [
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689]
_MEAN_Y = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182]
# dlib uses points 27..54 and 60..64: no jaw, no eyebrows, no lower lip
USED_68 = [i for i in range(17, 68) if not (55 <= i <= 59 or 65 <= i <= 67 or i <= 26)]
MEAN_FACE_68 = np.array([(_MEAN_X[i - 17], _MEAN_Y[i - 17]) for i in USED_68])
# dlib's shape_predictor_5_face_landmarks order: eye corners (image right outer, inner; image
# left outer, inner), base of the nose. Not the same points as byeglasses.pipeline.detect.five_points.
MEAN_FACE_5 = np.array([(0.8595674595992, 0.2134981538014), (0.6460604764104, 0.2289674387677),
                        (0.1205750620789, 0.2137274526848), (0.3340850613712, 0.2290642403242),
                        (0.4901123135679, 0.6277975316475)])


def chip_to_image(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """(2, 3) affine map from chip pixel (col, row) to image pixel (x, y), as dlib extracts
    `get_face_chip_details(shape, size, padding)` (without its pyramid for chips > 2x smaller).

    landmarks: (68, 2) in dlib's 68-point order, or (5, 2) in dlib's 5-point predictor order.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape == (68, 2):
        mean, pts = MEAN_FACE_68, lm[USED_68]
    elif lm.shape == (5, 2):
        mean, pts = MEAN_FACE_5, lm
    else:
        raise InputError(f"face chip needs (68, 2) or (5, 2) landmarks, got shape {lm.shape}")
    t = similarity_transform((padding + mean) / (2 * padding + 1) * size, pts)  # chip points -> image
    scale, angle = math.hypot(t[0, 0], t[1, 0]), math.atan2(t[1, 0], t[0, 0])
    # chip_details: a rect of width size*scale (dlib: right - left + 1) centred on the image of
    # the chip centre; chip corners (0, 0), (size-1, size-1) go onto its corners, rotated by angle
    centre = t[:, :2] @ np.array([size / 2.0, size / 2.0]) + t[:, 2]
    half = (size * scale - 1.0) / 2.0
    step = 2 * half / (size - 1)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    m = rot * step
    return np.concatenate([m, (centre - rot @ np.array([half, half]))[:, None]], 1)


def chip_theta(chip2img: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
    """(B, 2, 3) pixel map (chip -> image) to `affine_grid` theta (align_corners=False), which
    is independent of the input's resolution."""
    # chip normalised u -> chip pixel: (u + 1) * out / 2 - 0.5; image pixel x -> (2x + 1) / in - 1
    a = torch.tensor([[out_size / 2.0, 0, out_size / 2.0 - 0.5], [0, out_size / 2.0, out_size / 2.0 - 0.5],
                      [0, 0, 1]], dtype=chip2img.dtype, device=chip2img.device)
    bottom = torch.tensor([[0, 0, 1]], dtype=chip2img.dtype, device=chip2img.device).expand(len(chip2img), 1, 3)
    m = torch.cat([chip2img, bottom], 1)
    theta = (m @ a)[:, :2] * (2.0 / in_size)
    theta[:, :, 2] += 1.0 / in_size - 1.0
    return theta


def warp_chip(images: torch.Tensor, theta: torch.Tensor, size: int = 150, scale: float = 1.0) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size) bilinear, zeros outside. `scale` is image pixels per
    chip pixel; beyond 2 the image is first shrunk (antialiased), as dlib uses a pyramid there."""
    shrink = int(scale // 2 * 2) if scale >= 2 else 1
    if shrink > 1:
        images = F.interpolate(images, scale_factor=1.0 / shrink, mode="bilinear", antialias=True,
                               align_corners=False)
    grid = F.affine_grid(theta.to(images.dtype).expand(len(images), 2, 3), [len(images), images.shape[1], size, size],
                         align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class FaceChipWarp(nn.Module):
    """Canonical crops (B, 3, R, R) in [-1, 1] -> dlib face chips (B, 3, 150, 150) in [0, 255].

    Without landmarks the warp is fixed: dlib's chip placed as it would be for a face whose
    landmarks sit exactly on the template (our crops are aligned to it). With landmarks
    (B, 68, 2) in crop pixels, each sample gets its own warp."""

    def __init__(self, resolution: int, size: int = 150, padding: float = 0.25):
        super().__init__()
        from ..pipeline.template import template

        self.resolution, self.size, self.padding = resolution, size, padding
        m = chip_to_image(template(resolution, 68), size, padding)
        self.register_buffer("theta", chip_theta(torch.tensor(m[None], dtype=torch.float32), resolution, size))
        self.scale = float(math.hypot(m[0, 0], m[1, 0]))

    def forward(self, crops: torch.Tensor, landmarks: Optional[torch.Tensor] = None) -> torch.Tensor:
        pixels = (crops + 1.0) * 127.5
        if landmarks is None:
            return warp_chip(pixels, self.theta, self.size, self.scale)
        lms = landmarks.detach().cpu().numpy()
        ms = np.stack([chip_to_image(lm, self.size, self.padding) for lm in lms])
        theta = chip_theta(torch.tensor(ms, dtype=torch.float32), crops.shape[-1], self.size).to(crops.device)
        scale = float(np.hypot(ms[:, 0, 0], ms[:, 1, 0]).max())
        return warp_chip(pixels, theta, self.size, scale)
