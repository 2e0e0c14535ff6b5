import json
import math

import numpy as np
import pytest

from byeglasses import cli
from byeglasses.evaluation.benchmark import METHODS, evaluate, markdown_table, telea
from byeglasses.evaluation.metrics import iou, psnr, ssim


def test_metrics():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == math.inf and ssim(a, a) == pytest.approx(1.0)
    b = a.copy()
    b[:8] = 255 - b[:8]
    mask = np.zeros((32, 32))
    mask[8:] = 1
    assert psnr(b, a, mask) == math.inf  # the change lies outside the mask
    assert psnr(b, a) < 20
    assert math.isnan(psnr(b, a, np.zeros((32, 32))))  # no pixels to compare: undefined, not perfect
    one = a.copy()
    one[0, 0, 0] ^= 1  # one level off in one of 3072 values: MSE 1/3072
    assert psnr(one, a) == pytest.approx(10 * math.log10(255 ** 2 * 3072))
    assert iou(mask, mask) == 1.0 and iou(mask, 1 - mask) == 0.0
    assert iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0


def test_telea_changes_only_the_mask():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.float32)
    mask[20:30, 10:50] = 1
    out = telea(img, mask)
    assert np.array_equal(out[mask == 0], img[mask == 0]) and not np.array_equal(out, img)


def test_eval_scores_model_and_baselines_on_the_same_pairs(astronaut_faces, tiny_checkpoint):
    a = evaluate(str(tiny_checkpoint), str(astronaut_faces), count=3, progress=False)
    b = evaluate(None, str(astronaut_faces), count=3, resolution=64, progress=False)
    assert set(a["methods"]) == set(METHODS) and set(b["methods"]) == {"input", "telea_gt_mask"}
    # same seed, same glasses: the baselines agree between runs
    assert a["methods"]["input"] == {k: v for k, v in b["methods"]["input"].items()}
    m = a["methods"]["model"]
    for key in ("psnr", "psnr_glasses", "ssim", "ssim_glasses", "identity", "iou_glasses", "iou_face", "ms"):
        assert math.isfinite(m[key]), key
    assert -1 <= m["identity"] <= 1 and 0 <= m["iou_glasses"] <= 1
    assert a["methods"]["input"]["psnr_glasses"] < a["methods"]["input"]["psnr"]  # the glasses are the damage
    table = markdown_table(a)
    assert table.count("\n") == 1 + len(METHODS) and "Telea inpainting, ground-truth mask" in table


def test_eval_cli_writes_json_and_markdown(astronaut_faces, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval.json"
    rc = cli.main(["eval", "--checkpoint", str(tiny_checkpoint), "--faces", str(astronaut_faces), "--count", "2",
                   "--no-identity", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["count"] == 2 and "identity" not in result["methods"]["model"]
    assert out.with_suffix(".md").read_text().startswith("| method |")
    assert "evaluated 2 faces" in capsys.readouterr().out


def test_eval_bad_faces_folder(tmp_path, capsys):
    assert cli.main(["eval", "--faces", str(tmp_path / "absent")]) == 2
    assert "no such folder" in capsys.readouterr().err
