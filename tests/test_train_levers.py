"""The training levers for real photos: start from a checkpoint (--init), thin metal and rimless
frames in the synthesis (--thin-frames), and real glasses photos with an adversarial and an
identity term, a term against the frame lines left in their outputs, and one for keeping what the lens
blend keeps of them (--real-glasses, loss.lambda_gan_real / lambda_id_real / lambda_lines_real /
lambda_keep_real)."""

import json

import cv2
import numpy as np
import pytest
import torch

from byeglasses import cli
from byeglasses.errors import ByeGlassesError, InputError, SettingError
from byeglasses.model.gan import LINES_WIDTH, REAL_TERMS, ByeGlassesGAN
from byeglasses.model.losses import frame_line_targets, frame_lines_loss, keep_loss, keep_targets, without_lines
from byeglasses.pipeline.geometry import thin_strokes
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
    with pytest.raises(SettingError, match="are all 0"):
        cfg.validate()


def _model_with_real_term(term: str, weight: float):
    """A tiny GAN with one real-photo term on (and no identity network), its side, and a synthetic batch."""
    torch.manual_seed(0)
    cfg = tiny(steps=3)
    setattr(cfg.loss, term, weight)
    cfg.loss.lambda_id = 0.0
    cfg.train.real_glasses = "photos"
    r = cfg.model.resolution
    batch = {"x": torch.rand(2, 3, r, r) * 2 - 1, "y": torch.rand(2, 3, r, r) * 2 - 1,
             "mask": (torch.rand(2, 2, r, r) > 0.5).float()}
    return ByeGlassesGAN(cfg), r, batch


def test_training_step_with_real_photos_reports_and_uses_the_real_terms():
    model, r, batch = _model_with_real_term("lambda_gan_real", 1.0)
    plain = model.training_step(dict(batch))
    assert not set(REAL_TERMS) & set(plain)  # no real photos in the batch: no real terms
    before = [p.detach().clone() for p in model.disc_global.parameters()]
    terms = model.training_step({**batch, "x_real": torch.rand(3, 3, r, r) * 2 - 1})
    assert set(REAL_TERMS) <= set(terms) and all(torch.isfinite(v) for v in terms.values())
    assert terms["d_real"] > 0 and terms["g_real"] > 0 and terms["id_real"] == 0  # no identity network here
    assert terms["lines_real"] == 0  # its weight is 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.disc_global.parameters()))


def _ringed_face(r=64):
    """(1, 3, r, r) in [-1, 1]: flat skin with a thin dark ring (a lens rim) around an eye, the
    ring's pixels, and that eye's six landmarks (the other eye far away)."""
    import cv2

    photo = np.full((r, r, 3), 170, np.uint8)
    cv2.circle(photo, (20, 30), 12, (60, 50, 40), 1)
    ring = np.zeros((r, r), np.uint8)
    cv2.circle(ring, (20, 30), 12, 1, 1)
    eye = np.array([[15, 30], [17, 28], [23, 28], [25, 30], [23, 32], [17, 32]], np.float32)
    other = eye + [30, 0]
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    return x, torch.from_numpy(ring.astype(bool)), torch.from_numpy(np.concatenate([eye, other]))[None]


def test_without_lines_fills_thin_strokes_from_their_sides():
    x, ring, _ = _ringed_face()
    clean = without_lines(x, LINES_WIDTH)
    levels = (clean + 1) * 127.5
    assert (levels[0, :, ring] - 170).abs().max() < 1  # the rim is skin again
    assert torch.equal(clean[0, :, ~ring][:, :100], x[0, :, ~ring][:, :100])  # flat skin stays
    photo = ((x[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    left = thin_strokes(((clean[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8), LINES_WIDTH)
    assert (left > 45).sum() <= 4  # (where the ring turns, at 3 px windows)
    assert thin_strokes(photo, LINES_WIDTH)[ring.numpy()].mean() > 50


def test_frame_line_targets_and_loss():
    x, ring, eyes = _ringed_face()
    glasses = torch.zeros(1, 64, 64)
    glasses[0, 16:45, 6:35] = 1.0  # the lens and its rim
    targets = frame_line_targets(x, glasses, eyes)
    assert targets.shape == (1, 1, 64, 64) and set(targets.unique().tolist()) == {0.0, 1.0}
    assert targets[0, 0][ring].float().mean() > 0.9  # the rim ...
    assert targets[0, 0, 28:33, 15:26].sum() == 0  # ... but not the eye inside it
    assert frame_line_targets(x, glasses, torch.full_like(eyes, float("nan"))).sum() == 0  # no eyes found
    assert frame_line_targets(x, torch.zeros_like(glasses), eyes).sum() == 0  # no glasses predicted
    # the loss: how far the output's target pixels are from the output with its lines filled in
    assert frame_lines_loss(x, targets, LINES_WIDTH) > 0.2  # the rim kept (the targets are grown by a pixel)
    assert frame_lines_loss(without_lines(x, LINES_WIDTH), targets, LINES_WIDTH) < 0.02  # gone (but where it turns)
    assert frame_lines_loss(torch.full_like(x, 0.3), targets, LINES_WIDTH) == 0
    drawn = x.clone().requires_grad_(True)
    frame_lines_loss(drawn, targets, LINES_WIDTH).backward()
    grad = drawn.grad[0].sum(0)
    assert (grad[ring] < 0).all()  # brightening the dark rim lowers it ...
    assert (grad[targets[0, 0] == 0] == 0).all()  # ... and nothing outside the lines is asked for


def test_keep_targets_and_loss():
    x, ring, eyes = _ringed_face()
    glasses = torch.zeros(1, 64, 64)
    glasses[0, 16:45, 6:35] = 1.0  # the lens and its rim
    lines = frame_line_targets(x, glasses, eyes)
    # an output that has taken the rim off, drawn the skin a little darker around the glasses (8
    # levels: within the blend's limits) and a dark patch where the photo has none (60 levels: not)
    y_hat = torch.where(ring, torch.full_like(x, 170 / 127.5 - 1), x) - 8 / 127.5
    y_hat[:, :, 50:56, 40:46] = 110 / 127.5 - 1
    target, weight = keep_targets(x, y_hat, glasses, eyes, lines)
    assert target.shape == x.shape and weight.shape == (1, 1, 64, 64)
    assert 0 <= weight.min() and weight.max() <= 1
    assert weight[0, 0][ring].max() == 0  # the rim is not kept ...
    assert weight[0, 0, 29:32, 18:23].min() > 0.9  # ... the eye inside it is,
    assert weight[0, 0, 16:45, 36:40].mean() > 0.5  # and the skin beside the glasses, where ŷ is close,
    assert weight[0, 0, 52:54, 42:44].max() == 0  # but not where ŷ changed it much,
    assert weight[0, 0, 0:4, 50:64].max() == 0  # nor far from the glasses
    beside = weight[0, 0] > 0.5
    beside[16:45, 6:35] = False
    assert ((target - x)[0][:, beside].abs().max() < 1e-6)  # beside the glasses the target is the photo itself
    assert keep_targets(x, y_hat, glasses, torch.full_like(eyes, float("nan")), lines)[1].sum() == 0  # no eyes
    # inside the lens the photo is brought to ŷ's brightness (the gain map), beside it not
    inside = torch.zeros(64, 64, dtype=torch.bool)
    inside[16:45, 6:35] = weight[0, 0, 16:45, 6:35] > 0.5
    assert (target - y_hat)[0][:, inside].abs().mean() < 2 / 127.5
    # the loss: L1 over the kept pixels, 0 when the output is the target there
    assert keep_loss(y_hat, target, weight) > 0.02
    assert keep_loss(target, target, weight) == 0
    drawn = y_hat.clone().requires_grad_(True)
    keep_loss(drawn, target, weight).backward()
    assert (drawn.grad[0].abs().sum(0)[weight[0, 0] == 0] == 0).all()  # nothing asked where nothing is kept


def test_training_step_with_the_keep_term():
    model, r, batch = _model_with_real_term("lambda_keep_real", 10.0)
    x, _, eyes = _ringed_face(r)
    with pytest.raises(ValueError, match="eyes_real"):
        model.training_step({**batch, "x_real": x})
    terms = model.training_step({**batch, "x_real": x, "eyes_real": eyes})
    # the untrained generator's predicted glasses and output decide what is kept: only check the
    # term is there, finite, and alone
    assert terms["lines_real"] == 0 and terms["g_real"] == 0 and torch.isfinite(terms["keep_real"])


def test_training_step_with_the_frame_lines_term(monkeypatch):
    import byeglasses.model.gan as gan

    model, r, batch = _model_with_real_term("lambda_lines_real", 10.0)
    x, _, eyes = _ringed_face(r)
    batch["x_real"] = x
    with pytest.raises(ValueError, match="eyes_real"):
        model.training_step(dict(batch))
    seen = {}

    def targets(x_real, glasses, eyes_real):  # the untrained mask finds no glasses: the whole crop is a line
        seen.update(glasses=glasses, eyes=eyes_real)
        return torch.ones(x_real.shape[0], 1, *x_real.shape[-2:])

    monkeypatch.setattr(gan, "frame_line_targets", targets)
    terms = model.training_step({**batch, "eyes_real": eyes})
    assert terms["d_real"] == 0 and terms["g_real"] == 0 and terms["lines_real"] > 0
    assert seen["glasses"].shape == (1, r, r) and torch.equal(seen["eyes"], eyes)


def test_real_photo_dataset(tmp_path, astronaut_faces):
    import shutil

    for p in sorted(astronaut_faces.iterdir())[:3]:
        shutil.copy(p, tmp_path / p.name)
    photos = RealPhotoDataset(tmp_path, 32, seed=1)
    item = photos[0]["x_real"]
    assert len(photos) == 3 and item.dtype == torch.uint8 and item.shape == (3, 32, 32)
    assert "eyes_real" not in photos[0]
    # with eyes: each eye's landmarks at the item's scale, mirrored with it
    seen = RealPhotoDataset(tmp_path, 64, seed=1, eyes=True)
    eyes = {}
    for epoch in range(8):
        seen.set_epoch(epoch)
        got = seen[0]
        eyes.setdefault(tuple(got["x_real"][:, 20, :].flatten()[:6].tolist()), got["eyes_real"])
    assert len(eyes) == 2  # both orientations were drawn
    a, b = eyes.values()
    assert a.shape == (12, 2) and torch.isfinite(a).all() and 8 < a[:, 1].mean() < 40
    assert torch.allclose(torch.cat([b[6:], b[:6]]) * torch.tensor([-1.0, 1.0]) + torch.tensor([63.0, 0.0]), a)
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
    cuts = tmp_path / "cuts"  # one glasses image, as `cut-glasses` writes them
    cuts.mkdir()
    rgba = np.zeros((100, 300, 4), np.uint8)
    for cx in (75, 225):
        cv2.ellipse(rgba, (cx, 45), (60, 35), 0, 0, 360, (30, 30, 30, 255), 6)
    cv2.imwrite(str(cuts / "g.png"), rgba)
    rc = cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(out), "--steps", "2",
                   "--glasses-images", str(cuts), "--image-probability", "0.5",
                   "--init", str(first / "checkpoint.safetensors"), "--real-glasses", str(astronaut_faces),
                   "--thin-frames", "0.5", "--dark-glasses", "0.25", "--set", "loss.lambda_gan_real=0.5", "--set", "loss.lambda_lines_real=1", "--set", "loss.lambda_keep_real=1",
                   "--set", "train.log_every=1"])
    assert rc == 0
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and all("g_real" in r and "lines_real" in r and "keep_real" in r for r in records)
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["thin_frames"] == 0.5 and config["loss"]["lambda_gan_real"] == 0.5
    assert config["train"]["dark_glasses"] == 0.25
    assert config["train"]["glasses_images"] == str(cuts) and config["train"]["image_probability"] == 0.5
    assert cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(tmp_path / "x"),
                     "--image-probability", "0.5"]) == 2
    assert "--image-probability" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(tmp_path / "x"),
                     "--glasses-images", str(tmp_path / "nowhere"), "--image-probability", "0.5"]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(tmp_path / "x"),
                     "--thin-frames", "2"]) == 2
    assert "--thin-frames" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "tiny", "--faces", str(astronaut_faces), "--out", str(tmp_path / "x"),
                     "--thin-frames", "0.6", "--dark-glasses", "0.6"]) == 2
    err = capsys.readouterr().err
    assert "--dark-glasses" in err and "at most 1" in err and not (tmp_path / "x").exists()
