"""`byeglasses remove` (glasses off users' photos, in batch) and `byeglasses demo` (the astronaut)."""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import ByeGlassesError
from ..files import IMAGE_SUFFIXES, is_image, list_images
from ..pipeline.remover import BLENDS, RemovalSettings


DEFAULTS = RemovalSettings()


def _add_model_options(p) -> None:
    p.add_argument("--checkpoint", default=DEFAULTS.checkpoint,
                   help="generator checkpoint (.safetensors); default: the model shipped with the package")
    p.add_argument("--device", default=DEFAULTS.device,
                   help="cpu, cuda, cuda:N or mps; default: CUDA, else MPS, else CPU")
    p.add_argument("--backend", choices=("torch", "onnx"), default=DEFAULTS.backend,
                   help="run the generator with PyTorch or with ONNX Runtime (CPU)")
    p.add_argument("--onnx", default=None, help="ONNX generator for --backend onnx (see `byeglasses export-onnx`)")
    p.add_argument("--threshold", type=float, default=DEFAULTS.threshold,
                   help="glasses-mask probability from which a pixel counts as glasses")
    p.add_argument("--glasses-threshold", type=float, default=DEFAULTS.glasses_threshold,
                   help="faces the glasses classifier gives a lower P(glasses) are left untouched; 0: process every face")
    p.add_argument("--classifier", default=DEFAULTS.classifier,
                   help="glasses-classifier weights (`byeglasses train-classifier`); default: the shipped classifier")
    p.add_argument("--blend", choices=BLENDS, default=DEFAULTS.blend,
                   help="mask: take the model's output over the whole glasses region; change: keep the pixels "
                        "the model barely changes (eyes behind clear lenses: sharper eyes, more frames left); "
                        "lens: keep the face seen through clear or lightly tinted lenses with its tint taken off, "
                        "and the model's output for frames, dark lenses and glare")
    p.add_argument("--no-frame-lines", action="store_true",
                   help="--blend lens: let the photo's thin lines along the frame through like the rest of the "
                        "face behind a lens (by default they take the model's pixels: thin metal rims go)")
    p.add_argument("--colour-match", action="store_true", default=DEFAULTS.colour_match,
                   help="take the model's smooth drift in brightness and colour off before blending, measured "
                        "around the glasses (faces stay a little closer to their person: docs/verification.md, "
                        "\"Colour match\"; off by default, as it left glasses on one more face in 77)")
    p.add_argument("--skip-invented-eyes", action="store_true", default=DEFAULTS.skip_invented_eyes,
                   help="leave a face alone when the model would have to invent its eyes (most of them hidden, "
                        "as behind sunglasses): the glasses stay on, and the face stays closer to its person "
                        "(docs/verification.md, \"Leaving sunglasses on\"); copied unchanged if no other face changes")
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
    """The flags present on this command, onto RemovalSettings (same names; --no-cnn-fallback, --no-frame-lines)."""
    given = {f.name: getattr(args, f.name) for f in fields(RemovalSettings) if hasattr(args, f.name)}
    if hasattr(args, "no_cnn_fallback"):
        given["cnn_fallback"] = not args.no_cnn_fallback
    if hasattr(args, "no_frame_lines"):
        given["frame_lines"] = not args.no_frame_lines
    return RemovalSettings(**given)


def configure_parser(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (their images) or glob patterns")
    p.add_argument("-o", "--outdir", required=True, help="folder for the outputs, named like the inputs")
    _add_model_options(p)
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
    p.add_argument("--overwrite", action="store_true",
                   help="redo inputs that manifest.jsonl in OUTDIR lists as done, and replace files already in "
                        "OUTDIR under an output's name (without it, a rerun skips what is done and never "
                        "replaces a file it did not write)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that read, detect and align upcoming photos while the generator runs; "
                        "0: all in this process; default: the cores left after this process, at most 4")
    p.add_argument("--batch-size", type=int, default=16,
                   help="faces per generator call, gathered across photos")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="for job arrays (SLURM and the like): take every N-th input from the K-th (0-based) "
                        "and write manifest.part-K-of-N.jsonl; the parts merge into manifest.jsonl as each "
                        "job ends. Under torchrun, ranks shard by themselves")


def collect_inputs(specs: List[str]) -> Tuple[List[Path], List[str], List[str]]:
    """Files named, images inside folders named (not recursive), and glob matches; a message for
    each spec that matched nothing, and notes on what a folder holds that is not searched
    (subfolders) or cannot be read (broken links, which are kept as inputs and fail by name)."""
    files, problems, notes, seen = [], [], [], set()

    def add(path: Path):
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = [path / name for name in list_images(path)]
            subfolders = 0
            for entry in sorted(path.iterdir()):
                if entry.is_symlink() and not entry.exists() and is_image(entry.name):
                    found.append(entry)  # reading it says what is wrong
                elif entry.is_dir() and not entry.name.startswith("."):
                    subfolders += 1
                    if subfolders <= 3:
                        notes.append(f"{entry}: subfolder not searched (folders are not searched recursively; "
                                     "name it to include it)")
            if subfolders > 3:
                notes.append(f"{path}: {subfolders - 3} more subfolder(s) not searched")
            if not found:
                problems.append(f"{spec}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            for p in sorted(found):
                add(p)
        elif path.exists() or path.is_symlink():
            add(path)
        elif glob.has_magic(spec):
            matches = sorted(Path(m) for m in glob.glob(spec))
            matches = [m for m in matches if m.is_file() or (m.is_symlink() and not m.exists())]
            if not matches:
                problems.append(f"{spec}: the pattern matches no file")
            for p in matches:
                add(p)
        else:
            problems.append(f"{spec}: no such file or folder")
    return files, problems, notes


def parse_shard(text: Optional[str]) -> Tuple[int, int]:
    if text is None:
        return (0, 1)
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ByeGlassesError(f"--shard must be K/N (e.g. 0/4), got {text!r}") from None
    return k, n


def run(args) -> int:
    from tqdm import tqdm

    from ..device import pick_device
    from ..pipeline import manifest
    from ..pipeline.batch import BatchOptions, Interrupted, Runner, check_writable, default_workers, plan
    from ..pipeline.remover import GlassesRemover
    from ..training import distributed

    settings = settings_from_args(args)  # before reading any photo: bad settings stop the run at once
    torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if torchrun and args.shard:
        raise ByeGlassesError("--shard is for job arrays; under torchrun each process takes its shard by itself")
    options = BatchOptions(quality=args.quality, save_masks=args.save_masks, side_by_side=args.side_by_side,
                           overwrite=args.overwrite, batch_size=args.batch_size,
                           workers=default_workers(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
                           if args.workers is None else args.workers,
                           shard=(int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])) if torchrun
                           else parse_shard(args.shard))
    files, problems, notes = collect_inputs(args.inputs)
    outdir = Path(args.outdir)
    if outdir.is_dir():
        for f in files:
            if f.parent.resolve() == outdir.resolve():
                raise ByeGlassesError(f"--outdir {outdir} holds the input {f}: outputs would overwrite inputs; "
                                      "choose another folder")
    k, n = options.shard
    lead = k == 0
    if lead:
        for message in problems:
            print(f"byeglasses remove: error: {message}", file=sys.stderr)
        for message in notes:
            print(f"byeglasses remove: note: {message}", file=sys.stderr)
    if not files:
        print("byeglasses remove: no input to process", file=sys.stderr)
        return 1
    check_writable(outdir)  # before any model work

    jobs = plan(files, outdir, options, manifest.read_all(outdir))
    if torchrun:
        distributed.init(pick_device(settings.device))
    remover = GlassesRemover(settings=settings)
    sharded = n > 1
    part = outdir / (manifest.part_name(k, n) if sharded else manifest.NAME)
    bar = tqdm(total=sum(1 for j in jobs if j.index % n == k), desc="removing glasses", unit="photo",
               disable=None if lead else True)

    def say(line: str, error: bool) -> None:
        bar.write(line, file=sys.stderr if error else sys.stdout)

    runner = Runner(remover, jobs, outdir, options, say, bar.update)
    try:
        runner.run(part)
    except Interrupted as e:
        bar.close()
        print(f"byeglasses remove: stopped by {e} ({bar.n} photo(s) finished, each in {part.name}); rerun the "
              "same command to go on", file=sys.stderr)
        return 128 + e.signum
    bar.close()
    if torchrun:
        distributed.barrier()
        records = manifest.merge(outdir, manifest.parts(outdir)) if lead else None
    elif sharded:  # a job of an array: merge its own part; the others merge theirs
        records = manifest.merge(outdir, [part], lock=True)
    else:
        records = manifest.merge(outdir, manifest.parts(outdir))
    code = _summary(records, jobs, problems, outdir, runner.skipped if not torchrun else None) if lead or not torchrun else 0
    if torchrun:
        code = distributed.gather(code)[0]
        distributed.shutdown()
    return code


def _summary(records, jobs, problems, outdir: Path, skipped) -> int:
    """The one-line summary from the manifest lines of this run's inputs; returns the exit code."""
    from ..pipeline import manifest

    mine = [records.get(str(j.input)) for j in jobs]
    counts = {status: 0 for status in manifest.STATUSES}
    for record in mine:
        if record is not None:
            counts[record["status"]] = counts.get(record["status"], 0) + 1
    missing = sum(r is None for r in mine)  # other shards of a job array still at work
    failed = counts["failed"] + len(problems)
    line = (f"done: {len(jobs) + len(problems)} input(s): {counts['removed']} with glasses removed, "
            f"{counts['no glasses']} without glasses (copied unchanged), {counts['no face']} with no face found, "
            f"{failed} failed")
    if counts["left alone"]:
        line += f"; {counts['left alone']} left alone with their glasses (--skip-invented-eyes, copied unchanged)"
    if skipped:
        line += f"; {skipped} already done by an earlier run"
    if missing:
        line += f"; {missing} not yet in the manifest (other shards)"
    print(f"{line}; outputs and {outdir / 'manifest.jsonl'} in {outdir}")
    return 1 if failed or counts["no face"] else 0


def remover_min_face(remover, shape) -> float:
    """The smallest face, in pixels, that `remover` searches for in a photo of `shape`."""
    from ..pipeline.remover import HOG_FACE

    return HOG_FACE / remover.detection_scale(shape)
