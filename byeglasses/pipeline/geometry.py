"""Face geometry: align a face onto the canonical crop, warp results back, and paste them in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .template import template

Box = Tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in image pixels
# lens_patch: inside a lens, a pixel away from the eyes keeps its own (tint-corrected) value while
# it stays within CHANGE_LOW_LENS levels of the generator's, and takes the generator's from
# CHANGE_HIGH_LENS (a frame remnant, a reflection).
CHANGE_LOW_LENS, CHANGE_HIGH_LENS = 10.0, 30.0
# ... and its tint is measured on the pixels the generator changes by less than OUTLIER_LOW..HIGH.
OUTLIER_LOW, OUTLIER_HIGH = 30.0, 60.0
# Around the eye (its lids and lashes), a pixel is replaced from RIM_LOW..RIM_HIGH levels of change.
RIM_LOW, RIM_HIGH = 50.0, 90.0
# Smoothness of the lens blend's gain map (Gaussian sigma), a fraction of the crop side.
GAIN_SIGMA = 0.02
# match_colour: the generator's colour drift is measured on the pixels more than MATCH_MARGIN (of the
# side) outside the predicted glasses, smoothed over MATCH_SIGMA, and held within MATCH_CLIP.
MATCH_MARGIN, MATCH_SIGMA, MATCH_CLIP = 0.02, 0.06, (0.7, 1.4)
# frame_lines: thin strokes (black-hat / top-hat FRAME_WIDTH of the side across) standing out by more
# than FRAME_LEVEL levels, within FRAME_NEAR of the predicted glasses, at least FRAME_AREA (of the
# crop's area) and FRAME_LENGTH (of its side) long, outside the eyes grown by FRAME_EYE_PAD of their
# width; at 256 px: 7 px across, 4 px, 20 px and 12 px.
FRAME_WIDTH, FRAME_LEVEL, FRAME_NEAR = 7 / 256, 12.0, 4 / 256
FRAME_AREA, FRAME_LENGTH, FRAME_EYE_PAD = 20 / 256 ** 2, 12 / 256, 0.15


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

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) photo pixels -> crop pixels."""
        return np.asarray(points, np.float64) @ self.matrix[:, :2].T + self.matrix[:, 2]

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


# The blend region's growth and feathering by default, as shares of the crop side: RemovalSettings'
# defaults, and the region training's loss.id_region="glasses" applies eq. 7 to (model/losses.py).
BLEND_DILATE = 0.03
BLEND_FEATHER = 0.015


def blend_weight(glasses: np.ndarray, threshold: float = 0.5, dilate: float = BLEND_DILATE,
                 feather: float = BLEND_FEATHER) -> np.ndarray:
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
                  - cv2.GaussianBlur(y_hat.astype(np.float32), (0, 0), s))
    diff = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])  # 6x numpy's max(axis=2)
    weight = np.clip((diff - low) / (high - low), 0.0, 1.0)
    k = max(1, int(round(grow * r)))
    weight = cv2.dilate(weight, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return np.clip(cv2.GaussianBlur(weight, (0, 0), max(0.5, 0.006 * r)), 0.0, 1.0)


def _coarse(sigma: float, r: int):
    """(q, down, up) for smooth maps of Gaussian sigma·r on an (r, r) crop: they are worked out at
    1/q of the side (area-averaged, the same Gaussian in those pixels, q up to 4) and brought back
    up, the same maps for up to a sixteenth of the work."""
    q = max(1, min(4, int(sigma * r / 2)))
    size = (max(1, r // q), max(1, r // q))
    down = lambda a: cv2.resize(a, size, interpolation=cv2.INTER_AREA) if q > 1 else a  # noqa: E731
    up = lambda a: cv2.resize(a, (r, r), interpolation=cv2.INTER_LINEAR) if q > 1 else a  # noqa: E731
    return q, down, up


def match_colour(crop: np.ndarray, y_hat: np.ndarray, glasses: np.ndarray, threshold: float = 0.3,
                 margin: float = MATCH_MARGIN, sigma: float = MATCH_SIGMA) -> np.ndarray:
    """ŷ (R, R, 3) with the generator's smooth drift in brightness and colour taken off, float 0..255.
    Away from the glasses ŷ should be the photo itself, yet it often comes out a little darker or
    with a cast; pasted in, that drift shows as a darker patch around the eyes, and the lens blend's
    gain carries it onto the photo's own pixels. Outside the glasses (probability >= `threshold`,
    grown by `margin`·R) the per-channel ratio of the crop's local mean to ŷ's is measured
    (Gaussian sigma·R, normalised by the pixels that count); deep inside large lenses, where that
    reaches too few pixels, the same ratio over 3·sigma·R comes in instead, and where even that
    finds nothing to measure (a crop that is all glasses), ŷ stays as it is."""
    r = crop.shape[0]
    k = max(3, int(round(2 * margin * r + 1)) | 1)
    outside = 1.0 - cv2.dilate((glasses >= threshold).astype(np.uint8),
                               cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(np.float32)
    x, g = crop.astype(np.float32), y_hat.astype(np.float32)
    q, down, up = _coarse(sigma, r)
    w, xs, gs = down(outside), down(x), down(g)

    def ratio_at(s):  # (ratio (r/q, r/q, 3), how much of the neighbourhood counts (r/q, r/q))
        blur = lambda a: cv2.GaussianBlur(a, (0, 0), max(s * r / q, 0.5))  # noqa: E731
        total = blur(w)
        mx = blur(xs * w[..., None]) / (total[..., None] + 1e-6)
        mg = blur(gs * w[..., None]) / (total[..., None] + 1e-6)
        return np.clip((mx + 4.0) / (mg + 4.0), *MATCH_CLIP), total

    near, near_total = ratio_at(sigma)
    wide, wide_total = ratio_at(3 * sigma)
    ratio = 1.0 + _smoothstep(wide_total, 0.01, 0.05)[..., None] * (wide - 1.0)
    ratio += _smoothstep(near_total, 0.05, 0.2)[..., None] * (near - ratio)
    return np.clip(g * up(ratio), 0.0, 255.0)


def _smoothstep(x: np.ndarray, low: float, high: float) -> np.ndarray:
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def eye_masks(eyes: Sequence[np.ndarray], shape, pad: float) -> np.ndarray:
    """(H, W) uint8 0/1 of `shape`: each eye's six landmarks (pixels) filled, grown by `pad` of
    that eye's width (corner to corner)."""
    region = np.zeros(tuple(shape[:2]), np.uint8)
    for pts in eyes:
        pts = np.asarray(pts, np.float32)
        if not np.isfinite(pts).all():
            continue
        eye = np.zeros_like(region)
        cv2.fillConvexPoly(eye, cv2.convexHull(np.rint(pts).astype(np.int32)), 1)
        k = max(1, int(round(pad * float(np.linalg.norm(pts[3] - pts[0])))))
        region |= cv2.dilate(eye, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return region


def eye_regions(eyes: Sequence[np.ndarray], resolution: int, pad: float = 0.45) -> np.ndarray:
    """(R, R) soft mask of the eyes and lids: each eye's six landmarks (crop pixels) filled,
    grown by `pad` of that eye's width and softened."""
    region = eye_masks(eyes, (resolution, resolution), pad)
    return cv2.GaussianBlur(region.astype(np.float32), (0, 0), max(1.0, 0.01 * resolution))


def thin_strokes(crop: np.ndarray, width: float) -> np.ndarray:
    """(R, R) float32: how much each pixel of an (R, R, 3) RGB crop stands out as a thin dark or
    bright stroke, in levels: the larger of a grey black-hat and top-hat `width`·R across."""
    k = max(3, int(round(width * crop.shape[0])) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    grey = cv2.cvtColor(np.ascontiguousarray(np.clip(crop, 0, 255), np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.maximum(cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel), cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, kernel))


def fill_holes(region: np.ndarray, close: float = 0.012) -> np.ndarray:
    """(R, R) uint8 0/1 region with what it encloses filled in: a predicted lens rim becomes the
    whole lens. Gaps in a rim up to about `close`·R pixels are bridged (the region is grown by that
    much, filled, and shrunk back)."""
    r = region.shape[0]
    k = max(1, int(round(close * r)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    grown = cv2.dilate(region, disk)
    outside = np.pad(1 - grown, 1, constant_values=1)  # a frame of background so the flood reaches every side
    flood = np.zeros((r + 4, r + 4), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 2)
    filled = (outside[1:-1, 1:-1] != 2).astype(np.uint8)
    return (region | cv2.erode(filled, disk, borderValue=0)).astype(np.uint8)


def local_mean(crop: np.ndarray) -> np.ndarray:
    """The crop's local mean at the gain map's smoothness (GAIN_SIGMA of its side): `correct_lens`'s
    `base`. Smooth, so it can be warped to the photo like the gain map instead of blurring the
    photo itself (a blur that wide costs about a second on a face 2,000 px across)."""
    return cv2.GaussianBlur(crop.astype(np.float32), (0, 0), max(GAIN_SIGMA * crop.shape[0], 0.5))


def correct_lens(photo: np.ndarray, gain: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The face behind a lens, from the photo's pixels (H, W, 3), the lens blend's smooth gain map
    (H, W, 3; `lens_keep`) and the photo's local mean `base` (H, W, 3; `local_mean`), float 0..255.
    Where the lens darkens or tints the face (gain >= 1) the light it let through is scaled back up,
    photo·gain. Where it brightens it (gain < 1: glare, a reflection, a haze laid over the face) the
    veil is subtracted instead, photo - (1 - gain)·base: that keeps the face's own contrast, where
    scaling down would flatten the eyes by the same factor."""
    out = photo.astype(np.float32) * np.maximum(gain, 1.0)
    out -= (1.0 - np.minimum(gain, 1.0)) * base
    return np.clip(out, 0.0, 255.0)


def lens_keep(crop: np.ndarray, y_hat: np.ndarray, glasses: np.ndarray, eyes: Sequence[np.ndarray],
              threshold: float = 0.5, rim: Tuple[float, float] = (0.012, 0.03), sigma: float = GAIN_SIGMA,
              tint: Tuple[float, float] = (1.5, 2.5), low: float = CHANGE_LOW_LENS,
              high: float = CHANGE_HIGH_LENS, other_eyes: Optional[Sequence[np.ndarray]] = None
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Replace only what the glasses hide. Returns (keep (R, R) in [0, 1], gain (R, R, 3)): where
    the face shows through the lenses it keeps its own pixels corrected by `gain`, a smooth map
    that brings them to the generator's local brightness and colour (taking off a tint or a veil:
    `correct_lens`); the patch is ŷ + keep·(correct_lens(x, gain, local_mean(x)) - ŷ). `gain` is
    smooth, so the photo's own pixels can be used at full resolution (`lens_patch` is the same in
    crop pixels). Kept:

    - seen through: where the lens darkens, brightens or tints the face by less than tint[0]
      (fully kept) .. tint[1] (not kept) in every channel; behind dark lenses the generator's
      eyes stay;
    - the eyes themselves (the landmarks `eyes`, crop pixels, grown by 0.1 of the eye's width;
      with `other_eyes`, a second estimate, only where both put them), always, and their lids
      and lashes (grown by 0.3) unless the corrected pixel is more than RIM_LOW..RIM_HIGH levels
      from ŷ (a rim passing just under the eye);
    - around the eyes (grown by 0.6 of their width) and inside the lenses (more than
      rim[0]·R..rim[1]·R pixels within the predicted glasses region, with the lenses its rims
      enclose filled in), where the corrected pixel stays within low..high levels of ŷ:
      frame remnants and reflections differ more, and are replaced.
    """
    r = crop.shape[0]
    x = crop.astype(np.float32)
    g = y_hat.astype(np.float32)
    inside = _smoothstep(cv2.distanceTransform(fill_holes((glasses >= threshold).astype(np.uint8)), cv2.DIST_L2, 5),
                         rim[0] * r, rim[1] * r)
    q, down, up = _coarse(sigma, r)
    blur = lambda a: cv2.GaussianBlur(a, (0, 0), max(sigma * r / q, 0.5))  # noqa: E731
    xs, gs = down(x), down(g)
    # the local gain from x to ŷ, leaving out what the generator changes most (the frame's own
    # pixels and glare, which would otherwise leave a halo along the rims)
    steady = down(1.0 - change_weight(x, g, OUTLIER_LOW, OUTLIER_HIGH)) + 1e-3
    total = blur(steady)[..., None]
    steady = steady[..., None]
    gain = up(np.clip((blur(gs * steady) / total + 4.0) / (blur(xs * steady) / total + 4.0), 0.4, 2.5))
    # how much the lens darkens or tints the face, all pixels counted (a dark lens is all "change")
    shade = up(np.abs(np.log((blur(gs) + 4.0) / (blur(xs) + 4.0))).max(axis=2))
    seen = 1.0 - _smoothstep(shade, np.log(tint[0]), np.log(tint[1]))
    # compared with ŷ scaled alone, not veil-corrected: on fv-dev, keeping by the veil-corrected
    # pixel left glasses on more faces (7.1% against 6.5%)
    corrected = np.clip(x * gain, 0.0, 255.0)
    def around(pad):  # where the eyes are by both estimates
        region = eye_regions(eyes, r, pad=pad)
        return region if other_eyes is None else np.minimum(region, eye_regions(other_eyes, r, pad=pad))

    near = around(0.6)
    like = 1.0 - change_weight(corrected, g, low, high)
    # the lids and lashes around the eye, unless far from ŷ (a rim passing close under the eye)
    lids = around(0.3) * (1.0 - change_weight(corrected, g, RIM_LOW, RIM_HIGH))
    face = np.maximum.reduce([around(0.1), lids, like * np.maximum(inside, near)])
    return (seen * face).astype(np.float32), gain.astype(np.float32)


def frame_lines(crop: np.ndarray, glasses: np.ndarray, eyes: Sequence[np.ndarray], pad: float = FRAME_EYE_PAD,
                level: float = FRAME_LEVEL) -> np.ndarray:
    """(R, R) soft mask in [0, 1] of the thin frame lines of the crop x that the lens blend must not
    keep from the photo: strokes darker or brighter than their surroundings (a grey black-hat or
    top-hat FRAME_WIDTH·R across) by more than `level`, at most FRAME_NEAR·R from the predicted
    glasses (probability >= 0.3), away from the eyes (their six landmarks each, crop pixels, grown
    by `pad` of the eye's width), in strokes of at least FRAME_AREA·R² pixels and FRAME_LENGTH·R
    long. Without it, a thin metal rim the generator has taken off comes back wherever it is close
    enough to ŷ's brightness to pass for the face seen through the lens."""
    r = crop.shape[0]
    return cv2.GaussianBlur(frame_strokes(crop, glasses, eyes, pad, level).astype(np.float32), (0, 0),
                            max(r / 256.0, 0.5)).clip(0.0, 1.0)


def frame_strokes(crop: np.ndarray, glasses: np.ndarray, eyes: Sequence[np.ndarray], pad: float = FRAME_EYE_PAD,
                  level: float = FRAME_LEVEL) -> np.ndarray:
    """(R, R) uint8 0/1: the strokes of `frame_lines`, grown by one pixel, before softening."""
    r = crop.shape[0]
    ridges = thin_strokes(crop, FRAME_WIDTH)
    near = max(3, int(round(2 * FRAME_NEAR * r + 1)) | 1)
    zone = cv2.dilate((glasses >= 0.3).astype(np.uint8), np.ones((near, near), np.uint8))
    zone[eye_regions(eyes, r, pad=pad) >= 0.5] = 0
    candidates = ((ridges > level) & (zone > 0)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    strokes = [i for i in range(1, n)
               if stats[i, 4] >= FRAME_AREA * r * r and max(stats[i, 2], stats[i, 3]) >= FRAME_LENGTH * r]
    if not strokes:
        return np.zeros((r, r), np.uint8)
    return cv2.dilate(np.isin(labels, strokes).astype(np.uint8), np.ones((3, 3), np.uint8))


def lens_patch(crop: np.ndarray, y_hat: np.ndarray, glasses: np.ndarray, eyes: Sequence[np.ndarray],
               threshold: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """`lens_keep` applied in crop pixels: (patch (R, R, 3) float 0..255, keep (R, R))."""
    keep, gain = lens_keep(crop, y_hat, glasses, eyes, threshold)
    g = y_hat.astype(np.float32)
    return g + keep[..., None] * (correct_lens(crop, gain, local_mean(crop)) - g), keep
