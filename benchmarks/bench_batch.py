"""`byeglasses remove` on folders: photos/s of the batch runner (data-loader workers, faces of
several photos per generator call) against the one-by-one loop `remove` used before, in the
same process; scaling from 1 to 2 processes under torchrun; peak memory per process against
the number of photos. The shipped model; folders are made in a temporary directory from the
CelebA-HQ test faces (256 px) where present, else from the astronaut, and from the astronaut
upscaled to 1024x1024. Usage:
    python benchmarks/bench_batch.py [--count 128] [--count-1024 24] [--memory 500 2000] [--skip ...]
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from byeglasses.cli import main as cli  # noqa: E402
from byeglasses.files import atomic_write, list_images  # noqa: E402
from byeglasses.pipeline.imageio import compose, output_name, read_image, write_image  # noqa: E402
from byeglasses.pipeline.remover import GlassesRemover  # noqa: E402

CELEBA = ROOT.parent / "shared" / "data" / "celebahq256" / "test"


def make_faces(folder: Path, count: int) -> Path:
    """`count` 256 px faces: CelebA-HQ test photos, else the astronaut's face shifted about."""
    folder.mkdir(parents=True)
    if CELEBA.is_dir():
        names = list_images(CELEBA)[:count]
        for name in names:
            shutil.copyfile(CELEBA / name, folder / name)
        return folder
    from skimage.data import astronaut

    a = astronaut()
    for i in range(count):
        dx, dy = (i * 7) % 21 - 10, (i * 5) % 17 - 8
        crop = a[max(0, 35 + dy):245 + dy, max(0, 117 + dx):327 + dx]
        Image.fromarray(cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA)).save(folder / f"{i:05d}.jpg",
                                                                                         quality=95)
    return folder


def make_big(folder: Path, count: int) -> Path:
    """`count` 1024x1024 JPEGs: the astronaut upscaled with glasses drawn on, each shifted a little."""
    from skimage.data import astronaut

    from byeglasses.pipeline.detect import detect_faces
    from byeglasses.synth.render import synthesize

    folder.mkdir(parents=True)
    big = cv2.resize(astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    big = synthesize(big, detect_faces(astronaut())[0].landmarks * 2, 0).x
    for i in range(count):
        Image.fromarray(np.roll(big, (i % 9) * 3, axis=1)).save(folder / f"{i:05d}.jpg", quality=95)
    return folder


def _slices(folder: Path, count: int) -> list:
    """`folder`'s images split into `count` subfolders (hard links), in order."""
    names = list_images(folder)
    out = []
    for r in range(count):
        part = folder.parent / f"{folder.name}-{r}"
        part.mkdir()
        for name in names[r::count]:
            os.link(folder / name, part / name)
        out.append(part)
    return out


def one_by_one(folder: Path, out: Path) -> float:
    """The loop `remove` ran before the batch runner: read, remove, write, one photo at a time.
    Returns photos/s."""
    remover = GlassesRemover()
    files = [folder / n for n in list_images(folder)]
    out.mkdir()
    t = time.perf_counter()
    for path in files:
        photo = read_image(path)
        result = remover.remove(photo.rgb)
        if not result.faces:
            continue
        if not result.changed:
            atomic_write(out / output_name(photo), lambda tmp: shutil.copyfile(path, tmp))
        else:
            write_image(out / output_name(photo), compose(photo, result.image, result.blend_mask > 0), photo)
    return len(files) / (time.perf_counter() - t)


def manifest_rate(out: Path) -> float:
    """photos/s from the manifest: photos over the time from the first line to the last."""
    times = sorted(json.loads(x)["time"] for x in (out / "manifest.jsonl").read_text().splitlines())
    return (len(times) - 1) / (times[-1] - times[0])


def engine(folder: Path, out: Path, workers: int, batch: int) -> tuple:
    """The batch runner in this process: (seconds of the whole command, statuses of the manifest)."""
    t = time.perf_counter()
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        cli(["remove", str(folder), "-o", str(out), "--workers", str(workers), "--batch-size", str(batch)])
    seconds = time.perf_counter() - t
    statuses = {}
    for line in (out / "manifest.jsonl").read_text().splitlines():
        status = json.loads(line)["status"]
        statuses[status] = statuses.get(status, 0) + 1
    return seconds, statuses


def torchrun(folder: Path, out: Path, processes: int, workers: int) -> tuple:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
           "-m", "byeglasses", "remove", str(folder), "-o", str(out), "--workers", str(workers)]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                   capture_output=True, check=False)
    return len(list_images(folder)) / (time.perf_counter() - t), manifest_rate(out)


def peak_memory(folder: Path, out: Path) -> tuple:
    """MB: peak resident set (VmHWM) of the main process and of the largest other process (data-loader
    worker) of one `remove --workers 1` run, read from /proc while it runs."""
    proc = subprocess.Popen([sys.executable, "-m", "byeglasses", "remove", str(folder), "-o", str(out),
                             "--workers", "1"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks = {}
    while proc.poll() is None:
        for pid in [proc.pid] + _descendants(proc.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if "VmHWM:" not in status:  # a zombie: already counted
                continue
            kb = int(status.split("VmHWM:")[1].split()[0])
            peaks[pid] = max(peaks.get(pid, 0), kb)
        time.sleep(0.2)
    others = [kb for pid, kb in peaks.items() if pid != proc.pid]
    return peaks.get(proc.pid, 0) / 1024, max(others, default=0) / 1024


def _descendants(pid: int) -> list:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out += [int(c) for c in children]
        todo += [int(c) for c in children]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=128, help="256 px faces in the speed folder")
    parser.add_argument("--count-1024", type=int, default=24, help="1024x1024 photos in the speed folder")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1],
                        help="data-loader workers of the batch runner (each value measured)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4, help="turns the loop and the runner take")
    parser.add_argument("--memory", type=int, nargs="*", default=[500, 2000],
                        help="folder sizes (small faces) for the peak-memory measurement")
    parser.add_argument("--skip", nargs="*", default=[], choices=["speed", "scaling", "memory"])
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start; shipped model; "
          f"faces from {'CelebA-HQ test' if CELEBA.is_dir() else 'the astronaut'}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        faces, big = make_faces(tmp / "faces", args.count), make_big(tmp / "big", args.count_1024)
        if "speed" not in args.skip:
            # the loop and the runner take turns on slices of the folder, so that a change of load on a
            # shared machine falls on all of them alike. The runner's fixed cost (loading the model,
            # starting the workers) is its time on a one-photo folder, taken off its time on each slice.
            one = tmp / "one"
            one.mkdir()
            first = list_images(faces)[0]
            os.link(faces / first, one / first)
            for name, folder in (("256 px faces", faces), ("1024x1024 photos", big)):
                rounds = _slices(folder, args.rounds)
                photos, seconds, statuses = {}, {}, {}
                for r, part in enumerate(rounds):
                    n = len(list_images(part))
                    rate = one_by_one(part, tmp / f"old-{part.name}")
                    photos["loop"] = photos.get("loop", 0) + n
                    seconds["loop"] = seconds.get("loop", 0) + n / rate
                    for w in args.workers:
                        fixed, _ = engine(one, tmp / f"one-{part.name}-{w}", w, args.batch_size)
                        whole, statuses[w] = engine(part, tmp / f"new-{part.name}-{w}", w, args.batch_size)
                        photos[w] = photos.get(w, 0) + n
                        seconds[w] = seconds.get(w, 0) + max(whole - fixed, 1e-9)
                old = photos["loop"] / seconds["loop"]
                print(f"{name} ({len(list_images(folder))}, {len(rounds)} turns; last turn: {statuses[w]}): "
                      f"one-by-one loop {old:.2f} photos/s")
                for w in args.workers:
                    new = photos[w] / seconds[w]
                    print(f"  batch runner --workers {w} --batch-size {args.batch_size}: {new:.2f} photos/s "
                          f"without its fixed cost: {new / old:.2f}x the loop")
        if "scaling" not in args.skip:
            rates = {}
            for n in (1, 2):
                rates[n] = torchrun(faces, tmp / f"torchrun-{n}", n, 0)
                print(f"torchrun --nproc_per_node {n} (--workers 0): {rates[n][0]:.2f} photos/s for the whole "
                      f"command, {rates[n][1]:.2f} from the first manifest line to the last")
            print(f"scaling 1 -> 2 processes: {rates[2][1] / rates[1][1]:.2f}x first to last line "
                  f"({rates[2][0] / rates[1][0]:.2f}x whole command)")
        for n in args.memory:
            folder = tmp / f"mem-{n}"
            folder.mkdir()
            src = sorted(faces.iterdir())
            for i in range(n):
                os.link(src[i % len(src)], folder / f"{i:06d}{src[i % len(src)].suffix}")
            main_mb, worker_mb = peak_memory(folder, tmp / f"mem-out-{n}")
            print(f"{n} photos: peak resident memory {main_mb:.0f} MB main process, {worker_mb:.0f} MB largest worker")
            shutil.rmtree(folder)
            shutil.rmtree(tmp / f"mem-out-{n}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_batch.py"))
