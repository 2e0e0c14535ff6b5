"""Average the generators of several checkpoints weight by weight (a model soup) into one fp16 file.

    python tools/average_models.py OUT.safetensors A.safetensors B.safetensors [...]

Meant for runs fine-tuned from one start (the shipped stage 4 is the average of stage 3 and its two
GPU continuations; MODEL_CARD.md). OUT must not exist: no input or earlier output is overwritten.
"""
import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from byeglasses.errors import CheckpointError  # noqa: E402
from byeglasses.model.weights import average_generators, save_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="new .safetensors file for the average")
    ap.add_argument("checkpoints", nargs="+", help="two or more generator checkpoints of one architecture")
    args = ap.parse_args()
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out}: already exists; name a new file")
    if len(args.checkpoints) < 2:
        raise SystemExit("give at least two checkpoints to average")
    try:
        generator, config = average_generators(args.checkpoints)
    except CheckpointError as e:
        raise SystemExit(str(e))
    save_checkpoint(args.out, config, generator, dtype=torch.float16)
    print(f"wrote {args.out}: the average of {len(args.checkpoints)} generators "
          f"({os.path.getsize(args.out) / 2 ** 20:.1f} MiB, fp16)")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "average_models.py"))
