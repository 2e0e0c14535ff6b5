r"""A trial that was not kept (docs/verification.md, "Undoing the lenses' refraction, tried"):
prescription lenses shrink (minus lenses, short sight) or enlarge (plus lenses) what lies behind
them about the lens centre, and the lens blend keeps the photo's own pixels behind clear lenses, so
the eyes keep the lens's scale. After the default pipeline, each face's eye regions are rescaled
by a factor k about the eye centre (`rescale_eyes`: fully within INNER of the radius, blending to
no change at the radius, one eye-corner distance), for each k asked, and scored against the
defaults in one run of the verification benchmark:

    python benchmarks/trial_refraction.py ../shared/data/celebahq256/fv-dev --k 0.95,1.05,1.1 \
        --count 80 --out fv_refraction_first80.json --lens-labels benchmarks/fv_dev_lens_labels.json

If the lenses' scale cost the judge, some k > 1 would bring clear-lens probes closer to their
person and leave dark (plano) lenses alone. The last method, "glasses on, k", rescales the
unchanged photo, for comparison.
"""

import argparse
import sys

import cv2
import numpy as np

INNER = 0.55  # share of the radius rescaled fully; beyond it the rescaling fades out smoothly


def rescale_eyes(rgb: np.ndarray, landmarks: np.ndarray, k: float, inner: float = INNER) -> np.ndarray:
    """`rgb` with the region around each eye (68-point `landmarks`, photo pixels) rescaled by `k`
    about the eye's centre (mean of its six points) within one eye-corner distance R: a point at
    distance r < inner·R from the centre shows what was at r/k (k > 1 enlarges), and beyond R
    nothing moves; in between the factor blends smoothly (no fold for 0.8 <= k <= 1.25)."""
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs.copy(), ys.copy()
    for eye in (landmarks[36:42], landmarks[42:48]):
        c = eye.mean(0)
        radius = float(np.linalg.norm(eye[3] - eye[0]))
        dx, dy = xs - c[0], ys - c[1]
        r = np.sqrt(dx * dx + dy * dy) / max(radius, 1e-6)
        t = np.clip((1.0 - r) / (1.0 - inner), 0.0, 1.0)
        s = 1.0 + (1.0 / k - 1.0) * t * t * (3.0 - 2.0 * t)
        inside = r < 1.0
        map_x = np.where(inside, c[0] + dx * s, map_x)
        map_y = np.where(inside, c[1] + dy * s, map_y)
    return cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def factors(text: str):
    try:
        ks = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r}: not a comma-separated list of numbers") from None
    if not ks or not all(0.8 <= k <= 1.25 for k in ks):
        raise argparse.ArgumentTypeError(f"--k {text!r}: each factor must be within 0.8..1.25")
    return ks


def main(argv=None) -> int:
    from byeglasses.evaluation.verification import add_trial_arguments, trial_main
    from byeglasses.pipeline.remover import GlassesRemover

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_trial_arguments(ap)
    ap.add_argument("--k", type=factors, default=[0.95, 1.05, 1.1], help="factors, comma-separated (default 0.95,1.05,1.1)")
    args = ap.parse_args(argv)
    remover = GlassesRemover()
    last = {}

    def removed(rgb):  # each method of a probe starts from the same pipeline run
        if last.get("rgb") is not rgb:
            last.update(rgb=rgb, result=remover.remove(rgb))
        return last["result"]

    def trial(k, on=False):
        def method(rgb):
            result = removed(rgb)
            image = rgb if on else result.image
            for face in result.faces:
                image = rescale_eyes(image, face.landmarks, k)
            return image
        return method

    methods = {"after removal": lambda rgb: removed(rgb).image}
    methods.update({f"rescaled {k}": trial(k) for k in args.k})
    methods[f"glasses on, rescaled {args.k[-1]}"] = trial(args.k[-1], on=True)
    return trial_main(args, remover, methods)


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "trial_refraction.py"))
