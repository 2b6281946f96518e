"""The losses of Section II, checked against values computed by hand or by Monte Carlo."""

import math

import pytest
import torch
from torch import nn

from cvgad.model import losses as L


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 32, 32)
    assert torch.allclose(L.ssim_per_sample(x, x), torch.ones(4), atol=1e-5)
    small = L.ssim_per_sample(x, (x + 0.05 * torch.randn_like(x)).clamp(0, 1))
    large = L.ssim_per_sample(x, (x + 0.3 * torch.randn_like(x)).clamp(0, 1))
    assert (small < 1).all() and (large < small).all()


def test_ssim_uses_wang_constants_c1_c2_not_k1_k2():
    # Two flat images: SSIM reduces to the luminance term (2 a b + c1) / (a^2 + b^2 + c1).
    a, b = 0.2, 0.4
    x, y = torch.full((1, 1, 32, 32), a), torch.full((1, 1, 32, 32), b)
    c1 = (0.01 * 1.0) ** 2
    assert L.ssim_per_sample(x, y).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-4)


def test_reconstruction_loss_weights_minus_log_ssim_and_l1():
    x = torch.full((2, 1, 32, 32), 0.5)
    y = x + 0.1
    ssim = L.ssim_per_sample(x, y).mean()
    assert L.reconstruction_loss(x, y, 50, 10).item() == pytest.approx(50 * -math.log(ssim.item()) + 10 * 0.1, rel=1e-4)
    assert L.reconstruction_loss(x, y, 0, 10).item() == pytest.approx(1.0, rel=1e-4)


def test_latent_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    d = 6
    mu, logvar, means = torch.randn(1, d), torch.randn(1, d) * 0.5, torch.randn(3, d)
    closed = L.gaussian_kl_to_means(mu, logvar, means)[0]
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, d)
    log_p = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    for y in range(3):
        log_q = torch.distributions.Normal(means[y], 1.0).log_prob(z).sum(1)
        assert closed[y].item() == pytest.approx((log_p - log_q).mean().item(), rel=0.02)


def test_latent_loss_weights_the_kl_by_p_y_given_z():
    mu, logvar = torch.zeros(1, 2), torch.zeros(1, 2)
    means = torch.tensor([[0.0, 0.0], [2.0, 0.0]])  # KL to each: 0 and 1/2 * 4 = 2
    probs = torch.tensor([[0.25, 0.75]])
    assert L.latent_loss(mu, logvar, means, probs).item() == pytest.approx(0.75 * 2.0)


def test_categorical_loss_forms_by_hand():
    one_hot = torch.tensor([[20.0, 0.0], [0.0, 20.0]])  # two confident codes in different clusters
    assert L.categorical_loss(one_hot, "per_sample").item() == pytest.approx(math.log(2), abs=1e-6)
    assert L.categorical_loss(one_hot, "marginal").item() == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.tensor([[20.0, 0.0], [20.0, 0.0]])
    assert L.categorical_loss(collapsed, "marginal").item() == pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(ValueError, match="per_sample"):
        L.categorical_loss(one_hot, "other")


class _Linear(nn.Module):
    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = a

    def forward(self, x):
        return (x.flatten(1) * self.a).sum(1)


def test_the_critic_loss_without_a_penalty_is_minus_the_wasserstein_estimate():
    critic = lambda x: x.flatten(1).sum(dim=1)  # noqa: E731
    real, fake = torch.full((2, 1, 1, 1), 3.0), torch.ones(2, 1, 1, 1)
    loss, wasserstein = L.critic_loss(critic, real, fake, gp_weight=0.0)
    assert wasserstein.item() == 2.0 and loss.item() == -2.0


def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared():
    a = torch.full((1 * 4 * 4,), 0.5)  # ||a|| = 0.5 * 4 = 2, so GP = (2 - 1)^2 = 1 at every x_hat
    critic = _Linear(a)
    real, fake = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    assert L.gradient_penalty(critic, real, fake).item() == pytest.approx(1.0)
    loss, w = L.critic_loss(critic, real, fake, gp_weight=10.0)
    expected_w = (critic(real).mean() - critic(fake).mean()).item()
    assert w.item() == pytest.approx(expected_w, rel=1e-5)
    assert loss.item() == pytest.approx(-expected_w + 10.0, rel=1e-5)
    assert L.generator_loss(critic, fake).item() == pytest.approx(-critic(fake).mean().item())


def test_mutual_information_loss_is_two_log_two_for_a_blind_fd_and_small_for_a_perfect_one():
    features, z = torch.randn(4, 3, 2, 2), torch.eye(4)

    class Blind(nn.Module):
        def forward(self, f, z):
            return torch.zeros(len(z))

    class Perfect(nn.Module):  # knows the matching: pair i is matched iff z is the one-hot of i
        def forward(self, f, z):
            matched = (z.argmax(1) == torch.arange(len(z))).float()
            return 20 * (1 - 2 * matched)

    assert L.mutual_information_loss(Blind(), features, z).item() == pytest.approx(2 * math.log(2))
    assert L.mutual_information_loss(Perfect(), features, z).item() < 1e-6


def test_negative_radius_rules():
    assert L.negative_radius(256, "literal") == 2.0
    r = L.negative_radius(256, "chi", 0.999)
    norms = torch.randn(20_000, 256).norm(dim=1)
    assert (norms > r).float().mean().item() == pytest.approx(0.001, abs=0.001)
    with pytest.raises(ValueError, match="chi"):
        L.negative_radius(256, "median")


@pytest.mark.parametrize("rule", ["chi", "literal"])
def test_negative_codes_lie_farther_than_the_radius_from_every_mean(rule):
    torch.manual_seed(0)
    means = torch.randn(5, 16) * 3
    radius = L.negative_radius(16, rule)
    z, short = L.sample_negative_codes(means, 500, radius, rule)
    assert z.shape == (500, 16) and short.item() == 0
    assert (torch.cdist(z, means).min(dim=1).values > radius).all()


def test_negative_sampling_counts_codes_that_could_not_be_placed_beyond_the_radius():
    means = torch.zeros(1, 4)
    z, short = L.sample_negative_codes(means, 10, radius=1e6, rule="literal")
    assert z.shape == (10, 4) and short.item() == 10


def test_negative_sampling_replaces_draws_that_land_near_another_mean():
    # a draw 2-3 away from one mean often lands within 2 of the other mean, 3 away
    means = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    z, short = L.sample_negative_codes(means, 50, radius=2.0, rule="chi", generator=torch.Generator().manual_seed(0))
    same, _ = L.sample_negative_codes(means, 50, radius=2.0, rule="chi", generator=torch.Generator().manual_seed(0))
    assert short.item() == 0 and torch.equal(z, same)
    assert (torch.cdist(z, means).min(dim=1).values > 2.0).all()


def test_negative_loss_is_a_hinge_that_stops_below_the_ceiling():
    x = torch.rand(2, 1, 32, 32)
    assert L.negative_loss(x, x, ceiling=0.5).item() == pytest.approx(0.5, abs=1e-4)  # SSIM 1 -> 1 - 0.5
    far = 1 - x
    assert L.negative_loss(x, far, ceiling=0.5).item() == 0.0


def test_the_negative_losss_l1_hinge_pushes_the_l1_error_up_to_its_floor():
    x = torch.full((2, 1, 32, 32), 0.5)
    near = x + 0.1  # L1 error 0.1; with ceiling 1 SSIM's hinge adds nothing
    assert L.negative_loss(x, near, ceiling=1.0, l1_floor=0.3).item() == pytest.approx(0.2, abs=1e-6)
    assert L.negative_loss(x, near, ceiling=1.0, l1_floor=0.05).item() == 0.0  # beyond the floor: nothing
    assert L.negative_loss(x, near, ceiling=1.0).item() == 0.0  # floor 0: SSIM's hinge alone


def test_the_bounded_log_variance_follows_its_input_inside_and_stays_inside_at_the_edge():
    from cvgad.model.networks import LOGVAR_BOUNDS, bound_logvar

    low, high = LOGVAR_BOUNDS
    raw = torch.tensor([-1e4, -50.0, -3.0, 0.0, 1.0, 50.0, 1e4], requires_grad=True)
    out = bound_logvar(raw, low, high)
    assert ((out > low - 1e-4) & (out <= high)).all()  # the outer softplus may undershoot low by e^-12
    assert out[2].item() == pytest.approx(-3.0, abs=0.05)  # inside: close to the input
    assert out[0].item() == pytest.approx(low, abs=1e-4) and out[-1].item() == pytest.approx(high, abs=1e-4)
    out.sum().backward()
    assert torch.isfinite(raw.grad).all() and (raw.grad >= 0).all()  # never NaN
    assert (raw.grad[1:-1] > 0).all()  # and not flat short of float32's saturation


def test_an_encoder_driven_to_the_edge_keeps_the_latent_loss_finite():
    """Unbounded, a log sigma^2 head at +-1000 gives an infinite latent loss (exp overflows)."""
    from cvgad.model.config import ModelConfig
    from cvgad.model.networks import Encoder

    x = torch.rand(4, 1, 32, 32)
    means = torch.zeros(2, 8)
    probs = torch.full((4, 2), 0.5)
    for head, finite in (("bounded", True), ("linear", False)):
        encoder = Encoder(ModelConfig(latent_dim=8, width=4, logvar=head))
        for bias in (1000.0, -1000.0):
            torch.nn.init.constant_(encoder.logvar.bias, bias)
            mu, logvar, _ = encoder(x)
            loss = L.latent_loss(mu, logvar, means, probs)
            assert bool(torch.isfinite(loss)) == finite or bias < 0  # -1000 unbounded: -log var is finite
        assert head == "linear" or torch.isfinite(loss)
