"""What `--colour-match` (RemovalSettings.colour_match) does where the truth is known: on the
synthetic benchmark's pairs (glasses drawn on `test/` faces with its fixed seed, as `byeglasses
eval`), the generator's output ŷ against the same output with `match_colour` applied (its smooth
brightness and colour drift, measured around the predicted glasses, taken off): PSNR inside the
drawn glasses and over the whole crop, and dlib's identity cosine with the glasses-free face.
Per face differences come with their standard error.

    python benchmarks/colour_match_synth.py --faces ../shared/data/celebahq256/test --count 200
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from tqdm import tqdm

from byeglasses.evaluation.benchmark import BENCHMARK_SEED, _cosine, _scaled_landmarks
from byeglasses.evaluation.metrics import dlib_descriptor, psnr
from byeglasses.files import list_images
from byeglasses.model.weights import load_generator
from byeglasses.pipeline.geometry import match_colour
from byeglasses.pipeline.imageio import tensor_to_uint8
from byeglasses.synth.dataset import SynthFaceDataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", required=True, help="glasses-free faces (the benchmark's: test/)")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--checkpoint", default=None, help="generator; default: the shipped model")
    args = p.parse_args()
    generator, config = load_generator(args.checkpoint, "cpu")
    res = config.model.resolution
    faces = SynthFaceDataset(args.faces, res, seed=BENCHMARK_SEED, files=list_images(args.faces), progress=False)
    rows = []
    for i in tqdm(range(min(args.count, len(faces))), desc="faces", unit="face"):
        s = faces.sample(i, epoch=0)
        x = torch.from_numpy(s.x.transpose(2, 0, 1).copy()).float().div(127.5).sub(1)[None]
        with torch.inference_mode():
            y_hat, m_hat = generator(x)
        plain = tensor_to_uint8(y_hat[0])
        matched = np.clip(np.rint(match_colour(s.x, plain, m_hat[0, 0].numpy())), 0, 255).astype(np.uint8)
        lm = _scaled_landmarks(faces, i, res)
        truth = dlib_descriptor(s.y, lm)
        rows.append([psnr(plain, s.y, s.glasses_mask), psnr(matched, s.y, s.glasses_mask), psnr(plain, s.y),
                     psnr(matched, s.y), _cosine(dlib_descriptor(plain, lm), truth),
                     _cosine(dlib_descriptor(matched, lm), truth)])
    r = np.array(rows)
    n = len(r)

    def change(a, b):
        d = r[:, b] - r[:, a]
        return f"{r[:, a].mean():.3f} -> {r[:, b].mean():.3f} (per face {d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(n):.3f})"

    print(f"{n} faces, without -> with colour match: PSNR inside the glasses {change(0, 1)} dB; "
          f"whole crop {change(2, 3)} dB; identity cosine {change(4, 5)}")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "colour_match_synth.py"))
