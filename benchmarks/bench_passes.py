"""The batch runner's extra passes (`--passes`, default 2): the faces of all photos of a batch
through the classifier and the generator together, against each photo's passes on their own (the
runner before), in the same process, taking turns. The shipped model; `--folder` (e.g. real glasses
photos), else 1024x1024 copies of the astronaut with glasses drawn on. Prints photos/s (from the
first manifest line to the last) and the ratio. Usage:
    python benchmarks/bench_passes.py [--folder DIR] [--count 48] [--batch-size 16] [--rounds 2]
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_batch import engine, make_big, manifest_rate  # noqa: E402
from byeglasses.files import list_images  # noqa: E402
from byeglasses.pipeline.remover import GlassesRemover  # noqa: E402


def each_alone(self, results, faces):
    """The extra passes as the runner made them before: one photo at a time."""
    return [batched(self, [r], [f])[0] for r, f in zip(results, faces)]


batched = GlassesRemover.more_passes_many


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", help="photos to use (default: the astronaut with drawn glasses, 1024x1024)")
    ap.add_argument("--count", type=int, default=48, help="photos at most")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="turns each way takes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        if args.folder:
            src.mkdir()
            for name in list_images(args.folder)[:args.count]:
                shutil.copyfile(Path(args.folder) / name, src / name)
        else:
            make_big(src, args.count)
        count = len(list_images(src))
        rates = {"batched": [], "each photo alone": []}
        passes = None
        for r in range(args.rounds):
            for name, method in (("batched", batched), ("each photo alone", each_alone)):
                GlassesRemover.more_passes_many = method
                out = tmp / f"out-{r}-{name.replace(' ', '-')}"
                try:
                    _, statuses = engine(src, out, 0, args.batch_size)
                finally:
                    GlassesRemover.more_passes_many = batched
                rates[name].append(manifest_rate(out))
                passes = statuses
    a, b = np.median(rates["batched"]), np.median(rates["each photo alone"])
    print(f"{count} photos, --batch-size {args.batch_size}, --workers 0, 1 process; manifest statuses {passes}")
    print(f"extra passes batched: {a:.2f} photos/s; each photo alone: {b:.2f} photos/s; ratio {a / b:.2f} "
          f"(medians of {args.rounds} turns each)")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_passes.py"))
