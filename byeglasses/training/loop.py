"""`byeglasses train`: train ByeGlassesGAN on glasses-free faces, with glasses synthesized on the fly.

A run folder holds config.json, checkpoint.safetensors (latest, written atomically: weights,
optimizer states, step and data position), model.safetensors (the generator at the end),
log.jsonl (every loss term) and samples/ (x | ŷ | y | predicted masks)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from . import distributed as dist
from ..files import IMAGE_SUFFIXES, list_images, write_text
from ..pipeline.imageio import tensor_to_uint8, write_rgb
from ..model.weights import (load_module, optimizer_from_tensors, optimizer_to_tensors,
                         read_checkpoint, save_checkpoint)
from ..model.config import PRESETS, Config, get_preset
from ..device import pick_device
from ..errors import ByeGlassesError
from ..model.gan import ByeGlassesGAN

class NonFiniteLoss(ByeGlassesError):
    pass


def list_faces(faces_dir) -> List[str]:
    """Image files directly in `faces_dir`, sorted; clear errors for a wrong or empty folder."""
    path = Path(faces_dir)
    if not path.exists():
        raise ByeGlassesError(f"--faces {faces_dir}: no such folder")
    if not path.is_dir():
        raise ByeGlassesError(f"--faces {faces_dir}: not a folder")
    files = list_images(path)
    if not files:
        raise ByeGlassesError(f"--faces {faces_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return files


def apply_overrides(config: Config, overrides: List[str]) -> Config:
    """`section.field=value` strings, e.g. loss.lambda_id=0 or model.resolution=96."""
    d = config.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, _, field = key.partition(".")
        if not sep or section not in ("model", "loss", "optim", "train") or field not in d[section]:
            raise ByeGlassesError(f"--set {item!r}: expected SECTION.FIELD=VALUE with a known field, "
                                  f"e.g. loss.lambda_id=0 (sections: model, loss, optim, train)")
        old = d[section][field]
        try:
            value = json.loads(raw) if not isinstance(old, str) else raw
        except json.JSONDecodeError:
            raise ByeGlassesError(f"--set {item!r}: {raw!r} is not a valid value for {key}") from None
        if isinstance(old, bool) and not isinstance(value, bool) or isinstance(old, (int, float)) and isinstance(value, str):
            raise ByeGlassesError(f"--set {item!r}: {key} takes a {type(old).__name__}")
        d[section][field] = value
    return Config.from_dict(d)


class EpochSampler(torch.utils.data.Sampler):
    """Indices of one epoch for one rank: a permutation seeded by (seed, epoch), dealt out
    round-robin so ranks see different faces, starting at `start` (for exact resume)."""

    def __init__(self, n: int, seed: int, epoch: int, rank: int, world: int, start: int = 0):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        per_rank = n // world
        self.indices = order[rank: per_rank * world: world].tolist()[start:]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def save_training_state(path, model: ByeGlassesGAN, state: dict) -> None:
    tensors, meta = {}, {"train_state": state}
    for name, opt in (("opt_g", model.opt_g), ("opt_d", model.opt_d)):
        t, structure = optimizer_to_tensors(opt, name)
        tensors.update(t)
        meta[name] = structure
    tensors["rng.torch"] = torch.get_rng_state()
    save_checkpoint(path, model.config, model.generator, extra_tensors=tensors, extra_meta=meta,
                    **model.discriminators())


def load_training_state(path, model: ByeGlassesGAN) -> dict:
    tensors, meta = read_checkpoint(path)
    load_module(model.generator, tensors, "generator", path)
    for name, module in model.discriminators().items():
        load_module(module, tensors, name, path)
    optimizer_from_tensors(model.opt_g, tensors, meta["opt_g"])
    optimizer_from_tensors(model.opt_d, tensors, meta["opt_d"])
    torch.set_rng_state(tensors["rng.torch"])
    return meta["train_state"]


def sample_grid(batch, y_hat, m_hat, n: int = 4) -> np.ndarray:
    """(rows*R, 4*R, 3) uint8: x | ŷ | y | predicted masks (glasses red, face green)."""
    rows = []
    for i in range(min(n, batch["x"].shape[0])):
        masks = torch.zeros_like(batch["x"][i])
        if m_hat is not None:
            masks[0] = m_hat[i, 0] * 2 - 1
            masks[1] = (m_hat[i, 1] if m_hat.shape[1] > 1 else torch.zeros_like(m_hat[i, 0])) * 2 - 1
            masks[2] = -1
        rows.append(np.concatenate([tensor_to_uint8(batch["x"][i]), tensor_to_uint8(y_hat[i]), tensor_to_uint8(batch["y"][i]), tensor_to_uint8(masks)], 1))
    return np.concatenate(rows, 0)


def train(config: Config, faces: str, out: str, resume: bool = False, device=None,
          max_minutes: Optional[float] = None, landmark_cache: Optional[str] = None,
          progress: bool = True) -> dict:
    """The training loop. Returns a summary dict (steps, images/s, last losses)."""
    from tqdm import tqdm

    from ..identity import load_identity_extractor
    from ..synth.dataset import SynthFaceDataset

    device = pick_device(device)
    dist.init(device)
    rank, world = dist.rank(), dist.world_size()
    out = Path(out)
    ckpt_path = out / "checkpoint.safetensors"
    if out.exists() and (out / "config.json").exists() and not resume:
        raise ByeGlassesError(f"--out {out} already holds a run; pass --resume to continue it, or choose a new folder")
    if resume and not ckpt_path.is_file():
        raise ByeGlassesError(f"--resume: {ckpt_path} does not exist")

    tc = config.train
    torch.manual_seed(tc.seed)
    identity = load_identity_extractor(config.loss.identity, config.model.resolution, device) \
        if config.loss.lambda_id > 0 else None
    dataset = SynthFaceDataset(faces, config.model.resolution, seed=tc.seed, cache_path=landmark_cache,
                               no_glasses=tc.no_glasses)
    n = len(dataset)
    if n < tc.batch_size * world:
        raise ByeGlassesError(f"--faces {faces}: {n} usable faces, fewer than one batch "
                              f"({tc.batch_size} x {world} processes)")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        write_text(out / "config.json", config.to_json())
        dist.print0(f"config ({config.preset}):\n{config.to_json()}")
    dist.barrier()
    model = ByeGlassesGAN(config, identity).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)

    state = {"step": 0, "epoch": 0, "position": 0, "images": 0}
    if resume:
        state = load_training_state(ckpt_path, model)
        dist.print0(f"resumed {ckpt_path} at step {state['step']}")
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        model.generator = DDP(model.generator, device_ids=ids)
        model.disc_global = DDP(model.disc_global, device_ids=ids)
        if model.disc_local is not None:
            model.disc_local = DDP(model.disc_local, device_ids=ids)

    log = open(out / "log.jsonl", "a") if rank == 0 else None
    tb = _tensorboard(out) if rank == 0 else None

    start_time, start_step = time.time(), state["step"]
    bar = tqdm(total=tc.steps, initial=state["step"], disable=not progress or rank != 0, unit="step",
               dynamic_ncols=True)
    stop_reason = None
    last: Dict[str, float] = {}
    try:
        while state["step"] < tc.steps and stop_reason is None:
            dataset.set_epoch(state["epoch"])
            sampler = EpochSampler(n, tc.seed, state["epoch"], rank, world, start=state["position"])
            loader = torch.utils.data.DataLoader(dataset, batch_size=tc.batch_size, sampler=sampler,
                                                 num_workers=tc.num_workers, drop_last=True,
                                                 pin_memory=device.type == "cuda")
            for batch in loader:
                seen = batch.pop("index").tolist()
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                terms = model.training_step(batch, step=state["step"])
                bad = [k for k, v in terms.items() if not math.isfinite(v)]
                if dist.any_true(bool(bad)):
                    raise NonFiniteLoss(
                        f"step {state['step'] + 1}: loss term {', '.join(bad) or '(on another rank)'} is not finite "
                        f"({', '.join(f'{k}={terms[k]}' for k in bad)}); stopped, the last good checkpoint "
                        f"{ckpt_path} is kept")
                state["step"] += 1
                state["position"] += tc.batch_size
                state["images"] += tc.batch_size * world
                last = terms
                elapsed = time.time() - start_time
                ips = (state["step"] - start_step) * tc.batch_size * world / max(elapsed, 1e-9)
                bar.update(1)
                bar.set_postfix(img_s=f"{ips:.1f}", l1=f"{terms['l1_global']:.3f}", refresh=False)
                if rank == 0 and state["step"] % tc.log_every == 0:
                    record = {"step": state["step"], "epoch": state["epoch"], "images": state["images"],
                              "time": round(elapsed, 2), "img_per_s": round(ips, 3), **terms}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    if tb:
                        for k, v in terms.items():
                            tb.add_scalar(f"loss/{k}", v, state["step"])
                if os.environ.get("BYEGLASSES_LOG_INDICES"):
                    with open(out / f"indices.rank{rank}.txt", "a") as f:
                        f.write(" ".join(map(str, seen)) + "\n")
                if rank == 0 and state["step"] % tc.sample_every == 0:
                    _write_samples(model, batch, out / "samples" / f"step{state['step']:07d}.png")
                if state["step"] % tc.checkpoint_every == 0:
                    _checkpoint(model, ckpt_path, state, rank)
                if state["step"] >= tc.steps:
                    break
                if dist.any_true(max_minutes is not None and elapsed > max_minutes * 60):
                    stop_reason = "time budget reached"
                    break
            else:  # the epoch ran out: the next one has new glasses and a new order
                state["epoch"] += 1
                state["position"] = 0
    finally:
        bar.close()
        if log:
            log.close()
    _checkpoint(model, ckpt_path, state, rank)
    if rank == 0:
        save_checkpoint(out / "model.safetensors", config, model.generator)
    if world > 1 and os.environ.get("BYEGLASSES_LOG_INDICES"):  # lets tests check the replicas agree
        (out / f"weights.rank{rank}.sha256").write_text(_weights_digest(model))
    elapsed = time.time() - start_time
    summary = {"steps": state["step"], "images": state["images"], "seconds": round(elapsed, 1),
               "img_per_s": round((state["step"] - start_step) * tc.batch_size * world / max(elapsed, 1e-9), 2),
               "stopped": stop_reason, **{k: round(v, 4) for k, v in last.items()}}
    stop_reason = stop_reason or "done"
    summary["stopped"] = stop_reason
    dist.print0(f"trained {summary['steps']} steps ({summary['images']} images) in {elapsed / 60:.1f} min, "
                f"{summary['img_per_s']} img/s, {stop_reason}; l1_global={last.get('l1_global', float('nan')):.4f}; "
                f"model: {out / 'model.safetensors'}")
    dist.shutdown()
    return summary


def _weights_digest(model) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _checkpoint(model, path, state, rank):
    if rank == 0:
        save_training_state(path, model, dict(state))
    dist.barrier()


def _write_samples(model, batch, path):
    gen = model.generator
    was_training = gen.training
    gen.eval()
    with torch.no_grad():
        y_hat, m_hat = gen(batch["x"][:4])
    gen.train(was_training)
    write_rgb(path, sample_grid(batch, y_hat, m_hat))


def _tensorboard(out):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tb"))
