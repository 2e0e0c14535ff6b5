"""The paper's identity extractor: ResNet-34 whose layer4 output becomes a 512-d feature, and
the ArcFace additive angular margin head it is trained with (Deng et al., CVPR 2019)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class IdentityConfig:
    layers: Tuple[int, ...] = (3, 4, 6, 3)  # basic blocks per stage: ResNet-34
    base_width: int = 64  # channels of stage 1; doubled per stage (64, 128, 256, 512)
    embedding_dim: int = 512  # the identity feature
    input_size: int = 112  # canonical crops are resized to this side
    dropout: float = 0.0  # before the embedding FC (insightface: 0)

    def __post_init__(self):
        from ..model.config import check_ranges

        if len(self.layers) != 4:
            raise ValueError(f"IdentityConfig.layers needs 4 stages, got {self.layers}")
        check_ranges(self, {"base_width": (int, 1, 4096), "embedding_dim": (int, 1, 65536),
                            "input_size": (int, 16, 4096), "dropout": (float, 0, 1)}, {"dropout": "above"})

    def to_dict(self) -> dict:
        return {**asdict(self), "layers": list(self.layers)}

    @classmethod
    def from_dict(cls, d: dict) -> "IdentityConfig":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**d, "layers": tuple(d.get("layers", cls.layers))})


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the (projected) input, -> ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class IdentityExtractor(nn.Module):
    """(B, 3, R, R) canonical crops in [-1, 1] -> (B, D) identity features (not normalised).

    ResNet-34 with a 3x3 stride-1 stem (face-recognition style, for 112 px inputs), stages of
    stride 2 (112 -> 7), then insightface's output layer: BN -> dropout -> FC -> BN."""

    def __init__(self, config: IdentityConfig = IdentityConfig()):
        super().__init__()
        self.config = config
        w = config.base_width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        stages, cin = [], w
        for i, n in enumerate(config.layers):
            cout = w * 2 ** i
            stages.append(nn.Sequential(*[BasicBlock(cin if j == 0 else cout, cout, 2 if j == 0 else 1)
                                          for j in range(n)]))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        side = math.ceil(config.input_size / 2 ** len(config.layers))
        self.bn = nn.BatchNorm2d(cin)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(cin * side * side, config.embedding_dim)
        self.features = nn.BatchNorm1d(config.embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.config.input_size
        x = x.contiguous()
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, 7, 7) at 112 px
        x = self.dropout(torch.flatten(self.bn(x), 1))
        return self.features(self.fc(x))


class ArcFace(nn.Module):
    """Additive angular margin logits: s * cos(theta_y + m) for the true class, s * cos(theta_j)
    for the others; train with cross-entropy on them."""

    def __init__(self, embedding_dim: int, num_classes: int, s: float = 64.0, m: float = 0.5):
        super().__init__()
        self.s, self.m = s, m
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1)).clamp(-1 + 1e-7, 1 - 1e-7)
        target = cos.gather(1, labels[:, None])
        with_margin = torch.cos(torch.acos(target) + self.m)
        # past theta = pi - m the margin would raise the logit again: use cos - m*sin(m) there
        with_margin = torch.where(target > math.cos(math.pi - self.m), with_margin,
                                  target - self.m * math.sin(self.m))
        return self.s * cos.scatter(1, labels[:, None], with_margin)

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(embeddings, labels), labels)
