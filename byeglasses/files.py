"""Files: which names are images, listing them, and writing a file whole or not at all.
Imports no torch, so reading or listing images stays light."""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Union

from .errors import InputError

PathLike = Union[str, os.PathLike]

# Image files every command accepts (remove, synth, train, eval, train-identity).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm",
                            ".pgm", ".mpo"})


def is_image(path: PathLike) -> bool:
    """Whether the name has an image suffix and is not hidden (e.g. macOS `._name` files)."""
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def list_images(folder: PathLike) -> List[str]:
    """Sorted names of the image files directly inside `folder` (not recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    return sorted(p.name for p in folder.iterdir() if is_image(p.name) and p.is_file())


def _umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _named(e: OSError, path: Path) -> OSError:
    """The same error, naming `path` instead of a temporary file."""
    if e.filename == str(path):
        return e
    return type(e)(e.errno, e.strerror or str(e), str(path))


def file_digest(path) -> str:
    """SHA-1 of a file's bytes, hex."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_temp(path: PathLike, write: Callable[[str], object],
               verify: Optional[Callable[[str], object]] = None) -> str:
    """Call write(tmp_path) on a temporary file `.NAME.xxxx.tmp` in the target's folder, flush it
    to disk, give it the mode a new file gets under the umask, and call verify(tmp_path), which
    raises if the written file is wrong (e.g. a JPEG cut short by a full disk). Returns the
    temporary path for the caller to rename onto `path`; on any failure the file is removed, and
    an OSError (disk full, permission) names `path`, not the temporary file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if verify is not None:
            verify(tmp)
        return tmp
    except BaseException as e:
        raise _discard(tmp, path, e) from None


def atomic_write(path: PathLike, write: Callable[[str], object],
                 verify: Optional[Callable[[str], object]] = None) -> None:
    """`write_temp`, then rename the checked file onto `path`: readers see the whole file or
    none of it. An OSError (disk full, permission, a folder in the way) names `path`."""
    path = Path(path)
    tmp = write_temp(path, write, verify)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        os.replace(tmp, path)
    except BaseException as e:
        raise _discard(tmp, path, e) from None


def _discard(tmp, path: Path, error: BaseException) -> BaseException:
    """Remove the temporary file of a failed write; the error to raise, an OSError naming `path`."""
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)
    return _named(error, path) if isinstance(error, OSError) else error


def stale_temps(path: PathLike) -> List[Path]:
    """Temporary files `write_temp` left for `path` when its process was killed mid-write."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


def check_output_file(path: PathLike, name: str = "out") -> None:
    """SettingError(name, ...) unless `path` can name an output file: not a folder, and its
    folder, where it exists, is a folder. Called before any work, so a typo costs nothing."""
    from .errors import SettingError

    path = Path(path)
    if path.is_dir():
        raise SettingError(name, f"{path} is a folder; give the name of the file to write")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise SettingError(name, f"{path}: {parent} is a file, not a folder")


def write_text(path: PathLike, text: str) -> None:
    """`text` to `path`, whole or not at all."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def report(result: dict, table: str, out: Optional[PathLike] = None) -> None:
    """Print a benchmark's markdown table; with `out`, also write the result as JSON there and the
    table beside it (.md), each whole or not at all."""
    import json

    print(table)
    if out:
        out = Path(out)
        write_text(out, json.dumps(result, indent=2))
        write_text(out.with_suffix(".md"), table + "\n")
