"""The paper's losses (eq. 3-8), each a small pure function."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def local(image: torch.Tensor, glasses_mask: torch.Tensor) -> torch.Tensor:
    """y_Local = y ⊙ m_g: (B,3,H,W) * (B,1,H,W)."""
    return image * glasses_mask


def lsgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 3: E[(D(y) - 1)^2] + E[D(ŷ)^2]."""
    return (d_real - 1).pow(2).mean() + d_fake.pow(2).mean()


def lsgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 4: E[(D(ŷ) - 1)^2]."""
    return (d_fake - 1).pow(2).mean()


def l1_global_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 5: E|y - ŷ|."""
    return (y - y_hat).abs().mean()


def l1_local_loss(y_hat: torch.Tensor, y: torch.Tensor, glasses_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 5 on y_Local, ŷ_Local, averaged over the masked pixels only (not the whole image),
    so that small glasses weigh as much as large ones. (B,3,H,W), (B,1,H,W)."""
    diff = (local(y, glasses_mask) - local(y_hat, glasses_mask)).abs().sum()
    area = glasses_mask.sum() * y.shape[1]
    return diff / area.clamp_min(1.0)


def seg_loss(m_hat: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Eq. 6: binary cross-entropy over both mask channels (glasses, face shape)."""
    return F.binary_cross_entropy(m_hat.float().clamp(1e-6, 1 - 1e-6), m.float())


def identity_loss(identity_extractor: Optional[torch.nn.Module], y_hat: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
    """Eq. 7: E||IE(ŷ) - IE(y)||_2 with a frozen IE; zero when there is none."""
    if identity_extractor is None:
        return y_hat.new_zeros(())
    with torch.no_grad():
        target = identity_extractor(y)
    return (identity_extractor(y_hat) - target).norm(dim=1).mean()
