"""`byeglasses remove` (glasses off users' photos, in batch) and `byeglasses demo` (the astronaut)."""

from __future__ import annotations

import glob
import shutil
import sys
from dataclasses import fields
from pathlib import Path
from typing import List, Tuple

import numpy as np

from ..errors import ByeGlassesError, InputError
from ..files import IMAGE_SUFFIXES, atomic_write, list_images
from ..pipeline.imageio import compose, format_notes, output_name, read_image, write_image, write_rgb
from ..pipeline.remover import RemovalSettings


DEFAULTS = RemovalSettings()


def _add_model_options(p) -> None:
    p.add_argument("--checkpoint", default=DEFAULTS.checkpoint,
                   help="generator checkpoint (.safetensors); default: the model shipped with the package")
    p.add_argument("--device", default=DEFAULTS.device,
                   help="cpu, cuda, cuda:N or mps; default: CUDA, else MPS, else CPU")
    p.add_argument("--threshold", type=float, default=DEFAULTS.threshold,
                   help="glasses-mask probability from which a pixel counts as glasses")
    p.add_argument("--glasses-threshold", type=float, default=DEFAULTS.glasses_threshold,
                   help="faces the glasses classifier gives a lower P(glasses) are left untouched; 0: process every face")
    p.add_argument("--classifier", default=DEFAULTS.classifier,
                   help="glasses-classifier weights (`byeglasses train-classifier`); default: the shipped classifier")
    p.add_argument("--blend", choices=("mask", "change"), default=DEFAULTS.blend,
                   help="mask: take the model's output over the whole glasses region; change: keep the pixels "
                        "the model barely changes (eyes behind clear lenses: sharper eyes, more frames left)")
    p.add_argument("--passes", type=int, default=DEFAULTS.passes,
                   help="faces the classifier still judges as wearing glasses go through the model again, "
                        "up to this many passes in all")
    p.add_argument("--change-low", type=float, default=DEFAULTS.change_low,
                   help="--blend change: a pixel the model changes by less (smoothed, levels of 255) keeps its value")
    p.add_argument("--change-high", type=float, default=DEFAULTS.change_high,
                   help="--blend change: a pixel the model changes by more takes the model's value")
    p.add_argument("--min-area", type=float, default=DEFAULTS.min_area,
                   help="also leave faces alone whose glasses area (fraction of the aligned face crop) is smaller")
    p.add_argument("--min-change", type=float, default=DEFAULTS.min_change,
                   help="also leave faces alone whose predicted glasses region the model would change by less "
                        "(mean, levels of 255)")


def settings_from_args(args) -> RemovalSettings:
    """The flags present on this command, onto RemovalSettings (same names; --no-cnn-fallback)."""
    given = {f.name: getattr(args, f.name) for f in fields(RemovalSettings) if hasattr(args, f.name)}
    if hasattr(args, "no_cnn_fallback"):
        given["cnn_fallback"] = not args.no_cnn_fallback
    return RemovalSettings(**given)


def configure_parser(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (their images) or glob patterns")
    p.add_argument("-o", "--outdir", required=True, help="folder for the outputs, named like the inputs")
    _add_model_options(p)
    p.add_argument("--backend", choices=("torch", "onnx"), default=DEFAULTS.backend,
                   help="run the generator with PyTorch or with ONNX Runtime (CPU)")
    p.add_argument("--onnx", default=None, help="ONNX generator for --backend onnx (see `byeglasses export-onnx`)")
    p.add_argument("--min-face", type=float, default=DEFAULTS.min_face,
                   help="smallest face to process, in pixels (dlib box side); default: 1/8 of the photo's "
                        "long side, at least 80. Smaller values find smaller faces but detect more slowly")
    p.add_argument("--no-cnn-fallback", action="store_true",
                   help="do not retry photos where the fast HOG detector finds no face with dlib's CNN "
                        "detector (slower: ~0.3 s per 256 px, ~2 s per megapixel on one core)")
    p.add_argument("--quality", type=int, default=95, help="JPEG / WebP quality of the outputs (1-100)")
    p.add_argument("--save-masks", action="store_true",
                   help="also write NAME.glasses.png (predicted glasses probability) and NAME.blend.png "
                        "(where the output was blended in)")
    p.add_argument("--side-by-side", action="store_true", help="also write NAME.side-by-side.jpg: input | output")


def _check_options(args) -> None:
    if not 1 <= getattr(args, "quality", 95) <= 100:
        raise ByeGlassesError(f"--quality must be within 1..100, got {args.quality}")


def collect_inputs(specs: List[str]) -> Tuple[List[Path], List[str]]:
    """Files named, images inside folders named (not recursive), and glob matches; plus a message
    for each spec that matched nothing."""
    files, problems, seen = [], [], set()

    def add(path: Path):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = [path / name for name in list_images(path)]
            if not found:
                problems.append(f"{spec}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            for p in found:
                add(p)
        elif path.exists() or path.is_symlink():
            add(path)
        elif glob.has_magic(spec):
            matches = sorted(Path(m) for m in glob.glob(spec))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                problems.append(f"{spec}: the pattern matches no file")
            for p in matches:
                add(p)
        else:
            problems.append(f"{spec}: no such file or folder")
    return files, problems


def run(args) -> int:
    from tqdm import tqdm

    from ..pipeline.remover import GlassesRemover

    _check_options(args)
    settings = settings_from_args(args)  # before reading any photo: bad settings stop the run at once
    files, problems = collect_inputs(args.inputs)
    outdir = Path(args.outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ByeGlassesError(f"--outdir {outdir} exists and is not a folder")
    if outdir.exists():
        for f in files:
            if f.parent.resolve() == outdir.resolve():
                raise ByeGlassesError(f"--outdir {outdir} holds the input {f}: outputs would overwrite inputs; "
                                      "choose another folder")
    for message in problems:
        print(f"byeglasses remove: error: {message}", file=sys.stderr)
    if not files:
        print("byeglasses remove: no input to process", file=sys.stderr)
        return 1
    inputs = {f.resolve() for f in files}

    remover = GlassesRemover(settings=settings)
    counts = {"written": 0, "no glasses": 0, "failed": len(problems)}
    used = {}  # output name -> input that claimed it
    bar = tqdm(files, desc="removing glasses", unit="photo", disable=None)
    for path in bar:
        try:
            status = _remove_one(path, remover, outdir, inputs, used, args, bar.write)
            counts[status] += 1
        except (InputError, OSError) as e:
            message = str(e) if str(path) in str(e) else f"{path}: {e}"
            bar.write(f"byeglasses remove: error: {message}", file=sys.stderr)
            counts["failed"] += 1
        except Exception as e:  # noqa: BLE001 - one bad photo must not stop the batch
            bar.write(f"byeglasses remove: error: {path}: unexpected {type(e).__name__}: {e}", file=sys.stderr)
            counts["failed"] += 1
    bar.close()
    print(f"done: {len(files) + len(problems)} input(s): {counts['written']} with glasses removed and "
          f"{counts['no glasses']} without glasses (copied unchanged) in {outdir}; {counts['failed']} failed "
          "(unreadable, or no face)")
    return 1 if counts["failed"] else 0


def _remove_one(path: Path, remover, outdir: Path, inputs, used, args, say) -> str:
    photo = read_image(path)
    name = output_name(photo)
    out_path = outdir / name
    stem = Path(name).stem
    extra = [outdir / f"{stem}.glasses.png", outdir / f"{stem}.blend.png", outdir / f"{stem}.side-by-side.jpg"]
    for target in [out_path] + extra:
        if target.resolve() in inputs:
            raise InputError(f"{path}: its output {target} would overwrite an input; choose another --outdir")
    if name in used:
        raise InputError(f"{path}: same output name {name} as {used[name]}; rename one of them")
    used[name] = path

    result = remover.remove(photo.rgb)
    for note in format_notes(photo):
        say(f"{path}: note: {note}")
    if not result.faces:
        raise InputError(f"{path}: no face found (faces are searched from "
                         f"{remover_min_face(remover, photo.rgb.shape):.0f} px; see --min-face); nothing written")
    if args.save_masks:
        write_rgb(extra[0], np.rint(result.glasses_mask * 255).astype(np.uint8))
        write_rgb(extra[1], np.ceil(result.blend_mask * 255).astype(np.uint8))  # 0 exactly where unchanged
    faces = ", ".join(f"face {i + 1} at {f.box[:2]}: glasses p={f.glasses_probability:.2f}, {f.reason}"
                      for i, f in enumerate(result.faces))
    if not result.changed:  # the photo is its own answer: copied byte for byte, metadata and all
        atomic_write(out_path, lambda tmp: shutil.copyfile(path, tmp))
        say(f"{path}: {faces}; copied unchanged -> {out_path}")
        return "no glasses"
    native = compose(photo, result.image, result.blend_mask > 0)
    write_image(out_path, native, photo, quality=args.quality)
    if args.side_by_side:
        write_rgb(extra[2], np.concatenate([photo.rgb, result.image], axis=1), quality=args.quality)
    say(f"{path}: {faces} -> {out_path}")
    return "written"


def remover_min_face(remover, shape) -> float:
    from ..pipeline.remover import HOG_FACE

    return HOG_FACE / remover.detection_scale(shape)
