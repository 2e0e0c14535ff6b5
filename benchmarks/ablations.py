r"""The paper's ablations on an equal CPU budget: train each preset for the same wall-clock minutes,
score each on the same fixed benchmark, print one markdown table.

    python benchmarks/ablations.py --faces ../shared/data/celebahq256/train \
        --bench ../shared/data/celebahq256/test --minutes 12 --count 200 --out runs/ablations

Runs already finished in --out are not retrained (delete a run's folder to redo it)."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from byeglasses.model.config import get_preset  # noqa: E402
from byeglasses.evaluation.benchmark import evaluate  # noqa: E402
from byeglasses.training.loop import train  # noqa: E402

PRESETS = ["cpu", "cpu-no-sd", "cpu-no-face-shape", "cpu-no-sharing", "cpu-no-local-d", "cpu-no-id"]
WHAT = {"cpu": "full model", "cpu-no-sd": "no SD (single-decoder U-Net)",
        "cpu-no-face-shape": "SD without the face-shape channel", "cpu-no-sharing": "SD without sharing into FD",
        "cpu-no-local-d": "no local discriminator", "cpu-no-id": "no ID loss"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", required=True, help="training faces")
    ap.add_argument("--bench", required=True, help="benchmark faces")
    ap.add_argument("--minutes", type=float, default=12.0, help="training budget of each preset")
    ap.add_argument("--count", type=int, default=200, help="benchmark faces scored per preset")
    ap.add_argument("--out", default="runs/ablations")
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for name in args.presets:
        run = out / name
        result_path = run / "eval.json"
        if not result_path.is_file():
            if not (run / "model.safetensors").is_file():
                cfg = get_preset(name)
                cfg.train.steps = 10 ** 7  # the budget, not the step count, ends the run
                cfg.train.num_workers = 0
                resume = (run / "checkpoint.safetensors").is_file()
                train(cfg, args.faces, str(run), resume=resume, max_minutes=args.minutes, progress=False)
            result = evaluate(str(run / "model.safetensors"), args.bench, count=args.count, progress=False)
            result_path.write_text(json.dumps(result, indent=2))
        result = json.loads(result_path.read_text())
        steps = [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()][-1]
        rows.append((name, steps, result["methods"]["model"], result["methods"].get("telea_gt_mask", {})))
        print(f"{name}: done", flush=True)
    print(f"\n{args.minutes:g} min of training each (1 CPU thread), {args.count} benchmark faces, seed 2020\n")
    print("| preset | ablation | steps | PSNR | PSNR glasses | SSIM glasses | ID sim. (dlib) | IoU glasses | IoU face |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, steps, m, _ in rows:
        cells = [f"{m['psnr']:.2f}", f"{m['psnr_glasses']:.2f}", f"{m['ssim_glasses']:.4f}",
                 f"{m.get('identity', float('nan')):.4f}", f"{m.get('iou_glasses', float('nan')):.4f}",
                 f"{m['iou_face']:.4f}" if "iou_face" in m else "—"]
        print(f"| `{name}` | {WHAT.get(name, name)} | {steps} | " + " | ".join(cells) + " |")
    t = rows[0][3]
    if t:
        print(f"| | Telea, ground-truth mask | — | {t['psnr']:.2f} | {t['psnr_glasses']:.2f} | "
              f"{t['ssim_glasses']:.4f} | {t.get('identity', float('nan')):.4f} | — | — |")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "ablations.py"))
