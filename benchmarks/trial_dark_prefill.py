r"""Two trials that were not kept (docs/verification.md, "Changing what the generator sees behind
dark lenses, tried"): the pipeline runs once to find the glasses (its glasses mask >= 0.5, grown
3 px), the glasses region of the photo is changed, and the pipeline (defaults) runs again on that:

- `telea`: the region inpainted (OpenCV Telea), so the generator sees no lens to leave a ghost of;
- `darken`: the region multiplied by 0.25 (feathered), so reflections in mirrored or aviator lenses
  become a plain dark lens like the synthesized sunglasses the model learned from.

Scored against the defaults in one run of the verification benchmark:

    python benchmarks/trial_dark_prefill.py ../shared/data/celebahq256/fv-dev telea --count 80 \
        --out fv_prefill_first80.json --lens-labels benchmarks/fv_dev_lens_labels.json
"""

import argparse
import sys

import cv2
import numpy as np

DARKEN = 0.25  # what the `darken` trial leaves of the glasses region's brightness


def changed_region(rgb: np.ndarray, glasses_mask: np.ndarray, mode: str) -> np.ndarray:
    """`rgb` with its glasses region (glasses_mask >= 0.5, grown 3 px) inpainted or darkened."""
    m = cv2.dilate((glasses_mask >= 0.5).astype(np.uint8), np.ones((7, 7), np.uint8))
    if mode == "telea":
        return cv2.inpaint(rgb, m, 5, cv2.INPAINT_TELEA)
    w = cv2.GaussianBlur(m.astype(np.float32), (0, 0), 2.0)[..., None]
    return np.clip(rgb * (1 - (1 - DARKEN) * w), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    from byeglasses.evaluation.verification import add_trial_arguments, trial_main
    from byeglasses.pipeline.remover import GlassesRemover

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_trial_arguments(ap)
    ap.add_argument("mode", choices=("telea", "darken"))
    args = ap.parse_args(argv)
    remover = GlassesRemover()

    def trial(rgb):
        first = remover.remove(rgb)
        if not (first.glasses_mask >= 0.5).any():
            return first.image
        return remover.remove(changed_region(rgb, first.glasses_mask, args.mode)).image

    return trial_main(args, remover, {"after removal": lambda rgb: remover.remove(rgb).image, args.mode: trial})


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "trial_dark_prefill.py"))
