"""Frames left (evaluation/frames.py): the share of an input's thin frame lines still in an output."""

import cv2
import numpy as np
import pytest

from byeglasses.evaluation.frames import FramesLeft, frame_line_pixels, persistence, ridges

R = 256


def _rim_scene():
    """A flat face with a thin dark rim (2 px, 40 levels darker) inside a predicted glasses region,
    and an 'eye' inside it with its own dark outline."""
    rng = np.random.default_rng(0)
    face = np.clip(150 + rng.normal(0, 2, (R, R, 1)), 0, 255).repeat(3, 2).astype(np.uint8)
    glasses = np.zeros((R, R), np.float32)
    cv2.circle(glasses, (128, 128), 46, 1.0, -1)
    crop = face.copy()
    cv2.circle(crop, (128, 128), 42, (110, 110, 110), 2)
    cv2.ellipse(crop, (128, 128), (18, 9), 0, 0, 360, (90, 90, 90), 1)  # the eye's own lines
    a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eye = np.stack([128 + 18 * np.cos(a), 128 + 9 * np.sin(a)], 1)
    return face, crop, glasses, [eye]


def test_frame_lines_are_the_rim_not_the_eye_nor_outside_the_glasses():
    face, crop, glasses, eyes = _rim_scene()
    lines = frame_line_pixels(crop, glasses, eyes)
    yy, xx = np.mgrid[:R, :R]
    d = np.hypot(xx - 128, yy - 128)
    assert lines[np.abs(d - 42) < 0.8].mean() > 0.9
    assert not lines[d < 25].any() and not lines[d > 55].any()
    assert not frame_line_pixels(face, glasses, eyes).any()  # no glasses lines on the bare face


def test_persistence_is_the_share_of_the_lines_left():
    face, crop, glasses, eyes = _rim_scene()
    lines = frame_line_pixels(crop, glasses, eyes)
    before = ridges(crop)
    assert persistence(before, ridges(crop), lines) == pytest.approx(1.0)  # nothing removed
    assert persistence(before, ridges(face), lines) < 0.2  # the rim gone (the skin's own texture is the rest)
    half = (0.5 * crop.astype(np.float32) + 0.5 * face).astype(np.uint8)
    assert 0.35 < persistence(before, ridges(half), lines) < 0.65  # faded to half
    # a face with (almost) no lines to leave scores 0
    assert persistence(before, ridges(crop), np.zeros_like(lines)) == 0.0


def test_frames_left_on_a_synthesized_pair(astronaut_faces):
    """On glasses drawn by the synthesizer: the input keeps all its lines, the glasses-free original
    few, and the shipped model's own mask finds the frame."""
    from byeglasses.evaluation.verification import judge_face
    from byeglasses.synth.cache import landmark_cache, read_rgb
    from byeglasses.synth.render import synthesize

    name = sorted(p.name for p in astronaut_faces.iterdir())[0]
    cache = landmark_cache(astronaut_faces, names=[name], progress=False)
    s = synthesize(read_rgb(astronaut_faces / name), cache.landmarks[name], 3)
    judged = judge_face(s.x)
    frames = FramesLeft()
    probe = frames.prepare(s.x, judged.landmarks)
    assert probe.lines.sum() > 100
    assert frames.score(probe, s.x) == pytest.approx(1.0)
    assert frames.score(probe, s.y) < 0.3
    faded = (0.5 * s.x.astype(np.float32) + 0.5 * s.y).astype(np.uint8)
    assert frames.score(probe, s.y) < frames.score(probe, faded) < 0.8
