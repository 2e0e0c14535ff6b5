"""ONNX export: ONNX Runtime reproduces PyTorch, and `remove --backend onnx` uses it."""

import numpy as np
import pytest
import torch

from byeglasses.cli import main

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from byeglasses.model.weights import save_checkpoint
    from byeglasses.model.config import get_preset
    from byeglasses.model.networks import Generator

    folder = tmp_path_factory.mktemp("onnx")
    cfg = get_preset("tiny")
    torch.manual_seed(1)
    save_checkpoint(folder / "tiny.safetensors", cfg, Generator(cfg.model))
    assert main(["export-onnx", "--checkpoint", str(folder / "tiny.safetensors"),
                 "--out", str(folder / "g.onnx")]) == 0
    return folder / "tiny.safetensors", folder / "g.onnx"


def test_onnx_runtime_matches_pytorch(exported):
    from byeglasses.model.weights import load_generator

    ckpt, onnx_path = exported
    generator, cfg = load_generator(ckpt, device="cpu")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    r = cfg.model.resolution
    assert session.get_inputs()[0].shape[1:] == [3, r, r]
    x = torch.rand(3, 3, r, r) * 2 - 1  # batch 3: the batch axis is dynamic
    with torch.no_grad():
        y_t, m_t = generator(x)
    y_o, m_o = session.run(None, {"x": x.numpy()})
    assert np.abs(y_o - y_t.numpy()).max() <= 1e-3
    assert np.abs(m_o - m_t.numpy()).max() <= 1e-3


def test_remover_onnx_backend_agrees_with_torch(exported, astronaut):
    from byeglasses.pipeline.remover import GlassesRemover

    ckpt, onnx_path = exported
    kw = dict(threshold=0.5, glasses_threshold=0.0)
    a = GlassesRemover(ckpt, device="cpu", **kw).remove(astronaut)
    b = GlassesRemover(backend="onnx", onnx=onnx_path, **kw).remove(astronaut)
    assert len(a.faces) == len(b.faces) >= 1
    for fa, fb in zip(a.faces, b.faces):
        assert fa.glasses_probability == pytest.approx(fb.glasses_probability, abs=1e-3)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 2


def test_cli_onnx_backend_writes_output(exported, astronaut, tmp_path):
    from PIL import Image

    _, onnx_path = exported
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    rc = main(["remove", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--backend", "onnx",
               "--onnx", str(onnx_path), "--glasses-threshold", "0"])
    assert rc == 0 and (tmp_path / "out" / "a.png").is_file()


def test_export_without_onnx_installed_says_what_to_install(monkeypatch, tmp_path, capsys):
    import sys

    from byeglasses.cli import main

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the package were absent
    assert main(["export-onnx", "--out", str(tmp_path / "g.onnx")]) == 2
    assert "pip install 'byeglasses[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "g.onnx").exists()


def test_web_service_onnx_backend_shares_one_session(exported, astronaut, tmp_path):
    """`serve --backend onnx`: every request runs on the server's one ONNX Runtime session, with its
    own settings, and gets what the torch backend gives."""
    from dataclasses import replace

    from PIL import Image

    from byeglasses.pipeline.remover import RemovalSettings
    from byeglasses.web.service import RemovalService

    ckpt, onnx_path = exported
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    torch_defaults = RemovalSettings(checkpoint=ckpt, device="cpu", glasses_threshold=0.0)
    onnx_defaults = replace(torch_defaults, backend="onnx", onnx=onnx_path)
    service = RemovalService(tmp_path / "w_onnx", defaults=onnx_defaults)
    first, second = service.remover(onnx_defaults), service.remover(replace(onnx_defaults, threshold=0.3))
    assert first.session is second.session is service.model(None).session is not None
    assert second.settings.threshold == 0.3 and second.settings.backend == "onnx"
    (a,) = service.process([tmp_path / "a.png"])
    (b,) = RemovalService(tmp_path / "w_torch", defaults=torch_defaults).process([tmp_path / "a.png"])
    assert a.ok and b.ok and a.changed == b.changed
    with Image.open(a.download) as x, Image.open(b.download) as y:
        assert np.abs(np.asarray(x, int) - np.asarray(y, int)).max() <= 2


def test_serve_takes_the_onnx_backend_flags():
    from byeglasses.cli import build_parser

    args = build_parser().parse_args(["serve", "--backend", "onnx", "--onnx", "g.onnx"])
    assert args.backend == "onnx" and args.onnx == "g.onnx"
