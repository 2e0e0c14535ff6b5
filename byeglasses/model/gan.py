"""ByeGlassesGAN: the generator, both discriminators, the frozen identity extractor, their
optimizers, and one training step (discriminators first, then the generator with eq. 8).

The step never waits for the device: it returns its loss terms as 0-dim tensors on the device,
for the caller to read when it logs."""

from __future__ import annotations

import contextlib
from typing import Dict, Optional

import torch
from torch import nn

from ..errors import SettingError
from .config import Config
from .losses import (frame_line_targets, frame_lines_loss, hidden_weight, identity_feature_losses, identity_loss,
                     keep_loss, keep_targets, l1_global_loss, l1_local_loss, local, lsgan_d_loss, lsgan_g_loss,
                     pasted_composite, region_identity_loss, seg_loss)
from .networks import Generator, PatchDiscriminator

LOSS_TERMS = ("d_global", "d_local", "g_global", "g_local", "l1_global", "l1_local", "seg", "id", "g_total")
# with real glasses photos in the batch (x_real): the discriminator's and the generator's
# adversarial terms on their outputs, their identity term, the frame lines left in them, and how far
# they are from what the lens blend keeps of the photo
REAL_TERMS = ("d_real", "g_real", "id_real", "lines_real", "keep_real")
# losses.frame_lines_loss: strokes this wide (of the side), as the lens blend's frame lines
LINES_WIDTH = 7 / 256


def adam(params, lr: float, o) -> torch.optim.Adam:
    """Adam updating all parameters in one fused kernel on CUDA, in foreach (multi-tensor) ops elsewhere."""
    params = list(params)
    on_cuda = bool(params) and all(p.device.type == "cuda" for p in params)
    return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), **({"fused": True} if on_cuda else {"foreach": True}))


class ByeGlassesGAN(nn.Module):
    """`device`: where the networks and the optimizers' states live (the optimizers are made for it:
    fused on CUDA). config.train.channels_last sets the networks' memory format, config.train.compile
    compiles them (on their first call)."""

    def __init__(self, config: Config, identity_extractor: Optional[nn.Module] = None, device=None):
        super().__init__()
        self.config = config
        m, o = config.model, config.optim
        self.generator = Generator(m)
        self.disc_global = PatchDiscriminator(m)
        self.disc_local = PatchDiscriminator(m) if m.local_disc else None
        # Frozen and kept out of state_dict/parameters: it is never trained or saved here.
        self.__dict__["identity_extractor"] = identity_extractor
        if identity_extractor is not None:
            identity_extractor.eval().requires_grad_(False)
        if config.loss.lambda_id_feat > 0 and not hasattr(identity_extractor, "features"):
            raise SettingError("loss.lambda_id_feat", "needs an identity network that gives its activations: "
                               "loss.identity=dlib (the default)")
        if device is not None:
            self.to(device)
        if config.train.channels_last:
            self.to(memory_format=torch.channels_last)
        if config.train.compile:
            self.compile_networks()
        self.opt_g = adam(self.generator.parameters(), o.lr_g, o)
        d_params = list(self.disc_global.parameters())
        if self.disc_local is not None:
            d_params += list(self.disc_local.parameters())
        self.opt_d = adam(d_params, o.lr_d, o)

    def compile_networks(self, **kwargs) -> None:
        """torch.compile the networks' forward passes in place (parameter names are unchanged)."""
        for net in (self.generator, *self.discriminators().values(), self.identity_extractor):
            if net is not None:
                net.compile(**kwargs)

    def discriminators(self):
        return {"disc_global": self.disc_global, **({"disc_local": self.disc_local} if self.disc_local else {})}

    def _autocast(self, device: torch.device):
        """bfloat16 autocast where train.precision asks for it ("auto": on CUDA only)."""
        precision = self.config.train.precision
        if (device.type == "cuda" and precision in ("auto", "bf16")) or (device.type == "cpu" and precision == "bf16"):
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def training_step(self, batch: Dict[str, torch.Tensor], step: int = 0) -> Dict[str, torch.Tensor]:
        """batch: x, y (B,3,R,R) in [-1,1]; mask (B,2,R,R): glasses, face shape; optionally x_real
        (B',3,R,R): real glasses photos, for loss.lambda_gan_real / lambda_id_real / lambda_lines_real /
        lambda_keep_real (the last two also need eyes_real (B',12,2): their eye landmarks). `step`
        (0-based) decides whether eq. 7 applies (every `loss.id_every` steps). Returns every loss
        term as a 0-dim float32 tensor on the device (reading one waits for the step to finish)."""
        cfg, lam = self.config.model, self.config.loss
        x, y, mask = batch["x"], batch["y"], batch["mask"]
        m_g = mask[:, :1]  # (B,1,R,R) ground-truth glasses mask
        mask_target = mask[:, : cfg.mask_channels]
        amp = self._autocast(x.device)

        x_real = batch.get("x_real")
        real = x_real is not None and lam.real_terms()
        with amp:
            y_hat, m_hat = self.generator(x)
            y_real, m_real = self.generator(x_real) if real else (None, None)
        y_hat = y_hat.float()
        y_real = None if y_real is None else y_real.float()

        # Discriminators (eq. 3, global and local; the global one also on outputs for real photos).
        self.opt_d.zero_grad(set_to_none=True)
        with amp:
            fake = y_hat.detach()
            d_global = lsgan_d_loss(self.disc_global(y), self.disc_global(fake))
            d_local = (lsgan_d_loss(self.disc_local(local(y, m_g)), self.disc_local(local(fake, m_g)))
                       if self.disc_local is not None else y.new_zeros(()))
            d_real = (lsgan_d_loss(self.disc_global(y), self.disc_global(y_real.detach()))
                      if real and lam.lambda_gan_real > 0 else y.new_zeros(()))
        (d_global + d_local + d_real).float().backward()
        self.opt_d.step()

        # Generator (eq. 8). The discriminators get gradients here but are not stepped.
        self.opt_g.zero_grad(set_to_none=True)
        with amp:
            g_global = lsgan_g_loss(self.disc_global(y_hat))
            g_local = (lsgan_g_loss(self.disc_local(local(y_hat, m_g)))
                       if self.disc_local is not None else y.new_zeros(()))
        weight = hidden_weight(x, y, m_g, lam.l1_hidden) if lam.l1_hidden < 1 else None
        l1_g = l1_global_loss(y_hat, y, weight)
        l1_l = l1_local_loss(y_hat, y, m_g, weight)
        l_seg = seg_loss(m_hat, mask_target) if m_hat is not None else y.new_zeros(())
        with amp:
            use_id = (lam.lambda_id or lam.lambda_id_feat) and step % max(lam.id_every, 1) == 0
            l_feat = y.new_zeros(())
            if not use_id:
                l_id = y.new_zeros(())
            elif lam.lambda_id_feat > 0:
                seen = pasted_composite(y_hat, y, m_g) if lam.id_region == "glasses" else y_hat
                l_id, l_feat = identity_feature_losses(self.identity_extractor, seen, y)
            elif lam.id_region == "glasses":
                l_id = region_identity_loss(self.identity_extractor, y_hat, y, m_g)
            else:
                l_id = identity_loss(self.identity_extractor, y_hat, y)
            g_real = (lsgan_g_loss(self.disc_global(y_real)) if real and lam.lambda_gan_real > 0
                      else y.new_zeros(()))
            id_real = (identity_loss(self.identity_extractor, y_real, x_real)
                       if real and lam.lambda_id_real > 0 and step % max(lam.id_every, 1) == 0 else y.new_zeros(()))
        lines_real = keep_real = y.new_zeros(())
        if real and lam.real_eyes():
            if m_real is None or "eyes_real" not in batch:
                raise ValueError("loss.lambda_lines_real / lambda_keep_real need the segmentation decoder and "
                                 "eyes_real in the batch")
            lines = frame_line_targets(x_real, m_real[:, 0], batch["eyes_real"])
            if lam.lambda_lines_real > 0:
                lines_real = frame_lines_loss(y_real, lines, LINES_WIDTH)
            if lam.lambda_keep_real > 0:
                keep_real = keep_loss(y_real, *keep_targets(x_real, y_real, m_real[:, 0], batch["eyes_real"], lines))
        g_total = (lam.lambda_gan_global * g_global + lam.lambda_gan_local * g_local
                   + lam.lambda_l1_global * l1_g + lam.lambda_l1_local * l1_l
                   + lam.lambda_seg * l_seg + lam.lambda_id * l_id.float() + lam.lambda_id_feat * l_feat.float()
                   + lam.lambda_gan_real * g_real.float() + lam.lambda_id_real * id_real.float()
                   + lam.lambda_lines_real * lines_real + lam.lambda_keep_real * keep_real)
        g_total.backward()
        self.opt_g.step()

        terms = (d_global, d_local, g_global, g_local, l1_g, l1_l, l_seg, l_id, g_total)
        out = {name: t.detach().float() for name, t in zip(LOSS_TERMS, terms)}
        if lam.lambda_id_feat > 0:
            out["id_feat"] = l_feat.detach().float()
        if real:
            out.update({name: t.detach().float()
                        for name, t in zip(REAL_TERMS, (d_real, g_real, id_real, lines_real, keep_real))})
        return out
