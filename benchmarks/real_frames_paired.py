r"""Frames left on real glasses photos by several models, photo by photo: each photo's thin frame
lines are found once, with the shipped model's glasses mask (evaluation/frames.py `FramesLeft`),
and every model's output (the default `GlassesRemover` pipeline) is scored against the same
lines. Prints each model's mean and share at 0.5 or more, and each model against the first one
and against each other as a paired mean difference ± its standard error (below 0: fewer frames
left). `real-glasses/` has no ground truth and was never used to choose anything, so it is the
independent check of a frames-left finding made on `fv-dev/`.

    python benchmarks/real_frames_paired.py ../shared/data/celebahq256/real-glasses \
        --model "stage 6=default" --model "control=see2.safetensors" --model "id region=A.safetensors" \
        [--count 90] [--out real_frames.json]
"""

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from byeglasses import GlassesRemover  # noqa: E402
from byeglasses.errors import ByeGlassesError  # noqa: E402
from byeglasses.evaluation.frames import FRAMES_LEFT, FramesLeft  # noqa: E402
from byeglasses.evaluation.verification import judge_face  # noqa: E402
from byeglasses.files import check_output_file, list_images, write_text  # noqa: E402
from byeglasses.synth.cache import read_rgb  # noqa: E402


def parse_model(text: str):
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"--model {text!r}: expected NAME=CHECKPOINT (or NAME=default)")
    return name.strip(), None if path.strip() == "default" else path.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("glasses", help="a folder of photos of people wearing glasses")
    ap.add_argument("--model", type=parse_model, action="append", required=True,
                    help="NAME=CHECKPOINT, or NAME=default for the shipped model; two or more")
    ap.add_argument("--count", type=int, default=90, help="the first COUNT photos by name")
    ap.add_argument("--out", help="write the per-photo figures here (JSON)")
    args = ap.parse_args()
    if len(args.model) < 2:
        ap.error("--model: give two models or more to compare")
    if len({n for n, _ in args.model}) < len(args.model):
        ap.error("--model: the names must differ")
    folder = Path(args.glasses)
    names = list_images(folder)[: args.count]  # names the folder if it is not one
    if args.out:
        check_output_file(args.out, "out")
    removers = {name: GlassesRemover(path) for name, path in args.model}
    frames, rows, skipped = FramesLeft(), {}, []
    for name in tqdm(names, desc="photos", unit="photo", file=sys.stderr):
        try:
            image = read_rgb(folder / name)
        except (ByeGlassesError, OSError) as err:  # a file that cannot be read is reported and skipped
            skipped.append(f"{name}: {err}")
            continue
        judged = judge_face(image)
        if judged is None:
            skipped.append(f"{name}: no face found")
            continue
        probe = frames.prepare(image, judged.landmarks)
        rows[name] = {m: float(frames.score(probe, r.remove(image).image)) for m, r in removers.items()}
    if not rows:
        raise ByeGlassesError(f"{folder}: none of its first {len(names)} photos has a face to score")
    table = {m: np.array([r[m] for r in rows.values()]) for m in removers}
    print(f"| model | frames left, mean | ≥ {FRAMES_LEFT} |")
    print("|---|---|---|")
    for m, v in table.items():
        print(f"| {m} | {v.mean():.3f} | {(v >= FRAMES_LEFT).mean():.1%} |")
    print()
    print("| a − b, per photo | mean ± s.e. | photos lower / higher |")
    print("|---|---|---|")
    for a, b in itertools.combinations(list(removers), 2):
        d = table[b] - table[a]
        print(f"| {b} − {a} | {d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(len(d)):.4f} | {(d < 0).sum()} / {(d > 0).sum()} |")
    if args.out:
        write_text(args.out, json.dumps({"models": dict(args.model), "per_photo": rows, "skipped": skipped}, indent=1))
    print(f"done: {len(rows)} of {len(names)} photos scored with {len(removers)} models"
          + (f"; skipped {len(skipped)}: " + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "") if skipped else ""))


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "real_frames_paired.py"))
