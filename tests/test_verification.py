import json
from pathlib import Path

import numpy as np
import pytest

from byeglasses.evaluation.verification import (eye_boxes, eye_detail, eye_outlines, judge_face, markdown_table,
                                                paired_by_lens, paired_differences, read_lens_labels, read_pairs, roc_auc,
                                                run_verification, tar_at_far, verification_metrics)
from byeglasses.errors import InputError
from byeglasses.evaluation.frames import FramesLeft
from helpers import SmearingGenerator, load_script


def test_roc_auc_matches_pair_counting():
    rng = np.random.default_rng(0)
    g, i = rng.normal(0.4, 0.1, 50), rng.normal(0.8, 0.1, 70)
    i[:5] = g[:5]  # ties count half
    brute = np.mean([(a < b) + 0.5 * (a == b) for a in g for b in i])
    assert roc_auc(g, i) == pytest.approx(brute)
    assert roc_auc(np.array([0.1, 0.2]), np.array([0.5, 0.9])) == 1.0
    assert roc_auc(np.array([0.5, 0.9]), np.array([0.1, 0.2])) == 0.0


def test_tar_at_far_accepts_at_most_the_far():
    impostor = np.linspace(0.0, 1.0, 1000, endpoint=False)  # 0.000 .. 0.999
    genuine = np.array([0.005, 0.009, 0.0101, 0.5])
    tar, thr = tar_at_far(genuine, impostor, far=0.01)
    assert (impostor < thr).mean() <= 0.01
    assert thr == pytest.approx(0.010)
    assert tar == 0.5  # 0.005 and 0.009 are accepted; 0.0101 is not


def test_verification_metrics_balanced_accuracy():
    m = verification_metrics(np.array([0.3, 0.5, 0.7]), np.array([0.4, 0.8, 0.9, 1.0]))
    # genuine accepted below 0.6: 2/3; impostors rejected at or above 0.6: 3/4
    assert m["accuracy"] == pytest.approx(0.5 * (2 / 3 + 3 / 4))
    assert m["genuine_distance"] == pytest.approx(0.5)
    assert m["genuine_pairs"] == 3 and m["impostor_pairs"] == 4


def test_eye_detail_falls_when_the_eyes_are_blurred(astronaut):
    import cv2

    face = judge_face(astronaut)
    assert face is not None and face.descriptor.shape == (128,)
    boxes = eye_boxes(face.landmarks, astronaut.shape)
    assert all(x1 > x0 and y1 > y0 for x0, y0, x1, y1 in boxes)
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 2.0)
    assert eye_detail(blurred, boxes) < 0.5 * eye_detail(astronaut, boxes)
    # the eyes' outlines alone: inside the boxes, holding every eye landmark and no brow point
    outlines = eye_outlines(face.landmarks, astronaut.shape)
    inside = np.zeros_like(outlines)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert outlines.any() and not (outlines & ~inside).any()
    pts = np.rint(face.landmarks).astype(int)
    assert outlines[pts[36:48, 1], pts[36:48, 0]].all() and not outlines[pts[17:27, 1], pts[17:27, 0]].any()
    assert eye_detail(blurred, outlines) < 0.5 * eye_detail(astronaut, outlines)
    # a dark line drawn through the boxes under the eyes (a rim) is detail for the boxes, not the outlines
    rim = astronaut.copy()
    y = max(y1 for *_, y1 in boxes) - 2
    rim[y:y + 2, min(b[0] for b in boxes):max(b[2] for b in boxes)] = 0
    assert eye_detail(rim, boxes) > 1.2 * eye_detail(astronaut, boxes)
    assert eye_detail(rim, outlines) == pytest.approx(eye_detail(astronaut, outlines), rel=0.05)


def test_read_pairs_rejects_malformed(tmp_path):
    p = tmp_path / "pairs.json"
    p.write_text(json.dumps({"7": {"glasses": [1]}}))
    with pytest.raises(InputError, match="pairs.json"):
        read_pairs(p)
    p.write_text("not json")
    with pytest.raises(InputError, match="pairs.json"):
        read_pairs(p)


@pytest.fixture(scope="module")
def tiny_fv(tmp_path_factory, astronaut_faces):
    """Two 'people': person a has one glasses photo (the astronaut with drawn glasses) and three
    glasses-free crops; person b has the mirrored crops."""
    import shutil

    from byeglasses.synth.cache import landmark_cache, read_rgb
    from byeglasses.synth.render import synthesize
    import cv2

    root = tmp_path_factory.mktemp("fv")
    (root / "glasses").mkdir()
    (root / "plain").mkdir()
    names = sorted(p.name for p in astronaut_faces.iterdir())
    for n in names:
        shutil.copy(astronaut_faces / n, root / "plain" / n)
    cache = landmark_cache(astronaut_faces, names=names[:1], progress=False)
    face = read_rgb(astronaut_faces / names[0])
    s = synthesize(face, cache.landmarks[names[0]], 3)
    cv2.imwrite(str(root / "glasses" / "g0.png"), cv2.cvtColor(s.x, cv2.COLOR_RGB2BGR))
    pairs = {"a": {"glasses": ["g0"], "plain": ["01", "02"]}, "b": {"glasses": [], "plain": ["03", "04", "05", "99"]}}
    (root / "pairs.json").write_text(json.dumps(pairs))
    return root, s


def test_run_verification_on_a_tiny_set(tiny_fv, tmp_path):
    root, sample = tiny_fv
    calls = []

    def unchanged(rgb):
        calls.append(rgb.shape)
        return rgb.copy()

    def blur(rgb):
        import cv2

        return cv2.GaussianBlur(rgb, (0, 0), 3.0)

    res = run_verification(root / "glasses", root / "plain", root / "pairs.json",
                           {"unchanged": unchanged, "blurred": blur, "glasses-free original": lambda rgb: sample.y},
                           glasses_judge=lambda rgb, lm: 1.0, cache=tmp_path / "c.npz", progress=False,
                           frames=FramesLeft())
    on, same = res["methods"]["glasses on"], res["methods"]["unchanged"]
    assert calls == [(256, 256, 3)]
    assert res["probes"] == 1 and res["gallery"] == 5
    assert res["skipped"] == {"plain/99": "file not found"}
    assert on["genuine_pairs"] == 2 and on["impostor_pairs"] == 3
    for k in ("genuine_distance", "impostor_distance", "accuracy", "roc_auc"):
        assert same[k] == pytest.approx(on[k])
    assert same["eye_detail"] == pytest.approx(1.0)
    assert same["eye_detail_clear"] == pytest.approx(1.0)
    assert res["methods"]["blurred"]["eye_detail_clear"] < 0.5
    assert res["methods"]["blurred"]["eye_detail"] < 0.5
    assert on["still_glasses"] == 1.0
    # the judge's verdict per probe and method, to find the outputs that still wear glasses
    (probe_name,) = res["per_probe"]
    assert res["per_probe_glasses"] == {probe_name: {"glasses on": 1.0, "unchanged": 1.0, "blurred": 1.0,
                                                     "glasses-free original": 1.0}}
    # frames left: all of them with the glasses on or unchanged, fewer blurred, few on the original
    frames = res["per_probe_frames"][probe_name]
    assert frames["glasses on"] == frames["unchanged"] == 1.0
    assert frames["glasses-free original"] < 0.3 and frames["blurred"] < 0.9
    assert res["methods"]["unchanged"]["frames_left_share"] == 1.0
    assert res["methods"]["glasses-free original"]["frames_left_share"] == 0.0
    assert "frames left" in markdown_table(res)
    from byeglasses.evaluation.verification import save_result

    table = save_result(tmp_path / "res.json", res)  # the JSON, and the table beside it
    assert json.loads((tmp_path / "res.json").read_text())["probes"] == 1
    assert (tmp_path / "res.md").read_text() == table == markdown_table(res)
    detail = res["per_probe_detail"][probe_name]
    assert detail["glasses on"] == detail["unchanged"] == 1.0 and detail["blurred"] < 0.5
    eyes = res["per_probe_detail_eyes"][probe_name]
    assert eyes["glasses on"] == eyes["unchanged"] == 1.0 and eyes["blurred"] < 0.5
    assert same["eye_detail_eyes"] == pytest.approx(1.0) and res["methods"]["blurred"]["eye_detail_eyes"] < 0.5
    # the breakdown by how dark the eyes are: every probe in one quarter, an unchanged photo no closer
    for name in ("glasses on", "unchanged", "blurred", "glasses-free original"):
        assert sum(q["probes"] for q in res["by_darkness"][name]) == 1
    (q_on,) = [q for q in res["by_darkness"]["glasses on"] if q["probes"]]
    (q_same,) = [q for q in res["by_darkness"]["unchanged"] if q["probes"]]
    assert q_on["closer_share"] is None and q_same["closer_share"] == 0.0
    assert q_same["genuine_distance"] == pytest.approx(q_on["genuine_distance"]) == pytest.approx(on["genuine_distance"])
    assert "darkest quarter" in markdown_table(res)
    # the gallery's descriptors were cached: a second run reads them back
    assert (tmp_path / "c.npz").is_file()
    again = run_verification(root / "glasses", root / "plain", root / "pairs.json", {}, cache=tmp_path / "c.npz",
                             progress=False)
    assert again["methods"]["glasses on"]["genuine_distance"] == pytest.approx(on["genuine_distance"])
    assert again["per_probe_glasses"] is None and "still_glasses" not in again["methods"]["glasses on"]


def test_eval_verification_command(tiny_fv, tiny_checkpoint, tmp_path, capsys):
    from byeglasses.cli import main

    root, _ = tiny_fv
    (root / "glasses-copy").mkdir(exist_ok=True)
    out = tmp_path / "fv.json"
    rc = main(["eval-verification", str(root), "--checkpoint", str(tiny_checkpoint), "--glasses-threshold", "0",
               "--out", str(out), "--cache", str(tmp_path / "c.npz"), "--variant", "change blend:blend=change"])
    assert rc == 0
    result = json.loads(out.read_text())
    assert list(result["methods"]) == ["glasses on", "after removal", "change blend"]
    assert result["variants"] == {"change blend": {"blend": "change"}}
    assert list(result["paired"]["methods"]) == ["change blend"]  # against "after removal", probe by probe
    assert "| glasses on |" in out.with_suffix(".md").read_text()
    assert "verified 1 glasses photos of 1 people against 5" in capsys.readouterr().out


def test_figures_by_kind_of_lens(tiny_fv, tmp_path, capsys):
    """--lens-labels: the same figures for each hand-labelled kind of lens; a probe without a label
    counts as "unlabelled", not as clear."""
    from byeglasses.cli import main

    root, _ = tiny_fv
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"description": "test", "labels": {"g0.png": "tinted", "elsewhere": "dark"}}))
    assert read_lens_labels(labels) == {"g0": "tinted", "elsewhere": "dark"}
    res = run_verification(root / "glasses", root / "plain", root / "pairs.json",
                           {"unchanged": lambda rgb: rgb.copy()}, glasses_judge=lambda rgb, lm: 0.9,
                           cache=tmp_path / "c.npz", progress=False, lens_labels=read_lens_labels(labels))
    on, same = res["by_lens"]["glasses on"], res["by_lens"]["unchanged"]
    assert list(on) == ["tinted"] and on["tinted"]["probes"] == 1
    assert on["tinted"]["genuine_distance"] == pytest.approx(res["methods"]["glasses on"]["genuine_distance"])
    assert on["tinted"]["closer_share"] is None and same["tinted"]["closer_share"] == 0.0
    assert same["tinted"]["still_glasses"] == 1.0 and same["tinted"]["eye_detail"] == pytest.approx(1.0)
    assert "tinted (1)" in markdown_table(res)
    assert res["per_probe_lens"] == {"g0.png": "tinted"} and res["paired_by_lens"] is None  # one probe: nothing paired
    res = run_verification(root / "glasses", root / "plain", root / "pairs.json", {}, cache=tmp_path / "c.npz",
                           progress=False, lens_labels={})
    assert list(res["by_lens"]["glasses on"]) == ["unlabelled"]
    assert run_verification(root / "glasses", root / "plain", root / "pairs.json", {}, cache=tmp_path / "c.npz",
                            progress=False)["by_lens"] is None
    # a label that is not a kind of lens is named with its file and probe
    labels.write_text(json.dumps({"labels": {"g0": "blue"}}))
    with pytest.raises(InputError, match="labels.json.*'g0'.*'blue'"):
        read_lens_labels(labels)
    assert main(["eval-verification", str(root), "--lens-labels", str(labels)]) == 2
    err = capsys.readouterr().err
    assert "'blue'" in err and "Traceback" not in err
    labels.write_text(json.dumps({"g0": "clear"}))
    with pytest.raises(InputError, match="expected"):
        read_lens_labels(labels)


def test_shipped_fv_dev_lens_labels_are_valid():
    labels = read_lens_labels(Path(__file__).resolve().parents[1] / "benchmarks" / "fv_dev_lens_labels.json")
    assert len(labels) == 309 and set(labels.values()) == {"clear", "tinted", "dark", "other", "none"}


def test_eval_verification_rejects_bad_input(tmp_path, capsys):
    from byeglasses.cli import main

    assert main(["eval-verification", str(tmp_path)]) == 2
    assert "has no glasses" in capsys.readouterr().err
    assert main(["eval-verification", str(tmp_path), "--variant", "x:nonsense=1"]) == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "Traceback" not in err


def test_start_skips_the_first_glasses_photos(tiny_fv, tmp_path, capsys):
    """--start K leaves out the first K probes (those settings were tuned on): past the only probe
    nothing is left to verify, which is said, not computed on an empty set."""
    from byeglasses.cli import main

    root, _ = tiny_fv
    res = run_verification(root / "glasses", root / "plain", root / "pairs.json", {}, start=0, limit=1,
                           cache=tmp_path / "c.npz", progress=False)
    assert res["probes"] == 1
    with pytest.raises(InputError, match="no glasses photo"):
        run_verification(root / "glasses", root / "plain", root / "pairs.json", {}, start=1,
                         cache=tmp_path / "c.npz", progress=False)
    assert main(["eval-verification", str(root), "--start", "-1"]) == 2
    assert "--start must be 0 or more" in capsys.readouterr().err


def test_gallery_cache_follows_content_not_mtime(tiny_fv, tmp_path, monkeypatch):
    """The glasses-free descriptors are found again in a copy of the set with new times (data sets
    are copied and touched), and judged again when a photo's bytes change."""
    import os
    import shutil

    import cv2

    import byeglasses.evaluation.verification as v

    root, _ = tiny_fv
    plain = tmp_path / "plain"
    shutil.copytree(root / "plain", plain)
    paths = sorted(plain.glob("*.png"))[:2]
    cache = tmp_path / "c.npz"
    first = v.plain_descriptors(paths, cache, progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(plain, copy)
    moved = [copy / p.name for p in paths]
    for p in moved:
        os.utime(p, (1_000_000, 1_000_000))
    judged = []
    real = v.judge_face
    monkeypatch.setattr(v, "judge_face", lambda rgb: judged.append(1) or real(rgb))
    again = v.plain_descriptors(moved, cache, progress=False)
    assert judged == []
    for p, q in zip(paths, moved):
        assert (first[p] is None and again[q] is None) or np.array_equal(first[p], again[q])
    cv2.imwrite(str(moved[0]), cv2.imread(str(moved[0]))[:, ::-1])  # new content under an old name
    v.plain_descriptors(moved[:1], cache, progress=False)
    assert judged == [1]
    # the default cache of a folder sits beside its landmark cache, under the same key
    from byeglasses.synth.cache import default_cache_path

    default = v.gallery_cache(plain)
    assert default.parent.name == "verification" and default.name == default_cache_path(plain).name


def test_paired_differences_compare_each_method_with_the_reference_probe_by_probe():
    """Mean and standard error of each method's per-probe difference from "after removal":
    genuine distance, P(glasses) as a logit, frames left; probes a method lacks are left out."""
    methods = {n: {} for n in ("glasses on", "after removal", "other")}
    result = {"methods": methods,
              "per_probe": {"a": {"glasses on": 0.5, "after removal": 0.50, "other": 0.48},
                            "b": {"glasses on": 0.5, "after removal": 0.60, "other": 0.56},
                            "c": {"glasses on": 0.5, "after removal": 0.40, "other": float("nan")}},
              "per_probe_glasses": {"a": {"glasses on": 1.0, "after removal": 0.5, "other": 0.5},
                                    "b": {"glasses on": 1.0, "after removal": 0.5, "other": 1 / (1 + np.e)},
                                    "c": {"glasses on": 1.0, "after removal": 0.0, "other": 1.0}},
              "per_probe_frames": None}
    paired = paired_differences(result)
    assert paired["reference"] == "after removal" and list(paired["methods"]) == ["other"]
    row = paired["methods"]["other"]
    assert row["genuine_distance"]["mean"] == pytest.approx(-0.03)
    assert row["genuine_distance"]["se"] == pytest.approx(np.std([-0.02, -0.04], ddof=1) / np.sqrt(2))
    assert (row["genuine_distance"]["probes"], row["genuine_distance"]["lower"]) == (2, 2)
    # logits: 0, -1 and, clipped at 1e-4, 2·ln(9999)
    assert row["glasses_logit"]["mean"] == pytest.approx((0 - 1 + 2 * np.log(9999)) / 3)
    assert (row["glasses_logit"]["lower"], row["glasses_logit"]["higher"]) == (1, 1)
    assert "frames_left" not in row
    assert "Probe by probe" in markdown_table(result | {"paired": paired})
    assert paired_differences({"methods": {"glasses on": {}, "after removal": {}}, "per_probe": {}}) is None
    # a subset of the probes, and the same by kind of lens ("c" has no genuine distance for "other")
    assert paired_differences(result, probes=["b"])["methods"]["other"]["genuine_distance"]["mean"] == pytest.approx(-0.04)
    assert paired_by_lens(result) is None  # run without lens labels
    assert list(paired_by_lens(result, labels={"a": "tinted", "b": "tinted"})) == ["tinted"]  # labels given afterwards
    result["per_probe_lens"] = {"a": "dark", "b": "dark", "c": "clear"}
    by_lens = paired_by_lens(result)
    assert list(by_lens) == ["dark"] and by_lens["dark"]["probes"] == 2  # one clear probe: no standard error
    assert by_lens["dark"]["methods"]["other"]["genuine_distance"]["mean"] == pytest.approx(-0.03)
    assert "| other | dark (2) |" in markdown_table(result | {"paired": paired, "paired_by_lens": by_lens})


@pytest.fixture(scope="module")
def oracle_eyes():
    module = load_script("benchmarks/fv_oracle_eyes.py")
    return module


def test_oracle_fit_recovers_a_similarity_transform(oracle_eyes):
    rng = np.random.default_rng(0)
    src = rng.uniform(40, 200, (68, 2)).astype(np.float32)
    a, s, t = np.deg2rad(7), 1.1, np.array([5.0, -3.0])
    R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ R.T + t
    M, residual = oracle_eyes.fit(src, dst)
    assert np.allclose(M[:, :2], R, atol=1e-3) and np.allclose(M[:, 2], t, atol=0.05)
    assert residual < 1e-3
    _, off = oracle_eyes.fit(src, dst + rng.normal(0, 3, dst.shape))
    assert off > 10 * residual


def test_oracle_paste_matches_colour_and_leaves_the_rest(oracle_eyes):
    out = np.full((64, 64, 3), 120, np.uint8)
    donor = np.zeros((64, 64, 3), np.uint8)
    donor[..., 0] = 200  # a flat red donor, over a flat grey photo
    region = np.zeros((64, 64), np.float32)
    region[24:40, 24:40] = 1
    face = np.ones((64, 64), bool)
    M = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    pasted = oracle_eyes.paste(out, donor, M, region, face)
    assert np.abs(pasted[28:36, 28:36].astype(int) - 120).max() <= 2  # matched to the ring: grey, not red
    assert (pasted[:8] == out[:8]).all()  # far from the region: the photo's own bytes


def test_oracle_benchmark_on_a_tiny_set(oracle_eyes, tiny_fv, tiny_checkpoint, tmp_path, capsys):
    root, _ = tiny_fv
    out = tmp_path / "oracle.json"
    rc = oracle_eyes.main([str(root), "--out", str(out), "--checkpoint", str(tiny_checkpoint)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["probes"] == 1 and list(report["rows"]) == ["g0.png"]
    row = report["rows"]["g0.png"]
    assert set(row["genuine"]) == set(oracle_eyes.CONDITIONS)
    # the donor is one of person a's two photos and is left out of the genuine pairs
    assert report["all"]["glasses on"]["genuine_pairs"] == 1
    assert "oracle on 1 probes" in capsys.readouterr().out
    with pytest.raises(Exception, match="exists"):
        oracle_eyes.main([str(root), "--out", str(out)])


def test_dark_prefill_trial_changes_only_the_glasses_region():
    trial = load_script("benchmarks/trial_dark_prefill.py")
    rgb = np.full((40, 40, 3), 200, np.uint8)
    rgb[12:18, 12:28] = 30  # a dark lens
    glasses = np.zeros((40, 40), np.float32)
    glasses[12:18, 12:28] = 0.9
    dark = trial.changed_region(rgb, glasses, "darken")
    assert np.abs(dark[15, 20].astype(int) - 30 * trial.DARKEN).max() <= 1 and (dark[35, 35] == 200).all()
    filled = trial.changed_region(rgb, glasses, "telea")
    assert filled[15, 20].min() > 150 and (filled[35, 35] == 200).all()  # the lens filled from the skin around it


def test_flatten_trial_paints_only_the_lenses_of_faces_with_invented_eyes(astronaut):
    """trial_flatten.py: the lens interior of a face whose eyes the first pass invented becomes one
    colour; the rest of the photo, and every face whose eyes were kept, stay as they were."""
    from dataclasses import replace

    from byeglasses.pipeline.remover import GlassesRemover

    trial = load_script("benchmarks/trial_flatten.py")
    remover = GlassesRemover(generator=SmearingGenerator(), resolution=128, glasses_threshold=0, passes=1)
    prepared = remover.prepare(astronaut)
    first = remover.remove_prepared(prepared)
    assert first.faces[0].changed
    first.faces[0] = replace(first.faces[0], eyes_kept=0.9)
    assert trial.flatten_lenses(prepared, first) is None  # the eyes were the photo's: nothing to do
    first.faces[0] = replace(first.faces[0], eyes_kept=0.1)
    painted = trial.flatten_lenses(prepared, first)
    changed = np.abs(painted.astype(int) - astronaut).max(axis=2) > 0
    eyes = first.faces[0].landmarks[36:48].mean(0).astype(int)  # between the eyes, inside the "lens"
    assert changed[eyes[1], eyes[0]] and changed.mean() < 0.05
    core = painted[eyes[1] - 2:eyes[1] + 3, eyes[0] - 2:eyes[0] + 3].reshape(-1, 3)
    assert np.ptp(core, axis=0).max() <= 1  # one colour
    assert np.array_equal(painted[:60], astronaut[:60])  # far from the face, untouched


def test_refraction_trial_rescales_only_around_the_eyes():
    import argparse
    trial = load_script("benchmarks/trial_refraction.py")
    rgb = np.full((120, 160, 3), 200, np.uint8)
    landmarks = np.zeros((68, 2), np.float32)
    for centre, sl in (((50.0, 60.0), slice(36, 42)), ((110.0, 60.0), slice(42, 48))):
        angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)  # eye corners 20 px apart
        landmarks[sl] = np.stack([centre[0] - 10 * np.cos(angles), centre[1] + 4 * np.sin(angles)], 1)
    rgb[58:63, 54:57] = 0  # a dark mark 5 px right of the left eye's centre
    rgb[5:10, 5:10] = 0  # and one far from both eyes
    assert np.array_equal(trial.rescale_eyes(rgb, landmarks, 1.0), rgb)
    bigger = trial.rescale_eyes(rgb, landmarks, 1.1)
    cols = np.where(bigger[60, 40:70, 0] < 100)[0] + 40
    assert cols.min() >= 54 and cols.max() >= 57 and len(cols) > 3  # its far edge moved out, and it widened
    assert np.array_equal(bigger[:30], rgb[:30]) and np.array_equal(bigger[:, :25], rgb[:, :25])
    with pytest.raises(argparse.ArgumentTypeError, match="0.8..1.25"):
        trial.factors("1.5")
    with pytest.raises(argparse.ArgumentTypeError, match="not a comma-separated"):
        trial.factors("big")


def test_refraction_trial_scores_each_factor_and_keeps_its_results(tiny_fv, tmp_path, capsys):
    """A trial script end to end on one probe: one method per factor beside the defaults, the JSON
    and its table written, and a second run refused before it could overwrite them."""
    root, _ = tiny_fv
    trial = load_script("benchmarks/trial_refraction.py")
    out = tmp_path / "r.json"
    assert trial.main([str(root), "--k", "1.05", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["methods"]) == {"glasses on", "after removal", "rescaled 1.05", "glasses on, rescaled 1.05"}
    assert (tmp_path / "r.md").read_text() in capsys.readouterr().out
    before = out.read_bytes()
    assert trial.main([str(root), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
