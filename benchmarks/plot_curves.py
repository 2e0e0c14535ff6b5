"""Learning curves of training runs (their log.jsonl) as one PNG: each loss term against images seen,
smoothed with a moving average. Needs matplotlib (`pip install matplotlib`; not a package dependency).

    python benchmarks/plot_curves.py runs/cpu-main --out docs/img/learning_curves.png
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TERMS = [("l1_global", "L1 global (eq. 5)"), ("l1_local", "L1 local (eq. 5, glasses)"), ("seg", "BCE masks (eq. 6)"),
         ("id", "identity (eq. 7)"), ("g_global", "G adv. global (eq. 4)"), ("g_local", "G adv. local (eq. 4)"),
         ("d_global", "D global (eq. 3)"), ("d_local", "D local (eq. 3)")]


def smooth(values, window):
    values = np.asarray(values, dtype=float)
    if len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders holding log.jsonl")
    ap.add_argument("--out", default="learning_curves.png")
    ap.add_argument("--window", type=int, default=20, help="moving-average window, in log records")
    ap.add_argument("--mark", action="append", default=[], metavar="IMAGES:LABEL",
                    help="a vertical line at IMAGES seen, e.g. where the data changed (repeatable)")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for run in args.runs:
        records = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]
        images = [r["images"] for r in records]
        for ax, (key, title) in zip(axes.flat, TERMS):
            values = [r[key] for r in records]
            if key == "id":  # eq. 7 applies every id_every steps; the other records hold 0
                pairs = [(i, v) for i, v in zip(images, values) if v > 0]
                if not pairs:
                    continue
                images_k, values = zip(*pairs)
            else:
                images_k = images
            y = smooth(values, args.window)
            ax.plot(images_k[len(images_k) - len(y):], y, label=Path(run).name)
            ax.set_title(title)
            ax.set_xlabel("images seen")
            ax.grid(alpha=0.3)
    for mark in args.mark:
        at, _, label = mark.partition(":")
        for i, ax in enumerate(axes.flat):
            ax.axvline(float(at), color="grey", linestyle=":", label=label if i == 0 else None)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "plot_curves.py"))
