"""OUTDIR/manifest.jsonl: what `byeglasses remove` decided for each input, one JSON line per input,
each line appended whole by one write(), so a crash never leaves a line half in the middle of
the file. Processes of one sharded run append to parts (`manifest.part-K-of-N.jsonl`) that are
merged into manifest.jsonl at the end. No torch."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Dict, Iterable, List

from ..errors import ByeGlassesError
from ..files import write_text

NAME = "manifest.jsonl"
# Statuses that are a final decision: a rerun skips these inputs (unless --overwrite).
DONE = frozenset({"removed", "no glasses", "left alone", "no face"})
STATUSES = ("removed", "no glasses", "left alone", "no face", "failed")  # left alone: --skip-invented-eyes


def part_name(k: int, n: int) -> str:
    return f"manifest.part-{k}-of-{n}.jsonl"


def parts(outdir: Path) -> List[Path]:
    return sorted(Path(outdir).glob("manifest.part-*-of-*.jsonl"))


def read_lines(path: Path) -> List[dict]:
    """The whole lines of a manifest file; a torn last line (no newline, or not JSON) is ignored."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in data.split(b"\n")[:-1]:  # the piece after the last newline is torn or empty
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "input" in record and "status" in record:
            records.append(record)
    return records


def latest(files: Iterable[Path]) -> Dict[str, dict]:
    """input -> its most recent line across `files` (by the line's "time")."""
    out: Dict[str, dict] = {}
    for path in files:
        for record in read_lines(path):
            old = out.get(record["input"])
            if old is None or record.get("time", 0) >= old.get("time", 0):
                out[record["input"]] = record
    return out


def read_all(outdir: Path) -> Dict[str, dict]:
    """input -> latest line, from manifest.jsonl and every part left by an earlier run."""
    return latest([Path(outdir) / NAME] + parts(outdir))


class Appender:
    """Appends one record per call to a manifest file: one write() of the whole line, O_APPEND.
    On opening, a torn last line left by a crash is cut off, so the next line starts clean."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        _cut_torn_tail(self.fd)

    def append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        try:
            written = os.write(self.fd, data)
        except OSError as e:
            raise ByeGlassesError(f"cannot append to {self.path}: {e.strerror or e}") from None
        if written != len(data):
            _cut_torn_tail(self.fd)
            raise ByeGlassesError(f"cannot append to {self.path}: short write (disk full?)")

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None


def _cut_torn_tail(fd: int) -> None:
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return
    keep = size
    while keep > 0:  # back to just after the last newline
        start = max(0, keep - 65536)
        chunk = os.pread(fd, keep - start, start)
        if chunk.endswith(b"\n"):
            break
        i = chunk.rfind(b"\n")
        if i >= 0:
            keep = start + i + 1
            break
        keep = start
    if keep != size:
        os.ftruncate(fd, keep)


@contextlib.contextmanager
def _locked(outdir: Path, lock: bool):
    """An exclusive lock on OUTDIR's manifest, for jobs of a job array that finish together."""
    if not lock:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no job arrays sharing a folder
        yield
        return
    with open(Path(outdir) / ".manifest.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def merge(outdir: Path, merged_parts: List[Path], lock: bool = False) -> Dict[str, dict]:
    """Rewrite manifest.jsonl (whole or not at all) with the latest line of each input from it and
    `merged_parts`, sorted by input; then delete those parts. Returns input -> line. `lock`: hold
    OUTDIR/.manifest.lock meanwhile (jobs of an array that may finish at once)."""
    outdir = Path(outdir)
    with _locked(outdir, lock):
        records = latest([outdir / NAME] + list(merged_parts))
        text = "".join(json.dumps(records[k], ensure_ascii=False) + "\n" for k in sorted(records))
        write_text(outdir / NAME, text)
        for p in merged_parts:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    return records
