r"""How often the glasses classifier says "glasses": recall on real glasses photos and false
positives on glasses-free ones (faces found by the landmark cache's dlib detection).

    python benchmarks/bench_classifier.py --glasses ../shared/data/celebahq256/fv-dev/glasses \
        --plain ../shared/data/celebahq256/test [--classifier C]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from byeglasses.files import list_images  # noqa: E402
from byeglasses.model.classifier import GlassesJudge  # noqa: E402
from byeglasses.synth.cache import landmark_cache, read_rgb  # noqa: E402


def rates(judge, folder):
    names = list_images(folder)
    cache = landmark_cache(folder, names=names, progress=False)
    probs = {n: judge(read_rgb(Path(folder) / n), cache.landmarks[n]) for n in names if n in cache.landmarks}
    p = np.array(list(probs.values()))
    return len(names), len(p), float((p >= 0.5).mean()) if len(p) else float("nan"), probs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glasses", required=True, help="real photos of people wearing glasses")
    ap.add_argument("--plain", required=True, help="glasses-free photos")
    ap.add_argument("--classifier", help="default: the shipped classifier")
    ap.add_argument("--list", action="store_true", help="also name the photos it gets wrong")
    args = ap.parse_args()
    torch.set_num_threads(1)
    judge = GlassesJudge(args.classifier)
    print("| set | photos | faces | judged \"glasses\" |")
    print("|---|---|---|---|")
    wrong = {}
    for label, folder, want in (("glasses", args.glasses, True), ("glasses-free", args.plain, False)):
        n, faces, rate, probs = rates(judge, folder)
        print(f"| {label}: {folder} | {n} | {faces} | {rate:.1%} |")
        wrong[label] = sorted(k for k, v in probs.items() if (v >= 0.5) != want)
    if args.list:
        for label, names in wrong.items():
            print(f"wrong on {label}: {' '.join(names)}")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_classifier.py"))
