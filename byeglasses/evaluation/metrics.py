"""Image and mask metrics for the benchmark: PSNR and SSIM (whole image and inside a mask),
mask IoU, and dlib's own face-recognition descriptor (for identity similarity)."""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """PSNR in dB of two uint8 (H,W,3) images, over the whole image or where mask > 0: inf when they
    are equal there, nan when the mask is empty (no pixels to compare)."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        sel = mask.astype(bool)
        if not sel.any():
            return float("nan")
        diff = diff[sel]
    mse = diff.mean()
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Mean SSIM (7x7 windows, per channel) over the image, or over the pixels where mask > 0."""
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    full = full.mean(axis=2)
    if mask is not None:
        sel = mask.astype(bool)
        return float(full[sel].mean()) if sel.any() else float("nan")
    return float(full.mean())


def iou(pred: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of two masks, binarised at `threshold`; 1 when both are empty."""
    p, t = pred > threshold, target > threshold
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


@functools.lru_cache(maxsize=None)
def _dlib_face_recognizer():
    import dlib

    from ..pipeline.detect import model_path

    return dlib.face_recognition_model_v1(model_path("dlib_face_recognition_resnet_model_v1.dat"))


def dlib_descriptor(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """dlib's own 128-d descriptor of the face with these 68 landmarks, (128,) float32."""
    import dlib

    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks68]
    xs, ys = landmarks68[:, 0], landmarks68[:, 1]
    rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    shape = dlib.full_object_detection(rect, pts)
    return np.asarray(_dlib_face_recognizer().compute_face_descriptor(np.ascontiguousarray(image), shape),
                      dtype=np.float32)
