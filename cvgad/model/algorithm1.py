"""Algorithm 1: CVGAD's six-batch training cycle.

Counter values 0-3: a critic update, then separate CVAE updates by reconstruction, latent
(+ categorical) loss, negative training (only while the latent loss is below T), mutual
information, and reconstruction again. Counter 4: a critic update. Counter 5: a generator
update. One CVAE optimiser and one critic optimiser (Adam, lr 1e-3, betas 0.5/0.999).

The gate T is decided on the device: a closed gate skips the negative update inside the fused
Adam step, so a step never waits for the host (`cvgad.model.training.Trainer`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from cvgad.model import losses as L
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig
from cvgad.model.networks import CVAE, Critic, reparameterize
from cvgad.model.training import Trainer

#: Every update Algorithm 1 can make, in the order it makes them within one step.
UPDATES = ("critic", "recon", "latent", "negative", "mi", "recon_2", "generator")
CYCLE = 6
#: Critic updates per cycle: one at each counter value 0-4.
CRITIC_UPDATES = 5


def applied(log: dict[str, Tensor]) -> dict[str, Tensor]:
    """A step's log less an update its gate skipped (the negative update while the latent loss
    was at or above T) and less the gate itself. Reading the gate waits for the device."""
    gate = log.get("gate")
    return {k: v for k, v in log.items() if k != "gate" and (k != "negative" or gate is None or bool(gate))}


@contextlib.contextmanager
def frozen_batchnorm_stats(module: nn.Module) -> Iterator[None]:
    """Batchnorm still normalises with batch statistics but its running averages (used at
    scoring time) are not updated, so generated outliers do not leak into them."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(bns, saved, strict=True):
            m.momentum = momentum


@contextlib.contextmanager
def frozen_weights(module: nn.Module) -> Iterator[None]:
    """The module's parameters take no gradient inside the block: a loss through it that updates
    another network does not compute the module's weight gradients (only those it passes on)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class CVGADTrainer(Trainer):
    """Trains a CVAE and a critic with Algorithm 1. `step(x)` runs one batch; `fit(images)` runs epochs."""

    progress_loss = "recon"

    def __init__(
        self, model_cfg: ModelConfig, cfg: TrainConfig, cvae: CVAE | None = None, critic: Critic | None = None
    ) -> None:
        super().__init__(cfg)
        self.model_cfg = model_cfg
        self.cvae = self._place(cvae or CVAE(model_cfg))
        self.critic = self._place(critic or Critic(model_cfg))
        if cfg.compile:  # each network the updates call directly, not only CVAE.forward
            for module in (self.cvae.encoder, self.cvae.decoder, self.cvae.classifier, self.cvae.fd):
                module.compile()
        # negative codes from their own stream, so a closed gate leaves the others unchanged
        self.generators = {"negative": torch.Generator(self.device).manual_seed(cfg.seed)}
        self._negative_short: Tensor | None = None  # codes drawn within the radius, summed on the device
        # the first epoch's latent loss, summed on the device, and its count, for the gate T
        # (negative_gate="first_epoch"); its mean once the first epoch is over
        self._first_epoch_latent: tuple[Tensor, int] | None = None
        self.latent_reference: float | None = None
        means_lr = {} if cfg.means_lr is None else {"means": cfg.means_lr}
        self.opt_cvae, self.opt_critic = self._adam(self.cvae, means_lr), self._adam(self.critic)
        self.modules = {"cvae": self.cvae, "critic": self.critic}
        self.optimizers = {"opt_cvae": self.opt_cvae, "opt_critic": self.opt_critic}
        self.set_losses(cfg.losses)
        self.use_amp = cfg.amp and self.device.type == "cuda"

    @property
    def scorer(self) -> nn.Module:
        return self.cvae

    @property
    def loss_cfg(self) -> LossConfig:
        return self.cfg.losses

    @property
    def count(self) -> int:
        """Algorithm 1's counter: which of the six kinds of step comes next."""
        return self.steps % CYCLE

    # ------------------------------------------------------------ the cycle
    def step(self, x: Tensor) -> dict[str, Tensor]:
        """One batch of Algorithm 1. Returns the loss of every update made, in order (keys
        from UPDATES, plus "wasserstein" after a critic update), as detached tensors. The
        negative update comes with "gate", true where it was applied (latent loss below T)."""
        lc, log = self.loss_cfg, dict[str, Tensor]()
        x = self._batch(x)
        self.cvae.train()
        self.critic.train()
        if self.count <= 3:
            self._cvae_batch(x, log)
        elif self.count == 4 and lc.on("wasserstein"):
            self._critic_update(x, self._generated(x), log)  # eq. (15)
        elif self.count == 5 and lc.on("wasserstein"):
            log["generator"] = self._generator_update(x)  # eq. (13)
        self._log(log)
        return log

    def _cvae_batch(self, x: Tensor, log: dict[str, Tensor]) -> None:
        """Counter values 0-3: a critic update, then the CVAE's updates, one loss each."""
        lc = self.loss_cfg
        recon_on = any(w > 0 for w in lc.reconstruction_weights())
        with self._autocast():
            recon = self.cvae(x)["recon"]
        if lc.on("wasserstein"):
            self._critic_update(x, self._generated(x, recon), log)  # eq. (15)
        if recon_on:
            log["recon"] = self._reconstruction_update(x, recon)  # eq. (4), first term (III.C)
        latent = self._latent_update(x, log)  # eq. (4), latent and categorical terms
        if lc.on("negative"):
            self._negative_update(x, latent, log)  # II.E, while the latent loss is below T
        if lc.on("mi"):
            log["mi"] = self._mutual_information_update(x)  # eq. (10)
        if recon_on:
            log["recon_2"] = self._reconstruction_update(x)  # eq. (4), first term, again

    # ---------------------------------------------------------- the updates
    def _critic_update(self, x: Tensor, fake: Tensor, log: dict[str, Tensor]) -> None:
        """Eq. (15): the critic's WGAN-GP loss on the batch against generated images, the penalty
        in every k-th critic update, weighted k (LossConfig.gradient_penalty_every; k = 1: in each)."""
        k = self.loss_cfg.gradient_penalty_every
        earlier = self.steps // CYCLE * CRITIC_UPDATES + self.count  # critic updates before this one
        with self._autocast():
            gp_weight = k * self.loss_cfg.gradient_penalty if earlier % k == 0 else 0.0
            loss, wasserstein = L.critic_loss(self.critic, x, fake, gp_weight)
        log["critic"] = self._update(self.opt_critic, loss)
        log["wasserstein"] = wasserstein

    def _reconstruction_update(self, x: Tensor, recon: Tensor | None = None) -> Tensor:
        """III.C's reconstruction loss of `recon` (default: a new pass of the batch), switched-off terms left out."""
        if recon is None:
            with self._autocast():
                recon = self.cvae(x)["recon"]
        loss = L.reconstruction_loss(x, recon.float(), *self.loss_cfg.reconstruction_weights())
        return self._update(self.opt_cvae, loss)

    def _latent_update(self, x: Tensor, log: dict[str, Tensor]) -> Tensor | None:
        """Eq. (4)'s latent and categorical terms, one update; returns the latent loss, which the
        gate T reads (computed without an update where the latent loss is off but negatives on)."""
        lc = self.loss_cfg
        if lc.on("latent"):
            latent, categorical = self._latent_terms(x)
            self._update(self.opt_cvae, lc.latent * latent + lc.categorical * categorical)
            log["latent"], log["categorical"] = latent.detach(), categorical.detach()
            return latent.detach()
        if lc.on("negative"):
            with torch.no_grad():
                return self._latent_terms(x)[0]
        return None

    def _negative_update(self, x: Tensor, latent: Tensor | None, log: dict[str, Tensor]) -> None:
        """II.E's negative training, applied where the gate (the latent loss below T) is open."""
        assert latent is not None  # the negative update has the latent loss for its gate
        if self.latent_reference is None and self.loss_cfg.negative_gate == "first_epoch":
            total, count = self._first_epoch_latent or (torch.zeros((), device=self.device), 0)
            self._first_epoch_latent = (total + latent, count + 1)
        gate = latent < self.threshold  # T of Algorithm 1
        z, short = L.sample_negative_codes(
            self.cvae.means, len(x), self.radius, self.loss_cfg.negative_radius, self.generators["negative"]
        )
        short = short * gate  # codes a closed gate does not use cannot fail
        self._negative_short = short if self._negative_short is None else self._negative_short + short
        with frozen_batchnorm_stats(self.cvae), self._autocast():
            with torch.no_grad():
                x_neg = self.cvae.decoder(z).float()
            recon_neg = self.cvae(x_neg)["recon"].float()
        lc = self.loss_cfg
        loss = lc.negative * L.negative_loss(x_neg, recon_neg, lc.negative_ssim_ceiling, lc.negative_l1_floor)
        log["negative"], log["gate"] = self._update(self.opt_cvae, loss, apply=gate), gate

    def _mutual_information_update(self, x: Tensor) -> Tensor:
        """Eq. (10): the feature discriminator's loss, over the encoder and the FD."""
        with self._autocast():
            mu, logvar, features = self.cvae.encoder(x)
            z = reparameterize(mu, logvar)
            loss = self.loss_cfg.mi * L.mutual_information_loss(self.cvae.fd, features, z).float()
        return self._update(self.opt_cvae, loss)

    def _generator_update(self, x: Tensor) -> Tensor:
        """Eq. (13): the CVAE as the critic's generator (the critic passes gradients on, takes none)."""
        with self._autocast(), frozen_weights(self.critic):
            fake = self._generated(x, with_grad=True)
            return self._update(self.opt_cvae, self.loss_cfg.adversarial * L.generator_loss(self.critic, fake).float())

    # ------------------------------------------------------------- helpers
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext()

    def _latent_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Eq. (4)'s latent loss (per dimension or summed, LossConfig.latent_reduction) and categorical loss."""
        with self._autocast():
            mu, logvar, _ = self.cvae.encoder(x)
            logits = self.cvae.classifier(reparameterize(mu, logvar))
        mu, logvar, logits = mu.float(), logvar.float(), logits.float()
        latent = L.latent_loss(mu, logvar, self.cvae.means, logits.softmax(dim=1))
        return (
            latent / mu.shape[1] if self.loss_cfg.latent_reduction == "mean" else latent,
            L.categorical_loss(logits, self.loss_cfg.categorical_form),
        )

    def _generated(self, x: Tensor, recon: Tensor | None = None, with_grad: bool = False) -> Tensor:
        """What the critic sees as generated (LossConfig.fake_source): decoded codes of the prior
        mixture q(z) (a mean mu_y picked uniformly, plus N(0, I) noise), or the reconstructions
        `recon` of the batch (default: a new pass). Without `with_grad`: detached float32 images,
        and decoding the prior leaves batchnorm's running averages alone."""
        prior = self.loss_cfg.fake_source == "prior"
        if with_grad:
            return self.cvae.decoder(self._prior_codes(len(x))) if prior else self.cvae(x)["recon"]
        with torch.no_grad():
            if prior:
                z = self._prior_codes(len(x))
                with frozen_batchnorm_stats(self.cvae):
                    return self.cvae.decoder(z).float()
            return (recon if recon is not None else self.cvae(x)["recon"]).detach().float()

    def _prior_codes(self, n: int) -> Tensor:
        """`n` codes of the prior mixture q(z): a uniformly picked mean mu_y plus N(0, I) noise."""
        means = self.cvae.means
        return means[torch.randint(len(means), (n,), device=self.device)] + torch.randn(
            n, means.shape[1], device=self.device
        )

    # ------------------------------------------------------------- the gate T
    def set_losses(self, losses: LossConfig) -> None:
        """Trains on with other losses (weights, switches, choices), re-deriving what depends on them."""
        self.cfg = dataclasses.replace(self.cfg, losses=losses)
        self.radius = L.negative_radius(self.model_cfg.latent_dim, losses.negative_radius, losses.negative_quantile)
        self.threshold = self._gate_threshold()

    def _gate_threshold(self) -> float:
        """T of Algorithm 1 on the scale of the logged latent loss: a share of the first epoch's
        mean (-inf, the gate shut, until that epoch is over), or nats per dimension."""
        losses = self.loss_cfg
        if losses.negative_gate == "first_epoch":
            reference = self.latent_reference
            return -math.inf if reference is None else losses.negative_threshold * reference
        per_dim = losses.latent_reduction == "mean"
        return losses.negative_threshold * (1 if per_dim else self.model_cfg.latent_dim)

    def end_epoch(self) -> None:
        """After the first epoch, T = negative_threshold x its mean latent loss (first_epoch gate)."""
        if self.latent_reference is None and self._first_epoch_latent is not None:
            total, count = self._first_epoch_latent
            self.latent_reference, self._first_epoch_latent = float(total) / count, None
            self.threshold = self._gate_threshold()

    # ------------------------------------------------- history and resumable state
    def _row(self, step: int) -> dict[str, float]:
        return {"step": step, "count": step % CYCLE}

    def _where(self, row: dict[str, float]) -> str:
        return f"Algorithm 1 counter {int(row['count'])}"

    def _flush(self) -> None:
        """Negative codes that could not be drawn beyond the radius are an error here, when the
        losses reach the host anyway."""
        if self._negative_short is not None and int(self._negative_short) > 0:
            raise RuntimeError(
                f"could not draw negative codes farther than radius {self.radius:.2f} from all "
                f"{self.model_cfg.n_clusters} means; lower the radius (LossConfig.negative_quantile or negative_radius)"
            )
        super()._flush()

    def _values(self, log: dict[str, Tensor]) -> dict[str, float]:
        """The negative update is in the history only where the gate was open, as Algorithm 1 makes it."""
        return super()._values(applied(log))

    def extra_state(self) -> dict[str, float]:
        return {} if self.latent_reference is None else {"latent_reference": self.latent_reference}

    def load_extra_state(self, state: dict) -> None:
        self.latent_reference = state.get("latent_reference")
        self.threshold = self._gate_threshold()
