"""Issue 11's failure cases outside `remove`'s outputs: each one gives a clean message, before any
work, and loses or overwrites nothing. The table in docs/reliability.md lists them."""

import contextlib
import json
import resource

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from byeglasses import cli
from byeglasses.errors import ByeGlassesError, CheckpointError, SettingError
from byeglasses.model import weights
from byeglasses.model.config import ModelConfig, OptimConfig, TrainConfig, get_preset
from byeglasses.model.gan import ByeGlassesGAN
from byeglasses.model.networks import Generator
from byeglasses.training.loop import _truncate_log, train
from byeglasses.training.state import load_training_state, save_training_state
from helpers import bomb_png


def run_cli(argv, capsys):
    """(exit code, stderr) of `byeglasses ARGV` in-process; a traceback fails the test."""
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@contextlib.contextmanager
def file_size_limit(nbytes):
    """A real write error (EFBIG, as on a full disk) for any file growing past `nbytes`; Python
    ignores SIGXFSZ, so the write raises OSError."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


# -- settings: one place, checked before work (items 4, 6, 11) ----------------------------------

@pytest.mark.parametrize("make, name, words", [
    (lambda: ModelConfig(depth=0), "model.depth", "at least 1"),
    (lambda: ModelConfig(resolution=[64]), "model.resolution", "integer"),
    (lambda: ModelConfig(resolution=80), "model.resolution", "multiple of 32"),
    (lambda: ModelConfig(base_width=-8), "model.base_width", "at least 1"),
    (lambda: TrainConfig(steps=-5), "train.steps", "at least 1"),
    (lambda: TrainConfig(batch_size=0), "train.batch_size", "at least 1"),
    (lambda: TrainConfig(no_glasses=1.5), "train.no_glasses", "at most 1"),
    (lambda: OptimConfig(lr_g=float("nan")), "optim.lr_g", "finite"),
    (lambda: OptimConfig(beta2=1.0), "optim.beta2", "below 1"),
])
def test_config_fields_are_range_checked(make, name, words):
    with pytest.raises(SettingError) as e:
        make()
    assert e.value.name == name and words in e.value.problem


def test_config_changed_in_place_is_checked_by_train(astronaut_faces, tmp_path):
    cfg = get_preset("tiny")
    cfg.train.steps = -5  # a field set after construction, as an API user may
    with pytest.raises(SettingError, match="train.steps must be at least 1"):
        train(cfg, str(astronaut_faces), str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--steps", "-5"], "--steps: must be at least 1, got -5"),
    (["--set", "train.checkpoint_every=0"], "--set train.checkpoint_every: must be at least 1"),
    (["--set", "train.num_workers=-1"], "--set train.num_workers: must be at least 0"),
    (["--set", "optim.lr_g=NaN"], "--set optim.lr_g: must be a finite number"),
    (["--set", "model.resolution=[64]"], "--set model.resolution: must be an integer"),
    (["--set", "model.depth=0"], "--set model.depth: must be at least 1"),
])
def test_train_bad_settings_refused_before_the_run_folder(argv, message, astronaut_faces, tmp_path, capsys):
    code, err = run_cli(["train", "--preset", "tiny", "--faces", astronaut_faces, "--out", tmp_path / "run", *argv],
                        capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--count", "-1"], "--count must be a whole number of at least 1, got -1"),
    (["--resolution", "0"], "--resolution must be a multiple of 32"),
    (["--resolution", "-64"], "--resolution must be a multiple of 32"),
])
def test_eval_bad_numbers_refused(argv, message, astronaut_faces, capsys):
    code, err = run_cli(["eval", "--faces", astronaut_faces, "--no-identity", *argv], capsys)
    assert code == 2 and message in err


def test_eval_out_folder_refused_before_work(astronaut_faces, tmp_path, capsys):
    code, err = run_cli(["eval", "--faces", astronaut_faces, "--out", tmp_path], capsys)
    assert code == 2 and "is a folder" in err


def test_export_onnx_bad_opset_and_out_folder(tiny_checkpoint, tmp_path, capsys):
    code, err = run_cli(["export-onnx", "--checkpoint", tiny_checkpoint, "--opset", "99",
                         "--out", tmp_path / "g.onnx"], capsys)
    assert code == 2 and "--opset must be from 17 to" in err and "got 99" in err
    code, err = run_cli(["export-onnx", "--checkpoint", tiny_checkpoint, "--out", tmp_path], capsys)
    assert code == 2 and "--out" in err and "is a folder" in err
    assert list(tmp_path.iterdir()) == []


def test_demo_out_folder_refused_before_work(tmp_path, capsys):
    code, err = run_cli(["demo", "--out", tmp_path], capsys)
    assert code == 2 and "is a folder" in err


# -- checkpoints (items 4, 5) -----------------------------------------------------------------

def tiny_tensors():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    return cfg, Generator(cfg.model)


def test_nan_checkpoint_refused_at_load(tmp_path, capsys):
    cfg, gen = tiny_tensors()
    with torch.no_grad():
        for p in gen.parameters():
            p.fill_(float("nan"))
    path = tmp_path / "nan.safetensors"
    weights.save_checkpoint(path, cfg, gen)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        weights.load_generator(path, device="cpu")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    code, err = run_cli(["remove", tmp_path / "a.png", "-o", tmp_path / "o", "--checkpoint", path], capsys)
    assert code == 2 and "NaN or infinite" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def write_raw_checkpoint(path, meta_text, tensors=None):
    tensors = tensors or {"generator.encoder.blocks.0.0.weight": torch.zeros(8, 3, 4, 4)}
    save_file(tensors, str(path), metadata={"format": weights.FORMAT, "byeglasses_version": "0", "meta": meta_text})
    return path


def test_lying_config_is_refused_before_any_network_is_built(tmp_path, monkeypatch):
    """A tiny file whose config says width 4096 (a 4 GB network) is refused from the tensors'
    shapes, with the network only ever built on the meta device (no memory)."""
    cfg = get_preset("paper")
    cfg.model.base_width = cfg.model.max_width = 4096
    path = write_raw_checkpoint(tmp_path / "liar.safetensors", json.dumps({"config": cfg.to_dict()}))
    assert path.stat().st_size < 4000
    devices, real = [], weights.Generator

    def spy(model_cfg):
        devices.append(torch.empty(0).device.type)
        return real(model_cfg)

    monkeypatch.setattr(weights, "Generator", spy)
    with pytest.raises(CheckpointError, match="do not fit the configuration"):
        weights.load_generator(path, device="cpu")
    assert devices == ["meta"]


@pytest.mark.parametrize("meta_text, message", [
    ("{not json", "metadata is not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"config": {"model": {"base_width": -8}}}), "model.base_width must be at least 1"),
    (json.dumps({"config": {"model": {"depth": 0}}}), "model.depth must be at least 1"),
    (json.dumps({"nothing": 1}), "stored config is invalid"),
])
def test_malformed_checkpoint_metadata(meta_text, message, tmp_path):
    path = write_raw_checkpoint(tmp_path / "bad.safetensors", meta_text)
    with pytest.raises(CheckpointError, match=message):
        weights.load_generator(path, device="cpu")


def test_training_checkpoint_discriminators_checked(tmp_path):
    cfg = get_preset("tiny")
    model = ByeGlassesGAN(cfg, None)
    with torch.no_grad():
        next(model.disc_local.parameters()).fill_(float("inf"))
    path = tmp_path / "checkpoint.safetensors"
    save_training_state(path, model, {"step": 1, "epoch": 0, "position": 2, "images": 2})
    with pytest.raises(CheckpointError, match="disc_local.* NaN or infinite"):
        load_training_state(path, ByeGlassesGAN(cfg, None))
    # a generator-only file is not a training checkpoint
    weights.save_checkpoint(tmp_path / "model.safetensors", cfg, model.generator)
    with pytest.raises(CheckpointError, match="do not fit|not a training checkpoint"):
        load_training_state(tmp_path / "model.safetensors", ByeGlassesGAN(cfg, None))


# -- training runs (items 6, 7, 10) -------------------------------------------------------------

def tiny(steps, **fields):
    cfg = get_preset("tiny")
    cfg.train.steps = steps
    for k, v in fields.items():
        setattr(cfg.train, k, v)
    return cfg


def test_run_folder_usable_after_a_failure_before_the_first_checkpoint(astronaut_faces, tmp_path, monkeypatch):
    from byeglasses.model import gan

    out = tmp_path / "run"
    real_step = gan.ByeGlassesGAN.training_step

    def crash(self, batch, step=0):
        raise ByeGlassesError("simulated crash")

    monkeypatch.setattr(gan.ByeGlassesGAN, "training_step", crash)
    with pytest.raises(ByeGlassesError, match="simulated crash"):
        train(tiny(2), str(astronaut_faces), str(out), progress=False)
    assert (out / "config.json").is_file() and not (out / "checkpoint.safetensors").exists()
    monkeypatch.setattr(gan.ByeGlassesGAN, "training_step", real_step)
    assert train(tiny(2), str(astronaut_faces), str(out), resume=True, progress=False)["steps"] == 2
    steps = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_checkpoint_write_error_is_a_message_and_keeps_the_previous_one(astronaut_faces, tmp_path, capsys):
    out = tmp_path / "run"
    train(tiny(2, checkpoint_every=1, sample_every=100), str(astronaut_faces), str(out), progress=False)
    good = (out / "checkpoint.safetensors").read_bytes()
    with file_size_limit(len(good) // 2):
        code, err = run_cli(["train", "--faces", astronaut_faces, "--out", out, "--resume", "--steps", "4"], capsys)
    assert code == 2 and "cannot write the checkpoint at step 3" in err and ".tmp" not in err
    assert (out / "checkpoint.safetensors").read_bytes() == good
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_truncate_log_keeps_steps_up_to_the_checkpoint(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 8)) + '{"step": 8, "l1')
    _truncate_log(log, 5)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2, 3, 4, 5]


# -- synth (items 3, 4, 6) ----------------------------------------------------------------------

def synth(faces, out, capsys, *extra):
    return run_cli(["synth", faces, out, "--resolution", "64", *extra], capsys)


def test_synth_rerun_refused_then_overwrite_leaves_no_stale_pairs(astronaut_faces, tmp_path, capsys):
    out = tmp_path / "pairs"
    assert synth(astronaut_faces, out, capsys, "--count", "3")[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, err = synth(astronaut_faces, out, capsys, "--count", "2", "--seed", "1")
    assert code == 2 and "not empty" in err and "--overwrite" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert synth(astronaut_faces, out, capsys, "--count", "2", "--seed", "1", "--overwrite")[0] == 0
    listed = [json.loads(x)["file"] for x in (out / "manifest.jsonl").read_text().splitlines()]
    for sub in ("x", "y", "glasses-mask", "face-mask"):
        assert sorted(p.name for p in (out / sub).iterdir()) == listed == ["000000.png", "000001.png"]


@pytest.mark.parametrize("extra, message", [
    (["--image-probability", "7"], "--image-probability must be within 0..1"),
    (["--image-probability", "nan"], "--image-probability must be within 0..1"),
    (["--count", "0"], "--count must be from 1"),
    (["--seed", "-1"], "--seed must be from 0"),
])
def test_synth_bad_numbers_refused(extra, message, astronaut_faces, tmp_path, capsys):
    code, err = synth(astronaut_faces, tmp_path / "pairs", capsys, *extra)
    assert code == 2 and message in err
    assert not (tmp_path / "pairs").exists()


def test_synth_out_a_file_or_preview_a_folder(astronaut_faces, tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    code, err = synth(astronaut_faces, tmp_path / "file", capsys)
    assert code == 2 and "is a file" in err and (tmp_path / "file").read_text() == "keep me"
    code, err = synth(astronaut_faces, tmp_path / "pairs", capsys, "--preview", tmp_path)
    assert code == 2 and "--preview" in err and "is a folder" in err
    code, err = synth(astronaut_faces, tmp_path / "pairs", capsys, "--preview", astronaut_faces / "sheet.png")
    assert code == 2 and "inside the faces folder" in err


def test_synth_overwrite_that_fails_keeps_the_earlier_run(astronaut_faces, tmp_path, capsys):
    """--overwrite replaces an earlier run only once the new one is complete: a write error half-way
    leaves every earlier pair and the manifest as they were, and no staging folder behind."""
    out = tmp_path / "pairs"
    assert synth(astronaut_faces, out, capsys, "--count", "3")[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with file_size_limit(3000):
        code, err = synth(astronaut_faces, out, capsys, "--count", "2", "--seed", "1", "--overwrite")
    assert code == 1 and ".tmp" not in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]


def test_synth_glasses_image_bomb_is_skipped_by_name(astronaut_faces, tmp_path, capsys):
    from helpers import bomb_png

    (tmp_path / "glasses").mkdir()
    bomb_png(tmp_path / "glasses" / "bomb.png")
    code, err = synth(astronaut_faces, tmp_path / "pairs", capsys, "--glasses-images", tmp_path / "glasses")
    assert code == 2 and "skipping" in err and "bomb.png" in err and "decompression bomb" in err
    assert "no RGBA PNG glasses images" in err and not (tmp_path / "pairs").exists()


def test_synth_write_error_is_a_message(astronaut_faces, tmp_path, capsys):
    with file_size_limit(3000):
        code, err = synth(astronaut_faces, tmp_path / "pairs", capsys, "--count", "2")
    assert code == 1 and "pairs" in err and ".tmp" not in err
    assert not [p for p in tmp_path.rglob("*.tmp")] and not (tmp_path / "pairs").exists()


# -- remove: the detection-stage guard and settings (item 6) ------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 2, 3), (1, 500, 3)])
def test_remove_photo_too_small_for_a_face(shape, tiny_checkpoint, tmp_path, capsys):
    Image.fromarray(np.full(shape, 128, np.uint8)).save(tmp_path / "small.png")
    code, err = run_cli(["remove", tmp_path / "small.png", "-o", tmp_path / "o", "--checkpoint", tiny_checkpoint],
                        capsys)
    assert "no face found" in err and "RuntimeError" not in err and "dlib" not in err


def test_remove_negative_min_face(tiny_checkpoint, tmp_path, capsys):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    code, err = run_cli(["remove", tmp_path / "a.png", "-o", tmp_path / "o", "--min-face", "-5",
                         "--checkpoint", tiny_checkpoint], capsys)
    assert code == 2 and "--min-face must be positive" in err


# -- messages (item 11) -------------------------------------------------------------------------

def test_large_png_under_the_limit_is_not_called_a_bomb(tmp_path):
    """95 Mpixel is under the 100,000,000 limit: Pillow's own warning (from 89.5 Mpixel) must not
    refuse it. This one has no pixel data, so it fails as truncated, not as a bomb."""
    from byeglasses.errors import InputError
    from byeglasses.pipeline.imageio import read_image

    bomb_png(tmp_path / "big.png", side=9747)  # 95,004,009 pixels
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "big.png")
    assert "bomb" not in str(e.value) and "truncated" in str(e.value)
    bomb_png(tmp_path / "huge.png", side=12000)  # 144,000,000 pixels: over the limit
    with pytest.raises(InputError, match=r"12000x12000 = 144,000,000 pixels exceeds the limit of 100,000,000"):
        read_image(tmp_path / "huge.png")
