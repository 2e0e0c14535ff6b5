"""Training throughput, from the data loader to the optimizer step, on whatever device is here.

    python benchmarks/bench_train.py [--faces DIR] [--device cuda] [--parts loader,step,e2e]
        [--presets paper,cpu] [--batch-sizes 8,32,128] [--steps 20] [--workers 0,4,14] [--repeats 3]

In one run: (1) the loader: pairs/s of one process calling `SynthFaceDataset` items (decoding
every face as before, with the decoded-face cache, and with uint8 items as `byeglasses train`
uses them), and a DataLoader with N worker processes; (2) the training step on random data: img/s
per preset and batch size, and its achieved FLOP/s against this device's measured matmul rate
(bf16 on CUDA, float32 on CPU) in the same run; (3) `byeglasses train` end to end for a fixed
number of steps (img/s between the first and last log record, so start-up is not counted).
Every timing is repeated `--repeats` times and the median printed (the CPU may be shared).
(4) instance norm alone, forward and backward, NCHW against channels_last (PyTorch's and ours).
`--reference-tree DIR` also times the one-process loader of another checkout (e.g. an older
commit: `git worktree add /tmp/base f63433b`) in alternation with this one; with the environment
variable BYEGLASSES_BENCH_PACKAGE=DIR the whole script times that checkout's package instead.
Defaults are short on CPU; on a GPU they cover the presets and batch sizes 8-128.
"""

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# run from a checkout without installing; BYEGLASSES_BENCH_PACKAGE=DIR times the package of checkout DIR
PACKAGE = Path(os.environ.get("BYEGLASSES_BENCH_PACKAGE", str(ROOT)))
sys.path.insert(0, str(PACKAGE))

DATA = ROOT.parent / "shared" / "data" / "celebahq256" / "train"


def median_rate(fn, count: int, repeats: int, sync=lambda: None, clock=time.perf_counter) -> float:
    """Median over `repeats` of count / seconds for fn() (after one untimed call)."""
    fn()
    sync()
    rates = []
    for _ in range(repeats):
        t = clock()
        fn()
        sync()
        rates.append(count / (clock() - t))
    return statistics.median(rates)


def face_subset(faces: Path, count: int):
    from byeglasses.synth.cache import list_images

    return list_images(faces)[:count]


# ---------------------------------------------------------------- loader

def loader_item_rates(faces: Path, files, resolution: int, items: int, repeats: int, cache_path) -> dict:
    """pairs per second of one process (one cv2 and torch thread) reading dataset items, per item kind:
    (per wall-clock second, per CPU second of the process: the latter holds on a shared machine)."""
    import cv2

    from byeglasses.synth.dataset import SynthFaceDataset

    threads = torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    new = "decoded_cache" in inspect.signature(SynthFaceDataset).parameters
    kinds = {"decode every face, float items": {}}
    if new:
        kinds["decoded-face cache, float items"] = {"decoded_cache": True}
        kinds["decoded-face cache, uint8 items (train)"] = {"decoded_cache": True, "uint8": True}
    out = {}
    for name, extra in kinds.items():
        ds = SynthFaceDataset(faces, resolution, seed=0, cache_path=cache_path, files=files, progress=False,
                              no_glasses=0.1, **extra)
        n = min(items, len(ds))
        epoch = iter(range(10**9))

        def run():
            ds.set_epoch(next(epoch))  # new glasses each repeat
            for i in range(n):
                ds[i]
        out[name] = (median_rate(run, n, repeats), median_rate(run, n, repeats, clock=time.process_time))
    torch.set_num_threads(threads)
    return out


def loader_worker_rates(faces: Path, files, resolution: int, batch: int, workers, repeats: int, cache_path) -> dict:
    """pairs/s delivered by a DataLoader (uint8 items from the decoded-face cache) with N workers; each
    timing reads 4x the batches its workers hold ready, so that what was prefetched hardly counts."""
    from byeglasses.synth.dataset import SynthFaceDataset

    ds = SynthFaceDataset(faces, resolution, seed=0, cache_path=cache_path, files=files, progress=False,
                          no_glasses=0.1, decoded_cache=True, uint8=True)
    out = {}
    for w in workers:
        batches = max(8, 4 * 4 * w)
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=w, drop_last=True,
                                             persistent_workers=w > 0, prefetch_factor=4 if w else None)
        it = iter(loader)

        def run():
            nonlocal it
            for _ in range(batches):
                try:
                    next(it)
                except StopIteration:
                    it = iter(loader)
                    next(it)
        out[w] = median_rate(run, batches * batch, repeats)
        del it, loader
    return out


def reference_item_rates(tree: Path, args, files) -> dict:
    """The one-process loader rates of another checkout, timed by this script in a subprocess."""
    cmd = [sys.executable, __file__, "--loader-items-json", "--faces", str(args.faces), "--count", str(args.count),
           "--resolution", str(args.resolution), "--items", str(args.items), "--repeats", "1"]
    env = dict(os.environ, BYEGLASSES_BENCH_PACKAGE=str(tree))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
    if res.returncode:
        raise SystemExit(f"--reference-tree {tree}: the loader timing failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- step

def _config(preset: str, overrides):
    try:
        from byeglasses.model.config import get_preset
        from byeglasses.cli.train import apply_overrides
    except ImportError:
        from byeglasses.config import get_preset
        from byeglasses.train import apply_overrides

    return apply_overrides(get_preset(preset), list(overrides))


def _model(cfg, device):
    """The GAN on `device` as `byeglasses train` builds it."""
    from byeglasses.identity import load_identity_extractor

    try:
        from byeglasses.model.gan import ByeGlassesGAN
    except ImportError:
        from byeglasses.gan import ByeGlassesGAN
    identity = load_identity_extractor(cfg.loss.identity, cfg.model.resolution, device) \
        if cfg.loss.lambda_id > 0 else None
    if "device" in inspect.signature(ByeGlassesGAN).parameters:
        return ByeGlassesGAN(cfg, identity, device=device)
    model = ByeGlassesGAN(cfg, identity).to(device)  # the code of f63433b: channels_last on CUDA
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def matmul_flops(device, dtype, repeats: int) -> float:
    n = 8192 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    # the best of several: a rate the device can reach (the median would count a busy neighbour's time)
    return max(median_rate(lambda: a @ b, 2 * n ** 3, 1, sync=lambda: _sync(device)) for _ in range(max(repeats, 5)))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rates(preset: str, batches, steps: int, repeats: int, device, overrides, identity: bool) -> list:
    """img/s and FLOP per image of `training_step` on random data, per batch size."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = _config(preset, overrides)
    if not identity:
        cfg.loss.lambda_id, cfg.loss.identity = 0.0, "none"
    torch.manual_seed(0)
    model = _model(cfg, device)
    r = cfg.model.resolution
    every = max(cfg.loss.id_every, 1) if cfg.loss.lambda_id > 0 else 1
    steps = -(-steps // every) * every  # whole id_every cycles: each timing has its share of identity steps
    rows = []
    for b in batches:
        batch = {"x": torch.rand(b, 3, r, r, device=device) * 2 - 1, "y": torch.rand(b, 3, r, r, device=device) * 2 - 1,
                 "mask": (torch.rand(b, 2, r, r, device=device) > 0.5).float()}
        counter = {"step": 0}

        def run(n=steps):  # starts at a multiple of id_every
            for _ in range(n):
                model.training_step(batch, step=counter["step"])
                counter["step"] += 1
        try:
            run(every * 2)  # warm-up (and compilation)
            flops = 0.0  # per image, averaged over the id_every steps of which one has the identity loss
            for s, weight in ((0, 1), (1, every - 1)) if every > 1 else ((0, 1),):
                with FlopCounterMode(display=False) as fc:
                    model.training_step(batch, step=s)
                flops += fc.get_total_flops() / b * weight / every
            ips = median_rate(run, steps * b, repeats, sync=lambda: _sync(device))
            # on the CPU also per CPU-second of this process (all its threads): holds on a shared machine
            cpu_ips = median_rate(run, steps * b, repeats, clock=time.process_time) if device.type == "cpu" else None
        except torch.OutOfMemoryError:
            rows.append({"batch": b, "oom": True})
            torch.cuda.empty_cache()
            continue
        rows.append({"batch": b, "img_s": ips, "cpu_img_s": cpu_ips, "flop_per_img": flops})
        del batch
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


# ---------------------------------------------------------------- instance norm

def norm_rates(device, repeats: int, shape=(32, 128, 64, 64)) -> dict:
    """Forward + backward calls/s of instance norm on one activation, per layout and implementation."""
    try:
        from byeglasses.model.networks import InstanceNorm2d, instance_norm_keeping_layout
    except ImportError:
        return {}
    norm = InstanceNorm2d(shape[1], affine=True).to(device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    x = torch.randn(*shape, device=device, dtype=dtype)
    out = {}
    for name, layout, forward in (("NCHW, PyTorch's", torch.contiguous_format, norm),
                                  ("channels_last, PyTorch's", torch.channels_last,
                                   lambda t: torch.nn.InstanceNorm2d.forward(norm, t)),
                                  ("channels_last, layout-keeping (ours, used on CUDA)", torch.channels_last,
                                   lambda t: instance_norm_keeping_layout(t, norm.weight, norm.bias, norm.eps))):
        xi = x.contiguous(memory_format=layout).requires_grad_()

        def run():
            for _ in range(10):
                with amp:
                    y = forward(xi)
                y.float().sum().backward()
        out[name] = median_rate(run, 10, repeats, sync=lambda: _sync(device))
    return out


# ---------------------------------------------------------------- end to end

def end_to_end(preset: str, faces: Path, files, steps: int, batch: int, device, overrides, identity: bool,
               cache_path) -> float:
    """img/s of `byeglasses train` between its first and last log record (start-up excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        face_dir = Path(tmp) / "faces"
        face_dir.mkdir()
        for name in files:
            os.symlink(faces / name, face_dir / name)
        log_every = max(1, steps // 4)
        cmd = [sys.executable, "-m", "byeglasses", "train", "--preset", preset, "--faces", str(face_dir),
               "--out", str(Path(tmp) / "run"), "--steps", str(steps), "--batch-size", str(batch),
               "--device", str(device), "--set", f"train.log_every={log_every}",
               "--set", f"train.checkpoint_every={steps * 10}", "--set", f"train.sample_every={steps * 10}",
               "--landmark-cache", str(cache_path)]
        if not identity:
            cmd += ["--identity", "none", "--set", "loss.lambda_id=0"]
        for o in overrides:
            cmd += ["--set", o]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=PACKAGE,
                             env=dict(os.environ, PYTHONPATH=str(PACKAGE)))
        if res.returncode:
            raise SystemExit(f"byeglasses train failed:\n{res.stderr[-3000:]}")
        recs = [json.loads(line) for line in (Path(tmp) / "run" / "log.jsonl").read_text().splitlines()]
        first, last = recs[0], recs[-1]
        return (last["images"] - first["images"]) / max(last["time"] - first["time"], 1e-9)


# ---------------------------------------------------------------- main

def main():
    from byeglasses.device import pick_device

    class Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=Help)
    ap.add_argument("--faces", type=Path, default=DATA, help="folder of glasses-free faces")
    ap.add_argument("--count", type=int, default=256, help="faces of --faces used (landmarks are cached)")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA, else MPS, else CPU)")
    ap.add_argument("--parts", default="loader,step,norm,e2e", help="which parts to run")
    ap.add_argument("--resolution", type=int, default=256, help="loader: image side")
    ap.add_argument("--items", type=int, default=128, help="loader: items per one-process timing")
    ap.add_argument("--workers", default=None, help="loader: DataLoader worker counts (default: 1 and all cores)")
    ap.add_argument("--loader-batch", type=int, default=32, help="loader: DataLoader batch size")
    ap.add_argument("--presets", default=None, help="step: presets (default: cuda paper,cpu; cpu cpu,tiny)")
    ap.add_argument("--batch-sizes", default=None, help="step: batch sizes (default: cuda 8,16,32,64,128; cpu 8)")
    ap.add_argument("--steps", type=int, default=None, help="step: timed steps per repeat (default: cuda 20, cpu 3)")
    ap.add_argument("--no-identity", action="store_true", help="step, e2e: without the identity loss")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="step, e2e: config override, e.g. train.compile=true (repeatable)")
    ap.add_argument("--e2e-steps", type=int, default=None, help="e2e: training steps (default: cuda 200, cpu 12)")
    ap.add_argument("--e2e-batch", type=int, default=None,
                    help="e2e: batch size (default: cuda 32, cpu 8); an epoch is --count / batch steps, and "
                         "the DataLoader's workers start again every epoch")
    ap.add_argument("--precisions", default="auto",
                    help="step: train.precision values to time, alternating (e.g. fp32,bf16; the first is the reference)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per figure (the median is printed)")
    ap.add_argument("--threads", type=int, default=None, help="step: torch threads (default: torch's choice)")
    ap.add_argument("--reference-tree", type=Path, help="loader: also time this checkout's one-process loader")
    ap.add_argument("--loader-items-json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if not args.faces.is_dir():
        raise SystemExit(f"--faces {args.faces}: not a folder (the CelebA-HQ train faces are the default)")
    files = face_subset(args.faces, args.count)
    cache_dir = Path(os.environ.get("BYEGLASSES_CACHE") or Path.home() / ".cache" / "byeglasses") / "bench"
    cache_path = cache_dir / f"bench-{args.count}.npz"
    if args.loader_items_json:
        print(json.dumps(loader_item_rates(args.faces, files, args.resolution, args.items, args.repeats,
                                           cache_path)))
        return
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    parts = set(args.parts.split(","))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {cores} cores"
    print(f"device: {device} ({name}); torch {torch.__version__}; {args.repeats} repeats, medians")

    if "loader" in parts:
        print(f"\nloader at {args.resolution} px, {len(files)} faces of {args.faces}")
        rates = loader_item_rates(args.faces, files, args.resolution, args.items, args.repeats, cache_path)
        if args.reference_tree:
            ref_runs, new_runs = [], []
            for _ in range(args.repeats):  # alternate, so both see the same load
                ref_runs.append(reference_item_rates(args.reference_tree, args, files))
                new_runs.append(loader_item_rates(args.faces, files, args.resolution, args.items, 1, cache_path))
            med = lambda runs, k: tuple(statistics.median(r[k][j] for r in runs) for j in (0, 1))  # noqa: E731
            for kind in ref_runs[0]:
                wall, cpu = med(ref_runs, kind)
                print(f"  reference {args.reference_tree}, one process, {kind}: {wall:.0f} pairs/s, "
                      f"{cpu:.0f} per CPU-second")
            rates = {k: med(new_runs, k) for k in new_runs[0]}
            ref = med(ref_runs, "decode every face, float items")
        else:
            ref = rates["decode every face, float items"]
        for kind, (wall, cpu) in rates.items():
            print(f"  one process, {kind}: {wall:.0f} pairs/s ({wall / ref[0]:.2f}x the reference), "
                  f"{cpu:.0f} per CPU-second ({cpu / ref[1]:.2f}x)")
        workers = [int(w) for w in args.workers.split(",")] if args.workers else sorted({1, max(1, cores - 2)})
        for w, rate in loader_worker_rates(args.faces, files, args.resolution, args.loader_batch, workers,
                                           args.repeats, cache_path).items():
            print(f"  DataLoader, {w} workers, batch {args.loader_batch}, uint8 cached items: {rate:.0f} pairs/s")

    presets = (args.presets or ("paper,cpu" if cuda else "cpu,tiny")).split(",")
    batches = [int(b) for b in (args.batch_sizes or ("8,16,32,64,128" if cuda else "8")).split(",")]
    identity = not args.no_identity
    if "step" in parts:
        if args.threads:
            torch.set_num_threads(args.threads)
        dtype = torch.bfloat16 if cuda else torch.float32
        peak = matmul_flops(device, dtype, args.repeats)
        print(f"\ntraining step on random data; {str(dtype)[6:]} matmul rate here (best of 5): "
              f"{peak / 1e12:.3f} TFLOP/s; {'identity loss as the preset sets it' if identity else 'no identity loss'}"
              f"{'; ' + ' '.join(args.set) if args.set else ''}")
        precisions = args.precisions.split(",")
        cpu_col = " img per CPU-second |" if not cuda else ""
        print(f"| preset | train.precision | batch | img/s | × {precisions[0]} |{cpu_col} GFLOP/img | "
              f"achieved TFLOP/s | of matmul rate |")
        print("|---|---|---|---|---|---|---|---|" + ("---|" if not cuda else ""))
        for preset in presets:
            first = {}
            # several precisions alternate round by round, so that each sees the same load on a shared
            # machine; one is timed `--repeats` times on one model, as before
            alternate = len(precisions) > 1
            rounds = [{p: step_rates(preset, batches, args.steps or (20 if cuda else 3), 1 if alternate else args.repeats,
                                     device, [*args.set, *([f"train.precision={p}"] if args.precisions != "auto" else [])],
                                     identity) for p in precisions}
                      for _ in range(args.repeats if alternate else 1)]
            for p in precisions:
                for i, b in enumerate(batches):
                    runs = [r[p][i] for r in rounds]
                    if any(run.get("oom") for run in runs):
                        print(f"| {preset} | {p} | {b} | out of memory | | | | |")
                        continue
                    row = {k: statistics.median(run[k] for run in runs) if runs[0][k] is not None else None
                           for k in ("img_s", "cpu_img_s", "flop_per_img")}
                    first.setdefault(b, row["img_s"])
                    achieved = row["img_s"] * row["flop_per_img"]
                    cpu_cell = f" {row['cpu_img_s']:.2f} |" if row["cpu_img_s"] is not None else ""
                    print(f"| {preset} | {p} | {b} | {row['img_s']:.1f} | {row['img_s'] / first[b]:.2f} |{cpu_cell} "
                          f"{row['flop_per_img'] / 1e9:.1f} | {achieved / 1e12:.3f} | {achieved / peak:.1%} |")

    if "norm" in parts:
        shape = (32, 128, 64, 64) if cuda else (8, 64, 64, 64)
        print(f"\ninstance norm, forward + backward of a {tuple(shape)} {'bf16' if cuda else 'float32'} activation")
        for name, rate in norm_rates(device, args.repeats, shape).items():
            print(f"  {name}: {rate:.1f} calls/s")

    if "e2e" in parts:
        steps = args.e2e_steps or (200 if cuda else 12)
        for preset in presets:
            batch = args.e2e_batch or (32 if cuda else 8)
            ips = statistics.median(end_to_end(preset, args.faces, files, steps, batch, device, args.set, identity,
                                               cache_path) for _ in range(args.repeats))
            print(f"\nbyeglasses train --preset {preset}, batch {batch}, {steps} steps: {ips:.1f} img/s end to end")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_train.py"))
