"""Training checkpoints: the generator, the discriminators, both optimizers' states, the torch
RNG and the run's position (step, epoch, data position), in one safetensors file (no pickling)."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from ..model.gan import ByeGlassesGAN
from ..errors import CheckpointError
from ..model.weights import check_tensors, load_module, read_checkpoint, save_checkpoint, stored_config


EMA_PREFIX = "generator_ema"  # the generator's moving average (train.ema), when the run keeps one


def save_training_state(path, model: ByeGlassesGAN, state: dict, ema: Optional[torch.nn.Module] = None) -> None:
    tensors, meta = {}, {"train_state": state}
    if ema is not None:
        tensors.update({f"{EMA_PREFIX}.{k}": v for k, v in ema.state_dict().items()})
    for name, opt in (("opt_g", model.opt_g), ("opt_d", model.opt_d)):
        t, structure = optimizer_to_tensors(opt, name)
        tensors.update(t)
        meta[name] = structure
    tensors["rng.torch"] = torch.get_rng_state()
    save_checkpoint(path, model.config, model.generator, extra_tensors=tensors, extra_meta=meta,
                    **model.discriminators())


def load_training_state(path, model: ByeGlassesGAN) -> dict:
    tensors, meta = read_checkpoint(path)
    check_tensors(path, tensors, stored_config(path, meta), ("generator", *model.discriminators()))
    if "train_state" not in meta or "rng.torch" not in tensors:
        raise CheckpointError(f"{path}: not a training checkpoint (no optimizer state); resume needs "
                              "checkpoint.safetensors, not model.safetensors")
    load_module(model.generator, tensors, "generator", path)
    for name, module in model.discriminators().items():
        load_module(module, tensors, name, path)
    optimizer_from_tensors(model.opt_g, tensors, meta["opt_g"])
    optimizer_from_tensors(model.opt_d, tensors, meta["opt_d"])
    torch.set_rng_state(tensors["rng.torch"])
    return meta["train_state"]


def load_ema(path, ema: torch.nn.Module) -> bool:
    """The moving average stored in the training checkpoint `path` into `ema`; False (and `ema`
    untouched) when the checkpoint holds none, as one from a run without train.ema."""
    tensors, _ = read_checkpoint(path)
    if not any(k.startswith(EMA_PREFIX + ".") for k in tensors):
        return False
    load_module(ema, tensors, EMA_PREFIX, path)
    return True


def optimizer_to_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Flatten an optimizer's state into tensors + a JSON-able structure (no pickling)."""
    state = optimizer.state_dict()
    tensors, structure = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, pstate in state["state"].items():
        entry = {}
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{key}"] = value
                entry[key] = {"tensor": f"{prefix}.{pid}.{key}"}
            else:
                entry[key] = value
        structure["state"][str(pid)] = entry
    return tensors, structure


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: Dict[str, torch.Tensor], structure: dict):
    """Restore the moments and step counts; the hyperparameters (lr, betas) stay those `optimizer`
    was made with, from the run's config: resuming with `--set optim.lr_g=...` changes the rate."""
    state = {}
    for pid, entry in structure["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in entry.items()}
    hyper = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict({"state": state, "param_groups": structure["param_groups"]})
    for group, own in zip(optimizer.param_groups, hyper):
        group.update(own)
