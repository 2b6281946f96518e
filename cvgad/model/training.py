"""What training every model shares: epochs of shuffled batches, a loss history checked for NaN,
and a state saved after each epoch so that a killed run resumes with the same result.

A model's trainer (`cvgad.model.algorithm1.CVGADTrainer`, the baselines' in `cvgad.model.baselines`)
subclasses `Trainer` and implements `step`. A step never waits for the device: losses stay there
and reach the host every FINITE_CHECK_EVERY steps, when they are checked.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from cvgad.atomic import save_torch
from cvgad.model.config import TrainConfig
from cvgad.model.networks import as_float_images

M = TypeVar("M", bound=nn.Module)

#: `Trainer.earlier` of a run no earlier process worked on.
NOTHING_EARLIER: dict[str, float | None] = {"processes": 0, "wall_seconds": 0.0, "cpu_seconds": 0.0}
#: How often (in steps) losses are checked for NaN/inf; checking is a host synchronisation.
FINITE_CHECK_EVERY = 25


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


class Trainer:
    """Epochs over shuffled batches of normal images, the loss history, the resumable state.

    A model's trainer sets `modules` (saved in the checkpoint under these names), `optimizers`,
    `scorer` (the module `cvgad.model.scoring` scores images with, II.F) and implements `step`;
    `progress_loss` names the loss its progress bar shows (default: the first logged)."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    progress_loss: str | None = None

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
        #: What the processes before this one spent on a resumed run, up to its last saved epoch
        #: (their number, wall and CPU seconds; None where a resume file predates this record).
        self.earlier: dict[str, float | None] = dict(NOTHING_EARLIER)
        self._clocks = (time.perf_counter(), time.process_time())  # since this process built the trainer

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
        losses = [k for k in last if k not in self._row(0)]
        name = self.progress_loss if self.progress_loss in losses else next(iter(losses), None)
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
        `on_epoch(n)` is called after the n-th epoch (e.g. to score the model,
        cvgad.experiment.selection)."""
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

    def spent(self) -> dict[str, float | None]:
        """The processes that trained this run so far, this one included, and their wall and CPU
        seconds since each built its trainer (CPU seconds leave out time a process was stopped)."""
        now = (time.perf_counter() - self._clocks[0], time.process_time() - self._clocks[1])
        wall, cpu = (self.earlier[k] for k in ("wall_seconds", "cpu_seconds"))
        return {
            "processes": int(self.earlier["processes"] or 0) + 1,
            "wall_seconds": None if wall is None else wall + now[0],
            "cpu_seconds": None if cpu is None else cpu + now[1],
        }

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
            "earlier": self.spent(),
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
        self.earlier = state.get("earlier", {"processes": 1, "wall_seconds": None, "cpu_seconds": None})
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
