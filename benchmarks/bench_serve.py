"""Seconds from upload to result for a 1024x1024 photo through `byeglasses serve`'s page in
headless Chromium, beside `byeglasses remove` on the same photo, runs interleaved in one run
(goal: the page takes at most 1.2x the command). Also the pipeline alone in this process
(read, remove, write), which both pay. Optionally saves a screenshot of the page with the
built-in example's result. Usage:
    python benchmarks/bench_serve.py [--runs 5] [--threads 1] [--chromium /usr/bin/chromium]
        [--screenshot docs/img/serve.png]
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_remove import test_photo  # noqa: E402

# Gradio puts a group's classes on two nested elements: match the outer one.
RESULT = ".photo-result:not(.photo-result .photo-result)"
THREADS = 1  # torch threads in the server, the command and this process (--threads)


def child_env(**extra):
    """Environment of the server and the command: this checkout, and this run's torch threads."""
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS), **extra)


def start_server(tmp: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = child_env(TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "byeglasses", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "open http://" in line:
            return proc, line.split("open ")[1].split()[0]
    raise SystemExit("byeglasses serve did not start")


def page_once(browser, url, photo: Path) -> float:
    """Upload -> result shown, in seconds (a fresh page each time, as a new visitor)."""
    page = browser.new_page()
    page.set_default_timeout(300_000)
    page.goto(url)
    page.locator("#photos input[type=file]").wait_for(state="attached")
    t = time.perf_counter()
    page.set_input_files("#photos input[type=file]", str(photo))
    page.locator("#photos").get_by_text(photo.stem).first.wait_for()
    page.click("#run")
    page.locator(RESULT).get_by_text("glasses removed").wait_for()
    page.locator(f"{RESULT} .photo-download").wait_for()
    seconds = time.perf_counter() - t
    page.close()
    return seconds


def command_once(photo: Path, outdir: Path) -> float:
    """`byeglasses remove PHOTO -o OUTDIR`, wall-clock seconds including start-up."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "byeglasses", "remove", str(photo), "-o", str(outdir)], check=True,
                   env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def pipeline_once(remover, photo: Path, outdir: Path) -> float:
    from byeglasses.pipeline.imageio import compose, read_image, write_image

    t = time.perf_counter()
    p = read_image(photo)
    result = remover.remove(p.rgb)
    write_image(outdir / photo.name, compose(p, result.image, result.blend_mask > 0), p)
    return time.perf_counter() - t


def screenshot(browser, url, path: Path) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(300_000)
    page.goto(url)
    page.click("#example")
    page.locator(f"{RESULT} .photo-download").wait_for()
    page.wait_for_timeout(1000)  # images decoded and laid out
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.close()
    from PIL import Image

    with Image.open(path) as im:  # a palette PNG: a few hundred KB instead of MBs
        im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for each of the three (1: steadier on a shared machine)")
    ap.add_argument("--screenshot", default=None, help="also save a screenshot of the page with a result here")
    args = ap.parse_args()
    global THREADS
    THREADS = args.threads
    import torch

    torch.set_num_threads(args.threads)
    from playwright.sync_api import sync_playwright

    from byeglasses.pipeline.remover import GlassesRemover

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    photo = work / "photo.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(test_photo(1024), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    (work / "tmp").mkdir()
    proc, url = start_server(work / "tmp")
    remover = GlassesRemover()
    page_s, command_s, pipeline_s = [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True)
            page_once(browser, url, photo)  # warm-up: first request, browser caches
            pipeline_once(remover, photo, work)
            for i in range(args.runs):
                page_s.append(page_once(browser, url, photo))
                command_s.append(command_once(photo, work / f"cli{i}"))
                pipeline_s.append(pipeline_once(remover, photo, work))
                print(f"run {i + 1}: page {page_s[-1]:.2f} s, command {command_s[-1]:.2f} s, "
                      f"pipeline {pipeline_s[-1]:.3f} s", flush=True)
            if args.screenshot:
                screenshot(browser, url, Path(args.screenshot))
                print(f"wrote {args.screenshot}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    page, command, pipeline = (statistics.median(v) for v in (page_s, command_s, pipeline_s))
    print(f"1024x1024 JPEG, one face, {args.threads} torch thread(s), medians of {args.runs}: page upload -> result {page:.2f} s; "
          f"`byeglasses remove` {command:.2f} s; pipeline alone (read, remove, write) {pipeline:.3f} s")
    print(f"fastest of {args.runs}: page {min(page_s):.2f} s; command {min(command_s):.2f} s; "
          f"pipeline {min(pipeline_s):.3f} s")
    print(f"page / command = {page / command:.2f} (goal <= 1.2); what the page adds to the pipeline "
          f"(upload, previews, rendering), fastest against fastest: {min(page_s) - min(pipeline_s):.2f} s")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_serve.py"))
