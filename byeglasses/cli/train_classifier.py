"""`byeglasses train-classifier`: train the glasses classifier that `remove` asks whether a face wears glasses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ByeGlassesError
from ..files import list_images
from ..training.classifier import train_classifier


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", required=True, help="glasses-free faces; glasses are synthesized onto them "
                   "(the reference is ../shared/data/celebahq256/train)")
    p.add_argument("--real", action="append", default=[], metavar="DIR",
                   help="folder of real photos of people wearing glasses (repeatable); "
                        "e.g. ../shared/data/celebahq256/real-glasses-train")
    p.add_argument("--exclude", action="append", default=[], metavar="DIR",
                   help="leave out of --real every photo whose name is also in this folder (an evaluation set)")
    p.add_argument("--out", required=True, help="where to write the classifier (.safetensors)")
    p.add_argument("--count", type=int, default=6000, help="glasses-free faces to use (each with and without glasses)")
    p.add_argument("--copies", type=int, default=20, help="jittered views of each real photo")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--faded", type=float, default=0.0,
                   help="share of the synthesized positives whose glasses are faded to 20-60%% (the traces "
                        "removal can leave still count as glasses; default: 0)")
    p.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    for name, value, low in (("--count", args.count, 1), ("--copies", args.copies, 1), ("--epochs", args.epochs, 1)):
        if value < low:
            raise ByeGlassesError(f"{name} must be {low} or more, got {value}")
    if not 0.0 <= args.faded <= 1.0:
        raise ByeGlassesError(f"--faded must be within 0..1, got {args.faded}")
    if not args.real:
        raise ByeGlassesError("--real: give at least one folder of real glasses photos")
    for d in [args.faces, *args.real, *args.exclude]:
        if not Path(d).is_dir():
            raise ByeGlassesError(f"{d}: no such folder")
    out = Path(args.out)
    if out.is_dir():
        raise ByeGlassesError(f"--out {out}: is a folder; name the .safetensors file to write")
    exclude = sorted({n for d in args.exclude for n in list_images(d)})
    val = train_classifier(args.faces, args.real, out, count=args.count, real_copies=args.copies,
                           epochs=args.epochs, seed=args.seed, exclude=exclude, faded=args.faded)
    print(json.dumps(val, indent=2))
    print(f"wrote {out}: held-out synthetic-glasses recall {val['synthetic_glasses_recall']:.3f}, glasses-free "
          f"specificity {val['glasses_free_specificity']:.3f}, real-glasses recall {val['real_glasses_recall']:.3f} "
          f"in {val['seconds']:.0f} s")
    return 0
