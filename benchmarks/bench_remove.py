"""End-to-end glasses removal on CPU: seconds per 1024x1024 photo with one face, split into
detect / align / generator / paste-back, for the torch and ONNX backends, with peak memory and
the ratio whole pipeline / generator alone (goal: <= 2x).

The generator has random weights (the timing does not depend on them) and every face is
blended in (min_area=0), so paste-back always runs. Usage:
    python benchmarks/bench_remove.py [--presets cpu paper] [--runs 10] [--threads 1] [--min-face PX]
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import repeat_times  # noqa: E402

from byeglasses.model.weights import save_checkpoint  # noqa: E402
from byeglasses.model.config import get_preset  # noqa: E402
from byeglasses.model.networks import Generator  # noqa: E402
from byeglasses.pipeline.onnx import export_onnx  # noqa: E402
from byeglasses.pipeline.remover import GlassesRemover  # noqa: E402

STAGES = ("detect", "align", "classify", "generator", "paste")


def test_photo(side=1024):
    """The astronaut upscaled to side x side, with synthesized glasses on her face."""
    from skimage import data

    from byeglasses.pipeline.detect import detect_faces
    from byeglasses.synth.render import synthesize

    photo = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_CUBIC)
    landmarks = detect_faces(data.astronaut())[0].landmarks * (side / 512)
    return synthesize(photo, landmarks, 0).x


def measure(remover, photo, runs):
    for _ in range(2):  # warm-up: dlib models, allocator, ONNX Runtime graph
        remover.remove(photo)
    stages = {s: [] for s in STAGES}
    totals = []
    for _ in range(runs):
        t = time.perf_counter()
        result = remover.remove(photo)
        totals.append(time.perf_counter() - t)
        for s in STAGES:
            stages[s].append(result.timings[s])
    assert len(result.faces) == 1 and result.faces[0].changed, [(f.box, f.reason) for f in result.faces]
    tracemalloc.start()
    remover.remove(photo)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {s: statistics.median(v) for s, v in stages.items()}, statistics.median(totals), peak


def generator_alone(run, runs):
    return statistics.median(repeat_times(run, runs, warmup=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu"], help="generator presets to time (cpu, paper)")
    parser.add_argument("--resolution", type=int, help="override the presets' resolution (the shipped model: "
                        "--presets cpu --resolution 256)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per measurement (medians reported)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch and ONNX Runtime")
    parser.add_argument("--min-face", type=float, default=None,
                        help="as `remove --min-face`; default: auto (1/8 of the long side: detection at 640 px)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photo = test_photo()
    print(f"photo {photo.shape[1]}x{photo.shape[0]}, one face; {args.threads} thread(s); random weights; "
          f"medians of {args.runs} runs; min-face {args.min_face or 'auto'}")
    header = f"{'preset':7} {'backend':7} " + " ".join(f"{s:>9}" for s in STAGES) + \
        f" {'total':>8} {'G alone':>8} {'ratio':>6} {'tracemalloc':>11}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            cfg = get_preset(name)
            if args.resolution:
                cfg.model.resolution = args.resolution
                name = f"{name}@{args.resolution}"
            r = cfg.model.resolution
            torch.manual_seed(0)
            generator = Generator(cfg.model).eval()
            ckpt, onnx_path = Path(tmp) / f"{name}.safetensors", Path(tmp) / f"{name}.onnx"
            save_checkpoint(ckpt, cfg, generator)
            export_onnx(generator, r, onnx_path)
            x = torch.zeros(1, 3, r, r)
            for backend in ("torch", "onnx"):
                remover = GlassesRemover(ckpt, device="cpu", backend=backend, onnx=onnx_path, glasses_threshold=0.0, passes=1,
                                         min_face=args.min_face, onnx_threads=args.threads)
                if backend == "torch":
                    def run():
                        with torch.inference_mode():
                            generator(x)
                else:
                    session, feed = remover._session, {"x": x.numpy()}

                    def run():
                        session.run(None, feed)
                stages, total, peak = measure(remover, photo, args.runs)
                alone = generator_alone(run, args.runs)
                print(f"{name:7} {backend:7} " + " ".join(f"{stages[s]:9.4f}" for s in STAGES) +
                      f" {total:8.4f} {alone:8.4f} {total / alone:5.2f}x {peak / 2**20:9.1f}MB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak resident memory of the whole run (ru_maxrss): {rss:.0f} MB; seconds per stage above")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_remove.py"))
