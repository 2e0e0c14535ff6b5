"""Files: which names are images, listing them, and writing a file whole or not at all.
Imports no torch, so reading or listing images stays light."""

from __future__ import annotations

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
    rename it onto `path`: readers see the whole file or none of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: PathLike, text: str) -> None:
    """`text` to `path`, whole or not at all."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
