"""Test helpers shared by several test files."""

import importlib.util
import struct
import zlib
from pathlib import Path

import torch


def bomb_png(path, side=40_000):
    """Write a ~100-byte PNG that declares side x side pixels: a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))


def tiny(steps=6, **train_fields):
    """The `tiny` preset with `steps` and train.<field> values changed."""
    from byeglasses.model.config import get_preset

    cfg = get_preset("tiny")
    cfg.train.steps = steps
    for k, v in train_fields.items():
        setattr(cfg.train, k, v)
    return cfg


def load_script(relative: str):
    """A script of the repository (e.g. "benchmarks/eye_bands.py"), imported as a module by its path."""
    path = Path(__file__).resolve().parents[1] / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



class SmearingGenerator(torch.nn.Module):
    """A stand-in with the generator's interface: glasses over the template's eyes; ŷ the input
    blurred (eyes smeared, no tint)."""

    def __init__(self, resolution=128):
        super().__init__()
        self.r = resolution
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        r = self.r
        m = torch.zeros(x.shape[0], 2, r, r)
        m[:, 0, int(0.40 * r):int(0.56 * r), int(0.25 * r):int(0.75 * r)] = 1.0
        y_hat = torch.nn.functional.avg_pool2d(x, 7, stride=1, padding=3, count_include_pad=False)
        return y_hat + self.anchor, m
