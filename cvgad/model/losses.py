"""The losses of Section II as pure functions of tensors (and, where a loss needs one, a network).

Each docstring names its equation. Functions ending in `_per_sample` return one value per
image (used by the anomaly score, II.F, in `cvgad.model.scoring`); the others return the batch mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as _ssim
from scipy.stats import chi
from torch import Tensor, nn

#: SSIM window of III.C (K = 11) with the Gaussian sigma of Wang et al. (2004).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
#: Wang et al.'s K1, K2. The paper calls 0.01 and 0.03 the constants c1 and c2; in fact
#: c1 = (K1 L)^2 = 1e-4 and c2 = (K2 L)^2 = 9e-4 for the data range L = 1 used here.
SSIM_K = (0.01, 0.03)
#: -log SSIM is undefined for SSIM <= 0; SSIM is clamped here first (L1 still gives a gradient).
SSIM_FLOOR = 1e-4


def l1_per_sample(x: Tensor, recon: Tensor) -> Tensor:
    """Mean absolute pixel error of each image: the L1-norm loss of II.C and II.F."""
    return (x - recon).abs().flatten(1).mean(dim=1)


def ssim_per_sample(x: Tensor, recon: Tensor) -> Tensor:
    """Eq. (11), averaged over all 11x11 Gaussian windows of each image (valid windows only,
    no padding), computed by pytorch-msssim for images in [0, 1] (data_range 1)."""
    return _ssim(
        x.float(),
        recon.float(),
        data_range=1.0,
        size_average=False,
        win_size=SSIM_WINDOW,
        win_sigma=SSIM_SIGMA,
        K=SSIM_K,
    )


def reconstruction_loss(x: Tensor, recon: Tensor, w_ssim: float = 50.0, w_l1: float = 10.0) -> Tensor:
    """III.C: w_ssim * (-log SSIM) + w_l1 * L1, the CVAE's reconstruction term of eq. (4)."""
    loss = x.new_zeros(())
    if w_ssim:
        loss = loss + w_ssim * -torch.log(ssim_per_sample(x, recon).clamp_min(SSIM_FLOOR)).mean()
    if w_l1:
        loss = loss + w_l1 * l1_per_sample(x, recon).mean()
    return loss


def gaussian_kl_to_means(mu: Tensor, logvar: Tensor, means: Tensor) -> Tensor:
    """Closed form of E_{z~p(z|x)}[log p(z|x) - log q(z|y)] for every (image, category) pair.

    p(z|x) = N(mu, diag sigma^2) and q(z|y) = N(mu_y, I) (eq. 5), so the expectation is
    KL(p(z|x) || q(z|y)) = 1/2 sum_d (sigma_d^2 + (mu_d - mu_yd)^2 - 1 - log sigma_d^2).
    Returns a (batch, K) tensor in nats.
    """
    sq_dist = (mu[:, None, :] - means[None, :, :]).pow(2).sum(dim=2)
    rest = (logvar.exp() - 1 - logvar).sum(dim=1, keepdim=True)
    return 0.5 * (sq_dist + rest)


def latent_loss(mu: Tensor, logvar: Tensor, means: Tensor, probs: Tensor) -> Tensor:
    """The middle term of eq. (4): E_z[sum_y p(y|z) log p(z|x)/q(z|y)], with the log-ratio
    replaced by its expectation in closed form (`gaussian_kl_to_means`) and p(y|z) taken at the
    sampled z. This treats p(y|z) and the log-ratio as uncorrelated over z ~ p(z|x): a low-
    variance approximation of the term, exact when p(y|z) is constant over the posterior.
    Summed over latent dimensions (nats per image), averaged over the batch."""
    return (probs * gaussian_kl_to_means(mu, logvar, means)).sum(dim=1).mean()


def categorical_loss(logits: Tensor, form: str = "marginal") -> Tensor:
    """The last term of eq. (4), KL(p(y|z) || q(y)) with uniform q(y) = 1/K.

    "per_sample" is the paper's E_z KL(p(y|z) || q(y)): it pulls every p(y|z) towards uniform,
    which undoes the assignment the latent loss needs for clustering. "marginal" applies the
    KL to the batch average mean_i p(y|z_i) instead, so clusters are kept balanced while each
    code may still commit to one of them.
    """
    log_k = math.log(logits.shape[1])
    if form == "per_sample":
        logp = logits.log_softmax(dim=1)
        return (logp.exp() * logp).sum(dim=1).mean() + log_k
    if form == "marginal":
        p_bar = logits.softmax(dim=1).mean(dim=0)
        return (p_bar * p_bar.clamp_min(1e-12).log()).sum() + log_k
    raise ValueError(f"form={form!r} is not valid; choose 'marginal' or 'per_sample'")


def mutual_information_loss(fd: nn.Module, features: Tensor, z: Tensor) -> Tensor:
    """Eq. (10) as a loss to minimise: the FD's binary cross-entropy for telling pairs drawn
    from p(z)p(x) (z shuffled across the batch, label 1) from matched pairs drawn from
    p(z|x)p(x) (label 0). Minimising it over encoder and FD maximises the Jensen-Shannon
    estimate of I(x; z). The shuffle is a roll by one, so no pair stays matched."""
    matched = fd(features, z)
    shuffled = fd(features, z.roll(1, dims=0))
    return F.binary_cross_entropy_with_logits(matched, torch.zeros_like(matched)) + F.binary_cross_entropy_with_logits(
        shuffled, torch.ones_like(shuffled)
    )


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, t: Tensor | None = None) -> Tensor:
    """Eq. (14): E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = t x + (1 - t) G(z), t ~ U[0, 1]."""
    if t is None:
        t = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, gp_weight: float = 10.0) -> tuple[Tensor, Tensor]:
    """Eq. (15): L_D = -E[D(x)] + E[D(G(z))] + lambda GP. Returns (L_D, Wasserstein estimate
    E[D(x)] - E[D(G(z))], the quantity plotted in Fig. 8b)."""
    scores = critic(torch.cat([real, fake])).chunk(2)  # one pass: the critic has no batchnorm
    wasserstein = scores[0].mean() - scores[1].mean()
    if not gp_weight:  # no penalty, no double backward
        return -wasserstein, wasserstein.detach()
    return -wasserstein + gp_weight * gradient_penalty(critic, real, fake), wasserstein.detach()


def generator_loss(critic: nn.Module, fake: Tensor) -> Tensor:
    """Eq. (13): L_G = -E[D(G(z))]."""
    return -critic(fake).mean()


def negative_radius(latent_dim: int, rule: str = "chi", quantile: float = 0.999) -> float:
    """How far from every mean a negative code must lie (II.E).

    "literal" is the paper's 2. But a draw of q(z|y) = N(mu_y, I) lies sqrt(d) away from its
    mean on average (16 for d = 256, a chi distribution), so radius 2 excludes almost no
    normal code. "chi" uses the `quantile` of the chi distribution with d degrees of freedom:
    a code beyond it is farther out than all but a 1 - quantile share of normal codes.
    """
    if rule == "literal":
        return 2.0
    if rule == "chi":
        return float(chi.ppf(quantile, latent_dim))
    raise ValueError(f"rule={rule!r} is not valid; choose 'chi' or 'literal'")


def normal_share_beyond(radius: float, latent_dim: int) -> float:
    """Share of normal codes (draws of N(mu_y, I)) farther than `radius` from their mean (chi tail)."""
    return float(chi.sf(radius, latent_dim))


def sample_negative_codes(
    means: Tensor,
    n: int,
    radius: float,
    rule: str = "chi",
    generator: torch.Generator | None = None,
    candidates: int = 4,
) -> tuple[Tensor, Tensor]:
    """Potential anomalies in latent space (II.E): codes farther than `radius` from every mean.

    Both rules start at a random mean mu_y. "literal" draws z ~ N(mu_y, I), as the paper
    describes; "chi" draws a random direction and a distance uniform in [radius, 1.5 radius]
    (just outside the normal shell). Of `candidates` x n draws, the first n beyond `radius`
    from every mean are returned, with the number of returned codes that are not (0 unless
    fewer than n candidates qualified: a rule and radius under which fewer than 1 draw in
    `candidates` qualifies fail, e.g. "literal" in 2 or 3 latent dimensions). Nothing here
    waits for the device: the caller checks that count when it reads its losses.
    """
    means = means.detach()
    m = candidates * n
    y = torch.randint(means.shape[0], (m,), device=means.device, generator=generator)
    eps = torch.randn(m, means.shape[1], device=means.device, dtype=means.dtype, generator=generator)
    if rule == "chi":
        r = radius * (1 + 0.5 * torch.rand(m, 1, device=means.device, dtype=means.dtype, generator=generator))
        eps = eps / eps.norm(dim=1, keepdim=True) * r
    elif rule != "literal":
        raise ValueError(f"rule={rule!r} is not valid; choose 'chi' or 'literal'")
    z = means[y] + eps
    inside = torch.cdist(z, means).min(dim=1).values <= radius
    first = torch.sort(inside.to(torch.uint8), stable=True).indices[:n]  # qualifying draws first, in draw order
    return z[first], inside[first].sum()


def negative_loss(x_neg: Tensor, recon_neg: Tensor, ceiling: float = 0.5, l1_floor: float = 0.0) -> Tensor:
    """Active negative training (II.E): make the reconstruction of a generated outlier worse.

    Maximising an error without limit runs away (the decoder learns to destroy everything),
    so this is a hinge: mean(max(0, SSIM(x_neg, recon_neg) - ceiling)). Once a negative's
    reconstruction SSIM is below the ceiling it contributes nothing. III.F says negative training
    raises both SSIM and L1 losses of the negatives; with `l1_floor` > 0 the L1 error gets the same
    kind of hinge, mean(max(0, l1_floor - L1)), added with weight 1.
    """
    loss = F.relu(ssim_per_sample(x_neg, recon_neg) - ceiling).mean()
    if l1_floor > 0:
        loss = loss + F.relu(l1_floor - l1_per_sample(x_neg, recon_neg)).mean()
    return loss
