"""The shipped weights give the outputs recorded before the package layout changed
(tests/data/default_model_reference.npz was written by the old code): renaming or moving a
module inside the generator would fail to load, and changing its computation would fail here."""

from pathlib import Path

import numpy as np
import torch

from byeglasses.model.weights import load_generator

REFERENCE = Path(__file__).parent / "data" / "default_model_reference.npz"


def test_shipped_weights_reproduce_the_reference_outputs():
    ref = np.load(REFERENCE)
    generator, config = load_generator(None, device="cpu")
    r = config.model.resolution
    x = torch.rand(2, 3, r, r, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        y, m = generator(x)
    for name, t in (("y", y), ("m", m)):
        small = torch.nn.functional.avg_pool2d(t.float(), 16).numpy()
        np.testing.assert_allclose(small, ref[f"{name}_small"], atol=1e-4, err_msg=name)
        t = t.double()
        np.testing.assert_allclose([t.mean().item(), t.std().item(), t.abs().max().item()],
                                   ref[f"{name}_summary"], atol=1e-4, err_msg=name)
