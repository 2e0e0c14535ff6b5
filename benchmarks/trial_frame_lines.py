r"""A trial that was not kept (docs/verification.md, "Still glasses, by eye"): thin frame lines painted over
before the generator runs a second time, and never kept from the photo by the lens blend.

Each face wearing glasses goes through the generator twice. The first run gives the glasses mask m.
Thin dark or bright lines of the crop (a grey black-hat and top-hat 7 px across at 256 px, above
12 levels, in strokes of at least 20 px and 12 px long) within 4 px of m >= 0.3, away from the
eyes (their landmarks grown by --eye-pad of their width), are painted over (OpenCV Telea), and
the generator runs again on that crop; the lens blend then takes the generator's pixels on those
lines and its mask is the larger of the two runs'. It takes thin frames off far more often, and
costs identity and eye detail (figures in the README).

    python benchmarks/trial_frame_lines.py remove PHOTO... -o OUT [--eye-pad 0.15]
    python benchmarks/trial_frame_lines.py verify ../shared/data/celebahq256/fv-dev --out trial.json \
        --lens-labels benchmarks/fv_dev_lens_labels.json [--eye-pad 0.15]
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import byeglasses.pipeline.geometry as geometry  # noqa: E402
from byeglasses.errors import ByeGlassesError  # noqa: E402
from byeglasses.files import atomic_write  # noqa: E402
import byeglasses.pipeline.remover as remover  # noqa: E402


class TrialRemover(remover.GlassesRemover):
    """The default remover with the trial on the first pass (later passes as usual)."""

    def __init__(self, eye_pad: float = 0.15, **kwargs):
        super().__init__(**kwargs)
        self.eye_pad = eye_pad
        self._lines = {}

    def remove(self, image):
        prepared = self.prepare(image)
        probabilities, generated = self.classify_and_generate(prepared.crops, prepared.timings)
        self._lines = {}
        for i, (y_hat, m) in list(generated.items()):
            crop, al, face = prepared.crops[i], prepared.alignments[i], prepared.faces[i]
            own = al.to_crop(face.landmarks[36:48])
            lines = geometry.frame_strokes(crop, m, [own[:6], own[6:]], pad=self.eye_pad)  # as the lens blend's
            if lines.any():
                y2, m2 = self.run_generator(cv2.inpaint(np.ascontiguousarray(crop), lines, 3, cv2.INPAINT_TELEA)[None])
                generated[i] = (y2[0], np.maximum(m, m2[0]))
                self._lines[crop.__array_interface__["data"][0]] = cv2.GaussianBlur(lines.astype(np.float32), (0, 0), 1.0).clip(0, 1)
        original = remover.lens_keep

        def lens_keep(crop, *args, **kwargs):
            keep, gain = original(crop, *args, **kwargs)
            lines = self._lines.get(crop.__array_interface__["data"][0])  # the crop's own memory
            return (keep if lines is None else keep * (1.0 - lines)), gain

        remover.lens_keep = lens_keep
        try:
            result = self.finish(prepared, probabilities, generated)
        finally:
            remover.lens_keep = original
        return self.more_passes(result, prepared.faces)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("remove")
    r.add_argument("photos", nargs="+")
    r.add_argument("-o", "--outdir", required=True)
    v = sub.add_parser("verify")
    v.add_argument("fv_dev", help="the fv-dev folder (glasses/, plain/, pairs.json)")
    v.add_argument("--out", required=True)
    v.add_argument("--lens-labels")
    v.add_argument("--count", type=int, help="only the first N glasses photos")
    for p in (r, v):
        p.add_argument("--eye-pad", type=float, default=0.15, help="eyes left alone: grown by this of their width")
    args = ap.parse_args(argv)
    trial = TrialRemover(eye_pad=args.eye_pad)
    if args.command == "remove":
        out = Path(args.outdir)
        out.mkdir(parents=True, exist_ok=True)
        written = 0
        for photo in args.photos:
            if out.resolve() == Path(photo).absolute().parent.resolve():  # the folder, not a link's target
                print(f"skipped {photo}: its output would overwrite it", file=sys.stderr)
                continue
            try:
                result = trial.remove(photo)
            except ByeGlassesError as e:
                print(f"skipped {photo}: {e}", file=sys.stderr)
                continue
            ext = Path(photo).suffix.lower() if Path(photo).suffix.lower() in (".png", ".jpg", ".jpeg") else ".png"
            data = cv2.imencode(ext, cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
            atomic_write(out / (Path(photo).stem + ext), lambda tmp, data=data: Path(tmp).write_bytes(data.tobytes()))
            written += 1
        print(f"{written} of {len(args.photos)} photos -> {out}")
        return 0
    from byeglasses.evaluation.verification import markdown_table, read_lens_labels, run_verification
    from byeglasses.model.classifier import GlassesJudge

    d = Path(args.fv_dev)
    res = run_verification(d / "glasses", d / "plain", d / "pairs.json",
                           {f"frame-line trial (eye pad {args.eye_pad:g})": lambda rgb: trial.remove(rgb).image},
                           glasses_judge=GlassesJudge(), limit=args.count,
                           lens_labels=read_lens_labels(args.lens_labels) if args.lens_labels else None)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(markdown_table(res))
    return 0


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "trial_frame_lines.py"))
