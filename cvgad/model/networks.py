"""The networks of Fig. 1: encoder, decoder, classifier p(y|z), cluster means mu_y, the
feature discriminator FD and the WGAN-GP critic.

All work on 32x32 images (III.C). With `width` w the encoder's feature map is 4w x 4 x 4.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvgad.model.config import ModelConfig


def as_float_images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Images as the networks take them: uint8 (0-255) becomes float32 in [0, 1], float stays as
    it is (as float32). On the images' own device, with no copy beyond the float conversion."""
    x = torch.as_tensor(images)
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def _down(c_in: int, c_out: int, batchnorm: bool) -> list[nn.Module]:
    """One encoder stage: a stride-2 4x4 convolution (halves the size), batchnorm, LeakyReLU."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class Encoder(nn.Module):
    """p(z|x): three identical conv-batchnorm-LeakyReLU stages, then heads for mu and log sigma^2."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        self.features = nn.Sequential(*_down(cfg.channels, w, True), *_down(w, 2 * w, True), *_down(2 * w, 4 * w, True))
        self.mu = nn.Linear(4 * w * 16, cfg.latent_dim)
        self.logvar = nn.Linear(4 * w * 16, cfg.latent_dim)
        self.bounded = cfg.logvar == "bounded"

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (mu, logvar, feature map); the feature map feeds the FD."""
        h = self.features(x)
        flat = h.flatten(1)
        logvar = self.logvar(flat)
        if self.bounded:
            logvar = bound_logvar(logvar, *LOGVAR_BOUNDS)
        return self.mu(flat), logvar, h


#: Soft bounds on log sigma^2 (ModelConfig.logvar): -10 keeps sigma >= 0.0067; above 2
#: (sigma^2 = 7.4, well past the prior's unit variance) a wider posterior only costs latent loss.
LOGVAR_BOUNDS = (-10.0, 2.0)


def bound_logvar(raw: Tensor, low: float, high: float) -> Tensor:
    """log sigma^2 kept softly inside (low, high): high - softplus(high - (low + softplus(raw - low))),
    as Chua et al. (NeurIPS 2018, PETS) bound a learnt variance. Close to `raw` well inside the
    bounds, smooth, with a gradient that vanishes only where float32 saturates, so the latent
    loss stays finite however far the raw head is driven."""
    return high - F.softplus(high - (low + F.softplus(raw - low)))


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """Eq. (1): z = mu + sigma * xi with xi ~ N(0, I)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


class CodeToMap(nn.ConvTranspose2d):
    """The decoder's first layer: a 4x4 transposed convolution of z seen as a 1x1 map (DCGAN).

    On a 1x1 input that convolution is exactly a matrix product, z @ W with W reshaped to
    (latent, channels * 16), which this computes instead: on the CPU the convolution kernel
    takes about ten times as long. Same parameter, same name, so checkpoints are unchanged."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__(latent_dim, channels, 4, 1, 0, bias=False)

    def forward(self, z: Tensor) -> Tensor:  # type: ignore[override]
        # in channels_last, the weight's memory is (latent, 4, 4, channels): read it without a copy
        channels_last = not self.weight.is_contiguous()
        w = self.weight.permute(0, 2, 3, 1) if channels_last else self.weight
        out = z.flatten(1) @ w.flatten(1)
        return out.view(len(z), 4, 4, -1).permute(0, 3, 1, 2) if channels_last else out.view(len(z), -1, 4, 4)


class Decoder(nn.Module):
    """q(x|z): a DCGAN generator from z to a 32x32 image in [0, 1]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        self.net = nn.Sequential(
            CodeToMap(cfg.latent_dim, 4 * w),  # 1 -> 4
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False),  # 4 -> 8
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False),  # 8 -> 16
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1),  # 16 -> 32
            nn.Sigmoid(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class Classifier(nn.Module):
    """p(y|z) over the K latent categories (the red box of Fig. 1); returns logits."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, 256), nn.LeakyReLU(0.2, inplace=True), nn.Linear(256, cfg.n_clusters)
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class FeatureDiscriminator(nn.Module):
    """FD of eq. (10): 1x1 convolutions over the encoder's feature map joined with z.

    z is copied to every position of the 4x4 map, so each location judges whether the local
    features and the code belong to the same image. Unlike Deep InfoMax's local objective,
    which averages per-position losses, the per-position logits are averaged into one logit.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = 4 * cfg.width + cfg.latent_dim
        self.net = nn.Sequential(
            nn.Conv2d(c, 256, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(256, 256, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(256, 1, 1),
        )

    def forward(self, features: Tensor, z: Tensor) -> Tensor:
        """Logit that (features, z) is a mismatched pair, averaged over the map: shape (B,).

        The first 1x1 convolution of [features, z copied to every position] is computed as
        its two halves: the features' convolution plus z's projection, added at every position
        (the same sum, without convolving 16 copies of z)."""
        first = cast(nn.Conv2d, self.net[0])
        c = features.shape[1]
        z_part = F.linear(z, first.weight[:, c:, 0, 0])[:, :, None, None]
        h = F.conv2d(features, first.weight[:, :c], first.bias) + z_part
        return self.net[1:](h).mean(dim=(1, 2, 3))


class Critic(nn.Module):
    """WGAN-GP critic D: the encoder's stages without batchnorm, then fully connected layers."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        self.features = nn.Sequential(
            *_down(cfg.channels, w, False), *_down(w, 2 * w, False), *_down(2 * w, 4 * w, False)
        )
        self.head = nn.Sequential(nn.Linear(4 * w * 16, 256), nn.LeakyReLU(0.2, inplace=True), nn.Linear(256, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


class CVAE(nn.Module):
    """The generator side of Fig. 1: encoder, decoder, classifier, K learnable means, and FD.

    The FD is kept here because it is optimised together with the encoder on the MI loss
    (eq. 10 maximises over both p(z|x) and FD).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.classifier = Classifier(cfg)
        self.means = nn.Parameter(cfg.mean_init_scale * torch.randn(cfg.n_clusters, cfg.latent_dim))
        self.fd = FeatureDiscriminator(cfg)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """One pass x -> (mu, logvar) -> z -> reconstruction, with p(y|z) logits."""
        mu, logvar, features = self.encoder(x)
        z = reparameterize(mu, logvar)
        return {
            "mu": mu,
            "logvar": logvar,
            "features": features,
            "z": z,
            "logits": self.classifier(z),
            "recon": self.decoder(z),
        }

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Deterministic reconstruction from the posterior mean, used for scoring."""
        mu, _, _ = self.encoder(x)
        return self.decoder(mu)

    @torch.no_grad()
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean codes and p(y|z=mu) probabilities."""
        mu, _, _ = self.encoder(x)
        return mu, self.classifier(mu).softmax(dim=1)


@contextlib.contextmanager
def batch_statistics(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in train mode for the `with` block, so batchnorm normalises each batch by its own
    statistics (the released code's scoring), with every buffer (running statistics, batch
    counts) restored afterwards: scoring leaves the model as it was."""
    was_training = module.training
    saved = [(buffer, buffer.clone()) for buffer in module.buffers()]
    module.train()
    try:
        yield module
    finally:
        for buffer, value in saved:
            buffer.copy_(value)
        module.train(was_training)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in eval mode (batchnorm uses its running statistics, as at scoring time) for the
    `with` block; its training mode is restored afterwards, even on an error."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
