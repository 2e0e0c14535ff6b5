"""insightface arcface_torch IResNet (r18/r34/r50/r100) checkpoints, loaded without insightface and
without unpickling (`torch.load(weights_only=True)`). Input: 112x112 RGB in [-1, 1], ArcFace framing."""

from __future__ import annotations

import re
from typing import Dict, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
# insightface's 5-point template in a 112x112 crop: eye centres, nose tip, mouth corners
ARCFACE_5 = np.array([(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
                      (41.5493, 92.3655), (70.7299, 92.2041)])


class _Block(nn.Module):
    """Pre-activation-style block: BN -> conv3x3 -> BN -> PReLU -> conv3x3/stride -> BN, + shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn_in = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn_mid = nn.BatchNorm2d(cout)
        self.act = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn_out = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) \
            if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.bn_out(self.conv2(self.act(self.bn_mid(self.conv1(self.bn_in(x))))))
        return y + (x if self.shortcut is None else self.shortcut(x))


class IResNet(nn.Module):
    """(B, 3, 112, 112) in [-1, 1] -> (B, 512)."""

    def __init__(self, layers: Tuple[int, ...] = DEPTHS[50], num_features: int = 512):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        stages, cin = [], 64
        for i, n in enumerate(layers):
            cout = 64 * 2 ** i
            stages.append(nn.Sequential(*[_Block(cin if j == 0 else cout, cout, 2 if j == 0 else 1)
                                          for j in range(n)]))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(512)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features)

    def forward(self, x):
        x = self.bn(self.stages(self.stem(x)))
        return self.features(self.fc(torch.flatten(x, 1)))


# insightface key -> ours
_KEY_MAP = [
    (r"^conv1\.", "stem.0."), (r"^bn1\.", "stem.1."), (r"^prelu\.", "stem.2."),
    (r"^layer(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}."),
    (r"\.bn1\.", ".bn_in."), (r"\.bn2\.", ".bn_mid."), (r"\.bn3\.", ".bn_out."), (r"\.prelu\.", ".act."),
    (r"\.downsample\.", ".shortcut."), (r"^bn2\.", "bn."),
]


def insightface_to_ours(key: str) -> str:
    for pattern, repl in _KEY_MAP:
        key = re.sub(pattern, repl, key)
    return key


def ours_to_insightface(key: str) -> str:
    """The inverse map, to write a model in insightface's layout (used by the tests)."""
    for pattern, repl in [(r"^stem\.0\.", "conv1."), (r"^stem\.1\.", "bn1."), (r"^stem\.2\.", "prelu."),
                          (r"^stages\.(\d)\.", lambda m: f"layer{int(m.group(1)) + 1}."),
                          (r"\.bn_in\.", ".bn1."), (r"\.bn_mid\.", ".bn2."), (r"\.bn_out\.", ".bn3."),
                          (r"\.act\.", ".prelu."), (r"\.shortcut\.", ".downsample."), (r"^bn\.", "bn2.")]:
        key = re.sub(pattern, repl, key)
    return key


def load_iresnet(path: str) -> IResNet:
    """An IResNet from an arcface_torch `.pth` state dict; depth inferred from the keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle / zip errors, or a file that is not a plain state dict
        raise CheckpointError(f"{path}: not a readable PyTorch state dict ({type(e).__name__}: {e})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (an insightface backbone state dict)")
    state = {re.sub(r"^(module\.|backbone\.)+", "", k): v for k, v in state.items()}
    counts = [1 + max([int(m.group(1)) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k))], default=-1)
              for i in range(1, 5)]
    layers = tuple(counts)
    if layers not in DEPTHS.values():
        raise CheckpointError(f"{path}: blocks per stage {layers} match no insightface IResNet "
                              f"({', '.join(f'r{d}: {v}' for d, v in DEPTHS.items())})")
    num_features = state["features.weight"].shape[0] if "features.weight" in state else 512
    model = IResNet(layers, num_features)
    given: Dict[str, torch.Tensor] = {insightface_to_ours(k): v for k, v in state.items()}
    own = model.state_dict()
    missing = sorted(ours_to_insightface(k) for k in set(own) - set(given) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(ours_to_insightface(k) for k in set(given) - set(own))
    shapes = [f"{ours_to_insightface(k)}: file {tuple(given[k].shape)} vs r{_depth(layers)} {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(given)) if given[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        from ..model.weights import mismatch_report

        raise CheckpointError(mismatch_report(f"{path}: does not fit insightface iresnet r{_depth(layers)}",
                                              missing, unexpected, shapes))
    model.load_state_dict({k: v if k.endswith("num_batches_tracked") else v.float() for k, v in given.items()},
                          strict=False)
    return model.eval()


def _depth(layers: Tuple[int, ...]) -> int:
    return next(d for d, v in DEPTHS.items() if v == layers)
