"""Ship a trained glasses classifier in the package: fp16 safetensors with its metadata.

    python tools/package_classifier.py glasses_classifier.safetensors [--dst byeglasses/weights/glasses_classifier.safetensors]
"""

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from byeglasses.model.classifier import DEFAULT_WEIGHTS, load_classifier, save_classifier  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="a classifier written by `byeglasses train-classifier`")
    ap.add_argument("--dst", default=str(DEFAULT_WEIGHTS))
    args = ap.parse_args()
    from safetensors import safe_open

    with safe_open(args.src, framework="pt") as f:
        metadata = {k: v for k, v in (f.metadata() or {}).items() if k not in ("kind", "width")}
    model = load_classifier(args.src)
    save_classifier(model, args.dst, metadata, dtype=torch.float16)
    x = torch.rand(4, 3, 48, 96) * 2 - 1
    with torch.no_grad():
        diff = (torch.sigmoid(model(x)) - torch.sigmoid(load_classifier(args.dst)(x))).abs().max().item()
    print(f"wrote {args.dst}: {os.path.getsize(args.dst) / 2 ** 20:.2f} MB; fp16 vs fp32 P(glasses) max |diff| {diff:.4f}")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "package_classifier.py"))
