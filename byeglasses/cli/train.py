"""`byeglasses train`: flags onto a Config, then training.loop.train()."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ByeGlassesError
from ..model.config import PRESETS, Config, get_preset
from ..training.loop import apply_overrides, list_faces, train


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", help=f"configuration preset: {', '.join(PRESETS)}")
    p.add_argument("--faces", required=True, help="folder of glasses-free face images (CelebA-HQ-like crops)")
    p.add_argument("--out", required=True, help="run folder (created); holds config, checkpoints, log, samples")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--steps", type=int, help="total training steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="images per step and process (default: the preset's)")
    p.add_argument("--identity", help="identity extractor for the ID loss: dlib, none, or a checkpoint path")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: CUDA, else MPS, else CPU)")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes")
    p.add_argument("--landmark-cache", help="landmark cache file (default: under ~/.cache/byeglasses)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config field, e.g. --set loss.lambda_id=0 (repeatable)")


def config_from_args(args) -> Config:
    if args.resume:
        path = Path(args.out) / "config.json"
        if not path.is_file():
            raise ByeGlassesError(f"--resume: {path} does not exist")
        config = Config.from_dict(json.loads(path.read_text()))
    else:
        config = get_preset(args.preset)
    config = apply_overrides(config, args.set)
    if args.steps is not None:
        config.train.steps = args.steps
    if args.batch_size is not None:
        config.train.batch_size = args.batch_size
    if args.identity is not None:
        config.loss.identity = args.identity
    return config


def run(args) -> int:
    config = config_from_args(args)
    list_faces(args.faces)
    train(config, args.faces, args.out, resume=args.resume, device=args.device,
          max_minutes=args.max_minutes, landmark_cache=args.landmark_cache)
    return 0
