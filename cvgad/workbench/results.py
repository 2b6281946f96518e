"""An ablation's runs as one table, and the summaries over seeds every report reads.

`collect_runs` reads every `<row>/seed<k>/` folder the runner left (and `plan.json`, for the
rows and seeds): one line per run, its metrics recomputed from its kept per-image scores
(`scores.npz`) where it has them, else as its `metrics.json` recorded them. `load_runs` reads a
recorded grid from its folders or its `runs.csv`. The spread of a group is the sample standard
deviation (ddof=1) over its seeds, beside the mean's 95% t-interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvgad.experiment.experiment import metrics_from_scores
from cvgad.experiment.runs import SCORES, UnreadableRecord, read_plan, seed_dir, seeds_found
from cvgad.experiment.runs import status as run_status
from cvgad.workbench.grid import cells
from cvgad.workbench.statistics import bh_adjusted, signed_rank_p, t_interval

METRICS = ("auc", "f1_best", "auprc", "f1_val", "f1_floor", "f1_gpnd", "f1_gpnd_floor")
COUNTS = ("n_train", "n_val", "n_test_normal", "n_test_anomalous")
#: What a line of `collect_runs` takes from a run's metrics (`run_metrics`).
FROM_RUN = (*METRICS, *COUNTS, "epochs", "device", "wall_seconds", "metrics_from")
RUN_COLUMNS = ("row", "label", "seed", "status", *FROM_RUN, "error")


def run_metrics(run_dir: str | Path) -> tuple[str, dict[str, Any], str | None]:
    """A run's status (`cvgad.experiment.runs.status`) and metrics, a finished run's recomputed from
    its kept scores where it has them (so a metric added since needs no retraining) and marked
    `metrics_from`; a scores file that cannot be read makes the run unreadable."""
    status, metrics, error = run_status(run_dir)
    if status != "ok":
        return status, metrics, error
    try:
        kept = metrics_from_scores(run_dir)
    except UnreadableRecord as unreadable:
        return "unreadable", {}, str(unreadable)
    if kept is None:
        return status, metrics | {"metrics_from": "metrics.json"}, error
    return status, metrics | kept | {"metrics_from": SCORES}, error


def collect_runs(root: str | Path) -> pd.DataFrame:
    """One line per run: planned (row, cell, seed) runs plus any other seed folders found, with status and
    metrics; one column per varied setting (after `label`) when the grid varies settings."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"results folder {str(root)!r} does not exist; run `cvgad ablate` first")
    plan = read_plan(root)
    vary = plan.get("vary") or {}
    lines = []
    for row in plan["rows"]:
        for cell in cells(vary):
            for seed in sorted(seeds_found(root, row["id"], cell) | set(plan["seeds"])):
                status, metrics, error = run_metrics(seed_dir(root, row["id"], seed, cell))
                lines.append(
                    {"row": row["id"], "label": row["label"], "seed": seed, "status": status, "error": error}
                    | {k: metrics.get(k) for k in FROM_RUN}
                    | cell  # a varied setting (e.g. epochs) is the cell's, even where a run recorded none
                )
    if not lines:
        raise ValueError(f"no runs found under {root}; expected <row>/seed<k>/ folders from `cvgad ablate`")
    return pd.DataFrame(lines, columns=[*RUN_COLUMNS[:2], *vary, *(c for c in RUN_COLUMNS[2:] if c not in vary)])


def load_runs(root: str | Path) -> tuple[pd.DataFrame | None, str]:
    """The runs under `root`, from its run folders (`collect_runs`) or from its `runs.csv`,
    whichever holds more finished runs, and which one it was; (None, "") when there are none."""
    root = Path(root)
    found = []
    try:
        found.append((collect_runs(root), "the run folders (scores.npz, else metrics.json)"))
    except (ValueError, FileNotFoundError):
        pass
    if (root / "runs.csv").is_file():
        found.append((pd.read_csv(root / "runs.csv"), "runs.csv"))
    if not found:
        return None, ""
    return max(found, key=lambda item: int((item[0]["status"] == "ok").sum()))


def with_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with an empty column for each metric it lacks (a runs.csv written before the metric was)."""
    return runs.assign(**{metric: np.nan for metric in METRICS if metric not in runs})


def summarise(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys` (in the order first seen): the label, n finished, not_ok, and the mean and
    std (ddof=1) of each metric over the finished lines."""
    runs = with_metrics(runs)
    by = [runs[key] for key in keys]
    ok = runs["status"] == "ok"
    table = pd.DataFrame({"label": runs["label"].groupby(by, sort=False, dropna=False).first()})
    table["n"] = ok.groupby(by, sort=False, dropna=False).sum().astype(int)
    table["not_ok"] = (~ok).groupby(by, sort=False, dropna=False).sum().astype(int)
    for metric in METRICS:
        values = pd.to_numeric(runs[metric], errors="coerce").where(ok).groupby(by, sort=False, dropna=False)
        table[f"{metric}_mean"] = values.mean()
        table[f"{metric}_std"] = values.std(ddof=1)
        interval = values.apply(lambda v: t_interval(v.to_numpy()))
        table[f"{metric}_ci_low"], table[f"{metric}_ci_high"] = interval.str[0], interval.str[1]
    return table


def by_cell(runs: pd.DataFrame, vary: Sequence[str]) -> pd.DataFrame:
    """`runs` with the lines of each cell together, cells in the order first seen, rows in theirs within."""
    codes, _ = pd.factorize(pd.Series(list(zip(*(runs[key] for key in vary), strict=True)), dtype=object))
    return runs.iloc[np.argsort(codes, kind="stable")]


def reference_row(runs: pd.DataFrame, reference: str | None) -> str:
    """The row the others are paired with: `reference`, else the first row (e.g. the method itself)."""
    rows = list(dict.fromkeys(runs["row"]))
    if reference is not None and reference not in rows:
        raise ValueError(f"reference row {reference!r} is not in these runs; valid rows: {', '.join(rows)}")
    return reference or str(rows[0])


def paired_differences(
    runs: pd.DataFrame, vary: Sequence[str], reference: str | None = None, metric: str = "auc"
) -> pd.DataFrame:
    """Per row but `reference` (default: the first row): its `metric` minus the reference's in the same
    cell and seed, over the pairs where both finished: how many pairs, the mean and std of the
    differences and their 95% t-interval, in how many the row is ahead, the two-sided p of the
    Wilcoxon signed-rank test (`signed_rank_p`) and its Benjamini–Hochberg adjustment over the rows."""
    reference = reference_row(runs, reference)
    ok = runs[runs["status"] == "ok"]
    values = pd.to_numeric(ok[metric], errors="coerce").set_axis(pd.MultiIndex.from_frame(ok[[*vary, "seed"]]))
    ref = values[(ok["row"] == reference).to_numpy()]
    lines = []
    for row, label in runs.groupby("row", sort=False)["label"].first().items():
        if row == reference:
            continue
        diff = (values[(ok["row"] == row).to_numpy()] - ref).dropna()
        low, high = t_interval(diff.to_numpy())
        lines.append(
            {
                "row": row,
                "label": label,
                "reference": reference,
                "pairs": len(diff),
                f"{metric}_diff_mean": diff.mean(),
                f"{metric}_diff_std": diff.std(ddof=1),
                f"{metric}_diff_ci_low": low,
                f"{metric}_diff_ci_high": high,
                "ahead": int((diff > 0).sum()),
                "wilcoxon_p": signed_rank_p(diff.to_numpy()),
            }
        )
    columns = ["row", "label", "reference", "pairs", f"{metric}_diff_mean", f"{metric}_diff_std"]
    columns += [f"{metric}_diff_ci_low", f"{metric}_diff_ci_high", "ahead", "wilcoxon_p"]
    table = pd.DataFrame(lines, columns=columns)
    table["wilcoxon_p_bh"] = bh_adjusted(table["wilcoxon_p"].to_numpy())
    return table
