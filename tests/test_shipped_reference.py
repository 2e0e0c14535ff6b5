"""The shipped weights give the outputs recorded when they were shipped
(tests/data/default_model_reference.npz): renaming or moving a module inside the generator would
fail to load, and changing its computation would fail here. A new shipped model is recorded with
`python tests/test_shipped_reference.py --record`."""

from pathlib import Path

import numpy as np
import torch

from byeglasses.model.weights import load_generator

REFERENCE = Path(__file__).parent / "data" / "default_model_reference.npz"


def _outputs():
    generator, config = load_generator(None, device="cpu")
    r = config.model.resolution
    x = torch.rand(2, 3, r, r, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        return generator(x)


def _summaries(t: torch.Tensor) -> dict:
    t = t.float()
    d = t.double()
    return {"small": torch.nn.functional.avg_pool2d(t, 16).numpy(),
            "summary": np.array([d.mean().item(), d.std().item(), d.abs().max().item()])}


def test_shipped_weights_reproduce_the_reference_outputs():
    ref = np.load(REFERENCE)
    y, m = _outputs()
    for name, t in (("y", y), ("m", m)):
        for key, value in _summaries(t).items():
            np.testing.assert_allclose(value, ref[f"{name}_{key}"], atol=1e-4, err_msg=f"{name} {key}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--record"]:
        raise SystemExit(f"usage: python {sys.argv[0]} --record   (after shipping a new default model)")
    y, m = _outputs()
    arrays = {f"{name}_{k}": v for name, t in (("y", y), ("m", m)) for k, v in _summaries(t).items()}
    np.savez(REFERENCE, **arrays)
    print(f"recorded {REFERENCE}")
