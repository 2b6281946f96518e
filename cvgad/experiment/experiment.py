"""One experiment end to end: data, split, training (Algorithm 1), scoring, files on disk.

With an output folder, the files are those of `cvgad.experiment.runs`: a rerun of a killed run continues
from its last finished epoch.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from cvgad.experiment import runs
from cvgad.experiment.data import Dataset, load_dataset
from cvgad.experiment.params import make_config
from cvgad.experiment.protocols import Split, make_split
from cvgad.experiment.selection import EpochSelector
from cvgad.model.config import ExperimentConfig
from cvgad.model.scoring import Errors, Evaluation, evaluate, evaluate_model
from cvgad.model.trainers import trainer_for
from cvgad.model.training import Trainer


@dataclass
class RunResult:
    """Everything a notebook may want to look at after a run."""

    config: ExperimentConfig
    dataset: Dataset
    split: Split
    trainer: Trainer  # a CVGADTrainer or a baseline's
    evaluation: Evaluation
    metrics: dict[str, Any]

    @property
    def history(self) -> pd.DataFrame:
        return self.trainer.history_frame()


def prepare(cfg: ExperimentConfig, dataset: Dataset | None = None) -> tuple[Dataset, Split]:
    """Loads the data (unless given) and splits it by the config's protocol and seed."""
    dataset = dataset or load_dataset(cfg.data.dataset, cfg.data.data_root)
    return dataset, make_split(dataset.labels, cfg.data, cfg.train.seed)


def _evaluate(trainer: Trainer, dataset: Dataset, split: Split, cfg: ExperimentConfig) -> Evaluation:
    """Scores the test set as cfg.evaluation says; the deployable threshold comes from the
    validation normals (else the training ones), GPND's from them plus the validation outliers."""
    reference = split.val if len(split.val) else split.train
    return evaluate_model(
        trainer.scorer, dataset.images, split.test, split.test_labels, reference, cfg.evaluation, cfg.train.seed,
        split.val_outliers,
    )  # fmt: skip


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    dataset: Dataset | None = None,
    on_epoch: Callable[[int, Trainer], None] | None = None,
) -> RunResult:
    """Trains on the normal training images, scores the test set, and (with `out_dir`) writes the run files.
    `on_epoch(n, trainer)` is called after the n-th epoch, and with n = 0 before training (unless resuming)."""
    began = runs.begin()
    dataset, split = prepare(cfg, dataset)
    if out_dir is not None:
        runs.start(out_dir, cfg)
    trainer = trainer_for(cfg.model, cfg.train)
    resume = runs.resume_path(out_dir) if out_dir is not None else None
    resuming = resume is not None and resume.exists()
    selector = EpochSelector(out_dir, resuming) if cfg.train.select != "last" else None

    def after_epoch(epoch: int) -> None:
        if selector is not None:
            selector.after_epoch(epoch, lambda: _evaluate(trainer, dataset, split, cfg), trainer.state_dict)
        if on_epoch is not None:
            on_epoch(epoch, trainer)

    if on_epoch is not None and not resuming:
        on_epoch(0, trainer)
    trainer.fit(dataset.images[torch.as_tensor(split.train)], progress=progress, resume=resume, on_epoch=after_epoch)
    selection: dict[str, Any] = {}
    if selector is not None:
        trainer.load_state_dict(selector.state(cfg.train.select))
        summary = selector.summary()
        picked = "best_test_oracle" if cfg.train.select == "best_test" else cfg.train.select
        selection = {
            "select": cfg.train.select,
            "selected_epoch": summary[picked]["epoch"],
            "selection": summary,
            "scoring_share_of_training": selector.scoring_share(),
        }
    evaluation = _evaluate(trainer, dataset, split, cfg)
    task = (
        {"normal_class": cfg.data.normal_class}
        if cfg.data.protocol == "one_class"
        else {"anomaly_class": cfg.data.anomaly_class}
    )
    metrics = {
        **evaluation.metrics,
        **split.counts(),
        "dataset": cfg.data.dataset,
        "protocol": cfg.data.protocol,
        "model": cfg.model.model,
        **task,
        "normal_classes": split.normal_classes,
        "seed": cfg.train.seed,
        "epochs": cfg.train.epochs,
        "disabled": list(cfg.train.losses.disabled),
        "device": str(trainer.device),
        "data_source": dataset.source,
        **selection,
        "wall_seconds": time.perf_counter() - began.clock + (trainer.earlier["wall_seconds"] or 0.0),
        "provenance": runs.provenance(began, str(trainer.device), earlier=trainer.earlier),
    }
    if out_dir is not None:
        reference = split.val if len(split.val) else split.train
        outliers = evaluation.val_outlier_errors
        scores = runs.score_arrays(
            split.test, split.test_labels, evaluation.errors.terms(), reference, evaluation.val_errors.terms(),
            split.val_outliers, outliers.terms() if outliers is not None else None,
        )  # fmt: skip
        runs.finish(out_dir, trainer.history_frame(), trainer.state_dict(), metrics, scores)
    return RunResult(cfg, dataset, split, trainer, evaluation, metrics)


def load_run(run_dir: str | os.PathLike, device: str = "auto") -> tuple[ExperimentConfig, Trainer]:
    """The config (with `device`) and a Trainer holding the saved weights of a finished run; its
    networks eager (compiling would cost minutes of scoring, for the same numbers)."""
    cfg, state = runs.load(run_dir, "cpu")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=device, compile=False))
    trainer = trainer_for(cfg.model, cfg.train)
    trainer.load_state_dict(state)
    return cfg, trainer


def evaluate_run(
    run_dir: str | os.PathLike, device: str = "auto", data_root: str | None = None, **evaluation: Any
) -> dict[str, Any]:
    """Scores a saved run again (same data, split and weights), with EvalConfig fields given in
    `evaluation` replacing the run's own, and writes the metrics to the run folder
    (`evaluation.json` for the run's own settings, else a file named after the changed ones).
    With no field given and the run's scores kept, the metrics are recomputed from them, without
    the model or the data."""
    if all(v is None for v in evaluation.values()) and (kept := metrics_from_scores(run_dir)) is not None:
        recomputed: dict[str, Any] = {**kept, "recomputed_from": runs.SCORES}
        runs.write_evaluation(run_dir, recomputed)
        return recomputed
    cfg, trainer = load_run(run_dir, device)
    if data_root is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_root=data_root))
    changed = {k: v for k, v in evaluation.items() if v is not None and getattr(cfg.evaluation, k) != v}
    cfg = dataclasses.replace(cfg, evaluation=dataclasses.replace(cfg.evaluation, **changed))
    dataset, split = prepare(cfg)
    metrics = {
        **_evaluate(trainer, dataset, split, cfg).metrics,
        **split.counts(),
        "evaluation": dataclasses.asdict(cfg.evaluation),
        "device": str(trainer.device),
    }
    runs.write_evaluation(run_dir, metrics, changed)
    return metrics


def metrics_from_scores(run_dir: str | os.PathLike) -> dict[str, float] | None:
    """Every metric of `cvgad.model.scoring.evaluate`, recomputed from the run's kept scores (the
    same numbers as at training time); None when the run kept none."""
    kept = runs.read_scores(run_dir)
    if kept is None:
        return None
    test, labels, val, outliers = kept
    return evaluate(Errors(**test), labels, Errors(**val), Errors(**outliers) if outliers else None).metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """One line for people: AUC, the paper's F1 and the deployable F1, each with its floor, and
    where the run has validation outliers (one_class), the F1 in GPND's convention with its floor."""
    line = (
        f"AUC {metrics['auc']:.3f} (chance 0.5) | F1 at best test threshold (paper's metric) "
        f"{metrics['f1_best']:.3f} | F1 at validation threshold {metrics['f1_val']:.3f} "
        f"(flag-everything floor {metrics['f1_floor']:.3f}) | AUPRC {metrics['auprc']:.3f}"
    )
    if "f1_gpnd" in metrics:
        line += (
            f" | F1 in GPND's convention (inliers positive, threshold from validation) {metrics['f1_gpnd']:.3f}"
            f" (floor {metrics['f1_gpnd_floor']:.3f})"
        )
    return line


__all__ = ["make_config", "run_experiment", "load_run", "evaluate_run", "RunResult", "summary_line", "prepare"]
