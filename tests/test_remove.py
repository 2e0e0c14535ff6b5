"""GlassesRemover and the `remove` / `demo` commands, end to end on the astronaut."""

import numpy as np
import pytest
import torch
from PIL import Image

from byeglasses.cli import main
from byeglasses.errors import CheckpointError
from byeglasses.pipeline.remover import GlassesRemover

from helpers import bomb_png


class BandGenerator(torch.nn.Module):
    """Stands in for a trained generator: 'glasses' on a band over the template's eyes, and a
    flat grey face, so the tests know exactly what must change."""

    def __init__(self, resolution=64, glasses=True, keep_face=False):
        super().__init__()
        self.r, self.glasses, self.keep_face = resolution, glasses, keep_face
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, x):
        r = self.r
        m = torch.zeros(x.shape[0], 2, r, r)
        if self.glasses:
            m[:, 0, int(0.43 * r):int(0.53 * r), int(0.28 * r):int(0.72 * r)] = 1.0
        y_hat = x + 4 / 127.5 if self.keep_face else torch.zeros_like(x)  # keep_face: changes 4 levels
        return y_hat + self.anchor, m


def test_only_the_glasses_region_changes(astronaut):
    # blend="mask": the generator's grey over the whole region (the default "lens" blend would keep
    # the eyes, which a flat grey the astronaut's brightness does not darken or tint)
    result = GlassesRemover(generator=BandGenerator(), resolution=64, glasses_threshold=0,
                            blend="mask").remove(astronaut)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.changed and 0.0 <= face.glasses_probability <= 1.0 and 0.03 < face.glasses_area < 0.06
    outside = result.blend_mask == 0
    assert result.image[outside].tobytes() == astronaut[outside].tobytes()
    # the eyes are inside the region and were replaced by the generator's grey
    for x, y in face.landmarks[36:48].round().astype(int):
        assert result.blend_mask[y, x] > 0.9 and np.abs(result.image[y, x].astype(int) - 127).max() <= 2
    # nothing changed below the nose or far from the face
    nose_y = int(face.landmarks[33, 1])
    assert (result.blend_mask[nose_y:] == 0).all()
    assert result.glasses_mask.max() == pytest.approx(1.0, abs=0.01) and result.glasses_mask[nose_y:].max() == 0


class CountingGenerator(BandGenerator):
    calls = 0

    def forward(self, x):
        CountingGenerator.calls += len(x)
        return super().forward(x)


def test_a_face_the_classifier_finds_without_glasses_is_left_untouched(astronaut):
    """The glasses classifier decides before the generator runs: the astronaut wears none, so the
    generator (which would 'remove' a band over her eyes) never sees her face."""
    CountingGenerator.calls = 0
    result = GlassesRemover(generator=CountingGenerator(), resolution=64).remove(astronaut)
    assert [f.changed for f in result.faces] == [False] and CountingGenerator.calls == 0
    face = result.faces[0]
    assert "no glasses" in face.reason and face.glasses_probability < 0.5
    assert result.image.tobytes() == astronaut.tobytes() and not result.blend_mask.any()


def test_the_classifier_finds_drawn_glasses(astronaut):
    from byeglasses.pipeline.detect import detect_faces
    from byeglasses.synth.render import synthesize

    face = detect_faces(astronaut)[0]
    judge = GlassesRemover(generator=BandGenerator(), resolution=64).judge
    assert judge(astronaut, face.landmarks) < 0.5
    for seed in range(3):
        drawn = synthesize(astronaut, face.landmarks, seed).x
        assert judge(drawn, face.landmarks) > 0.5, seed


def test_change_blend_keeps_what_the_generator_barely_changes(astronaut):
    """blend="change": a generator that moves the eye region by only 4 levels leaves the photo as
    it is; blend="mask" takes its output over the whole predicted glasses region; the old
    min-change gate still refuses such a face when asked to."""
    kw = dict(generator=BandGenerator(keep_face=True), resolution=64, glasses_threshold=0)
    kept = GlassesRemover(blend="change", **kw).remove(astronaut)
    assert kept.image.tobytes() == astronaut.tobytes() and not kept.faces[0].changed
    masked = GlassesRemover(blend="mask", **kw).remove(astronaut)
    assert masked.faces[0].changed and masked.image.tobytes() != astronaut.tobytes()
    gated = GlassesRemover(blend="mask", min_change=10, **kw).remove(astronaut)
    face = gated.faces[0]
    assert not face.changed and face.glasses_area > 0.03 and 3 < face.glasses_change < 5
    assert "would change the glasses region by" in face.reason


def test_several_faces(astronaut):
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    result = GlassesRemover(generator=BandGenerator(), resolution=64, glasses_threshold=0).remove(two)
    assert len(result.faces) == 2 and all(f.changed for f in result.faces)
    lefts = sorted(f.box[0] for f in result.faces)
    assert lefts[0] < 512 <= lefts[1]


def test_accepts_arrays_pil_images_and_paths(astronaut, tmp_path):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    remover = GlassesRemover(generator=BandGenerator(), resolution=64, glasses_threshold=0)
    outs = [remover.remove(x).image for x in (astronaut, Image.fromarray(astronaut), tmp_path / "a.png")]
    assert outs[0].tobytes() == outs[1].tobytes() == outs[2].tobytes()


def test_missing_default_model_says_what_to_do(monkeypatch, tmp_path):
    import byeglasses.model.weights as checkpoint

    monkeypatch.setattr(checkpoint, "DEFAULT_WEIGHTS", tmp_path / "default.safetensors")
    with pytest.raises(CheckpointError, match="--checkpoint"):
        GlassesRemover()


def _write_batch(folder, astronaut):
    good = Image.fromarray(astronaut)
    good.save(folder / "good.png")
    good.convert("L").save(folder / "grey.png")
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    good.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(np.asarray(good.convert("L")).astype(np.uint16) * 257).save(folder / "deep.png")
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(folder / "noface.png")
    (folder / "cut.jpg").write_bytes((folder / "cmyk.jpg").read_bytes()[:3000])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not a picture")
    bomb_png(folder / "bomb.png")




def test_batch_goes_on_past_bad_inputs(astronaut, tmp_path, tiny_checkpoint, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _write_batch(src, astronaut)
    rc = main(["remove", str(src), str(src / "notes.txt"), str(tmp_path / "absent.png"), "-o", str(out),
               "--checkpoint", str(tiny_checkpoint), "--glasses-threshold", "0", "--save-masks"])
    captured = capsys.readouterr()
    assert rc == 1
    for name in ("cut.jpg", "empty.jpg", "notes.txt", "bomb.png", "absent.png"):
        assert name in captured.err
    assert "noface.png: no face found" in captured.err
    written = {p.name for p in out.iterdir() if ".glasses." not in p.name and ".blend." not in p.name}
    assert written == {"good.png", "grey.png", "rgba.png", "cmyk.jpg", "deep.png", "manifest.jsonl"}

    # untouched pixels are bit-identical in the file; some pixels did change
    blend = np.asarray(Image.open(out / "good.blend.png")) > 0
    before, after = np.asarray(Image.open(src / "good.png")), np.asarray(Image.open(out / "good.png"))
    assert blend.any() and before[~blend].tobytes() == after[~blend].tobytes()
    assert (before != after).any()
    # faithful forms
    assert Image.open(out / "grey.png").mode == "L"
    rgba = np.asarray(Image.open(out / "rgba.png"))
    assert rgba.shape[2] == 4 and (rgba[..., 3] == 128).all()
    assert Image.open(out / "cmyk.jpg").mode == "CMYK"
    assert Image.open(out / "deep.png").mode.startswith("I")
    assert "deep.png: note: 16-bit" in captured.out


def test_outdir_that_holds_the_inputs_is_refused(astronaut, tmp_path, tiny_checkpoint, capsys):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    rc = main(["remove", str(tmp_path / "a.png"), "-o", str(tmp_path), "--checkpoint", str(tiny_checkpoint)])
    assert rc == 2 and "overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_demo_writes_a_side_by_side_png(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--checkpoint", str(tiny_checkpoint), "--out", str(out)]) == 0
    im = Image.open(out)
    assert im.format == "PNG" and im.size == (3 * 512, 512)
    assert "PSNR" in capsys.readouterr().out


def test_photo_without_glasses_is_copied_byte_for_byte(astronaut, tmp_path, tiny_checkpoint, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "plain.jpg", quality=90)
    # --min-area 1: no face can have that much glasses, so nothing is removed
    rc = main(["remove", str(src / "plain.jpg"), "-o", str(out), "--checkpoint", str(tiny_checkpoint),
               "--min-area", "1"])
    assert rc == 0
    assert (out / "plain.jpg").read_bytes() == (src / "plain.jpg").read_bytes()
    assert "copied unchanged" in capsys.readouterr().out


def test_cnn_detector_finds_a_face_hog_misses(celeba, tiny_checkpoint):
    """Real sunglasses photo 1189.jpg: dlib's HOG detector finds no face, the CNN fallback does."""
    from byeglasses.synth.cache import read_rgb

    image = read_rgb(celeba / "real-glasses" / "1189.jpg")
    assert GlassesRemover(tiny_checkpoint, cnn_fallback=False).detect(image) == []
    faces = GlassesRemover(tiny_checkpoint).detect(image)
    assert len(faces) == 1 and faces[0].landmarks.shape == (68, 2)


def test_cnn_fallback_looks_again_upsampled(celeba, tiny_checkpoint):
    """fv-dev photo 19485.jpg (sunglasses, a 140-px face in a 256-px photo): HOG and the CNN at the
    photo's own scale find no face; the CNN on the photo upsampled twice does."""
    from byeglasses.pipeline.detect import detect_boxes, detect_boxes_cnn
    from byeglasses.pipeline.remover import CNN_THRESHOLD
    from byeglasses.synth.cache import read_rgb

    image = read_rgb(celeba / "fv-dev" / "glasses" / "19485.jpg")
    assert detect_boxes(image, 0.1) == [] and detect_boxes_cnn(image, CNN_THRESHOLD) == []
    faces = GlassesRemover(tiny_checkpoint).detect(image)
    assert len(faces) == 1 and faces[0].size > 100


def test_settings_are_checked_in_one_place_and_named_as_the_caller_knows_them(tmp_path, capsys):
    from byeglasses import RemovalSettings
    from byeglasses.errors import SettingError

    with pytest.raises(SettingError, match=r"^threshold must be within 0\.\.1, got 1\.5"):
        RemovalSettings(threshold=1.5)
    with pytest.raises(SettingError, match="^onnx is needed"):
        GlassesRemover(backend="onnx")
    with pytest.raises(TypeError, match="treshold"):
        GlassesRemover(treshold=0.5)
    # the command line reports the same problem by its flag, before touching any photo
    assert main(["remove", str(tmp_path), "-o", str(tmp_path / "out"), "--min-area", "2"]) == 2
    assert "error: --min-area must be within 0..1, got 2.0" in capsys.readouterr().err
    assert main(["remove", str(tmp_path), "-o", str(tmp_path / "out"), "--backend", "onnx"]) == 2
    assert "error: --onnx is needed" in capsys.readouterr().err


def test_settings_object_and_keywords_build_the_same_remover(astronaut):
    from dataclasses import fields

    from byeglasses import RemovalSettings
    from byeglasses.cli import build_parser

    settings = RemovalSettings(min_change=0.0, dilate=0.0)
    a = GlassesRemover(generator=BandGenerator(keep_face=True), resolution=64, settings=settings)
    b = GlassesRemover(generator=BandGenerator(keep_face=True), resolution=64, min_change=0.0, dilate=0.0)
    assert a.settings == b.settings == settings
    assert a.remove(astronaut).image.tobytes() == b.remove(astronaut).image.tobytes()
    # the command line's defaults are the library's
    from byeglasses.cli.remove import settings_from_args

    args = build_parser().parse_args(["remove", "x.jpg", "-o", "out"])
    assert settings_from_args(args) == RemovalSettings()
    assert {f.name for f in fields(RemovalSettings)} - set(vars(args)) == {"cnn_fallback", "frame_lines", "dilate",
                                                                           "feather", "onnx_threads"}
    # the two negated flags
    off = build_parser().parse_args(["remove", "x.jpg", "-o", "out", "--no-frame-lines", "--no-cnn-fallback"])
    assert settings_from_args(off) == RemovalSettings(frame_lines=False, cnn_fallback=False)
    on = build_parser().parse_args(["remove", "x.jpg", "-o", "out", "--colour-match"])
    assert settings_from_args(on) == RemovalSettings(colour_match=True)


def test_a_second_pass_only_for_faces_still_wearing_glasses(astronaut):
    """passes=2: the generator sees a face again only while the classifier still judges it as
    wearing glasses. A generator that returns the glasses-free face runs once; forcing the
    classifier's verdict (threshold 0) makes it run twice."""
    from byeglasses.pipeline.geometry import align, estimate_alignment
    from byeglasses.synth.render import synthesize

    probe = GlassesRemover(generator=BandGenerator(), resolution=64)
    face = probe.detect(astronaut)[0]
    drawn = synthesize(astronaut, face.landmarks, 0).x
    clean = align(astronaut, estimate_alignment(probe.detect(drawn)[0].landmarks, 64))

    class Restoring(BandGenerator):
        calls = 0

        def forward(self, x):
            Restoring.calls += len(x)
            m = torch.zeros(len(x), 2, 64, 64)
            m[:, 0, 16:44, 8:56] = 1.0  # brows to nose tip, temple to temple
            y = torch.from_numpy(clean.transpose(2, 0, 1).copy()).float()[None] / 127.5 - 1
            return y.expand(len(x), -1, -1, -1) + self.anchor, m

    once = GlassesRemover(generator=Restoring(), resolution=64, passes=2).remove(drawn)
    assert once.faces[0].changed and Restoring.calls == 1 and once.faces[0].passes == 1
    assert once.faces[0].glasses_probability > 0.5
    Restoring.calls = 0
    twice = GlassesRemover(generator=Restoring(), resolution=64, passes=2, glasses_threshold=0).remove(drawn)
    assert Restoring.calls == 2 and twice.faces[0].passes == 2
    assert set(twice.timings) >= {"detect", "align", "classify", "generator", "paste"}
    with pytest.raises(Exception, match="passes"):
        GlassesRemover(generator=Restoring(), resolution=64, passes=0)
