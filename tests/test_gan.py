import pytest
import torch

from byeglasses.errors import SettingError
from byeglasses.model.config import get_preset
from byeglasses.model.gan import LOSS_TERMS, ByeGlassesGAN
from byeglasses.model.networks import Generator


def _two_pairs(res):
    g = torch.Generator().manual_seed(0)
    # smooth random images, like faces rather than white noise
    y = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, size=res,
                                        mode="bilinear", align_corners=False)
    mask = torch.zeros(2, 2, res, res)
    mask[:, 0, res // 3: res // 2, res // 5: 4 * res // 5] = 1  # a band where the "glasses" are
    mask[:, 1, res // 8:, res // 8: 7 * res // 8] = 1
    x = torch.where(mask[:, :1].bool(), torch.tensor([-0.9, -0.9, 0.8]).view(1, 3, 1, 1), y)
    return {"x": x, "y": y, "mask": mask}


def test_step_returns_every_finite_term():
    torch.manual_seed(0)
    gan = ByeGlassesGAN(get_preset("tiny"))
    terms = gan.training_step(_two_pairs(64))
    assert set(terms) == set(LOSS_TERMS)
    # 0-dim tensors left on the device: the step does not wait for it
    assert all(v.dim() == 0 and v.dtype == torch.float32 and not v.requires_grad for v in terms.values())
    assert all(torch.isfinite(v) for v in terms.values())


def test_step_uses_identity_extractor():
    torch.manual_seed(0)
    ie = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 16))
    cfg = get_preset("tiny")
    cfg.loss.lambda_id = 1.0
    gan = ByeGlassesGAN(cfg, identity_extractor=ie)
    before = [p.clone() for p in ie.parameters()]
    terms = gan.training_step(_two_pairs(64))
    assert terms["id"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before, ie.parameters()))  # stays frozen


def test_small_model_overfits_two_pairs():
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    cfg.optim.lr_g = 1e-3
    gan = ByeGlassesGAN(cfg)
    batch = _two_pairs(64)
    first = gan.training_step(batch)["l1_global"]
    for _ in range(60):
        last = gan.training_step(batch)["l1_global"]
    assert last <= 0.5 * first, (first, last)


def test_identity_loss_applies_every_id_every_steps():
    ie = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 16))
    cfg = get_preset("tiny")
    cfg.loss.lambda_id, cfg.loss.id_every = 1.0, 3
    gan = ByeGlassesGAN(cfg, identity_extractor=ie)
    used = [gan.training_step(_two_pairs(64), step=s)["id"] > 0 for s in range(6)]
    assert used == [True, False, False, True, False, False]


def test_adam_kind_follows_the_device():
    gan = ByeGlassesGAN(get_preset("tiny"), device="cpu")
    assert gan.opt_g.defaults["foreach"] and not gan.opt_g.defaults.get("fused")
    assert next(gan.generator.parameters()).device.type == "cpu"


def test_compiled_step_matches_eager():
    """train.compile=true (torch.compile of the networks) takes the same steps as eager mode."""
    terms = {}
    for compiled in (False, True):
        cfg = get_preset("tiny")
        cfg.train.compile = compiled
        torch.manual_seed(0)
        gan = ByeGlassesGAN(cfg)
        batch = _two_pairs(64)
        terms[compiled] = [gan.training_step(batch, step=s) for s in range(2)]
        names = sorted(gan.generator.state_dict())
    assert names == sorted(Generator(get_preset("tiny").model).state_dict())  # checkpoints keep their names
    for eager, comp in zip(terms[False], terms[True]):
        for k in LOSS_TERMS:
            assert torch.allclose(eager[k], comp[k], rtol=1e-3, atol=1e-4), (k, eager[k], comp[k])


def test_bf16_precision_autocasts_on_the_cpu():
    """train.precision=bf16 runs the networks in bfloat16 on the CPU too; "auto" keeps float32 there.
    The loss terms come back as float32 either way, and bf16 takes nearly the same step."""
    seen, terms = {}, {}
    for precision in ("auto", "bf16"):
        cfg = get_preset("tiny")
        cfg.train.precision = precision
        torch.manual_seed(0)
        gan = ByeGlassesGAN(cfg)
        conv = next(m for m in gan.generator.modules() if isinstance(m, torch.nn.Conv2d))

        def record(module, args, out, p=precision):
            seen.setdefault(p, out.dtype)

        hook = conv.register_forward_hook(record)
        terms[precision] = gan.training_step(_two_pairs(64))
        hook.remove()
    assert seen == {"auto": torch.float32, "bf16": torch.bfloat16}
    for name, value in terms["bf16"].items():
        assert value.dtype == torch.float32 and torch.isfinite(value)
    assert terms["bf16"]["l1_global"] == pytest.approx(terms["auto"]["l1_global"].item(), rel=0.05)
    with pytest.raises(SettingError, match="train.precision"):
        cfg = get_preset("tiny")
        cfg.train.precision = "fp16"
        cfg.validate()


def test_l1_hidden_lowers_the_l1_terms_on_what_the_glasses_hide():
    # _two_pairs' glasses hide a whole band of the face (an opaque lens): with loss.l1_hidden the L1
    # terms count less there, from the same weights; everything else in the step is the same
    terms = {}
    for floor in (1.0, 0.1):
        torch.manual_seed(0)
        cfg = get_preset("tiny")
        cfg.loss.l1_hidden = floor
        cfg.loss.lambda_id = 0
        terms[floor] = ByeGlassesGAN(cfg).training_step(_two_pairs(64))
    assert terms[0.1]["l1_local"] < 0.5 * terms[1.0]["l1_local"]
    assert terms[0.1]["l1_global"] < terms[1.0]["l1_global"]
    assert torch.equal(terms[0.1]["d_global"], terms[1.0]["d_global"])  # the discriminators' step is untouched


def test_l1_hidden_is_checked():
    cfg = get_preset("tiny")
    cfg.loss.l1_hidden = 1.5
    with pytest.raises(SettingError, match="l1_hidden"):
        cfg.loss.validate()


def _small_ie():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(4),
                               torch.nn.Flatten(), torch.nn.Linear(128, 16)).requires_grad_(False)


def test_region_identity_loss_looks_only_where_the_pipeline_pastes():
    from byeglasses.model.losses import identity_loss, pasted_region, region_identity_loss
    from byeglasses.pipeline.geometry import blend_weight
    batch = _two_pairs(64)
    y, m_g = batch["y"], batch["mask"][:, :1]
    ie = _small_ie()
    # at the model's 256 px it is the pipeline's blend region for the same mask, to within a few %
    big = torch.nn.functional.interpolate(m_g, size=256)
    assert abs(pasted_region(big)[0, 0].numpy() - blend_weight(big[0, 0].numpy())).max() < 0.05
    w = pasted_region(m_g)
    # an output wrong everywhere: the region loss sees only its pasted part, the paper's the whole
    y_hat = (y + 0.5 * torch.randn_like(y)).clamp(-1, 1).requires_grad_(True)
    loss = region_identity_loss(ie, y_hat, y, m_g)
    assert 0 < loss < identity_loss(ie, y_hat, y)
    loss.backward()
    outside = (w == 0).expand_as(y_hat)
    assert outside.any() and y_hat.grad[outside].abs().max() == 0  # nothing spent on pixels thrown away
    assert y_hat.grad[~outside].abs().max() > 0
    # changing ŷ outside the region does not change the loss; a pair without glasses adds nothing
    other = torch.where(outside, -y_hat.detach(), y_hat.detach())
    assert torch.allclose(region_identity_loss(ie, other, y, m_g), loss.detach())
    assert region_identity_loss(ie, y_hat.detach(), y, torch.zeros_like(m_g)) == 0


def test_id_region_is_used_by_the_step_and_checked():
    terms = {}
    for region in ("face", "glasses"):
        torch.manual_seed(0)
        cfg = get_preset("tiny")
        cfg.loss.lambda_id, cfg.loss.id_region = 1.0, region
        terms[region] = ByeGlassesGAN(cfg, identity_extractor=_small_ie()).training_step(_two_pairs(64))
    assert 0 < terms["glasses"]["id"] < terms["face"]["id"]
    assert torch.equal(terms["glasses"]["l1_global"], terms["face"]["l1_global"])  # only eq. 7 differs
    cfg = get_preset("tiny")
    cfg.loss.id_region = "eyes"
    with pytest.raises(SettingError, match="id_region.*face, glasses"):
        cfg.loss.validate()
