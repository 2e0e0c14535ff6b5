"""Remove glasses from photos: detect every face, align it to the canonical crop, run the
generator, warp the result back and blend it in only where the glasses were."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
import torch

from ..errors import SettingError
from .geometry import (BLEND_DILATE, BLEND_FEATHER, align, blend_weight, change_weight, correct_lens,
                       estimate_alignment, frame_lines, lens_keep, local_mean, match_colour, paste_back, unalign)
from .imageio import Photo, from_array, read_image

# dlib's HOG detector finds faces from about 80 px: the photo is shrunk so that the smallest
# face searched for is that size, and landmarks are then refined at full resolution.
HOG_FACE = 80.0
# HOG detections with a lower SVM score are dropped (on the astronaut, the mission patch scores
# 0.02-0.09 and the face 0.24-1.5 at every detection scale).
DETECT_THRESHOLD = 0.1
# Whether a face wears glasses is the glasses classifier's call (model/classifier.py): faces it
# gives P(glasses) below GLASSES_THRESHOLD are left alone. Two older gates stay available and are
# off by default: a smallest predicted glasses area (fraction of the crop) and a smallest change
# the generator would make inside it (levels of 255).
GLASSES_THRESHOLD = 0.5
MIN_AREA = 0.0
MIN_CHANGE = 0.0
# blend="change": inside the glasses region, a pixel whose smoothed value the generator changes by
# less than CHANGE_LOW levels keeps its own value (an eye behind a clear lens), by more than
# CHANGE_HIGH takes the generator's (frames, tint, glare), and in between a mix of the two.
CHANGE_LOW, CHANGE_HIGH = 6.0, 20.0
BLENDS = ("mask", "change", "lens")
# When HOG finds no face, dlib's CNN detector looks again; its detections below this are dropped.
CNN_THRESHOLD = 0.3
# ... and, on a detection copy at most this many pixels on its long side, once more at twice the size
# (it misses some faces behind sunglasses at their own scale: ~1.1 s more on a 256-px copy).
CNN_UPSAMPLE_MAX = 512
# Without --min-face, faces smaller than 1/AUTO_MIN_FACE of the photo's long side are not searched.
AUTO_MIN_FACE = 8
# A removed face whose eyes show less of the photo than this has invented eyes (FaceResult.eyes_kept).
EYES_INVENTED = 0.5
# How the reason of a face left alone by skip_invented_eyes begins (the manifest's "left alone" status).
LEFT_ALONE = "left alone"
# The generator runs on at most this many faces at once.
MAX_BATCH = 16


@dataclass
class FaceResult:
    box: Tuple[int, int, int, int]  # left, top, right, bottom in photo pixels (dlib's box)
    landmarks: np.ndarray  # (68, 2) float32, photo pixels
    glasses_probability: float  # P(glasses) from the glasses classifier
    glasses_area: float  # fraction of the face crop predicted as glasses (mask >= threshold)
    changed: bool  # whether the glasses were removed from this face
    reason: str  # why (not) changed, for the user
    glasses_change: float = 0.0  # mean |ŷ - x| inside the predicted glasses, in levels of 255
    passes: int = 0  # how many times the generator's output was pasted in (see RemovalSettings.passes)
    # the share of the eyes (their outlines, from the landmarks) that shows the photo's own pixels
    # after the first pass: about 1 behind clear lenses, near 0 where the model invented the eyes
    # (dark lenses); 1 when the face was left alone. Invented eyes cost identity (docs/verification.md).
    eyes_kept: float = 1.0


@dataclass
class Prepared:
    """A photo ready for the generator (`GlassesRemover.prepare`)."""

    rgb: np.ndarray  # (H, W, 3) uint8
    faces: list  # detect.Face, largest first
    alignments: list  # one per face
    crops: np.ndarray  # (N, R, R, 3) uint8 aligned face crops, one per face
    timings: Dict[str, float] = field(default_factory=dict)  # seconds: detect, align


@dataclass
class RemovalResult:
    image: np.ndarray  # (H, W, 3) uint8 RGB: the photo without glasses
    glasses_mask: np.ndarray  # (H, W) float32 in [0, 1]: predicted glasses probability (0 away from faces)
    blend_mask: np.ndarray  # (H, W) float32 in [0, 1]: weight of the generator's output; 0 = original bytes
    faces: List[FaceResult]
    timings: Dict[str, float] = field(default_factory=dict)  # seconds: detect, align, generator, paste

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.faces)


ImageLike = Union[np.ndarray, "PIL.Image.Image", str, os.PathLike]  # noqa: F821
PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class RemovalSettings:
    """Everything that decides how `GlassesRemover` works; the `remove` and `demo` flags map onto
    these fields one to one (same names, `-` for `_`)."""

    checkpoint: Optional[PathLike] = None  # generator checkpoint (.safetensors); None: the shipped model
    device: Optional[str] = None  # cpu, cuda, cuda:N or mps; None: CUDA, else MPS, else CPU
    backend: str = "torch"  # run the generator with PyTorch ("torch") or ONNX Runtime on CPU ("onnx")
    onnx: Optional[PathLike] = None  # ONNX generator for backend="onnx" (`byeglasses export-onnx`)
    onnx_threads: int = 0  # ONNX Runtime threads; 0: all cores
    threshold: float = 0.5  # glasses-mask probability from which a pixel counts as glasses
    glasses_threshold: float = GLASSES_THRESHOLD  # P(glasses) from which a face counts as wearing glasses; 0: every face
    classifier: Optional[PathLike] = None  # glasses-classifier weights; None: the shipped classifier
    blend: str = "lens"  # "mask": the whole glasses region; "change": keep the pixels the generator barely changes;
    # "lens": keep the face seen through the lenses (tint corrected), replace frames, dark lenses and glare
    frame_lines: bool = True  # blend="lens": never keep the photo's thin lines along the frame (thin metal rims)
    colour_match: bool = False  # take the generator's smooth brightness and colour drift off before blending
    change_low: float = CHANGE_LOW  # blend="change": smoothed change (levels) below which a pixel keeps its value
    change_high: float = CHANGE_HIGH  # ... and above which it takes the generator's
    min_area: float = MIN_AREA  # faces with a smaller glasses area (fraction of the crop) are left alone
    min_change: float = MIN_CHANGE  # faces the generator would change less (levels of 255) are left alone
    min_face: Optional[float] = None  # smallest face box searched for and processed, in pixels; None: auto
    dilate: float = BLEND_DILATE  # growth of the blend region, fraction of the crop side
    feather: float = BLEND_FEATHER  # softness of the blend region's edge, fraction of the crop side
    cnn_fallback: bool = True  # run dlib's CNN detector on photos where HOG finds no face
    passes: int = 2  # faces still judged as wearing glasses after a pass go through the generator again, up to this
    # leave a face alone when the model would have to invent its eyes (the first pass's eyes_kept below
    # EYES_INVENTED: sunglasses): the glasses stay on, and so does more of the person's identity
    skip_invented_eyes: bool = False

    def __post_init__(self):
        for name in ("threshold", "min_area", "glasses_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SettingError(name, f"must be within 0..1, got {getattr(self, name)}")
        for name in ("min_change", "dilate", "feather", "onnx_threads", "change_low"):
            if not getattr(self, name) >= 0:  # NaN too
                raise SettingError(name, f"must be 0 or more, got {getattr(self, name)}")
        if self.min_face is not None and not 0 < self.min_face < float("inf"):
            raise SettingError("min_face", f"must be positive, got {self.min_face}")
        if not isinstance(self.passes, int) or self.passes < 1:
            raise SettingError("passes", f"must be a whole number, 1 or more, got {self.passes}")
        if self.blend not in BLENDS:
            raise SettingError("blend", f"must be one of {', '.join(BLENDS)}, got {self.blend!r}")
        if not self.change_high > self.change_low:
            raise SettingError("change_high", f"must be above change_low ({self.change_low}), got {self.change_high}")
        if self.backend not in ("torch", "onnx"):
            raise SettingError("backend", f"must be torch or onnx, got {self.backend!r}")
        if self.backend == "onnx" and not self.onnx:
            raise SettingError("onnx", "is needed by the onnx backend: an ONNX file made with `byeglasses export-onnx`")


class GlassesRemover:
    """`GlassesRemover().remove(image)` with the shipped model, or `GlassesRemover(settings=
    RemovalSettings(...))`; keyword arguments build the settings too (`GlassesRemover(checkpoint=...,
    threshold=0.4)`). `generator=` any module with the Generator's interface (`resolution=` its
    input side) instead of a checkpoint; with backend="onnx", `session=` an ONNX Runtime session
    already open (another remover's `session`) instead of opening `onnx` again."""

    def __init__(self, checkpoint: Optional[PathLike] = None, *, settings: Optional[RemovalSettings] = None,
                 generator: Optional[torch.nn.Module] = None, resolution: Optional[int] = None,
                 session=None, **overrides):
        if checkpoint is not None:
            overrides["checkpoint"] = checkpoint
        try:
            settings = replace(settings or RemovalSettings(), **overrides)
        except TypeError as e:  # an unknown keyword
            raise TypeError(f"GlassesRemover: {e}") from None
        self.settings = s = settings
        self._session = None
        if s.backend == "onnx":
            if session is not None:  # shared with another remover (the web page: one per request)
                self._session, self.resolution = session, int(resolution or session.get_inputs()[0].shape[-1])
            else:
                from .onnx import open_session

                self._session, self.resolution = open_session(s.onnx, s.onnx_threads)
            self.generator = None
            self.device = torch.device("cpu")
        else:
            if generator is None:
                from ..model.weights import load_generator

                generator, config = load_generator(s.checkpoint, device=s.device)
                resolution = config.model.resolution
            elif resolution is None:
                resolution = generator.cfg.resolution
            self.generator = generator.eval()
            self.resolution = int(resolution)
            self.device = next(generator.parameters()).device
        from ..model.classifier import GlassesJudge

        self.judge = GlassesJudge(s.classifier, device=str(self.device))

    # -- stages -------------------------------------------------------------------------------

    @property
    def session(self):
        """The ONNX Runtime session of backend="onnx" (None with torch)."""
        return self._session

    def detection_scale(self, image_shape) -> float:
        """Scale of the copy the detector sees: a face of `min_face` pixels becomes HOG-sized."""
        min_face = self.settings.min_face or max(HOG_FACE, max(image_shape[:2]) / AUTO_MIN_FACE)
        return min(2.0, HOG_FACE / min_face)

    def detect(self, rgb: np.ndarray):
        """Faces in a photo, largest first: HOG on a shrunk greyscale copy, 68 landmarks refined
        at full resolution."""
        from .detect import Face, detect_boxes, detect_boxes_cnn, landmarks_in_box

        scale = self.detection_scale(rgb.shape)
        h, w = rgb.shape[:2]
        small = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(small, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if min(small.shape[:2]) < 16:  # holds no findable face; dlib's CNN fails on a few pixels
            return []
        boxes = detect_boxes(small, DETECT_THRESHOLD)
        if not boxes and self.settings.cnn_fallback:  # HOG misses some faces behind sunglasses or turned away
            small_rgb = rgb if scale == 1.0 else cv2.resize(
                rgb, small.shape[::-1], interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            boxes = detect_boxes_cnn(small_rgb, CNN_THRESHOLD)
            if not boxes and max(small_rgb.shape[:2]) <= CNN_UPSAMPLE_MAX:
                boxes = detect_boxes_cnn(small_rgb, CNN_THRESHOLD, upsample=1)
        faces = []
        for small_box, score in boxes:
            box = tuple(int(round(v / scale)) for v in small_box)
            face = Face(box, score, landmarks_in_box(rgb, box))
            if not self.settings.min_face or face.size >= self.settings.min_face:
                faces.append(face)
        return sorted(faces, key=lambda f: -f.size)

    @torch.inference_mode()
    def run_generator(self, crops: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(N, R, R, 3) uint8 crops -> (ŷ (N, R, R, 3) float32 0..255, glasses mask (N, R, R) float32)."""
        x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32) / 127.5 - 1.0  # (N, 3, R, R) in [-1, 1]
        ys, ms = [], []
        for i in range(0, len(x), MAX_BATCH):
            xb = x[i:i + MAX_BATCH]
            if self._session is not None:
                y_hat, m_hat = self._session.run(None, {self._session.get_inputs()[0].name: xb})[:2]
            else:
                y_t, m_t = self.generator(torch.from_numpy(xb).to(self.device))
                y_hat = y_t.float().cpu().numpy()
                m_hat = None if m_t is None else m_t.float().cpu().numpy()
            if m_hat is None or m_hat.shape[1] == 0:
                # No segmentation decoder (ablation): glasses are where the generator changed the face.
                glasses = np.clip(np.abs(y_hat - xb).mean(1) / 0.2, 0.0, 1.0)
            else:
                glasses = m_hat[:, 0]
            ys.append((y_hat.transpose(0, 2, 3, 1) + 1.0) * 127.5)
            ms.append(glasses)
        return np.concatenate(ys).astype(np.float32), np.concatenate(ms).astype(np.float32)

    def blend_weight(self, crop: np.ndarray, y_hat: np.ndarray, glasses: np.ndarray) -> np.ndarray:
        """(R, R) weight in [0, 1] of the generator's output ŷ over the crop x: the dilated, feathered
        glasses region, and with blend="change" only where ŷ really differs from x."""
        s = self.settings
        weight = blend_weight(glasses, s.threshold, s.dilate, s.feather)
        if s.blend == "change":
            weight *= change_weight(crop, y_hat, s.change_low, s.change_high)
        return weight

    # -- the whole pipeline ---------------------------------------------------------------------

    def remove(self, image: ImageLike) -> RemovalResult:
        """Remove glasses from every face in `image`: an (H, W, 3) uint8 RGB array, a PIL image or
        a path (EXIF orientation is applied). Pixels outside the blended region are unchanged.
        A face the classifier still judges as wearing glasses afterwards goes through the
        generator again, up to `passes` times in all."""
        return self.remove_prepared(self.prepare(image))

    def remove_prepared(self, prepared: Prepared) -> RemovalResult:
        """`remove` from what `prepare` gave: classify, generate, finish, and the further passes."""
        probabilities, generated = self.classify_and_generate(prepared.crops, prepared.timings)
        return self.more_passes(self.finish(prepared, probabilities, generated), prepared.faces)

    def prepare(self, image: ImageLike) -> Prepared:
        """Everything before the classifier and the generator: the faces and their aligned crops.
        Needs no network, so it can run ahead in other processes (the batch runner's workers)."""
        rgb = _as_photo(image).rgb
        t = time.perf_counter()
        faces = self.detect(rgb)
        return self.align_faces(rgb, faces, {"detect": time.perf_counter() - t})

    def align_faces(self, rgb: np.ndarray, faces, timings: Dict[str, float]) -> Prepared:
        t = time.perf_counter()
        r = self.resolution
        alignments = [estimate_alignment(f.landmarks, r) for f in faces]
        crops = np.stack([align(rgb, a) for a in alignments]) if faces else np.zeros((0, r, r, 3), np.uint8)
        timings["align"] = timings.get("align", 0.0) + time.perf_counter() - t
        return Prepared(rgb, faces, alignments, crops, timings)

    def classify_and_generate(self, crops: np.ndarray, timings: Dict[str, float]):
        """(N, R, R, 3) crops -> (P(glasses) (N,), {i: (ŷ, glasses mask)} for the crops judged as
        wearing glasses). The batch runner calls it on the crops of several photos at once."""
        def clock(stage, since):
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - since

        t = time.perf_counter()
        probabilities = self.judge.probability_crops(crops)
        clock("classify", t)

        t = time.perf_counter()
        wearing = np.flatnonzero(probabilities >= self.settings.glasses_threshold)
        outputs, masks = self.run_generator(crops[wearing]) if len(wearing) else ([], [])
        clock("generator", t)
        return probabilities, dict(zip(wearing.tolist(), zip(outputs, masks)))

    def more_passes(self, result: RemovalResult, faces) -> RemovalResult:
        """Faces changed by a pass go through `remove_faces` again, up to `passes` in all."""
        return self.more_passes_many([result], [faces])[0]

    def more_passes_many(self, results: List[RemovalResult], faces: List[list]) -> List[RemovalResult]:
        """`more_passes` for several photos at once (`faces[k]`: the detected faces of `results[k]`):
        each extra pass aligns the faces to do again on every photo, then runs the classifier and
        the generator once on all of them (the batch runner's faces of several photos), then
        finishes each photo. The results are those of `more_passes` on each photo alone."""
        shared: Dict[str, float] = results[0].timings if len(results) == 1 else {}
        for _ in range(self.settings.passes - 1):
            todo = [(k, [i for i, f in enumerate(r.faces) if f.changed]) for k, r in enumerate(results)]
            todo = [(k, again) for k, again in todo if again]
            if not todo:
                break
            prepared = [self.align_faces(results[k].image, [faces[k][i] for i in again], shared)
                        for k, again in todo]
            probabilities, generated = self.classify_and_generate(np.concatenate([p.crops for p in prepared]), shared)
            mores, start = [], 0
            for p in prepared:
                n = len(p.faces)
                mine = {i - start: out for i, out in generated.items() if start <= i < start + n}
                mores.append(self.finish(p, probabilities[start:start + n], mine, first=False))
                start += n
            for (k, again), more in zip(todo, mores):  # only once every photo is finished
                result = results[k]
                for i, f in zip(again, more.faces):
                    if f.changed:
                        result.faces[i].passes += 1
                np.maximum(result.blend_mask, more.blend_mask, out=result.blend_mask)
                result.image = more.image
        return results

    def remove_faces(self, rgb: np.ndarray, faces, timings: Optional[Dict[str, float]] = None) -> RemovalResult:
        """One pass over detected `faces` (pipeline.detect.Face): align, classify, generate for the
        faces wearing glasses, paste back. Timings are added into `timings`."""
        prepared = self.align_faces(rgb, faces, {} if timings is None else timings)
        probabilities, generated = self.classify_and_generate(prepared.crops, prepared.timings)
        return self.finish(prepared, probabilities, generated)

    def finish(self, prepared: Prepared, probabilities: np.ndarray, generated: Dict[int, tuple],
               first: bool = True) -> RemovalResult:
        """Everything after the generator: decide per face, warp back and blend in. `probabilities`,
        `generated`: `classify_and_generate(prepared.crops)`; `first`: the first pass (later passes
        work on its output, where `skip_invented_eyes` no longer applies)."""
        rgb, faces, alignments, crops, timings = (prepared.rgb, prepared.faces, prepared.alignments,
                                                  prepared.crops, prepared.timings)

        def clock(stage, since):
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - since

        t = time.perf_counter()
        h, w = rgb.shape[:2]
        out = rgb
        glasses_mask = np.zeros((h, w), np.float32)
        blend_mask = np.zeros((h, w), np.float32)
        results = []
        for i, (face, al, crop) in enumerate(zip(faces, alignments, crops)):
            probability = float(probabilities[i])
            if i not in generated:
                results.append(FaceResult(face.box, face.landmarks, probability, 0.0, False,
                                          f"no glasses found (P(glasses) {probability:.2f} < "
                                          f"{self.settings.glasses_threshold:g})"))
                continue
            y_hat, m = generated[i]
            area = float((m >= self.settings.threshold).mean())
            box = al.bounds(rgb.shape)
            x0, y0, x1, y1 = box
            region = glasses_mask[y0:y1, x0:x1]
            np.maximum(region, unalign(m, al, box), out=region)
            change = glasses_change(crop, y_hat, m, self.settings.threshold)
            if area < self.settings.min_area or change < self.settings.min_change:
                why = (f"glasses area {area:.2%} < {self.settings.min_area:.2%}" if area < self.settings.min_area else
                       f"the model would change the glasses region by {change:.1f} < {self.settings.min_change:g} levels")
                results.append(FaceResult(face.box, face.landmarks, probability, area, False,
                                          f"no glasses found ({why})", change))
                continue
            if self.settings.colour_match:
                y_hat = match_colour(crop, y_hat, m)
            weight_crop = self.blend_weight(crop, y_hat, m)
            weight = unalign(weight_crop, al, box)
            patch = np.clip(unalign(y_hat, al, box, interpolation=cv2.INTER_CUBIC), 0.0, 255.0)
            keep_crop = None
            if self.settings.blend == "lens":  # the face seen through the lenses, at the photo's own resolution
                # the eyes where the photo's landmarks and those found again on ŷ agree (a thick
                # frame pulls the photo's onto its rim; a smeared ŷ can misplace its own)
                eyes = glasses_free_eyes(y_hat, al.to_crop(np.array(face.box, np.float64).reshape(2, 2)))
                own = al.to_crop(face.landmarks[36:48]) if len(face.landmarks) == 68 else None
                own_eyes = None if own is None else [own[:6], own[6:]]
                keep, gain = lens_keep(crop, y_hat, m, eyes, self.settings.threshold, other_eyes=own_eyes)
                if self.settings.frame_lines and (own_eyes or eyes):  # the eyes' own lines stay
                    keep *= 1.0 - frame_lines(crop, m, own_eyes or eyes)
                keep_crop = keep
                keep = unalign(keep, al, box)[..., None]
                own = correct_lens(out[y0:y1, x0:x1], unalign(gain, al, box), unalign(local_mean(crop), al, box))
                patch += keep * (own - patch)
            eyes_kept = kept_share(weight_crop, keep_crop, al.to_crop(face.landmarks[36:48])
                                   if len(face.landmarks) == 68 else None)
            if first and self.settings.skip_invented_eyes and eyes_kept < EYES_INVENTED:
                results.append(FaceResult(face.box, face.landmarks, probability, area, False,
                                          f"{LEFT_ALONE}: the model would invent the eyes ({eyes_kept:.0%} of them "
                                          "from the photo; skip_invented_eyes)", change, eyes_kept=eyes_kept))
                continue
            out, changed = paste_back(out, patch, weight, box)
            region = blend_mask[y0:y1, x0:x1]
            np.maximum(region, np.where(changed[y0:y1, x0:x1], weight, 0.0), out=region)
            results.append(FaceResult(face.box, face.landmarks, probability, area, bool(changed.any()),
                                      "glasses removed" if changed.any() else "blend region empty", change,
                                      passes=int(changed.any()), eyes_kept=eyes_kept if changed.any() else 1.0))
        clock("paste", t)
        return RemovalResult(out.copy() if out is rgb else out, glasses_mask, blend_mask, results, timings)


def invented_note(removed: bool, eyes_kept: float) -> str:
    """What to tell the user about a face whose eyes the model invented ("" otherwise), for the
    console line of `remove` and the web page's decisions."""
    if not removed or eyes_kept >= EYES_INVENTED:
        return ""
    return f"; eyes invented: {eyes_kept:.0%} of them from the photo"


def kept_share(weight: np.ndarray, keep: Optional[np.ndarray], eyes: Optional[np.ndarray], pad: float = 0.1) -> float:
    """The share of the eyes that shows the photo's own pixels: the mean of (1 - w) + w·keep inside
    the eyes' outlines (`eyes`: their 12 landmarks in crop pixels, grown by `pad` of the eye's
    width), w the generator's blend weight and keep the lens blend's (None: the mask blend, which
    keeps nothing under w). 1.0 without landmarks."""
    from .geometry import eye_masks

    if eyes is None:
        return 1.0
    inside = eye_masks([eyes[:6], eyes[6:]], weight.shape, pad) > 0
    if not inside.any():
        return 1.0
    photo = 1.0 - weight if keep is None else 1.0 - weight * (1.0 - keep)
    return float(np.clip(photo[inside], 0.0, 1.0).mean())


def glasses_change(crop: np.ndarray, y_hat: np.ndarray, glasses: np.ndarray, threshold: float) -> float:
    """How much the generator changes the predicted glasses region: mean |ŷ - x| over the pixels
    with glasses probability >= threshold, in levels of 255 (0 when there are none). Trained with
    glasses-free pairs, the generator leaves clean eyes nearly as they are, so this separates
    faces with glasses from faces without far better than the mask alone
    (benchmarks/bench_real.py)."""
    sel = glasses >= threshold
    if not sel.any():
        return 0.0
    return float(np.abs(y_hat[sel] - crop[sel].astype(np.float32)).mean())


def glasses_free_eyes(y_hat: np.ndarray, corners: np.ndarray) -> List[np.ndarray]:
    """The six landmarks of each eye, found again on the generator's output ŷ (crop pixels):
    on the photo itself a thick frame pulls the eye landmarks onto its rim. `corners`: the face
    box's top-left and bottom-right corners in crop pixels."""
    from .detect import landmarks_in_box

    r = y_hat.shape[0]
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    box = tuple(int(round(v)) for v in (max(x0, 0), max(y0, 0), min(x1, r), min(y1, r)))
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        return []
    points = landmarks_in_box(np.clip(np.rint(y_hat), 0, 255).astype(np.uint8), box)
    return [points[36:42], points[42:48]]


def _as_photo(image: ImageLike) -> Photo:
    if isinstance(image, (str, os.PathLike)):
        return read_image(Path(image))
    return from_array(image)
