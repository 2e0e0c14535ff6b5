import torch

from byeglasses.model import losses


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    y_hat = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:8, 4:12] = 1
    return y_hat, y, mask


def test_local_l1_ignores_pixels_outside_mask():
    y_hat, y, mask = _pair()
    base = losses.l1_local_loss(y_hat, y, mask)
    changed = y_hat.clone()
    changed[:, :, 10:, :] = 5.0  # rows outside the mask
    assert torch.equal(losses.l1_local_loss(changed, y, mask), base)
    inside = y_hat.clone()
    inside[:, :, 5, 5] += 1.0
    assert losses.l1_local_loss(inside, y, mask) != base


def test_local_adversarial_input_ignores_outside():
    y_hat, _, mask = _pair()
    changed = y_hat.clone()
    changed[:, :, 12:, :] = -3.0
    assert torch.equal(losses.local(changed, mask), losses.local(y_hat, mask))


def test_lsgan_terms():
    ones, zeros = torch.ones(4, 1, 3, 3), torch.zeros(4, 1, 3, 3)
    assert losses.lsgan_d_loss(ones, zeros) == 0  # perfect discriminator
    assert losses.lsgan_d_loss(zeros, ones) == 2
    assert losses.lsgan_g_loss(ones) == 0 and losses.lsgan_g_loss(zeros) == 1


def test_every_term_finite():
    y_hat, y, mask = _pair()
    m = torch.cat([mask, 1 - mask], 1)
    seg = losses.seg_loss(torch.zeros_like(m), m)  # saturated predictions stay finite
    assert torch.isfinite(seg) and seg > 1
    ie = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 8))
    idl = losses.identity_loss(ie, y_hat, y)
    assert torch.isfinite(idl) and idl > 0
    assert losses.identity_loss(ie, y, y) == 0
    assert losses.identity_loss(None, y_hat, y) == 0


def test_l1_losses_on_hand_computed_values():
    y = torch.zeros(1, 3, 2, 2)
    y_hat = torch.zeros(1, 3, 2, 2)
    y_hat[0, :, 0, 0] = 0.6  # pixel (0, 0) off by 0.6 in all 3 channels
    y_hat[0, 0, 1, 1] = -2.0  # pixel (1, 1) off by 2 in one channel
    # global: mean over all 12 values = (3 * 0.6 + 2) / 12
    assert torch.isclose(losses.l1_global_loss(y_hat, y), torch.tensor(3.8 / 12))
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 0, 0] = 1  # glasses on pixel (0, 0) only: the error at (1, 1) does not count,
    # and the mean is over the masked pixel's 3 values, not the whole image
    assert torch.isclose(losses.l1_local_loss(y_hat, y, mask), torch.tensor(0.6))
    assert losses.l1_local_loss(y_hat, y, torch.zeros_like(mask)) == 0  # no glasses: no local loss


def test_hidden_weight_spares_frames_and_lowers_dark_lenses():
    # a 64 px face of mid grey; glasses: a dark 20 x 20 lens and a 2 px frame bar, both in the mask
    y = torch.zeros(1, 3, 64, 64)
    x = y.clone()
    mask = torch.zeros(1, 1, 64, 64)
    x[..., 10:30, 10:30] = -0.9  # the lens hides what is under it
    x[..., 40:42, 5:60] = -0.9  # a thin bar
    mask[..., 8:32, 8:32] = 1
    mask[..., 38:44, 3:62] = 1
    w = losses.hidden_weight(x, y, mask, 0.1)
    assert w.shape == (1, 1, 64, 64)
    assert torch.allclose(w[..., 15:25, 15:25], torch.tensor(0.1))  # the lens's middle: the floor
    assert torch.equal(w[..., 40:42, 5:60], torch.ones(1, 1, 2, 55))  # the bar keeps its L1
    assert torch.equal(w[..., 50:, :], torch.ones(1, 1, 14, 64))  # away from the glasses: 1
    # outside the mask nothing is lowered, however much x differs from y
    assert torch.equal(losses.hidden_weight(x, y, torch.zeros_like(mask), 0.1), torch.ones(1, 1, 64, 64))
    assert torch.equal(losses.hidden_weight(x, y, mask, 1.0), torch.ones(1, 1, 64, 64))  # floor 1: the paper


def test_weighted_l1_on_hand_computed_values():
    y = torch.zeros(1, 3, 2, 2)
    y_hat = torch.zeros(1, 3, 2, 2)
    y_hat[0, :, 0, 0] = 0.6
    y_hat[0, :, 1, 1] = 0.3
    weight = torch.ones(1, 1, 2, 2)
    weight[0, 0, 0, 0] = 0.5  # pixel (0, 0) counts half
    assert torch.isclose(losses.l1_global_loss(y_hat, y, weight), torch.tensor((3 * 0.3 + 3 * 0.3) / 12))
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 0, 0] = mask[0, 0, 1, 1] = 1  # averaged over the mask's 6 values, weighted
    assert torch.isclose(losses.l1_local_loss(y_hat, y, mask, weight), torch.tensor((3 * 0.3 + 3 * 0.3) / 6))
