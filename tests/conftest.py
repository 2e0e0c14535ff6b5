import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or min(2, os.cpu_count() or 1))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celebahq256"


@pytest.fixture(scope="session")
def celeba():
    """The shared CelebA-HQ folder; tests that need it skip where it is absent."""
    if not (DATA / "test").is_dir():
        pytest.skip(f"needs the CelebA-HQ data at {DATA} (absent on this machine)")
    return DATA


@pytest.fixture(scope="session")
def astronaut():
    from skimage.data import astronaut as load

    return load()


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Landmark caches go to a temporary folder, never the user's ~/.cache."""
    old = os.environ.get("BYEGLASSES_CACHE")
    os.environ["BYEGLASSES_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("BYEGLASSES_CACHE", None)
    else:
        os.environ["BYEGLASSES_CACHE"] = old


@pytest.fixture(scope="session")
def astronaut_faces(tmp_path_factory, astronaut):
    """A folder of 6 glasses-free 256 px face crops made from the astronaut photo (shifted,
    scaled and mirrored), framed roughly like CelebA-HQ; usable where the shared data is absent."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("astronaut_faces")
    cx, cy, side = 222, 140, 210  # face centre and crop side, from dlib's box (179, 83, 266, 170)
    for i, (dx, dy, k, flip) in enumerate([(0, 0, 1.0, False), (6, -4, 0.95, False), (-5, 3, 1.06, False),
                                           (0, 0, 1.0, True), (4, 5, 1.03, True), (-6, -2, 0.97, True)]):
        s = side * k
        box = (cx + dx - s / 2, cy + dy - s / 2, cx + dx + s / 2, cy + dy + s / 2)
        crop = Image.fromarray(astronaut).crop(tuple(round(v) for v in box)).resize((256, 256), Image.LANCZOS)
        if flip:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A randomly initialised `tiny`-preset generator saved as a checkpoint."""
    from byeglasses.model.weights import save_checkpoint
    from byeglasses.model.config import get_preset
    from byeglasses.model.networks import Generator

    cfg = get_preset("tiny")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, cfg, Generator(cfg.model))
    return path

