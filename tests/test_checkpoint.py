import json

import pytest
import torch

from byeglasses.model.weights import load_generator, read_checkpoint, save_checkpoint
from byeglasses.model.config import get_preset
from byeglasses.errors import CheckpointError
from byeglasses.model.networks import Generator


def test_save_load_identical_outputs(tmp_path):
    cfg = get_preset("tiny")
    torch.manual_seed(1)
    g = Generator(cfg.model).eval()
    path = tmp_path / "g.safetensors"
    save_checkpoint(path, cfg, g)
    loaded, loaded_cfg = load_generator(path, device="cpu")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a, ma = g(x)
        b, mb = loaded(x)
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert loaded_cfg.to_dict() == cfg.to_dict()
    meta = json.loads((tmp_path / "g.safetensors.json").read_text())
    assert meta["byeglasses_version"] and meta["config"]["model"]["resolution"] == 64


def test_fp16_checkpoint_loads_as_float32(tmp_path):
    cfg = get_preset("tiny")
    g = Generator(cfg.model)
    save_checkpoint(tmp_path / "h.safetensors", cfg, g, dtype=torch.float16)
    tensors, _ = read_checkpoint(tmp_path / "h.safetensors")
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    loaded, _ = load_generator(tmp_path / "h.safetensors", device="cpu")
    assert next(loaded.parameters()).dtype == torch.float32


def test_mismatched_checkpoint_names_keys_and_shapes(tmp_path):
    cfg = get_preset("tiny")
    save_checkpoint(tmp_path / "g.safetensors", cfg, Generator(cfg.model))
    other = get_preset("tiny")
    other.model.base_width = 16
    with pytest.raises(CheckpointError, match=r"shape mismatches: .*encoder\.blocks\.0\.0\.weight"):
        load_generator(tmp_path / "g.safetensors", config=other)
    no_sd = get_preset("tiny")
    no_sd.model.seg_decoder = False
    with pytest.raises(CheckpointError, match="unexpected keys: .*seg_decoder"):
        load_generator(tmp_path / "g.safetensors", config=no_sd)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_generator(tmp_path / "absent.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="bad.safetensors: not a readable"):
        load_generator(bad)


def test_average_generators_is_the_mean_and_refuses_other_architectures(tmp_path):
    from byeglasses.model.weights import average_generators

    cfg = get_preset("tiny")
    paths = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"g{seed}.safetensors")
        save_checkpoint(paths[-1], cfg, Generator(cfg.model))
    gens = [load_generator(p, device="cpu")[0].state_dict() for p in paths]
    avg, avg_cfg = average_generators(paths)
    assert avg_cfg.to_dict() == cfg.to_dict()
    for k, v in avg.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, sum(g[k] for g in gens) / 3, atol=1e-6), k
    # one model averaged with itself is itself
    same, _ = average_generators([paths[0], paths[0]])
    assert all(torch.equal(v, gens[0][k]) for k, v in same.state_dict().items())
    other = get_preset("tiny")
    other.model.base_width = 16
    save_checkpoint(tmp_path / "wide.safetensors", other, Generator(other.model))
    with pytest.raises(CheckpointError, match="wide.safetensors: its model settings differ"):
        average_generators([paths[0], tmp_path / "wide.safetensors"])
    with pytest.raises(CheckpointError, match="no checkpoint given"):
        average_generators([])
