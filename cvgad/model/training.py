"""Algorithm 1: the six-step training cycle of CVGAD.

Counter values 0-3: a critic update, then separate CVAE updates by reconstruction, latent
(+ categorical) loss, negative training (only while the latent loss is below T), mutual
information, and reconstruction again. Counter 4: a critic update. Counter 5: a generator
update. One CVAE optimiser and one critic optimiser (Adam, lr 1e-3, betas 0.5/0.999).

A step never waits for the device: the gate T is decided on the device (a closed gate skips
the negative update inside the fused Adam step), and losses reach the host every
FINITE_CHECK_EVERY steps, when they are checked.

`Loop` is what every model's training shares (the baselines of `cvgad.model.baselines` too): epochs
of shuffled batches, the loss history checked for NaN, and the resumable state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from cvgad.atomic import save_torch
from cvgad.model import losses as L
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig
from cvgad.model.networks import CVAE, Critic, as_float_images, reparameterize

M = TypeVar("M", bound=nn.Module)

#: Every update Algorithm 1 can make, in the order it makes them within one step.
UPDATES = ("critic", "recon", "latent", "negative", "mi", "recon_2", "generator")
CYCLE = 6
#: How often (in steps) losses are checked for NaN/inf; checking is a host synchronisation.
FINITE_CHECK_EVERY = 25


def applied(log: dict[str, Tensor]) -> dict[str, Tensor]:
    """A step's log less an update its gate skipped (the negative update while the latent loss
    was at or above T) and less the gate itself. Reading the gate waits for the device."""
    gate = log.get("gate")
    return {k: v for k, v in log.items() if k != "gate" and (k != "negative" or gate is None or bool(gate))}


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the message names the loss and the step."""


def resolve_memory_format(memory_format: str) -> torch.memory_format:
    """ "auto" is channels_last: with it the whole speed-up of benchmarks/side_by_side.py was
    measured on the CPU (benchmarks/throughput.py prints both layouts); on CUDA it is the layout
    of tensor-core convolutions (benchmarks/gpu_check.py measures both where a GPU is lent)."""
    if memory_format == "auto":
        memory_format = "channels_last"
    return torch.channels_last if memory_format == "channels_last" else torch.contiguous_format


def resolve_device(device: str) -> torch.device:
    """ "auto" picks CUDA when present, else the CPU; anything else is used as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


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


class Loop:
    """What training every model shares: epochs over shuffled batches of normal images, a loss
    history checked for NaN, and a state saved after each epoch so a killed run resumes.

    A model's trainer sets `modules` (saved in the checkpoint under these names), `optimizers`,
    `scorer` (the module whose `score_terms` scores images, II.F) and implements `step`."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.memory_format = resolve_memory_format(cfg.memory_format)
        torch.manual_seed(cfg.seed)
        #: Random streams of the model's own, saved with the resumable state (by name).
        self.generators: dict[str, torch.Generator] = {}
        self.steps = 0
        self.history: list[dict[str, float]] = []
        self._pending: list[tuple[int, dict[str, Tensor]]] = []

    @property
    def scorer(self) -> nn.Module:
        raise NotImplementedError

    def step(self, x: Tensor) -> dict[str, Tensor]:
        """One batch; returns the loss of every update made, as detached tensors."""
        raise NotImplementedError

    def _update(self, opt: torch.optim.Optimizer, loss: Tensor, apply: Tensor | None = None) -> Tensor:
        """One optimiser step on `loss`. With `apply` (a boolean on the device), the step is taken
        only where it is true, decided on the device: fused Adam skips a step whose `found_inf`
        is 1, leaving weights and moments as they were (the mechanism of torch.amp.GradScaler)."""
        opt.zero_grad(set_to_none=True)  # parameters a loss does not touch keep grad None: Adam skips them
        loss.backward()
        if apply is None:
            opt.step()
        elif opt.defaults.get("fused"):
            opt.found_inf = (~apply).float()  # type: ignore[attr-defined]
            try:
                opt.step()
            finally:
                del opt.found_inf  # type: ignore[attr-defined]
        elif apply:  # no fused Adam on this device: the host decides
            opt.step()
        return loss.detach()

    def _recon_loss(self, x: Tensor, recon: Tensor) -> Tensor:
        """III.C's reconstruction loss with the configured weights, less the switched-off terms."""
        lc = self.cfg.losses
        return L.reconstruction_loss(x, recon, lc.ssim if lc.on("ssim") else 0.0, lc.l1 if lc.on("l1") else 0.0)

    def _place(self, module: M) -> M:
        """A module on the device, its weights in the configured memory layout."""
        return module.to(self.device).to(memory_format=self.memory_format)

    def _batch(self, x: Tensor) -> Tensor:
        """A batch on the device as float images in [0, 1], in the configured memory layout."""
        return as_float_images(x.to(self.device, non_blocking=True)).contiguous(memory_format=self.memory_format)

    def _adam(self, module: nn.Module, lr: dict[str, float] | None = None) -> torch.optim.Optimizer:
        """Adam with the config's learning rate and betas, or the rate `lr` gives a parameter by
        name; fused (one kernel for all parameters, and the device-side skip that `_update` uses)
        where torch has it."""
        fused = self.device.type in ("cpu", "cuda")
        own = lr or {}
        groups: list[dict[str, Any]] = [{"params": [p for n, p in module.named_parameters() if n not in own]}]
        groups += [{"params": [p], "lr": own[n]} for n, p in module.named_parameters() if n in own]
        return torch.optim.Adam(groups, lr=self.cfg.lr, betas=self.cfg.betas, fused=fused)

    def _log(self, log: dict[str, Tensor]) -> None:
        """Keeps a step's losses on the device; every FINITE_CHECK_EVERY steps they go to the history."""
        self._pending.append((self.steps, log))
        self.steps += 1
        if self.steps % FINITE_CHECK_EVERY == 0:
            self._flush()

    def _row(self, step: int) -> dict[str, float]:
        """The columns of the history besides the losses."""
        return {"step": step}

    def _values(self, log: dict[str, Tensor]) -> dict[str, float]:
        """A step's log as history columns, read on the host."""
        return {k: float(v) for k, v in log.items()}

    # ----------------------------------------------------------------- history
    def _flush(self) -> None:
        """Moves pending losses to the host (one synchronisation) and stops on NaN/inf."""
        for step, log in self._pending:
            row = {**self._row(step), **self._values(log)}
            bad = [k for k, v in row.items() if not math.isfinite(v)]
            if bad:
                self._pending = []
                raise NonFiniteLossError(f"loss {bad[0]!r} became {row[bad[0]]} at step {step} ({self._where(row)})")
            self.history.append(row)
        self._pending = []

    def _where(self, row: dict[str, float]) -> str:
        return f"model {type(self).__name__}"

    def _progress(self, epoch: int) -> dict[str, str]:
        """The progress bar's postfix: the epoch and the newest logged loss."""
        last = self.history[-1] if self.history else {}
        name = "recon" if "recon" in last else next((k for k in last if k not in self._row(0)), None)
        return {"epoch": str(epoch), **({name: f"{last[name]:.3f}"} if name else {})}

    def end_epoch(self) -> None:
        """Called after every epoch, once its losses are on the host."""

    def extra_state(self) -> dict[str, float]:
        """What a model's trainer adds to the resumable state besides weights and random streams."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restores what `extra_state` saved."""

    def history_frame(self) -> pd.DataFrame:
        self._flush()
        return pd.DataFrame(self.history)

    def fit(
        self,
        images: Tensor,
        epochs: int | None = None,
        progress: bool = True,
        resume: str | os.PathLike | None = None,
        on_epoch: Callable[[int], None] | None = None,
    ) -> pd.DataFrame:
        """Runs `epochs` (default: the config's) over `images` (N, C, 32, 32), uint8 or float in
        [0, 1], shuffled by the config's seed; the last incomplete batch is dropped.

        With `resume`, the whole training state is saved to that file after every epoch, and a
        run stopped midway continues from its last finished epoch with the same result.
        `on_epoch(n)` is called after the n-th epoch (e.g. to score the model, cvgad.experiment.selection)."""
        epochs = self.cfg.epochs if epochs is None else epochs
        bs = min(self.cfg.batch_size, len(images))
        if bs < 2:
            raise ValueError(f"need at least 2 training images, got {len(images)}")
        generator = torch.Generator().manual_seed(self.cfg.seed)
        start = self._load_resume(Path(resume), generator) if resume is not None and Path(resume).exists() else 0
        data = images.to(self.device, memory_format=self.memory_format)  # on the device once, not per batch
        n_batches = len(images) // bs
        bar = tqdm(
            total=epochs * n_batches, initial=start * n_batches, disable=not progress, desc="train", unit="batch"
        )
        for epoch in range(start, epochs):
            order = torch.randperm(len(images), generator=generator).to(self.device)
            for b in range(n_batches):
                self.step(data[order[b * bs : (b + 1) * bs]])
                if self.steps % FINITE_CHECK_EVERY == 0:  # just read on the host: no extra wait
                    bar.set_postfix(self._progress(epoch))
                bar.update()
            self._flush()
            self.end_epoch()
            if on_epoch is not None:
                on_epoch(epoch + 1)
            if resume is not None:
                self._save_resume(Path(resume), epoch + 1, generator)
        bar.close()
        return self.history_frame()

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, dict]:
        """The weights of every module, by name (what `checkpoint.pt` holds)."""
        return {name: module.state_dict() for name, module in self.modules.items()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for name, module in self.modules.items():
            module.load_state_dict(state[name])

    def _save_resume(self, path: Path, epoch: int, generator: torch.Generator) -> None:
        state = {
            **self.state_dict(),
            **{name: opt.state_dict() for name, opt in self.optimizers.items()},
            "epoch": epoch,
            "steps": self.steps,
            "history": self.history,
            "batch_order_rng": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            **self.extra_state(),
            **{f"{name}_rng": g.get_state() for name, g in self.generators.items()},
            **{f"{name}_rng_device": g.device.type for name, g in self.generators.items()},
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        save_torch(state, path)  # a kill mid-save leaves the previous epoch's state intact

    def _load_resume(self, path: Path, generator: torch.Generator) -> int:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.load_state_dict(state)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
        self.steps, self.history = state["steps"], list(state["history"])
        self.load_extra_state(state)
        generator.set_state(state["batch_order_rng"])
        torch.set_rng_state(state["torch_rng"].cpu())
        for name, g in self.generators.items():
            if state.get(f"{name}_rng_device") == g.device.type:
                g.set_state(state[f"{name}_rng"].cpu())
            else:  # an older resume file, or one from another device type
                warnings.warn(
                    f"{path} holds no {name} random state for {g.device.type}; that stream restarts from its seed",
                    stacklevel=2,
                )
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
        return int(state["epoch"])


class Trainer(Loop):
    """Trains a CVAE and a critic with Algorithm 1. `step(x)` runs one batch; `fit(images)` runs epochs."""

    def __init__(
        self, model_cfg: ModelConfig, cfg: TrainConfig, cvae: CVAE | None = None, critic: Critic | None = None
    ) -> None:
        super().__init__(cfg)
        self.model_cfg = model_cfg
        self.cvae = self._place(cvae or CVAE(model_cfg))
        self.critic = self._place(critic or Critic(model_cfg))
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

    def extra_state(self) -> dict[str, float]:
        return {} if self.latent_reference is None else {"latent_reference": self.latent_reference}

    def load_extra_state(self, state: dict) -> None:
        self.latent_reference = state.get("latent_reference")
        self.threshold = self._gate_threshold()

    # ------------------------------------------------------------------ helpers
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext()

    def _fake(self, x: Tensor, recon: Tensor | None = None) -> Tensor:
        """Images the critic sees as generated (LossConfig.fake_source), without gradient."""
        with torch.no_grad():
            if self.loss_cfg.fake_source == "prior":
                means = self.cvae.means
                z = means[torch.randint(len(means), (len(x),), device=self.device)] + torch.randn(
                    len(x), means.shape[1], device=self.device
                )
                with frozen_batchnorm_stats(self.cvae):
                    return self.cvae.decoder(z).float()
            return (recon if recon is not None else self.cvae(x)["recon"]).detach().float()

    # ------------------------------------------------------------- the updates
    def _critic_update(self, x: Tensor, fake: Tensor, log: dict[str, Tensor]) -> None:
        with self._autocast():
            loss, wasserstein = L.critic_loss(self.critic, x, fake, self.loss_cfg.gradient_penalty)
        log["critic"] = self._update(self.opt_critic, loss)
        log["wasserstein"] = wasserstein

    def _latent_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with self._autocast():
            mu, logvar, _ = self.cvae.encoder(x)
            logits = self.cvae.classifier(reparameterize(mu, logvar))
        mu, logvar, logits = mu.float(), logvar.float(), logits.float()
        latent = L.latent_loss(mu, logvar, self.cvae.means, logits.softmax(dim=1))
        return (
            latent / mu.shape[1] if self.loss_cfg.latent_reduction == "mean" else latent,
            L.categorical_loss(logits, self.loss_cfg.categorical_form),
        )

    def _negative_update(self, n: int, gate: Tensor, log: dict[str, Tensor]) -> None:
        """II.E's negative training, applied where `gate` (T of Algorithm 1) is open."""
        z, short = L.sample_negative_codes(
            self.cvae.means, n, self.radius, self.loss_cfg.negative_radius, self.generators["negative"]
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

    def _mi_update(self, x: Tensor) -> Tensor:
        with self._autocast():
            mu, logvar, features = self.cvae.encoder(x)
            z = reparameterize(mu, logvar)
            loss = self.loss_cfg.mi * L.mutual_information_loss(self.cvae.fd, features, z).float()
        return self._update(self.opt_cvae, loss)

    def step(self, x: Tensor) -> dict[str, Tensor]:
        """One batch of Algorithm 1. Returns the loss of every update made, in order (keys
        from UPDATES, plus "wasserstein" after a critic update), as detached tensors. The
        negative update comes with "gate", true where it was applied (latent loss below T)."""
        lc, log = self.loss_cfg, dict[str, Tensor]()
        x = self._batch(x)
        wasserstein_on = lc.on("wasserstein")
        recon_on = (lc.on("ssim") and lc.ssim > 0) or (lc.on("l1") and lc.l1 > 0)
        self.cvae.train()
        self.critic.train()
        if self.count <= 3:
            with self._autocast():
                out = self.cvae(x)
            if wasserstein_on:
                self._critic_update(x, self._fake(x, out["recon"]), log)
            if recon_on:
                log["recon"] = self._update(self.opt_cvae, self._recon_loss(x, out["recon"].float()))
            if lc.on("latent"):
                latent, categorical = self._latent_terms(x)
                self._update(self.opt_cvae, lc.latent * latent + lc.categorical * categorical)
                log["latent"], log["categorical"] = latent.detach(), categorical.detach()
            elif lc.on("negative"):
                with torch.no_grad():
                    latent, _ = self._latent_terms(x)  # the gate still needs the value
            if lc.on("negative"):
                if self.latent_reference is None and lc.negative_gate == "first_epoch":
                    total, count = self._first_epoch_latent or (torch.zeros((), device=self.device), 0)
                    self._first_epoch_latent = (total + latent.detach(), count + 1)
                self._negative_update(len(x), latent.detach() < self.threshold, log)  # T of Algorithm 1
            if lc.on("mi"):
                log["mi"] = self._mi_update(x)
            if recon_on:
                with self._autocast():
                    recon = self.cvae(x)["recon"].float()
                log["recon_2"] = self._update(self.opt_cvae, self._recon_loss(x, recon))
        elif self.count == 4:
            if wasserstein_on:
                self._critic_update(x, self._fake(x), log)
        elif wasserstein_on:
            with self._autocast():
                fake = self._fake_with_grad(x)
                log["generator"] = self._update(
                    self.opt_cvae, lc.adversarial * L.generator_loss(self.critic, fake).float()
                )
        self._log(log)
        return log

    def _fake_with_grad(self, x: Tensor) -> Tensor:
        if self.loss_cfg.fake_source == "prior":
            means = self.cvae.means
            z = means[torch.randint(len(means), (len(x),), device=self.device)] + torch.randn(
                len(x), means.shape[1], device=self.device
            )
            return self.cvae.decoder(z)
        return self.cvae(x)["recon"]
