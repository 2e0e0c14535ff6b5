import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

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
