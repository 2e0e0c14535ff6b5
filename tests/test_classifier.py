"""The glasses classifier: its files, and its training on synthesized and real glasses."""

import numpy as np
import pytest
import torch

from byeglasses.errors import CheckpointError
from byeglasses.model.classifier import (GlassesClassifier, GlassesJudge, eye_band, load_classifier,
                                         save_classifier)


def test_shipped_classifier_loads_and_takes_bands():
    judge = GlassesJudge()
    bands = np.random.default_rng(0).integers(0, 256, (3, 48, 96, 3), dtype=np.uint8)
    p = judge.probability_bands(bands)
    assert p.shape == (3,) and ((0 <= p) & (p <= 1)).all()
    crops = np.random.default_rng(1).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    assert judge.probability_crops(crops).shape == (2,)
    assert eye_band(crops[0]).shape == (48, 96, 3)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GlassesClassifier(8).eval()
    path = tmp_path / "c.safetensors"
    save_classifier(model, path)
    x = torch.randn(2, 3, 48, 96)
    with torch.no_grad():
        assert torch.allclose(load_classifier(path)(x), model(x), atol=1e-6)


def test_wrong_files_are_refused(tmp_path, tiny_checkpoint):
    with pytest.raises(CheckpointError, match="no such"):
        load_classifier(tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a safetensors"):
        load_classifier(junk)
    with pytest.raises(CheckpointError, match="not a glasses-classifier"):
        load_classifier(tiny_checkpoint)


def test_train_classifier_command(astronaut_faces, tmp_path, capsys):
    """End to end on six astronaut crops: synthesized glasses, 'real' glasses photos (more drawn
    glasses), a written classifier that loads, and held-out figures."""
    import cv2

    from byeglasses.cli import main
    from byeglasses.synth.cache import landmark_cache, read_rgb
    from byeglasses.synth.render import synthesize

    real = tmp_path / "real"
    real.mkdir()
    names = sorted(p.name for p in astronaut_faces.iterdir())
    cache = landmark_cache(astronaut_faces, names=names, progress=False)
    for i, n in enumerate(names):
        s = synthesize(read_rgb(astronaut_faces / n), cache.landmarks[n], 100 + i)
        cv2.imwrite(str(real / f"r{i}.png"), cv2.cvtColor(s.x, cv2.COLOR_RGB2BGR))
    excluded = tmp_path / "evalset"
    excluded.mkdir()
    (excluded / "r5.png").write_bytes((real / "r5.png").read_bytes())
    out = tmp_path / "cls.safetensors"
    rc = main(["train-classifier", "--faces", str(astronaut_faces), "--real", str(real), "--exclude", str(excluded),
               "--out", str(out), "--count", "6", "--copies", "2", "--epochs", "1"])
    assert rc == 0
    load_classifier(out)
    text = capsys.readouterr().out
    assert '"real_photos": 4' in text  # 5 usable real photos (one excluded), 15% of them held out
    assert main(["train-classifier", "--faces", str(astronaut_faces), "--out", str(out)]) == 2


def test_faded_positives_keep_part_of_the_glasses(astronaut_faces, monkeypatch):
    """--faded: a share of the synthesized positives keeps only 20-60% of the glasses."""
    import byeglasses.training.classifier as training

    monkeypatch.setattr(training, "jittered_band", lambda rgb, landmarks, rng: rgb)  # whole faces, no jitter
    full, plain = training.synthetic_bands(astronaut_faces, 6, 0, progress=False)
    faded, plain2 = training.synthetic_bands(astronaut_faces, 6, 0, progress=False, faded=1.0)
    assert np.array_equal(plain, plain2)
    d_full = np.abs(full.astype(int) - plain).sum((1, 2, 3))
    d_faded = np.abs(faded.astype(int) - plain).sum((1, 2, 3))
    assert ((d_faded > 0.15 * d_full) & (d_faded < 0.65 * d_full)).all()
    none, _ = training.synthetic_bands(astronaut_faces, 6, 0, progress=False, faded=0.0)
    assert np.array_equal(none, full)
