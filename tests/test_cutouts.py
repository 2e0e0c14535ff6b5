"""Real glasses cut out of photos (`synth.cutouts`, `byeglasses cut-glasses`): the matte, the frontal
image and its anchors, and drawing a cut-out back onto a face."""

import cv2
import numpy as np
import pytest
from PIL import Image

from byeglasses import cli
from byeglasses.synth.cutouts import Cutout, frontal_cutout, glasses_matte, read_anchors, write_cutout
from byeglasses.synth.glasses import GlassesDistribution
from byeglasses.synth.preview import astronaut_face
from byeglasses.synth.render import synthesize


@pytest.fixture(scope="module")
def pair():
    """Thick black frames with clear lenses drawn on the astronaut: (pair, landmarks)."""
    face, lm = astronaut_face(256)
    dist = GlassesDistribution(frame_weights={"black": 1.0}, lens_weights={"clear": 1.0},
                               shape_weights={"rectangle": 1.0}, thickness_plastic=(0.07, 0.08), glare_count=(0, 0))
    return synthesize(face, lm, 5, dist=dist), lm


def test_matte_of_a_perfect_removal(pair):
    s, lm = pair
    eyes = [lm[36:42], lm[42:48]]
    alpha = glasses_matte(s.x, s.y.astype(np.float32), s.glasses_mask.astype(np.float32), eyes, eyes)
    frame = (s.glasses_mask > 0) & (np.abs(s.x.astype(int) - s.y).max(axis=2) > 80)
    assert frame.sum() > 300 and alpha[frame].mean() > 0.8, "the frame is glasses"
    far = cv2.dilate(s.glasses_mask, np.ones((9, 9), np.uint8)) == 0
    assert alpha[far].max() < 0.01, "the face away from the glasses is not"
    for eye in eyes:
        cx, cy = np.round(eye.mean(0)).astype(int)
        assert alpha[cy - 2:cy + 3, cx - 2:cx + 3].max() < 0.05, "the wearer's eye behind a clear lens is theirs"


def test_cutout_goes_back_where_it_was(pair, tmp_path):
    s, lm = pair
    eyes = [lm[36:42], lm[42:48]]
    alpha = glasses_matte(s.x, s.y.astype(np.float32), s.glasses_mask.astype(np.float32), eyes, eyes)
    cutout = frontal_cutout(s.x, alpha, lm)
    path = tmp_path / "cut.png"
    write_cutout(path, cutout)
    anchors, are_eyes = read_anchors(path, cutout.rgba.shape[1::-1])
    assert are_eyes and np.allclose(anchors, cutout.anchors, atol=0.01)
    back = synthesize(s.y, lm, 0, dist=GlassesDistribution(image_paths=(str(path),), image_probability=1.0))
    solid = cv2.erode((alpha > 0.95).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert solid.sum() > 200
    err = np.abs(back.x.astype(int) - s.x.astype(int)).max(axis=2)[solid]
    assert np.median(err) < 10, "drawn back onto its own face, the frame lands on the frame"
    assert back.glasses_mask[solid].mean() > 0.99


def test_mirrored_cutout_and_plain_images(tmp_path):
    rgba = np.zeros((20, 40, 4), np.uint8)
    rgba[5, 3] = 255
    c = Cutout(rgba, np.array([[10.0, 8.0], [30.0, 8.0]], np.float32)).mirrored()
    assert c.rgba[5, 36, 3] == 255 and np.allclose(c.anchors, [[9.0, 8.0], [29.0, 8.0]])
    path = tmp_path / "plain.png"
    Image.fromarray(rgba, "RGBA").save(path)  # a glasses image without anchors: lens centres at 25% / 75%
    anchors, are_eyes = read_anchors(path, (40, 20))
    assert not are_eyes and np.allclose(anchors, [[10, 9], [30, 9]])


def test_cut_glasses_command(pair, tmp_path, capsys):
    s, _ = pair
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(s.x).save(photos / "wearer.png")
    Image.fromarray(s.x).save(photos / "wearer.jpg", quality=95)  # the same name: it may not overwrite
    (photos / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "cuts"
    assert cli.main(["cut-glasses", str(photos), str(out)]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["wearer-mirror.png", "wearer.png"]
    assert "broken.jpg" in captured.err and "1 of 3 photos cut out" in captured.out
    assert "skipped wearer.png: its cut-out wearer.png is already wearer.jpg's" in captured.err
    im = np.asarray(Image.open(out / "wearer.png"))
    assert im.shape[2] == 4 and (im[..., 3] > 128).sum() > 300
    assert read_anchors(out / "wearer-mirror.png", im.shape[1::-1])[1]
    frames = tmp_path / "frames"
    assert cli.main(["cut-glasses", str(photos), str(frames), "--frames-only", "--no-mirror"]) == 0
    capsys.readouterr()
    alone = np.asarray(Image.open(frames / "wearer.png"))[..., 3]
    assert sorted(p.name for p in frames.iterdir()) == ["wearer.png"] and 0 < (alone > 128).sum() <= (im[..., 3] > 128).sum()
    # nothing is overwritten, and the output may not sit inside the photos
    assert cli.main(["cut-glasses", str(photos), str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert cli.main(["cut-glasses", str(photos), str(photos / "cuts")]) == 2
    assert "inside" in capsys.readouterr().err
    assert not (photos / "cuts").exists()


def test_frames_only_leave_a_dark_lens_out():
    face, lm = astronaut_face(256)
    dist = GlassesDistribution(frame_weights={"black": 1.0}, lens_weights={"sunglasses": 1.0},
                               shape_weights={"round": 1.0}, thickness_plastic=(0.05, 0.06), glare_count=(0, 0))
    s = synthesize(face, lm, 2, dist=dist)
    eyes = [lm[36:42], lm[42:48]]
    args = (s.x, s.y.astype(np.float32), s.glasses_mask.astype(np.float32), eyes, eyes)
    whole, frames = glasses_matte(*args), glasses_matte(*args, lenses=False)
    for eye in eyes:  # the middle of each dark lens
        cx, cy = np.round(eye.mean(0)).astype(int)
        assert whole[cy - 2:cy + 3, cx - 2:cx + 3].min() > 0.9, "a dark lens hides the eye: it is cut out whole"
        assert frames[cy - 2:cy + 3, cx - 2:cx + 3].max() < 0.05, "the frames alone leave it out"
    depth = cv2.distanceTransform(s.glasses_mask, cv2.DIST_L2, 5)
    rim = (depth <= 4) & (np.abs(s.x.astype(int) - s.y).max(axis=2) > 80)
    assert rim.sum() > 200 and frames[rim].mean() > 0.7, "and keep the frame along the outline"


def test_see_through_lenses_hold_the_new_face_not_the_wearer():
    """Sunglasses drawn on the astronaut, cut out with a perfect removal: the plain matte keeps the
    lens whole, the wearer's darkened eye included, and hides the eye of any face it is drawn on;
    the see-through layer holds only the lens, so drawn onto a face it shows that face's own eye at
    the lens's transmission."""
    from byeglasses.synth.cutouts import see_through_lenses

    face, lm = astronaut_face(256)
    dist = GlassesDistribution(frame_weights={"black": 1.0}, lens_weights={"sunglasses": 1.0},
                               shape_weights={"round": 1.0}, thickness_plastic=(0.05, 0.06), glare_count=(0, 0))
    s = synthesize(face, lm, 2, dist=dist)
    eyes = [lm[36:42], lm[42:48]]
    y, mask = s.y.astype(np.float32), s.glasses_mask.astype(np.float32)
    alpha = glasses_matte(s.x, y, mask, eyes, eyes)
    colour, see = see_through_lenses(s.x, y, mask, alpha)
    for eye in eyes:
        x0, y0 = np.floor(eye.min(0)).astype(int)
        x1, y1 = np.ceil(eye.max(0)).astype(int)
        box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        t = 1.0 - see[box].mean()
        assert 0.05 < t < 0.7, f"a dark lens lets some light through: alpha {see[box].mean():.2f}"
        assert alpha[box].min() > 0.9, "the plain matte keeps the whole lens, eye included"
        eye_contrast = s.y[box].astype(np.float32).mean(2).std()
        assert colour[box].mean(2).std() < 0.25 * eye_contrast, "the lens's colour holds no eye"
        a = see[box][..., None]
        pattern = np.where((np.indices(a.shape[:2]).sum(0) // 3) % 2 == 0, 60.0, 190.0)[..., None]  # a new face's eye
        through = ((1.0 - a) * pattern + a * colour[box]).mean(2).std() / pattern.std()
        assert abs(through - t) < 0.25 * t, f"drawn on a new face, its eye shows at the lens's transmission ({through:.2f})"
        plain = ((1.0 - alpha[box][..., None]) * pattern + alpha[box][..., None] * s.x[box]).mean(2).std() / pattern.std()
        assert plain < 0.1, "a plain full cut-out hides the new face's eye"
    far = cv2.dilate(s.glasses_mask, np.ones((9, 9), np.uint8)) == 0
    assert see[far].max() < 0.01
    rim = (cv2.distanceTransform(s.glasses_mask, cv2.DIST_L2, 5) <= 3) & (alpha > 0.9)
    assert rim.sum() > 100 and np.abs(see[rim] - alpha[rim]).mean() < 0.15, "the frame is left as it was"


def test_see_through_needs_the_lenses(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    assert cli.main(["cut-glasses", str(tmp_path / "photos"), str(tmp_path / "cuts"), "--frames-only",
                     "--see-through"]) == 2
    assert "--see-through" in capsys.readouterr().err
    assert not (tmp_path / "cuts").exists()
