"""ByeGlassesGAN networks (paper Sec. 3.3): encoder E, face decoder FD, segmentation decoder SD,
and the pix2pix PatchGAN used as global and local discriminator."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from .config import ModelConfig


def instance_norm_keeping_layout(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                                 eps: float) -> torch.Tensor:
    """Instance norm of (B, C, H, W) `x` as reductions over H, W (in float32) and elementwise ops,
    so the output has the memory layout of the input."""
    xf = x.float()
    var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
    y = (xf - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
    return y.to(x.dtype)


class InstanceNorm2d(nn.InstanceNorm2d):
    """nn.InstanceNorm2d (same parameters, same values) that leaves a channels_last CUDA tensor
    channels_last. PyTorch's own runs batch norm on a (1, B*C, H, W) view, which on CUDA needs NCHW
    memory: a channels_last tensor is copied to NCHW and back (issue 14's profile: most of a step's
    GPU time). On the CPU PyTorch's handles channels_last itself, faster than this."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.is_cuda and x.dim() == 4 and not self.track_running_stats and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)):
            return instance_norm_keeping_layout(x, self.weight, self.bias, self.eps)
        return super().forward(x)


def down_block(c_in: int, c_out: int) -> nn.Sequential:
    """conv (stride 2) → InstanceNorm → LeakyReLU: halves the resolution."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 4, stride=2, padding=1),
        InstanceNorm2d(c_out, affine=True),
        nn.LeakyReLU(0.2, inplace=True),
    )


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """transposed conv (stride 2) → InstanceNorm → LeakyReLU: doubles the resolution."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
        InstanceNorm2d(c_out, affine=True),
        nn.LeakyReLU(0.2, inplace=True),
    )


class Encoder(nn.Module):
    """E: `depth` stride-2 blocks. Returns every block's features, finest first:
    [(B, w1, R/2, R/2), (B, w2, R/4, R/4), ..., (B, wD, R/2^D, R/2^D)]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        widths = cfg.widths()
        self.blocks = nn.ModuleList(down_block(c_in, c_out) for c_in, c_out in zip((3,) + widths, widths))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


def decoder_widths(cfg: ModelConfig) -> Tuple[int, ...]:
    """Output channels of decoder blocks 1..depth (coarse to fine), mirroring the encoder:
    for widths 64..512: (512, 256, 128, 64, 64)."""
    widths = cfg.widths()
    return tuple(widths[max(cfg.depth - 2 - k, 0)] for k in range(cfg.depth))


class _Decoder(nn.Module):
    """`depth` up blocks, then an output block (stride-1 transposed conv → activation).

    Block k (k = 1..depth) takes the previous block's output (the bottleneck for k = 1)
    concatenated with the U-Net skip from encoder block depth-k+1 (k > 1) and, for FD,
    with SD's block k-1 output (the paper's feature sharing)."""

    def __init__(self, cfg: ModelConfig, out_channels: int, activation: nn.Module, shared_widths=None):
        super().__init__()
        enc = cfg.widths()
        dec = decoder_widths(cfg)
        blocks = []
        for k in range(cfg.depth):
            c_in = enc[-1] if k == 0 else dec[k - 1] + enc[cfg.depth - 1 - k]
            if shared_widths is not None and k > 0:
                c_in += shared_widths[k - 1]
            blocks.append(up_block(c_in, dec[k]))
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Sequential(nn.ConvTranspose2d(dec[-1], out_channels, 3, stride=1, padding=1), activation)

    def forward(self, enc_feats: List[torch.Tensor], shared: Optional[List[torch.Tensor]] = None):
        """Returns (output, [block outputs coarse to fine])."""
        depth = len(self.blocks)
        h = enc_feats[-1]
        feats = []
        for k, block in enumerate(self.blocks):
            if k > 0:
                parts = [h, enc_feats[depth - 1 - k]]
                if shared is not None:
                    parts.append(shared[k - 1])
                h = torch.cat(parts, dim=1)
            h = block(h)
            feats.append(h)
        return self.out(h), feats


class SegmentationDecoder(_Decoder):
    """SD: predicts m̂ (eq. 2), (B, 2, R, R) in [0, 1]: glasses, complete face shape."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, cfg.mask_channels, nn.Sigmoid())


class FaceDecoder(_Decoder):
    """FD: synthesizes ŷ (eq. 1), (B, 3, R, R) in [-1, 1], guided by SD's features."""

    def __init__(self, cfg: ModelConfig):
        shared = decoder_widths(cfg) if cfg.feature_sharing else None
        super().__init__(cfg, 3, nn.Tanh(), shared_widths=shared)
        self.uses_shared = shared is not None


class Generator(nn.Module):
    """G = E + FD + SD. forward(x) -> (ŷ (B,3,R,R) in [-1,1], m̂ (B,C,R,R) in [0,1] or None)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.seg_decoder = SegmentationDecoder(cfg) if cfg.seg_decoder else None
        self.face_decoder = FaceDecoder(cfg)

    def forward(self, x: torch.Tensor):
        feats = self.encoder(x)
        m_hat, seg_feats = (None, None)
        if self.seg_decoder is not None:
            m_hat, seg_feats = self.seg_decoder(feats)
        y_hat, _ = self.face_decoder(feats, seg_feats if self.face_decoder.uses_shared else None)
        return y_hat, m_hat


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN: (B, 3, R, R) -> (B, 1, P, P) real/fake scores per patch (LSGAN: no sigmoid)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w, n = cfg.disc_width, cfg.disc_layers
        layers = [nn.Conv2d(3, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        c = w
        for i in range(1, n + 1):
            c_out = w * min(2 ** i, 8)
            stride = 2 if i < n else 1
            layers += [
                nn.Conv2d(c, c_out, 4, stride=stride, padding=1),
                InstanceNorm2d(c_out, affine=True),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
