"""Frames left: how much of the glasses' thin lines (rims, bridges, temples) survives in an output.

The glasses classifier was trained on whole glasses and misses the faded rims and outlines that
removal leaves (docs/verification.md, "Still glasses, by eye"). This measure compares the output with its own
input instead: in the input's aligned crop, the thin dark or bright strokes (a grey black-hat /
top-hat RIDGE_WIDTH of the side across, above RIDGE_LEVEL levels) inside the glasses the shipped
generator predicts on the input (grown by ZONE_GROW of the side), away from the eyes (their
landmarks grown by EYE_PAD of their width); then, pixel by pixel, the same stroke strength in the
output over the input's, capped at 1, averaged. 1: every line is still there (the input itself);
0: none is. A face with fewer than MIN_PIXELS of such lines (per 256² of crop) scores 0: there is
nothing to leave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

RIDGE_WIDTH, RIDGE_LEVEL, ZONE_GROW, EYE_PAD, MIN_PIXELS = 7 / 256, 15.0, 4 / 256, 0.3, 20
# An output counts as "frames left" from this score (chosen against the by-eye ratings of the
# stage-4 outputs of fv-dev, so in-sample there: docs/verification.md, "Frames left").
FRAMES_LEFT = 0.5


def ridges(crop: np.ndarray) -> np.ndarray:
    """(R, R) float32: how much each pixel of an (R, R, 3) RGB crop stands out as a thin dark or
    bright stroke (grey black-hat or top-hat, RIDGE_WIDTH·R across), in levels."""
    from ..pipeline.geometry import thin_strokes

    return thin_strokes(crop, RIDGE_WIDTH)


def frame_line_pixels(crop: np.ndarray, glasses: np.ndarray, eyes) -> np.ndarray:
    """(R, R) bool: the input crop's thin lines inside the predicted `glasses` (probability,
    grown by ZONE_GROW·R), away from the `eyes` (six landmarks each, crop pixels)."""
    from ..pipeline.geometry import eye_regions

    r = crop.shape[0]
    grow = max(3, int(round(2 * ZONE_GROW * r + 1)) | 1)
    zone = cv2.dilate((glasses >= 0.3).astype(np.uint8), np.ones((grow, grow), np.uint8)) > 0
    zone &= eye_regions(eyes, r, pad=EYE_PAD) < 0.5
    return (ridges(crop) > RIDGE_LEVEL) & zone


def persistence(before: np.ndarray, after: np.ndarray, lines: np.ndarray) -> float:
    """Mean over the `lines` pixels of min(1, stroke strength after / before); 0 with too few."""
    r = lines.shape[0]
    if lines.sum() < MIN_PIXELS * (r / 256.0) ** 2:
        return 0.0
    return float(np.minimum(1.0, after[lines] / before[lines]).mean())


@dataclass
class FrameProbe:
    alignment: object  # pipeline.geometry.Alignment of the input face
    before: np.ndarray  # ridges of the input crop
    lines: np.ndarray  # frame_line_pixels of the input crop


class FramesLeft:
    """`prepare(rgb, landmarks)` once per input photo (runs the generator once for its glasses
    mask), then `score(probe, output_rgb)` for each output of it (same size as the input).
    `generator`: a module with the Generator's interface (default: the shipped model), so every
    method scored in a run shares the same glasses region."""

    def __init__(self, generator=None, resolution: Optional[int] = None, device: str = "cpu"):
        import torch

        if generator is None:
            from ..model.weights import load_generator

            generator, config = load_generator(None, device=device)
            resolution = config.model.resolution
        self.generator = generator.eval()
        self.resolution = int(resolution or generator.cfg.resolution)
        self._torch = torch

    def prepare(self, rgb: np.ndarray, landmarks: np.ndarray) -> FrameProbe:
        from ..pipeline.geometry import align, estimate_alignment

        torch = self._torch
        al = estimate_alignment(landmarks, self.resolution)
        crop = align(rgb, al)
        x = torch.from_numpy(crop.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        device = next(self.generator.parameters()).device
        with torch.no_grad():
            _, m = self.generator(x.to(device))
        glasses = m[0, 0].float().cpu().numpy()
        eyes = al.to_crop(landmarks[36:48])
        return FrameProbe(al, ridges(crop), frame_line_pixels(crop, glasses, [eyes[:6], eyes[6:]]))

    def score(self, probe: FrameProbe, rgb: np.ndarray) -> float:
        from ..pipeline.geometry import align

        return persistence(probe.before, ridges(align(rgb, probe.alignment)), probe.lines)
