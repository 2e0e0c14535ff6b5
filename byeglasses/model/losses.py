"""The paper's losses (eq. 3-8), and two terms on real photos that are not in the paper (frame lines,
and keeping what the lens blend keeps), each a small pure function."""

from __future__ import annotations

import math
from typing import Optional, Tuple

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


def l1_global_loss(y_hat: torch.Tensor, y: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 5: E|y - ŷ|; with `weight` (B,1,H,W), each pixel's term times its weight (still divided by
    the number of pixels)."""
    diff = (y - y_hat).abs()
    return diff.mean() if weight is None else (diff * weight).mean()


def l1_local_loss(y_hat: torch.Tensor, y: torch.Tensor, glasses_mask: torch.Tensor,
                  weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 5 on y_Local, ŷ_Local, averaged over the masked pixels only (not the whole image),
    so that small glasses weigh as much as large ones. (B,3,H,W), (B,1,H,W); `weight` as in
    l1_global_loss (the area it is averaged over stays the mask's)."""
    diff = (local(y, glasses_mask) - local(y_hat, glasses_mask)).abs()
    if weight is not None:
        diff = diff * weight
    area = glasses_mask.sum() * y.shape[1]
    return diff.sum() / area.clamp_min(1.0)


HIDDEN_LEVEL = 32 / 127.5  # a change of 32 levels, in [-1, 1] units
HIDDEN_WIDTH = 15 / 256  # the window, as a share of the side: wider than a thick frame, narrower than a lens


def hidden_weight(x: torch.Tensor, y: torch.Tensor, glasses_mask: torch.Tensor, floor: float) -> torch.Tensor:
    """Per-pixel weight (B,1,H,W) for the L1 terms: `floor` where the synthesized glasses hide the face,
    1 elsewhere (loss.l1_hidden). Hidden: inside the glasses mask, where the glasses change the face
    (x against y, mean over channels) by more than HIDDEN_LEVEL over most of a window HIDDEN_WIDTH
    across: the share of changed pixels in the window, 0.4 → 0 and 0.8 → 1, linear between. A frame's
    bar fills a small part of such a window and keeps its L1; the middle of a dark lens fills all of
    it. No gradient."""
    with torch.no_grad():
        changed = ((x.float() - y.float()).abs().mean(dim=1, keepdim=True) > HIDDEN_LEVEL).float()
        k = max(3, int(round(HIDDEN_WIDTH * x.shape[-2])) | 1)
        share = F.avg_pool2d(changed, k, stride=1, padding=k // 2, count_include_pad=False)
        hidden = ((share - 0.4) / 0.4).clamp(0, 1) * changed * glasses_mask.float()
        return 1 - (1 - float(floor)) * hidden


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


def pasted_region(glasses_mask: torch.Tensor, dilate: Optional[float] = None,
                  feather: Optional[float] = None) -> torch.Tensor:
    """(B,1,H,W) weight in [0, 1] of what the photo pipeline pastes for a glasses mask (B,1,H,W):
    the mask at or above 0.5, grown by `dilate`·H (a disk) and
    feathered by a Gaussian of sigma `feather`·H, as `geometry.blend_weight` does, with the same
    defaults (`geometry.BLEND_DILATE`, `BLEND_FEATHER`). No gradient."""
    from ..pipeline.geometry import BLEND_DILATE, BLEND_FEATHER

    dilate = BLEND_DILATE if dilate is None else dilate
    feather = BLEND_FEATHER if feather is None else feather
    with torch.no_grad():
        r = glasses_mask.shape[-2]
        region = (glasses_mask.float() >= 0.5).float()
        k = max(1, int(round(dilate * r)))
        t = torch.arange(-k, k + 1, dtype=region.dtype, device=region.device)
        disk = ((t.view(-1, 1) / (k + 0.5)) ** 2 + (t.view(1, -1) / (k + 0.5)) ** 2 <= 1).to(region.dtype)
        region = (F.conv2d(region, disk.view(1, 1, 2 * k + 1, 2 * k + 1), padding=k) > 0.5).to(region.dtype)
        sigma = max(feather * r, 0.5)
        half = int(math.ceil(3 * sigma))
        t = torch.arange(-half, half + 1, dtype=region.dtype, device=region.device)
        g = torch.exp(-0.5 * (t / sigma) ** 2)
        g = g / g.sum()
        pad = F.pad(region, (half, half, half, half), mode="replicate")
        out = F.conv2d(F.conv2d(pad, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))
        return out.clamp(0, 1)


def identity_feature_losses(identity_extractor: torch.nn.Module, y_hat: torch.Tensor,
                            y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(eq. 7, the identity network's feature distance) from one pass of ŷ through a frozen
    extractor with a `features` method (`identity.DlibIdentity`). The feature distance is the mean
    over the network's resolutions of mean|f(ŷ) − f(y)| / mean|f(y)|: where eq. 7 compares only the
    pooled 128-d embedding, this compares the activations before pooling, so a wrong brow, lid or
    eye is seen where it is. Not in the paper (loss.lambda_id_feat)."""
    with torch.no_grad():
        target, target_feats = identity_extractor.features(y)
    embedding, feats = identity_extractor.features(y_hat)
    l_id = (embedding - target).norm(dim=1).mean()
    l_feat = torch.stack([(f - t).abs().mean() / (t.abs().mean() + 1e-6)
                          for f, t in zip(feats, target_feats)]).mean()
    return l_id, l_feat


def pasted_composite(y_hat: torch.Tensor, y: torch.Tensor, glasses_mask: torch.Tensor) -> torch.Tensor:
    """w·ŷ + (1 − w)·y, w = pasted_region(glasses_mask): what the photo pipeline keeps of ŷ."""
    w = pasted_region(glasses_mask).to(y_hat.dtype)
    return w * y_hat + (1 - w) * y.to(y_hat.dtype)


def region_identity_loss(identity_extractor: Optional[torch.nn.Module], y_hat: torch.Tensor, y: torch.Tensor,
                         glasses_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 7 on what the photo pipeline keeps of ŷ (loss.id_region="glasses"): the identity of
    w·ŷ + (1 − w)·y, w = pasted_region(glasses_mask), against y's. Pixels outside the pasted region
    get no identity gradient (the pipeline puts the photo's own pixels there), and a pair without
    glasses (an empty mask) adds nothing."""
    return identity_loss(identity_extractor, pasted_composite(y_hat, y, glasses_mask), y)


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


def _levels(images: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) images in [-1, 1] as (B,H,W,3) float32 levels 0..255 on the CPU, no gradient: what
    the pipeline's numpy functions take."""
    return ((images.detach().float().permute(0, 2, 3, 1).cpu().numpy() + 1.0) * 127.5).clip(0, 255)


def frame_line_targets(x: torch.Tensor, glasses: torch.Tensor, eyes: torch.Tensor) -> torch.Tensor:
    """Where the photos `x` (B,3,R,R) in [-1, 1] hold thin frame lines: the strokes the lens blend
    takes from the generator (`geometry.frame_strokes`) near the predicted `glasses` (B,R,R) and
    away from the `eyes` (B,12,2: each eye's six landmarks, pixels; NaN where none were found, and
    then nothing is a frame line). (B,1,R,R) float32 {0, 1} on x's device, no gradient."""
    from ..pipeline.geometry import frame_strokes

    photos = _levels(x).round().astype("uint8")
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
    the pixels around it. Two versions that did worse (docs/verification.md, "Frame lines on real photos"): a
    penalty on ŷ's own stroke strength there, met by blurring the whole neighbourhood, brows
    included; and L1 to the *photo* with its lines filled, which ties the output to the photo's
    lenses and tints beside the lines."""
    clean = without_lines(y_hat, width)
    return ((y_hat.float() - clean).abs() * targets).sum() / (3 * targets.sum()).clamp_min(1.0)


def keep_targets(x: torch.Tensor, y_hat: torch.Tensor, glasses: torch.Tensor, eyes: torch.Tensor,
                 lines: torch.Tensor):
    """What the photos `x` (B,3,R,R) in [-1, 1] should come back as where the face is seen, for the
    outputs `y_hat` (same) with their predicted `glasses` (B,R,R) and eye landmarks `eyes` (B,12,2,
    NaN where none were found: then nothing is asked). Returns (target (B,3,R,R) in [-1, 1],
    weight (B,1,R,R) in [0, 1]), no gradient:

    - inside the glasses, what the lens blend keeps of the photo (`geometry.lens_keep`: the face
      seen through the lens, its tint taken off, and the eyes), as the blend would paste it;
    - around them, where the blend still pastes the output (`geometry.blend_weight`) but the
      predicted glasses are not, the photo itself wherever the output already stays within the
      blend's limits of it (a frame the generator takes off differs more, and is left alone);
    - nowhere on or next to the frame lines `lines` (B,1,R,R) {0, 1}, which must go."""
    from ..pipeline.geometry import (CHANGE_HIGH_LENS, CHANGE_LOW_LENS, blend_weight, change_weight, correct_lens,
                                     lens_keep, local_mean)

    photos, outputs = _levels(x).round().astype("uint8"), _levels(y_hat)
    masks = glasses.detach().float().cpu().numpy()
    points = eyes.detach().float().cpu().numpy()
    near_lines = F.max_pool2d(lines.detach().float().cpu(), 5, stride=1, padding=2)[:, 0].numpy()
    target = np.zeros(photos.shape, np.float32)
    weight = np.zeros(masks.shape, np.float32)
    for i, (photo, g, mask, pts) in enumerate(zip(photos, outputs, masks, points)):
        if not np.isfinite(pts).all():
            continue
        keep, gain = lens_keep(photo, g, mask, [pts[:6], pts[6:]])
        ring = (blend_weight(mask) > 0.01) & (mask < 0.3)
        ring = ring * (1.0 - change_weight(photo.astype(np.float32), g, CHANGE_LOW_LENS, CHANGE_HIGH_LENS))
        inside = mask >= 0.3
        target[i] = np.where(inside[..., None], correct_lens(photo, gain, local_mean(photo)), photo)
        weight[i] = np.where(inside, keep, ring) * (1.0 - near_lines[i])
    to = lambda a: torch.from_numpy(a).to(x.device)  # noqa: E731
    return to(target).permute(0, 3, 1, 2) / 127.5 - 1.0, to(weight)[:, None]


def keep_loss(y_hat: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 between the outputs and `keep_targets`' targets, weighted and averaged over the weight
    (0 where it is all 0), in [-1, 1] units: where the lens blend would keep the photo, the
    generator should draw the photo, the eyes' and skin's fine texture included."""
    return ((y_hat.float() - target).abs() * weight).sum() / (3 * weight.sum()).clamp_min(1.0)
