"""benchmarks/eye_bands.py: sheets of eye bands to rate by hand, ratings files, and their figures."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from byeglasses.evaluation.verification import LENS_CLASSES, read_lens_labels
from helpers import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def eye_bands():
    return load_script("benchmarks/eye_bands.py")


def test_sheets_number_the_photos_and_leave_inputs_alone(eye_bands, astronaut, tmp_path, capsys):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir(), outputs.mkdir()
    photo = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(inputs / name), photo)
    cv2.imwrite(str(outputs / "a.png"), photo)
    cv2.imwrite(str(outputs / "b.jpg"), 255 - photo)  # another extension, the same stem; c.png has no output
    (inputs / "d.png").write_bytes(b"not a png")  # unreadable: named and left out, the others go on
    (outputs / "d.png").write_bytes(b"not a png")
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    assert eye_bands.main(["sheets", str(inputs), str(outputs), str(tmp_path / "sheets")]) == 0
    captured = capsys.readouterr()
    assert "1 inputs without an output left out" in captured.out and "skipped d.png" in captured.err
    assert json.loads((tmp_path / "sheets" / "index.json").read_text()) == ["a.png", "b.png"]
    sheet = cv2.imread(str(tmp_path / "sheets" / "sheet_00.png"))
    assert sheet.shape == (eye_bands.HEIGHT + 4, 3 * (2 * eye_bands.WIDTH + 4), 3)
    # the band of b's output is the band of its input inverted: the cell shows input | output
    w = eye_bands.WIDTH
    cell_b = sheet[2:-2, 2 * w + 4 + 2:4 * w + 4 + 2].astype(int)
    left, right = cell_b[20:, 30:w], cell_b[20:, w + 30:]
    assert np.abs(left + right - 255).mean() < 8
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before
    # the sheets never go into the inputs' or the outputs' folder
    assert eye_bands.main(["sheets", str(inputs), str(outputs), str(outputs)]) == 2
    assert "a folder of their own" in capsys.readouterr().err


def test_ratings_from_numbered_lines_and_their_summary(eye_bands, tmp_path, capsys):
    index = tmp_path / "index.json"
    index.write_text(json.dumps(["10.jpg", "11.jpg", "12.jpg", "13.jpg"]))
    lines = tmp_path / "r.txt"
    lines.write_text("# sheet 0\n0 0\n1 2  # a thin frame\n2 1\n3 2\n")
    assert eye_bands.main(["index", str(index), str(lines)]) == 0
    ratings = json.loads(capsys.readouterr().out)
    assert ratings == {"ratings": {"10": 0, "11": 2, "12": 1, "13": 2}}
    path = tmp_path / "ratings.json"
    path.write_text(json.dumps(ratings))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"labels": {"10": "clear", "11": "clear", "12": "dark", "13": "dark"}}))
    report = tmp_path / "fv.json"
    report.write_text(json.dumps({"per_probe_glasses": {
        "10.jpg": {"after removal": 0.1}, "11.jpg": {"after removal": 0.9},
        "12.jpg": {"after removal": 0.2}, "13.jpg": {"after removal": 0.3}}}))
    assert eye_bands.main(["summary", str(path), "--lens-labels", str(labels), "--verification", str(report)]) == 0
    out = capsys.readouterr().out
    assert "| all | 4 | 1 (25.0%) | 1 (25.0%) | 2 (50.0%) |" in out
    assert "| clear | 2 | 1 (50.0%) | 0 (0.0%) | 1 (50.0%) |" in out
    assert "| 2 (plainly still there) | 2 | 1 (50.0%) |" in out
    # a line that is not "number rating", a number past the index, a rating out of 0..2
    for bad, problem in (("0 zero\n", "line 1"), ("9 1\n", "0..3"), ("0 1\n1 3\n", "line 2: rating must be 0, 1 or 2")):
        lines.write_text(bad)
        assert eye_bands.main(["index", str(index), str(lines)]) == 2
        assert problem in capsys.readouterr().err


def _two_removals(tmp_path, astronaut, count):
    """Folders of `count` photos (the astronaut), removal A's outputs (the same) and B's (inverted)."""
    inputs, a, b = tmp_path / "in", tmp_path / "a", tmp_path / "b"
    photo = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    for d, image in ((inputs, photo), (a, photo), (b, 255 - photo)):
        d.mkdir()
        for i in range(count):
            cv2.imwrite(str(d / f"p{i}.png"), image)
    return inputs, a, b


def test_blind_pairs_and_their_tally(eye_bands, astronaut, tmp_path, capsys):
    inputs, a, b = _two_removals(tmp_path, astronaut, 6)
    dest = tmp_path / "pairs"
    assert eye_bands.main(["pairs", str(inputs), str(a), str(b), str(dest), "--seed", "3"]) == 0
    key = json.loads((dest / "key.json").read_text())
    assert [n for n, _ in key["left"]] == [f"p{i}.png" for i in range(6)]
    sides = [side for _, side in key["left"]]
    assert set(sides) == {"a", "b"}  # drawn at random: both sides occur with this seed
    # the side the key names is the side the sheet shows: b's band is the inverted one
    sheet = cv2.imread(str(dest / "sheet_00.png")).astype(int)
    w = eye_bands.WIDTH
    for k, side in enumerate(sides[:2]):
        x = k * (3 * w + 4) + 2
        left = sheet[2 + 20:2 + eye_bands.HEIGHT, x + w + 30:x + 2 * w - 4].mean()
        band = sheet[2 + 20:2 + eye_bands.HEIGHT, x + 30:x + w - 4].mean()
        assert (abs(left - band) < 8) == (side == "a")
    # judging "L" everywhere favours whichever removal was on the left
    judged = tmp_path / "j.txt"
    judged.write_text("\n".join(f"{k} L" for k in range(5)) + "\n")  # number 5 unlisted: no difference
    assert eye_bands.main(["tally", str(dest / "key.json"), str(judged)]) == 0
    out = capsys.readouterr().out
    assert f"by A ({a}): {sides[:5].count('a')}" in out and f"by B ({b}): {sides[:5].count('b')}" in out
    assert "no difference: 1 (of 6" in out
    judged.write_text("7 L\n")
    assert eye_bands.main(["tally", str(dest / "key.json"), str(judged)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_two_removals_rated_together_blind(eye_bands, astronaut, tmp_path, capsys):
    """sheets --blind-with: each photo once per removal, the bands shuffled; the index says which
    band is which, and `index` / `summary` give each removal's ratings."""
    inputs, a, b = _two_removals(tmp_path, astronaut, 4)
    dest = tmp_path / "sheets"
    assert eye_bands.main(["sheets", str(inputs), str(a), str(dest), "--blind-with", str(b), "--seed", "1"]) == 0
    assert "8 eye bands" in capsys.readouterr().out
    index = json.loads((dest / "index.json").read_text())
    assert index["a"] == str(a) and index["b"] == str(b)
    cells = index["cells"]
    assert sorted(map(tuple, cells)) == [(f"p{i}.png", side) for i in range(4) for side in "ab"]
    assert cells != sorted(cells)  # shuffled
    # the band the index names is the band the sheet shows: b's output is the inverted one
    sheet = cv2.imread(str(dest / "sheet_00.png")).astype(int)
    w, h = eye_bands.WIDTH, eye_bands.HEIGHT
    for k, (_, side) in enumerate(cells[:3]):
        x = k * (2 * w + 4) + 2
        band, out = sheet[22:2 + h, x + 30:x + w - 4].mean(), sheet[22:2 + h, x + w + 30:x + 2 * w - 4].mean()
        assert (abs(band - out) < 8) == (side == "a")
    # rate a's bands 0 and b's bands 2, except one of b's left unrated: that photo drops out
    unrated = next(k for k, (_, side) in enumerate(cells) if side == "b")
    lines = tmp_path / "r.txt"
    lines.write_text("".join(f"{k} {0 if side == 'a' else 2}\n" for k, (_, side) in enumerate(cells) if k != unrated))
    assert eye_bands.main(["index", str(dest / "index.json"), str(lines)]) == 0
    rated = json.loads(capsys.readouterr().out)
    dropped = cells[unrated][0][:-4]
    assert rated["a"] == str(a) and rated["b"] == str(b)
    assert rated["ratings"] == {f"p{i}": {"a": 0, "b": 2} for i in range(4) if f"p{i}" != dropped}
    path = tmp_path / "ratings.json"
    path.write_text(json.dumps(rated))
    assert eye_bands.main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| all (a) | 3 | 3 (100.0%) | 0 (0.0%) | 0 (0.0%) |" in out
    assert "| all (b) | 3 | 0 (0.0%) | 0 (0.0%) | 3 (100.0%) |" in out
    assert "(0, 2) 3" in out


def test_shipped_ratings_cover_the_labelled_probes(eye_bands):
    data = json.loads((BENCH / "fv_dev_eye_ratings_stage4.json").read_text())
    # the blind re-rating of the photos rated 2 there, both removals together
    again = eye_bands.read_ratings(BENCH / "fv_dev_eye_rerating_frame_lines.json")
    assert set(again["a"]) == set(again["b"]) == {s for s, v in data["ratings"].items() if v == 2}
    labels = read_lens_labels(BENCH / "fv_dev_lens_labels.json")
    assert set(data["ratings"]) == set(labels) and set(data["ratings"].values()) <= {0, 1, 2}
    assert set(labels.values()) <= set(LENS_CLASSES)
    key = json.loads((BENCH / "fv_dev_pairs" / "thin_vs_stage2_key.json").read_text())
    assert {Path(n).stem for n, _ in key["left"]} == {s for s, v in labels.items() if v == "clear"}
