"""Why our numbers differ from the paper's: each factor of the gap, measured (issue 9).

A forensics run trains one Table 1 preset (`ablations/table1.yaml`: `cpu`, this project's
training, or `released_cpu`, the authors' released training) and scores the model before the
first epoch and after every epoch in each of `PASSES` (batchnorm with running or batch
statistics, the test set shuffled or normals first). One pass per setting gives every score
term; every score of `SCORES` is then summed from those terms, so an evaluation factor never
needs retraining. The rows go to `factors.csv` in the run folder (`cvgad.experiment.runs` names
the files and says when a run is finished).

`factor_table` reads the runs back as the issue's table: the project's evaluation, each factor
alone, and all combined, with the epoch each selection rule picks (the test-set pick labelled
an oracle). Run with `cvgad forensics run|study|summary`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from cvgad.atomic import atomic_write_text
from cvgad.experiment import runs
from cvgad.experiment.experiment import prepare, run_experiment
from cvgad.experiment.params import make_config
from cvgad.experiment.protocols import Split
from cvgad.experiment.selection import MERIT, validation_error
from cvgad.model.config import PAPER_SCORE, EvalConfig, ExperimentConfig
from cvgad.model.scoring import Errors, evaluate, model_errors, png_bits_per_dimension, scoring_order
from cvgad.model.training import NonFiniteLossError, Trainer
from cvgad.workbench.grid import check_settings, load_grid
from cvgad.workbench.statistics import signed_rank_p, t_interval

TABLE1 = Path("ablations") / "table1.yaml"  # in the checkout (runs.checkout)
#: The scoring passes: batchnorm mode and test order (the order matters with batch statistics only).
PASSES = {
    "eval": EvalConfig(),
    "train_shuffled": EvalConfig(bn_at_test="train"),
    "train_normals_first": EvalConfig(bn_at_test="train", test_order="normals_first"),
}
#: Every term a pass computes; the complexity term needs no model and is computed once.
MODEL_TERMS = "ssim+logssim+l1+mi+cluster"
#: The released code's score, and the part of it a model without the feature discriminator has.
RELEASED_SCORE, RELEASED_SCORE_NO_MI = "logssim+l1+mi", "logssim+l1"
#: The scores summed from a pass's terms: II.F's, its -log SSIM reading, the released code's
#: third term, and two that use the model beyond reconstruction (cluster; complexity, subtracted).
SCORES = (
    PAPER_SCORE,
    RELEASED_SCORE_NO_MI,
    f"{PAPER_SCORE}+mi",
    RELEASED_SCORE,
    "cluster",
    f"{PAPER_SCORE}+cluster",
    f"{PAPER_SCORE}+complexity",
)
METRICS = ("auc", "auprc", "f1_best", "f1_val", "f1_floor")


def _pick(errors: Errors, score: str) -> Errors:
    """The terms of `score` from errors that hold every term."""
    return Errors(**{field: getattr(errors, field) for field in Errors.fields_of(EvalConfig(score=score).terms)})


def _has_terms(errors: Errors, score: str) -> bool:
    """Whether the model gave every term of `score` (the autoencoders have no mi or cluster term)."""
    return all(getattr(errors, field) is not None for field in Errors.fields_of(EvalConfig(score=score).terms))


def epoch_rows(
    model: torch.nn.Module,
    images: torch.Tensor,
    split: Split,
    complexity: dict[str, np.ndarray],
    seed: int,
) -> list[dict[str, Any]]:
    """Metrics of every score in every pass, for the model as it is now; `complexity` holds the
    PNG bits per dimension of the test and validation images (model-free, computed once a run)."""
    test_images, val_images = images[torch.as_tensor(split.test)], images[torch.as_tensor(split.val)]
    labels = split.test_labels
    rows = []
    for name, cfg in PASSES.items():
        cfg = dataclasses.replace(cfg, score=MODEL_TERMS)
        order = scoring_order(labels, cfg.test_order, seed)
        test_errors = model_errors(model, test_images, cfg, order)
        val_errors = model_errors(model, val_images, cfg)
        test_errors.complexity, val_errors.complexity = complexity["test"], complexity["val"]
        evaluations = {
            score: evaluate(_pick(test_errors, score), labels, _pick(val_errors, score))
            for score in SCORES
            if _has_terms(test_errors, score)
        }
        val_error = validation_error(evaluations[PAPER_SCORE])  # the "val" rule's, on II.F's terms
        for score, evaluation in evaluations.items():
            metrics = evaluation.metrics
            rows.append({"pass": name, "score": score, **{k: metrics[k] for k in METRICS}, "val_error": val_error})
    return rows


def _what(config: dict[str, Any]) -> dict[str, Any]:
    """What a config computes, as JSON holds it: without where it runs (device, data root)."""
    config = json.loads(json.dumps(config))
    config["data"].pop("data_root", None)
    config["train"].pop("device", None)
    return config


def conflict(cfg: ExperimentConfig, out_dir: str | os.PathLike) -> str | None:
    """Why `out_dir` cannot hold a run of `cfg` (it holds another configuration's), or None. A setting
    added after the run was recorded counts at its default (at the value the run had, where the
    default changed: `runs.upgrade_config`), as `cvgad ablate` counts it."""
    recorded = runs.read_json(Path(out_dir) / runs.CONFIG)
    if recorded is None:
        return None
    as_run = ExperimentConfig.from_dict(runs.upgrade_config(recorded)).to_dict()
    if _what(as_run) != _what(cfg.to_dict()):
        return f"{out_dir} holds a run of another configuration; remove it or choose another --out"
    return None


def run(cfg: ExperimentConfig, out_dir: str | os.PathLike, progress: bool = False) -> pd.DataFrame:
    """Trains `cfg` into `out_dir` (resumable: a killed run continues from its last epoch), scoring
    every pass and score before training and after each epoch into factors.csv."""
    out = Path(out_dir)
    if (problem := conflict(cfg, out)) is not None:
        raise ValueError(problem)
    out.mkdir(parents=True, exist_ok=True)
    (out / runs.FAILED).unlink(missing_ok=True)
    if runs.forensics_finished(out):
        return pd.read_csv(out / runs.FACTORS)
    if not (out / runs.FACTORS).exists():  # a resume file without its rows (epoch 0 among them): start afresh
        runs.resume_path(out).unlink(missing_ok=True)
    resuming = runs.resume_path(out).exists()
    rows: list[dict[str, Any]] = pd.read_csv(out / runs.FACTORS).to_dict("records") if resuming else []
    dataset, split = prepare(cfg)
    complexity = {
        "test": png_bits_per_dimension(dataset.images[torch.as_tensor(split.test)]),
        "val": png_bits_per_dimension(dataset.images[torch.as_tensor(split.val)]),
    }

    def score(epoch: int, trainer: Trainer) -> None:
        start = time.perf_counter()
        new = epoch_rows(trainer.scorer, dataset.images, split, complexity, cfg.train.seed)
        seconds = time.perf_counter() - start
        rows[:] = [r for r in rows if r["epoch"] != epoch] + [
            {"epoch": epoch, **r, "score_seconds": seconds} for r in new
        ]
        atomic_write_text(out / runs.FACTORS, pd.DataFrame(rows).to_csv(index=False))

    result = run_experiment(cfg, out, progress=progress, dataset=dataset, on_epoch=score)
    metrics, history = result.metrics, result.history
    kept = ("dataset", "anomaly_class", "seed", "epochs", "n_train", "n_val", "n_test_normal", "n_test_anomalous")
    settings = {
        "train_subset": cfg.data.train_subset,
        "width": cfg.model.width,
        "latent_dim": cfg.model.latent_dim,
        "logvar": cfg.model.logvar,
        "lr": cfg.train.lr,
        "l1": cfg.train.losses.l1,
        "negative_gate": cfg.train.losses.negative_gate,
        "negative_threshold": cfg.train.losses.negative_threshold,
        "negative_l1_floor": cfg.train.losses.negative_l1_floor,
    }
    record = {k: metrics[k] for k in kept} | settings | {"wall_seconds": metrics["wall_seconds"]}
    record["provenance"] = metrics["provenance"]
    record["latent_loss_max"] = float(history["latent"].max()) if "latent" in history else None
    runs.finish_forensics(out, record)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the factor table
#: Each row of the factor table: (label, training recipe, pass, score, selection rule). The first
#: is this project's evaluation; then each factor alone; then all of them together.
FACTOR_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    ("this project (running statistics, SSIM+L1, last epoch)", "cpu", "eval", PAPER_SCORE, "last"),
    ("untrained network (epoch 0)", "cpu", "eval", PAPER_SCORE, "untrained"),
    ("batch statistics, shuffled test set", "cpu", "train_shuffled", PAPER_SCORE, "last"),
    ("batch statistics, normals first (released)", "cpu", "train_normals_first", PAPER_SCORE, "last"),
    ("score -log SSIM + L1 (II.C's SSIM loss)", "cpu", "eval", "logssim+l1", "last"),
    ("score + FD term (released)", "cpu", "eval", f"{PAPER_SCORE}+mi", "last"),
    ("score: distance to the nearest cluster mean", "cpu", "eval", "cluster", "last"),
    ("score SSIM+L1 + cluster distance", "cpu", "eval", f"{PAPER_SCORE}+cluster", "last"),
    ("score SSIM+L1 - PNG complexity (Serra et al.)", "cpu", "eval", f"{PAPER_SCORE}+complexity", "last"),
    ("epoch picked on validation normals", "cpu", "eval", PAPER_SCORE, "val"),
    ("best epoch on the test set (ORACLE, released)", "cpu", "eval", PAPER_SCORE, "best_test"),
    ("released training (latent 300, lr 2e-4, L1 50, no gate)", "released_cpu", "eval", PAPER_SCORE, "last"),
    ("released evaluation, all combined (ORACLE)", "cpu", "train_normals_first", RELEASED_SCORE, "best_test"),
    ("released training + evaluation (ORACLE)", "released_cpu", "train_normals_first", RELEASED_SCORE, "best_test"),
)


def select(curve: pd.DataFrame, rule: str) -> pd.Series:
    """The row `rule` picks from one run's per-epoch rows of one pass and score: last, untrained
    (epoch 0), val (lowest validation error, normal data only) or best_test (an oracle)."""
    trained = curve[curve["epoch"] > 0]
    if rule == "last":
        return trained.loc[trained["epoch"].idxmax()]
    if rule == "untrained":
        return curve[curve["epoch"] == 0].iloc[0]
    if rule in MERIT:  # cvgad.experiment.selection's rules
        return trained.loc[trained.apply(MERIT[rule], axis=1).idxmax()]
    raise ValueError(f"rule={rule!r} is not valid; choose last, untrained, {', '.join(MERIT)}")


def collect(root: str | os.PathLike) -> pd.DataFrame:
    """Every finished run's factors.csv under `root` (<recipe>/seed<k>/), with recipe and seed."""
    frames = []
    for path in sorted(Path(root).glob(f"*/seed*/{runs.FACTORS}")):
        if not runs.forensics_finished(path.parent):
            continue
        frame = pd.read_csv(path)
        frames.append(frame.assign(recipe=path.parent.parent.name, seed=int(path.parent.name.removeprefix("seed"))))
    if not frames:
        raise FileNotFoundError(f"no finished forensics runs under {root}")
    return pd.concat(frames, ignore_index=True)


def cell(rows: pd.DataFrame, pass_: str, score: str, recipe: str | None = None) -> pd.DataFrame:
    """The rows of one scoring pass and score (and training recipe, if given)."""
    mask = (rows["pass"] == pass_) & (rows["score"] == score)
    return rows[mask & (rows["recipe"] == recipe)] if recipe is not None else rows[mask]


def picks(rows: pd.DataFrame) -> pd.DataFrame:
    """Per FACTOR_ROWS entry and seed: the epoch its rule picks, its metrics, and `auc_diff`, its
    AUC less the project's evaluation of the same seed (the first entry)."""
    picked = []
    for label, recipe, pass_, score, rule in FACTOR_ROWS:
        for seed, curve in cell(rows, pass_, score, recipe).groupby("seed"):
            row = select(curve, rule)
            picked.append({"factor": label, "seed": seed, "epoch": int(row["epoch"]), **{k: row[k] for k in METRICS}})
    frame = pd.DataFrame(picked)
    if not frame.empty:
        base = frame[frame["factor"] == FACTOR_ROWS[0][0]].set_index("seed")["auc"]
        frame["auc_diff"] = frame["auc"] - frame["seed"].map(base)
    return frame


def factor_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per FACTOR_ROWS entry: AUC mean, std and n over seeds, the paired difference to the
    project's evaluation (same seeds), and the epochs picked."""
    frame = picks(rows)
    if frame.empty:
        return frame
    out = frame.groupby("factor", sort=False).agg(
        auc_mean=("auc", "mean"),
        auc_std=("auc", "std"),
        n=("auc", "size"),
        diff_mean=("auc_diff", "mean"),
        diff_std=("auc_diff", "std"),
        f1_best=("f1_best", "mean"),
        f1_val=("f1_val", "mean"),
        f1_floor=("f1_floor", "mean"),
        epochs=("epoch", lambda e: " ".join(map(str, e))),
    )
    return out.reset_index()


def _budget_runs(root: str | os.PathLike) -> Iterator[tuple[str, int, int, str, int, pd.DataFrame, dict[str, Any]]]:
    """Every finished run under `root` (<images>x<epochs>/<recipe>/seed<k>), budgets in order: its
    budget folder, training images (`all`: the run's own count), epochs, recipe, seed, per-epoch
    rows and run record."""
    for folder in sorted(Path(root).iterdir(), key=lambda p: _budget_order(p.name)):
        finished = folder.is_dir() and any(runs.forensics_finished(run) for run in folder.glob("*/seed*"))
        if _budget(folder.name) == (0, 0) or not finished:
            continue
        for (recipe, seed), curve in collect(folder).groupby(["recipe", "seed"]):
            record = runs.read_run_record(folder / str(recipe) / f"seed{seed}")
            images, epochs = _budget(folder.name)
            images = images if images > 0 else int(record["n_train"])  # `all`: every training image
            yield folder.name, images, epochs, str(recipe), int(seed), curve, record


def _scored(curve: pd.DataFrame, pass_: str, score: str) -> pd.DataFrame:
    """One pass and score of a run's rows; for the released score, a model without the FD term
    (the autoencoders) gives the released terms it has."""
    if (scored := cell(curve, pass_, score)).empty and score == RELEASED_SCORE:
        scored = cell(curve, pass_, RELEASED_SCORE_NO_MI)
    return scored


def budget_table(root: str | os.PathLike) -> pd.DataFrame:
    """The budget curve: per budget folder under `root` (<train_subset>x<epochs>/<recipe>/seed<k>),
    recipe and seed, the AUC of the released evaluation (at the best epoch, an oracle, and at the
    last), of this project's evaluation (last epoch) and of the untrained network (epoch 0, ours),
    with the run's wall time."""
    views = {
        "auc_released_oracle": ("train_normals_first", RELEASED_SCORE, "best_test"),
        "auc_released_last": ("train_normals_first", RELEASED_SCORE, "last"),
        "auc_ours_last": ("eval", PAPER_SCORE, "last"),
        "auc_untrained": ("eval", PAPER_SCORE, "untrained"),
    }
    lines = []
    for _, images, epochs, recipe, seed, curve, record in _budget_runs(root):
        line = {"recipe": recipe, "train_images": images, "epochs": epochs, "image_epochs": images * epochs}
        line |= {"seed": seed, "wall_seconds": record.get("wall_seconds")}
        for name, (pass_, score, rule) in views.items():
            line[name] = select(_scored(curve, pass_, score), rule)["auc"]
        lines.append(line)
    return pd.DataFrame(lines)


def epoch_curves(root: str | os.PathLike) -> pd.DataFrame:
    """Every epoch of every run under `root` (epoch 0: the untrained network): the AUC of this
    project's evaluation and of the released one (its oracle is the best of a run's epochs), with
    the training images x epochs seen so far; one training gives every point of its curve."""
    frames = []
    for budget, images, _, recipe, seed, curve, _ in _budget_runs(root):
        ours = cell(curve, "eval", PAPER_SCORE).set_index("epoch")["auc"]
        released = _scored(curve, "train_normals_first", RELEASED_SCORE).set_index("epoch")["auc"]
        frame = pd.DataFrame({"auc_ours": ours, "auc_released": released}).rename_axis("epoch").reset_index()
        frames.append(frame.assign(budget=budget, recipe=recipe, seed=seed, image_epochs=frame["epoch"] * images))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def paired_by_budget(table: pd.DataFrame, column: str, a: str = "cvgad", b: str = "ae") -> pd.DataFrame:
    """Per budget of `budget_table`'s `table`: recipe `a` less recipe `b` in `column`, paired by
    seed (seeds with both only; n = 0 for a budget where one recipe has no finished run yet): n,
    the mean difference with its 95% t-interval, how many seeds `a` is ahead on, and the Wilcoxon
    signed-rank p (3 pairs cannot go below 0.25)."""
    lines = []
    for (images, epochs), group in table.groupby(["train_images", "epochs"], sort=False):
        wide = group.pivot_table(index="seed", columns="recipe", values=column).reindex(columns=[a, b]).dropna()
        diff = (wide[a] - wide[b]).to_numpy()
        low, high = t_interval(diff)
        lines.append(
            {
                "train_images": images,
                "epochs": epochs,
                "n": len(diff),
                "diff_mean": float(diff.mean()) if len(diff) else float("nan"),
                "ci_low": low,
                "ci_high": high,
                "ahead": int((diff > 0).sum()),
                "wilcoxon_p": signed_rank_p(diff),
            }
        )
    return pd.DataFrame(lines)


def _budget(name: str) -> tuple[int, int]:
    """`5000x4` -> (5000, 4); `allx15` (every training image) -> (-1, 15); anything else (0, 0)."""
    images, _, epochs = name.partition("x")
    if not epochs.isdigit() or not (images.isdigit() or images == "all"):
        return (0, 0)
    return (int(images) if images.isdigit() else -1, int(epochs))


def _budget_order(name: str) -> tuple[float, int]:
    images, epochs = _budget(name)
    return (images if images >= 0 else float("inf"), epochs)


# ------------------------------------------------------------------ the runs of a command
#: Settings a forensics run fixes: it scores every variant itself, after every epoch, and the
#: seeds come from --seeds.
FIXED = {"select": "last", "score": PAPER_SCORE, "bn_at_test": "eval", "test_order": "shuffled", "disabled": ()}


def _config(preset: str, seed: int, overrides: dict[str, Any], data_root: str | None) -> ExperimentConfig:
    fixed = sorted(set(overrides) & (set(FIXED) | {"seed", "data_root"}))
    if fixed:
        raise ValueError(f"--set {', '.join(fixed)}: fixed by a forensics run (seeds: --seeds, data: --data-root)")
    check_settings("--set", overrides)
    settings, _ = load_grid(runs.checkout() / TABLE1).resolve(preset)
    settings = settings | overrides | FIXED | {"seed": seed}
    if data_root is not None:
        settings["data_root"] = data_root
    return make_config(**settings)


@dataclasses.dataclass(frozen=True)
class Planned:
    """One run of a study: its folder (relative to the study's --out), seed and config."""

    folder: Path
    seed: int
    cfg: ExperimentConfig


def load_study(path: str | os.PathLike, data_root: str | None = None) -> list[Planned]:
    """The runs of a study file (e.g. ablations/scale.yaml): a table1.yaml `preset`, `settings` over
    it, `seeds`, and `cross`, axes of named settings crossed with each other. A run's folder is
    <value of each axis>/seed<k>; the runs come first axis outermost, then seed, then the other axes,
    so that the runs of one seed and first-axis value (e.g. a budget's models) finish together.
    Every config is checked before it is returned."""
    spec = yaml.safe_load(Path(path).read_text())
    known = {"name", "description", "preset", "settings", "seeds", "cross"}
    if not isinstance(spec, dict) or not {"preset", "seeds", "cross"} <= set(spec) or set(spec) - known:
        raise ValueError(f"{path}: a study needs preset, seeds and cross (and may have {', '.join(sorted(known))})")
    axes = list(spec["cross"].items())
    first, rest = axes[0], axes[1:]
    combos: list[list[tuple[str, dict[str, Any]]]] = [[]]
    for _, values in rest:
        combos = [c + [(name, settings or {})] for c in combos for name, settings in values.items()]
    planned = []
    for outer, outer_settings in first[1].items():
        for seed in spec["seeds"]:
            for combo in combos:
                overrides = dict(spec.get("settings") or {}) | (outer_settings or {})
                for _, settings in combo:
                    overrides |= settings
                folder = Path(outer, *(name for name, _ in combo), f"seed{seed}")
                try:
                    cfg = _config(spec["preset"], seed, overrides, data_root)
                except (ValueError, TypeError) as error:
                    raise ValueError(f"{path}: {folder}: {error}") from None
                planned.append(Planned(folder, seed, cfg))
    return planned


def _log(root: Path, line: dict[str, Any]) -> None:
    """Appends a timing line to root/timings.csv (wall seconds, 1-minute load before and after)."""
    path = root / "timings.csv"
    old = pd.read_csv(path) if path.exists() else pd.DataFrame()
    atomic_write_text(path, pd.concat([old, pd.DataFrame([line])]).to_csv(index=False))


def plan_runs(
    presets: Sequence[str], seeds: Sequence[int], overrides: dict[str, Any], data_root: str | None = None
) -> list[Planned]:
    """The runs of `cvgad forensics run`: each preset of table1.yaml with `overrides`, by seed
    (<preset>/seed<k>); every config is checked before any is returned."""
    try:
        return [
            Planned(Path(preset, f"seed{seed}"), seed, _config(preset, seed, overrides, data_root))
            for preset in presets
            for seed in seeds
        ]
    except TypeError as error:
        raise ValueError(str(error)) from None


def check_folders(planned: Sequence[Planned], out: str | os.PathLike) -> None:
    """Raises ValueError when a planned run's folder under `out` holds another configuration's run."""
    for plan in planned:
        if (problem := conflict(plan.cfg, Path(out) / plan.folder)) is not None:
            raise ValueError(problem)


def run_all(planned: Sequence[Planned], out: str | os.PathLike) -> int:
    """Trains every unfinished run of `planned` under `out`, in order, logging each to timings.csv;
    a run whose loss becomes NaN is recorded in its failed.json and the next goes on. Returns how
    many failed."""
    failed = 0
    for plan in planned:
        load, start, folder = os.getloadavg()[0], time.perf_counter(), Path(out) / plan.folder
        if runs.forensics_finished(folder):
            continue
        try:
            run(plan.cfg, folder)
            outcome = "finished"
        except NonFiniteLossError as error:  # recorded, and the next run goes on
            runs.write_failed(folder, str(error))
            outcome, failed = str(error), failed + 1
        wall = time.perf_counter() - start
        line = {"run": str(plan.folder.parent), "seed": plan.seed, "outcome": outcome}
        line |= {"wall_seconds": round(wall, 1), "load_start": load, "load_end": os.getloadavg()[0]}
        _log(Path(out), line | {"cpus": os.cpu_count(), "threads": torch.get_num_threads()})
        print(f"{plan.folder}: {outcome} after {wall:.0f} s (1-minute load {load:.1f} at the start)", flush=True)
    return failed


def summarise(root: str | os.PathLike, budget: bool = False) -> pd.DataFrame:
    """The factor table of the runs under `root`, or with `budget` the budget curve of its budget
    folders, written beside them (factor_table.csv, budget.csv) and returned."""
    table = budget_table(root) if budget else factor_table(collect(root))
    atomic_write_text(Path(root) / ("budget.csv" if budget else "factor_table.csv"), table.to_csv(index=False))
    return table
