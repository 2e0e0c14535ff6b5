"""Synthesis speed on one core: pairs/s at 256 px with landmarks given (as in training from the cache).

    python benchmarks/bench_synth.py [--n 400] [--resolution 256]

Uses the astronaut face (skimage), cropped and resized like a CelebA-HQ face. Prints pairs/s for
`synthesize`, the share of time per stage, and the ratio to a reference measured in the same run:
decoding a 256-px JPEG (what the data loader does anyway for each face).
What the training data loader delivers (items per process, with N workers) is measured by
`benchmarks/bench_train.py --parts loader`.
"""

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from byeglasses.synth.preview import astronaut_face  # noqa: E402
from byeglasses.synth.render import synthesize  # noqa: E402


def rate(fn, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="pairs to time")
    ap.add_argument("--resolution", type=int, default=256, help="image side")
    ap.add_argument("--profile", action="store_true", help="print the 15 most expensive functions")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    face, lm = astronaut_face(args.resolution)
    jpeg = cv2.imencode(".jpg", face[:, :, ::-1])[1]
    ref = rate(lambda i: cv2.imdecode(jpeg, cv2.IMREAD_COLOR), args.n)
    rate(lambda i: synthesize(face, lm, i), 20)  # warm up
    pairs = rate(lambda i: synthesize(face, lm, i), args.n)
    print(f"synthesize at {args.resolution} px, one core: {pairs:.0f} pairs/s "
          f"({1000 / pairs:.2f} ms/pair; goal >= 200/s)")
    print(f"reference, JPEG decode of the same face: {ref:.0f} /s; synthesis costs {ref / pairs:.1f} decodes")
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(lambda: [synthesize(face, lm, i) for i in range(200)])
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_synth.py"))
