"""`byeglasses cut-glasses PHOTOS OUT_DIR`: cut the real glasses out of photos of people wearing
them, as RGBA images for synthesis (`byeglasses synth/train --glasses-images OUT_DIR`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError, SettingError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photos", metavar="PHOTOS", help="folder of photos of people wearing glasses (read only)")
    parser.add_argument("out_dir", metavar="OUT_DIR",
                        help="new or empty folder for the cut-outs: NAME.png and its mirror image NAME-mirror.png")
    parser.add_argument("--checkpoint", help="generator whose masks and output make the matte (default: the shipped one)")
    parser.add_argument("--frames-only", action="store_true",
                        help="cut the frames alone: no lens, tint, glare or sunglasses")
    parser.add_argument("--see-through", action="store_true",
                        help="lenses as see-through layers without their wearer's eyes: drawn onto a new face, "
                             "a dark lens shows that face's own eyes faintly, as a real one does")
    parser.add_argument("--no-mirror", action="store_true", help="do not also write each cut-out's mirror image")


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from ..files import list_images
    from ..pipeline.imageio import read_image
    from ..pipeline.remover import GlassesRemover
    from ..synth.cutouts import cut_from_photo, write_cutout

    photos, out = Path(args.photos), Path(args.out_dir)
    if not photos.is_dir():
        raise InputError(f"{args.photos}: not a folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"{args.out_dir}: is a file; OUT_DIR must be a folder (it is created if missing)")
    if out.resolve() == photos.resolve() or photos.resolve() in out.resolve().parents:
        raise InputError(f"{args.out_dir}: the output folder must not be the photos folder or inside it")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"{args.out_dir}: not empty; choose a new folder (no cut-out is ever overwritten)")
    if args.see_through and args.frames_only:
        raise SettingError("see_through", "needs the lenses, which --frames-only leaves out")
    names = list_images(photos)
    if not names:
        raise InputError(f"{args.photos}: no images")
    remover = GlassesRemover(args.checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    skipped, taken, written = {}, {}, 0  # taken: output file name -> the photo it came from
    for name in tqdm(names, desc="cut-glasses", unit="photo", file=sys.stderr):
        stem = Path(name).stem
        files = [f"{stem}.png"] + ([] if args.no_mirror else [f"{stem}-mirror.png"])
        clash = [f for f in files if f in taken]
        if clash:  # a.jpg and a.png, or a-mirror.jpg beside a.jpg: no cut-out overwrites another
            skipped[name] = f"its cut-out {clash[0]} is already {taken[clash[0]]}'s"
            continue
        try:
            cutout, why = cut_from_photo(remover, np.asarray(read_image(photos / name).rgb), not args.frames_only,
                                         args.see_through)
        except InputError as e:
            cutout, why = None, str(e)
        if cutout is None:
            skipped[name] = why
            continue
        for f, c in zip(files, (cutout, cutout.mirrored())):
            write_cutout(out / f, c)
            taken[f] = name
            written += 1
    for name, why in skipped.items():
        print(f"byeglasses cut-glasses: skipped {name}: {why}", file=sys.stderr)
    print(f"cut-glasses: {len(names) - len(skipped)} of {len(names)} photos cut out, {written} images in "
          f"{out}; {len(skipped)} skipped")
    return 0
