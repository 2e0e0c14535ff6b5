"""The paper's losses (eq. 3-8), and the frame-lines term on real photos (not in the paper), each a small
pure function."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F


def local(image: torch.Tensor, glasses_mask: torch.Tensor) -> torch.Tensor:
    """y_Local = y ⊙ m_g: (B,3,H,W) * (B,1,H,W)."""
    return image * glasses_mask


def lsgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 3: E[(D(y) - 1)^2] + E[D(ŷ)^2]."""
    return (d_real - 1).pow(2).mean() + d_fake.pow(2).mean()


def lsgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 4: E[(D(ŷ) - 1)^2]."""
    return (d_fake - 1).pow(2).mean()


def l1_global_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 5: E|y - ŷ|."""
    return (y - y_hat).abs().mean()


def l1_local_loss(y_hat: torch.Tensor, y: torch.Tensor, glasses_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 5 on y_Local, ŷ_Local, averaged over the masked pixels only (not the whole image),
    so that small glasses weigh as much as large ones. (B,3,H,W), (B,1,H,W)."""
    diff = (local(y, glasses_mask) - local(y_hat, glasses_mask)).abs().sum()
    area = glasses_mask.sum() * y.shape[1]
    return diff / area.clamp_min(1.0)


def seg_loss(m_hat: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Eq. 6: binary cross-entropy over both mask channels (glasses, face shape)."""
    return F.binary_cross_entropy(m_hat.float().clamp(1e-6, 1 - 1e-6), m.float())


def identity_loss(identity_extractor: Optional[torch.nn.Module], y_hat: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
    """Eq. 7: E||IE(ŷ) - IE(y)||_2 with a frozen IE; zero when there is none."""
    if identity_extractor is None:
        return y_hat.new_zeros(())
    with torch.no_grad():
        target = identity_extractor(y)
    return (identity_extractor(y_hat) - target).norm(dim=1).mean()


def _hats(image: torch.Tensor, width: float):
    """Per channel, (closing, opening) of `image` (B,C,H,W) with square windows `width`·H across."""
    k = max(3, int(round(width * image.shape[-2])) | 1)

    def grow(t):
        return F.max_pool2d(t, k, stride=1, padding=k // 2)

    def shrink(t):
        return -F.max_pool2d(-t, k, stride=1, padding=k // 2)

    return shrink(grow(image)), grow(shrink(image))


def without_lines(image: torch.Tensor, width: float) -> torch.Tensor:
    """(B,3,H,W) `image` with its thin strokes filled from their sides: per channel, the closing
    where the grey stroke is dark (black-hat above top-hat), the opening where it is bright, both
    `width`·H across. Elsewhere close to the image itself; no gradient."""
    image = image.detach().float()
    closing, opening = _hats(image, width)
    rgb = (image + 1.0) * 127.5
    grey = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    grey_closing, grey_opening = _hats(grey, width)
    return torch.where(grey_closing - grey >= grey - grey_opening, closing, opening)


def frame_line_targets(x: torch.Tensor, glasses: torch.Tensor, eyes: torch.Tensor) -> torch.Tensor:
    """Where the photos `x` (B,3,R,R) in [-1, 1] hold thin frame lines: the strokes the lens blend
    takes from the generator (`geometry.frame_strokes`) near the predicted `glasses` (B,R,R) and
    away from the `eyes` (B,12,2: each eye's six landmarks, pixels; NaN where none were found, and
    then nothing is a frame line). (B,1,R,R) float32 {0, 1} on x's device, no gradient."""
    from ..pipeline.geometry import frame_strokes

    photos = ((x.detach().float().permute(0, 2, 3, 1).cpu().numpy() + 1.0) * 127.5).round().clip(0, 255).astype("uint8")
    masks = glasses.detach().float().cpu().numpy()
    points = eyes.detach().float().cpu().numpy()
    out = torch.zeros(x.shape[0], 1, *x.shape[-2:])
    for i, (photo, mask, pts) in enumerate(zip(photos, masks, points)):
        if np.isfinite(pts).all():
            out[i, 0] = torch.from_numpy(frame_strokes(photo, mask, [pts[:6], pts[6:]]).astype("float32"))
    return out.to(x.device)


def frame_lines_loss(y_hat: torch.Tensor, targets: torch.Tensor, width: float) -> torch.Tensor:
    """The photos' frame lines (`targets` (B,1,H,W) {0, 1}) must be gone from the outputs `y_hat`:
    L1 over the target pixels only between ŷ and ŷ with its own thin strokes filled from their
    sides (`without_lines(ŷ)`, no gradient), in [-1, 1] units (0 where there are none). Each step
    pulls a line that ŷ still draws towards what ŷ has on either side of it, and asks nothing of
    the pixels around it. Two versions that did worse (README, "Frame lines on real photos"): a
    penalty on ŷ's own stroke strength there, met by blurring the whole neighbourhood, brows
    included; and L1 to the *photo* with its lines filled, which ties the output to the photo's
    lenses and tints beside the lines."""
    clean = without_lines(y_hat, width)
    return ((y_hat.float() - clean).abs() * targets).sum() / (3 * targets.sum()).clamp_min(1.0)
