import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from byeglasses import cli
from byeglasses.model.weights import read_checkpoint
from byeglasses.model.config import get_preset
from byeglasses.errors import ByeGlassesError
from byeglasses.training.loop import train

from helpers import tiny

REPO = Path(__file__).resolve().parents[1]




def generator_tensors(path):
    tensors, meta = read_checkpoint(path)
    return {k: v for k, v in tensors.items() if k.startswith("generator.")}, meta


def test_run_folder_contents(astronaut_faces, tmp_path):
    out = tmp_path / "run"
    summary = train(tiny(steps=5), str(astronaut_faces), str(out), progress=False)
    assert summary["steps"] == 5 and math.isfinite(summary["l1_global"])
    assert json.loads((out / "config.json").read_text())["preset"] == "tiny"
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert all(len(r["indices"]) == 1 and len(r["indices"][0]) == 2 for r in records)  # one process, batch 2
    assert {"d_global", "d_local", "g_global", "g_local", "l1_global", "l1_local", "seg", "id"} <= set(records[0])
    assert list((out / "samples").glob("*.png"))
    _, meta = generator_tensors(out / "checkpoint.safetensors")
    assert meta["train_state"]["step"] == 5


def test_resume_continues_exactly(astronaut_faces, tmp_path):
    torch.manual_seed(0)
    train(tiny(steps=8), str(astronaut_faces), str(tmp_path / "straight"), progress=False)
    train(tiny(steps=4), str(astronaut_faces), str(tmp_path / "split"), progress=False)
    # resume from the stored config, with the total raised to 8 steps
    cfg = tiny(steps=8)
    train(cfg, str(astronaut_faces), str(tmp_path / "split"), resume=True, progress=False)
    a, meta_a = generator_tensors(tmp_path / "straight" / "model.safetensors")
    b, _ = generator_tensors(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = [json.loads(x)["l1_global"] for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x)["l1_global"] for x in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert log_a == log_b


def test_resume_takes_the_learning_rates_of_its_config(astronaut_faces, tmp_path, monkeypatch):
    """A run resumed with other learning rates (`--set optim.lr_g=...`) trains at those, not at the
    rates stored with the optimizer's state in the checkpoint; the moments are the checkpoint's."""
    from byeglasses.model import gan
    from byeglasses.training.state import optimizer_to_tensors

    out = tmp_path / "run"
    train(tiny(steps=2), str(astronaut_faces), str(out), progress=False)
    tensors, meta = read_checkpoint(out / "checkpoint.safetensors")
    seen = []
    real_step = gan.ByeGlassesGAN.training_step

    def watching(self, batch, step=0):
        if not seen:
            seen.append(([g["lr"] for g in self.opt_g.param_groups], [g["lr"] for g in self.opt_d.param_groups],
                         {k: v.clone() for k, v in optimizer_to_tensors(self.opt_g, "opt_g")[0].items()}))
        return real_step(self, batch, step)

    monkeypatch.setattr(gan.ByeGlassesGAN, "training_step", watching)
    cfg = tiny(steps=3)
    cfg.optim.lr_g, cfg.optim.lr_d = 3e-5, 2e-5
    train(cfg, str(astronaut_faces), str(out), resume=True, progress=False)
    lr_g, lr_d, moments = seen[0]
    assert set(lr_g) == {3e-5} and set(lr_d) == {2e-5}
    assert moments.keys() == {k for k in tensors if k.startswith("opt_g.")}
    assert all(torch.equal(moments[k], tensors[k]) for k in moments)


def test_ema_averages_the_generator_step_by_step_and_resumes_exactly(astronaut_faces, tmp_path, monkeypatch):
    """train.ema: after every step ema ← d·ema + (1 − d)·generator, starting from the generator's
    first weights; the training checkpoint keeps both, model.safetensors is the average, and a
    resumed run ends bit-identical to one run straight."""
    from byeglasses.model import gan

    seen = []
    real_step = gan.ByeGlassesGAN.training_step

    def recording(self, batch, step=0):
        if not seen:
            seen.append({k: v.detach().clone() for k, v in self.generator.state_dict().items()})
        terms = real_step(self, batch, step)
        seen.append({k: v.detach().clone() for k, v in self.generator.state_dict().items()})
        return terms

    monkeypatch.setattr(gan.ByeGlassesGAN, "training_step", recording)
    train(tiny(steps=3, ema=0.5), str(astronaut_faces), str(tmp_path / "ema"), progress=False)
    monkeypatch.setattr(gan.ByeGlassesGAN, "training_step", real_step)
    expected = dict(seen[0])
    for weights in seen[1:]:
        expected = {k: 0.5 * expected[k] + 0.5 * weights[k] for k in expected}
    tensors, _ = read_checkpoint(tmp_path / "ema" / "checkpoint.safetensors")
    model, _ = generator_tensors(tmp_path / "ema" / "model.safetensors")
    for k, v in expected.items():
        assert torch.allclose(tensors[f"generator_ema.{k}"], v, atol=1e-6)
        assert torch.equal(model[f"generator.{k}"], tensors[f"generator_ema.{k}"])
    assert not all(torch.equal(tensors[f"generator.{k}"], expected[k]) for k in expected)  # the raw one trains on

    torch.manual_seed(0)
    train(tiny(steps=6, ema=0.9), str(astronaut_faces), str(tmp_path / "straight"), progress=False)
    train(tiny(steps=3, ema=0.9), str(astronaut_faces), str(tmp_path / "split"), progress=False)
    train(tiny(steps=6, ema=0.9), str(astronaut_faces), str(tmp_path / "split"), resume=True, progress=False)
    a, _ = generator_tensors(tmp_path / "straight" / "model.safetensors")
    b, _ = generator_tensors(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_turned_on_at_a_resume_starts_from_the_generator(astronaut_faces, tmp_path, capsys):
    out = tmp_path / "run"
    train(tiny(steps=2), str(astronaut_faces), str(out), progress=False)
    assert not any(k.startswith("generator_ema.") for k in read_checkpoint(out / "checkpoint.safetensors")[0])
    train(tiny(steps=3, ema=0.99), str(astronaut_faces), str(out), resume=True, progress=False)
    assert "holds no moving average: it starts from the generator at this step" in capsys.readouterr().out
    tensors, _ = read_checkpoint(out / "checkpoint.safetensors")
    assert any(k.startswith("generator_ema.") for k in tensors)
    with pytest.raises(Exception, match="train.ema"):
        tiny(steps=2, ema=1.0).validate()


def test_non_finite_loss_stops_and_keeps_last_checkpoint(astronaut_faces, tmp_path, monkeypatch):
    from byeglasses.model import gan

    out = tmp_path / "run"
    train(tiny(steps=5), str(astronaut_faces), str(out), progress=False)
    good = (out / "checkpoint.safetensors").read_bytes()
    real_step = gan.ByeGlassesGAN.training_step

    def exploding(self, batch, step=0):
        terms = real_step(self, batch, step)
        terms["l1_local"] = float("nan")
        return terms

    monkeypatch.setattr(gan.ByeGlassesGAN, "training_step", exploding)
    with pytest.raises(ByeGlassesError, match=r"step 6: loss term l1_local is not finite"):
        train(tiny(steps=10), str(astronaut_faces), str(out), resume=True, progress=False)
    assert (out / "checkpoint.safetensors").read_bytes() == good


def test_non_finite_loss_found_between_log_records_names_its_step(astronaut_faces, tmp_path, monkeypatch):
    """Loss terms are read every log_every steps only: a NaN in between is still caught, named with
    the step it happened at, and caught before a checkpoint could save the weights it touched."""
    from byeglasses.model import gan

    out = tmp_path / "run"
    train(tiny(steps=5, log_every=100), str(astronaut_faces), str(out), progress=False)
    good = (out / "checkpoint.safetensors").read_bytes()
    real_step = gan.ByeGlassesGAN.training_step

    def exploding(self, batch, step=0):
        terms = real_step(self, batch, step)
        if step >= 6:  # the 7th step on
            terms["seg"] = terms["seg"] * float("nan")  # a tensor on the device, as the real ones
        return terms

    monkeypatch.setattr(gan.ByeGlassesGAN, "training_step", exploding)
    with pytest.raises(ByeGlassesError, match=r"step 7: loss term seg is not finite \(seg=nan, found at step 10"):
        train(tiny(steps=12, log_every=100), str(astronaut_faces), str(out), resume=True, progress=False)
    assert (out / "checkpoint.safetensors").read_bytes() == good


def test_workers_from_the_cores_unless_told(monkeypatch):
    from byeglasses.cli.train import apply_overrides

    cfg = get_preset("cpu")
    assert cfg.train.num_workers == "auto"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert cfg.train.workers() == 14 and cfg.train.workers(processes=2) == 6
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert cfg.train.workers() == 1
    assert apply_overrides(cfg, ["train.num_workers=3"]).train.workers() == 3
    with pytest.raises(ByeGlassesError, match="num_workers"):
        apply_overrides(cfg, ["train.num_workers=many"])


def test_kill_during_save_leaves_previous_checkpoint(astronaut_faces, tmp_path):
    """A training process killed (SIGKILL) while it writes a checkpoint leaves the last
    complete one readable, and --resume continues from it."""
    out = tmp_path / "run"
    script = f"""
import os, sys, safetensors.torch as st
sys.path.insert(0, {str(REPO)!r})
from byeglasses.model.config import get_preset
from byeglasses.training.loop import train
real = st.save_file
calls = []
def save_then_die(tensors, path, metadata=None):
    calls.append(path)
    if len(calls) == 2:  # the second checkpoint, at step 6
        with open(path, "wb") as f:
            f.write(b"partial")
        os.kill(os.getpid(), 9)
    real(tensors, path, metadata=metadata)
st.save_file = save_then_die
import byeglasses.model.weights as c
c.save_file = save_then_die
cfg = get_preset("tiny"); cfg.train.steps = 20; cfg.train.checkpoint_every = 3
train(cfg, {str(astronaut_faces)!r}, {str(out)!r}, progress=False)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    _, meta = generator_tensors(out / "checkpoint.safetensors")
    assert meta["train_state"]["step"] == 3
    summary = train(tiny(steps=5), str(astronaut_faces), str(out), resume=True, progress=False)
    assert summary["steps"] == 5
    # the log is cut back to the checkpoint's step: steps 4-6 of the killed run are not repeated
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("argv, message", [
    (["--faces", "/nonexistent/faces"], "no such folder"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--set", "loss.nope=1"], "expected SECTION.FIELD=VALUE"),
    (["--preset", "tiny", "--set", "loss.lambda_id=1", "--identity", "/nonexistent/id.safetensors"], "no such file"),
])
def test_bad_arguments_fail_before_work(argv, message, astronaut_faces, tmp_path, capsys):
    args = ["train", "--faces", str(astronaut_faces), "--out", str(tmp_path / "r")] + argv
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_empty_faces_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["train", "--faces", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "no images" in capsys.readouterr().err


def test_torchrun_two_processes_on_cpu(astronaut_faces, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "byeglasses", "train", "--preset", "tiny", "--faces", str(astronaut_faces),
           "--out", str(out), "--steps", "3", "--batch-size", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the log records the faces each process trained on: different ones, none twice in the epoch
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    seen = [{i for r in records for i in r["indices"][rank]} for rank in (0, 1)]
    assert len(records) == 3 and seen[0] and seen[1] and not seen[0] & seen[1]
    # the replicas ended with the same weights, and the checkpoint holds them
    _, meta = generator_tensors(out / "checkpoint.safetensors")
    digests = meta["train_state"]["replica_weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]
