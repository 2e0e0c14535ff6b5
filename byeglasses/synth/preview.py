"""Contact sheet of synthesized pairs: for each sample x | y | masks (glasses red, face shape blue)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .render import SynthSample


def astronaut_face(resolution: int = 256):
    """scikit-image's astronaut, cropped around her face like a CelebA-HQ photo: (image, (68, 2) landmarks)."""
    from skimage.data import astronaut

    from ..pipeline.detect import detect_faces
    from .dataset import square_resize

    img = astronaut()
    face = detect_faces(img)[0]
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    half = int(face.size * 1.25)
    x0, y0 = max(int(cx - half), 0), max(int(cy - half * 1.1), 0)
    crop = img[y0:y0 + 2 * half, x0:x0 + 2 * half]
    return square_resize(crop, face.landmarks - np.float32([x0, y0]), resolution)


def mask_overlay(sample: SynthSample) -> np.ndarray:
    """(H, W, 3) uint8: the face dimmed, face shape tinted blue, glasses mask red."""
    img = sample.y.astype(np.float32) * 0.45
    img[sample.face_mask > 0] += np.array((0, 40, 110), np.float32)
    img[sample.glasses_mask > 0] = (255, 40, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def contact_sheet(samples: Sequence[SynthSample], columns: int = 4, tile: int = 256) -> np.ndarray:
    """(rows * tile, columns * 3 * tile, 3) uint8 grid; each cell is x | y | masks at `tile` px."""
    cells = []
    for s in samples:
        parts = [s.x, s.y, mask_overlay(s)]
        parts = [cv2.resize(p, (tile, tile), interpolation=cv2.INTER_AREA) for p in parts]
        cells.append(np.concatenate(parts, 1))
    blank = np.full_like(cells[0], 255) if cells else np.full((tile, 3 * tile, 3), 255, np.uint8)
    while len(cells) % columns:
        cells.append(blank)
    rows = [np.concatenate(cells[i:i + columns], 1) for i in range(0, len(cells), columns)]
    return np.concatenate(rows, 0)
