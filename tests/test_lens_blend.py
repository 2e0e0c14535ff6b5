"""blend="lens": replace what the glasses hide (frames, dark lenses), keep the face seen through
a clear or lightly tinted lens with its own pixels, the tint taken off."""

import cv2
import numpy as np
import pytest

from byeglasses.pipeline.geometry import (correct_lens, eye_regions, fill_holes, frame_lines, lens_keep, lens_patch,
                                         match_colour)
from byeglasses.pipeline.remover import GlassesRemover
from helpers import SmearingGenerator

R = 256
CENTRE = (128, 128)


def _laplacian_var(img, sel):
    grey = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F)[sel].var())


def _scene(lens_gain):
    """A textured face (the 'eye' at CENTRE), a lens of radius 40 around it that multiplies what is
    behind by `lens_gain`, a black rim 5 px wide, and a generator that smears the face and paints
    out rim and tint. Returns crop, ŷ, glasses mask, eye landmarks, rim pixels, lens inside."""
    rng = np.random.default_rng(0)
    face = np.full((R, R, 3), (190, 150, 130), np.float32)
    face += cv2.GaussianBlur(rng.normal(0, 25, (R, R)).astype(np.float32), (0, 0), 1.0)[..., None]
    cv2.ellipse(face, CENTRE, (18, 9), 0, 0, 360, (60, 40, 35), -1)  # the eye
    face = np.clip(face, 0, 255)
    yy, xx = np.mgrid[:R, :R]
    d = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
    lens, rim = d < 40, (d >= 40) & (d < 45)
    crop = face.copy()
    crop[lens] *= lens_gain
    crop[rim] = 15
    y_hat = cv2.GaussianBlur(face, (0, 0), 3.0)  # the generator's smeared but glasses-free face
    glasses = (d < 45).astype(np.float32)
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eye = np.stack([CENTRE[0] + 18 * np.cos(angles), CENTRE[1] + 9 * np.sin(angles)], 1)
    return np.clip(crop, 0, 255).astype(np.uint8), y_hat, glasses, [eye], rim, d < 30


def test_fill_holes_turns_a_rim_into_the_whole_lens():
    rim = np.zeros((64, 64), np.uint8)
    cv2.circle(rim, (20, 30), 10, 1, 2)
    cv2.ellipse(rim, (50, 30), (8, 8), 0, 12, 348, 1, 1)  # a gap of 24 degrees, about 3 px
    filled = fill_holes(rim, close=0.05)
    assert filled[30, 20] == 1 and filled[30, 50] == 1  # both lenses filled
    assert filled[5, 5] == 0 and filled[30, 36] == 0 and filled[60, 30] == 0  # nothing else
    assert (filled >= rim).all()


def test_eye_regions_cover_the_eye_and_grow_with_the_pad():
    *_, eyes, _, _ = _scene(1.0)
    small, large = eye_regions(eyes, R, pad=0.15), eye_regions(eyes, R, pad=0.6)
    assert small[CENTRE[1], CENTRE[0]] > 0.99 and large.sum() > 2 * small.sum()
    assert small[CENTRE[1], CENTRE[0] + 40] == 0.0


def test_a_clear_lens_keeps_its_own_pixels_and_the_rim_is_replaced():
    crop, y_hat, glasses, eyes, rim, inside = _scene(0.85)  # a light grey tint
    keep, gain = lens_keep(crop, y_hat, glasses, eyes)
    assert keep[CENTRE[1], CENTRE[0]] > 0.99  # the eye comes through
    assert keep[rim].mean() < 0.1  # the frame does not
    patch, _ = lens_patch(crop, y_hat, glasses, eyes)
    # the tint is taken off: the lens inside is as bright as the face without glasses ...
    assert abs(patch[inside].mean() - y_hat[inside].mean()) < 3.0
    assert abs(crop[inside].mean() - y_hat[inside].mean()) > 15.0
    # ... and keeps the photo's detail, which the generator smeared
    assert _laplacian_var(patch, inside) > 0.7 * _laplacian_var(crop / 0.85, inside)
    assert _laplacian_var(y_hat, inside) < 0.2 * _laplacian_var(crop / 0.85, inside)
    # the rim takes the generator's pixels
    assert np.abs(patch[rim] - y_hat[rim]).max() < 30.0


def test_correct_lens_scales_a_tint_back_and_subtracts_a_veil():
    """A tint (the lens lets through a share of the light) is undone by scaling up; a veil (glare
    or haze added over the face) by subtracting it, which keeps the face's contrast where scaling
    down would flatten it."""
    rng = np.random.default_rng(0)
    face = np.clip(120 + 40 * rng.standard_normal((64, 64, 3)), 0, 255).astype(np.float32)
    face = cv2.GaussianBlur(face, (0, 0), 1.0)
    tinted = face * 0.6
    blur = lambda a: cv2.GaussianBlur(a, (0, 0), 4.0)  # noqa: E731  the local mean correct_lens is given
    np.testing.assert_allclose(correct_lens(tinted, np.full_like(face, 1 / 0.6), blur(tinted)), np.clip(face, 0, 255),
                               atol=1e-3)
    # a veil of 40 levels; the gain map brings the local mean back: (m) / (m + 40)
    veiled = face + 40.0
    gain = np.full_like(face, face.mean() / veiled.mean())
    out = correct_lens(veiled, gain, blur(veiled))
    assert abs(out.mean() - face.mean()) < 1.0
    assert out.std() > 0.95 * face.std()  # the face's own contrast
    assert (veiled * gain).std() < 0.8 * face.std()  # what scaling down would have given
    # mixed maps stay within 0..255 and leave gain 1 untouched
    gain = np.ones_like(face)
    gain[:, :32] = 2.5
    gain[:, 32:48] = 0.4
    out = correct_lens(face, gain, blur(face))
    assert out.min() >= 0 and out.max() <= 255
    np.testing.assert_array_equal(out[:, 48:], face[:, 48:])


def test_a_dark_lens_takes_the_generators_eyes():
    crop, y_hat, glasses, eyes, rim, inside = _scene(0.15)  # sunglasses
    keep, _ = lens_keep(crop, y_hat, glasses, eyes)
    assert keep[inside].max() < 0.05
    patch, _ = lens_patch(crop, y_hat, glasses, eyes)
    assert np.abs(patch[inside] - y_hat[inside]).max() < 2.0


def test_frame_lines_finds_a_thin_rim_along_the_glasses_and_leaves_the_eyes_alone():
    rng = np.random.default_rng(1)
    face = np.full((R, R, 3), 170.0, np.float32) + rng.normal(0, 2, (R, R, 1)).astype(np.float32)
    eye = np.stack([CENTRE[0] + 18 * np.cos(a := np.linspace(0, 2 * np.pi, 6, endpoint=False)),
                    CENTRE[1] + 9 * np.sin(a)], 1)
    glasses = np.zeros((R, R), np.float32)
    cv2.circle(glasses, CENTRE, 45, 1.0, -1)
    crop = face.copy()
    cv2.circle(crop, CENTRE, 42, (140, 140, 140), 2)  # a thin metal rim, 30 levels darker
    cv2.line(crop, (CENTRE[0] - 15, CENTRE[1]), (CENTRE[0] + 15, CENTRE[1]), (120, 120, 120), 1)  # a lash line
    cv2.line(crop, (20, 20), (60, 20), (120, 120, 120), 1)  # a line far from the glasses
    cv2.circle(crop, (CENTRE[0] + 15, CENTRE[1] - 20), 2, (120, 120, 120), -1)  # a speck in the lens
    lines = frame_lines(np.clip(crop, 0, 255).astype(np.uint8), glasses, [eye])
    assert lines.shape == (R, R) and lines.dtype == np.float32 and 0 <= lines.min() and lines.max() <= 1
    yy, xx = np.mgrid[:R, :R]
    d = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
    assert lines[np.abs(d - 42) < 1].mean() > 0.9  # the rim
    assert lines[CENTRE[1], CENTRE[0] - 10:CENTRE[0] + 10].max() < 0.05  # not the eye's own lines
    assert lines[20, 20:61].max() < 0.05 and lines[CENTRE[1] - 20, CENTRE[0] + 15] < 0.05  # nor far lines or specks
    assert not frame_lines(np.clip(face, 0, 255).astype(np.uint8), glasses, [eye]).any()  # a plain face: none
    # the same rim at half the resolution: the sizes follow the crop
    half = cv2.resize(np.clip(crop, 0, 255).astype(np.uint8), (R // 2, R // 2), interpolation=cv2.INTER_AREA)
    small = frame_lines(half, cv2.resize(glasses, (R // 2, R // 2)), [eye / 2])
    assert small[CENTRE[1] // 2, CENTRE[0] // 2 - 21] > 0.5


def test_lens_blend_keeps_the_photos_eyes_at_full_resolution(astronaut):
    kw = dict(generator=SmearingGenerator(), resolution=128, glasses_threshold=0, passes=1)
    masked = GlassesRemover(blend="mask", **kw).remove(astronaut)
    # frame lines off: this generator calls the whole eye band glasses, so its lid creases and
    # lashes would all count as frame lines (checked on the eyes' outlines below)
    lens = GlassesRemover(blend="lens", frame_lines=False, **kw).remove(astronaut)
    face = lens.faces[0]
    assert face.changed and masked.faces[0].changed
    pts = face.landmarks[36:48]
    x0, y0 = np.floor(pts.min(0)).astype(int) - 3
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 3
    sel = np.zeros(astronaut.shape[:2], bool)
    sel[y0:y1, x0:x1] = True
    original = _laplacian_var(astronaut, sel)
    assert _laplacian_var(masked.image, sel) < 0.5 * original  # the crop's resolution and the smear
    assert _laplacian_var(lens.image, sel) > 0.8 * original
    # only the blended region can differ, as with every blend
    outside = lens.blend_mask == 0
    assert lens.image[outside].tobytes() == astronaut[outside].tobytes()
    # with frame lines the eyes themselves (their outlines) keep their detail too
    from byeglasses.evaluation.verification import eye_outlines

    lined = GlassesRemover(blend="lens", **kw).remove(astronaut)
    outlines = eye_outlines(face.landmarks, astronaut.shape)
    assert _laplacian_var(lined.image, outlines) > 0.8 * _laplacian_var(astronaut, outlines)
    assert _laplacian_var(masked.image, outlines) < 0.5 * _laplacian_var(astronaut, outlines)
    # and they report it: the lens blend keeps the astronaut's eyes (no lens darkens them), the
    # mask blend paints them all over
    assert lined.faces[0].eyes_kept > 0.8 and masked.faces[0].eyes_kept < 0.2


def test_eyes_kept_is_the_photos_share_inside_the_eyes():
    from byeglasses.pipeline.remover import kept_share

    crop, y_hat, glasses, eyes, rim, inside = _scene(0.15)
    both = np.concatenate([eyes[0], eyes[0] + [0, 100]])  # a second eye below, outside the glasses
    weight = glasses.copy()  # the generator's weight: 1 on the glasses, 0 elsewhere
    assert kept_share(weight, None, both) == pytest.approx(0.5, abs=0.02)  # mask blend: only the far eye is the photo's
    dark, _ = lens_keep(crop, y_hat, glasses, eyes)
    clear, _ = lens_keep(*_scene(0.9)[:3], eyes)
    assert kept_share(weight, dark, both) < 0.55 < 0.95 < kept_share(weight, clear, both)
    assert kept_share(weight, None, None) == 1.0  # no landmarks: nothing to say


def test_the_eyes_are_found_on_the_generators_output(astronaut):
    """glasses_free_eyes: the eye landmarks found again on a glasses-free crop (here the real
    one) agree with the photo's own; the lens blend asks ŷ, since on the photo a thick frame
    pulls them onto its rim."""
    from byeglasses.pipeline.geometry import align, estimate_alignment
    from byeglasses.pipeline.remover import glasses_free_eyes

    face = GlassesRemover(generator=SmearingGenerator(), resolution=128).detect(astronaut)[0]
    al = estimate_alignment(face.landmarks, 256)
    crop = align(astronaut, al).astype(np.float32)
    eyes = glasses_free_eyes(crop, al.to_crop(np.array(face.box, np.float64).reshape(2, 2)))
    truth = al.to_crop(face.landmarks[36:48])
    assert len(eyes) == 2
    assert np.abs(np.concatenate(eyes) - truth).max() < 3.0
    assert glasses_free_eyes(crop, np.array([[10.0, 10.0], [12.0, 12.0]])) == []  # no box to search


def test_the_lens_blend_takes_thin_frame_lines_off_unless_told_not_to(astronaut):
    """A thin rim faint enough to pass for the face behind a lens: the lens blend keeps it from
    the photo with frame_lines=False, and takes the generator's pixels on it by default."""
    from byeglasses.pipeline.geometry import estimate_alignment

    kw = dict(generator=SmearingGenerator(), resolution=128, glasses_threshold=0, passes=1)
    face = GlassesRemover(**kw).detect(astronaut)[0]
    al = estimate_alignment(face.landmarks, 128)
    ends = np.array([[0.27, 0.46], [0.73, 0.46]]) * 128  # across the smearing mask, along the eyes
    (x0, y0), (x1, y1) = (al.inverse @ np.c_[ends, np.ones(2)].T).T
    line = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.line(line, (int(x0), int(y0)), (int(x1), int(y1)), 1, 1)
    photo = np.where(line[..., None] > 0, (0.8 * astronaut).astype(np.uint8), astronaut)  # 20% darker
    kept = GlassesRemover(blend="lens", frame_lines=False, **kw).remove(photo).image
    taken = GlassesRemover(blend="lens", **kw).remove(photo).image
    on = line > 0

    def darkening(img):  # how much darker the line is than the same pixels without it
        return float((astronaut[on].astype(np.float32) - img[on]).mean())

    assert darkening(photo) > 25
    assert darkening(kept) > 0.75 * darkening(photo)  # kept from the photo ...
    assert darkening(taken) < 0.6 * darkening(kept)  # ... or taken off (what is left: ŷ's smear, the eyes' own)


def test_match_colour_takes_a_cast_off_inside_and_outside_the_glasses():
    """ŷ with a cast (R, G, B scaled by 0.8, 0.9, 1.1) and the eye smeared: the cast goes, measured
    outside the glasses and carried into them; the smear stays (it is not a colour)."""
    crop, _, glasses, _, _, inside = _scene(1.0)
    face = cv2.GaussianBlur(crop.astype(np.float32), (0, 0), 3.0)
    y_hat = np.clip(face * np.array([0.8, 0.9, 1.1], np.float32), 0, 255)
    matched = match_colour(crop, y_hat, glasses)
    assert np.abs(y_hat - face)[inside].mean() > 10
    assert np.abs(matched - face)[inside].mean() < 2.5
    assert np.abs(matched - face)[glasses == 0].mean() < 2.5
    same = np.abs(match_colour(crop, face, glasses) - face)  # no cast: nothing to take off
    assert same.mean() < 0.5 and same.max() < 2.5
    everywhere = np.ones_like(glasses)  # nothing outside the glasses to measure on: ŷ as it was
    assert np.array_equal(match_colour(crop, y_hat, everywhere), y_hat)


class DarkeningGenerator(SmearingGenerator):
    """The smearing generator whose output is also 15% darker than its input, everywhere."""

    def forward(self, x):
        y_hat, m = super().forward(x)
        return (y_hat + 1.0) * 0.85 - 1.0, m


def test_colour_match_keeps_the_pasted_region_as_bright_as_the_photo(astronaut):
    kw = dict(generator=DarkeningGenerator(), resolution=128, glasses_threshold=0, passes=1, blend="mask")
    plain = GlassesRemover(**kw).remove(astronaut)
    matched = GlassesRemover(colour_match=True, **kw).remove(astronaut)
    sel = plain.blend_mask > 0.9
    assert sel.sum() > 500 and np.array_equal(sel, matched.blend_mask > 0.9)

    def darkening(result):
        return float(astronaut[sel].astype(np.float32).mean() - result.image[sel].astype(np.float32).mean())

    assert darkening(plain) > 12
    assert abs(darkening(matched)) < 0.35 * darkening(plain)


def test_skip_invented_eyes_leaves_a_face_whose_eyes_would_be_painted(astronaut):
    """skip_invented_eyes: a face whose eyes the first pass would mostly paint over is left alone
    (the photo comes back byte for byte, and the reason says why); one whose eyes come through is not."""
    kw = dict(generator=SmearingGenerator(), resolution=128, glasses_threshold=0, passes=2, skip_invented_eyes=True)
    painted = GlassesRemover(blend="mask", **kw).remove(astronaut)  # the mask blend keeps nothing of the eyes
    face = painted.faces[0]
    assert not face.changed and face.eyes_kept < 0.2 and "invent the eyes" in face.reason
    assert painted.image.tobytes() == astronaut.tobytes()
    seen = GlassesRemover(blend="lens", frame_lines=False, **kw).remove(astronaut)
    assert seen.faces[0].changed and seen.faces[0].eyes_kept > 0.8
    default = GlassesRemover(blend="mask", **{**kw, "skip_invented_eyes": False}).remove(astronaut)
    assert default.faces[0].changed  # off by default


def test_remove_reports_faces_left_alone_by_skip_invented_eyes(astronaut, tmp_path, capsys, monkeypatch):
    """`remove --skip-invented-eyes`: a photo whose only face is left alone is copied unchanged with
    the status "left alone" (not "no glasses": it still wears them), said in the summary line."""
    import json

    from PIL import Image

    from byeglasses.cli import main
    from byeglasses.pipeline import remover as remover_module

    original = remover_module.GlassesRemover.__init__

    def smearing(self, checkpoint=None, *, settings=None, **kw):  # the model: glasses over the eyes, ŷ smeared
        original(self, checkpoint, settings=settings, generator=SmearingGenerator(), resolution=128, **kw)
    monkeypatch.setattr(remover_module.GlassesRemover, "__init__", smearing)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "a.png")
    assert main(["remove", str(src), "-o", str(out), "--blend", "mask", "--glasses-threshold", "0",
                 "--skip-invented-eyes", "--workers", "0"]) == 0
    (line,) = [json.loads(t) for t in (out / "manifest.jsonl").read_text().splitlines()]
    assert line["status"] == "left alone" and line["faces"][0]["eyes_kept"] < 0.5
    assert (out / "a.png").read_bytes() == (src / "a.png").read_bytes()
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "0 with glasses removed" in summary and "1 left alone with their glasses" in summary
