r"""Does `eyes_kept` (remove's per-face share of the eyes that shows the photo's own pixels) tell
which faces had their eyes invented, and are those the faces removal moves away from their person?

For every fv-dev glasses photo, the shipped pipeline (or --checkpoint) removes the glasses; the
face the judge finds is matched to the pipeline's face by box overlap. Prints, by hand-labelled
kind of lens, the median eyes_kept; the ROC AUC of eyes_kept for dark against clear lenses;
and the mean genuine distance (over each person's glasses-free photos, dlib as in
`eval-verification`) with the glasses on and after removal, for faces below and above
`remover.EYES_INVENTED` (0.5, fixed before this was measured).

    python benchmarks/fv_eyes_kept.py ../shared/data/celebahq256/fv-dev \
        --lens-labels benchmarks/fv_dev_lens_labels.json --out fv_eyes_kept.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def overlap(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main(argv=None) -> int:
    from tqdm import tqdm

    from byeglasses.errors import ByeGlassesError
    from byeglasses.evaluation.verification import (gallery_cache, list_photos, judge_face, plain_descriptors, read_judged, read_lens_labels,
                                                    read_pairs, roc_auc)
    from byeglasses.files import atomic_write
    from byeglasses.pipeline.remover import EYES_INVENTED
    from byeglasses.pipeline.remover import GlassesRemover, RemovalSettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--lens-labels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--count", type=int)
    args = ap.parse_args(argv)
    folder, out = Path(args.folder), Path(args.out)
    try:
        if out.exists():
            raise ByeGlassesError(f"--out {out}: exists; choose a new name")
        labels = read_lens_labels(args.lens_labels)
        pairs = read_pairs(folder / "pairs.json")
    except ByeGlassesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    plain, plain_person, todo, _ = list_photos(folder / "glasses", folder / "plain", pairs)
    todo = todo[:args.count] if args.count else todo
    descs = plain_descriptors(plain, gallery_cache(folder / "plain"))
    keep = [i for i, p in enumerate(plain) if descs[p] is not None]
    gallery = np.stack([descs[plain[i]] for i in keep])
    gallery_person = np.array([plain_person[i] for i in keep])
    remover = GlassesRemover(settings=RemovalSettings(checkpoint=args.checkpoint))
    rows, skipped = {}, {}
    for person, path in tqdm(todo, desc="glasses photos", unit="photo"):
        read = read_judged(path, skipped)
        if read is None:
            continue
        rgb, judged = read
        result = remover.remove(rgb)
        faces = [f for f in result.faces if overlap(f.box, judged.box) > 0.3]
        if not faces:
            skipped[path.name] = "the pipeline found no face where the judge did"
            continue
        face = max(faces, key=lambda f: overlap(f.box, judged.box))
        after = judge_face(result.image, judged.box)
        same = gallery_person == person
        rows[path.name] = {"lens": labels.get(path.stem, "unlabelled"), "removed": face.changed,
                           "eyes_kept": face.eyes_kept,
                           "genuine_on": float(np.linalg.norm(gallery[same] - judged.descriptor, axis=1).mean()),
                           "genuine_after": float(np.linalg.norm(gallery[same] - after.descriptor, axis=1).mean())}
    lines = ["| lenses | probes | removed | eyes_kept median | eyes invented (< %.1f) |" % EYES_INVENTED,
             "|---|---|---|---|---|"]
    for kind in ("clear", "tinted", "dark", "other", "none", "unlabelled"):
        sel = [r for r in rows.values() if r["lens"] == kind]
        if sel:
            kept = np.array([r["eyes_kept"] for r in sel if r["removed"]])
            lines.append(f"| {kind} | {len(sel)} | {len(kept)} | {np.median(kept) if len(kept) else float('nan'):.2f} | "
                         f"{np.mean(kept < EYES_INVENTED) if len(kept) else float('nan'):.0%} |")
    dark = np.array([r["eyes_kept"] for r in rows.values() if r["lens"] == "dark" and r["removed"]])
    clear = np.array([r["eyes_kept"] for r in rows.values() if r["lens"] == "clear" and r["removed"]])
    # P(a dark lens's eyes_kept < a clear lens's), ties half
    auc = roc_auc(dark, clear) if len(dark) and len(clear) else float("nan")
    lines += ["", f"ROC AUC of eyes_kept (lower for dark), dark ({len(dark)}) against clear ({len(clear)}) lenses: {auc:.3f}", "",
              "| removed faces | probes | genuine, glasses on | after removal | per probe, after minus on |",
              "|---|---|---|---|---|"]
    groups = {}
    for name, test in (("eyes invented", lambda k: k < EYES_INVENTED), ("eyes kept", lambda k: k >= EYES_INVENTED)):
        sel = [r for r in rows.values() if r["removed"] and test(r["eyes_kept"])]
        if len(sel) > 1:
            on, after = np.array([r["genuine_on"] for r in sel]), np.array([r["genuine_after"] for r in sel])
            d = after - on
            groups[name] = {"probes": len(sel), "genuine_on": float(on.mean()), "genuine_after": float(after.mean()),
                            "difference": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d)))}
            lines.append(f"| {name} | {len(sel)} | {on.mean():.3f} | {after.mean():.3f} | "
                         f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(len(d)):.4f} |")
    report = {"probes": len(rows), "skipped": skipped, "auc_dark_vs_clear": auc, "groups": groups,
              "threshold": EYES_INVENTED, "rows": rows}
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"eyes_kept on {len(rows)} probes ({len(skipped)} skipped): dark against clear AUC {auc:.3f}")
    return 0


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "fv_eyes_kept.py"))
