"""The complete face-shape mask from 68 landmarks: the jaw line closed by a forehead dome above the brows."""

from __future__ import annotations

import cv2
import numpy as np

from ..pipeline.detect import BROW_L, BROW_R, EYE_L, EYE_R, JAW

FOREHEAD = 0.6  # forehead height above the brows / (brows to nose base)


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """(N, 2) polygon around the whole face: jaw points 0..16, then a forehead arc from right to left."""
    lm = np.asarray(landmarks, dtype=np.float32)
    ex = lm[EYE_L].mean(0) - lm[EYE_R].mean(0)
    ex /= max(float(np.linalg.norm(ex)), 1e-6)
    up = np.array([ex[1], -ex[0]], dtype=np.float32)  # perpendicular to the eye line, towards the hair
    jaw = lm[JAW]
    brows = np.concatenate([lm[BROW_R], lm[BROW_L]])
    centre = 0.5 * (jaw[0] + jaw[16])
    half_width = max(0.5 * float(np.dot(jaw[16] - jaw[0], ex)), 1e-3)
    height = FOREHEAD * max(float(np.dot(brows.mean(0) - lm[33], up)), 0.2 * half_width)
    bx, by = (brows - centre) @ ex, (brows - centre) @ up
    order = np.argsort(bx)
    # a dome: the brow line lifted by `height` in the middle, less towards the temples, down to the jaw ends
    arc = []
    for t in np.linspace(1.0, -1.0, 17):
        end_up = float((jaw[16 if t > 0 else 0] - centre) @ up)
        w = abs(t) ** 4
        base = (1 - w) * float(np.interp(t * half_width, bx[order], by[order])) + w * end_up
        arc.append(centre + ex * (t * half_width) + up * (base + (1 - w) * height * np.sqrt(1 - 0.6 * t * t)))
    return np.concatenate([jaw, np.array(arc, dtype=np.float32)]).astype(np.float32)


def face_shape_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) float32 in [0, 1], anti-aliased: the face including the region glasses cover."""
    canvas = np.zeros((height, width), np.uint8)
    pts = np.round(face_outline(landmarks) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) * (1.0 / 255)
