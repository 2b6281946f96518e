"""The run folder and the grid folder: the one module that knows their files and formats.

A run folder holds `config.json` (the ExperimentConfig), `history.csv` (every loss of every
step), `checkpoint.pt` (state dicts, loaded with `weights_only=True`) and `metrics.json`,
written last and atomically: a folder with valid metrics is a finished run. While training,
`resume.pt` holds the state after the last finished epoch. `metrics.json` carries the run's
`provenance` (the code, library versions, machine, threads, times and load; see `provenance`),
and `scores.npz` the per-image score terms of the test images and of the threshold's reference
images, from which any metric is recomputed without the model (`read_scores`). `cvgad evaluate`
adds `evaluation.json`. A grid's runner adds `params.json` (what was asked), `executed.ipynb`
and, when the run failed, `error.txt`.

A forensics run (`cvgad forensics`) is a run folder that also holds `factors.csv` (every pass and
score before training and after each epoch), `run.json` (its record, written last: the finished
marker, `forensics_finished`) and, when a loss became NaN, `failed.json`.

A grid folder (`<out>/<grid>/<preset>/`) holds `plan.json` (the grid as run), `summary.json`
(the outcomes so far, with the provenance of the last invocation) and one run folder per row and
seed: `<row>/seed<k>/`; when the grid varies settings, per row, cell and seed:
`<row>/<setting>-<value>[/<setting2>-<value2>...]/seed<k>/`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
import platform
import subprocess
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cvgad.atomic import atomic_write, atomic_write_text, save_torch
from cvgad.model.config import ExperimentConfig
from cvgad.model.training import NOTHING_EARLIER

PathLike = str | os.PathLike[str]

CONFIG, HISTORY, CHECKPOINT, METRICS = "config.json", "history.csv", "checkpoint.pt", "metrics.json"
RESUME, EVALUATION, SCORES = "resume.pt", "evaluation.json", "scores.npz"
CURVES, SELECTED = (
    "curves.csv",
    "select.pt",
)  # per-epoch metrics and the kept weights (cvgad.experiment.selection)
PARAMS, EXECUTED, ERROR = "params.json", "executed.ipynb", "error.txt"
PLAN, SUMMARY = "plan.json", "summary.json"
FACTORS, RUN_RECORD, FAILED = "factors.csv", "run.json", "failed.json"  # a forensics run's
#: Metrics a finished run must have, as numbers.
REQUIRED_METRICS = ("auc", "f1_best")


def write_json(path: PathLike, data: Any) -> None:
    """`data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2))


def read_json(path: PathLike) -> Any | None:
    """The JSON in `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------ one run
def start(run_dir: PathLike, cfg: ExperimentConfig) -> None:
    """Marks the folder unfinished (a rerun is unfinished until it ends) and records the config."""
    run = Path(run_dir)
    (run / METRICS).unlink(missing_ok=True)
    write_json(run / CONFIG, cfg.to_dict())


def resume_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / RESUME


class UnreadableRecord(ValueError):
    """A record's file exists but cannot be read (truncated, not the format): the message names it
    and how to remake it."""


def _unreadable(path: Path, error: BaseException) -> UnreadableRecord:
    return UnreadableRecord(
        f"{path} cannot be read ({type(error).__name__}: {error}); it is truncated or not what `cvgad train` "
        f"writes. Remake the run: `cvgad train` with the settings of {path.parent / CONFIG} and --out {path.parent}, "
        "or, for a record of the manifest, `cvgad reproduce --only NAME`"
    )


def finish(
    run_dir: PathLike,
    history: pd.DataFrame,
    state: dict,
    metrics: dict[str, Any],
    scores: dict[str, np.ndarray] | None = None,
) -> None:
    """Writes the history, the weights, the per-image scores (`write_scores`' arrays) and, last, the
    metrics; drops the resume state (and the weights kept for model selection, which only a resumed
    run needs)."""
    run = Path(run_dir)
    atomic_write_text(run / HISTORY, history.to_csv(index=False))
    save_torch(state, run / CHECKPOINT)
    if scores is not None:
        atomic_write(run / SCORES, lambda tmp: np.savez_compressed(tmp, allow_pickle=False, **scores))
    write_json(run / METRICS, metrics)
    resume_path(run).unlink(missing_ok=True)
    (run / SELECTED).unlink(missing_ok=True)


def score_arrays(
    test_index: np.ndarray, test_labels: np.ndarray, test_terms: Mapping[str, np.ndarray],
    val_index: np.ndarray, val_terms: Mapping[str, np.ndarray],
    outlier_index: np.ndarray | None = None, outlier_terms: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """What `scores.npz` holds: the test images' indices into the dataset, labels (1 = anomaly) and
    raw score terms (`test_<term>`), the reference images' indices and terms (`val_<term>`; the
    validation normals, else the training images) and, where the split has them (one_class), the
    validation outliers' (`valout_<term>`), each term as the model gave it."""
    arrays: dict[str, np.ndarray] = {
        "test_index": np.asarray(test_index, np.int32),
        "test_label": np.asarray(test_labels, np.int8),
    }
    arrays |= {f"test_{name}": np.asarray(v) for name, v in test_terms.items()}
    arrays["val_index"] = np.asarray(val_index, np.int32)
    arrays |= {f"val_{name}": np.asarray(v) for name, v in val_terms.items()}
    if outlier_index is not None and outlier_terms:
        arrays["valout_index"] = np.asarray(outlier_index, np.int32)
        arrays |= {f"valout_{name}": np.asarray(v) for name, v in outlier_terms.items()}
    return arrays


Kept = tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]


def read_scores(run_dir: PathLike) -> Kept | None:
    """The kept scores of a run: test terms, test labels, reference terms and validation outliers'
    terms (empty where the run has none); None when the run kept no scores (made before they were
    kept). Raises UnreadableRecord when the file cannot be read."""
    path = Path(run_dir) / SCORES
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        test = {k.removeprefix("test_"): v for k, v in arrays.items() if k.startswith("test_") and k not in
                ("test_index", "test_label")}  # fmt: skip
        val = {k.removeprefix("val_"): v for k, v in arrays.items() if k.startswith("val_") and k != "val_index"}
        outliers = {k.removeprefix("valout_"): v for k, v in arrays.items() if k.startswith("valout_") and
                    k != "valout_index"}  # fmt: skip
        return test, arrays["test_label"].astype(np.int64), val, outliers
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise _unreadable(path, error) from None


def read_metrics(run_dir: PathLike) -> dict[str, Any] | None:
    """The metrics of a finished run, or None when they are missing, unreadable or incomplete."""
    metrics = read_json(Path(run_dir) / METRICS)
    ok = isinstance(metrics, dict) and all(isinstance(metrics.get(k), (int, float)) for k in REQUIRED_METRICS)
    return metrics if ok else None


#: Settings added after runs were recorded, by their place in config.json, with the value those
#: runs had: a recorded config or params.json that lacks one was trained with this value.
BEFORE = {("model", "logvar"): "linear", ("train", "losses", "negative_gate"): "absolute"}


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config with the settings it predates filled in as the run had them."""
    for path, value in BEFORE.items():
        section = config
        for key in path[:-1]:
            section = section.setdefault(key, {})
        section.setdefault(path[-1], value)
    return config


def upgrade_params(params: dict[str, Any]) -> dict[str, Any]:
    """Recorded run parameters (params.json) with the settings they predate filled in as the run had them."""
    return {path[-1]: value for path, value in BEFORE.items()} | params


def load(run_dir: PathLike, device: str) -> tuple[ExperimentConfig, dict]:
    """The config and the saved state dicts of a finished run (tensors mapped to `device`)."""
    run = Path(run_dir)
    for name in (CONFIG, CHECKPOINT):
        if not (run / name).exists():
            raise FileNotFoundError(
                f"{run / name} is missing; {run} is not a finished run directory (see `cvgad train --out`)"
            )
    try:
        cfg = ExperimentConfig.from_dict(upgrade_config(json.loads((run / CONFIG).read_text())))
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise _unreadable(run / CONFIG, error) from None
    try:
        return cfg, torch.load(run / CHECKPOINT, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise _unreadable(run / CHECKPOINT, error) from None


def evaluation_path(run_dir: PathLike, changed: Mapping[str, Any] | None = None) -> Path:
    """`evaluation.json` for a rescoring with the run's own settings; with `changed` settings,
    `evaluation-<name>-<value>_<name>-<value>.json` in the order given."""
    if not changed:
        return Path(run_dir) / EVALUATION
    tag = "_".join(f"{k}-{str(v).replace('+', 'p')}" for k, v in changed.items())
    return Path(run_dir) / f"evaluation-{tag}.json"


def write_evaluation(run_dir: PathLike, metrics: dict[str, Any], changed: Mapping[str, Any] | None = None) -> Path:
    path = evaluation_path(run_dir, changed)
    write_json(path, metrics)
    return path


# ------------------------------------------------------- a run of a grid
def cell_dir(root: PathLike, row: str, cell: Mapping[str, Any] | None = None) -> Path:
    """The folder of `row`'s runs in `cell` (the values of the varied settings, in the grid's order)."""
    return Path(root, row, *(f"{key}-{value}" for key, value in (cell or {}).items()))


def seed_dir(root: PathLike, row: str, seed: int, cell: Mapping[str, Any] | None = None) -> Path:
    return cell_dir(root, row, cell) / f"seed{seed}"


def seeds_found(root: PathLike, row: str, cell: Mapping[str, Any] | None = None) -> set[int]:
    """The seeds of `row` (in `cell`) that have a folder under `root`."""
    return {int(p.name[4:]) for p in cell_dir(root, row, cell).glob("seed*") if p.name[4:].isdigit()}


def begin_grid_run(run_dir: PathLike, params: dict[str, Any]) -> None:
    """Clears an earlier outcome and records what is asked."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    for stale in (METRICS, ERROR):
        (run / stale).unlink(missing_ok=True)
    write_json(run / PARAMS, params)


def begun_since(run_dir: PathLike, time: float) -> bool:
    """Whether a grid run was (re)started in this folder at or after `time` (seconds since the epoch)."""
    path = Path(run_dir) / PARAMS
    return path.is_file() and path.stat().st_mtime >= time


def read_params(run_dir: PathLike) -> dict[str, Any] | None:
    return read_json(Path(run_dir) / PARAMS)


def write_error(run_dir: PathLike, text: str) -> None:
    atomic_write_text(Path(run_dir) / ERROR, text)


def status(run_dir: PathLike) -> tuple[str, dict[str, Any], str | None]:
    """("ok", metrics, None), ("failed", {}, last line of error.txt), ("unreadable", {}, why: a
    metrics.json that exists but cannot be read or lacks a required metric), "unfinished" or "missing"."""
    run = Path(run_dir)
    metrics = read_metrics(run)
    if metrics is not None:
        return "ok", metrics, None
    if (run / METRICS).is_file():
        return "unreadable", {}, f"{run / METRICS} cannot be read or lacks {', '.join(REQUIRED_METRICS)}"
    if (run / ERROR).is_file():
        lines = [line for line in (run / ERROR).read_text().splitlines() if line.strip()]
        return "failed", {}, lines[-1] if lines else "unknown error"
    return ("unfinished" if run.is_dir() else "missing"), {}, None


# ------------------------------------------------------- a forensics run
def forensics_finished(run_dir: PathLike) -> bool:
    """Whether a forensics run finished: its `run.json`, written last, exists."""
    return (Path(run_dir) / RUN_RECORD).is_file()


def finish_forensics(run_dir: PathLike, record: dict[str, Any]) -> None:
    """Writes the run's record, which marks it finished (so it is written last)."""
    write_json(Path(run_dir) / RUN_RECORD, record)


def read_run_record(run_dir: PathLike) -> dict[str, Any]:
    """A finished forensics run's record ({} when missing or unreadable)."""
    record = read_json(Path(run_dir) / RUN_RECORD)
    return record if isinstance(record, dict) else {}


def write_failed(run_dir: PathLike, error: str) -> None:
    write_json(Path(run_dir) / FAILED, {"error": error})


# ------------------------------------------------------------- provenance
#: What a record made before provenance was kept says of it.
UNKNOWN = "unknown"
PROVENANCE_FIELDS = (
    "commit", "dirty", "package", "python", "torch", "numpy", "cvgad", "device", "cpu", "cores", "threads",
    "started", "ended", "wall_seconds", "cpu_seconds", "load_1min_start", "load_1min_end",
    "earlier_processes", "earlier_wall_seconds", "earlier_cpu_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class Began:
    """When a run or grid began (seconds since the epoch, `time.perf_counter`, `cpu_seconds`) and the
    1-minute load then."""

    time: float
    clock: float
    cpu: float
    load: float


def begin() -> Began:
    return Began(time.time(), time.perf_counter(), cpu_seconds(), os.getloadavg()[0])


def cpu_seconds() -> float:
    """CPU seconds of this process and of the subprocesses it has waited for (a grid's runs); unlike
    wall seconds, they leave out time the process was stopped or waited for a core."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


#: Where records live: writing them (remaking a record in place) leaves the code as committed.
RECORD_FOLDERS = ("ablations/results", "benchmarks/results")


def code_version(checkout: Path | None = None) -> dict[str, Any]:
    """The git commit of the checkout the package runs from (default) and whether its tracked files
    outside the records (RECORD_FOLDERS) had uncommitted changes; without a checkout, the package
    version alone (commit and dirty None)."""
    checkout = checkout or Path(__file__).resolve().parents[2]
    try:
        git = ["git", "-C", str(checkout)]
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        code = [".", *(f":(exclude){folder}" for folder in RECORD_FOLDERS)]
        changes = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", *code],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
        return {"commit": commit.strip(), "dirty": bool(changes.strip()), "package": _package_version()}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "package": _package_version()}


def _package_version() -> str:
    try:
        return importlib.metadata.version("cvgad")
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN


def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo's model name), else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def provenance(
    began: Began, device: str, threads: int | None = None, earlier: Mapping[str, float | None] | None = None
) -> dict[str, Any]:
    """What made a record and how (for `metrics.json`, `summary.json`, a forensics `run.json`): the
    code, the library versions, the machine, the thread count (default: this process's torch
    threads; results differ between 1 and 2), this process's times and the 1-minute load at the
    start and the end, and for a resumed run what the processes before it spent (`earlier`, from
    `Trainer.earlier`; None where unknown). No paths."""
    earlier = earlier or NOTHING_EARLIER
    return {
        **code_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cvgad": _package_version(),
        "device": device,
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "started": _iso(began.time),
        "ended": _iso(time.time()),
        "wall_seconds": time.perf_counter() - began.clock,
        "cpu_seconds": cpu_seconds() - began.cpu,
        "load_1min_start": began.load,
        "load_1min_end": os.getloadavg()[0],
        "earlier_processes": earlier["processes"],
        "earlier_wall_seconds": earlier["wall_seconds"],
        "earlier_cpu_seconds": earlier["cpu_seconds"],
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def read_provenance(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record's provenance; a record made before provenance was kept gets every field "unknown"."""
    found = (record or {}).get("provenance")
    return found if isinstance(found, dict) else dict.fromkeys(PROVENANCE_FIELDS, UNKNOWN)


# ------------------------------------------------------------- the checkout
def find_upwards(relative: str | Path, start: PathLike | None = None) -> Path | None:
    """`relative` (e.g. `ablations` or `notebooks/run.ipynb`) in `start` (default: the working
    directory) or the nearest folder above it that has it, so that an installed package finds a
    checkout's files from wherever in it it runs; None when no folder has it."""
    here = Path(start or Path.cwd()).resolve()
    return next((folder / relative for folder in (here, *here.parents) if (folder / relative).exists()), None)


def checkout(start: PathLike | None = None) -> Path:
    """The project's checkout: the folder holding `ablations/` (recorded results, grids, the paper's
    tables) in `start` (default: the working directory) or the nearest folder above it."""
    found = find_upwards("ablations", start)
    if found is None:
        raise FileNotFoundError(
            f"no ablations/ folder in {Path(start or Path.cwd()).resolve()} or any folder above it; run from the "
            "project's checkout"
        )
    return found.parent


# ------------------------------------------------------------- a grid
def write_plan(root: PathLike, plan: dict[str, Any]) -> None:
    write_json(Path(root) / PLAN, plan)


def read_plan(root: PathLike) -> dict[str, Any]:
    """The runner's `plan.json`, or a plan inferred from the folders when it is absent."""
    root = Path(root)
    plan = read_json(root / PLAN)
    if isinstance(plan, dict):
        return plan
    rows = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("seed*")))
    return {"rows": [{"id": r, "label": r} for r in rows], "seeds": [], "paper": {}, "settings": {}}


def write_summary(root: PathLike, summary: dict[str, Any]) -> None:
    write_json(Path(root) / SUMMARY, summary)
