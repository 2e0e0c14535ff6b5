r"""How far would perfect invented eyes go? An oracle for the face-verification benchmark.

Behind dark lenses the generator has to invent the eyes, and that is where removal loses identity
(docs/verification.md). This script asks how much a perfect inventor could win back. For each
fv-dev probe whose person has at least two glasses-free photos, one of them becomes a *donor*:
the one whose 68 landmarks (brows, nose, eyes) fit the removal output's best after a similarity
transform. The donor is left out of that probe's genuine comparisons in every condition, and
pasted onto the removal output (warped, colour-matched on a ring of skin around the region,
feathered):

- glasses on, after removal: the photo and the shipped pipeline's output;
- own eyes: the donor's eye regions (the eyes' outlines grown by 0.8 of their width: eyes, lids,
  sockets, no brows);
- own region: the donor over the whole region the pipeline redrew (its blend weight);
- impostor eyes / impostor region: the same from another person's photo, the best landmark fit
  among 6 drawn at random (about as many candidates as a person has photos, so the fit is no
  better than the donor's). Impostor pairs leave that photo out.

The pasting is crude (seams, lighting from another day), so "own" is a lower bound on what the
person's real eyes would give, and "impostor" measures the same crudeness with the wrong eyes.
Genuine and impostor pairs, accuracy@0.6, TAR@FAR=1% and ROC AUC as `eval-verification`, and
paired differences per probe, overall and by kind of lens.

    python benchmarks/fv_oracle_eyes.py FV_DIR --lens-labels benchmarks/fv_dev_lens_labels.json \
        --out oracle.json [--checkpoint C] [--count N] [--sheet DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from byeglasses.errors import ByeGlassesError
from byeglasses.evaluation.verification import (LENS_CLASSES, _read, gallery_cache, list_photos, eye_outlines, judge_face,
                                                plain_descriptors, read_judged, read_lens_labels, read_pairs,
                                                verification_metrics)
from byeglasses.files import atomic_write

CONDITIONS = ("glasses on", "after removal", "own eyes", "own region", "impostor eyes", "impostor region")
FIT = np.r_[17:48]  # brows, nose and eyes: the points the donor is aligned by
EYE_GROW = 0.8  # the eye region: the eyes' outlines grown by this share of their width
IMPOSTOR_CANDIDATES = 6


def landmarks_of(rgb: np.ndarray):
    from byeglasses.pipeline.detect import detect_boxes, detect_boxes_cnn, landmarks_in_box

    upsample = 1 if max(rgb.shape[:2]) < 400 else 0
    boxes = detect_boxes(rgb, 0.0, upsample=upsample) or detect_boxes_cnn(rgb, 0.0, upsample=upsample)
    if not boxes:
        return None
    box = max(boxes, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[0]
    return landmarks_in_box(rgb, box)


def fit(src: np.ndarray, dst: np.ndarray):
    """Similarity transform taking landmarks `src` onto `dst` (FIT points), and its RMS residual
    over the inter-ocular distance of `dst`."""
    M, _ = cv2.estimateAffinePartial2D(src[FIT].astype(np.float32), dst[FIT].astype(np.float32), method=cv2.LMEDS)
    if M is None:
        return None, np.inf
    moved = src[FIT] @ M[:, :2].T + M[:, 2]
    iod = np.linalg.norm(dst[36:42].mean(0) - dst[42:48].mean(0))
    return M, float(np.sqrt(((moved - dst[FIT]) ** 2).sum(1).mean()) / iod)


def paste(out: np.ndarray, donor: np.ndarray, M: np.ndarray, region: np.ndarray, face: np.ndarray) -> np.ndarray:
    """`donor` warped by `M` over `out` where `region` ((H, W) in [0, 1]), its lightness and colour
    matched to `out` on a ring around the region inside `face` ((H, W) bool), edges feathered."""
    h, w = out.shape[:2]
    warped = cv2.warpAffine(donor, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    hard = (region > 0.05).astype(np.uint8)
    size = max(3, int(0.08 * np.sqrt(hard.sum() + 1)) | 1)
    ring = (cv2.dilate(hard, np.ones((2 * size + 1, 2 * size + 1), np.uint8)) & (1 - hard)).astype(bool) & face
    a = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(np.float32)
    b = cv2.cvtColor(warped, cv2.COLOR_RGB2LAB).astype(np.float32)
    if ring.sum() > 20:
        for c, low in ((0, 0.5), (1, 0.1), (2, 0.1)):  # chroma may shrink to nothing (a grey photo)
            ma, sa = a[..., c][ring].mean(), a[..., c][ring].std() + 1e-3
            mb, sb = b[..., c][ring].mean(), b[..., c][ring].std() + 1e-3
            b[..., c] = (b[..., c] - mb) * np.clip(sa / sb, low, 2.0) + ma
    b = cv2.cvtColor(np.clip(b, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    alpha = np.maximum(cv2.GaussianBlur(region.astype(np.float32), (0, 0), max(1.0, size / 2)), region)[..., None]
    return np.clip(alpha * b + (1 - alpha) * out, 0, 255).astype(np.uint8)


def paired(values: dict, probes: list, a: str, b: str):
    d = np.array([values[p][a] - values[p][b] for p in probes])
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None,
            "lower": int((d < 0).sum()), "higher": int((d > 0).sum())}


def summarise(rows: dict, descriptors: dict, gallery: np.ndarray, gallery_person: np.ndarray, probes: list) -> dict:
    """Each condition's verification figures over `probes`, and paired differences of each probe's
    mean genuine distance against "after removal" and "glasses on"."""
    out = {}
    genuine_of = {p: rows[p]["genuine"] for p in probes}
    for name in CONDITIONS:
        genuine, impostor = [], []
        for p in probes:
            d = np.linalg.norm(gallery - descriptors[p][name], axis=1)
            same = gallery_person == rows[p]["person"]
            keep_same = same.copy()
            keep_same[rows[p]["own_donor"]] = False
            keep_other = ~same
            keep_other[rows[p]["impostor_donor"]] = False
            genuine.append(d[keep_same])
            impostor.append(d[keep_other])
        m = verification_metrics(np.concatenate(genuine), np.concatenate(impostor))
        m["probe_mean_genuine"] = float(np.mean([genuine_of[p][name] for p in probes]))
        m["still_glasses"] = float(np.mean([rows[p]["glasses"][name] >= 0.5 for p in probes]))
        m["vs_after_removal"] = paired(genuine_of, probes, name, "after removal")
        m["vs_glasses_on"] = paired(genuine_of, probes, name, "glasses on")
        out[name] = m
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="fv-dev style folder: glasses/, plain/, pairs.json")
    ap.add_argument("--lens-labels", help="lens kind per probe (benchmarks/fv_dev_lens_labels.json)")
    ap.add_argument("--out", required=True, help="JSON to write (must not exist)")
    ap.add_argument("--checkpoint", help="generator checkpoint (default: the shipped model)")
    ap.add_argument("--count", type=int, help="only the first N probes")
    ap.add_argument("--sheet", help="folder for side-by-side strips of the first 16 dark-lens probes (must not exist)")
    ap.add_argument("--seed", type=int, default=0, help="draws the impostor candidates")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    from byeglasses.pipeline.remover import GlassesRemover, RemovalSettings

    folder, out_path = Path(args.folder), Path(args.out)
    for sub in ("glasses", "plain", "pairs.json"):
        if not (folder / sub).exists():
            raise ByeGlassesError(f"{folder}: has no {sub} (expected glasses/, plain/ and pairs.json)")
    if out_path.exists():
        raise ByeGlassesError(f"--out {out_path}: exists; choose a new name")
    if args.sheet and Path(args.sheet).exists():
        raise ByeGlassesError(f"--sheet {args.sheet}: exists; choose a new folder")
    if args.count is not None and args.count < 1:
        raise ByeGlassesError(f"--count must be 1 or more, got {args.count}")
    labels = read_lens_labels(args.lens_labels) if args.lens_labels else {}
    pairs = read_pairs(folder / "pairs.json")
    plain, plain_person, todo, _ = list_photos(folder / "glasses", folder / "plain", pairs)
    todo = todo[:args.count] if args.count else todo
    t0 = time.perf_counter()
    descs = plain_descriptors(plain, gallery_cache(folder / "plain"))
    marks = {p: landmarks_of(_read(p)) for p in tqdm(plain, desc="glasses-free landmarks", unit="photo", leave=False)}
    keep = [i for i, p in enumerate(plain) if descs[p] is not None and marks[p] is not None]
    gallery = np.stack([descs[plain[i]] for i in keep])
    gallery_person = np.array([plain_person[i] for i in keep])
    gallery_paths = [plain[i] for i in keep]
    remover = GlassesRemover(settings=RemovalSettings(checkpoint=args.checkpoint))
    rng = np.random.default_rng(args.seed)
    rows, descriptors, skipped, sheets = {}, {}, {}, 0
    for person, path in tqdm(todo, desc="glasses photos", unit="photo"):
        mine, others = np.flatnonzero(gallery_person == person), np.flatnonzero(gallery_person != person)
        drawn = rng.choice(others, size=min(IMPOSTOR_CANDIDATES, len(others)), replace=False)  # for every probe alike
        if len(mine) < 2 or not len(drawn):
            skipped[path.name] = "fewer than 2 glasses-free photos of this person, or no other person"
            continue
        read = read_judged(path, skipped)
        if read is None:
            continue
        rgb, judged = read
        result = remover.remove(rgb)
        removed = result.image
        target = judge_face(removed, judged.box).landmarks
        (m_own, r_own), own = min(((fit(marks[gallery_paths[i]], target), i) for i in mine), key=lambda t: t[0][1])
        (m_imp, r_imp), imp = min(((fit(marks[gallery_paths[i]], target), i) for i in drawn), key=lambda t: t[0][1])
        if m_own is None or m_imp is None:
            skipped[path.name] = "no landmark fit for a donor"
            continue
        face = np.zeros(removed.shape[:2], np.uint8)
        cv2.fillConvexPoly(face, cv2.convexHull(target[:27].astype(np.int32)), 1)
        face = face.astype(bool)
        eyes = eye_outlines(target, removed.shape, pad=EYE_GROW).astype(np.float32)
        region = np.clip(result.blend_mask, 0, 1).astype(np.float32)
        if region.max() <= 0.05:  # nothing redrawn: the region is the eyes
            region = eyes
        own_rgb, imp_rgb = _read(gallery_paths[own]), _read(gallery_paths[imp])
        images = {"glasses on": rgb, "after removal": removed,
                  "own eyes": paste(removed, own_rgb, m_own, eyes, face),
                  "own region": paste(removed, own_rgb, m_own, region, face),
                  "impostor eyes": paste(removed, imp_rgb, m_imp, eyes, face),
                  "impostor region": paste(removed, imp_rgb, m_imp, region, face)}
        rest = np.array([i for i in mine if i != own])
        row = {"person": person, "lens": labels.get(path.stem, "unlabelled"), "own_donor": int(own),
               "impostor_donor": int(imp), "fit_own": r_own, "fit_impostor": r_imp, "genuine": {}, "glasses": {}}
        descriptors[path.name] = {}
        for name, image in images.items():
            j = judged if name == "glasses on" else (judge_face(image, judged.box))
            descriptors[path.name][name] = j.descriptor
            row["genuine"][name] = float(np.linalg.norm(gallery[rest] - j.descriptor, axis=1).mean())
            row["glasses"][name] = float(remover.judge(image, j.landmarks))
        rows[path.name] = row
        if args.sheet and row["lens"] == "dark" and sheets < 16:
            Path(args.sheet).mkdir(parents=True, exist_ok=True)
            strip = np.concatenate([cv2.resize(images[n], (256, 256), interpolation=cv2.INTER_AREA) for n in CONDITIONS], 1)
            cv2.imwrite(str(Path(args.sheet) / f"{path.stem}.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
            sheets += 1
    if not rows:
        raise ByeGlassesError(f"{folder}: no probe could be scored ({len(skipped)} skipped)")
    names = list(rows)
    report = {"conditions": list(CONDITIONS), "checkpoint": args.checkpoint, "probes": len(rows),
              "skipped": skipped, "seconds": time.perf_counter() - t0,
              "all": summarise(rows, descriptors, gallery, gallery_person, names), "by_lens": {}}
    for kind in LENS_CLASSES:
        chosen = [p for p in names if rows[p]["lens"] == kind]
        if len(chosen) >= 2:
            report["by_lens"][kind] = {"probes": len(chosen),
                                       **summarise(rows, descriptors, gallery, gallery_person, chosen)}
    report["rows"] = rows
    atomic_write(out_path, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)))
    print(table(report))
    a = report["all"]
    print(f"oracle on {len(rows)} probes ({len(skipped)} skipped) in {report['seconds']:.0f} s: genuine "
          + ", ".join(f"{n} {a[n]['probe_mean_genuine']:.3f}" for n in CONDITIONS))
    return 0


def table(report: dict) -> str:
    lines = ["| probes | condition | genuine ↓ | against after removal | against glasses on | TAR@FAR=1% | accuracy@0.6 | still glasses |",
             "|---|---|---|---|---|---|---|---|"]
    groups = [("all", report["probes"], report["all"])]
    groups += [(k, v["probes"], v) for k, v in report["by_lens"].items()]
    for kind, n, figures in groups:
        for name in CONDITIONS:
            m = figures[name]

            def diff(d):
                return "—" if d["se"] is None or d["se"] == 0 else f"{d['mean']:+.4f} ± {d['se']:.4f}"
            lines.append(f"| {kind} ({n}) | {name} | {m['probe_mean_genuine']:.3f} | {diff(m['vs_after_removal'])} | "
                         f"{diff(m['vs_glasses_on'])} | {m['tar_at_far1']:.3f} | {m['accuracy']:.3f} | "
                         f"{m['still_glasses']:.1%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "fv_oracle_eyes.py"))
