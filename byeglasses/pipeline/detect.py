"""Face detection and 68-point landmarks with dlib, from the models in `face_recognition_models`."""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from ..errors import ByeGlassesError

# dlib 68-point index ranges
JAW = slice(0, 17)
BROW_R = slice(17, 22)  # the subject's right brow (image left)
BROW_L = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_BOTTOM = slice(31, 36)
EYE_R = slice(36, 42)
EYE_L = slice(42, 48)
MOUTH = slice(48, 68)


def models_dir() -> str:
    """The `models/` folder of the installed face_recognition_models package (not imported:
    importing it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ByeGlassesError(
            "the package face_recognition_models is not installed; `pip install face_recognition_models`")
    return os.path.join(list(spec.submodule_search_locations)[0], "models")


def model_path(name: str) -> str:
    path = os.path.join(models_dir(), name)
    if not os.path.isfile(path):
        raise ByeGlassesError(f"dlib model file missing: {path}; reinstall face_recognition_models")
    return path


@functools.lru_cache(maxsize=None)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def _predictor(points: int = 68):
    import dlib

    return dlib.shape_predictor(model_path(f"shape_predictor_{points}_face_landmarks.dat"))


@dataclass
class Face:
    box: Tuple[int, int, int, int]  # left, top, right, bottom in pixels
    score: float  # detector confidence
    landmarks: np.ndarray  # (68, 2) float32, (x, y) pixels, dlib order

    @property
    def size(self) -> float:
        """Face size in pixels: the mean of the box's width and height."""
        return 0.5 * ((self.box[2] - self.box[0]) + (self.box[3] - self.box[1]))


def detect_faces(image: np.ndarray, upsample: int = 0) -> List[Face]:
    """All faces in an (H, W, 3) uint8 RGB image, largest first."""
    image = np.ascontiguousarray(image)
    rects, scores, _ = _detector().run(image, upsample, 0.0)
    faces = []
    for rect, score in zip(rects, scores):
        shape = _predictor(68)(image, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        faces.append(Face((rect.left(), rect.top(), rect.right(), rect.bottom()), float(score), pts))
    faces.sort(key=lambda f: -f.size)
    return faces


def detect_boxes(image: np.ndarray, threshold: float = 0.0, upsample: int = 0
                 ) -> List[Tuple[Tuple[int, int, int, int], float]]:
    """Face boxes (left, top, right, bottom) and detector scores, without landmarks; `image`
    may be greyscale (H, W) or RGB. Detections scoring below `threshold` are dropped."""
    rects, scores, _ = _detector().run(np.ascontiguousarray(image), upsample, threshold)
    return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]


@functools.lru_cache(maxsize=None)
def _cnn_detector():
    import dlib

    return dlib.cnn_face_detection_model_v1(model_path("mmod_human_face_detector.dat"))


def detect_boxes_cnn(image: np.ndarray, threshold: float = 0.0, upsample: int = 0
                     ) -> List[Tuple[Tuple[int, int, int, int], float]]:
    """Like `detect_boxes`, with dlib's CNN (MMOD) detector: finds faces HOG misses (sunglasses,
    turned heads) at ~50x the cost (~0.3 s for 256x256 on one CPU core). `image`: RGB uint8."""
    found = _cnn_detector()(np.ascontiguousarray(image), upsample)
    return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence))
            for d in found if d.confidence >= threshold]


def landmarks_in_box(image: np.ndarray, box: Tuple[int, int, int, int]) -> np.ndarray:
    """68 landmarks of the face inside `box` (left, top, right, bottom), without detection."""
    import dlib

    rect = dlib.rectangle(*[int(v) for v in box])
    shape = _predictor(68)(np.ascontiguousarray(image), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(5, 2): eye centres (image left, image right), nose tip, mouth corners (left, right)."""
    lm = landmarks68
    return np.stack([
        lm[EYE_R].mean(0), lm[EYE_L].mean(0), lm[30], lm[48], lm[54],
    ]).astype(np.float32)
