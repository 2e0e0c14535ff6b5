r"""How the shipped model treats real photos: the share of real glasses photos whose glasses it
finds and removes, and the share of glasses-free photos it leaves untouched (with the default
thresholds of `GlassesRemover`); on the glasses photos, the frames left (evaluation/frames.py:
how much of each photo's thin frame lines is still in its output). Optionally writes a contact
sheet to look at (never commit one made of CelebA faces).

    python benchmarks/bench_real.py --glasses ../shared/data/celebahq256/real-glasses \
        --plain ../shared/data/celebahq256/test --count 100 [--no-frame-lines] [--sheet /tmp/real.png]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from byeglasses import GlassesRemover  # noqa: E402
from byeglasses.evaluation.frames import FRAMES_LEFT, FramesLeft  # noqa: E402
from byeglasses.evaluation.verification import judge_face  # noqa: E402
from byeglasses.files import list_images  # noqa: E402
from byeglasses.synth.cache import read_rgb  # noqa: E402


def run(remover, folder, count):
    names = list_images(folder)[:count]
    changed, no_face, probs, pairs = 0, 0, [], []
    for name in names:
        image = read_rgb(Path(folder) / name)
        result = remover.remove(image)
        if not result.faces:
            no_face += 1
            continue
        changed += result.changed
        probs.append(result.faces[0].glasses_probability)
        pairs.append((image, result.image))
    return len(names), changed, no_face, np.array(probs), pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glasses", required=True, help="photos of people wearing glasses")
    ap.add_argument("--plain", required=True, help="photos of people without glasses")
    ap.add_argument("--count", type=int, default=100, help="photos per folder at most")
    ap.add_argument("--checkpoint", help="default: the shipped model")
    ap.add_argument("--no-frame-lines", action="store_true", help="the lens blend without frame lines")
    ap.add_argument("--sheet", help="write a contact sheet of the first 24 glasses photos: input | output")
    args = ap.parse_args()
    remover = GlassesRemover(args.checkpoint, frame_lines=not args.no_frame_lines)
    n_g, ch_g, nf_g, p_g, pairs = run(remover, args.glasses, args.count)
    n_p, ch_p, nf_p, p_p, _ = run(remover, args.plain, args.count)
    print("| photos | count | no face found | glasses removed | left untouched | median glasses prob. |")
    print("|---|---|---|---|---|---|")
    for label, n, ch, nf, p in (("real glasses", n_g, ch_g, nf_g, p_g), ("no glasses", n_p, ch_p, nf_p, p_p)):
        faces = n - nf
        print(f"| {label} | {n} | {nf} | {ch} ({ch / max(faces, 1):.0%}) | {faces - ch} ({(faces - ch) / max(faces, 1):.0%}) "
              f"| {np.median(p) if len(p) else float('nan'):.2f} |")
    frames, scores = FramesLeft(), []
    for before, after in pairs:
        judged = judge_face(before)
        if judged is not None:
            scores.append(frames.score(frames.prepare(before, judged.landmarks), after))
    scores = np.array(scores)
    print(f"frames left on the {len(scores)} real glasses photos with a face: mean {scores.mean():.3f}, "
          f"{(scores >= FRAMES_LEFT).mean():.1%} at {FRAMES_LEFT} or more")
    if args.sheet:
        from PIL import Image

        tiles = [np.concatenate(pair, axis=1) for pair in pairs[:24]]
        rows = [np.concatenate(tiles[i:i + 4], axis=1) for i in range(0, len(tiles) - len(tiles) % 4, 4)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.sheet)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_real.py"))
