"""Files: which names are images, listing them, and writing a file whole or not at all.
Imports no torch, so reading or listing images stays light."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable, List, Union

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


def atomic_write(path: PathLike, write: Callable[[str], object]) -> None:
    """Call write(tmp_path) on a temporary file in the target's folder, flush it to disk, then
    rename it onto `path`: readers see the whole file or none of it.
    An OSError (disk full, permission, a folder in the way) names `path`, not the temporary file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        if e.filename == str(path):
            raise
        raise type(e)(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


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
