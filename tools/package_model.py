"""Ship a trained generator in the package: fp16 safetensors (generator only) + its JSON config.

    python tools/package_model.py runs/cpu-main/model.safetensors [--dst byeglasses/weights/default.safetensors]
"""

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from byeglasses.model.weights import DEFAULT_WEIGHTS, load_generator, save_checkpoint  # noqa: E402

LIMIT_MB = 25.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="a training run's model.safetensors or checkpoint.safetensors")
    ap.add_argument("--dst", default=str(DEFAULT_WEIGHTS))
    args = ap.parse_args()
    generator, config = load_generator(args.src, device="cpu")
    save_checkpoint(args.dst, config, generator, dtype=torch.float16)
    mb = os.path.getsize(args.dst) / 2 ** 20
    reloaded, _ = load_generator(args.dst, device="cpu")
    x = torch.rand(1, 3, config.model.resolution, config.model.resolution) * 2 - 1
    with torch.no_grad():
        diff = (generator(x)[0] - reloaded(x)[0]).abs().max().item()
    print(f"wrote {args.dst}: {mb:.1f} MB (limit {LIMIT_MB:g}), preset {config.preset}, "
          f"fp16 vs fp32 output max |diff| {diff:.4f} (images in [-1, 1])")
    if mb > LIMIT_MB:
        raise SystemExit(f"{args.dst} is {mb:.1f} MB, over the {LIMIT_MB:g} MB limit")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "package_model.py"))
