"""`byeglasses train`: flags onto a Config, then training.loop.train()."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import List

from ..errors import ByeGlassesError, SettingError
from ..files import IMAGE_SUFFIXES, list_images
from ..model.config import PRESETS, Config, get_preset
from ..training.loop import train


def list_faces(faces_dir) -> List[str]:
    """Image files directly in `faces_dir`, sorted; clear errors for a wrong or empty folder."""
    path = Path(faces_dir)
    if not path.exists():
        raise ByeGlassesError(f"--faces {faces_dir}: no such folder")
    if not path.is_dir():
        raise ByeGlassesError(f"--faces {faces_dir}: not a folder")
    files = list_images(path)
    if not files:
        raise ByeGlassesError(f"--faces {faces_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return files


def apply_overrides(config: Config, overrides: List[str]) -> Config:
    """`section.field=value` strings, e.g. loss.lambda_id=0 or model.resolution=96."""
    d = config.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, _, field = key.partition(".")
        if not sep or section not in ("model", "loss", "optim", "train") or field not in d[section]:
            raise ByeGlassesError(f"--set {item!r}: expected SECTION.FIELD=VALUE with a known field, "
                                  f"e.g. loss.lambda_id=0 (sections: model, loss, optim, train)")
        old = d[section][field]
        try:
            value = json.loads(raw) if not isinstance(old, str) else raw
        except json.JSONDecodeError:
            raise ByeGlassesError(f"--set {item!r}: {raw!r} is not a valid value for {key}") from None
        if isinstance(old, bool) and not isinstance(value, bool) or isinstance(old, (int, float)) and isinstance(value, str):
            raise ByeGlassesError(f"--set {item!r}: {key} takes a {type(old).__name__}")
        d[section][field] = value
    return Config.from_dict(d)


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
    p.add_argument("--init", help="start from this checkpoint's weights: the generator, and the discriminators "
                   "it holds (e.g. ../shared/pretrained/cpu256-h200-6min.safetensors with --set model.resolution=256)")
    p.add_argument("--real-glasses", help="folder of real photos of people wearing glasses, framed like --faces, "
                   "for the real-photo terms (--set loss.lambda_gan_real=... / loss.lambda_id_real=...)")
    p.add_argument("--thin-frames", type=float,
                   help="share of synthesized glasses drawn as thin metal or rimless frames (default: 0)")
    p.add_argument("--dark-glasses", type=float,
                   help="share of synthesized glasses drawn as sunglasses and dark or mirrored lenses that reflect "
                   "a scene, with thick dark frames (default: 0)")
    p.add_argument("--glasses-images", metavar="DIR",
                   help="folder of RGBA glasses images, e.g. real glasses cut out by `byeglasses cut-glasses`, to "
                   "paste onto faces besides the drawn glasses (with --image-probability)")
    p.add_argument("--image-probability", type=float,
                   help="with --glasses-images: share of synthesized glasses taken from those images (default: 0)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config field, e.g. --set loss.lambda_id=0 (repeatable)")


# config fields that have their own flag; the others are set with --set SECTION.FIELD=VALUE
FLAGS = {"train.steps": "--steps", "train.batch_size": "--batch-size", "loss.identity": "--identity",
         "train.init": "--init", "train.real_glasses": "--real-glasses", "train.thin_frames": "--thin-frames",
         "train.dark_glasses": "--dark-glasses", "train.glasses_images": "--glasses-images",
         "train.image_probability": "--image-probability"}


def config_from_args(args) -> Config:
    """The run's Config, every field checked; a bad value names the flag or --set that gave it."""
    try:
        return _config_from_args(args)
    except SettingError as e:
        flag = FLAGS.get(e.name, f"--set {e.name}")
        raise ByeGlassesError(f"{flag}: {e.problem}") from None


def _config_from_args(args) -> Config:
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
    for flag, section, name in (("init", "train", "init"), ("real_glasses", "train", "real_glasses"),
                                ("thin_frames", "train", "thin_frames"), ("dark_glasses", "train", "dark_glasses"),
                                ("glasses_images", "train", "glasses_images"),
                                ("image_probability", "train", "image_probability")):
        if getattr(args, flag, None) is not None:
            setattr(getattr(config, section), name, getattr(args, flag))
    config.validate()
    return config


def run(args) -> int:
    config = config_from_args(args)
    list_faces(args.faces)
    train(config, args.faces, args.out, resume=args.resume, device=args.device,
          max_minutes=args.max_minutes, landmark_cache=args.landmark_cache)
    return 0
