"""Real glasses cut out of real photos, for synthesis (`byeglasses cut-glasses`).

Drawn glasses are flat 2-D shapes; real ones have bevels, hinges, nose pads, lenses that reflect
a real scene and light that falls on them. A model trained only on drawn glasses learns what they
look like, and on real photos leaves what it never saw. This module lifts the glasses out of real
photos of people wearing them, as RGBA images that `synthesize` pastes onto glasses-free faces
(`GlassesDistribution(image_paths=...)`, `byeglasses train --glasses-images`).

The matte comes from the shipped remover itself: where its generator's ŷ differs from the photo
inside the predicted glasses, and the photo is not the face seen through a clear lens
(`geometry.lens_keep`), the photo's pixel is glasses. Thin frame lines
(`geometry.frame_lines`) count as glasses wherever ŷ differs from them. Behind a clear lens the
wearer's own eyes are left out, so their eyes are never pasted onto another face; behind a dark or
mirrored lens the lens is the glasses and is kept whole. The matte is a removal model's opinion: where it
leaves a frame on, that part of the frame is missing from the cut-out (the pair's target is the
glasses-free face either way, so a partial cut-out is a weaker example, never a wrong one).

Each image is frontal in the sense of `render._image_layer`: it is warped so that the wearer's
eye centres land on two anchor points (stored in the PNG as the text chunk ``byeglasses-anchors``,
"eyes x0 y0 x1 y1"), with the face's yaw foreshortening taken out; `render` then places the
anchors on the new face's eye centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

ANCHORS_KEY = "byeglasses-anchors"
EYE_SPAN = 96  # pixels between the anchors in a cut-out (the eye distance)
CANVAS = (3.2, 1.9)  # canvas width and height, in eye distances
ANCHOR_Y = 0.8  # the anchors' height from the top, in eye distances
DIFF_LOW, DIFF_HIGH = 12.0, 35.0  # levels from ŷ (after the lens's gain) where a pixel starts / is surely glasses
HIDDEN_EYE = 1.6  # a lens that darkens or brightens the eye by more than this hides it: kept whole there
EYE_PAD = 0.3  # the wearer's eyes behind a clear lens, grown by this share of their width, are left out
FRAME_BAND = (0.02, 0.035)  # lenses=False: the frame is what lies this deep (of the side) inside the outline
SEE_SIGMA = 0.03  # see_through_lenses: the lens's transmission and colour are this smooth (of the side)
SEE_DARK = (0.2, 0.4)  # ... and a lens that takes this much of the light (1 - t) is a lens everywhere inside
MIN_ALPHA_AREA = 0.002  # of the crop: less than this and there are no glasses to cut out


@dataclass
class Cutout:
    rgba: np.ndarray  # (h, w, 4) uint8
    anchors: np.ndarray  # (2, 2) float: the wearer's right and left eye centres (image left first)

    def mirrored(self) -> "Cutout":
        w = self.rgba.shape[1]
        a = self.anchors[::-1].copy()
        a[:, 0] = w - 1 - a[:, 0]
        return Cutout(np.ascontiguousarray(self.rgba[:, ::-1]), a)

    def anchors_text(self) -> str:
        return "eyes " + " ".join(f"{v:.2f}" for v in self.anchors.reshape(-1))


def glasses_matte(crop: np.ndarray, y_hat: np.ndarray, glasses: np.ndarray, eyes: Sequence[np.ndarray],
                  own_eyes: Optional[Sequence[np.ndarray]] = None, threshold: float = 0.5,
                  lenses: bool = True) -> np.ndarray:
    """(R, R) float32 alpha in [0, 1] of the real glasses in an aligned crop: `crop` (R, R, 3) uint8,
    the generator's ŷ (R, R, 3, 0..255) and glasses mask (R, R) for it, and the eyes as in
    `lens_keep` (six crop-pixel landmarks each; `own_eyes`, from the photo, where it has them).
    `lenses=False`: the frame alone, what lies within FRAME_BAND of the glasses' outline (the
    lenses it encloses filled in); no tint, glare or dark lens."""
    from ..pipeline.geometry import _smoothstep, eye_regions, fill_holes, frame_lines, lens_keep

    r = crop.shape[0]
    keep, gain = lens_keep(crop, y_hat, glasses, eyes, threshold, other_eyes=own_eyes)
    lines = frame_lines(crop, glasses, own_eyes or eyes)
    seen = np.clip(crop.astype(np.float32) * gain, 0.0, 255.0)
    diff = cv2.GaussianBlur(np.abs(seen - y_hat.astype(np.float32)).max(axis=2), (0, 0), max(r / 256.0, 0.5))
    alpha = np.maximum(np.clip(glasses, 0.0, 1.0) * (1.0 - keep), lines) * _smoothstep(diff, DIFF_LOW, DIFF_HIGH)
    if not lenses:
        outline = fill_holes((glasses >= threshold).astype(np.uint8))
        depth = cv2.distanceTransform(outline, cv2.DIST_L2, 5)
        alpha *= 1.0 - _smoothstep(depth, FRAME_BAND[0] * r, FRAME_BAND[1] * r)
    x, g = crop.astype(np.float32).mean(axis=2), y_hat.astype(np.float32).mean(axis=2)
    for eye in own_eyes or eyes:  # the wearer's eye behind a clear lens is theirs, not the glasses'
        region = eye_regions([eye], r, pad=EYE_PAD)
        inside = region >= 0.5
        if not inside.any() or abs(np.log((g[inside].mean() + 4.0) / (x[inside].mean() + 4.0))) < np.log(HIDDEN_EYE):
            alpha *= 1.0 - region
    return alpha.astype(np.float32)


def see_through_lenses(crop: np.ndarray, y_hat: np.ndarray, glasses: np.ndarray, alpha: np.ndarray,
                       threshold: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """(colour (R, R, 3) float32, alpha (R, R)) of a full cut-out whose lenses hold no eyes: inside
    each lens (deeper than FRAME_BAND within the glasses' outline) the photo is modelled as
    x = t·face + (1 − t)·C, with the lens's transmission t = blur(x) / blur(ŷ) (grey levels, clipped
    to 0.03..1) and its colour C = blur(x − t·ŷ) / (1 − t), both smooth (SEE_SIGMA). The layer
    there is C at alpha 1 − t, so drawn onto a new face it shows *that* face's eyes at the lens's
    transmission, and none of the wearer's (whose darkened eyes a plain full cut-out pastes onto
    every face it is drawn on). Where the lens takes more than SEE_DARK of the light, alpha is
    1 − t even where the matte had left the eye out; the frame keeps the photo's pixels."""
    from ..pipeline.geometry import _smoothstep, fill_holes

    r = crop.shape[0]
    outline = fill_holes((glasses >= threshold).astype(np.uint8))
    depth = cv2.distanceTransform(outline, cv2.DIST_L2, 5)
    inner = _smoothstep(depth, FRAME_BAND[0] * r, FRAME_BAND[1] * r).astype(np.float32)
    w = (inner > 0.5).astype(np.float32) + 1e-4  # blur within the lenses: the frame's pixels stay out
    sigma = SEE_SIGMA * r
    w_blur = cv2.GaussianBlur(w, (0, 0), sigma)

    def blur(v):
        return cv2.GaussianBlur(v * w, (0, 0), sigma) / w_blur

    x, g = crop.astype(np.float32), y_hat.astype(np.float32)
    t = np.clip((blur(x.mean(axis=2)) + 2.0) / (blur(g.mean(axis=2)) + 2.0), 0.03, 1.0)
    residual = np.stack([blur(x[..., c] - t * g[..., c]) for c in range(3)], axis=2)
    colour = np.clip(residual / np.maximum(1.0 - t, 0.05)[..., None], 0.0, 255.0)
    lens_alpha = (1.0 - t) * np.maximum(alpha, _smoothstep(1.0 - t, *SEE_DARK))
    new_alpha = inner * lens_alpha + (1.0 - inner) * alpha
    new_colour = inner[..., None] * colour + (1.0 - inner[..., None]) * x
    return new_colour.astype(np.float32), np.clip(new_alpha, 0.0, 1.0).astype(np.float32)


def frontal_cutout(crop: np.ndarray, alpha: np.ndarray, landmarks: np.ndarray) -> Cutout:
    """The glasses of an aligned crop as a frontal RGBA image: the crop's eye centres (from its 68
    `landmarks`, crop pixels) land on the anchors, and the yaw foreshortening `render` applies to
    a new face is taken out, so that drawing it back onto the same face puts it where it was."""
    from .glasses import GlassesParams
    from .render import face_geometry

    g = face_geometry(landmarks, GlassesParams(lens_offset_x=0.0, lens_offset_y=0.0))
    w, h = int(round(CANVAS[0] * EYE_SPAN)), int(round(CANVAS[1] * EYE_SPAN))
    anchors = np.array([[0.5 * w - 0.5 * EYE_SPAN, ANCHOR_Y * EYE_SPAN],
                        [0.5 * w + 0.5 * EYE_SPAN, ANCHOR_Y * EYE_SPAN]], np.float32)
    M = image_to_face(anchors, g)
    rgba = np.concatenate([np.clip(crop, 0, 255).astype(np.float32),
                           np.clip(alpha, 0.0, 1.0)[..., None].astype(np.float32) * 255.0], axis=2)
    premult = rgba.copy()
    premult[..., :3] *= rgba[..., 3:] / 255.0
    out = cv2.warpAffine(premult, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = out[..., 3:]
    out[..., :3] = np.where(a > 0.5, out[..., :3] * 255.0 / np.maximum(a, 1e-3), 0.0)
    return Cutout(np.clip(np.rint(out), 0, 255).astype(np.uint8), anchors)


def image_to_face(anchors: np.ndarray, g) -> np.ndarray:
    """(2, 3) affine map from a glasses image's pixels to the face's: its two `anchors` (image left
    first) onto the face geometry `g`'s lens centres, its vertical stretched by the yaw
    foreshortening `1 / g.fx` as `render` does for every glasses image."""
    src_mid = 0.5 * (anchors[0] + anchors[1])
    span_img = max(float(np.linalg.norm(anchors[1] - anchors[0])), 1e-3)
    dst_mid = 0.5 * (g.centres[0] + g.centres[1])
    span = float(np.linalg.norm(g.centres[1] - g.centres[0]))
    sx, sy = span / span_img, span / (span_img * g.fx)
    A = np.stack([g.ex * sx, g.ey * sy], 1)
    return np.concatenate([A, (dst_mid - A @ src_mid)[:, None]], 1).astype(np.float32)


def cut_from_photo(remover, rgb: np.ndarray, lenses: bool = True,
                   see_through: bool = False) -> Tuple[Optional[Cutout], str]:
    """(the glasses of the largest face in an RGB photo as a frontal cut-out, why not when None).
    A face the remover's classifier judges glasses-free is left alone, as `remove` would.
    `see_through`: lenses without the wearer's eyes (`see_through_lenses`)."""
    from ..pipeline.remover import glasses_free_eyes

    prepared = remover.prepare(rgb)
    if not prepared.faces:
        return None, "no face found"
    face, al, crop = prepared.faces[0], prepared.alignments[0], prepared.crops[0]
    if len(face.landmarks) != 68:
        return None, "no 68-point landmarks"
    probability = float(remover.judge.probability_crops(crop[None])[0])
    if probability < remover.settings.glasses_threshold:
        return None, f"no glasses found (P(glasses) {probability:.2f} < {remover.settings.glasses_threshold:g})"
    y_hat, glasses = (a[0] for a in remover.run_generator(crop[None]))
    lm = al.to_crop(face.landmarks)
    own_eyes = [lm[36:42], lm[42:48]]
    eyes = glasses_free_eyes(y_hat, al.to_crop(np.array(face.box, np.float64).reshape(2, 2)))
    alpha = glasses_matte(crop, y_hat, glasses, eyes or own_eyes, own_eyes, remover.settings.threshold, lenses)
    if (alpha >= 0.5).mean() < MIN_ALPHA_AREA:
        return None, f"no glasses to cut out ({(alpha >= 0.5).mean():.2%} of the face)"
    if see_through and lenses:
        colour, alpha = see_through_lenses(crop, y_hat, glasses, alpha, remover.settings.threshold)
        return frontal_cutout(colour, alpha, lm), ""
    return frontal_cutout(crop, alpha, lm), ""


def write_cutout(path, cutout: Cutout) -> None:
    """A whole PNG or none, with its anchors in a text chunk."""
    from PIL import Image, PngImagePlugin

    from ..files import atomic_write

    info = PngImagePlugin.PngInfo()
    info.add_text(ANCHORS_KEY, cutout.anchors_text())
    atomic_write(path, lambda tmp: Image.fromarray(cutout.rgba, "RGBA").save(tmp, format="PNG", pnginfo=info))


def read_anchors(path, size: Tuple[int, int]) -> Tuple[np.ndarray, bool]:
    """((2, 2) anchor points, whether they are eye centres) of a glasses image of `size` (w, h):
    the ``byeglasses-anchors`` text chunk when it has one, else the lens centres at 25% and 75% of
    the width and 45% of the height."""
    from PIL import Image

    w, h = size
    try:
        with Image.open(path) as im:
            text = (getattr(im, "text", None) or {}).get(ANCHORS_KEY, "")
    except OSError:
        text = ""
    parts = text.split()
    if len(parts) == 5 and parts[0] == "eyes":
        try:
            a = np.array([float(v) for v in parts[1:]], np.float32).reshape(2, 2)
            if np.isfinite(a).all() and a[1, 0] > a[0, 0]:
                return a, True
        except ValueError:
            pass
    return np.array([[0.25 * w, 0.45 * h], [0.75 * w, 0.45 * h]], np.float32), False


__all__ = ["Cutout", "glasses_matte", "see_through_lenses", "frontal_cutout", "cut_from_photo", "write_cutout", "read_anchors",
           "image_to_face"]
