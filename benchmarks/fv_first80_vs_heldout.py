"""Does a comparison of two models on the first 80 fv-dev probes predict the same comparison on the
232 held-out probes? For every pair of methods scored in both files of a `*first80.json` /
`*heldout.json` pair in docs/results (methods matched by checkpoint and settings), three ways of
saying which leaves more glasses on: the difference in the count of outputs the classifier still
calls glasses (P >= 0.5), the paired mean difference of P(glasses) as a logit
(`verification.paired_differences`), and the paired mean difference of frames left; and, for
identity, the paired mean difference of the genuine distance. Prints each comparison and how often
the first 80 got the held-out sign right.

    python benchmarks/fv_first80_vs_heldout.py [--results docs/results]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from byeglasses.evaluation.verification import glasses_logit_of


def method_key(result: dict, name: str):
    """What a method ran: its checkpoint and the settings it changed (None for glasses on)."""
    base = (result.get("settings") or {}).get("checkpoint") or "default"
    if name == "after removal":
        return base
    changed = dict((result.get("variants") or {}).get(name, {}))
    checkpoint = changed.pop("checkpoint", None) or base
    return (checkpoint, tuple(sorted(changed.items()))) if changed else checkpoint


def compare(result: dict, a: str, b: str):
    """a minus b over the probes both have: (count difference, logit mean, its s.e., frames mean,
    genuine distance mean, its s.e.)."""
    glasses, frames, genuine = result["per_probe_glasses"], result.get("per_probe_frames") or {}, result["per_probe"]
    probes = [p for p in glasses if glasses[p].get(a) is not None and glasses[p].get(b) is not None]
    pa, pb = (np.array([glasses[p][m] for p in probes]) for m in (a, b))
    d = glasses_logit_of(pa) - glasses_logit_of(pb)
    f = np.array([frames[p][a] - frames[p][b] for p in probes
                  if p in frames and frames[p].get(a) is not None and frames[p].get(b) is not None])
    g = np.array([genuine[p][a] - genuine[p][b] for p in probes])
    g = g[np.isfinite(g)]
    return (int((pa >= 0.5).sum() - (pb >= 0.5).sum()), float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))),
            float(f.mean()) if len(f) else float("nan"), float(g.mean()), float(g.std(ddof=1) / np.sqrt(len(g))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(Path(__file__).resolve().parents[1] / "docs" / "results"))
    args = p.parse_args()
    rows = []
    for first in sorted(Path(args.results).glob("fv_*first80.json")):
        held = first.with_name(first.name.replace("first80", "heldout"))
        if not held.is_file():
            continue
        a, b = json.loads(first.read_text()), json.loads(held.read_text())
        if not a.get("per_probe_glasses") or not b.get("per_probe_glasses"):
            continue
        in_a = {method_key(a, n): n for n in a["methods"] if n != "glasses on"}
        in_b = {method_key(b, n): n for n in b["methods"] if n != "glasses on"}
        common = [k for k in in_a if k in in_b]
        for k1, k2 in itertools.combinations(common, 2):
            rows.append((first.name[3:-13], in_a[k1], in_a[k2], compare(a, in_a[k1], in_a[k2]),
                         compare(b, in_b[k1], in_b[k2])))
    agree = {"count": [0, 0], "logit": [0, 0], "logit beyond 2 s.e.": [0, 0], "frames": [0, 0],
             "genuine": [0, 0], "genuine beyond 2 s.e.": [0, 0]}

    def tally(key, x, y):
        agree[key][0] += int(np.sign(x) == np.sign(y))
        agree[key][1] += 1

    print("| results | a | b | count a−b: first 80 / held out | logit a−b | frames a−b | genuine a−b |")
    print("|---|---|---|---|---|---|---|")
    for tag, m1, m2, f80, ho in rows:
        print(f"| {tag} | {m1} | {m2} | {f80[0]:+d} / {ho[0]:+d} | {f80[1]:+.2f} ± {f80[2]:.2f} / "
              f"{ho[1]:+.2f} ± {ho[2]:.2f} | {f80[3]:+.3f} / {ho[3]:+.3f} | "
              f"{f80[4]:+.4f} ± {f80[5]:.4f} / {ho[4]:+.4f} ± {ho[5]:.4f} |")
        if f80[0] and ho[0]:
            tally("count", f80[0], ho[0])
        tally("logit", f80[1], ho[1])
        if abs(f80[1]) > 2 * f80[2]:
            tally("logit beyond 2 s.e.", f80[1], ho[1])
        if np.isfinite(f80[3]) and np.isfinite(ho[3]):
            tally("frames", f80[3], ho[3])
        tally("genuine", f80[4], ho[4])
        if abs(f80[4]) > 2 * f80[5]:
            tally("genuine beyond 2 s.e.", f80[4], ho[4])
    print(f"{len(rows)} comparisons; first 80 and held out agree in sign: "
          + "; ".join(f"{k} {n}/{m}" for k, (n, m) in agree.items())
          + " (count: where neither difference is 0)")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "fv_first80_vs_heldout.py"))
