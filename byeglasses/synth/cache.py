"""Landmark cache for a folder of faces: one .npz file, an entry per image, invalidated when the image changes.

The image folders may be read-only, so the cache lives by default in
`$BYEGLASSES_CACHE/landmarks/` (else `~/.cache/byeglasses/landmarks/`), named by a hash of the
folder's absolute path. An entry is keyed by file name and checked against the file's size and
mtime_ns; when those changed, the SHA-1 of the file's bytes decides, so a copied or touched folder
(new mtimes, same pictures) is not computed again while an edited picture is. Files with no face,
several faces, or that cannot be read are remembered with the reason (so they are not retried) and
reported.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..files import atomic_write, file_digest, list_images

SECOND_FACE = 0.4  # a second face at least this fraction of the largest one's size makes the image ambiguous


def default_cache_path(folder) -> Path:
    root = Path(os.environ.get("BYEGLASSES_CACHE") or Path.home() / ".cache" / "byeglasses")
    key = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return root / "landmarks" / f"{key}.npz"


def read_rgb(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; raises InputError naming the file when it cannot be used."""
    import cv2

    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file")
    from ..pipeline.imageio import read_image

    try:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV refuses it (over its pixel limit): Pillow's reader says why
        return read_image(path).rgb
    if img is None:  # a format OpenCV lacks (GIF, MPO, ...): read it as `remove` does
        try:
            return read_image(path).rgb
        except InputError:
            raise InputError(f"{path}: not a readable image") from None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def face_landmarks(image: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks of the one face in `image`; InputError when there is none or several."""
    from ..pipeline.detect import detect_faces

    upsample = 1 if max(image.shape[:2]) < 200 else 0
    faces = detect_faces(image, upsample=upsample)
    if not faces:
        raise InputError("no face found")
    big = [f for f in faces if f.size >= SECOND_FACE * faces[0].size]
    if len(big) > 1:
        raise InputError(f"{len(big)} faces found")
    return faces[0].landmarks


@dataclass
class LandmarkCache:
    """Landmarks of the usable faces of a folder, and the reasons the others were skipped."""

    folder: str
    path: str
    landmarks: Dict[str, np.ndarray] = field(default_factory=dict)  # name -> (68, 2) float32
    skipped: Dict[str, str] = field(default_factory=dict)  # name -> reason
    stats: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # name -> (size, mtime_ns)
    digests: Dict[str, str] = field(default_factory=dict)  # name -> SHA-1 of the file's bytes
    computed: int = 0  # entries (re)computed by the last update
    revalidated: int = 0  # entries whose size or mtime changed but whose bytes did not (last update)

    def content_key(self, name: str) -> str:
        """What the entry was computed from: the file's digest (size and mtime for an entry without one)."""
        return self.digests.get(name) or "%d:%d" % self.stats[name]

    @classmethod
    def load(cls, folder, path=None) -> "LandmarkCache":
        path = Path(path) if path else default_cache_path(folder)
        cache = cls(str(Path(folder).resolve()), str(path))
        if not path.is_file():
            return cache
        try:
            with np.load(path, allow_pickle=False) as z:
                names, stats = list(z["names"]), z["stats"]
                lms, ok, reasons = z["landmarks"], z["ok"], list(z["reasons"])
                digests = list(z["digests"]) if "digests" in z.files else [""] * len(names)
        except Exception:  # an unreadable cache is rebuilt, never trusted
            return cache
        for i, name in enumerate(names):
            cache.stats[str(name)] = (int(stats[i, 0]), int(stats[i, 1]))
            if digests[i]:
                cache.digests[str(name)] = str(digests[i])
            if ok[i]:
                cache.landmarks[str(name)] = lms[i].astype(np.float32)
            else:
                cache.skipped[str(name)] = str(reasons[i])
        return cache

    def save(self) -> None:
        names = sorted(self.stats)
        lms = np.zeros((len(names), 68, 2), np.float32)
        ok = np.zeros(len(names), bool)
        for i, n in enumerate(names):
            if n in self.landmarks:
                lms[i], ok[i] = self.landmarks[n], True
        arrays = dict(names=np.array(names, dtype=str), landmarks=lms, ok=ok,
                      stats=np.array([self.stats[n] for n in names], np.int64).reshape(-1, 2),
                      reasons=np.array([self.skipped.get(n, "") for n in names], dtype=str),
                      digests=np.array([self.digests.get(n, "") for n in names], dtype=str))

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(self.path, write)

    def update(self, names: Optional[Iterable[str]] = None, progress: bool = True) -> "LandmarkCache":
        """Compute the entries of `names` (default: every image) that are missing or out of date.

        An entry whose size or mtime changed is kept when the file's bytes still hash to its digest;
        an entry from before digests were stored gets one (its size and mtime still match)."""
        from tqdm import tqdm

        folder = Path(self.folder)
        names = list_images(folder) if names is None else list(names)
        todo, touched = [], False
        self.revalidated = 0
        for name in names:
            try:
                st = (folder / name).stat()
                stat = (int(st.st_size), int(st.st_mtime_ns))
                if self.stats.get(name) == stat and name in self.digests:
                    continue
                digest = file_digest(folder / name)
            except OSError as e:
                self._set(name, None, f"cannot read: {e.strerror}", (-1, -1))
                self.digests.pop(name, None)
                touched = True
                continue
            if self.stats.get(name) == stat or (name in self.stats and self.digests.get(name) == digest):
                self.revalidated += self.stats.get(name) != stat
                self.stats[name], self.digests[name] = stat, digest
                touched = True
            else:
                todo.append((name, stat, digest))
        self.computed = len(todo)
        for name, stat, digest in tqdm(todo, desc=f"landmarks {folder.name}", unit="img",
                                       disable=not progress or not todo):
            try:
                self._set(name, face_landmarks(read_rgb(folder / name)), "", stat)
            except InputError as e:
                self._set(name, None, str(e).replace(f"{folder / name}: ", ""), stat)
            self.digests[name] = digest
        if todo or touched:
            self.save()
        return self

    def _set(self, name: str, lm, reason: str, stat) -> None:
        self.stats[name] = stat
        self.landmarks.pop(name, None)
        self.skipped.pop(name, None)
        if lm is None:
            self.skipped[name] = reason
        else:
            self.landmarks[name] = np.asarray(lm, np.float32)


def landmark_cache(folder, cache_path=None, names=None, progress: bool = True) -> LandmarkCache:
    """The up-to-date landmark cache of `folder` (computing what is missing, with a progress bar)."""
    return LandmarkCache.load(folder, cache_path).update(names, progress=progress)


def skipped_summary(skipped: Dict[str, str], names: Iterable[str], limit: int = 3) -> str:
    """'N skipped (a.jpg: no face found; ...)' for the skipped files among `names`."""
    items = [(n, skipped[n]) for n in names if n in skipped]
    if not items:
        return "0 skipped"
    shown = "; ".join(f"{n}: {r}" for n, r in items[:limit])
    more = f"; {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} skipped ({shown}{more})"
