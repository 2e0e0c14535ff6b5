r"""What do glasses cost the face-verification judge, and how much does removal win back, where the
answer is known?

On the real `fv-dev/` probes the glasses-free face behind the glasses is never seen, so the cost
of the glasses and the share of it removal wins back cannot be told apart from everything else
that differs between two photos of a person (pose, light, age). Here the probe is one of the
person's own *glasses-free* photos with glasses synthesized onto it (the training renderer, a
fixed seed per person), so the face behind the glasses is the photo itself:

- clean: the photo as it is (the ceiling);
- glasses on: the photo with synthesized glasses;
- after removal: `byeglasses remove` on it (the shipped pipeline, defaults);
- mask blend: the same with `blend="mask"` (the generator's output over the whole predicted
  glasses region, no pixels kept from behind the lenses);
- hidden restored / see-through restored: two oracles that say where removal loses identity: the
  result of `after removal` with the clean photo put back where the synthesized glasses changed a
  pixel by more than 12 levels (what they hid: frames, their shadow, glare, a dark lens), or
  where they changed it by less (what a clear lens lets through);
- clean redrawn: the generator run on the *clean* photo, its output pasted inside the same glasses
  mask: how far the generator's redrawing alone moves a face, with nothing to remove.

One probe per person with 3 or more glasses-free photos, and per lens kind (clear, tinted,
sunglasses: the synthesis's own lens families, every other parameter from its default
distribution). Genuine pairs: the probe against the person's *other* glasses-free photos;
impostor pairs: against every other person's. For each lens kind: mean genuine distance, the
judge's distance from the clean photo, accuracy@0.6, TAR@FAR=1%, P(glasses) >= 0.5, PSNR of the
result against the clean photo inside the synthesized glasses, and per probe paired differences
(mean ± s.e.): the cost (glasses on − clean) and what removal wins back (glasses on − after
removal). The model was trained on glasses like these, so it should win back more here than on
real ones: if it does not win back here either, the loss is the generator's, not the gap between
synthetic and real glasses.

    python benchmarks/fv_synthetic_glasses.py FV_DIR --out synthetic_fv.json [--checkpoint C] [--count N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from byeglasses.errors import ByeGlassesError
from byeglasses.evaluation.verification import (_read, gallery_cache, judge_face, list_photos, plain_descriptors, read_pairs,
                                                verification_metrics)
from byeglasses.files import atomic_write

KINDS = ("clear", "tinted", "sunglasses")
CONDITIONS = ("clean", "glasses on", "after removal", "mask blend", "hidden restored", "see-through restored",
              "clean redrawn")
STRONG = 12  # levels: a pixel the glasses changed by more than this (any channel) counts as frame, shadow or glare


def draw(face: np.ndarray, landmarks: np.ndarray, key: str, dist, kind: str):
    """Glasses of lens kind `kind` drawn on `face`, from a seed derived from `key`. The distribution
    turns half of its clear aviators into sunglasses, so draws are repeated (seeds key/1, key/2, ...)
    until the lens is the one asked for."""
    from byeglasses.synth.render import synthesize

    for attempt in range(64):
        params = dist.sample(np.random.default_rng(zlib.crc32(f"{key}/{attempt}".encode())))
        if params.lens == kind:
            return synthesize(face, landmarks, None, params=params)
    raise ByeGlassesError(f"no {kind} lens in 64 draws for {key}")


def redrawn(remover, clean: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The generator's output for the clean photo's largest face, pasted where `inside` (H, W) bool."""
    from byeglasses.pipeline.geometry import unalign

    prepared = remover.prepare(clean)
    if not prepared.faces:
        return clean
    alignment = prepared.alignments[0]
    y_hat, _ = remover.run_generator(prepared.crops[:1])
    x0, y0, x1, y1 = box = alignment.bounds(clean.shape)
    reach = unalign(np.ones(y_hat.shape[1:3], np.float32), alignment, box) > 0.99
    patch = np.clip(np.rint(unalign(y_hat[0], alignment, box)), 0, 255).astype(np.uint8)
    out = clean.copy()
    region = out[y0:y1, x0:x1]
    take = reach & inside[y0:y1, x0:x1]
    region[take] = patch[take]
    return out


def paired(values: list, a: str, b: str) -> dict:
    d = np.array([v[a] - v[b] for v in values])
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None,
            "lower": int((d < 0).sum()), "higher": int((d > 0).sum())}


def psnr_inside(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    inside = mask >= 0.5
    if not inside.any():
        return float("nan")
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2)[inside].mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def compact(row: dict) -> dict:
    """A row as stored: no descriptors, figures to 4 decimals."""
    out = {}
    for k, v in row.items():
        if k == "descriptor":
            continue
        out[k] = {n: round(x, 4) for n, x in v.items()} if k in ("genuine", "glasses", "psnr", "to_clean") else v
    return out


def summarise(rows: list, gallery: np.ndarray, gallery_person: np.ndarray) -> dict:
    out = {"probes": len(rows)}
    for name in CONDITIONS:
        genuine, impostor = [], []
        for r in rows:
            d = np.linalg.norm(gallery - np.asarray(r["descriptor"][name]), axis=1)
            same = gallery_person == r["person"]
            same[r["probe_index"]] = False  # the probe's own clean photo is not a pair
            other = gallery_person != r["person"]
            genuine.append(d[same])
            impostor.append(d[other])
        m = verification_metrics(np.concatenate(genuine), np.concatenate(impostor))
        m["probe_mean_genuine"] = float(np.mean([r["genuine"][name] for r in rows]))
        m["still_glasses"] = float(np.mean([r["glasses"][name] >= 0.5 for r in rows]))
        m["to_clean"] = float(np.mean([r["to_clean"][name] for r in rows]))
        finite = [r["psnr"][name] for r in rows if np.isfinite(r["psnr"].get(name, np.nan))]
        m["psnr_glasses"] = float(np.mean(finite)) if finite else None
        out[name] = m
    out["cost"] = paired([r["genuine"] for r in rows], "glasses on", "clean")
    out["won_back"] = paired([r["genuine"] for r in rows], "glasses on", "after removal")
    out["won_back_mask"] = paired([r["genuine"] for r in rows], "glasses on", "mask blend")
    out["lens_vs_mask"] = paired([r["genuine"] for r in rows], "after removal", "mask blend")
    out["hidden_restored"] = paired([r["genuine"] for r in rows], "glasses on", "hidden restored")
    out["left_alone"] = int(sum(not r["changed"] for r in rows))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="fv-dev style folder: plain/ and pairs.json (glasses/ is not used)")
    ap.add_argument("--out", required=True, help="JSON to write (must not exist)")
    ap.add_argument("--checkpoint", help="generator checkpoint (default: the shipped model)")
    ap.add_argument("--count", type=int, help="only the first N people (sorted by id; 2 or more)")
    ap.add_argument("--seed", type=int, default=2020, help="mixed into each person's glasses seed")
    ap.add_argument("--settings", default="", metavar="FIELD=VALUE,...",
                    help="removal settings for both removers (as in eval-verification's --variant), e.g. "
                         "invented_gain=1.1; runs with the same --seed are paired person by person")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    from byeglasses.pipeline.remover import GlassesRemover, RemovalSettings
    from byeglasses.synth.glasses import GlassesDistribution

    folder, out_path = Path(args.folder), Path(args.out)
    for sub in ("plain", "pairs.json"):
        if not (folder / sub).exists():
            raise ByeGlassesError(f"{folder}: has no {sub} (expected plain/ and pairs.json)")
    if out_path.exists():
        raise ByeGlassesError(f"--out {out_path}: exists; choose a new name")
    if args.count is not None and args.count < 2:
        raise ByeGlassesError(f"--count must be 2 or more, got {args.count}")
    from byeglasses.cli.eval_verification import parse_variant
    from byeglasses.errors import SettingError

    try:
        _, settings = parse_variant(f"settings:{args.settings}", RemovalSettings(checkpoint=args.checkpoint))
    except SettingError as e:
        raise ByeGlassesError(f"--settings {args.settings!r}: {str(e).split(': ', 2)[-1]}") from None
    pairs = read_pairs(folder / "pairs.json")
    plain, plain_person, _, missing = list_photos(folder / "glasses", folder / "plain", pairs)
    skipped = {k: v for k, v in missing.items() if k.startswith("plain/")}  # glasses/ is not used
    t0 = time.perf_counter()
    descs = plain_descriptors(plain, gallery_cache(folder / "plain"))
    keep = [i for i, p in enumerate(plain) if descs[p] is not None]
    gallery = np.stack([descs[plain[i]] for i in keep])
    gallery_person = np.array([plain_person[i] for i in keep])
    gallery_paths = [plain[i] for i in keep]
    people = sorted({p for p in gallery_person if (gallery_person == p).sum() >= 3})
    people = people[:args.count] if args.count else people
    lens_only = {k: GlassesDistribution(lens_weights={k: 1.0}) for k in KINDS}
    removers = {"after removal": GlassesRemover(settings=settings),
                "mask blend": GlassesRemover(settings=replace(settings, blend="mask"))}
    judge = removers["after removal"]
    rows = {k: [] for k in KINDS}
    for person in tqdm(people, desc="people", unit="person"):
        index = int(np.flatnonzero(gallery_person == person)[0])  # the first glasses-free photo is the probe
        path = gallery_paths[index]
        rest = np.flatnonzero(gallery_person == person)[1:]
        clean = _read(path)
        judged = judge_face(clean)
        if judged is None:
            skipped[path.name] = "no face found"
            continue
        for kind in KINDS:
            sample = draw(clean, judged.landmarks, f"{args.seed}/{person}/{kind}", lens_only[kind], kind)
            images = {"clean": clean, "glasses on": sample.x}
            changed = False
            for name, remover in removers.items():
                result = remover.remove(sample.x)
                images[name] = result.image
                changed = changed or (name == "after removal" and result.changed)
            inside = sample.glasses_mask >= 0.5
            strong = inside & (np.abs(sample.x.astype(np.int16) - clean.astype(np.int16)).max(axis=2) > STRONG)
            images["hidden restored"] = np.where(strong[..., None], clean, images["after removal"])
            images["see-through restored"] = np.where((inside & ~strong)[..., None], clean, images["after removal"])
            images["clean redrawn"] = redrawn(judge, clean, inside)
            row = {"person": person, "photo": path.name, "probe_index": index, "changed": changed,
                   "params": {"lens": sample.params.lens, "frame": sample.params.frame, "shape": sample.params.shape},
                   "strong_share": float(strong.sum() / max(int(inside.sum()), 1)),
                   "genuine": {}, "glasses": {}, "psnr": {}, "to_clean": {}, "descriptor": {}}
            for name, image in images.items():
                j = judged if name == "clean" else judge_face(image, judged.box)
                row["descriptor"][name] = j.descriptor.tolist()
                row["genuine"][name] = float(np.linalg.norm(gallery[rest] - j.descriptor, axis=1).mean())
                row["glasses"][name] = float(judge.judge(image, j.landmarks))
                row["to_clean"][name] = float(np.linalg.norm(j.descriptor - judged.descriptor))
                if name != "clean":
                    row["psnr"][name] = psnr_inside(image, clean, sample.glasses_mask)
            rows[kind].append(row)
    if len(rows[KINDS[0]]) < 2:
        raise ByeGlassesError(f"{folder}: {len(rows[KINDS[0]])} people scored, 2 or more needed "
                              f"({len(people)} with 3 or more glasses-free photos, {len(skipped)} skipped)")
    report = {"conditions": list(CONDITIONS), "checkpoint": args.checkpoint, "settings": args.settings, "seed": args.seed,
              "people": len(rows[KINDS[0]]), "skipped": skipped, "seconds": time.perf_counter() - t0,
              "by_lens": {k: summarise(v, gallery, gallery_person) for k, v in rows.items()},
              "rows": {k: [compact(r) for r in v] for k, v in rows.items()}}
    atomic_write(out_path, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)))
    print(table(report))
    print(f"synthetic glasses on {report['people']} people's own glasses-free photos ({len(skipped)} skipped) in "
          f"{report['seconds']:.0f} s: " + "; ".join(
              f"{k}: cost {v['cost']['mean']:+.4f}, removal wins back {v['won_back']['mean']:+.4f}"
              for k, v in report["by_lens"].items()))
    return 0


def table(report: dict) -> str:
    def diff(d):
        return "—" if d["se"] is None else f"{d['mean']:+.4f} ± {d['se']:.4f}"
    lines = ["| lens (people) | condition | genuine ↓ | distance to clean ↓ | accuracy@0.6 | TAR@FAR=1% | still glasses | "
             "PSNR in glasses |", "|---|---|---|---|---|---|---|---|"]
    for kind, s in report["by_lens"].items():
        for name in CONDITIONS:
            m = s[name]
            psnr = "—" if m["psnr_glasses"] is None else f"{m['psnr_glasses']:.2f}"
            lines.append(f"| {kind} ({s['probes']}) | {name} | {m['probe_mean_genuine']:.3f} | {m['to_clean']:.3f} | "
                         f"{m['accuracy']:.3f} | "
                         f"{m['tar_at_far1']:.3f} | {m['still_glasses']:.1%} | {psnr} |")
    lines += ["", "| lens | cost (on − clean) | won back by removal (on − removed) | by the mask blend | "
              "lens blend − mask blend | won back with what they hid restored | left alone |",
              "|---|---|---|---|---|---|---|"]
    for kind, s in report["by_lens"].items():
        lines.append(f"| {kind} | {diff(s['cost'])} | {diff(s['won_back'])} | {diff(s['won_back_mask'])} | "
                     f"{diff(s['lens_vs_mask'])} | {diff(s['hidden_restored'])} | {s['left_alone']} of {s['probes']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "fv_synthetic_glasses.py"))
