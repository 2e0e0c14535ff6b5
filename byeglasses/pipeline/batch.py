"""The batch runner behind `byeglasses remove`: every output name planned up front (no two
outputs share a path, none replaces a file it does not own), inputs an earlier run finished
skipped (manifest.jsonl), photos decoded, detected and aligned in data-loader workers while the
generator runs on the faces of several photos at once, each photo's files written whole and
checked, its manifest line appended, and the inputs sharded over processes (torchrun, or
`--shard K/N` for job arrays)."""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..errors import ByeGlassesError, InputError
from ..files import stale_temps, write_temp
from . import manifest
from .imageio import IncompleteWrite, Photo, check_decodes, compose, format_notes, output_name, read_image
from .imageio import write_image, write_rgb
from .remover import HOG_FACE, LEFT_ALONE, GlassesRemover, Prepared, invented_note

# Extra outputs: kind -> what follows the output's stem.
EXTRAS = {"glasses": ".glasses.png", "blend": ".blend.png", "side-by-side": ".side-by-side.jpg"}
# Input suffixes whose format is written back as itself; any other input becomes a PNG.
KEPT_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".mpo", ".png", ".webp", ".tif", ".tiff", ".bmp"})


@dataclass
class BatchOptions:
    quality: int = 95  # JPEG / WebP quality of the outputs
    save_masks: bool = False  # also NAME.glasses.png and NAME.blend.png
    side_by_side: bool = False  # also NAME.side-by-side.jpg
    overwrite: bool = False  # redo inputs the manifest lists as done; replace files already in OUTDIR
    workers: int = 0  # data-loader processes preparing photos ahead of the generator; 0: in this process
    batch_size: int = 16  # faces per generator call, gathered across photos
    shard: Tuple[int, int] = (0, 1)  # (k, n): this process takes inputs i with i % n == k

    def __post_init__(self):
        if not 1 <= self.quality <= 100:
            raise ByeGlassesError(f"--quality must be within 1..100, got {self.quality}")
        if self.workers < 0:
            raise ByeGlassesError(f"--workers must be 0 or more, got {self.workers}")
        if self.batch_size < 1:
            raise ByeGlassesError(f"--batch-size must be 1 or more, got {self.batch_size}")
        k, n = self.shard
        if not (n >= 1 and 0 <= k < n):
            raise ByeGlassesError(f"--shard must be K/N with 0 <= K < N, got {k}/{n}")


@dataclass
class Job:
    index: int  # position among all inputs, sorted
    input: Path  # absolute
    output: str  # file name in OUTDIR
    extras: Dict[str, str] = field(default_factory=dict)  # kind -> file name in OUTDIR
    problem: Optional[str] = None  # why it cannot be done (reported as failed)
    done: Optional[dict] = None  # its manifest line, when an earlier run finished it (skipped if its files decode)
    owned: frozenset = frozenset()  # names an earlier run wrote for this input: a redo may replace them


def predicted_name(path: Path) -> str:
    """The output's name as `output_name` will give it, from the file name alone."""
    return path.name if path.suffix.lower() in KEPT_SUFFIXES else path.stem + ".png"


def plan(files: List[Path], outdir: Path, options: BatchOptions, records: Dict[str, dict]) -> List[Job]:
    """One Job per input, sorted by path, each with its own output names: an input keeps its name
    where it can; a converted input whose name is taken becomes `NAME.SUFFIX.png`, a second input
    of the same name (from another folder) `STEM~2.SUFFIX`; extra outputs
    wanted by two inputs (a.jpg and a.png) or named like another output become `NAME.SUFFIX.KIND`."""
    outdir = Path(outdir)
    paths = sorted({Path(os.path.abspath(f)) for f in files}, key=str)
    jobs = [Job(i, p, predicted_name(p)) for i, p in enumerate(paths)]
    taken = {manifest.NAME.casefold()}

    def claim(candidates: List[str]) -> str:
        for name in candidates:
            if name.casefold() not in taken:
                taken.add(name.casefold())
                return name
        stem, suffix = os.path.splitext(candidates[0])
        i = 2
        while f"{stem}~{i}{suffix}".casefold() in taken:
            i += 1
        taken.add(f"{stem}~{i}{suffix}".casefold())
        return f"{stem}~{i}{suffix}"

    # outputs named like their input first, then converted ones
    for job in sorted(jobs, key=lambda j: (j.output != j.input.name, j.index)):
        converted = job.output != job.input.name  # a.gif -> a.png, else a.gif.png; a second a.jpg -> a~2.jpg
        job.output = claim([job.output, job.input.name + Path(job.output).suffix] if converted else [job.output])
    kinds = [k for k, on in (("glasses", options.save_masks), ("blend", options.save_masks),
                             ("side-by-side", options.side_by_side)) if on]
    wanted: Dict[str, int] = {}
    for job in jobs:
        for kind in kinds:
            name = (Path(job.output).stem + EXTRAS[kind]).casefold()
            wanted[name] = wanted.get(name, 0) + 1
    for job in jobs:
        for kind in kinds:
            plain, full = Path(job.output).stem + EXTRAS[kind], job.output + EXTRAS[kind]
            job.extras[kind] = claim([full] if wanted[plain.casefold()] > 1 else [plain, full])

    inputs = {str(p) for p in paths}
    present = {p.name for p in outdir.iterdir()} if outdir.is_dir() else set()
    for job in jobs:
        record = records.get(str(job.input))
        if record:
            job.owned = frozenset(n for n in [record.get("output")] + list(record.get("extras", {}).values()) if n)
            if record.get("status") in manifest.DONE and not options.overwrite:
                job.done = record
        names = [job.output] + list(job.extras.values())
        clash = [n for n in names if os.path.abspath(outdir / n) in inputs or
                 os.path.realpath(outdir / n) in inputs]
        if clash:
            job.problem = f"{job.input}: its output {outdir / clash[0]} would overwrite an input; choose another --outdir"
            continue
        foreign = [n for n in names if n in present and n not in job.owned]
        if foreign and not options.overwrite and job.done is None:
            job.problem = (f"{job.input}: {outdir / foreign[0]} already exists and no earlier run wrote it for "
                           "this input (see manifest.jsonl); use --overwrite to replace it")
    return jobs


# -- the work of one process ---------------------------------------------------------------------


@dataclass
class _Item:
    """What a data-loader worker hands over for one job."""

    job: Job
    seconds: float = 0.0
    skipped: bool = False
    error: Optional[str] = None
    photo: Optional[Photo] = None
    prepared: Optional[Prepared] = None


class _Prepare(torch.utils.data.Dataset):
    """Reads and prepares the photos of `jobs` (in workers): decode, detect, align."""

    def __init__(self, remover: GlassesRemover, jobs: List[Job], outdir: Path):
        self.remover, self.jobs, self.outdir = remover, jobs, outdir

    def __len__(self):
        return len(self.jobs)

    def __getitem__(self, i: int) -> _Item:
        job = self.jobs[i]
        t = time.perf_counter()
        item = _Item(job)
        try:
            if job.problem:
                item.error = job.problem
            elif job.done is not None and _still_there(self.outdir, job.done):
                item.skipped = True
            else:
                item.photo = read_image(job.input)
                item.prepared = self.remover.prepare(item.photo.rgb)
        except InputError as e:
            item.error = str(e)
        except OSError as e:
            item.error = f"{job.input}: cannot be read ({e.strerror or e})"
        except Exception as e:  # noqa: BLE001 - one bad photo must not stop the batch
            item.error = f"{job.input}: unexpected {type(e).__name__}: {e}"
        item.seconds = time.perf_counter() - t
        return item


def _still_there(outdir: Path, record: dict) -> bool:
    """Whether every file a manifest line lists is in OUTDIR and decodes."""
    for name in [record.get("output")] + list(record.get("extras", {}).values()):
        if not name:
            continue
        try:
            check_decodes(outdir / name)
        except OSError:
            return False
    return True


def _as_is(item):
    return item


def _worker_init(_):
    import cv2

    cv2.setNumThreads(1)


def _start_method() -> str:
    """Fresh worker processes, not forks: a fork of a process whose other threads hold locks (a
    previous loader's queue feeder, tqdm's monitor, OpenCV's pool) can hang in the child."""
    import multiprocessing

    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _detached(remover: GlassesRemover) -> GlassesRemover:
    """The remover without its networks, for the workers: `prepare` needs only the settings."""
    light = copy.copy(remover)
    light.generator, light._session, light.judge = None, None, None
    return light


class Interrupted(BaseException):
    """SIGTERM or SIGINT: the run stops after the photo being written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Signals:
    """Turns SIGTERM and SIGINT into Interrupted, held back while a photo's files take their names."""

    def __init__(self):
        self.signum, self.holding, self.old = None, False, {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self.old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self.old.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        self.signum = signum
        if not self.holding:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.signum is not None:
            raise Interrupted(self.signum)


@dataclass
class Runner:
    """Runs this process's shard of `jobs`; `say(line, error)` prints a line."""

    remover: GlassesRemover
    jobs: List[Job]
    outdir: Path
    options: BatchOptions
    say: Callable[[str, bool], None]
    progress: Callable[[int], None] = lambda n: None
    planned: frozenset = frozenset()  # every planned output name, all shards

    def __post_init__(self):
        k, n = self.options.shard
        self.mine = [j for j in self.jobs if j.index % n == k]
        self.planned = frozenset(name.casefold() for j in self.jobs for name in [j.output, *j.extras.values()])
        self.skipped = 0

    def run(self, manifest_path: Path) -> None:
        for job in self.mine:  # files a killed run left half-written
            for name in [job.output, *job.extras.values()]:
                for tmp in stale_temps(self.outdir / name):
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
        workers = min(self.options.workers, len(self.mine))
        loader = torch.utils.data.DataLoader(
            _Prepare(_detached(self.remover) if workers else self.remover, self.mine, self.outdir),
            batch_size=None, shuffle=False, num_workers=workers, collate_fn=_as_is,
            worker_init_fn=_worker_init if workers else None, prefetch_factor=2 if workers else None,
            multiprocessing_context=_start_method() if workers else None)
        appender = manifest.Appender(manifest_path)
        pending: List[_Item] = []
        with _Signals() as signals:
            try:
                for item in loader:
                    pending.append(item)
                    faces = sum(len(i.prepared.faces) for i in pending if i.prepared)
                    if faces >= self.options.batch_size or len(pending) >= self.options.batch_size:
                        self._flush(pending, appender, signals)
                        pending = []
                self._flush(pending, appender, signals)
            except Exception:
                if signals.signum is not None:  # a worker killed by the same signal
                    raise Interrupted(signals.signum) from None
                raise
            finally:
                appender.close()
                del loader

    def _flush(self, items: List[_Item], appender: manifest.Appender, signals: _Signals) -> None:
        """The generator on the faces of all `items` at once, then each photo finished in order."""
        with_faces = [i for i in items if i.prepared is not None and i.prepared.faces]
        t = time.perf_counter()
        if with_faces:  # the classifier, then the generator on the faces wearing glasses, of all photos at once
            probabilities, generated = self.remover.classify_and_generate(
                np.concatenate([i.prepared.crops for i in with_faces]), {})
        starts, start = {}, 0
        for item in with_faces:
            starts[id(item)] = start
            start += len(item.prepared.faces)
        # each photo finished, then the extra passes of all of them batched together; what fails is
        # kept to be reported with its photo below
        results: Dict[int, object] = {}
        for item in with_faces:
            a, b = starts[id(item)], starts[id(item)] + len(item.prepared.faces)
            try:
                results[id(item)] = self.remover.finish(item.prepared, probabilities[a:b],
                                                        {i - a: out for i, out in generated.items() if a <= i < b})
            except Exception as e:  # noqa: BLE001 - reported with its photo
                results[id(item)] = e
        done = [item for item in with_faces if not isinstance(results[id(item)], Exception)]
        if done:
            try:
                more = self.remover.more_passes_many([results[id(i)] for i in done], [i.prepared.faces for i in done])
            except Exception:  # noqa: BLE001 - one photo at a time, so that one bad photo names itself
                more = []
                for item in done:
                    try:
                        more.append(self.remover.more_passes(results[id(item)], item.prepared.faces))
                    except Exception as e:  # noqa: BLE001
                        more.append(e)
            results.update((id(item), r) for item, r in zip(done, more))
        share = (time.perf_counter() - t) / max(1, len(with_faces))
        for item in items:
            if item.skipped:
                self.skipped += 1
                self.progress(1)
                continue
            t = time.perf_counter()
            record = {"input": str(item.job.input), "output": None, "extras": {}, "status": "failed",
                      "reason": None, "faces": [], "notes": []}
            staged: List[Tuple[str, Path]] = []
            try:
                if item.error is not None:
                    record["reason"] = item.error
                elif not item.prepared.faces:
                    record["status"] = "no face"
                    record["reason"] = (f"{item.job.input}: no face found (faces are searched from "
                                        f"{HOG_FACE / self.remover.detection_scale(item.photo.rgb.shape):.0f} px; "
                                        "see --min-face); nothing written")
                else:
                    result = results[id(item)]
                    if isinstance(result, Exception):
                        raise result
                    staged = self._write(item, result, record)
                    record["ms"] = round(1000 * (item.seconds + share + time.perf_counter() - t), 1)
            except OSError as e:
                record.update(status="failed", reason=_write_error(item.job.input, e), output=None, extras={})
            except InputError as e:
                record.update(status="failed", reason=str(e), output=None, extras={})
            except Exception as e:  # noqa: BLE001 - one bad photo must not stop the batch
                record.update(status="failed", reason=f"{item.job.input}: unexpected {type(e).__name__}: {e}",
                              output=None, extras={})
            record.setdefault("ms", round(1000 * (item.seconds + time.perf_counter() - t), 1))
            record["time"], record["rank"] = time.time(), self.options.shard[0]
            try:
                with signals.held():  # the line and the files' names together, or neither
                    appender.append(record)
                    for tmp, path in staged:
                        os.replace(tmp, path)
                    staged = []
            finally:
                _discard(staged)
            self._report(item, record)
            self.progress(1)

    def _write(self, item: _Item, result, record: dict) -> List[Tuple[str, Path]]:
        """Each file of one photo written to a temporary name and decoded back; returns (tmp, path)."""
        job, photo, outdir, q = item.job, item.photo, self.outdir, self.options.quality
        name = self._actual_name(job, photo)
        staged: List[Tuple[str, Path]] = []

        def stage(path, write, verify=None):
            try:
                staged.append((write_temp(path, write, verify), Path(path)))
            except OSError as e:
                e.filename = str(path)  # the output's name, not its temporary file's
                raise

        try:
            record["notes"] = format_notes(photo)
            record["faces"] = [{"box": list(map(int, f.box)), "glasses_probability": round(f.glasses_probability, 4),
                                "glasses_area": round(f.glasses_area, 5), "removed": f.changed, "reason": f.reason,
                                "eyes_kept": round(f.eyes_kept, 3)}
                               for f in result.faces]
            if self.options.save_masks:
                write_rgb(outdir / job.extras["glasses"], np.rint(result.glasses_mask * 255).astype(np.uint8),
                          writer=stage)
                write_rgb(outdir / job.extras["blend"], np.ceil(result.blend_mask * 255).astype(np.uint8),
                          writer=stage)  # 0 exactly where unchanged
                record["extras"].update(glasses=job.extras["glasses"], blend=job.extras["blend"])
            if not result.changed:  # the photo is its own answer: copied byte for byte, metadata and all
                size = job.input.stat().st_size
                stage(outdir / name, lambda tmp: shutil.copyfile(job.input, tmp), lambda tmp: _same_size(tmp, size))
                # a face skip_invented_eyes kept from the model still wears its glasses
                left = any(f.reason.startswith(LEFT_ALONE) for f in result.faces)
                record["status"] = "left alone" if left else "no glasses"
            else:
                native = compose(photo, result.image, result.blend_mask > 0)
                write_image(outdir / name, native, photo, quality=q, writer=stage)
                if self.options.side_by_side:
                    write_rgb(outdir / job.extras["side-by-side"], np.concatenate([photo.rgb, result.image], axis=1),
                              quality=q, writer=stage)
                    record["extras"]["side-by-side"] = job.extras["side-by-side"]
                record["status"] = "removed"
            record["output"] = name
            return staged
        except BaseException:
            _discard(staged)
            raise

    def _actual_name(self, job: Job, photo: Photo) -> str:
        """The planned name, unless the file's content is in another format than its name says."""
        actual = output_name(photo)
        if Path(actual).suffix == Path(job.output).suffix:
            return job.output
        for name in (Path(job.output).stem + Path(actual).suffix, job.input.name + Path(actual).suffix):
            if name.casefold() not in self.planned and (name in job.owned or self.options.overwrite
                                                         or not (self.outdir / name).exists()):
                return name
        raise InputError(f"{job.input}: its content is {photo.format}, written as {Path(actual).suffix}, but every "
                         "name for it is taken; rename the input")

    def _report(self, item: _Item, record: dict) -> None:
        path, status = item.job.input, record["status"]
        for note in record["notes"]:
            self.say(f"{path}: note: {note}", False)
        if status in ("failed", "no face"):
            self.say(f"byeglasses remove: error: {record['reason']}", True)
            return
        faces = ", ".join(f"face {i + 1} at {tuple(f['box'][:2])}: glasses p={f['glasses_probability']:.2f}, "
                          f"{f['reason']}{invented_note(f['removed'], f.get('eyes_kept', 1.0))}"
                          for i, f in enumerate(record["faces"]))
        copied = "; copied unchanged" if status in ("no glasses", "left alone") else ""
        self.say(f"{path}: {faces}{copied} -> {self.outdir / record['output']}", False)


def _same_size(path: str, size: int) -> None:
    if os.path.getsize(path) != size:
        raise IncompleteWrite(f"the copy has {os.path.getsize(path)} of {size} bytes; is the disk full?")


def _discard(staged) -> None:
    for tmp, _ in staged:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write_error(path: Path, e: OSError) -> str:
    """What went wrong writing `path`'s outputs, in words, naming the output (not the temporary file)."""
    target = getattr(e, "filename", None)
    if target and Path(target).name.startswith(".") and Path(target).name.endswith(".tmp"):
        target = Path(target).with_name(Path(target).name[1:].rsplit(".", 2)[0])
    where = f"cannot write {target}" if target else "cannot write its output"
    if isinstance(e, IncompleteWrite):
        why = str(e)
    elif e.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "no space left on the device"
    elif e.errno == errno.EFBIG:
        why = "file too large (a file-size limit, ulimit -f?)"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (is the output folder writable?)"
    else:
        why = e.strerror or str(e)
    return f"{path}: {where}: {why}; nothing written"


def check_writable(outdir: Path) -> None:
    """Create OUTDIR and a file in it, before any model work: a read-only folder is found at once."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ByeGlassesError(f"--outdir {outdir} exists and is not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / f".byeglasses-write-test.{os.getpid()}.tmp"
        with open(probe, "wb") as f:
            f.write(b"x")
        probe.unlink()
    except OSError as e:
        raise ByeGlassesError(f"--outdir {outdir} is not writable ({e.strerror or e})") from None


def default_workers(processes_here: int = 1) -> int:
    """Data-loader workers per process: the cores left after one per process, at most 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores // max(1, processes_here) - 1))
