"""One experiment end to end: data, split, training (Algorithm 1), scoring, files on disk.

A run directory holds `config.json`, `history.csv`, `checkpoint.pt` (state dicts only, loaded
with `weights_only=True`) and `metrics.json`, written last and atomically, so a directory
with a readable `metrics.json` is a finished run. While training, `resume.pt` holds the state
after the last finished epoch: rerunning a killed run continues from there.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cvgad.atomic import atomic_write_text
from cvgad.config import DataConfig, ExperimentConfig, LossConfig, ModelConfig, TrainConfig
from cvgad.data import Dataset, load_dataset
from cvgad.protocols import Split, make_split
from cvgad.scoring import Evaluation, evaluate_model
from cvgad.trainer import Trainer

#: Defaults sized for the CPU: the 8x8 digits need a small network, others the DCGAN width.
DEFAULT_EPOCHS = {"digits": 15}
DEFAULT_WIDTH = {"digits": 32}
GREY = ("digits", "mnist", "fashion_mnist")
MNIST_LIKE = ("digits", "mnist")  # III.C: latent weight 15 "for the simplest MNIST dataset"


def make_config(dataset: str = "digits", anomaly_class: int = 1, epochs: int | None = None, seed: int = 0,
                device: str = "auto", data_root: str | None = None, disabled: Sequence[str] = (),
                protocol: str = "leave_one_out", train_subset: int | None = None, test_subset: int | None = None,
                width: int | None = None, latent_dim: int = 256, batch_size: int = 64,
                n_clusters: int | None = None, mean_init_scale: float = 0.05, **losses: Any) -> ExperimentConfig:
    """An ExperimentConfig from flat keyword arguments (the notebooks' and CLI's parameters).

    Dataset-dependent defaults: channels (1 for grey data), the latent weight (15 on MNIST-like
    data, III.C), width and epochs (smaller for digits), and K = n_clusters (the number of
    normal classes of the protocol). Extra keywords set LossConfig fields.
    """
    data_kwargs = {key: losses.pop(key) for key in list(losses) if key in ("outlier_fraction", "fold", "n_inliers", "val_fraction")}
    if protocol == "leave_one_out":
        k = 99 if dataset == "coil100" else 9
    else:
        k = data_kwargs.get("n_inliers", 1) if protocol == "coil100" else 1
    losses.setdefault("latent", 15.0 if dataset in MNIST_LIKE else 5.0)
    return ExperimentConfig(
        data=DataConfig(dataset=dataset, protocol=protocol, anomaly_class=anomaly_class, data_root=data_root,
                        train_subset=train_subset, test_subset=test_subset, **data_kwargs),
        model=ModelConfig(channels=1 if dataset in GREY else 3, latent_dim=latent_dim,
                          n_clusters=n_clusters or k, width=width or DEFAULT_WIDTH.get(dataset, 64),
                          mean_init_scale=mean_init_scale),
        train=TrainConfig(epochs=DEFAULT_EPOCHS.get(dataset, 15) if epochs is None else epochs, batch_size=batch_size,
                          seed=seed, device=device, losses=LossConfig(disabled=tuple(disabled), **losses)),
    )


@dataclass
class RunResult:
    """Everything a notebook may want to look at after a run."""

    config: ExperimentConfig
    dataset: Dataset
    split: Split
    trainer: Trainer
    evaluation: Evaluation
    metrics: dict[str, Any]

    @property
    def history(self) -> pd.DataFrame:
        return self.trainer.history_frame()


def prepare(cfg: ExperimentConfig, dataset: Dataset | None = None) -> tuple[Dataset, Split]:
    """Loads the data (unless given) and splits it by the config's protocol and seed."""
    dataset = dataset or load_dataset(cfg.data.dataset, cfg.data.data_root)
    return dataset, make_split(dataset.labels, cfg.data, cfg.train.seed)


def run_experiment(cfg: ExperimentConfig, out_dir: str | os.PathLike | None = None, progress: bool = True,
                   dataset: Dataset | None = None) -> RunResult:
    """Trains on the normal training images, scores the test set, and (with `out_dir`) writes the run files."""
    start = time.perf_counter()
    dataset, split = prepare(cfg, dataset)
    if out_dir is not None:
        out = Path(out_dir)
        (out / "metrics.json").unlink(missing_ok=True)  # a rerun is unfinished until it ends
        atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
    trainer = Trainer(cfg.model, cfg.train)
    resume = Path(out_dir) / "resume.pt" if out_dir is not None else None
    trainer.fit(dataset.images[torch.as_tensor(split.train)], progress=progress, resume=resume)
    evaluation = evaluate_model(trainer.cvae, dataset.images, split.test, split.test_labels,
                                split.val if len(split.val) else split.train)
    metrics = {**evaluation.metrics, **split.counts(), "dataset": cfg.data.dataset, "protocol": cfg.data.protocol,
               "anomaly_class": cfg.data.anomaly_class, "normal_classes": split.normal_classes, "seed": cfg.train.seed,
               "epochs": cfg.train.epochs, "disabled": list(cfg.train.losses.disabled), "device": str(trainer.device),
               "data_source": dataset.source, "wall_seconds": time.perf_counter() - start}
    if out_dir is not None:
        atomic_write_text(out / "history.csv", trainer.history_frame().to_csv(index=False))
        tmp = out / ".checkpoint.pt.tmp"
        torch.save(trainer.state_dict(), tmp)
        os.replace(tmp, out / "checkpoint.pt")
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
        resume.unlink(missing_ok=True)
    return RunResult(cfg, dataset, split, trainer, evaluation, metrics)


def load_run(run_dir: str | os.PathLike, device: str = "auto") -> tuple[ExperimentConfig, Trainer]:
    """The config and a Trainer holding the saved weights of a finished run."""
    run = Path(run_dir)
    for name in ("config.json", "checkpoint.pt"):
        if not (run / name).exists():
            raise FileNotFoundError(f"{run / name} is missing; {run} is not a finished run directory (see `cvgad train --out`)")
    cfg = ExperimentConfig.from_dict(json.loads((run / "config.json").read_text()))
    cfg.train.device = device
    trainer = Trainer(cfg.model, cfg.train)
    trainer.load_state_dict(torch.load(run / "checkpoint.pt", map_location=trainer.device, weights_only=True))
    return cfg, trainer


def evaluate_run(run_dir: str | os.PathLike, device: str = "auto", data_root: str | None = None) -> dict[str, Any]:
    """Scores a saved run again (same data, split and weights) and writes `evaluation.json`."""
    cfg, trainer = load_run(run_dir, device)
    if data_root is not None:
        cfg.data.data_root = data_root
    dataset, split = prepare(cfg)
    evaluation = evaluate_model(trainer.cvae, dataset.images, split.test, split.test_labels,
                                split.val if len(split.val) else split.train)
    metrics = {**evaluation.metrics, **split.counts(), "device": str(trainer.device)}
    atomic_write_text(Path(run_dir) / "evaluation.json", json.dumps(metrics, indent=2))
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """One line for people: AUC, the paper's F1 and the deployable F1, each with its floor."""
    return (f"AUC {metrics['auc']:.3f} (chance 0.5) | F1 at best test threshold (paper's metric) "
            f"{metrics['f1_best']:.3f} | F1 at validation threshold {metrics['f1_val']:.3f} "
            f"(flag-everything floor {metrics['f1_floor']:.3f}) | AUPRC {metrics['auprc']:.3f}")


__all__ = ["make_config", "run_experiment", "load_run", "evaluate_run", "RunResult", "atomic_write_text",
           "summary_line", "prepare"]
