"""Files: which names are images, listing them, and writing a file whole or not at all.
Imports no torch, so reading or listing images stays light."""

from __future__ import annotations

import glob
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


def write_temp(path: PathLike, write: Callable[[str], object],
               verify: Optional[Callable[[str], object]] = None) -> str:
    """Call write(tmp_path) on a temporary file `.NAME.xxxx.tmp` in the target's folder, flush it
    to disk, give it the mode a new file gets under the umask, and call verify(tmp_path), which
    raises if the written file is wrong (e.g. a JPEG cut short by a full disk). Returns the
    temporary path for the caller to rename onto `path`; on any failure the file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if verify is not None:
            verify(tmp)
        return tmp
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path: PathLike, write: Callable[[str], object],
                 verify: Optional[Callable[[str], object]] = None) -> None:
    """`write_temp`, then rename the checked file onto `path`: readers see the whole file or
    none of it."""
    tmp = write_temp(path, write, verify)
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def stale_temps(path: PathLike) -> List[Path]:
    """Temporary files `write_temp` left for `path` when its process was killed mid-write."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


def write_text(path: PathLike, text: str) -> None:
    """`text` to `path`, whole or not at all."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
