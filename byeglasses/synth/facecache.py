"""Faces decoded once: each face of a dataset cropped and resized to the training resolution, with its
face-shape mask and landmarks, in one uint8 .npy file read by memory map.

The file lies beside the landmark cache, named by the resolution, a hash of the face names and a hash
of what the faces were made from (each image's content digest from the landmark cache, and its
landmarks), so it is rebuilt exactly when the landmark cache would recompute an entry, and not when
the folder was only copied or touched. Row i holds face i as
RGB (R*R*3 bytes), then the face-shape mask as bits (R*R/8), then the 68 landmarks at R as float32.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence, Tuple

import numpy as np

from ..files import atomic_write

FORMAT = b"byeglasses-faces-1"


def row_bytes(resolution: int) -> int:
    r2 = resolution * resolution
    return r2 * 3 + (r2 + 7) // 8 + 68 * 2 * 4


def _digest(*parts) -> str:
    h = hashlib.sha1(FORMAT)
    for part in parts:
        h.update(part if isinstance(part, bytes) else np.ascontiguousarray(part).tobytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def face_cache_path(landmark_cache_path, resolution: int, names: Sequence[str], keys: Sequence[str],
                    landmarks) -> Path:
    """Where the decoded faces of `names` (with these content `keys`, LandmarkCache.content_key, and
    landmarks) live."""
    lm_path = Path(landmark_cache_path)
    names_key = _digest("\n".join(names).encode())
    content_key = _digest("\n".join(keys).encode(), np.asarray(landmarks, np.float32),
                          str(int(resolution)).encode())
    return lm_path.with_name(f"{lm_path.stem}.faces{int(resolution)}.{names_key}.{content_key}.npy")


def build_face_cache(path: Path, count: int, resolution: int,
                     make: Callable[[int], Tuple[np.ndarray, np.ndarray, np.ndarray]], progress: bool = True) -> None:
    """Write rows 0..count-1 from make(i) -> (face (R, R, 3) uint8, face mask (R, R) 0/1, landmarks (68, 2)),
    whole or not at all, and remove older versions of the same faces' cache."""
    from tqdm import tqdm

    r2 = resolution * resolution

    def write(tmp):
        rows = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, row_bytes(resolution)))
        for i in tqdm(range(count), desc=f"decoding faces at {resolution} px", unit="img", disable=not progress):
            face, mask, lm = make(i)
            rows[i, : r2 * 3] = face.reshape(-1)
            rows[i, r2 * 3: r2 * 3 + (r2 + 7) // 8] = np.packbits(mask.reshape(-1).astype(bool))
            rows[i, r2 * 3 + (r2 + 7) // 8:] = np.frombuffer(np.asarray(lm, np.float32).tobytes(), np.uint8)
        rows.flush()

    atomic_write(path, write)
    stem = path.name.rsplit(".", 2)[0]  # <landmarks>.faces<R>.<names hash>
    for old in path.parent.glob(f"{stem}.*.npy"):
        if old != path:
            old.unlink(missing_ok=True)


class FaceCache:
    """Read access to a file written by `build_face_cache`; opens its memory map lazily, so it pickles
    small and each DataLoader worker maps the file itself."""

    def __init__(self, path, resolution: int):
        self.path, self.resolution = str(path), int(resolution)
        self._rows = None

    def __getstate__(self):
        return {"path": self.path, "resolution": self.resolution, "_rows": None}

    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = np.load(self.path, mmap_mode="r")
        return self._rows

    def __len__(self) -> int:
        return len(self.rows())

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face (R, R, 3) uint8, face-shape mask (R, R) uint8 0/1, landmarks (68, 2) float32), all copies."""
        r = self.resolution
        r2 = r * r
        row = np.array(self.rows()[int(index)])
        face = row[: r2 * 3].reshape(r, r, 3)
        mask = np.unpackbits(row[r2 * 3: r2 * 3 + (r2 + 7) // 8], count=r2).reshape(r, r)
        lm = row[r2 * 3 + (r2 + 7) // 8:].view(np.float32).reshape(68, 2)
        return face, mask, lm
