"""Face geometry: similarity fit, align → unalign ≈ identity, bit-exact paste back."""

import numpy as np
import pytest

from byeglasses.pipeline.geometry import (Alignment, align, blend_weight, estimate_alignment, paste_back,
                                 similarity_transform, unalign)
from byeglasses.pipeline.template import template


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (68, 2))
    angle, scale, shift = 0.4, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity_transform(src, src @ rot.T + shift)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-7)


@pytest.fixture(scope="module")
def face(astronaut):
    from byeglasses.pipeline.detect import detect_faces

    return detect_faces(astronaut)[0]


def test_alignment_puts_landmarks_on_the_template(face):
    al = estimate_alignment(face.landmarks, 256)
    moved = face.landmarks @ al.matrix[:, :2].T + al.matrix[:, 2]
    assert np.abs(moved - template(256)).mean() < 0.04 * 256


@pytest.mark.parametrize("resolution, tolerance", [(256, 4.0), (512, 2.5)])
def test_align_then_unalign_is_close_to_identity(astronaut, face, resolution, tolerance):
    al = estimate_alignment(face.landmarks, resolution)
    crop = align(astronaut, al)
    assert crop.shape == (resolution, resolution, 3)
    box = al.bounds(astronaut.shape)
    back = unalign(crop.astype(np.float32), al, box)
    x0, y0 = box[:2]
    l, t, r, b = face.box
    diff = np.abs(back[t - y0:b - y0, l - x0:r - x0] - astronaut[t:b, l:r].astype(np.float32))
    assert diff.mean() < tolerance


def test_large_faces_are_shrunk_without_aliasing(astronaut, face):
    # A small crop of a big face must equal the big crop averaged down, not a sparse sample of it.
    small = align(astronaut, estimate_alignment(face.landmarks, 32)).astype(np.float32)
    big = align(astronaut, estimate_alignment(face.landmarks, 256)).astype(np.float32)
    averaged = big.reshape(32, 8, 32, 8, 3).mean((1, 3))
    assert np.abs(small - averaged).mean() < 6.0


def test_bounds_are_clipped_to_the_photo():
    al = Alignment(np.array([[1.0, 0, 10], [0, 1.0, 10]]), 64)  # crop starts 10 px left/above the photo
    assert al.bounds((40, 40)) == (0, 0, 40, 40)


def test_blend_weight_covers_the_glasses_and_nothing_far_away():
    m = np.zeros((64, 64), np.float32)
    m[28:34, 16:48] = 0.9
    w = blend_weight(m, threshold=0.5, dilate=0.03, feather=0.015)
    assert w[28:34, 16:48].min() > 0.95
    assert w[:16].max() == 0.0 and w[50:].max() == 0.0


def test_paste_back_copies_pixels_where_the_weight_is_zero(astronaut):
    h, w = 120, 100
    box = (200, 50, 200 + w, 50 + h)
    weight = np.zeros((h, w), np.float32)
    weight[40:60, 20:80] = 1.0
    weight[60:62, 20:80] = 1e-4  # too small to move a pixel: treated as 0
    patch = np.zeros((h, w, 3), np.float32)
    out, changed = paste_back(astronaut, patch, weight, box)
    assert out is not astronaut and changed.sum() == 20 * 60
    assert (out[50 + 40:50 + 60, 220:280] == 0).all()
    assert out[~changed].tobytes() == astronaut[~changed].tobytes()
