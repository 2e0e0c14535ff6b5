r"""Still glasses, judged by eye: contact sheets of the eye band of each photo before and after
removal, to rate by hand, and the figures from a ratings file.

The classifier's "still glasses" (eval-verification) was trained on whole glasses; the faded
frames and ghosts that removal leaves are not what it learned, and it misses most of them. This is
the check a person makes instead: for each photo, the band from brows to nose tip, jaw to jaw
(from dlib's 68 landmarks on the input), input on the left, output on the right, twice enlarged,
numbered. A rater gives each number 0 (no trace of the glasses), 1 (a trace: a faint outline,
tint or ghost one sees when looking for it) or 2 (the glasses are plainly still there: a frame, a
rim or a lens one would notice).

    # 1. remove, then draw the sheets (36 bands a sheet) and the index of their numbers
    byeglasses remove ../shared/data/celebahq256/fv-dev/glasses -o out
    python benchmarks/eye_bands.py sheets ../shared/data/celebahq256/fv-dev/glasses out sheets/
    # 2. rate each number, then write {"ratings": {"<file stem>": 0|1|2, ...}} (see
    #    benchmarks/fv_dev_eye_ratings_stage4.json); `index` turns "number rating" lines into it
    python benchmarks/eye_bands.py index sheets/index.json my_ratings.txt > ratings.json
    # or rate two removals together, blind: each photo twice (input | A's output, input | B's), the
    # bands shuffled; `index` then gives {"ratings": {stem: {"a": r, "b": r}}}
    python benchmarks/eye_bands.py sheets ../shared/data/celebahq256/fv-dev/glasses outA sheets/ --blind-with outB
    # or compare two removals blind: input | one | the other, sides drawn at random (key.json says
    # which is which: do not open it before judging); judge each number L, R or = (fewer glasses left)
    python benchmarks/eye_bands.py pairs ../shared/data/celebahq256/fv-dev/glasses outA outB pairs/
    python benchmarks/eye_bands.py tally pairs/key.json my_judgments.txt
    # 3. the figures, by kind of lens, and against the classifier where eval-verification's JSON is given
    python benchmarks/eye_bands.py summary ratings.json --lens-labels benchmarks/fv_dev_lens_labels.json \
        --verification docs/results/fv_stage4_lens_all.json --method "after removal"
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

WIDTH, HEIGHT, COLUMNS = 240, 96, 3
LEVELS = ("no trace", "a trace", "plainly still there")


def eye_band(rgb: np.ndarray, landmarks) -> tuple:
    """(x0, y0, x1, y1) of the band from the brows to the nose tip, jaw to jaw, a little wider."""
    h, w = rgb.shape[:2]
    if landmarks is None:
        return int(0.15 * w), int(0.23 * h), int(0.85 * w), int(0.6 * h)
    x0, x1 = float(landmarks[0, 0]), float(landmarks[16, 0])
    y0, y1 = float(landmarks[17:27, 1].min()), float(landmarks[29, 1])
    pad = 0.08 * (x1 - x0)
    x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - 2 * pad, y1 + pad
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)


def output_for(folder: Path, name: str):
    """The output of input `name` in `folder`: the same file name, or the same stem with another image
    extension (eval-verification --save-outputs writes PNGs); None when there is none."""
    from byeglasses.files import is_image

    if (folder / name).is_file():
        return folder / name
    stem = Path(name).stem
    found = sorted(p for p in folder.glob(f"{stem}.*") if p.stem == stem and is_image(p))
    return found[0] if found else None


def sheets(args) -> int:
    from byeglasses.files import list_images, write_text

    inputs, outputs, dest = Path(args.inputs), Path(args.outputs), Path(args.dest)
    folders = [outputs] + ([Path(args.blind_with)] if args.blind_with else [])
    if dest.resolve() in [inputs.resolve()] + [f.resolve() for f in folders]:
        print(f"eye_bands: {dest}: the sheets need a folder of their own, not the inputs' or the outputs'",
              file=sys.stderr)
        return 2
    listed = list_images(inputs)
    names = [n for n in listed if all(output_for(f, n) for f in folders)]
    missing = len(listed) - len(names)
    if not names:
        print(f"eye_bands: no photo of {inputs} has an output of the same name in {' and '.join(map(str, folders))}",
              file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    if len(folders) == 1:
        cells, kept = _cells(inputs, folders, names)
        index = [names[k] for k in kept]
    else:  # every photo once per removal, the bands in an order drawn by --seed, then numbered
        bands = {}
        for side, folder in zip("ab", folders):
            made, kept = _cells(inputs, [folder], names, numbered=False)
            bands.update(((names[k], side), cell) for k, cell in zip(kept, made))
        order = sorted(bands)
        order = [order[i] for i in np.random.default_rng(args.seed).permutation(len(order))]
        cells = [_number(bands[key], k) for k, key in enumerate(order)]
        index = {"a": str(folders[0]), "b": str(folders[1]), "cells": [list(key) for key in order]}
    written = _write_sheets(cells, dest, args.per_sheet, COLUMNS)
    write_text(dest / "index.json", json.dumps(index, indent=0))
    print(f"eye_bands: {len(cells)} eye bands in {len(written)} sheets in {dest} (index.json: number -> file)"
          + (f"; {missing} inputs without an output left out" if missing else ""))
    return 0


def _number(cell, number: int):
    import cv2

    cell = cell.copy()
    cv2.putText(cell, str(number), (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 0), 2)
    return cell


def _cells(inputs: Path, folders, names, sides=None, numbered: bool = True):
    """Eye-band cells of `names`: the input, then each folder's output (in `sides` order per name),
    numbered in order unless told not to; and the indices of `names` they show."""
    import cv2
    from tqdm import tqdm

    from byeglasses.errors import ByeGlassesError
    from byeglasses.pipeline.detect import detect_faces
    from byeglasses.pipeline.imageio import read_image

    cells, kept = [], []
    for k, name in enumerate(tqdm(names, desc="eye bands", unit="photo")):
        order = folders if sides is None else [folders[i] for i in sides[k]]
        try:
            before = read_image(inputs / name).rgb
            afters = [read_image(output_for(Path(f), name)).rgb for f in order]
        except ByeGlassesError as e:  # an unreadable photo: named, left out, the others go on
            print(f"eye_bands: skipped {name}: {e}", file=sys.stderr)
            continue
        if any(a.shape != before.shape for a in afters):
            print(f"eye_bands: skipped {name}: an output's size differs from the input's", file=sys.stderr)
            continue
        faces = detect_faces(before)
        x0, y0, x1, y1 = eye_band(before, faces[0].landmarks if faces else None)
        cell = np.concatenate([cv2.resize(im[y0:y1, x0:x1], (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
                               for im in [before] + afters], 1)
        for j in range(1, len(afters) + 1):
            cell[:, j * WIDTH] = 255
        cell = np.pad(cell, ((2, 2), (2, 2), (0, 0)))
        cells.append(_number(cell, len(kept)) if numbered else cell)
        kept.append(k)
    return cells, kept


def _write_sheets(cells, dest: Path, per: int, columns: int):
    import cv2

    from byeglasses.files import atomic_write

    paths = []
    for s in range(0, len(cells), per):
        chunk = cells[s:s + per]
        chunk += [np.zeros_like(cells[0])] * (-len(chunk) % columns)
        sheet = np.concatenate([np.concatenate(chunk[i:i + columns], 1) for i in range(0, len(chunk), columns)], 0)
        data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))[1].tobytes()
        path = dest / f"sheet_{s // per:02d}.png"
        atomic_write(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
        paths.append(path)
    return paths


def pairs(args) -> int:
    from byeglasses.files import list_images, write_text

    inputs, a, b, dest = Path(args.inputs), Path(args.a), Path(args.b), Path(args.dest)
    if dest.resolve() in (inputs.resolve(), a.resolve(), b.resolve()):
        print(f"eye_bands: {dest}: the sheets need a folder of their own", file=sys.stderr)
        return 2
    names = [n for n in list_images(inputs) if output_for(a, n) and output_for(b, n)]
    if not names:
        print(f"eye_bands: no photo of {inputs} has an output in both {a} and {b}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    sides = [(0, 1) if rng.random() < 0.5 else (1, 0) for _ in names]
    dest.mkdir(parents=True, exist_ok=True)
    cells, kept = _cells(inputs, [a, b], names, sides)
    written = _write_sheets(cells, dest, args.per_sheet, 2)
    key = {"a": str(a), "b": str(b), "left": [[names[k], "ab"[sides[k][0]]] for k in kept]}
    write_text(dest / "key.json", json.dumps(key, indent=0))
    print(f"eye_bands: {len(kept)} photos in {len(written)} sheets in {dest}; judge each number L, R or = "
          f"(fewer glasses left), then `tally {dest / 'key.json'} FILE`")
    return 0


def _numbered(path):
    """(line number, fields) of each line of a judgments or ratings file, comments (#) and blank lines left out."""
    for k, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#")[0].strip()
        if line:
            yield k, line


def tally(args) -> int:
    from math import comb

    key = json.loads(Path(args.key).read_text())
    left = key["left"]
    wins = {"a": 0, "b": 0, "=": 0}
    seen = set()
    for k, line in _numbered(args.lines):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) >= len(left) or parts[1] not in ("L", "R", "="):
            print(f"eye_bands: {args.lines} line {k}: expected 'number L|R|=' with a number below {len(left)}, "
                  f"got {line!r}", file=sys.stderr)
            return 2
        number, verdict = int(parts[0]), parts[1]
        seen.add(number)
        if verdict == "=":
            wins["="] += 1
        else:
            side = left[number][1]
            wins[side if verdict == "L" else "ab"[side == "a"]] += 1
    wins["="] += len(left) - len(seen)  # numbers not listed: no difference
    n = wins["a"] + wins["b"]
    p = min(1.0, 2 * sum(comb(n, i) for i in range(min(wins["a"], wins["b"]) + 1)) / 2 ** n) if n else 1.0
    print(f"fewer glasses left by A ({key['a']}): {wins['a']}; by B ({key['b']}): {wins['b']}; "
          f"no difference: {wins['=']} (of {len(left)}; two-sided sign test p = {p:.3f})")
    return 0


def index_ratings(args) -> int:
    index = json.loads(Path(args.index).read_text())
    blind = isinstance(index, dict)  # sheets --blind-with: [name, side] per number
    cells = index["cells"] if blind else index
    ratings = {}
    for k, line in _numbered(args.lines):
        try:
            number, rating = (int(v) for v in line.split())
            if number < 0:
                raise IndexError
            name = cells[number]
        except (ValueError, IndexError):
            print(f"eye_bands: {args.lines} line {k}: expected 'number rating' with a number of "
                  f"{args.index} (0..{len(cells) - 1}), got {line!r}", file=sys.stderr)
            return 2
        if rating not in (0, 1, 2):
            print(f"eye_bands: {args.lines} line {k}: rating must be 0, 1 or 2, got {rating}", file=sys.stderr)
            return 2
        if blind:
            ratings.setdefault(Path(name[0]).stem, {})[name[1]] = rating
        else:
            ratings[Path(name).stem] = rating
    if blind:  # only the photos rated for both removals
        ratings = {stem: dict(sorted(r.items())) for stem, r in ratings.items() if len(r) == 2}
        out = {"a": index["a"], "b": index["b"], "ratings": dict(sorted(ratings.items()))}
    else:
        out = {"ratings": dict(sorted(ratings.items()))}
    print(json.dumps(out, indent=1))
    return 0


def read_ratings(path) -> dict:
    """{stem: 0|1|2}, or for two removals rated together {"a": {stem: r}, "b": {stem: r}}."""
    data = json.loads(Path(path).read_text())
    ratings = data.get("ratings") if isinstance(data, dict) else None
    if isinstance(ratings, dict) and ratings and all(isinstance(v, dict) for v in ratings.values()):
        if all(set(v) == {"a", "b"} and set(v.values()) <= {0, 1, 2} for v in ratings.values()):
            return {side: {stem: v[side] for stem, v in ratings.items()} for side in "ab"}
    elif isinstance(ratings, dict) and all(v in (0, 1, 2) for v in ratings.values()):
        return ratings
    raise SystemExit(f"eye_bands: {path}: expected {{\"ratings\": {{stem: 0|1|2}}}} or, for two removals, "
                     f"{{\"ratings\": {{stem: {{\"a\": 0|1|2, \"b\": 0|1|2}}}}}}")


def summary(args) -> int:
    ratings = read_ratings(args.ratings)
    two = set(ratings) == {"a", "b"} and all(isinstance(v, dict) for v in ratings.values())
    labels = None
    if args.lens_labels:
        from byeglasses.evaluation.verification import LENS_CLASSES, read_lens_labels

        labels = read_lens_labels(args.lens_labels)
    print(f"| {Path(args.ratings).name} | photos | " + " | ".join(LEVELS) + " |")
    print("|---|---|" + "---|" * len(LEVELS))
    for side, rated in (ratings.items() if two else [("", ratings)]):
        rows = [("all", list(rated.values()))]
        for kind in (LENS_CLASSES if labels else ()):
            values = [r for s, r in rated.items() if labels.get(s) == kind]
            if values:
                rows.append((kind, values))
        for name, values in rows:
            c = Counter(values)
            cells = " | ".join(f"{c[k]} ({100 * c[k] / len(values):.1f}%)" for k in range(3))
            print(f"| {name}{f' ({side})' if side else ''} | {len(values)} | {cells} |")
    if two:
        pairs = Counter((ratings["a"][s], ratings["b"][s]) for s in ratings["a"])
        print("\nthe same photo rated for both (a, b): "
              + ", ".join(f"({a}, {b}) {n}" for (a, b), n in sorted(pairs.items())))
        return 0
    if args.verification:
        report = json.loads(Path(args.verification).read_text())
        p = {Path(n).stem: v[args.method] for n, v in report["per_probe_glasses"].items() if args.method in v}
        both = [s for s in ratings if s in p]
        if not both:
            print(f"eye_bands: no photo of {args.ratings} has a P(glasses) for {args.method!r} in "
                  f"{args.verification}", file=sys.stderr)
            return 2
        print(f"\nThe classifier (P(glasses) >= 0.5, {args.method!r}) against the ratings, {len(both)} photos:\n")
        print("| rated | photos | judged \"glasses\" |")
        print("|---|---|---|")
        for k in range(3):
            sel = [s for s in both if ratings[s] == k]
            hit = sum(p[s] >= 0.5 for s in sel)
            print(f"| {k} ({LEVELS[k]}) | {len(sel)} | {hit} ({100 * hit / max(len(sel), 1):.1f}%) |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sheets", help="contact sheets of eye bands, input | output")
    s.add_argument("inputs", help="the photos given to removal")
    s.add_argument("outputs", help="its outputs, same file names")
    s.add_argument("dest", help="folder for sheet_NN.png and index.json")
    s.add_argument("--per-sheet", type=int, default=36)
    s.add_argument("--blind-with", metavar="OUTPUTS_B",
                   help="a second removal's outputs: every photo twice, once per removal, in an order drawn by --seed")
    s.add_argument("--seed", type=int, default=0, help="with --blind-with: draws the order of the bands")
    s = sub.add_parser("pairs", help="blind sheets of input | one removal | the other, sides at random")
    s.add_argument("inputs")
    s.add_argument("a", help="outputs of removal A")
    s.add_argument("b", help="outputs of removal B")
    s.add_argument("dest", help="folder for the sheets and key.json")
    s.add_argument("--seed", type=int, default=0, help="draws the sides")
    s.add_argument("--per-sheet", type=int, default=24)
    s = sub.add_parser("tally", help="'number L|R|=' judgments of `pairs` sheets -> which removal left fewer glasses")
    s.add_argument("key", help="the key.json written with the sheets")
    s.add_argument("lines", help="a text file of 'number L|R|=' lines; unlisted numbers count as =")
    s = sub.add_parser("index", help="'number rating' lines -> a ratings JSON on stdout")
    s.add_argument("index", help="the index.json written with the sheets")
    s.add_argument("lines", help="a text file of 'number rating' lines (# starts a comment)")
    s = sub.add_parser("summary", help="the figures of a ratings JSON")
    s.add_argument("ratings")
    s.add_argument("--lens-labels", help="e.g. benchmarks/fv_dev_lens_labels.json: the figures by kind of lens")
    s.add_argument("--verification", help="eval-verification's JSON: the classifier against the ratings")
    s.add_argument("--method", default="after removal", help="the method of that JSON (default: after removal)")
    args = ap.parse_args(argv)
    return {"sheets": sheets, "pairs": pairs, "tally": tally, "index": index_ratings,
            "summary": summary}[args.command](args)


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "eye_bands.py"))
