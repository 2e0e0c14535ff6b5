"""`byeglasses demo`: glasses drawn onto scikit-image's astronaut, then removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ByeGlassesError, SettingError
from ..files import check_output_file
from ..evaluation.metrics import psnr
from ..pipeline.imageio import write_rgb
from .remove import _add_model_options, settings_from_args


def configure_parser(p) -> None:
    p.add_argument("--out", default="byeglasses-demo.png",
                   help="side-by-side PNG to write: with drawn glasses | output | original")
    p.add_argument("--seed", type=int, default=0, help="which glasses the synthesizer draws")
    _add_model_options(p)


def run(args) -> int:
    from skimage import data

    from ..pipeline.remover import GlassesRemover
    from ..synth.render import synthesize

    check_output_file(args.out)
    if not 0 <= args.seed < 2 ** 32:
        raise SettingError("seed", f"must be from 0 to 2**32-1, got {args.seed}")
    remover = GlassesRemover(settings=settings_from_args(args))
    original = data.astronaut()
    faces = remover.detect(original)
    if not faces:
        raise ByeGlassesError("no face found in the astronaut image (is dlib installed correctly?)")
    sample = synthesize(original, faces[0].landmarks, args.seed)
    result = remover.remove(sample.x)
    mask = sample.glasses_mask > 0
    before, after = psnr(sample.x, original, mask), psnr(result.image, original, mask)
    out = Path(args.out)
    write_rgb(out, np.concatenate([sample.x, result.image, original], axis=1))
    face = result.faces[0] if result.faces else None
    state = (f"glasses p={face.glasses_probability:.2f}, {face.reason}") if face else "no face found after drawing"
    print(f"wrote {out} (with glasses | output | original); {state}")
    print(f"PSNR inside the drawn glasses ({int(mask.sum())} px) vs the original: "
          f"input {before:.2f} dB, output {after:.2f} dB ({after - before:+.2f} dB)")
    return 0
