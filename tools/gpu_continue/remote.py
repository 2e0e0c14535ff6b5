"""The device side of a continued training run (see run.sh); reads the folder pack.py wrote.

    python tools/gpu_continue/remote.py prep [PACK]            check the landmark cache against the copied
                                                               files (by their bytes), write PACK/init.safetensors
                                                               (packaged generator + packed discriminators),
                                                               decode the faces once
    python tools/gpu_continue/remote.py train PACK ARGS...     `byeglasses train ARGS` with dlib's
                                                               network read from PACK/dlibnet.pt
    python tools/gpu_continue/remote.py join GEN DISCS OUT     GEN's generator with the discriminators of
                                                               DISCS (e.g. NAME_discs.safetensors) -> OUT,
                                                               an --init checkpoint (fp32)
    python tools/gpu_continue/remote.py pack RUN DST [0]       generator fp16 -> DST.safetensors (its moving
                                                               average with train.ema, and the generator as
                                                               trained -> DST_raw.safetensors),
                                                               discriminators fp16 -> DST_discs.safetensors
                                                               (0: without them)
                                                               (each under the 16 MiB a file may bring back)
"""
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def join(generator: Path, discs: Path, out: Path) -> int:
    """Write `generator`'s tensors and metadata with the discriminators of `discs` (a NAME_discs file or
    any checkpoint that holds them; nothing else of it is taken) into `out`, for `train --init`;
    returns the number of tensors."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(generator), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(generator))
    # only the discriminators: a whole training checkpoint also holds a generator and optimizer state
    found = {k: v for k, v in load_file(str(discs)).items() if k.startswith(("disc_global.", "disc_local."))}
    if not found:
        raise SystemExit(f"{discs}: holds no discriminators")
    tensors.update(found)
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(out), metadata=metadata)
    return len(tensors)


def prep(pack: Path):
    from byeglasses.synth.cache import LandmarkCache
    from byeglasses.synth.dataset import SynthFaceDataset

    cache = LandmarkCache.load(pack / "faces", pack / "landmarks.npz")
    if not cache.landmarks:
        raise SystemExit(f"{pack}: no packed landmarks (run tools/gpu_continue/pack.py first)")
    # copying changed the files' mtimes, not their bytes: the dataset below re-keys the cache by digest
    n = join(ROOT / "byeglasses" / "weights" / "default.safetensors", pack / "discs.safetensors",
             pack / "init.safetensors")
    faces = SynthFaceDataset(pack / "faces", 256, cache_path=pack / "landmarks.npz", decoded_cache=True, uint8=True)
    print(f"prep: {len(faces)} faces; {pack / 'init.safetensors'} holds {n} tensors", flush=True)


def train(pack: Path, argv):
    import byeglasses.identity as identity

    net = torch.load(pack / "dlibnet.pt", weights_only=False).float().eval()
    identity.load_dlib_facenet = lambda path=None: net  # dlib's ResNet without the model wheel
    from byeglasses.cli import main

    sys.exit(main(["train"] + list(argv)))


def pack_run(run: Path, dst: str, discs: bool = True):
    from safetensors.torch import save_file

    from byeglasses.model.weights import load_generator, read_checkpoint, save_checkpoint

    written = [dst + ".safetensors"]
    generator, config = load_generator(run / "model.safetensors", device="cpu")
    save_checkpoint(dst + ".safetensors", config, generator, dtype=torch.float16)
    os.remove(dst + ".safetensors.json")  # the config is in the file's metadata too
    tensors, _ = read_checkpoint(run / "checkpoint.safetensors")
    if any(k.startswith("generator_ema.") for k in tensors):  # model.safetensors is the average
        raw, _ = load_generator(run / "checkpoint.safetensors", device="cpu")
        save_checkpoint(dst + "_raw.safetensors", config, raw, dtype=torch.float16)
        os.remove(dst + "_raw.safetensors.json")
        written.append(dst + "_raw.safetensors")
    if not discs:
        print(f"packed {run} -> {', '.join(written)}", flush=True)
        return
    save_file({k: v.half().contiguous() for k, v in tensors.items() if k.startswith(("disc_global.", "disc_local."))},
              dst + "_discs.safetensors")
    print(f"packed {run} -> {', '.join(written)}, {dst}_discs.safetensors", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("prep", "train", "pack", "join"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "prep":
        prep(Path(sys.argv[2] if len(sys.argv) > 2 else ".gpu"))
    elif sys.argv[1] == "join":
        if len(sys.argv) != 5:
            raise SystemExit(__doc__)
        print(f"wrote {sys.argv[4]}: {join(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))} tensors")
    elif sys.argv[1] == "train":
        train(Path(sys.argv[2]), sys.argv[3:])
    else:
        pack_run(Path(sys.argv[2]), sys.argv[3], discs=(sys.argv[4] != "0") if len(sys.argv) > 4 else True)
