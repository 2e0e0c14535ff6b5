"""Face verification with and without glasses (the paper's Sec. 4.4 experiment): does removing the
glasses bring a person's photo closer to their own glasses-free photos without bringing it closer
to other people's? dlib's face-recognition network is the judge (distance threshold 0.6)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import ByeGlassesError, InputError
from ..files import atomic_write, file_digest, write_text

DLIB_THRESHOLD = 0.6  # dlib's documented same-person distance
FAR_TARGET = 0.01


# -- the judge ---------------------------------------------------------------------------------

@dataclass
class JudgedFace:
    box: Tuple[int, int, int, int]
    landmarks: np.ndarray  # (68, 2) float32
    descriptor: np.ndarray  # (128,) float32


def judge_face(rgb: np.ndarray, box: Optional[Tuple[int, int, int, int]] = None) -> Optional[JudgedFace]:
    """dlib descriptor of the largest face in `rgb` (HOG, then the CNN detector), or of the face in
    `box` when given (landmarks re-predicted there). None when no face is found."""
    from ..pipeline.detect import detect_boxes, detect_boxes_cnn, landmarks_in_box
    from .metrics import dlib_descriptor

    if box is None:
        upsample = 1 if max(rgb.shape[:2]) < 400 else 0
        boxes = detect_boxes(rgb, 0.0, upsample=upsample)
        if not boxes:
            boxes = detect_boxes_cnn(rgb, 0.0, upsample=upsample)
        if not boxes:
            return None
        box = max(boxes, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[0]
    lm = landmarks_in_box(rgb, box)
    return JudgedFace(tuple(int(v) for v in box), lm, dlib_descriptor(rgb, lm))


def eye_boxes(landmarks: np.ndarray, shape, pad: float = 0.25) -> List[Tuple[int, int, int, int]]:
    """Tight boxes (x0, y0, x1, y1) around each eye's six landmarks, grown by `pad` of the eye width."""
    from ..pipeline.detect import EYE_L, EYE_R

    h, w = shape[:2]
    boxes = []
    for sl in (EYE_R, EYE_L):
        pts = landmarks[sl]
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        p = pad * (x1 - x0)
        boxes.append((int(max(0, np.floor(x0 - p))), int(max(0, np.floor(y0 - p))),
                      int(min(w, np.ceil(x1 + p) + 1)), int(min(h, np.ceil(y1 + p) + 1))))
    return boxes


def eye_outlines(landmarks: np.ndarray, shape, pad: float = 0.1) -> np.ndarray:
    """(H, W) bool: each eye's six landmarks filled and grown by `pad` of its width (the eye and the
    lid edges, without the brows, creases and frame rims that `eye_boxes` also hold)."""
    from ..pipeline.detect import EYE_L, EYE_R
    from ..pipeline.geometry import eye_masks

    return eye_masks([landmarks[EYE_R], landmarks[EYE_L]], shape, pad) > 0


def eye_brightness(rgb: np.ndarray, boxes) -> float:
    """Mean grey level (0..255) inside the eye boxes: low behind dark lenses."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    vals = [grey[y0:y1, x0:x1].mean() for x0, y0, x1, y1 in boxes if x1 > x0 and y1 > y0]
    return float(np.mean(vals)) if vals else float("nan")


def eye_detail(rgb: np.ndarray, boxes) -> float:
    """Variance of the Laplacian of the grey image inside the eye boxes (their mean), or inside a
    mask (`eye_outlines`)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=3)
    if isinstance(boxes, np.ndarray):  # a mask (eye_outlines)
        return float(lap[boxes].var()) if boxes.sum() > 4 else float("nan")
    vals = [lap[y0:y1, x0:x1].var() for x0, y0, x1, y1 in boxes if x1 - x0 > 2 and y1 - y0 > 2]
    return float(np.mean(vals)) if vals else float("nan")


# -- metrics -----------------------------------------------------------------------------------

def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a random genuine pair is closer than a random impostor pair (ties half)."""
    scores = np.concatenate([genuine, impostor])
    ranks = _average_ranks(scores)
    g = ranks[:len(genuine)].sum()
    n_g, n_i = len(genuine), len(impostor)
    # genuine distances should be small: AUC = P(d_genuine < d_impostor)
    return float(1.0 - (g - n_g * (n_g + 1) / 2) / (n_g * n_i))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float = FAR_TARGET) -> Tuple[float, float]:
    """(TAR, threshold): the share of genuine pairs accepted at the largest distance threshold that
    accepts at most `far` of the impostor pairs."""
    imp = np.sort(impostor)
    k = int(np.floor(far * len(imp)))  # at most k impostors may be accepted (distance < threshold)
    threshold = imp[k] if k < len(imp) else np.inf
    return float((genuine < threshold).mean()), float(threshold)


def verification_metrics(genuine: np.ndarray, impostor: np.ndarray, threshold: float = DLIB_THRESHOLD) -> dict:
    """Genuine / impostor mean distance, balanced accuracy at `threshold`, ROC AUC, TAR@FAR=1%."""
    genuine, impostor = np.asarray(genuine, np.float64), np.asarray(impostor, np.float64)
    tar, thr = tar_at_far(genuine, impostor)
    return {
        "genuine_distance": float(genuine.mean()),
        "impostor_distance": float(impostor.mean()),
        # balanced: the mean of the genuine accept rate and the impostor reject rate
        "accuracy": float(0.5 * ((genuine < threshold).mean() + (impostor >= threshold).mean())),
        "roc_auc": roc_auc(genuine, impostor),
        "tar_at_far1": tar,
        "far1_threshold": thr,
        "genuine_pairs": int(len(genuine)),
        "impostor_pairs": int(len(impostor)),
    }


# -- the benchmark -----------------------------------------------------------------------------

Method = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 RGB photo -> the same without glasses
GlassesJudge = Callable[[np.ndarray, np.ndarray], float]  # (photo, landmarks) -> P(glasses)


@dataclass
class Probe:
    name: str
    person: str
    judged: JudgedFace
    outputs: Dict[str, Optional[JudgedFace]] = field(default_factory=dict)
    detail: Dict[str, float] = field(default_factory=dict)  # eye detail, output / input
    detail_eyes: Dict[str, float] = field(default_factory=dict)  # the same inside the eyes' outlines
    frames: Dict[str, float] = field(default_factory=dict)  # frames left (evaluation/frames.py)
    glasses: Dict[str, float] = field(default_factory=dict)  # P(glasses) of each output
    eye_brightness: float = 0.0  # mean grey level inside the eye boxes of the input


def read_pairs(path) -> Dict[str, Dict[str, List[str]]]:
    """`{person: {"glasses": [N, ...], "plain": [N, ...]}}` (fv-dev/pairs.json) -> file stems as str."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable pairs file ({e})") from None
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{path}: expected a non-empty object {{person: {{'glasses': [...], 'plain': [...]}}}}")
    pairs = {}
    for person, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("glasses"), list) \
                or not isinstance(entry.get("plain"), list):
            raise InputError(f"{path}: person {person!r} needs lists 'glasses' and 'plain'")
        pairs[str(person)] = {k: [str(v) for v in entry[k]] for k in ("glasses", "plain")}
    return pairs


LENS_CLASSES = ("clear", "tinted", "dark", "other", "none")


def read_lens_labels(path) -> Dict[str, str]:
    """What each probe's lenses are, by hand: `{"labels": {stem: "clear" | "tinted" | "dark" |
    "other" | "none"}}` (a "description" beside "labels" is allowed) -> {stem: class}. "clear": the
    eyes are seen through untinted lenses; "tinted": seen through a coloured or light grey tint;
    "dark": sunglasses, mirrored or opaque lenses (the eyes must be invented); "other": something
    else over the eyes (a costume mask); "none": no glasses to be seen (the set's label is wrong)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable lens-labels file ({e})") from None
    labels = raw.get("labels") if isinstance(raw, dict) else None
    if not isinstance(labels, dict) or not labels:
        raise InputError(f"{path}: expected {{\"labels\": {{stem: one of {', '.join(LENS_CLASSES)}}}}}")
    for stem, label in labels.items():
        if label not in LENS_CLASSES:
            raise InputError(f"{path}: {stem!r} is labelled {label!r}, not one of {', '.join(LENS_CLASSES)}")
    return {Path(str(stem)).stem: label for stem, label in labels.items()}


def _find(folder: Path, stem: str) -> Optional[Path]:
    from ..files import IMAGE_SUFFIXES

    for suffix in (".jpg", ".png", *sorted(IMAGE_SUFFIXES)):
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    p = folder / stem
    return p if p.is_file() else None


def _read(path: Path) -> np.ndarray:
    from ..pipeline.imageio import read_image

    return read_image(path).rgb


def read_judged(path: Path, skipped: Dict[str, str], key: Optional[str] = None):
    """A probe photo and dlib's judgement of its largest face: (rgb, JudgedFace), or None when no
    face is found, recorded as `skipped[key or path.name] = "no face found"`."""
    rgb = _read(path)
    judged = judge_face(rgb)
    if judged is None:
        skipped[key or path.name] = "no face found"
        return None
    return rgb, judged


def plain_descriptors(paths: Sequence[Path], cache: Optional[Path], progress: bool = True) -> Dict[Path, Optional[np.ndarray]]:
    """dlib descriptors of glasses-free photos, cached on disk by each file's content (SHA-1 of its
    bytes): a copied, moved or touched set is still found, an edited photo is judged again."""
    from tqdm import tqdm

    stored: Dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            stored = {k: z[k] for k in z.files}
    out, fresh = {}, {}
    for p in tqdm(paths, desc="glasses-free photos", unit="photo", disable=not progress, leave=False):
        key = file_digest(p)
        if key in stored:
            d = stored[key]
            out[p] = d if d.size else None
            continue
        judged = judge_face(_read(p))
        d = judged.descriptor if judged is not None else np.zeros(0, np.float32)
        fresh[key] = d
        out[p] = d if d.size else None
    if cache is not None and fresh:
        stored.update(fresh)
        cache.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **stored)
        atomic_write(cache, write)
    return out


def gallery_cache(plain_dir) -> Path:
    """Where the descriptors of a folder of glasses-free photos are cached by default:
    <cache root>/verification/<the folder's landmark-cache key> (keyed by the files' bytes)."""
    from ..synth.cache import default_cache_path

    landmarks = default_cache_path(Path(plain_dir))  # <cache root>/landmarks/<folder key>.npz
    return landmarks.parent.parent / "verification" / landmarks.name


def save_result(out: Path, result: dict) -> str:
    """Write `result` to `out` (JSON) and its table beside it (.md), each whole or not at all;
    returns the table."""
    table = markdown_table(result)
    write_text(out, json.dumps(result, indent=1))
    write_text(Path(out).with_suffix(".md"), table)
    return table


# -- trials of a pipeline change: the scripts in benchmarks/ that score one against the defaults --

def add_trial_arguments(ap) -> None:
    """The arguments every trial script takes: the fv-dev style folder, --out, --lens-labels,
    --count and --start (as `eval-verification`)."""
    ap.add_argument("folder", help="fv-dev style folder: glasses/, plain/, pairs.json")
    ap.add_argument("--out", required=True, help="JSON to write (must not exist); the table goes beside it as .md")
    ap.add_argument("--lens-labels")
    ap.add_argument("--count", type=int)
    ap.add_argument("--start", type=int, default=0)


def run_trial(args, remover, methods: Dict[str, Method]) -> dict:
    """`run_verification` of `methods` on `args.folder` (arguments of `add_trial_arguments`) with
    the command's defaults: the gallery cache, the classifier of `remover`, frames left, lens
    labels when given. Refuses an --out (or its .md) that exists before any work."""
    out, folder = Path(args.out), Path(args.folder)
    if out.exists() or out.with_suffix(".md").exists():
        raise InputError(f"--out {out}: exists; choose a new name")
    from .frames import FramesLeft

    return run_verification(folder / "glasses", folder / "plain", folder / "pairs.json", methods,
                            glasses_judge=remover.judge, limit=args.count, start=args.start,
                            cache=gallery_cache(folder / "plain"),
                            lens_labels=read_lens_labels(args.lens_labels) if args.lens_labels else None,
                            frames=FramesLeft(device=str(remover.device)))


def trial_main(args, remover, methods: Dict[str, Method]) -> int:
    """A trial script's end: `run_trial`, then `save_result` with its table printed and one line
    per kind of lens and method, the genuine distance's mean difference per probe against the
    reference ("after removal"). A bad input (an --out that exists, a folder without pairs.json)
    ends with one line on stderr and 2."""
    try:
        result = run_trial(args, remover, methods)
    except ByeGlassesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(save_result(Path(args.out), result))
    for kind, paired in (paired_by_lens(result) or {}).items():
        for name, row in paired["methods"].items():
            g = row.get("genuine_distance")
            if g and g["se"] is not None:
                print(f"{kind:>9}: {name} - {REFERENCE}, genuine distance per probe "
                      f"{g['mean']:+.4f} ± {g['se']:.4f} ({g['probes']} probes)")
    return 0


def list_photos(glasses_dir: Path, plain_dir: Path, pairs: Dict[str, Dict[str, List[str]]]):
    """The photos of a pairs file (`read_pairs`), people in sorted order: (glasses-free paths, their
    people, [(person, glasses photo path)], {"plain/STEM" or "glasses/STEM": "file not found"})."""
    skipped: Dict[str, str] = {}
    plain_paths, plain_person = [], []
    probes: List[Tuple[str, Path]] = []
    for person, entry in sorted(pairs.items()):
        for stem in entry["plain"]:
            p = _find(plain_dir, stem)
            if p is None:
                skipped[f"plain/{stem}"] = "file not found"
            else:
                plain_paths.append(p)
                plain_person.append(person)
        for stem in entry["glasses"]:
            p = _find(glasses_dir, stem)
            if p is None:
                skipped[f"glasses/{stem}"] = "file not found"
            else:
                probes.append((person, p))
    return plain_paths, plain_person, probes, skipped


def run_verification(glasses_dir, plain_dir, pairs_file, methods: Dict[str, Method],
                     glasses_judge: Optional[GlassesJudge] = None, limit: Optional[int] = None, start: int = 0,
                     cache: Optional[Path] = None, progress: bool = True, save_dir: Optional[Path] = None,
                     lens_labels: Optional[Dict[str, str]] = None, frames=None) -> dict:
    """The verification benchmark: each glasses photo, as it is ("glasses on") and after each of
    `methods`, against every glasses-free photo of the same person (genuine pairs) and of the other
    people (impostor pairs). Returns {"methods": {name: metrics}, "skipped": {...}, ...}. With
    `lens_labels` ({stem: class}, `read_lens_labels`), "by_lens" holds the figures for each kind of
    lens. With `frames` (evaluation.frames.FramesLeft), each output's "frames left" too: the share of
    the input's thin frame lines still in it."""
    from tqdm import tqdm

    glasses_dir, plain_dir = Path(glasses_dir), Path(plain_dir)
    for d in (glasses_dir, plain_dir):
        if not d.is_dir():
            raise InputError(f"{d}: not a folder")
    plain_paths, plain_person, probes_todo, skipped = list_photos(glasses_dir, plain_dir, read_pairs(pairs_file))
    probes_todo = probes_todo[start:start + limit if limit else None]
    t0 = time.perf_counter()
    descs = plain_descriptors(plain_paths, cache, progress)
    keep = [i for i, p in enumerate(plain_paths) if descs[p] is not None]
    for i, p in enumerate(plain_paths):
        if descs[p] is None:
            skipped[f"plain/{p.name}"] = "no face found"
    gallery = np.stack([descs[plain_paths[i]] for i in keep])  # (G, 128)
    gallery_person = np.array([plain_person[i] for i in keep])

    names = ["glasses on", *methods]
    probes: List[Probe] = []
    seconds = {n: 0.0 for n in methods}
    for person, path in tqdm(probes_todo, desc="glasses photos", unit="photo", disable=not progress):
        read = read_judged(path, skipped, f"glasses/{path.name}")
        if read is None:
            continue
        rgb, judged = read
        probe = Probe(path.name, person, judged)
        boxes = eye_boxes(judged.landmarks, rgb.shape)
        base_detail = eye_detail(rgb, boxes)
        outlines = eye_outlines(judged.landmarks, rgb.shape)
        base_eyes = eye_detail(rgb, outlines)
        frame_probe = frames.prepare(rgb, judged.landmarks) if frames is not None else None
        probe.eye_brightness = eye_brightness(rgb, boxes)
        for name in names:
            if name == "glasses on":
                out, j = rgb, judged
            else:
                t = time.perf_counter()
                out = methods[name](rgb)
                seconds[name] += time.perf_counter() - t
                j = judge_face(out, judged.box)
                if save_dir is not None:
                    _save(save_dir / _slug(name) / path.with_suffix(".png").name, out)
            probe.outputs[name] = j
            probe.detail[name] = eye_detail(out, boxes) / base_detail if base_detail > 0 else float("nan")
            probe.detail_eyes[name] = eye_detail(out, outlines) / base_eyes if base_eyes > 0 else float("nan")
            if frame_probe is not None:
                probe.frames[name] = frames.score(frame_probe, out)
            if glasses_judge is not None:
                probe.glasses[name] = glasses_judge(out, (j or judged).landmarks)
        probes.append(probe)
    if not probes:
        raise InputError(f"{glasses_dir}: no glasses photo with a face to verify")

    results = {}
    # quarters of the probes by how dark their eye regions are with the glasses on: the darkest
    # quarter is mostly sunglasses (eyes the generator must invent), the others mostly clear lenses
    brightness = np.array([p.eye_brightness for p in probes])
    quarter = np.searchsorted(np.quantile(brightness, [0.25, 0.5, 0.75]), brightness, side="right")  # 0 = darkest
    clear = [p for p, q in zip(probes, quarter) if q >= 1]
    by_darkness = {}
    base_genuine = None
    genuine_of: Dict[str, np.ndarray] = {}  # each probe's mean genuine distance, per method
    for name in names:
        genuine, impostor, per_probe = [], [], []
        for probe in probes:
            d = np.linalg.norm(gallery - probe.outputs[name].descriptor, axis=1)
            same = gallery_person == probe.person
            genuine.append(d[same])
            impostor.append(d[~same])
            per_probe.append(d[same].mean() if same.any() else np.nan)
        genuine, impostor, per_probe = np.concatenate(genuine), np.concatenate(impostor), np.array(per_probe)
        genuine_of[name] = per_probe
        m = verification_metrics(genuine, impostor)
        if base_genuine is None:
            base_genuine = per_probe
        m["closer_share"] = float(np.nanmean(per_probe < base_genuine)) if name != "glasses on" else None
        m["eye_detail"] = float(np.nanmedian([p.detail[name] for p in probes]))
        # behind clear lenses: the three quarters of the photos with the brightest eye regions
        m["eye_detail_clear"] = float(np.nanmedian([p.detail[name] for p in clear]))
        # the eyes alone: a frame rim the boxes hold counts as detail there, and taking it off as a loss
        m["eye_detail_eyes"] = float(np.nanmedian([p.detail_eyes[name] for p in probes]))
        if glasses_judge is not None:
            m["still_glasses"] = float(np.mean([p.glasses[name] >= 0.5 for p in probes]))
        if frames is not None:
            from .frames import FRAMES_LEFT

            m["frames_left"] = float(np.mean([p.frames[name] for p in probes]))
            m["frames_left_share"] = float(np.mean([p.frames[name] >= FRAMES_LEFT for p in probes]))
        m["ms_per_photo"] = 1000 * seconds.get(name, 0.0) / len(probes)
        results[name] = m
        by_darkness[name] = [{"probes": int((quarter == q).sum()),
                              "genuine_distance": _nanmean(per_probe[quarter == q]),
                              "closer_share": (None if name == "glasses on" else
                                               _nanmean(per_probe[quarter == q] < base_genuine[quarter == q]))}
                             for q in range(4)]
    by_lens = None
    if lens_labels is not None:
        kinds = np.array([lens_labels.get(Path(p.name).stem, "unlabelled") for p in probes])
        by_lens = {}
        for name in names:
            per_probe = genuine_of[name]
            rows = {}
            for kind in (*LENS_CLASSES, "unlabelled"):
                sel = kinds == kind
                if not sel.any():
                    continue
                chosen = [p for p, s in zip(probes, sel) if s]
                rows[kind] = {"probes": int(sel.sum()),
                              "genuine_distance": _nanmean(per_probe[sel]),
                              "closer_share": (None if name == "glasses on" else
                                               _nanmean(per_probe[sel] < base_genuine[sel])),
                              "still_glasses": (float(np.mean([p.glasses[name] >= 0.5 for p in chosen]))
                                                if glasses_judge is not None else None),
                              "eye_detail": float(np.nanmedian([p.detail[name] for p in chosen])),
                              "eye_detail_eyes": float(np.nanmedian([p.detail_eyes[name] for p in chosen])),
                              "frames_left": (float(np.mean([p.frames[name] for p in chosen]))
                                              if frames is not None else None)}
            by_lens[name] = rows
    result = {"methods": results, "by_darkness": by_darkness, "by_lens": by_lens,
            "probes": len(probes), "gallery": int(len(gallery)),
            "people": int(len(set(p.person for p in probes))), "skipped": skipped,
            "seconds": time.perf_counter() - t0,
            "per_probe": {p.name: {n: float(genuine_of[n][i]) for n in names} for i, p in enumerate(probes)},
            # the classifier's P(glasses) for each probe and method: which outputs still wear glasses
            "per_probe_glasses": ({p.name: {n: round(float(p.glasses[n]), 4) for n in names} for p in probes}
                                  if glasses_judge is not None else None),
            # eye detail kept, output over input, for each probe and method
            "per_probe_detail": {p.name: {n: _round(p.detail[n]) for n in names} for p in probes},
            # ... and inside the eyes' outlines alone
            "per_probe_detail_eyes": {p.name: {n: _round(p.detail_eyes[n]) for n in names} for p in probes},
            # frames left: the share of the input's thin frame lines still in each output
            "per_probe_frames": ({p.name: {n: _round(p.frames[n]) for n in names} for p in probes}
                                 if frames is not None else None)}
    if lens_labels is not None:
        result["per_probe_lens"] = {p.name: lens_labels.get(Path(p.name).stem, "unlabelled") for p in probes}
    result["paired"] = paired_differences(result)
    result["paired_by_lens"] = paired_by_lens(result)
    return result


def _round(value: float, digits: int = 4) -> Optional[float]:
    return round(float(value), digits) if np.isfinite(value) else None


def _nanmean(values: np.ndarray) -> Optional[float]:
    values = np.asarray(values, np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else None


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


COLUMNS = [("genuine_distance", "genuine dist. ↓", "{:.3f}"), ("impostor_distance", "impostor dist.", "{:.3f}"),
           ("accuracy", "accuracy@0.6", "{:.3f}"), ("roc_auc", "ROC AUC", "{:.4f}"),
           ("tar_at_far1", "TAR@FAR=1%", "{:.3f}"), ("closer_share", "closer than glasses on", "{:.0%}"),
           ("still_glasses", "still glasses", "{:.1%}"), ("frames_left", "frames left", "{:.2f}"),
           ("frames_left_share", "… ≥ 0.5", "{:.1%}"), ("eye_detail", "eye detail kept", "{:.2f}"),
           ("eye_detail_clear", "… behind clear lenses", "{:.2f}"),
           ("eye_detail_eyes", "eyes alone", "{:.2f}"),
           ("ms_per_photo", "ms/photo", "{:.0f}")]


REFERENCE = "after removal"  # the method the others are compared with, probe by probe


def glasses_logit_of(p: np.ndarray) -> np.ndarray:
    """P(glasses) as a logit, clipped to 1e-4..1-1e-4 (so that 0.98 -> 0.90 counts as much as 0.5 -> 0.16)."""
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def paired_differences(result: dict, reference: str = REFERENCE,
                       probes: Optional[Sequence[str]] = None) -> Optional[dict]:
    """Each method against `reference`, probe by probe (same probes, same gallery): the mean
    difference and its standard error of the genuine distance, of the classifier's P(glasses) as a
    logit (clipped to 1e-4..1-1e-4), and of the frames left. Far steadier than comparing counts:
    on 77 probes, which of two models leaves glasses on more faces (5 against 7) can come out the
    other way on the next 232, where the mean logit's sign held (docs/verification.md).
    Works on a saved result too; None when there is nothing to compare. `probes`: only these
    probes (file names, the keys of "per_probe")."""
    per_probe = result.get("per_probe") or {}
    chosen = None if probes is None else set(probes)
    names = [n for n in result.get("methods", {}) if n not in ("glasses on", reference)]
    if not per_probe or reference not in result.get("methods", {}) or not names:
        return None
    columns = {"genuine_distance": (per_probe, lambda v: v),
               "glasses_logit": (result.get("per_probe_glasses"), glasses_logit_of),
               "frames_left": (result.get("per_probe_frames"), lambda v: v)}
    out = {}
    for name in names:
        row = {}
        for key, (table, transform) in columns.items():
            if not table:
                continue
            pairs = np.array([(table[p][name], table[p][reference]) for p in table
                              if (chosen is None or p in chosen)
                              and table[p].get(name) is not None and table[p].get(reference) is not None],
                             np.float64).reshape(-1, 2)
            pairs = pairs[np.isfinite(pairs).all(1)]
            if not len(pairs):
                continue
            d = transform(pairs[:, 0]) - transform(pairs[:, 1])
            row[key] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None,
                        "probes": int(len(d)), "lower": int((d < 0).sum()), "higher": int((d > 0).sum())}
        out[name] = row
    return {"reference": reference, "methods": out}


def paired_by_lens(result: dict, reference: str = REFERENCE,
                   labels: Optional[Dict[str, str]] = None) -> Optional[dict]:
    """`paired_differences` for each kind of lens with two probes or more ({kind: ...}), from the
    result's "per_probe_lens" (run with lens labels), or from `labels` ({stem: kind},
    `read_lens_labels`) for a result saved without them; None without labels. The gap to glasses on
    is not spread evenly (almost all of it is behind dark lenses), so a change aimed at one kind
    of lens is read there."""
    kinds = result.get("per_probe_lens")
    if labels is not None:
        kinds = {p: labels.get(Path(p).stem, "unlabelled") for p in result.get("per_probe") or {}}
    if not kinds:
        return None
    out = {}
    for kind in (*LENS_CLASSES, "unlabelled"):
        chosen = [p for p, k in kinds.items() if k == kind]
        if len(chosen) >= 2:
            paired = paired_differences(result, reference, chosen)
            if paired is not None:
                out[kind] = paired | {"probes": len(chosen)}
    return out or None


def markdown_table(result: dict) -> str:
    cols = [c for c in COLUMNS if any(c[0] in m for m in result["methods"].values())]
    lines = ["| probes | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in result["methods"].items():
        cells = []
        for key, _, fmt in cols:
            v = m.get(key)
            cells.append("—" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result.get("by_darkness"):
        lines += ["", "Genuine distance ↓ by how dark the eye region is with the glasses on (quarters of the "
                  "probes; the darkest is mostly sunglasses), and the share of probes closer than with the "
                  "glasses on:", "",
                  "| probes | darkest quarter | second | third | brightest quarter |", "|---" * 5 + "|"]
        for name, quarters in result["by_darkness"].items():
            cells = []
            for q in quarters:
                d, c = q["genuine_distance"], q["closer_share"]
                cells.append("—" if d is None else f"{d:.3f}" + ("" if c is None else f" ({c:.0%})"))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result.get("by_lens"):
        kinds = list(next(iter(result["by_lens"].values())))
        lines += ["", "By kind of lens (hand labels): genuine distance ↓ (share closer than with the glasses on), "
                  "still glasses, frames left (when measured), eye detail kept (eyes alone):", "",
                  "| probes | " + " | ".join(f"{k} ({result['by_lens']['glasses on'][k]['probes']})" for k in kinds)
                  + " |", "|---" * (len(kinds) + 1) + "|"]
        for name, rows in result["by_lens"].items():
            cells = []
            for k in kinds:
                r = rows[k]
                text = "—" if r["genuine_distance"] is None else f"{r['genuine_distance']:.3f}"
                if r["closer_share"] is not None:
                    text += f" ({r['closer_share']:.0%})"
                if r["still_glasses"] is not None:
                    text += f" · {r['still_glasses']:.0%}"
                if r.get("frames_left") is not None:
                    text += f" · {r['frames_left']:.2f}"
                if np.isfinite(r["eye_detail"]):
                    text += f" · {r['eye_detail']:.2f}"
                if np.isfinite(r.get("eye_detail_eyes", float("nan"))):
                    text += f" ({r['eye_detail_eyes']:.2f})"
                cells.append(text)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    paired = result.get("paired")
    if paired and paired["methods"]:
        labels = {"genuine_distance": "genuine distance", "glasses_logit": "P(glasses), logit",
                  "frames_left": "frames left"}
        keys = [k for k in labels if any(k in row for row in paired["methods"].values())]
        lines += ["", f"Probe by probe against \"{paired['reference']}\": mean difference ± standard error "
                  "(probes lower / higher); below 0 is better in every column:", "",
                  "| method | " + " | ".join(labels[k] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for name, row in paired["methods"].items():
            cells = []
            for k in keys:
                c = row.get(k)
                cells.append("—" if c is None else f"{c['mean']:+.4f} ± {c['se'] or 0:.4f} ({c['lower']}/{c['higher']})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        by_lens = result.get("paired_by_lens")
        if by_lens:
            lines += ["", "The same by kind of lens:", "",
                      "| method | lenses | " + " | ".join(labels[k] for k in keys) + " |", "|---" * (len(keys) + 2) + "|"]
            for name in paired["methods"]:
                for kind, pk in by_lens.items():
                    row = pk["methods"].get(name, {})
                    cells = []
                    for k in keys:
                        c = row.get(k)
                        cells.append("—" if c is None else f"{c['mean']:+.4f} ± {c['se'] or 0:.4f} ({c['lower']}/{c['higher']})")
                    lines.append(f"| {name} | {kind} ({pk['probes']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)
