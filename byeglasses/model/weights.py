"""Checkpoints: safetensors weights + JSON config + package version. Loading never unpickles."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..device import pick_device
from ..errors import ByeGlassesError, CheckpointError
from ..files import atomic_write, write_text
from .config import Config
from .networks import Generator

FORMAT = "byeglasses-checkpoint-1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default.safetensors"
PathLike = Union[str, os.PathLike]


def save_checkpoint(path: PathLike, config: Config, generator: torch.nn.Module,
                    dtype: Optional[torch.dtype] = None, extra_tensors: Optional[Dict[str, torch.Tensor]] = None,
                    extra_meta: Optional[dict] = None, **modules: torch.nn.Module) -> None:
    """Write `generator` (and any other named modules, e.g. disc_global=...) to one safetensors
    file whose metadata holds the config and version, plus a readable `<path>.json` beside it."""
    tensors = {}
    for name, module in {"generator": generator, **modules}.items():
        module = getattr(module, "module", module)  # unwrap DistributedDataParallel
        for key, value in module.state_dict().items():
            value = value.detach().to("cpu")
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            tensors[f"{name}.{key}"] = value.contiguous().clone()
    for key, value in (extra_tensors or {}).items():
        tensors[key] = value.detach().to("cpu").contiguous().clone()
    meta = {"format": FORMAT, "byeglasses_version": __version__, "config": config.to_dict(),
            **(extra_meta or {})}
    metadata = {"format": FORMAT, "byeglasses_version": __version__, "meta": json.dumps(meta)}
    atomic_write(path, lambda tmp: _save_file(tensors, tmp, metadata))
    write_text(f"{path}.json", json.dumps(meta, indent=2, sort_keys=True))


def _save_file(tensors: Dict[str, torch.Tensor], path: str, metadata: Dict[str, str]) -> None:
    try:
        save_file(tensors, path, metadata=metadata)
    except SafetensorError as e:  # a failed write (disk full, file too large) is an OSError for the caller
        raise OSError(str(e).replace("Error while serializing: ", "")) from None


def read_safetensors(path: PathLike) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(tensors on CPU, the file's string metadata), or CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        return load_file(str(path), device="cpu"), header
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def mismatch_report(title: str, missing, unexpected, shapes) -> str:
    """A CheckpointError message: the title, then up to 8 of each kind of mismatch."""
    lines = [title]
    for kind, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            lines.append(f"  {kind}: {shown}")
    return "\n".join(lines)


def read_checkpoint(path: PathLike) -> Tuple[Dict[str, torch.Tensor], dict]:
    """(tensors on CPU, metadata dict with 'config'), or CheckpointError naming the file."""
    tensors, header = read_safetensors(path)
    if header.get("format") != FORMAT or "meta" not in header:
        raise CheckpointError(f"{path}: not a byeglasses checkpoint (no '{FORMAT}' metadata)")
    try:
        meta = json.loads(header["meta"])
    except ValueError as e:
        raise CheckpointError(f"{path}: its metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its metadata is not a JSON object")
    return tensors, meta


def stored_config(path: PathLike, meta: dict) -> Config:
    """The Config a checkpoint was saved with, every field checked, or CheckpointError."""
    try:
        return Config.from_dict(meta["config"])
    except (ByeGlassesError, TypeError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{path}: its stored config is invalid ({e})") from None


def check_tensors(path: PathLike, tensors: Dict[str, torch.Tensor], config: Config,
                  prefixes=("generator",)) -> None:
    """Before any network is built: the modules `prefixes` (generator, disc_global, disc_local)
    that `config` describes, built on the meta device (no memory), must have exactly the
    checkpoint's keys and shapes, and every stored weight must be finite."""
    from .networks import PatchDiscriminator

    with torch.device("meta"):
        for prefix in prefixes:
            module = Generator(config.model) if prefix == "generator" else PatchDiscriminator(config.model)
            check_module_shapes(module, tensors, prefix, path)
    for key, value in tensors.items():
        if key.split(".")[0] in prefixes and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{path}: weight {key} has {bad} of {value.numel()} values that are NaN or "
                                  f"infinite; the model is broken (a diverged training run?)")


def check_module_shapes(module: torch.nn.Module, tensors: Dict[str, torch.Tensor], prefix: str,
                        path: PathLike) -> None:
    """CheckpointError listing the keys and shapes where `prefix.*` tensors do not fit `module`."""
    own = module.state_dict()
    given = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    shapes = [f"{k}: checkpoint {tuple(given[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(given)) if given[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(mismatch_report(f"{path}: the {prefix} weights do not fit the configuration",
                                              missing, unexpected, shapes))


def load_module(module: torch.nn.Module, tensors: Dict[str, torch.Tensor], prefix: str, path: PathLike) -> None:
    """Load `prefix.*` tensors into `module`, failing with the mismatched keys and shapes."""
    check_module_shapes(module, tensors, prefix, path)
    own = module.state_dict()
    given = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in given.items()})


def load_generator(path: Optional[PathLike] = None, device=None, config: Optional[Config] = None
                   ) -> Tuple[Generator, Config]:
    """The generator of a checkpoint (default: the model shipped in the package), in eval mode,
    float32, on `device` (default: CUDA, else MPS, else CPU). `config` overrides the stored one."""
    if path is None:
        path = DEFAULT_WEIGHTS
        if not path.is_file():
            raise CheckpointError(
                f"no default model is shipped in this installation ({path} is missing); "
                "pass a checkpoint with --checkpoint / GlassesRemover(checkpoint=...)")
    tensors, meta = read_checkpoint(path)
    config = config or stored_config(path, meta)
    check_tensors(path, tensors, config)  # before the network is built: a lying config allocates nothing
    generator = Generator(config.model)
    load_module(generator, tensors, "generator", path)
    return generator.to(pick_device(device)).eval(), config


def average_generators(paths) -> Tuple[Generator, Config]:
    """The uniform average of the generators of several checkpoints, weight by weight (a "model
    soup": useful for runs fine-tuned from one start; unrelated runs average to noise). All must have
    the first one's architecture; CheckpointError names the one that differs. CPU, float32, eval mode."""
    paths = list(paths)
    if not paths:
        raise CheckpointError("average_generators: no checkpoint given")
    generator, config = load_generator(paths[0], device="cpu")
    total = {k: v.detach().clone().double() for k, v in generator.state_dict().items() if v.is_floating_point()}
    for path in paths[1:]:
        other, other_config = load_generator(path, device="cpu")  # built as its own config says
        if asdict(other_config.model) != asdict(config.model):
            raise CheckpointError(f"{path}: its model settings differ from {paths[0]}'s; "
                                  "only generators of one architecture can be averaged")
        for k, v in other.state_dict().items():
            if k in total:
                total[k] += v.double()
    state = generator.state_dict()
    generator.load_state_dict({k: (total[k] / len(paths)).to(v.dtype) if k in total else v for k, v in state.items()})
    return generator, config
