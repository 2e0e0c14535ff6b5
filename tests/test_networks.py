import pytest
import torch

from byeglasses.model.config import ModelConfig, get_preset
from byeglasses.errors import ByeGlassesError
from byeglasses.model.networks import Generator, PatchDiscriminator


@pytest.mark.parametrize("preset", ["paper", "cpu", "tiny"])
def test_output_shapes_and_ranges(preset):
    cfg = get_preset(preset).model
    g = Generator(cfg).eval()
    x = torch.rand(2, 3, cfg.resolution, cfg.resolution) * 2 - 1
    with torch.no_grad():
        y_hat, m_hat = g(x)
    assert y_hat.shape == (2, 3, cfg.resolution, cfg.resolution)
    assert m_hat.shape == (2, 2, cfg.resolution, cfg.resolution)
    assert y_hat.min() >= -1 and y_hat.max() <= 1
    assert m_hat.min() >= 0 and m_hat.max() <= 1


@pytest.mark.parametrize("resolution", [96, 160])
def test_second_resolution(resolution):
    cfg = ModelConfig(resolution=resolution, base_width=8, max_width=32)
    y_hat, m_hat = Generator(cfg)(torch.zeros(1, 3, resolution, resolution))
    assert y_hat.shape[-1] == m_hat.shape[-1] == resolution
    d = PatchDiscriminator(cfg)(y_hat)
    assert d.shape[:2] == (1, 1) and d.shape[-1] > 1


def test_resolution_must_be_multiple_of_32():
    with pytest.raises(ByeGlassesError, match="multiple of 32"):
        ModelConfig(resolution=100)


def test_gradients_reach_encoder_through_both_decoders():
    cfg = get_preset("tiny").model
    g = Generator(cfg)
    x = torch.rand(1, 3, cfg.resolution, cfg.resolution)
    first = g.encoder.blocks[0][0].weight
    y_hat, m_hat = g(x)
    (grad_fd,) = torch.autograd.grad(y_hat.mean(), first, retain_graph=True)
    (grad_sd,) = torch.autograd.grad(m_hat.mean(), first)
    assert grad_fd.abs().sum() > 0 and grad_sd.abs().sum() > 0
    # SD's own parameters get gradient from FD's output: the features are shared.
    sd_param = g.seg_decoder.blocks[0][0].weight
    (grad_shared,) = torch.autograd.grad(g(x)[0].mean(), sd_param)
    assert grad_shared.abs().sum() > 0


def test_removing_sd_features_changes_fd_output():
    cfg = get_preset("tiny").model
    g = Generator(cfg).eval()
    x = torch.rand(1, 3, cfg.resolution, cfg.resolution) * 2 - 1
    with torch.no_grad():
        shared, mask = g(x)
        # from outside: SD's block outputs (the features FD receives) replaced by zeros
        hook = g.seg_decoder.register_forward_hook(
            lambda module, args, out: (out[0], [torch.zeros_like(f) for f in out[1]]))
        alone, mask_alone = g(x)
        hook.remove()
    assert torch.equal(mask, mask_alone)  # SD's own output is untouched ...
    assert (shared - alone).abs().mean() > 1e-4  # ... but FD's changes: it really uses SD's features


@pytest.mark.parametrize("change", [dict(seg_decoder=False), dict(face_shape_channel=False),
                                    dict(feature_sharing=False)])
def test_ablations_build(change):
    cfg = ModelConfig(resolution=64, base_width=8, max_width=32, **change)
    y_hat, m_hat = Generator(cfg)(torch.zeros(1, 3, 64, 64))
    assert y_hat.shape == (1, 3, 64, 64)
    if cfg.seg_decoder:
        assert m_hat.shape[1] == cfg.mask_channels
    else:
        assert m_hat is None


def test_instance_norm_keeping_layout_matches_pytorch():
    """The channels_last instance norm used on CUDA: PyTorch's values and gradients, layout kept."""
    from byeglasses.model.networks import InstanceNorm2d, instance_norm_keeping_layout

    torch.manual_seed(0)
    norm = InstanceNorm2d(8, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    assert list(norm.state_dict()) == list(torch.nn.InstanceNorm2d(8, affine=True).state_dict())
    x = torch.randn(3, 8, 16, 16) * 3 + 1
    a_in = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    b_in = x.clone().requires_grad_()
    a = instance_norm_keeping_layout(a_in, norm.weight, norm.bias, norm.eps)
    b = norm(b_in)
    assert a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous()
    assert torch.allclose(a, b, atol=1e-5)
    grad = torch.randn_like(b)
    a.backward(grad)
    grad_w = norm.weight.grad.clone()
    norm.weight.grad = None
    b.backward(grad)
    assert torch.allclose(a_in.grad, b_in.grad, atol=1e-5) and torch.allclose(grad_w, norm.weight.grad, atol=1e-4)
