"""`byeglasses eval`: score a checkpoint and the baselines, print and save the table."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ByeGlassesError, SettingError
from ..evaluation.benchmark import BENCHMARK_SEED, evaluate, markdown_table
from ..files import check_output_file, report


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="model to score (a training run's model.safetensors or checkpoint.safetensors);"
                   " omitted: only the baselines")
    p.add_argument("--faces", required=True, help="glasses-free faces; the reference is ../shared/data/celebahq256/test")
    p.add_argument("--count", type=int, help="score only the first N faces (default: all)")
    p.add_argument("--seed", type=int, default=BENCHMARK_SEED, help="benchmark seed: keep it to compare models")
    p.add_argument("--resolution", type=int, help="benchmark resolution (default: the checkpoint's, else 256)")
    p.add_argument("--out", help="write the results here as JSON, and a markdown table beside it (.md)")
    p.add_argument("--no-identity", action="store_true", help="skip the dlib identity similarity (faster)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: CUDA, else MPS, else CPU)")
    p.add_argument("--landmark-cache", help="landmark cache file (default: under ~/.cache/byeglasses)")


def run(args) -> int:
    if not Path(args.faces).is_dir():
        raise ByeGlassesError(f"--faces {args.faces}: no such folder")
    if args.out:
        check_output_file(args.out)
        if Path(args.out).suffix.lower() == ".md":
            raise SettingError("out", f"{args.out}: the JSON results go here and the table beside it as .md; "
                               "give a .json name")
    result = evaluate(args.checkpoint, args.faces, count=args.count, seed=args.seed, device=args.device,
                      identity=not args.no_identity, landmark_cache=args.landmark_cache, resolution=args.resolution)
    report(result, markdown_table(result), args.out)
    best = result["methods"].get("model", {})
    print(f"evaluated {result['count']} faces at {result['resolution']} px in {result['seconds']} s"
          + (f"; model PSNR in glasses {best['psnr_glasses']:.2f} dB, identity {best.get('identity', float('nan')):.4f}"
             if best else ""))
    return 0
