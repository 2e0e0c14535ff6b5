"""Per preset: parameters, forward GFLOPs, forward ms per image, training images/s, and the
generator's achieved GFLOP/s as a fraction of this machine's float32 matmul rate (same run).

    python benchmarks/bench_networks.py [--presets paper cpu] [--threads N]
"""

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from timing import best_time  # noqa: E402

from byeglasses.model.config import get_preset
from byeglasses.model.gan import ByeGlassesGAN
from byeglasses.model.networks import Generator, PatchDiscriminator, count_parameters


def matmul_gflops(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / best_time(lambda: a @ b, repeats) / 1e9


def forward_flops(module, x):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


def bench(preset, batch, repeats, channels_last):
    cfg = get_preset(preset)
    cfg.loss.lambda_id = 0.0  # the identity network is benchmarked on its own
    r = cfg.model.resolution
    g = Generator(cfg.model).eval()
    x = torch.rand(batch, 3, r, r) * 2 - 1
    if channels_last:
        g = g.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    gflops = forward_flops(g, x[:1]) / 1e9
    with torch.inference_mode():
        fwd = best_time(lambda: g(x), repeats) / batch
    gan = ByeGlassesGAN(cfg)
    tb = {"x": torch.rand(batch, 3, r, r) * 2 - 1, "y": torch.rand(batch, 3, r, r) * 2 - 1,
          "mask": (torch.rand(batch, 2, r, r) > 0.5).float()}
    step = best_time(lambda: gan.training_step(tb), max(1, repeats // 2))
    return dict(params_g=count_parameters(g) / 1e6, params_d=count_parameters(PatchDiscriminator(cfg.model)) / 1e6,
                gflops=gflops, fwd_ms=fwd * 1e3, achieved=gflops / fwd, train_ips=batch / step)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mm = matmul_gflops()
    print(f"torch {torch.__version__}, {args.threads} threads, float32 matmul 2048²: {mm:.1f} GFLOP/s")
    print("| preset | G params (M) | D params (M, each) | G forward GFLOPs/img | forward ms/img | "
          "achieved GFLOP/s | / matmul | train img/s |")
    print("|---|---|---|---|---|---|---|---|")
    for p in args.presets:
        r = bench(p, args.batch, args.repeats, args.channels_last)
        print(f"| {p} | {r['params_g']:.2f} | {r['params_d']:.2f} | {r['gflops']:.2f} | {r['fwd_ms']:.1f} | "
              f"{r['achieved']:.1f} | {r['achieved'] / mm:.2f} | {r['train_ips']:.2f} |")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_networks.py"))
