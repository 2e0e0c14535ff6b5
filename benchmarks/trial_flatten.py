r"""A trial that was not kept (docs/verification.md, "Mirrored sunglasses painted plain before the
generator, tried"): behind sunglasses the generator must invent the eyes, and where the lenses
reflect a scene it leaves a ghost of the reflection. Here the pipeline runs once; on each face
whose eyes it invented (`eyes_kept` below EYES_INVENTED) the lens interior (the glasses mask >= 0.5
with the lenses its rims enclose filled in, shrunk by ERODE px in the crop, so the frame stays) is
painted over in one dark colour (the lens's QUANTILE-th percentile, per channel), like the plain
sunglasses the model learned to take off, and the pipeline runs again on that photo, with the same
detected faces. Scored against the defaults in one run of the verification benchmark:

    python benchmarks/trial_flatten.py ../shared/data/celebahq256/fv-dev --count 80 \
        --out fv_flatten_first80.json --lens-labels benchmarks/fv_dev_lens_labels.json
"""

import argparse
import sys

import cv2
import numpy as np

ERODE = 3  # crop pixels the filled lens is shrunk by before it is painted: the frame stays
QUANTILE = 25  # the lens's colour: this percentile of its pixels, per channel


def flatten_lenses(prepared, first, erode: int = ERODE, quantile: float = QUANTILE):
    """The photo of `prepared` (`GlassesRemover.prepare`) with the lenses of each face whose eyes
    the first pass `first` (`remove_prepared(prepared)`) invented painted in one dark colour, from
    the glasses mask that pass predicted; None when no face qualifies."""
    from byeglasses.pipeline.geometry import align, fill_holes, unalign
    from byeglasses.pipeline.remover import EYES_INVENTED

    rgb = prepared.rgb
    todo = [i for i, f in enumerate(first.faces) if f.changed and f.eyes_kept < EYES_INVENTED]
    if not todo:
        return None
    out = rgb.astype(np.float32)
    kernel = np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)
    for i in todo:
        crop, al = prepared.crops[i], prepared.alignments[i]
        m = align(first.glasses_mask, al)  # the predicted glasses, back on this face's crop
        lens = cv2.erode(fill_holes((m >= 0.5).astype(np.uint8)), kernel)
        if lens.sum() < 50:
            continue
        colour = np.percentile(crop[lens > 0], quantile, axis=0)
        box = al.bounds(rgb.shape)
        x0, y0, x1, y1 = box
        w = unalign(cv2.GaussianBlur(lens.astype(np.float32), (0, 0), 1.0), al, box)[..., None]
        out[y0:y1, x0:x1] += w * (colour - out[y0:y1, x0:x1])
    return np.clip(out, 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    from byeglasses.evaluation.verification import add_trial_arguments, trial_main
    from byeglasses.pipeline.remover import GlassesRemover

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_trial_arguments(ap)
    args = ap.parse_args(argv)
    remover = GlassesRemover()
    last = {}

    def first_pass(rgb):  # both methods of a probe share one run of the defaults
        if last.get("rgb") is not rgb:
            prepared = remover.prepare(rgb)
            last.update(rgb=rgb, prepared=prepared, first=remover.remove_prepared(prepared))
        return last["prepared"], last["first"]

    def flattened(rgb):
        prepared, first = first_pass(rgb)
        painted = flatten_lenses(prepared, first)
        if painted is None:
            return first.image
        return remover.more_passes(remover.remove_faces(painted, prepared.faces), prepared.faces).image

    return trial_main(args, remover, {"after removal": lambda rgb: first_pass(rgb)[1].image, "flattened": flattened})


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "trial_flatten.py"))
