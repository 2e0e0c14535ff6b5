"""Face geometry: align a face onto the canonical crop, warp results back, and paste them in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from .template import template

Box = Tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in image pixels


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (scale, rotation, translation; no reflection) mapping
    src (N, 2) points onto dst (N, 2) (Umeyama 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ fix @ vt
    scale = np.trace(np.diag(sig) @ fix) / s.var(0).sum()
    a = scale * rot
    return np.hstack([a, (mu_d - a @ mu_s)[:, None]]).astype(np.float64)


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


@dataclass
class Alignment:
    """Where a face's canonical crop lies in the photo."""

    matrix: np.ndarray  # (2, 3) photo pixels -> crop pixels
    resolution: int  # crop side

    @property
    def inverse(self) -> np.ndarray:  # (2, 3) crop pixels -> photo pixels
        return invert(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def bounds(self, image_shape, margin: int = 2) -> Box:
        """The photo region the crop covers, clipped to the photo."""
        r = self.resolution
        corners = np.array([[0, 0], [r, 0], [0, r], [r, r]], np.float64)
        pts = corners @ self.inverse[:, :2].T + self.inverse[:, 2]
        h, w = image_shape[:2]
        x0, y0 = np.floor(pts.min(0)).astype(int) - margin
        x1, y1 = np.ceil(pts.max(0)).astype(int) + margin
        return int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h))


def estimate_alignment(landmarks: np.ndarray, resolution: int) -> Alignment:
    """FFHQ-style alignment: the similarity that best maps the face's 68 (or 5) landmarks onto
    the template's (the mean CelebA-HQ landmark positions)."""
    points = len(landmarks)
    return Alignment(similarity_transform(landmarks, template(resolution, points=points)), resolution)


def _shift(matrix: np.ndarray, x0: float, y0: float, sx: float = 1.0, sy: float = 1.0) -> np.ndarray:
    """The matrix expressed for a sub-image that starts at (x0, y0) and was resized by (sx, sy)."""
    a, t = matrix[:, :2], matrix[:, 2]
    a2 = a @ np.diag([1.0 / sx, 1.0 / sy])
    return np.hstack([a2, (a @ np.array([x0, y0]) + t)[:, None]])


def align(image: np.ndarray, alignment: Alignment) -> np.ndarray:
    """The (R, R, C) canonical crop. Outside the photo the face is mirrored (border reflect); a
    face larger than the crop is first shrunk with area averaging so the warp does not alias."""
    x0, y0, x1, y1 = alignment.bounds(image.shape, margin=4)
    if x1 <= x0 or y1 <= y0:  # the crop lies wholly outside the photo: warp the full image
        x0, y0, x1, y1 = 0, 0, image.shape[1], image.shape[0]
    roi = image[y0:y1, x0:x1]
    sx = sy = 1.0
    if alignment.scale < 1.0:
        w = max(1, round((x1 - x0) * alignment.scale))
        h = max(1, round((y1 - y0) * alignment.scale))
        sx, sy = w / (x1 - x0), h / (y1 - y0)
        roi = cv2.resize(roi, (w, h), interpolation=cv2.INTER_AREA)
    m = _shift(alignment.matrix, x0, y0, sx, sy)
    r = alignment.resolution
    return cv2.warpAffine(roi, m, (r, r), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def unalign(crop: np.ndarray, alignment: Alignment, box: Box, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Warp a crop-space array (R, R) or (R, R, C), float, back into the photo region `box`;
    zero where the crop does not reach."""
    x0, y0, x1, y1 = box
    m = alignment.inverse.copy()
    m[:, 2] -= (x0, y0)
    return cv2.warpAffine(crop, m, (x1 - x0, y1 - y0), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def blend_weight(glasses: np.ndarray, threshold: float = 0.5, dilate: float = 0.03, feather: float = 0.015) -> np.ndarray:
    """(R, R) blend weight in [0, 1] from the predicted glasses probability (R, R): the region
    at or above `threshold`, dilated by `dilate`·R pixels and feathered by a Gaussian of sigma
    `feather`·R, so that the frames' surroundings (shadows, reflections) are replaced too."""
    r = glasses.shape[0]
    region = (glasses >= threshold).astype(np.uint8)
    k = max(1, int(round(dilate * r)))
    region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    sigma = max(feather * r, 0.5)
    weight = cv2.GaussianBlur(region.astype(np.float32), (0, 0), sigma)
    return np.clip(weight, 0.0, 1.0)


def paste_back(image: np.ndarray, patch: np.ndarray, weight: np.ndarray, box: Box) -> Tuple[np.ndarray, np.ndarray]:
    """Blend `patch` (h, w, 3) float 0..255 into `image` (H, W, 3) uint8 over `box` with `weight`
    (h, w) in [0, 1]. Returns (new image, changed (H, W) bool). Where the weight is below what
    could move a pixel by half a level it is exactly 0, and those pixels are copied bit for bit."""
    x0, y0, x1, y1 = box
    out = image.copy()
    changed = np.zeros(image.shape[:2], bool)
    w = np.where(weight < 0.5 / 255.0, 0.0, weight).astype(np.float32)
    inside = w > 0
    if not inside.any():
        return out, changed
    region = out[y0:y1, x0:x1]
    orig = region[inside].astype(np.float32)  # (n, 3): only the pixels that take part
    mixed = orig + w[inside][:, None] * (patch[inside].astype(np.float32) - orig)
    region[inside] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    changed[y0:y1, x0:x1] = inside
    return out, changed


def change_weight(crop: np.ndarray, y_hat: np.ndarray, low: float, high: float, sigma: float = 1.5 / 256,
                  grow: float = 0.01) -> np.ndarray:
    """(R, R) weight in [0, 1] from how much the generator changes each pixel of the crop (R, R, 3):
    0 where the Gaussian-smoothed (sigma·R) change stays below `low` levels of 255 in every channel,
    1 above `high`, linear between; grown by `grow`·R pixels and softened, so that frame edges and
    their halo go with the frame. Smoothing first keeps a generator's blur of fine detail (eyelashes,
    iris) from counting as a change."""
    r = crop.shape[0]
    s = max(sigma * r, 0.3)
    diff = np.abs(cv2.GaussianBlur(crop.astype(np.float32), (0, 0), s)
                  - cv2.GaussianBlur(y_hat.astype(np.float32), (0, 0), s)).max(axis=2)
    weight = np.clip((diff - low) / (high - low), 0.0, 1.0)
    k = max(1, int(round(grow * r)))
    weight = cv2.dilate(weight, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return np.clip(cv2.GaussianBlur(weight, (0, 0), max(0.5, 0.006 * r)), 0.0, 1.0)
