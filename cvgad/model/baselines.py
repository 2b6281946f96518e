"""The baselines of Figs. 2 and 3, trained and scored through CVGAD's data, split and run folders.

- `ae`: the CVAE's encoder and decoder, trained on the reconstruction loss of III.C alone and
  scored by II.F's SSIM + L1 score: what is left of CVGAD without its latent machinery.
- `vae`: the same networks with a single standard-normal prior (the ELBO with the same
  reconstruction term and latent weight), the same score.
- `ganomaly`: GANomaly (Akcay et al., ACCV 2018), the model and losses maintained in anomalib,
  trained as anomalib's training step does, scored by its latent distance |E(x) - E'(G(x))|^2.

Each baseline is a trainer (a `cvgad.model.training.Trainer`) and a module `cvgad.model.scoring` scores. Of the
loss settings they use only what they have (ssim, l1, latent and latent_reduction; GANomaly has its
own fixed weights); bfloat16 autocast on CUDA (`TrainConfig.amp`) is CVGAD's alone.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from torch import Tensor, nn

from cvgad.model import losses as L
from cvgad.model.config import ModelConfig, TrainConfig
from cvgad.model.networks import Decoder, Encoder, reparameterize
from cvgad.model.training import Trainer


class Autoencoder(nn.Module):
    """CVGAD's encoder and decoder alone (the `ae` and `vae` baselines)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, x: Tensor, sample: bool) -> tuple[Tensor, Tensor, Tensor]:
        """(reconstruction, mu, logvar); the code is mu, or with `sample` a draw of eq. (1)."""
        mu, logvar, _ = self.encoder(x)
        return self.decoder(reparameterize(mu, logvar) if sample else mu), mu, logvar


def standard_normal_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) of each image, in nats: eq. (5)'s closed form with one mean at 0."""
    return L.gaussian_kl_to_means(mu, logvar, mu.new_zeros(1, mu.shape[1]))[:, 0]


class AutoencoderTrainer(Trainer):
    """`ae` and `vae`: one Adam optimiser (the config's learning rate and betas) on the
    reconstruction loss, plus for `vae` the latent weight times the KL to N(0, I), reduced per
    dimension or summed as LossConfig.latent_reduction says (as CVGAD's latent loss is)."""

    progress_loss = "recon"

    def __init__(self, model_cfg: ModelConfig, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.variational = model_cfg.model == "vae"
        self.ae = self._place(Autoencoder(model_cfg))
        self.opt = self._adam(self.ae)
        self.modules, self.optimizers = {"ae": self.ae}, {"opt_ae": self.opt}

    @property
    def scorer(self) -> nn.Module:
        return self.ae

    def step(self, x: Tensor) -> dict[str, Tensor]:
        lc, log = self.cfg.losses, dict[str, Tensor]()
        x = self._batch(x)
        self.ae.train()
        recon, mu, logvar = self.ae(x, sample=self.variational)
        loss = log["recon"] = L.reconstruction_loss(x, recon, *lc.reconstruction_weights())
        if self.variational and lc.on("latent"):
            kl = standard_normal_kl(mu, logvar).mean()
            log["latent"] = kl / mu.shape[1] if lc.latent_reduction == "mean" else kl
            loss = loss + lc.latent * log["latent"]
        self._update(self.opt, loss)
        self._log(log := {k: v.detach() for k, v in log.items()})
        return log


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """Importing anomalib warns about deprecations in its other models; those are not ours to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


class Ganomaly(nn.Module):
    """anomalib's GANomaly (generator E-G-E' and discriminator), sized by the config's width
    (n_features) and latent_dim. It works on images in [-1, 1], its decoder's Tanh range."""

    def __init__(self, cfg: ModelConfig) -> None:
        with _quiet_import():
            from anomalib.models.image.ganomaly.torch_model import GanomalyModel

        super().__init__()
        self.net = GanomalyModel(
            input_size=(32, 32), num_input_channels=cfg.channels, n_features=cfg.width, latent_vec_size=cfg.latent_dim
        )


class GanomalyTrainer(Trainer):
    """GANomaly's training step as anomalib writes it: a generator update on
    w_adv |D(x) - D(G(x))|^2 + w_con |x - G(x)|_1 + w_enc smooth-L1(E(x), E'(G(x))) with the
    weights 1, 50, 1 of the GANomaly paper, then a discriminator update on binary cross-entropy.
    Both optimisers are Adam with the config's learning rate and betas (run parameters default
    them to GANomaly's own, 2e-4 and (0.5, 0.999); `cvgad.experiment.params.DEFAULT_LR`)."""

    def __init__(self, model_cfg: ModelConfig, cfg: TrainConfig) -> None:
        with _quiet_import():
            from anomalib.models.image.ganomaly.loss import DiscriminatorLoss, GeneratorLoss

        super().__init__(cfg)
        self.model = self._place(Ganomaly(model_cfg))
        self.generator_loss, self.discriminator_loss = GeneratorLoss(wadv=1, wcon=50, wenc=1), DiscriminatorLoss()
        self.opt_g, self.opt_d = self._adam(self.model.net.generator), self._adam(self.model.net.discriminator)
        self.modules = {"ganomaly": self.model}
        self.optimizers = {"opt_generator": self.opt_g, "opt_discriminator": self.opt_d}

    @property
    def scorer(self) -> nn.Module:
        return self.model

    def step(self, x: Tensor) -> dict[str, Tensor]:
        x = self._batch(x) * 2 - 1
        self.model.train()
        generator, discriminator = self.model.net.generator, self.model.net.discriminator
        fake, latent_i, latent_o = generator(x)
        pred_real, _ = discriminator(x)
        pred_fake, _ = discriminator(fake)
        g_loss = self.generator_loss(latent_i, latent_o, x, fake, pred_real, pred_fake)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward(retain_graph=True)  # pred_real is used again by the discriminator's loss
        self.opt_g.step()
        pred_fake, _ = discriminator(fake.detach())
        log = {
            "generator": g_loss.detach(),
            "discriminator": self._update(self.opt_d, self.discriminator_loss(pred_real, pred_fake)),
        }
        self._log(log)
        return log
