"""tools/gpu_continue/pack.py: what it refuses before it packs anything (the packing itself needs
the landmark detector and dlib's network and runs on a workstation with the data)."""

import subprocess
import sys
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1] / "tools" / "gpu_continue" / "pack.py"


def pack(*args, cwd):
    return subprocess.run([sys.executable, str(PACK), *map(str, args)], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("case", ["fv-dev", "missing", "reserved"])
def test_glasses_image_folders_are_checked_first(tmp_path, case):
    faces = tmp_path / "faces_in"
    faces.mkdir()
    images = {"fv-dev": tmp_path / "fv-dev" / "cutouts", "missing": tmp_path / "nowhere",
              "reserved": tmp_path / "real"}[case]
    if case != "missing":
        images.mkdir(parents=True)
    done = pack(faces, tmp_path / "no_checkpoint.safetensors", "--images", images, "--dst", tmp_path / "pack",
                cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert str(images) in done.stderr
    assert {"fv-dev": "never train on it", "missing": "not a folder",
            "reserved": "already uses"}[case] in done.stderr
    assert not (tmp_path / "pack").exists()


def test_join_puts_discriminators_beside_a_generator(tmp_path):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    remote = _remote()
    g = {"encoder.w": torch.arange(6, dtype=torch.float16).reshape(2, 3)}
    d = {"disc_global.w": torch.ones(2, dtype=torch.float16), "disc_local.w": torch.zeros(3, dtype=torch.float16)}
    save_file(g, str(tmp_path / "g.safetensors"), metadata={"meta": "config"})
    save_file(d, str(tmp_path / "d.safetensors"))
    assert remote.join(tmp_path / "g.safetensors", tmp_path / "d.safetensors", tmp_path / "init.safetensors") == 3
    out = load_file(str(tmp_path / "init.safetensors"))
    assert set(out) == {"encoder.w", "disc_global.w", "disc_local.w"}
    assert all(v.dtype == torch.float32 for v in out.values())
    assert torch.equal(out["encoder.w"], g["encoder.w"].float()) and torch.equal(out["disc_global.w"], torch.ones(2))
    with safe_open(str(tmp_path / "init.safetensors"), "pt") as f:
        assert f.metadata() == {"meta": "config"}
    # a whole training checkpoint: only its discriminators are taken, never its generator
    whole = {**d, "encoder.w": torch.full((2, 3), 7.0), "opt_g.state": torch.zeros(1)}
    save_file(whole, str(tmp_path / "whole.safetensors"))
    assert remote.join(tmp_path / "g.safetensors", tmp_path / "whole.safetensors", tmp_path / "init2.safetensors") == 3
    out = load_file(str(tmp_path / "init2.safetensors"))
    assert set(out) == {"encoder.w", "disc_global.w", "disc_local.w"}
    assert torch.equal(out["encoder.w"], g["encoder.w"].float())
    with pytest.raises(SystemExit, match="holds no discriminators"):
        remote.join(tmp_path / "g.safetensors", tmp_path / "g.safetensors", tmp_path / "init3.safetensors")


@pytest.mark.parametrize("every,offset", [(8, 8), (8, -1), (0, 0)])
def test_offset_and_every_are_checked_first(tmp_path, every, offset):
    faces = tmp_path / "faces_in"
    faces.mkdir()
    done = pack(faces, tmp_path / "no_checkpoint.safetensors", "--every", every, "--offset", offset,
                "--dst", tmp_path / "pack", cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert ("--offset" if every else "--every") in done.stderr
    assert not (tmp_path / "pack").exists()


def _remote():
    import importlib.util

    spec = importlib.util.spec_from_file_location("remote", PACK.parent / "remote.py")
    remote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(remote)
    return remote


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_pack_brings_back_the_average_and_the_generator_as_trained(astronaut_faces, tmp_path, ema):
    """remote.py pack: DST.safetensors is model.safetensors (with train.ema, the moving average);
    with an average, DST_raw.safetensors is the generator as trained, from the training checkpoint."""
    import torch
    from safetensors.torch import load_file

    from byeglasses.model.weights import read_checkpoint
    from byeglasses.training.loop import train
    from helpers import tiny

    run = tmp_path / "run"
    train(tiny(steps=2, ema=ema), str(astronaut_faces), str(run), progress=False)
    _remote().pack_run(run, str(tmp_path / "back"), discs=False)
    ckpt, _ = read_checkpoint(run / "checkpoint.safetensors")
    model, _ = read_checkpoint(run / "model.safetensors")
    packed = load_file(str(tmp_path / "back.safetensors"))
    assert all(torch.equal(v, model[k].half()) for k, v in packed.items())
    assert (tmp_path / "back_raw.safetensors").is_file() == (ema > 0)
    if ema:
        raw = load_file(str(tmp_path / "back_raw.safetensors"))
        assert all(torch.equal(v, ckpt[k].half()) for k, v in raw.items())
        assert not all(torch.equal(raw[k], packed[k]) for k in raw)
    assert not (tmp_path / "back_discs.safetensors").exists()
