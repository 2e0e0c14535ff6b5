"""The training levers for real photos: start from a checkpoint (--init), thin metal and rimless
frames in the synthesis (--thin-frames), and real glasses photos with an adversarial and an
identity term (--real-glasses, loss.lambda_gan_real / lambda_id_real)."""

import json

import numpy as np
import pytest
import torch

from byeglasses import cli
from byeglasses.errors import ByeGlassesError, InputError, SettingError
from byeglasses.model.gan import REAL_TERMS, ByeGlassesGAN
from byeglasses.model.weights import read_checkpoint
from byeglasses.synth.dataset import RealPhotoDataset
from byeglasses.synth.glasses import GlassesDistribution, MixedDistribution
from byeglasses.training.loop import Run, train

from helpers import tiny


def test_real_terms_and_their_photos_go_together():
    cfg = tiny(steps=3)
    cfg.loss.lambda_gan_real = 1.0
    with pytest.raises(SettingError, match="train.real_glasses"):
        cfg.validate()
    cfg = tiny(real_glasses="somewhere")
    with pytest.raises(SettingError, match="are both 0"):
        cfg.validate()


def test_training_step_with_real_photos_reports_and_uses_the_real_terms():
    torch.manual_seed(0)
    cfg = tiny(steps=3)
    cfg.loss.lambda_gan_real, cfg.loss.lambda_id = 1.0, 0.0
    cfg.train.real_glasses = "photos"
    model = ByeGlassesGAN(cfg)
    r = cfg.model.resolution
    batch = {"x": torch.rand(2, 3, r, r) * 2 - 1, "y": torch.rand(2, 3, r, r) * 2 - 1,
             "mask": (torch.rand(2, 2, r, r) > 0.5).float()}
    plain = model.training_step(dict(batch))
    assert not set(REAL_TERMS) & set(plain)  # no real photos in the batch: no real terms
    before = [p.detach().clone() for p in model.disc_global.parameters()]
    terms = model.training_step({**batch, "x_real": torch.rand(3, 3, r, r) * 2 - 1})
    assert set(REAL_TERMS) <= set(terms) and all(torch.isfinite(v) for v in terms.values())
    assert terms["d_real"] > 0 and terms["g_real"] > 0 and terms["id_real"] == 0  # no identity network here
    assert any(not torch.equal(a, b) for a, b in zip(before, model.disc_global.parameters()))


def test_real_photo_dataset(tmp_path, astronaut_faces):
    import shutil

    for p in sorted(astronaut_faces.iterdir())[:3]:
        shutil.copy(p, tmp_path / p.name)
    photos = RealPhotoDataset(tmp_path, 32, seed=1)
    item = photos[0]["x_real"]
    assert len(photos) == 3 and item.dtype == torch.uint8 and item.shape == (3, 32, 32)
    assert torch.equal(photos[0]["x_real"], item)  # the same item within an epoch
    flips = [torch.equal(photos[i]["x_real"], torch.flip(photos[i]["x_real"], [2])) for i in range(3)]
    assert not any(flips)  # (the crops are not symmetric)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png"):
        RealPhotoDataset(tmp_path, 32)
    with pytest.raises(InputError, match="not a folder"):
        RealPhotoDataset(tmp_path / "missing", 32)


def test_thin_frames_mix():
    rng = np.random.default_rng(0)
    thin = [GlassesDistribution.thin().sample(rng) for _ in range(100)]
    assert all(p.frame == "metal" and p.frame_thickness <= 0.022 for p in thin)
    assert sum(p.shape == "rimless" for p in thin) > 15
    mixed = MixedDistribution(GlassesDistribution(), GlassesDistribution.thin(), 0.5)
    rng = np.random.default_rng(1)
    frames = [mixed.sample(rng).frame for _ in range(400)]
    assert 0.5 < frames.count("metal") / 400 < 0.85  # half thin, plus the ordinary mix's metal share
    # a second share: dark lenses with a reflected scene
    mixed = MixedDistribution(GlassesDistribution(), GlassesDistribution.thin(), 0.25, GlassesDistribution.dark(), 0.5)
    rng = np.random.default_rng(2)
    drawn = [mixed.sample(rng) for _ in range(400)]
    assert 0.4 < sum(p.scene > 0 for p in drawn) / 400 < 0.5  # half dark, most of them with a scene
    assert 0.2 < sum(p.frame == "metal" and p.frame_thickness <= 0.022 and p.scene == 0 for p in drawn) / 400 < 0.35
    with pytest.raises(ValueError, match="at most 1"):
        MixedDistribution(GlassesDistribution(), GlassesDistribution.thin(), 0.6, GlassesDistribution.dark(), 0.6)


def test_init_starts_from_the_checkpoints_weights(astronaut_faces, tmp_path):
    first = tmp_path / "first"
    train(tiny(steps=2), str(astronaut_faces), str(first), progress=False)
    start, _ = read_checkpoint(first / "checkpoint.safetensors")
    # a new run from it starts with every network weight the checkpoint's
    cfg = tiny(steps=1, init=str(first / "checkpoint.safetensors"))
    model = Run(cfg, tmp_path / "second", torch.device("cpu"), 0, 1).model(None)
    own = {f"{name}.{k}": v for name in ("generator", "disc_global", "disc_local")
           for k, v in getattr(model, name).state_dict().items()}
    stored = {k: v for k, v in start.items() if k.split(".")[0] in ("generator", "disc_global", "disc_local")}
    assert set(own) == set(stored)
    assert all(torch.equal(own[k].float(), stored[k].float()) for k in own)
    # and trains from there
    train(cfg, str(astronaut_faces), str(tmp_path / "second"), progress=False)
    assert (tmp_path / "second" / "model.safetensors").is_file()
    # a checkpoint of another size is refused by name, before any step
    wide = tiny(steps=1, init=str(first / "checkpoint.safetensors"))
    wide.model.base_width *= 2
    with pytest.raises(ByeGlassesError, match="do not fit"):
        train(wide, str(astronaut_faces), str(tmp_path / "third"), progress=False)


def test_train_command_with_every_lever(astronaut_faces, tmp_path, capsys):
    first = tmp_path / "first"
    train(tiny(steps=1), str(astronaut_faces), str(first), progress=False)
    out = tmp_path / "run"
    rc = cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(out), "--steps", "2",
                   "--init", str(first / "checkpoint.safetensors"), "--real-glasses", str(astronaut_faces),
                   "--thin-frames", "0.5", "--dark-glasses", "0.25", "--set", "loss.lambda_gan_real=0.5",
                   "--set", "train.log_every=1"])
    assert rc == 0
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and all("g_real" in r and "d_real" in r for r in records)
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["thin_frames"] == 0.5 and config["loss"]["lambda_gan_real"] == 0.5
    assert config["train"]["dark_glasses"] == 0.25
    assert cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(tmp_path / "x"),
                     "--thin-frames", "2"]) == 2
    assert "--thin-frames" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(tmp_path / "x"),
                     "--thin-frames", "0.6", "--dark-glasses", "0.6"]) == 2
    err = capsys.readouterr().err
    assert "--dark-glasses" in err and "at most 1" in err and not (tmp_path / "x").exists()
