"""Typed configuration: the networks, the loss weights (eq. 8), the optimizer, and named presets."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple, Union

from ..errors import ByeGlassesError, SettingError

# Ranges of the numeric fields, checked by validate() (called on construction and by `train`
# after its flags are applied): field -> (type, lowest, highest); None leaves that side open.
# The upper bounds only keep a typo from allocating the machine away.
_RANGES: Dict[str, Dict[str, Tuple[type, Optional[float], Optional[float]]]] = {
    "model": {"resolution": (int, 32, 4096), "base_width": (int, 1, 4096), "max_width": (int, 1, 4096),
              "depth": (int, 1, 12), "disc_width": (int, 1, 4096), "disc_layers": (int, 1, 8),
              "seg_decoder": (bool, None, None), "face_shape_channel": (bool, None, None),
              "feature_sharing": (bool, None, None), "local_disc": (bool, None, None)},
    "loss": {"lambda_gan_global": (float, 0, None), "lambda_gan_local": (float, 0, None),
             "lambda_l1_global": (float, 0, None), "lambda_l1_local": (float, 0, None),
             "lambda_seg": (float, 0, None), "lambda_id": (float, 0, None), "identity": (str, None, None),
             "id_every": (int, 1, None), "lambda_gan_real": (float, 0, None), "lambda_id_real": (float, 0, None),
             "lambda_lines_real": (float, 0, None), "lambda_keep_real": (float, 0, None),
             "l1_hidden": (float, 0, 1), "id_region": (str, None, None),
             "lambda_id_feat": (float, 0, None)},
    "optim": {"lr_g": (float, 0, 1), "lr_d": (float, 0, 1), "beta1": (float, 0, 1), "beta2": (float, 0, 1)},
    "train": {"batch_size": (int, 1, 65536), "steps": (int, 1, None), "checkpoint_every": (int, 1, None),
              "sample_every": (int, 1, None), "log_every": (int, 1, None),
              "no_glasses": (float, 0, 1), "seed": (int, 0, 2 ** 32 - 1), "compile": (bool, None, None),
              "channels_last": (bool, None, None), "init": (str, None, None), "thin_frames": (float, 0, 1),
              "dark_glasses": (float, 0, 1), "glasses_images": (str, None, None),
              "image_probability": (float, 0, 1),
              "real_glasses": (str, None, None), "precision": (str, None, None), "ema": (float, 0, 1)},
}
PRECISIONS = ("auto", "bf16", "fp32")
ID_REGIONS = ("face", "glasses")  # loss.id_region
_OPEN = {"lr_g": "below", "lr_d": "below", "beta1": "above", "beta2": "above", "ema": "above"}


def _validate(obj, section: str) -> None:
    check_ranges(obj, _RANGES[section], _OPEN, prefix=f"{section}.")


def check_ranges(obj, ranges: Dict[str, Tuple[type, Optional[float], Optional[float]]],
                 open_ends: Optional[Dict[str, str]] = None, prefix: str = "") -> None:
    """SettingError(prefix + field, problem) for the first field of `obj` of the wrong type or out
    of its range; `ranges`: field -> (int, float, bool or str; lowest; highest), None: unbounded;
    `open_ends`: field -> "below" or "above" where that bound itself is excluded."""
    open_ends = open_ends or {}
    for name, (kind, lo, hi) in ranges.items():
        value, full = getattr(obj, name), f"{prefix}{name}"
        if kind is bool:
            if not isinstance(value, bool):
                raise SettingError(full, f"must be true or false, got {value!r}")
            continue
        if kind is str:
            if not isinstance(value, str):
                raise SettingError(full, f"must be a string, got {value!r}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise SettingError(full, f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        if not math.isfinite(value):
            raise SettingError(full, f"must be a finite number, got {value!r}")
        open_below, open_above = open_ends.get(name) == "below", open_ends.get(name) == "above"
        low_bad = lo is not None and (value <= lo if open_below else value < lo)
        high_bad = hi is not None and (value >= hi if open_above else value > hi)
        if low_bad or high_bad:
            lower = None if lo is None else f"{'above' if open_below else 'at least'} {lo}"
            upper = None if hi is None else f"{'below' if open_above else 'at most'} {hi}"
            raise SettingError(full, f"must be {' and '.join(b for b in (lower, upper) if b)}, got {value!r}")


@dataclass
class ModelConfig:
    resolution: int = 256  # square input/output side in pixels; any multiple of 32
    base_width: int = 64  # channels of the first encoder block (ELEGANT / pix2pix: 64)
    max_width: int = 512  # channel cap; widths double per block: 64,128,256,512,512
    depth: int = 5  # encoder blocks, each stride 2 (the paper: 5)
    seg_decoder: bool = True  # False: ablation "no SD", a single-decoder U-Net as in pix2pix
    face_shape_channel: bool = True  # False: SD predicts the glasses mask only
    feature_sharing: bool = True  # False: SD's features are not passed into FD
    disc_width: int = 64  # PatchGAN first-layer channels
    disc_layers: int = 3  # PatchGAN stride-2 layers (pix2pix n_layers_D=3: 70x70 patches at 256 px)
    local_disc: bool = True  # False: ablation "no local discriminator"

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        _validate(self, "model")
        if self.resolution % 32:
            raise SettingError("model.resolution", f"must be a multiple of 32, got {self.resolution}")
        if self.resolution % (2 ** self.depth) or self.resolution // 2 ** self.depth < 2:
            raise SettingError("model.depth", f"{self.depth} halves the image {self.depth} times: resolution "
                               f"{self.resolution} must be a multiple of 2**{self.depth} and leave at least 2 px")
        if self.resolution // 2 ** self.disc_layers < 2:
            raise SettingError("model.disc_layers", f"{self.disc_layers} stride-2 layers leave less than 2 px of a "
                               f"{self.resolution} px image")
        if not self.seg_decoder and self.feature_sharing:
            self.feature_sharing = False  # nothing to share without SD

    def widths(self) -> Tuple[int, ...]:
        """Channels of encoder blocks 1..depth, e.g. (64, 128, 256, 512, 512)."""
        return tuple(min(self.base_width * 2 ** i, self.max_width) for i in range(self.depth))

    @property
    def mask_channels(self) -> int:
        return 2 if self.face_shape_channel else 1


@dataclass
class LossConfig:
    # Eq. 8 weights. The seed gives none; these follow pix2pix's balance (L1 weight 100 per
    # unit adversarial weight) because L1 is what keeps the face outside the glasses exact.
    lambda_gan_global: float = 1.0  # λ1, eq. 4 on the whole image
    lambda_gan_local: float = 1.0  # λ2, eq. 4 on ŷ ⊙ m_g
    lambda_l1_global: float = 100.0  # λ3, eq. 5 (pix2pix's λ_L1 = 100)
    # λ4: the glasses cover ~5% of a face, so the local L1 (a mean over masked pixels only)
    # gets the same weight as the global one: the edited region counts as much as the rest.
    lambda_l1_local: float = 100.0
    lambda_seg: float = 10.0  # λ5, eq. 6; BCE is ~0.7 at start, ~0.05 trained: keep it visible beside L1
    lambda_id: float = 1.0  # λ6, eq. 7 on L2-normalised embeddings (distance in [0, 2])
    identity: str = "dlib"  # "dlib" (ported dlib ResNet), "none", or a path to an identity checkpoint
    # Apply eq. 7 every N generator steps. On CPU the identity network costs about as much as the
    # rest of a `cpu`-preset step (benchmarks/bench_identity.py), so the cpu preset uses 4.
    id_every: int = 1
    # Real glasses photos (train.real_glasses), which have no ground truth: the global
    # discriminator judges the generator's outputs for them against the glasses-free targets
    # (LSGAN, weight lambda_gan_real), and eq. 7 holds the output to the photo's own identity
    # (weight lambda_id_real). Not in the paper; 0 turns them off.
    lambda_gan_real: float = 0.0
    lambda_id_real: float = 0.0
    # ... and the photos' thin frame lines near the predicted glasses (the strokes the lens blend
    # takes from the generator, found on the photo) must not be strokes in the output any more
    # (losses.frame_lines_loss, weight lambda_lines_real; L1 in [-1, 1] units). Not in the paper.
    lambda_lines_real: float = 0.0
    # ... and where the lens blend would keep the photo (the face seen through the lens, the eyes,
    # and the skin around the glasses that the output already stays close to), the output should
    # be the photo, fine texture included (losses.keep_loss, weight lambda_keep_real; L1 in
    # [-1, 1] units). Not in the paper.
    lambda_keep_real: float = 0.0
    # Weight of both L1 terms (eq. 5) on what the synthesized glasses hide: pixels inside the glasses
    # mask that the glasses change by more than 32 levels, over regions wider than a frame (a lens of
    # sunglasses, a mirror, a thick tint; losses.hidden_weight). There the eyes cannot be seen, L1
    # pulls the output to the mean of the eyes it could be (a smear), and the adversarial and identity
    # terms are left to draw them. 1 is the paper (L1 everywhere); not in the paper below 1.
    l1_hidden: float = 1.0
    # Where eq. 7 looks: "face", the whole output ŷ (the paper), or "glasses", ŷ only where the photo
    # pipeline would paste it (the glasses mask grown and feathered as the pipeline's blend region)
    # and the target y elsewhere (losses.region_identity_loss), so no identity gradient goes to
    # pixels the pipeline throws away. Not in the paper.
    id_region: str = "face"
    # The identity network's activations before pooling, ŷ's against y's at each resolution (a
    # normalised L1, losses.identity_feature_losses), on the same output and steps as eq. 7: eq. 7
    # compares only the pooled embedding. Needs loss.identity="dlib". Not in the paper; 0 is off.
    lambda_id_feat: float = 0.0

    def __post_init__(self):
        self.validate()

    def real_terms(self) -> bool:
        """Whether any term on real glasses photos is on."""
        return max(self.lambda_gan_real, self.lambda_id_real, self.lambda_lines_real, self.lambda_keep_real) > 0

    def real_eyes(self) -> bool:
        """Whether a term on real glasses photos needs their eye landmarks (frame lines, keep)."""
        return max(self.lambda_lines_real, self.lambda_keep_real) > 0

    def validate(self) -> None:
        _validate(self, "loss")
        if self.id_region not in ID_REGIONS:
            raise SettingError("loss.id_region", f"must be one of {', '.join(ID_REGIONS)}, got {self.id_region!r}")


@dataclass
class OptimConfig:
    lr_g: float = 2e-4  # Adam, as pix2pix
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        _validate(self, "optim")


@dataclass
class TrainConfig:
    batch_size: int = 8
    steps: int = 100_000
    checkpoint_every: int = 1000  # steps between atomic checkpoints
    sample_every: int = 500  # steps between sample grids
    log_every: int = 50  # steps between JSON-lines log records
    # data loader processes synthesizing glasses on the fly; "auto": the cores this process may use,
    # less two (the training process and its pinning thread), shared among the processes of a run
    num_workers: Union[int, str] = "auto"
    # Share of training pairs drawn without glasses (x == y, empty glasses mask). Not in the paper,
    # whose pairs all wear glasses; without them the model "finds" glasses on every face.
    no_glasses: float = 0.1
    seed: int = 0
    compile: bool = False  # torch.compile the networks (minutes of compiling first; then faster steps on a GPU)
    # the networks' memory format on CUDA: channels_last (NHWC) or, False, NCHW, which measured faster
    # in bf16 there (issue 14: 675 vs 535 img/s for `paper`, instance norm copying between layouts)
    channels_last: bool = False
    # a checkpoint whose weights start a new run: the generator, and the discriminators where it
    # holds them (fresh optimizers); "" starts from random weights
    init: str = ""
    # share of synthesized glasses drawn as thin metal or rimless frames (GlassesDistribution.thin()),
    # the frames real photos keep most often; 0: the ordinary mix only
    thin_frames: float = 0.0
    # share drawn as sunglasses and dark or mirrored lenses reflecting a scene, with thick dark
    # frames (GlassesDistribution.dark()), what real photos keep faded or ghosted; 0: none
    dark_glasses: float = 0.0
    # a folder of RGBA glasses images (e.g. real glasses cut out by `byeglasses cut-glasses`) and
    # the share of synthesized glasses taken from it instead of drawn; "" / 0: none
    glasses_images: str = ""
    image_probability: float = 0.0
    # a folder of real photos of people wearing glasses, framed like --faces, for the
    # loss.lambda_gan_real / lambda_id_real terms; "" for none
    real_glasses: str = ""
    # "auto": bfloat16 autocast on CUDA, float32 elsewhere; "bf16": bfloat16 autocast on the CPU too
    # (1.6x the steps per second on this project's CPU, AVX512-BF16: benchmarks/bench_train.py --precisions);
    # "fp32": float32 everywhere
    precision: str = "auto"
    # decay per step of an exponential moving average of the generator's weights, kept beside it
    # (in the training checkpoint as generator_ema.*) and written as model.safetensors at the end;
    # 0: none, model.safetensors is the generator as trained. 0.999 averages about the last 1,000
    # steps; 0.99 over a short CPU run did not help (docs/verification.md, "The thin-frames run continued")
    ema: float = 0.0

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if isinstance(self.num_workers, str) and self.num_workers.strip().isdigit():
            self.num_workers = int(self.num_workers)
        if self.num_workers != "auto" and not (isinstance(self.num_workers, int) and not isinstance(
                self.num_workers, bool) and 0 <= self.num_workers <= 256):
            raise SettingError("train.num_workers", f"must be at least 0 and at most 256, or \"auto\", got {self.num_workers!r}")
        _validate(self, "train")
        if self.thin_frames + self.dark_glasses > 1:
            raise SettingError("train.dark_glasses", f"and train.thin_frames ({self.thin_frames:g}) are shares of "
                               f"the synthesized glasses: together at most 1, got {self.dark_glasses:g}")
        if self.image_probability > 0 and not self.glasses_images:
            raise SettingError("train.image_probability", f"is {self.image_probability:g}, but no "
                               "train.glasses_images folder is given to take the images from")
        if self.precision not in PRECISIONS:
            raise SettingError("train.precision", f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def workers(self, processes: int = 1) -> int:
        """DataLoader workers per process: num_workers, or for "auto" what the cores allow."""
        if self.num_workers != "auto":
            return int(self.num_workers)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // max(processes, 1) - 2)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "custom"

    def validate(self) -> None:
        """SettingError("section.field", problem) for the first field out of range; run it again
        after changing fields in place."""
        self.model.validate()
        self.loss.validate()
        self.optim.validate()
        self.train.validate()
        real_terms = self.loss.real_terms()
        if real_terms and not self.train.real_glasses:
            raise SettingError("train.real_glasses", "is needed by loss.lambda_gan_real / lambda_id_real / "
                               "lambda_lines_real / lambda_keep_real: a folder of real photos of people wearing glasses")
        if self.train.real_glasses and not real_terms:
            raise SettingError("train.real_glasses", "is set, but loss.lambda_gan_real, lambda_id_real, "
                               "lambda_lines_real and lambda_keep_real are all 0: set one of them, or leave the "
                               "folder out")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Config":
        return cls(
            model=_build(ModelConfig, d.get("model", {}), "model"),
            loss=_build(LossConfig, d.get("loss", {}), "loss"),
            optim=_build(OptimConfig, d.get("optim", {}), "optim"),
            train=_build(TrainConfig, d.get("train", {}), "train"),
            preset=d.get("preset", "custom"),
        )


def _build(klass, values: Dict[str, Any], section: str):
    known = {f.name for f in dataclasses.fields(klass)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ByeGlassesError(f"unknown config field(s) in [{section}]: {', '.join(unknown)}")
    return klass(**values)


def _paper() -> Config:
    return Config(preset="paper")


def _cpu() -> Config:
    # Small enough that two CPU cores train it in hours: 128 px, widths 32..256.
    return Config(
        model=ModelConfig(resolution=128, base_width=32, max_width=256, disc_width=32, disc_layers=3),
        loss=LossConfig(id_every=4),
        train=TrainConfig(batch_size=8, checkpoint_every=250, sample_every=250, log_every=25),
        preset="cpu",
    )


def _tiny() -> Config:
    # For tests: trains in seconds.
    return Config(
        model=ModelConfig(resolution=64, base_width=8, max_width=32, disc_width=8, disc_layers=2),
        loss=LossConfig(identity="none"),
        train=TrainConfig(batch_size=2, checkpoint_every=5, sample_every=5, log_every=1, num_workers=0),
        preset="tiny",
    )


def _ablation(base, name, **model_changes):
    def make():
        cfg = base()
        cfg.model = dataclasses.replace(cfg.model, **model_changes)
        cfg.preset = name
        return cfg
    return make


def _no_id(base, name):
    def make():
        cfg = base()
        cfg.loss.lambda_id = 0.0
        cfg.loss.identity = "none"
        cfg.preset = name
        return cfg
    return make


PRESETS = {
    "paper": _paper,
    "cpu": _cpu,
    "tiny": _tiny,
    # The paper's ablations, on the cpu budget.
    "cpu-no-sd": _ablation(_cpu, "cpu-no-sd", seg_decoder=False),
    "cpu-no-face-shape": _ablation(_cpu, "cpu-no-face-shape", face_shape_channel=False),
    "cpu-no-sharing": _ablation(_cpu, "cpu-no-sharing", feature_sharing=False),
    "cpu-no-local-d": _ablation(_cpu, "cpu-no-local-d", local_disc=False),
    "cpu-no-id": _no_id(_cpu, "cpu-no-id"),
}


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ByeGlassesError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()
