"""`byeglasses synth FACES_DIR OUT_DIR`: write synthesized training pairs and a JSON-lines manifest."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import InputError, SettingError
from ..files import check_output_file, write_text
from ..pipeline.imageio import write_rgb
from ..synth.cache import skipped_summary
from ..synth.dataset import FOLDERS, SynthFaceDataset
from ..synth.glasses import GlassesDistribution


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("faces_dir", metavar="FACES_DIR", help="folder of glasses-free face images (read only)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder: x/, y/, glasses-mask/, face-mask/, "
                        "manifest.jsonl")
    parser.add_argument("--count", type=int, default=1000, help="number of pairs (faces are cycled if fewer)")
    parser.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same pairs")
    parser.add_argument("--resolution", type=int, default=256, help="side of the square output images")
    parser.add_argument("--preview", metavar="PNG", default=None,
                        help="also write a contact sheet of the first 16 pairs (x | y | masks) here")
    parser.add_argument("--glasses-images", metavar="DIR", default=None,
                        help="folder of RGBA PNG glasses (frontal, lens centres at 25%% and 75%% of the width, "
                             "45%% of the height) to use besides the drawn ones")
    parser.add_argument("--image-probability", type=float, default=0.5,
                        help="with --glasses-images: chance that a pair uses one of those images")
    parser.add_argument("--overwrite", action="store_true",
                        help="OUT_DIR may hold an earlier run: its pairs and manifest are replaced once the new "
                             "run is complete (a run that fails leaves them as they were)")
    parser.add_argument("--cache", metavar="NPZ", default=None,
                        help="landmark cache file (default: under $BYEGLASSES_CACHE or ~/.cache/byeglasses)")


def _glasses_images(folder) -> tuple:
    from ..synth.render import glasses_images

    return glasses_images(folder, on_skip=lambda e: print(f"byeglasses synth: skipping {e}", file=sys.stderr))


PAIR_NAME = re.compile(r"^\d{6}\.png$")


def check_args(args, faces: Path, out: Path) -> None:
    """Every flag in range and every path usable, before any work; SettingError names the flag."""
    if not faces.is_dir():
        raise InputError(f"{args.faces_dir}: not a folder")
    if out == faces or faces in out.parents:
        raise InputError(f"{args.out_dir}: the output folder must not be the faces folder or inside it")
    if out.exists() and not out.is_dir():
        raise InputError(f"{args.out_dir}: is a file; OUT_DIR must be a folder (it is created if missing)")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"{args.out_dir}: not empty (an earlier run?); give --overwrite to replace its pairs, "
                         "or choose a new folder")
    if not 0 <= args.seed < 2 ** 32:
        raise SettingError("seed", f"must be from 0 to 2**32-1, got {args.seed}")
    if not 1 <= args.count <= 10_000_000:
        raise SettingError("count", f"must be from 1 to 10,000,000, got {args.count}")
    if not 16 <= args.resolution <= 4096:
        raise SettingError("resolution", f"must be from 16 to 4096 pixels, got {args.resolution}")
    if not 0.0 <= args.image_probability <= 1.0:  # NaN fails this too
        raise SettingError("image_probability", f"must be within 0..1, got {args.image_probability}")
    if args.preview:
        check_output_file(args.preview, "preview")
        preview = Path(args.preview).resolve()
        if faces in preview.parents or any(out / sub in preview.parents for sub in FOLDERS) \
                or preview == out / "manifest.jsonl":
            raise SettingError("preview", f"{args.preview} is inside the faces folder or among the pairs; "
                               "write it elsewhere")


def clear_earlier_run(out: Path, overwrite: bool) -> int:
    """Refuse an OUT_DIR that holds anything, unless `overwrite`: then delete an earlier run's
    pairs (NNNNNN.png in the pair folders) and manifest, so none is left unlisted. Returns how
    many pairs were deleted."""
    if not out.is_dir() or not any(out.iterdir()):
        return 0
    if not overwrite:
        raise InputError(f"{out}: not empty (an earlier run?); give --overwrite to replace its pairs, "
                         "or choose a new folder")
    deleted = 0
    for sub in FOLDERS:
        if (out / sub).is_dir():
            for p in (out / sub).iterdir():
                if PAIR_NAME.match(p.name) and p.is_file():
                    p.unlink()
                    deleted += sub == FOLDERS[0]
    if (out / "manifest.jsonl").is_file():
        (out / "manifest.jsonl").unlink()
    return deleted


def install_run(staging: Path, out: Path, overwrite: bool) -> int:
    """Put a complete run, written in `staging` (a folder beside `out`), in place of `out`: renamed
    to `out` when that is absent or empty, else (with `overwrite`) the earlier run's pairs and
    manifest are deleted and the new files moved in, a rename each. Returns the pairs deleted."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(staging, out)
        return 0
    deleted = clear_earlier_run(out, overwrite)
    for sub in FOLDERS:
        (out / sub).mkdir(exist_ok=True)
        for p in (staging / sub).iterdir():
            os.replace(p, out / sub / p.name)
    os.replace(staging / "manifest.jsonl", out / "manifest.jsonl")
    shutil.rmtree(staging)
    return deleted


def run(args) -> int:
    from tqdm import tqdm

    from ..synth.preview import contact_sheet

    faces, out = Path(args.faces_dir).resolve(), Path(args.out_dir).resolve()
    check_args(args, faces, out)
    dist = GlassesDistribution()
    if args.glasses_images:
        dist.image_paths, dist.image_probability = _glasses_images(args.glasses_images), args.image_probability
    ds = SynthFaceDataset(faces, args.resolution, seed=args.seed, cache_path=args.cache, dist=dist)
    # the pairs are written beside OUT_DIR and put in place only once all are written: a run that
    # fails or is stopped leaves OUT_DIR (and an earlier run in it) as it was
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".synth-tmp", dir=out.parent))
    try:
        for sub in FOLDERS:
            (staging / sub).mkdir()
        lines, previews = [], []
        for i in tqdm(range(args.count), desc="synth", unit="pair"):
            index, epoch = i % len(ds), i // len(ds)
            s = ds.sample(index, epoch)
            name = f"{i:06d}.png"
            for sub, img in zip(FOLDERS, (s.x, s.y, s.glasses_mask * 255, s.face_mask * 255)):
                write_rgb(staging / sub / name, img)
            lines.append(json.dumps({"file": name, "source": ds.names[index], "seed": args.seed, "epoch": epoch,
                                     "index": index, "params": s.params.to_dict()}))
            if len(previews) < 16:
                previews.append(s)
        write_text(staging / "manifest.jsonl", "\n".join(lines) + "\n")
        deleted = install_run(staging, out, args.overwrite)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if deleted:
        print(f"--overwrite: replaced an earlier run of {deleted} pairs in {out}")
    if args.preview:
        write_rgb(args.preview, contact_sheet(previews, columns=4, tile=min(args.resolution, 256)))
    print(f"wrote {args.count} pairs to {out} from {len(ds)} faces; "
          f"{skipped_summary(ds.skipped, list(ds.skipped))}")
    return 0
