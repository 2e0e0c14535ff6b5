"""The work behind the page, without Gradio: one model shared read-only by all requests, and per
request its own settings, folder and results, so that requests running at once cannot mix."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..errors import ByeGlassesError, InputError
from ..files import atomic_write
from ..pipeline.imageio import compose, format_notes, output_name, read_image, write_image, write_rgb
from ..pipeline.remover import GlassesRemover, RemovalSettings

# Previews on the page are shrunk to this long side; the download keeps the full resolution.
PREVIEW_SIDE = 1280
# Result folders older than this are deleted (the page keeps running for days).
KEEP_RESULTS_S = 3600
# Upload limits count MB as Gradio's page shows them: 2^20 bytes.
MB = 2 ** 20
# JPEG / WebP quality of the downloads: `byeglasses remove --quality`'s default.
QUALITY = 95
# Opacity of the red overlay where the glasses mask is 1.
OVERLAY_ALPHA = 0.6


@dataclass
class PhotoResult:
    """What the page shows for one uploaded photo."""

    name: str  # the file's name as uploaded
    ok: bool  # False: `message` says what was wrong with the file
    message: str  # per-face decisions, or the problem
    before: Optional[Path] = None  # JPEG previews, long side <= PREVIEW_SIDE: the input,
    after: Optional[Path] = None  # the result,
    overlay: Optional[Path] = None  # and the input with the predicted glasses in red
    download: Optional[Path] = None  # the full-resolution result, written as `byeglasses remove` does
    changed: bool = False  # glasses were removed from at least one face


class RemovalService:
    """Shared by every request: the generator (one per device, loaded once, never modified) and a
    lock under which one photo at a time goes through detection and the generator. `defaults`:
    the checkpoint and device given to `byeglasses serve`, and the page's initial settings."""

    def __init__(self, workdir, defaults: RemovalSettings = RemovalSettings(), max_upload_mb: float = 25.0):
        self.workdir = Path(workdir)
        self.results_dir = self.workdir / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.defaults = defaults
        self.max_upload_bytes = int(max_upload_mb * MB)
        self.max_upload_mb = max_upload_mb
        self._models: Dict[Optional[str], GlassesRemover] = {}
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # dlib's detectors are not documented as thread-safe
        self.model(defaults.device)  # a bad --checkpoint fails at start, not on the first upload

    def model(self, device: Optional[str]) -> GlassesRemover:
        """The remover holding the generator on `device` (None: CUDA, else MPS, else CPU), loaded
        on first use."""
        if self.defaults.backend == "onnx":  # ONNX Runtime runs on the CPU whatever the device: one session
            device = self.defaults.device
        with self._load_lock:
            if device not in self._models:
                self._models[device] = GlassesRemover(settings=replace(self.defaults, device=device))
            return self._models[device]

    def remover(self, settings: RemovalSettings) -> GlassesRemover:
        """A remover for one request: its own settings, the shared generator (or ONNX session)."""
        shared = self.model(settings.device)
        settings = replace(settings, checkpoint=self.defaults.checkpoint, backend=self.defaults.backend,
                           onnx=self.defaults.onnx)
        if settings.backend == "onnx":
            return GlassesRemover(settings=settings, session=shared.session, resolution=shared.resolution)
        return GlassesRemover(settings=settings, generator=shared.generator, resolution=shared.resolution)

    def process(self, paths: Sequence, settings: Optional[RemovalSettings] = None,
                quality: int = QUALITY) -> List[PhotoResult]:
        """Each uploaded file -> a PhotoResult; a bad file gets a message and the others go on.
        `settings`: this request's (default: `defaults`); its checkpoint is always the server's."""
        paths = [Path(p) for p in (paths or [])]
        self._prune()
        remover = self.remover(settings or self.defaults)
        request = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=self.results_dir))
        results = []
        for i, path in enumerate(paths):
            try:
                results.append(self.process_one(path, remover, request / f"{i:03d}", quality))
            except (InputError, OSError) as e:
                results.append(PhotoResult(path.name, False, _name_the_file(str(e), path)))
            except Exception as e:  # noqa: BLE001 - one bad photo must not stop the others or the server
                results.append(PhotoResult(path.name, False, f"{path.name}: unexpected {type(e).__name__}: "
                                                             f"{_name_the_file(str(e), path)}"))
        return results

    def process_one(self, path: Path, remover: GlassesRemover, outdir: Path, quality: int = QUALITY) -> PhotoResult:
        if path.is_file() and path.stat().st_size > self.max_upload_bytes:
            raise InputError(f"{path}: {path.stat().st_size / MB:.1f} MB is over this page's upload limit of "
                             f"{self.max_upload_mb:g} MB (byeglasses serve --max-upload-mb)")
        photo = read_image(path)
        with self._run_lock:
            result = remover.remove(photo.rgb)
        if not result.faces:
            from ..cli.remove import remover_min_face

            raise InputError(f"{path}: no face found (faces are searched from "
                             f"{remover_min_face(remover, photo.rgb.shape):.0f} px; see 'smallest face' in the "
                             "advanced settings)")
        from ..pipeline.remover import invented_note

        decisions = [f"face {i + 1}: {f.reason} (P(glasses) = {f.glasses_probability:.2f})"
                     f"{invented_note(f.changed, f.eyes_kept)}" for i, f in enumerate(result.faces)]
        notes = [f"note: {n}" for n in format_notes(photo)] if result.changed else []
        out = outdir / output_name(photo)
        outdir.mkdir(parents=True)
        if result.changed:
            write_image(out, compose(photo, result.image, result.blend_mask > 0), photo, quality=quality)
        else:  # the photo is its own answer: copied byte for byte, as `byeglasses remove` does
            atomic_write(out, lambda tmp: shutil.copyfile(path, tmp))
            notes.append("no glasses removed: the download is the photo unchanged")
        previews = {"before": photo.rgb, "after": result.image, "overlay": overlay(photo.rgb, result.glasses_mask)}
        previews = {k: write_rgb(outdir / "preview" / f"{k}.jpg", preview(v)) for k, v in previews.items()}
        return PhotoResult(path.name, True, "\n".join(decisions + notes), download=out, changed=result.changed,
                           **previews)

    def example(self) -> Path:
        """The built-in example (`byeglasses demo`'s astronaut with glasses drawn), written once."""
        path = self.workdir / "example" / "astronaut-with-glasses.png"
        if not path.exists():
            from skimage import data

            from ..synth.render import synthesize

            original = data.astronaut()
            remover = self.model(self.defaults.device)
            with self._run_lock:
                faces = remover.detect(original)
            if not faces:
                raise ByeGlassesError("no face found in the astronaut image (is dlib installed correctly?)")
            write_rgb(path, synthesize(original, faces[0].landmarks, 0).x)
        return path

    def _prune(self) -> None:
        """Delete result folders older than KEEP_RESULTS_S."""
        limit = time.time() - KEEP_RESULTS_S
        for d in self.results_dir.iterdir():
            try:
                if d.stat().st_mtime < limit:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass


def _name_the_file(message: str, path: Path) -> str:
    """Messages name the uploaded file by its name, not by the server's temporary path."""
    message = message.replace(str(path), path.name)
    return message if message.startswith(path.name) else f"{path.name}: {message}"


def preview(rgb: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def overlay(rgb: np.ndarray, glasses: np.ndarray) -> np.ndarray:
    """The photo with the predicted glasses probability (H, W) shown in red."""
    a = (OVERLAY_ALPHA * glasses)[..., None]
    red = np.array([255.0, 0.0, 0.0], np.float32)
    return np.rint(rgb * (1.0 - a) + red * a).astype(np.uint8)


def summary(results: Sequence[PhotoResult]) -> str:
    removed = sum(r.ok and r.changed for r in results)
    kept = sum(r.ok and not r.changed for r in results)
    failed = sum(not r.ok for r in results)
    return (f"{len(results)} photo(s): {removed} with glasses removed, {kept} without glasses, "
            f"{failed} failed")
