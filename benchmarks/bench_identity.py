"""CPU milliseconds per face: the PyTorch port of dlib's face-recognition ResNet against dlib's own
compute_face_descriptor on the same 150x150 chips, measured in the same run.

    python benchmarks/bench_identity.py [--threads N] [--repeats N]
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from timing import best_time  # noqa: E402

from byeglasses.identity import DlibIdentity  # noqa: E402
from byeglasses.identity.dlib_resnet import default_model_path, load_dlib_facenet  # noqa: E402


def best_ms(fn, repeats: int, faces: int) -> float:
    return 1000 * best_time(fn, repeats) / faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both (torch and dlib's BLAS)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs; the best is reported")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import dlib
    from skimage.data import astronaut

    from byeglasses.pipeline.detect import detect_faces

    img = astronaut()
    face = detect_faces(img)[0]
    shape = dlib.full_object_detection(dlib.rectangle(*face.box),
                                       dlib.points([dlib.point(int(x), int(y)) for x, y in face.landmarks]))
    chip = dlib.get_face_chip(img, shape, 150, 0.25)
    recognizer = dlib.face_recognition_model_v1(default_model_path())
    net = load_dlib_facenet()
    ident = DlibIdentity(256, net).eval()
    t0 = time.perf_counter()
    load_dlib_facenet()
    print(f"parse + build the port from the .dat file: {1000 * (time.perf_counter() - t0):.0f} ms")
    print(f"CPU, {args.threads} thread(s), best of {args.repeats}")
    for batch in (1, 16):
        chips = [chip] * batch
        x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
        crops = torch.rand(batch, 3, 256, 256) * 2 - 1
        with torch.inference_mode():
            port = best_ms(lambda: net(x), args.repeats, batch)
            warped = best_ms(lambda: ident(crops), args.repeats, batch)
        ref = best_ms(lambda: recognizer.compute_face_descriptor(chips) if batch > 1
                      else recognizer.compute_face_descriptor(chip), args.repeats, batch)
        print(f"batch {batch:2d}: port {port:6.1f} ms/face, port + template warp from 256 px crops "
              f"{warped:6.1f} ms/face, dlib {ref:6.1f} ms/face; port/dlib = {port / ref:.2f}")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "bench_identity.py"))
