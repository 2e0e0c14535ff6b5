"""`byeglasses eval-verification`: face verification with the glasses on and after removal."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from ..errors import ByeGlassesError, SettingError
from ..evaluation.frames import FramesLeft
from ..evaluation.verification import gallery_cache, markdown_table, read_lens_labels, run_verification
from ..files import check_output_file, report
from ..pipeline.remover import GlassesRemover, RemovalSettings
from .remove import _add_model_options, settings_from_args


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a folder with glasses/ (photos of people wearing glasses), plain/ (glasses-free "
                   "photos of the same people) and pairs.json ({person: {\"glasses\": [stem, ...], \"plain\": "
                   "[stem, ...]}}); the reference is ../shared/data/celebahq256/fv-dev")
    p.add_argument("--count", type=int, help="use only the first N glasses photos (default: all)")
    p.add_argument("--start", type=int, default=0,
                   help="skip the first K glasses photos (e.g. those settings were tuned on; default: 0)")
    p.add_argument("--out", help="write the results here as JSON, and a markdown table beside it (.md)")
    p.add_argument("--save-outputs", help="write every output photo into this folder (one subfolder per method)")
    p.add_argument("--cache", help="descriptor cache of the glasses-free photos "
                   "(default: ~/.cache/byeglasses/verification/)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:FIELD=V,...",
                   help="also score removal with these settings changed, e.g. 'mask blend:blend=mask' or "
                        "'other model:checkpoint=runs/x/model.safetensors' (repeatable)")
    p.add_argument("--lens-labels", metavar="FILE",
                   help="also give the figures for each kind of lens (clear, tinted, dark), from hand labels: "
                        "{\"labels\": {stem: clear|tinted|dark|other|none}}; fv-dev's: "
                        "benchmarks/fv_dev_lens_labels.json")
    p.add_argument("--telea", action="store_true",
                   help="also score OpenCV Telea inpainting inside the region the model blends in")
    _add_model_options(p)


def parse_variant(text: str, base: RemovalSettings) -> tuple:
    """'NAME:field=value,field=value' -> (NAME, settings)."""
    name, sep, rest = text.partition(":")
    if not sep or not name.strip():
        raise SettingError("variant", f"{text!r}: expected NAME:FIELD=VALUE,...")
    known = {f.name: f for f in fields(RemovalSettings)}
    changes = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in known:
            raise SettingError("variant", f"{text!r}: {key!r} is not a removal setting "
                               f"({', '.join(sorted(known))})")
        default = getattr(base, key)
        try:
            if isinstance(default, bool):
                changes[key] = value.strip().lower() in ("1", "true", "yes")
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                changes[key] = type(default)(value)
            else:
                changes[key] = value.strip() or None
        except ValueError:
            raise SettingError("variant", f"{text!r}: {key}={value!r} is not a number") from None
    return name.strip(), replace(base, **changes)


def _telea(remover: GlassesRemover):
    import cv2

    def method(rgb):
        result = remover.remove(rgb)
        region = (result.blend_mask > 0).astype(np.uint8)
        if not region.any():
            return rgb
        return cv2.inpaint(rgb, region, max(3, round(0.01 * max(rgb.shape[:2]))), cv2.INPAINT_TELEA)
    return method


def run(args) -> int:
    if args.count is not None and args.count < 1:
        raise ByeGlassesError(f"--count must be 1 or more, got {args.count}")
    if args.start < 0:
        raise ByeGlassesError(f"--start must be 0 or more, got {args.start}")
    base = settings_from_args(args)
    variants = [parse_variant(v, base) for v in args.variant]
    if args.out:
        check_output_file(args.out, "out")
    lens_labels = read_lens_labels(args.lens_labels) if args.lens_labels else None
    folder = Path(args.folder)
    for sub in ("glasses", "plain", "pairs.json"):
        if not (folder / sub).exists():
            raise ByeGlassesError(f"{folder}: has no {sub} (expected glasses/, plain/ and pairs.json)")
    remover = GlassesRemover(settings=base)
    methods = {"after removal": lambda rgb: remover.remove(rgb).image}
    for name, settings in variants:
        if name in methods or name == "glasses on":
            raise ByeGlassesError(f"--variant {name!r}: that name is taken")
        other = GlassesRemover(settings=settings)
        methods[name] = lambda rgb, r=other: r.remove(rgb).image
    if args.telea:
        methods["Telea inpainting in the blend region"] = _telea(remover)
    cache = Path(args.cache) if args.cache else gallery_cache(folder / "plain")
    result = run_verification(folder / "glasses", folder / "plain", folder / "pairs.json", methods,
                              glasses_judge=remover.judge, limit=args.count, start=args.start, cache=cache,
                              save_dir=Path(args.save_outputs) if args.save_outputs else None,
                              lens_labels=lens_labels, frames=FramesLeft(device=str(remover.device)))
    result["settings"] = {k: (str(v) if v is not None else None) for k, v in vars(base).items()}
    result["variants"] = {name: {k: str(v) for k, v in vars(s).items() if getattr(base, k) != v}
                          for name, s in variants}
    report(result, markdown_table(result), args.out)
    on, after = result["methods"]["glasses on"], result["methods"]["after removal"]
    print(f"verified {result['probes']} glasses photos of {result['people']} people against {result['gallery']} "
          f"glasses-free photos in {result['seconds']:.0f} s; genuine distance {on['genuine_distance']:.3f} with "
          f"glasses, {after['genuine_distance']:.3f} after removal; TAR@FAR=1% {on['tar_at_far1']:.3f} -> "
          f"{after['tar_at_far1']:.3f}; skipped {len(result['skipped'])}")
    return 0
