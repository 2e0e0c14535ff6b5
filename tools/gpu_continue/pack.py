"""Pack what a continued training run on a lent GPU machine needs into one small folder (default
`.gpu/`, git-ignored), since only about 64 MiB may travel there with the checkout:

- every Nth face of FACES (default every 6th of `train/`: 2,630 faces, 31 MiB) and their landmarks
  (the 68-point detector does not travel; the cache recognises the copied files by their bytes);
- the discriminators of CHECKPOINT in fp16 (the generator is the packaged default, already in the
  checkout);
- dlib's face-recognition ResNet for the identity loss, as an fp16 torch module (11 MiB; the
  `face_recognition_models` wheel is too large to carry);
- optionally, folders of glasses images for `train --glasses-images` (e.g. what `byeglasses
  cut-glasses` wrote), each as DST/<folder name>.

    python tools/gpu_continue/pack.py FACES CHECKPOINT [--every 6] [--offset 0] [--dst .gpu] [--real DIR]
                                      [--images DIR ...]

`--offset K` starts at the Kth usable face: `--every 8 --offset 1` packs another eighth of the faces
than `--every 8`, so that successive GPU sessions see different faces.
"""
import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from byeglasses.identity.dlib_resnet import load_dlib_facenet  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from byeglasses.synth.cache import LandmarkCache, landmark_cache  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", help="folder of glasses-free faces, e.g. ../shared/data/celebahq256/train")
    ap.add_argument("checkpoint", help="a run's checkpoint.safetensors, or a NAME_discs.safetensors that "
                                       "run.sh brought back: its discriminators are packed")
    ap.add_argument("--every", type=int, default=6, help="pack every Nth usable face (default: 6)")
    ap.add_argument("--offset", type=int, default=0,
                    help="start at this usable face (0 to EVERY-1; default 0): another share of the faces")
    ap.add_argument("--dst", default=".gpu", help="new folder to pack into (default: .gpu)")
    ap.add_argument("--real", help="also pack this folder of real glasses photos as DST/real "
                                   "(e.g. real-glasses-train/, 1.3 MiB; never fv-dev/)")
    ap.add_argument("--images", nargs="+", default=[], metavar="DIR",
                    help="also pack these folders of glasses images (RGBA PNGs, e.g. cut-glasses output) "
                         "as DST/<folder name>, for train --glasses-images")
    args = ap.parse_args()
    src, dst = Path(args.faces), Path(args.dst)
    if args.every < 1:
        raise SystemExit(f"--every {args.every}: must be 1 or more")
    if not 0 <= args.offset < args.every:
        raise SystemExit(f"--offset {args.offset}: must be from 0 to {args.every - 1} (--every {args.every})")
    for folder in (args.faces, args.real, *args.images):
        if folder and "fv-dev" in Path(folder).resolve().parts:
            raise SystemExit(f"{folder}: fv-dev/ is the face-verification benchmark; never train on it")
    reserved = {"faces", "real"}
    for folder in args.images:
        name = Path(folder).resolve().name
        if not Path(folder).is_dir():
            raise SystemExit(f"{folder}: not a folder of glasses images")
        if name in reserved:
            raise SystemExit(f"{folder}: would be packed as {args.dst}/{name}, which the pack already uses; "
                             "rename the folder")
        reserved.add(name)
    if dst.exists():
        raise SystemExit(f"{dst}: already exists; remove it or name another --dst")
    try:
        tensors = load_file(args.checkpoint)
    except Exception as e:  # noqa: BLE001 - whatever safetensors says is this file's problem
        raise SystemExit(f"{args.checkpoint}: not a readable safetensors file ({e})")
    discs = {k: v.half().contiguous() for k, v in tensors.items() if k.startswith(("disc_global.", "disc_local."))}
    if not discs:
        raise SystemExit(f"{args.checkpoint}: holds no discriminators (use a run's checkpoint.safetensors, "
                         "or the NAME_discs.safetensors a GPU run brought back)")
    full = landmark_cache(src)
    names = sorted(full.landmarks)[args.offset::args.every]
    (dst / "faces").mkdir(parents=True)
    sub = LandmarkCache(str(dst / "faces"), str(dst / "landmarks.npz"))
    for n in names:
        shutil.copy2(src / n, dst / "faces" / n)
        st = (dst / "faces" / n).stat()
        sub.landmarks[n] = full.landmarks[n]
        sub.stats[n] = (int(st.st_size), int(st.st_mtime_ns))
        sub.digests[n] = full.digests[n]  # the copy on the GPU machine is recognised by its bytes
    sub.save()
    from safetensors.torch import save_file

    save_file(discs, str(dst / "discs.safetensors"))
    torch.save(load_dlib_facenet().half(), dst / "dlibnet.pt")
    if args.real:
        from byeglasses.files import list_images

        (dst / "real").mkdir()
        for n in list_images(args.real):
            shutil.copy2(Path(args.real) / n, dst / "real" / n)
    for folder in args.images:
        shutil.copytree(folder, dst / Path(folder).resolve().name)
    mib = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file()) / 2 ** 20
    print(f"packed {len(names)} faces, the discriminators and the identity network into {dst}: {mib:.1f} MiB")


if __name__ == "__main__":
    from byeglasses.errors import run_script

    sys.exit(run_script(main, "pack.py"))
