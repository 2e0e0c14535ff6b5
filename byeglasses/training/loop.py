"""`byeglasses train`: train ByeGlassesGAN on glasses-free faces, with glasses synthesized on the fly.

A run folder holds config.json, checkpoint.safetensors (latest, written atomically: weights,
optimizer states, step and data position), model.safetensors (the generator at the end),
log.jsonl (every loss term, and the faces each process used) and samples/ (x | ŷ | y | predicted masks)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from ..device import pick_device
from ..errors import ByeGlassesError, SettingError
from ..files import write_text
from ..model.config import Config
from ..model.gan import ByeGlassesGAN
from ..model.weights import save_checkpoint
from ..pipeline.imageio import tensor_to_uint8, write_rgb
from ..synth.dataset import batch_to_device
from . import distributed as dist
from .state import load_ema, load_training_state, save_training_state


class NonFiniteLoss(ByeGlassesError):
    pass


class FiniteWatch:
    """Which loss terms went non-finite since the run began, kept on the device so that a step never
    waits for it; `check` reads it (one wait) and stops the run naming the term and the step."""

    def __init__(self):
        self.bad = self.first_step = self.first_value = None
        self.names = ()

    def update(self, terms: Dict[str, torch.Tensor], step: int) -> None:
        """Record the terms of `step` (1-based)."""
        device = next((v.device for v in terms.values() if torch.is_tensor(v)), None)
        values = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device) for v in terms.values()])
        if self.bad is None:
            self.names = tuple(terms)
            self.bad = torch.zeros_like(values, dtype=torch.bool)
            self.first_step = torch.zeros_like(values, dtype=torch.long)
            self.first_value = torch.zeros_like(values)
        new = ~torch.isfinite(values) & ~self.bad
        self.first_step = torch.where(new, step, self.first_step)
        self.first_value = torch.where(new, values, self.first_value)
        self.bad |= new

    def check(self, step: int, checkpoint) -> None:
        """Raise NonFiniteLoss (on every rank) if a term of a step up to `step` was not finite."""
        local = self.bad is not None and bool(self.bad.any())
        if not dist.any_true(local):
            return
        if not local:
            raise NonFiniteLoss(f"step {step}: a loss term is not finite on another process; stopped, "
                                f"the last good checkpoint {checkpoint} is kept")
        bad = self.bad.tolist()
        steps, values = self.first_step.tolist(), self.first_value.tolist()
        first = min(s for s, b in zip(steps, bad) if b)
        names = [n for n, s, b in zip(self.names, steps, bad) if b and s == first]
        later = [f"{n} from step {s}" for n, s, b in zip(self.names, steps, bad) if b and s != first]
        found = f", found at step {step}" if step != first else ""
        raise NonFiniteLoss(
            f"step {first}: loss term {', '.join(names)} is not finite "
            f"({', '.join(f'{n}={values[self.names.index(n)]}' for n in names)}{found}"
            f"{'; also ' + ', '.join(later) if later else ''}); stopped, the last good checkpoint "
            f"{checkpoint} is kept")


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


def sample_grid(batch, y_hat, m_hat, n: int = 4) -> np.ndarray:
    """(rows*R, 4*R, 3) uint8: x | ŷ | y | predicted masks (glasses red, face green)."""
    rows = []
    for i in range(min(n, batch["x"].shape[0])):
        masks = torch.zeros_like(batch["x"][i])
        if m_hat is not None:
            masks[0] = m_hat[i, 0] * 2 - 1
            masks[1] = (m_hat[i, 1] if m_hat.shape[1] > 1 else torch.zeros_like(m_hat[i, 0])) * 2 - 1
            masks[2] = -1
        images = (batch["x"][i], y_hat[i], batch["y"][i], masks)
        rows.append(np.concatenate([tensor_to_uint8(t) for t in images], 1))
    return np.concatenate(rows, 0)


def train(config: Config, faces: str, out: str, resume: bool = False, device=None,
          max_minutes: Optional[float] = None, landmark_cache: Optional[str] = None,
          progress: bool = True) -> dict:
    """The training loop: data, model, resume, loop, save. Returns a summary dict (steps,
    images/s, last losses)."""
    config.validate()  # every field in range before anything is created
    device = pick_device(device)
    dist.init(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolution algorithms once
        torch.backends.cuda.matmul.allow_tf32 = True
    run = Run(config, Path(out), device, dist.rank(), dist.world_size())
    resume = run.check_folder(resume)
    torch.manual_seed(config.train.seed)
    identity = run.identity_extractor()  # first: a bad --identity fails before any work
    dataset = run.data(faces, landmark_cache)
    run.real = run.real_photos()
    model = run.model(identity)
    state = run.resume(model) if resume else {"step": 0, "epoch": 0, "position": 0, "images": 0}
    run.start_ema(model, resume)
    model = run.wrap_for_replicas(model)
    last, stop_reason, elapsed = run.loop(model, dataset, state, max_minutes, progress)
    return run.save(model, state, last, stop_reason, elapsed)


class Run:
    """One training run in its folder `out`, on one of `world` processes."""

    def __init__(self, config: Config, out: Path, device: torch.device, rank: int, world: int):
        self.config, self.out, self.device, self.rank, self.world = config, out, device, rank, world
        self.ckpt_path = out / "checkpoint.safetensors"
        self.start_step = 0
        self.finite = FiniteWatch()
        self.real = None  # batches of real glasses photos (real_photos), or None
        self.ema = None  # the generator's moving average (train.ema), or None

    def check_folder(self, resume: bool) -> bool:
        """Whether there is a checkpoint to resume from. A folder holds a run once it has a
        checkpoint: a run that stopped before its first one (config.json, a log, samples) is
        started over, fresh or with --resume."""
        if self.out.exists() and not self.out.is_dir():
            raise SettingError("out", f"{self.out} is a file, not a folder")
        has_run = self.ckpt_path.is_file() or (self.out / "model.safetensors").is_file()
        if has_run and not resume:
            raise SettingError("out", f"{self.out} already holds a run; resume it, or choose a new folder")
        if resume and not self.ckpt_path.is_file():
            if not (self.out / "config.json").is_file():
                raise SettingError("resume", f"{self.ckpt_path} does not exist (no run in {self.out})")
            dist.print0(f"{self.out}: the run stopped before its first checkpoint; starting it over at step 0")
            return False
        return resume

    def data(self, faces: str, landmark_cache: Optional[str]):
        """Faces with glasses synthesized on the fly; the run folder and its config.json."""
        from ..synth.dataset import SynthFaceDataset

        from ..synth.glasses import GlassesDistribution, MixedDistribution
        from ..synth.render import glasses_images

        tc = self.config.train
        images = glasses_images(tc.glasses_images) if tc.glasses_images and tc.image_probability > 0 else ()
        mix = [GlassesDistribution(), GlassesDistribution.thin(), GlassesDistribution.dark()]
        if images:  # every mix takes that share of its glasses from the images
            mix = [replace(d, image_paths=images, image_probability=tc.image_probability) for d in mix]
        glasses = (MixedDistribution(mix[0], mix[1], tc.thin_frames, mix[2], tc.dark_glasses)
                   if tc.thin_frames > 0 or tc.dark_glasses > 0 else mix[0] if images else None)
        # faces decoded once into a cache file; uint8 items, turned into floats on the device
        dataset = SynthFaceDataset(faces, self.config.model.resolution, seed=tc.seed, cache_path=landmark_cache,
                                   no_glasses=tc.no_glasses, decoded_cache=True, uint8=True,
                                   progress=self.rank == 0, dist=glasses)
        if len(dataset) < tc.batch_size * self.world:
            raise SettingError("faces", f"{faces}: {len(dataset)} usable faces, fewer than one batch "
                                  f"({tc.batch_size} x {self.world} processes)")
        if self.rank == 0:
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            write_text(self.out / "config.json", self.config.to_json())
            dist.print0(f"config ({self.config.preset}):\n{self.config.to_json()}")
        dist.barrier()
        return dataset

    def identity_extractor(self) -> Optional[torch.nn.Module]:
        """The frozen network of the identity loss (eq. 7), or None when lambda_id is 0."""
        from ..identity import load_identity_extractor

        config = self.config
        if config.loss.lambda_id <= 0 and config.loss.lambda_id_real <= 0:
            return None
        return load_identity_extractor(config.loss.identity, config.model.resolution, self.device)

    def real_photos(self):
        """The real glasses photos of train.real_glasses (None without): an endless iterator of
        batches {"x_real": (B, 3, R, R) uint8}, reshuffled each pass."""
        from ..synth.dataset import RealPhotoDataset

        tc = self.config.train
        if not tc.real_glasses:
            return None
        lam = self.config.loss
        photos = RealPhotoDataset(tc.real_glasses, self.config.model.resolution, seed=tc.seed + 1 + self.rank,
                                  eyes=lam.real_eyes())
        dist.print0(f"{len(photos)} real glasses photos from {tc.real_glasses} (loss.lambda_gan_real "
                    f"{lam.lambda_gan_real:g}, lambda_id_real {lam.lambda_id_real:g}, "
                    f"lambda_lines_real {lam.lambda_lines_real:g}, lambda_keep_real {lam.lambda_keep_real:g})")

        def batches():
            epoch = 0
            while True:
                photos.set_epoch(epoch)
                order = torch.randperm(len(photos), generator=torch.Generator().manual_seed(photos.seed + epoch))  # each rank its own order
                for i in range(0, len(order), tc.batch_size):
                    items = [photos[int(j)] for j in order[i:i + tc.batch_size]]
                    yield {key: torch.stack([it[key] for it in items]) for key in items[0]}
                epoch += 1
        return batches()

    def model(self, identity: Optional[torch.nn.Module]) -> ByeGlassesGAN:
        """Generator, discriminators and optimizers, on the device; with train.init, the weights
        of that checkpoint (the generator, and the discriminators it holds)."""
        model = ByeGlassesGAN(self.config, identity, device=self.device)
        init = self.config.train.init
        if init:
            from ..model.weights import check_tensors, load_module, read_checkpoint

            if not Path(init).is_file():
                raise SettingError("train.init", f"{init}: no such checkpoint")
            tensors, _ = read_checkpoint(init)
            present = [p for p in ("generator", "disc_global", "disc_local")
                       if any(k.startswith(p + ".") for k in tensors) and getattr(model, p) is not None]
            if "generator" not in present:
                raise SettingError("train.init", f"{init}: holds no generator weights")
            check_tensors(init, tensors, self.config, prefixes=present)
            for prefix in present:
                load_module(getattr(model, prefix), tensors, prefix, init)
            dist.print0(f"started from {init} ({', '.join(present)})")
        return model

    def start_ema(self, model: ByeGlassesGAN, resumed: bool) -> None:
        """With train.ema, a copy of the generator to average into: the checkpoint's average on a
        resume, else the generator as it starts (its init, or its random weights)."""
        if not self.config.train.ema:
            return
        import copy

        self.ema = copy.deepcopy(model.generator).eval().requires_grad_(False)
        if resumed and not load_ema(self.ckpt_path, self.ema):
            dist.print0(f"{self.ckpt_path} holds no moving average: it starts from the generator at this step")

    def update_ema(self, model: ByeGlassesGAN) -> None:
        """ema ← decay·ema + (1 − decay)·generator, weight by weight (buffers copied)."""
        generator = getattr(model.generator, "module", model.generator)  # under DDP, the module itself
        decay = self.config.train.ema
        with torch.no_grad():
            for mine, theirs in zip(self.ema.parameters(), generator.parameters()):
                mine.lerp_(theirs.detach(), 1.0 - decay)
            for mine, theirs in zip(self.ema.buffers(), generator.buffers()):
                mine.copy_(theirs)

    def resume(self, model: ByeGlassesGAN) -> dict:
        state = load_training_state(self.ckpt_path, model)
        dist.print0(f"resumed {self.ckpt_path} at step {state['step']}")
        return state

    def wrap_for_replicas(self, model: ByeGlassesGAN) -> ByeGlassesGAN:
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            model.generator = DDP(model.generator, device_ids=ids)
            model.disc_global = DDP(model.disc_global, device_ids=ids)
            if model.disc_local is not None:
                model.disc_local = DDP(model.disc_local, device_ids=ids)
        return model

    def loop(self, model: ByeGlassesGAN, dataset, state: dict, max_minutes: Optional[float], progress: bool):
        """Steps until config.train.steps or the time budget; returns (last loss terms, why it
        stopped early or None, seconds)."""
        from tqdm import tqdm

        tc = self.config.train
        if self.rank == 0:
            _truncate_log(self.out / "log.jsonl", state["step"])
        log = open(self.out / "log.jsonl", "a") if self.rank == 0 else None
        tb = _tensorboard(self.out) if self.rank == 0 else None
        start_time, self.start_step = time.time(), state["step"]
        bar = tqdm(total=tc.steps, initial=state["step"], disable=not progress or self.rank != 0, unit="step",
                   dynamic_ncols=True)
        stop_reason, last, elapsed = None, {}, 0.0
        try:
            while state["step"] < tc.steps and stop_reason is None:
                for batch in self.epoch_loader(dataset, state):
                    index = batch.pop("index")
                    if self.real is not None:
                        batch.update(next(self.real))
                    batch = batch_to_device(batch, self.device)
                    terms = self.step(model, batch, state)
                    if self.ema is not None:
                        self.update_ema(model)
                    elapsed = time.time() - start_time
                    ips = (state["step"] - self.start_step) * tc.batch_size * self.world / max(elapsed, 1e-9)
                    bar.update(1)
                    # the device is only waited for here, every log_every steps (and before saving)
                    if state["step"] % tc.log_every == 0 or state["step"] >= tc.steps:
                        self.finite.check(state["step"], self.ckpt_path)
                        last = _read(terms)
                        bar.set_postfix(img_s=f"{ips:.1f}", l1=f"{last['l1_global']:.3f}", refresh=False)
                        indices = dist.gather(index.tolist())  # every rank's faces of this step
                        if log and state["step"] % tc.log_every == 0:
                            _log(log, tb, state, elapsed, ips, last, indices)
                        if dist.any_true(max_minutes is not None and elapsed > max_minutes * 60):
                            stop_reason = "time budget reached"
                    if self.rank == 0 and state["step"] % tc.sample_every == 0:
                        _write_samples(model, batch, self.out / "samples" / f"step{state['step']:07d}.png")
                    if state["step"] % tc.checkpoint_every == 0:
                        self.checkpoint(model, state)
                    if state["step"] >= tc.steps or stop_reason:
                        break
                else:  # the epoch ran out: the next one has new glasses and a new order
                    state["epoch"] += 1
                    state["position"] = 0
        finally:
            bar.close()
            if log:
                log.close()
        return last, stop_reason, time.time() - start_time

    def epoch_loader(self, dataset, state: dict):
        """This rank's batches of the current epoch, from the stored data position on."""
        tc = self.config.train
        dataset.set_epoch(state["epoch"])
        sampler = EpochSampler(len(dataset), tc.seed, state["epoch"], self.rank, self.world, start=state["position"])
        return torch.utils.data.DataLoader(dataset, batch_size=tc.batch_size, sampler=sampler,
                                           num_workers=tc.workers(self.world), drop_last=True,
                                           pin_memory=self.device.type == "cuda")

    def step(self, model: ByeGlassesGAN, batch: dict, state: dict) -> Dict[str, torch.Tensor]:
        """One GAN step; its loss terms stay on the device (FiniteWatch checks them before anything is
        logged or saved)."""
        terms = model.training_step(batch, step=state["step"])
        self.finite.update(terms, state["step"] + 1)
        tc = self.config.train
        state["step"] += 1
        state["position"] += tc.batch_size
        state["images"] += tc.batch_size * self.world
        return terms

    def checkpoint(self, model: ByeGlassesGAN, state: dict) -> None:
        self.finite.check(state["step"], self.ckpt_path)  # never save weights a non-finite step touched
        if self.rank == 0:
            try:
                save_training_state(self.ckpt_path, model, dict(state), ema=self.ema)
            except OSError as e:
                raise ByeGlassesError(f"{self.ckpt_path}: cannot write the checkpoint at step {state['step']} "
                                      f"({e.strerror or e}); the previous checkpoint, if any, is kept") from None
        dist.barrier()

    def save(self, model: ByeGlassesGAN, state: dict, last: Dict[str, float], stop_reason: Optional[str],
             elapsed: float) -> dict:
        """The last training checkpoint, the generator alone (model.safetensors: its moving average
        with train.ema), the summary line.
        With several processes, the replicas' weights must agree (the training checkpoint records
        each one's digest)."""
        if self.world > 1:
            digests = dist.gather(_weights_digest(model))
            if len(set(digests)) > 1:
                raise ByeGlassesError(f"the {self.world} replicas' weights diverged; nothing saved")
            state["replica_weights_sha256"] = digests
        self.checkpoint(model, state)
        if self.rank == 0:
            generator = self.ema if self.ema is not None else getattr(model.generator, "module", model.generator)
            save_checkpoint(self.out / "model.safetensors", self.config, generator)
        tc = self.config.train
        stop_reason = stop_reason or "done"
        summary = {"steps": state["step"], "images": state["images"], "seconds": round(elapsed, 1),
                   "img_per_s": round((state["step"] - self.start_step) * tc.batch_size * self.world
                                      / max(elapsed, 1e-9), 2),
                   "stopped": stop_reason, **{k: round(v, 4) for k, v in last.items()}}
        dist.print0(f"trained {summary['steps']} steps ({summary['images']} images) in {elapsed / 60:.1f} min, "
                    f"{summary['img_per_s']} img/s, {stop_reason}; "
                    f"l1_global={last.get('l1_global', float('nan')):.4f}; model: {self.out / 'model.safetensors'}")
        dist.shutdown()
        return summary


def _read(terms) -> Dict[str, float]:
    """The loss terms as floats, read from the device in one transfer."""
    on_device = [v for v in terms.values() if torch.is_tensor(v)]
    values = iter(torch.stack(on_device).tolist() if on_device else [])
    return {k: next(values) if torch.is_tensor(v) else float(v) for k, v in terms.items()}


def _log(log, tb, state: dict, elapsed: float, ips: float, terms: Dict[str, float], indices) -> None:
    """One line of log.jsonl: position, speed, every loss term, and the faces each rank used."""
    record = {"step": state["step"], "epoch": state["epoch"], "images": state["images"],
              "time": round(elapsed, 2), "img_per_s": round(ips, 3), **terms, "indices": indices}
    log.write(json.dumps(record) + "\n")
    log.flush()
    if tb:
        for k, v in terms.items():
            tb.add_scalar(f"loss/{k}", v, state["step"])


def _truncate_log(path: Path, step: int) -> None:
    """Keep only the records of steps up to `step` (the checkpoint resumed from; 0: a fresh start),
    so that steps redone after a resume are not logged twice."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
    if len(kept) != len(lines):
        write_text(path, "".join(kept))


def _weights_digest(model) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


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
