"""Draw glasses onto a glasses-free face: `synthesize(face, landmarks, seed) -> SynthSample` with exact masks.

Everything is drawn inside the glasses' bounding box with anti-aliased cv2 polygons (1/16-pixel
coordinates), so the cost does not depend on the image size. The glasses mask is 1 on the frame,
the lenses and the frame's cast shadow; outside it `x == y` exactly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..errors import InputError
from ..pipeline.detect import EYE_L, EYE_R
from .facemask import face_shape_mask
from .glasses import GlassesDistribution, GlassesParams, _jitter

MASK_EPS = 1.5 / 255  # coverage below which a pixel is left untouched (and out of the mask)
SHADOW_EPS = 0.012  # darkening below which the shadow is cut off
_DEFAULT_DIST = GlassesDistribution()


@dataclass
class SynthSample:
    x: np.ndarray  # (H, W, 3) uint8: the face with glasses
    y: np.ndarray  # (H, W, 3) uint8: the input face
    glasses_mask: np.ndarray  # (H, W) uint8 0/1: frame, lenses, cast shadow (every changed pixel)
    face_mask: np.ndarray  # (H, W) uint8 0/1: complete face shape
    params: GlassesParams


@dataclass
class _Geometry:
    scale: float  # S: eye distance of the frontal face, pixels
    ex: np.ndarray  # (2,) unit vector along the eye line, to image right
    ey: np.ndarray  # (2,) unit vector perpendicular, downwards
    fx: float  # horizontal foreshortening of the glasses front (1 = frontal)
    fxk: List[float]  # per lens: the lens on the side the face turns away from is narrower
    centres: List[np.ndarray]  # lens centres: image-left lens, image-right lens
    ears: List[np.ndarray]  # where the temples end
    axes: List[np.ndarray] = None  # per lens (2, 2): rows are image vectors of one unit of u and of v

    def __post_init__(self):
        self.axes = [np.stack([self.ex * (out * self.fxk[k]), self.ey]).astype(np.float32)
                     for k, out in enumerate((-1.0, 1.0))]


def face_geometry(landmarks: np.ndarray, p: GlassesParams) -> _Geometry:
    """Scale, roll (eye line) and yaw (foreshortening, nose offset) of the face, and the lens centres."""
    lm = np.asarray(landmarks, dtype=np.float32)
    eyes = [lm[EYE_R].mean(0), lm[EYE_L].mean(0)]
    v = eyes[1] - eyes[0]
    d = max(float(np.linalg.norm(v)), 1e-3)
    ex = v / d
    ey = np.array([-ex[1], ex[0]], dtype=np.float32)
    scale = max(d, 0.5 * float(np.linalg.norm(lm[8] - lm[27])))
    fx = d / scale
    mid = 0.5 * (eyes[0] + eyes[1])
    # the glasses sit in front of the eyes: under yaw they shift with the nose tip
    shift = 0.45 * float((lm[30] - mid) @ ex)
    sides = float((lm[30] - lm[0]) @ ex), float((lm[16] - lm[30]) @ ex)
    turn = sides[0] / max(sides[0] + sides[1], 1e-3) - 0.5  # < 0: nose towards image left
    fxk = [fx * float(np.clip(1 - out * 0.6 * turn, 0.7, 1.3)) for out in (-1.0, 1.0)]
    centres, ears = [], []
    for k, out in enumerate((-1.0, 1.0)):
        along = out * p.lens_offset_x * scale * fxk[k] + shift
        centres.append(eyes[k] + ex * along + ey * (p.lens_offset_y * scale))
        ears.append(lm[0 if k == 0 else 16] + ex * (out * 0.03 * scale) - ey * (0.04 * scale))
    return _Geometry(scale, ex, ey, fx, fxk, centres, ears)


def lens_outline(shape: str, a: float, b: float, n: int = 56) -> np.ndarray:
    """(n, 2) lens outline in lens coordinates (u outwards to the temple, v down), half-sizes a, b."""
    u, v = _unit_outline(shape, n)
    return np.stack([u * a, v * b], 1).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _unit_outline(shape: str, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """The outline of `lens_outline` for half-sizes 1, 1 (one per shape: a pair of glasses uses it ~12 times)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    power = {"round": 2.0, "oval": 2.0, "rectangle": 7.0, "rounded_rectangle": 3.6, "aviator": 2.4,
             "cat_eye": 2.8, "browline": 3.2, "rimless": 3.0}[shape]
    c, s = np.cos(t), np.sin(t)
    u = np.sign(c) * np.abs(c) ** (2 / power)
    v = np.sign(s) * np.abs(s) ** (2 / power)
    if shape == "aviator":  # teardrop: flat top, deep drop towards the nose
        v = np.where(v > 0, v * (1.0 + 0.35 * (1 - u) / 2), v * 0.85)
    elif shape == "cat_eye":  # upswept outer top corner, narrower bottom
        v = np.where(v < 0, v - 0.45 * np.clip(u, 0, 1) ** 3, v * (0.85 - 0.1 * u))
    u.flags.writeable = v.flags.writeable = False
    return u, v


def _to_image(local: np.ndarray, g: _Geometry, k: int) -> np.ndarray:
    """Lens coordinates (..., 2) of lens k (u outwards, v down) -> image pixels (..., 2)."""
    return local @ g.axes[k] + g.centres[k]


def _stroke(pts: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Polygon of a polyline drawn with a width going from w0 to w1."""
    tang = np.empty_like(pts)  # central differences, one-sided at the ends
    tang[1:-1] = pts[2:] - pts[:-2]
    tang[0], tang[-1] = pts[1] - pts[0], pts[-1] - pts[-2]
    tang /= np.maximum(np.sqrt((tang * tang).sum(1, keepdims=True)), 1e-6)
    normal = tang[:, ::-1] * [-1, 1]
    half = (w0 + (w1 - w0) * _ramp(len(pts)))[:, None] / 2
    return np.concatenate([pts + normal * half, (pts - normal * half)[::-1]])


@functools.lru_cache(maxsize=16)
def _ramp(n: int) -> np.ndarray:
    """(n,) 0..1 evenly spaced (np.linspace is slow for the few points drawn here)."""
    t = np.linspace(0.0, 1.0, n)
    t.flags.writeable = False
    return t


_INV255 = np.float32(1.0 / 255)


def _fill(hw: Tuple[int, int], polys, origin: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage (H, W) float32 of the union of non-overlapping polygons."""
    canvas = np.zeros(hw, np.uint8)
    pts = [np.round((p - origin) * 16).astype(np.int32) for p in polys]
    cv2.fillPoly(canvas, pts, 255, cv2.LINE_AA, shift=4)
    return np.multiply(canvas, _INV255, dtype=np.float32)


def _noise(hw: Tuple[int, int], cells: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth value noise in [0, 1], `cells` pixels per grid cell."""
    gh, gw = max(2, int(hw[0] / cells) + 2), max(2, int(hw[1] / cells) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    return np.clip(cv2.resize(grid, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC), 0, 1)


def _bezier(p0, p1, ctrl, n: int = 9) -> np.ndarray:
    t = _ramp(n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * t * (1 - t) * ctrl + t ** 2 * p1


_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 16)), np.sin(np.linspace(0, 2 * np.pi, 16))])


@dataclass
class _Parts:
    """Outlines (image pixels) of everything drawn, for one pair of glasses."""
    lens: List[np.ndarray]
    rim_outer: List[np.ndarray]
    rim_inner: List[np.ndarray]
    ring_inner: List[np.ndarray]
    gloss: List[Tuple[np.ndarray, np.ndarray]]  # (outer, inner) band inside the rim, per lens
    strokes: List[np.ndarray]  # bridge, temples
    pads: List[np.ndarray]


def glasses_parts(p: GlassesParams, g: _Geometry) -> _Parts:
    S = g.scale
    a, t = 0.5 * p.lens_width * S, p.frame_thickness * S
    b = a * p.lens_aspect
    rimless = p.shape == "rimless"
    parts = _Parts([], [], [], [], [], [], [])
    inner_pts, hinges = [], []
    rw = 0.03 * S
    inner = a - (0 if rimless else t / 2)
    # every outline of a lens at once: (half-width, half-height) of lens, rim outer/inner, gloss band, ring
    sizes = np.array([(a, b), (a + t / 2, b + t / 2), (a - t / 2, b - t / 2), (a + 0.3 * t, b + 0.3 * t),
                      (a + 0.05 * t, b + 0.05 * t), (inner - rw, inner * p.lens_aspect - rw)])
    u, v = _unit_outline(p.shape, 56)
    local = np.stack([u * sizes[:, :1], v * sizes[:, 1:]], -1).astype(np.float32)  # (6, 56, 2)
    outline = local[0]
    vb = p.bridge_height * b
    inner_side = outline[outline[:, 0] < 0]
    extra = [inner_side[np.argmin(np.abs(inner_side[:, 1] - vb))], (a + 0.3 * t, -0.45 * b)]  # bridge end, hinge
    if p.nose_pads:
        pr = 0.045 * S
        extra += list(np.stack([0.55 * pr * _CIRCLE[0], pr * _CIRCLE[1]], 1) + [-a * 0.8, b * 0.45])
    extra = np.array(extra, np.float32)
    for k in (0, 1):
        lens, rim_outer, rim_inner, gloss_outer, gloss_inner, ring = _to_image(local, g, k)
        parts.lens.append(lens)
        if not rimless:
            parts.rim_outer.append(rim_outer)
            parts.rim_inner.append(rim_inner)
            parts.gloss.append((gloss_outer, gloss_inner))
        parts.ring_inner.append(ring)
        points = _to_image(extra, g, k)
        inner_pts.append(points[0])
        hinges.append(points[1])
        if p.nose_pads:
            parts.pads.append(points[2:])
    bw = t * (0.9 if rimless or p.frame in ("metal",) else 1.0)
    gap = inner_pts[1] - inner_pts[0]
    ctrl = 0.5 * (inner_pts[0] + inner_pts[1]) - g.ey * (p.bridge_arch * float(np.linalg.norm(gap)))
    parts.strokes.append(_stroke(_bezier(inner_pts[0], inner_pts[1], ctrl), bw, bw))
    if p.shape == "aviator":  # double bridge across the top
        top = [_to_image(np.array([[-0.45 * a, -0.8 * b]], np.float32), g, k)[0] for k in (0, 1)]
        parts.strokes.append(_stroke(_bezier(top[0], top[1], 0.5 * (top[0] + top[1]) - g.ey * 0.02 * S),
                                     0.8 * bw, 0.8 * bw))
    tw = max(p.temple_thickness * t, 0.012 * S)
    for k, out in ((0, -1.0), (1, 1.0)):
        reach = float((g.ears[k] - hinges[k]) @ g.ex) * out
        end = g.ears[k] if reach > 0.04 * S else hinges[k] + g.ex * out * 0.04 * S + g.ey * 0.01 * S
        parts.strokes.append(_stroke(hinges[k] + _ramp(6)[:, None] * (end - hinges[k]), tw, 0.8 * tw))
    return parts


def _lens_coords(X, Y, g: _Geometry, k: int, a: float, b: float):
    """Per-pixel lens coordinates normalised by the half-sizes (u outwards, v down)."""
    dx, dy = X - g.centres[k][0], Y - g.centres[k][1]
    out = -1.0 if k == 0 else 1.0
    return (dx * g.ex[0] + dy * g.ex[1]) * out / (g.fxk[k] * a), (dx * g.ey[0] + dy * g.ey[1]) / b


def _frame_colour(p: GlassesParams, hw, rng) -> np.ndarray:
    """(3, H, W) float32 frame colour with its pattern or shading."""
    c1, c2 = np.array(p.frame_rgb, np.float32), np.array(p.frame_rgb2, np.float32)
    if p.frame == "tortoise":
        n = 0.65 * _noise(hw, 9, rng) + 0.35 * _noise(hw, 3, rng)
        h = np.clip((n - 0.5) / 0.3, 0, 1) ** 2
    elif p.frame == "metal":
        h = np.clip(_noise(hw, 4, rng) * 1.6 - 0.3, 0, 1)
    else:
        h = 0.35 * _noise(hw, 6, rng) ** 2
    return c1[:, None, None] + h * (c2 - c1)[:, None, None]


@functools.lru_cache(maxsize=32)
def load_rgba(path: str) -> np.ndarray:
    """A glasses image for `--glasses-images`: (H, W, 4) uint8 RGBA; InputError naming the file when
    it is not a readable image with an alpha channel. Cached: the same file is decoded once."""
    try:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV refuses it (over its pixel limit): the photo reader says why
        from ..pipeline.imageio import read_image

        read_image(path)
        raise InputError(f"{path}: OpenCV cannot decode it") from None
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        raise InputError(f"{path}: not an RGBA image (a PNG with an alpha channel is needed)")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def glasses_images(folder, on_skip=None) -> Tuple[str, ...]:
    """The RGBA PNG glasses images of `folder` (sorted), each checked by `load_rgba`; a file that is
    not one is passed to `on_skip(InputError)` (default: reported on stderr) and left out.
    InputError when the folder holds none."""
    import sys
    from pathlib import Path

    from ..files import list_images

    if not Path(folder).is_dir():
        raise InputError(f"{folder}: not a folder")
    good = []
    for name in list_images(folder):
        if not name.lower().endswith(".png"):
            continue
        path = str(Path(folder) / name)
        try:
            load_rgba(path)
            good.append(path)
        except InputError as e:
            if on_skip is None:
                print(f"skipping {e}", file=sys.stderr)
            else:
                on_skip(e)
    if not good:
        raise InputError(f"{folder}: no RGBA PNG glasses images")
    return tuple(good)


@functools.lru_cache(maxsize=256)
def _image_anchors(path: str, w: int, h: int) -> Tuple[np.ndarray, bool]:
    from .cutouts import read_anchors

    return read_anchors(path, (w, h))


def _image_layer(p: GlassesParams, g: _Geometry, shape, landmarks: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """A user RGBA image warped onto the face: its anchors (the lens centres at (0.25, 0.45) and
    (0.75, 0.45) of its size, or the eye centres a cut-out of real glasses records) onto the lens
    centres; a cut-out's eye centres go onto the face's eye centres."""
    from .cutouts import image_to_face

    rgba = load_rgba(p.image)
    h, w = rgba.shape[:2]
    anchors, eyes = _image_anchors(p.image, w, h)
    if eyes:  # a real cut-out: where it sat on its wearer's eyes, not the drawn glasses' offsets
        g = face_geometry(landmarks, replace(p, lens_offset_x=0.0, lens_offset_y=0.0))
    M = image_to_face(anchors, g)
    premult = rgba.astype(np.float32)
    premult[..., :3] *= premult[..., 3:] / 255
    warped = cv2.warpAffine(premult, M, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = warped[..., 3] / 255
    rgb = warped[..., :3] / np.maximum(alpha, 1e-4)[..., None]
    return np.clip(rgb, 0, 255), np.clip(alpha, 0, 1)


def render(face: np.ndarray, landmarks: np.ndarray, p: GlassesParams) -> Tuple[np.ndarray, np.ndarray]:
    """(x uint8 (H, W, 3), glasses mask uint8 (H, W) 0/1) for the glasses `p` on `face`."""
    H, W = face.shape[:2]
    g = face_geometry(landmarks, p)
    S = g.scale
    parts = None if p.image else glasses_parts(p, g)
    shadow_vec = (g.ex * p.shadow_dx + g.ey * p.shadow_dy) * S
    sigma = max(p.shadow_blur * S, 0.3)
    margin = float(np.abs(shadow_vec).max()) + 3 * sigma + 3
    if parts is None:
        rgb_full, alpha_full = _image_layer(p, g, face.shape, landmarks)
        ys, xs = np.nonzero(alpha_full > MASK_EPS)
        if len(xs) == 0:
            return face.copy(), np.zeros((H, W), np.uint8)
        lo, hi = np.array([xs.min(), ys.min()], np.float32), np.array([xs.max(), ys.max()], np.float32)
    else:
        allpts = np.concatenate(parts.lens + parts.rim_outer + parts.strokes + parts.pads)
        lo, hi = allpts.min(0), allpts.max(0)
    x0, y0 = max(int(np.floor(lo[0] - margin)), 0), max(int(np.floor(lo[1] - margin)), 0)
    x1, y1 = min(int(np.ceil(hi[0] + margin)) + 1, W), min(int(np.ceil(hi[1] + margin)) + 1, H)
    if x1 <= x0 or y1 <= y0:
        return face.copy(), np.zeros((H, W), np.uint8)
    hw, origin = (y1 - y0, x1 - x0), np.array([x0, y0], np.float32)
    # colour images are planar (3, h, w) from here on: numpy broadcasts a (h, w) weight over them
    # much faster than over the 3 interleaved channels of (h, w, 3)
    base = np.ascontiguousarray(face[y0:y1, x0:x1].transpose(2, 0, 1), dtype=np.float32)
    rng = np.random.default_rng(p.pattern_seed)

    if parts is None:
        colour, frame_a = rgb_full[y0:y1, x0:x1].transpose(2, 0, 1), alpha_full[y0:y1, x0:x1]
        lens_a, pads_a, silhouette = np.zeros(hw, np.float32), np.zeros(hw, np.float32), frame_a
    else:
        lens_k = [_fill(hw, [poly], origin) for poly in parts.lens]
        lens_a = lens_k[0] + lens_k[1]
        if parts.rim_outer and p.shape == "browline":
            rim_k = [_fill(hw, [o], origin) - _fill(hw, [i], origin) for o, i in zip(parts.rim_outer, parts.rim_inner)]
        elif parts.rim_outer:  # both rims in one fill each: the two lenses never touch
            rim = np.clip(_fill(hw, parts.rim_outer, origin) - _fill(hw, parts.rim_inner, origin), 0, 1)
        else:
            rim = np.zeros(hw, np.float32)
        strokes = _fill(hw, parts.strokes[:1], origin)
        for s in parts.strokes[1:]:
            strokes = np.maximum(strokes, _fill(hw, [s], origin))
        pads_a = 0.4 * _fill(hw, parts.pads, origin) if parts.pads else np.zeros(hw, np.float32)
        X, Y = np.arange(x0, x1, dtype=np.float32)[None, :], np.arange(y0, y1, dtype=np.float32)[:, None]
        a = 0.5 * p.lens_width * S
        b = a * p.lens_aspect
        coords = [_lens_coords(X, Y, g, k, a, b) for k in (0, 1)]
        if p.shape == "browline":  # thick top rim, thin metal wire below
            top = sum(lens_k_outer * np.clip((-c[1] + 0.05) * 5, 0, 1)
                      for lens_k_outer, c in zip(rim_k, coords))
            wire_t = 0.012 * S
            wire = [_fill(hw, [poly], origin) for poly in parts.lens]
            wire = [np.clip(w_ - _fill(hw, [(pl - g.centres[k]) * (1 - wire_t / a) + g.centres[k]], origin), 0, 1)
                    for k, (w_, pl) in enumerate(zip(wire, parts.lens))]
            rim = np.clip(top, 0, 1)
            pads_a = np.maximum(pads_a, wire[0] + wire[1])
        frame_a = np.maximum(rim, strokes)
        colour = _frame_colour(p, hw, rng)
        if p.frame != "metal" and p.frame_gloss > 0 and parts.gloss:
            # a specular band along the upper rim of plastic frames
            band = sum(np.clip(_fill(hw, [o], origin) - _fill(hw, [i], origin), 0, 1) * np.clip(-c[1] * 1.5, 0, 1)
                       for (o, i), c in zip(parts.gloss, coords))
            colour += (p.frame_gloss * band) * (255 - colour)
        lens_dark = p.lens_opacity if p.lens != "gradient" else 0.5 * (p.lens_opacity + p.lens_opacity_bottom)
        silhouette = np.maximum(np.maximum(frame_a, pads_a), lens_a * 0.8 * lens_dark)

    # cast shadow of the frame (and dark lenses) on the face
    M = np.float32([[1, 0, shadow_vec[0]], [0, 1, shadow_vec[1]]])
    shadow = cv2.GaussianBlur(cv2.warpAffine(silhouette, M, (hw[1], hw[0])), (0, 0), sigma)
    shadow = np.clip((shadow * p.shadow_strength - SHADOW_EPS) / (1 - SHADOW_EPS), 0, 1)
    out = base * (1 - shadow)

    if parts is not None:
        out = _lenses(out, p, g, lens_k, coords, hw, origin, parts)
        pad_rgb = (170, 170, 175) if p.shape == "browline" else (225, 225, 220)  # browline: its metal wire
        out += pads_a * (np.array(pad_rgb, np.float32)[:, None, None] - out)
    out += frame_a * (colour - out)

    mask = (frame_a > MASK_EPS) | (lens_a > MASK_EPS) | (pads_a > MASK_EPS) | (shadow > 0)
    x = face.copy()
    out += 0.5
    np.clip(out, 0, 255, out=out)
    # the changed pixels into the crop of x (a view that cv2 writes through): far faster than numpy's
    # masked copy of interleaved channels
    cv2.copyTo(cv2.merge(list(out.astype(np.uint8))), mask.view(np.uint8), x[y0:y1, x0:x1])
    full_mask = np.zeros((H, W), np.uint8)
    full_mask[y0:y1, x0:x1] = mask
    return x, full_mask


def _lenses(out, p: GlassesParams, g: _Geometry, lens_k, coords, hw, origin, parts) -> np.ndarray:
    """What is seen through the lenses: magnified/shrunk face, tint, mirror, reflection, edge ring, glare.

    Each effect blends the view towards a colour, view -> (1 - a) view + a colour, in this order. They are
    composed per pixel into view0 * keep + tint * tint_w + 255 * white and applied to the image once,
    inside the lenses' bounding box (`out`, which the caller owns, is changed there and returned).
    """
    pts = np.concatenate(parts.lens) - origin
    bx0, by0 = np.maximum(np.floor(pts.min(0)).astype(int) - 2, 0)
    bx1, by1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 3, [hw[1], hw[0]])
    box = (slice(by0, by1), slice(bx0, bx1))
    lens_k = [lk[box] for lk in lens_k]
    coords = [(u[box], v[box]) for u, v in coords]
    lens_a = lens_k[0] + lens_k[1]
    full, out = out, out[:, box[0], box[1]]
    view = out
    if p.magnification != 1.0:
        X, Y = np.arange(bx0, bx1, dtype=np.float32)[None, :], np.arange(by0, by1, dtype=np.float32)[:, None]
        mx, my = np.broadcast_to(X, lens_a.shape), np.broadcast_to(Y, lens_a.shape)
        for k in (0, 1):  # inside lens k, sample the face nearer to (magnify) or farther from its centre
            cx, cy = g.centres[k] - origin
            inside = lens_k[k] > 0
            mx = np.where(inside, cx + (X - cx) / p.magnification, mx)
            my = np.where(inside, cy + (Y - cy) / p.magnification, my)
        view = np.stack([cv2.remap(plane, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                         for plane in full])
    u_, v_ = coords[0][0] * lens_k[0] + coords[1][0] * lens_k[1], coords[0][1] * lens_k[0] + coords[1][1] * lens_k[1]
    lens_rgb = np.array(p.lens_rgb, np.float32)
    keep, tint, tint_w, white = 1.0, lens_rgb[:, None, None], 0.0, 0.0  # scalars or (h, w); tint (3, 1|h, 1|w)
    if p.lens == "gradient":
        tint_w = p.lens_opacity + (p.lens_opacity_bottom - p.lens_opacity) * np.clip((v_ + 0.8) / 1.6, 0, 1)
        keep = 1 - tint_w
    elif p.lens == "mirrored":
        shade = np.clip(1.25 - 0.55 * (v_ + 1) + 0.15 * np.cos(3 * u_ + 1.5 * v_), 0.3, 1.3)
        tint, tint_w, keep = np.clip(lens_rgb[:, None, None] * shade, 0, 255), p.lens_opacity, 1 - p.lens_opacity
    elif p.lens_opacity > 0:
        tint_w, keep = p.lens_opacity, 1 - p.lens_opacity
    if p.reflection > 0:
        ca, sa = math.cos(p.reflection_angle), math.sin(p.reflection_angle)
        a = p.reflection * np.clip(0.5 + 0.5 * (u_ * ca + v_ * sa), 0, 1)
        keep, tint_w, white = keep * (1 - a), tint_w * (1 - a), white * (1 - a) + a
    if p.edge_ring != 0:
        ring = np.clip(lens_a - _fill(lens_a.shape, parts.ring_inner, origin + [bx0, by0]), 0, 1)  # lenses never touch
        if p.edge_ring > 0:
            a = p.edge_ring * ring
            keep, tint_w, white = keep * (1 - a), tint_w * (1 - a), white * (1 - a) + a
        else:  # a darker edge: view -> m view
            m = 1 + p.edge_ring * ring
            keep, tint_w, white = keep * m, tint_w * m, white * m
    scene_w = 0.0
    if p.scene > 0:  # a scene mirrored by both lenses, as one picture seen in a convex mirror
        sx = sum((-1.0 if k == 0 else 1.0) * (coords[k][0] - 1.1) * lens_k[k] for k in (0, 1))
        sy = coords[0][1] * lens_k[0] + coords[1][1] * lens_k[1]
        bulge = 1.0 + 0.25 * (u_ * u_ + sy * sy)
        picture = _scene(p.scene_seed)
        th, tw = picture.shape[1:]
        mx = ((sx * bulge + 2.4) * (tw - 1) / 4.8).astype(np.float32)
        my = ((sy * bulge + 1.3) * (th - 1) / 2.6).astype(np.float32)
        scene = np.stack([cv2.remap(plane, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for plane in picture])
        a = p.scene
        keep, tint_w, white, scene_w = keep * (1 - a), tint_w * (1 - a), white * (1 - a), a
    for k, u0, v0, length, width, ang, strength in p.glares:
        du, dv = coords[int(k)][0] - u0, coords[int(k)][1] - v0
        c, s = math.cos(ang), math.sin(ang)
        r1, r2 = (du * c + dv * s) / length, (-du * s + dv * c) / width
        a = strength * np.exp(-(r1 * r1 + r2 * r2)) * lens_k[int(k)]
        keep, tint_w, white = keep * (1 - a), tint_w * (1 - a), white * (1 - a) + a
        if p.scene > 0:
            scene_w = scene_w * (1 - a)
    # out + lens_a (view - out), with view = view0 keep + tint tint_w + 255 white
    seen = lens_a * keep
    if view is out:
        res = out * (1 - lens_a + seen)
    else:
        res = out * (1 - lens_a) + view * seen
    if np.ndim(tint_w) or tint_w:
        res += (lens_a * tint_w) * tint
    if np.ndim(white) or white:
        res += 255 * lens_a * white
    if p.scene > 0:
        res += (lens_a * scene_w) * scene
    full[:, box[0], box[1]] = res
    return full


def _scene(seed: int) -> np.ndarray:
    """(3, 48, 96) float32 0..255: a small made-up outdoor or indoor scene (bright sky or ceiling,
    a horizon, a darker ground with texture, a few upright shapes) for lenses to reflect."""
    rng = np.random.default_rng(seed)
    h, w = 48, 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * rng.uniform(0.3, 0.75) + (xx - w / 2) * rng.uniform(-0.25, 0.25)
    sky_top = np.array(_jitter(rng, (150, 185, 230), 40), np.float32)
    sky_low = np.array(_jitter(rng, (235, 235, 240), 20), np.float32)
    ground = np.array(_jitter(rng, rng.choice([(60, 70, 50), (90, 85, 80), (40, 40, 45), (110, 90, 70)]), 25),
                      np.float32)
    t = np.clip(yy / np.maximum(horizon, 1), 0, 1)[None]
    sky = sky_top[:, None, None] * (1 - t) + sky_low[:, None, None] * t
    texture = 0.6 + 0.8 * (0.6 * _noise((h, w), 6, rng) + 0.4 * _noise((h, w), 2, rng))
    below = (yy > horizon).astype(np.float32)
    out = sky * (1 - below) + ground[:, None, None] * texture * below
    for _ in range(int(rng.integers(0, 5))):  # trees, buildings, people: dark upright shapes
        x0 = rng.uniform(0, w)
        half = rng.uniform(2, 10)
        top = rng.uniform(0, h * 0.6)
        shape = ((np.abs(xx - x0) < half) & (yy > top)).astype(np.float32)
        colour = np.array(_jitter(rng, (50, 50, 50), 30), np.float32)
        out += shape * (colour[:, None, None] - out)
    return np.clip(cv2.GaussianBlur(out.transpose(1, 2, 0), (0, 0), 0.8), 0, 255).transpose(2, 0, 1).copy()


def synthesize(face: np.ndarray, landmarks: np.ndarray, seed_or_rng, dist: Optional[GlassesDistribution] = None,
               params: Optional[GlassesParams] = None, face_mask: Optional[np.ndarray] = None) -> SynthSample:
    """Draw glasses (`params`, or a sample of `dist` from `seed_or_rng`) onto `face` (H, W, 3) uint8.
    `face_mask`: the face's shape mask (H, W) uint8 0/1 when already known (it depends on the landmarks only)."""
    face = np.asarray(face)
    if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
        raise InputError(f"face must be an (H, W, 3) uint8 RGB image, got {face.dtype} {face.shape}")
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
        raise InputError(f"landmarks must be a finite (68, 2) array, got {landmarks.shape}")
    if params is None:
        params = (dist or _DEFAULT_DIST).sample(np.random.default_rng(seed_or_rng))
    x, glasses_mask = render(face, landmarks, params)
    if face_mask is None:
        face_mask = (face_shape_mask(landmarks, *face.shape[:2]) >= 0.5).astype(np.uint8)
    return SynthSample(x=x, y=face.copy(), glasses_mask=glasses_mask, face_mask=face_mask, params=params)
