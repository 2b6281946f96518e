"""The report of a grid that varies settings (e.g. every anomaly class), as the paper's Figs. 2
and 3 and Tables 2 and 3 show them: per cell and row (`cell_table`), per row over seeds of the
mean over the cells (`mean_over_cells`), paired with a reference row over cell and seed
(`cvgad.workbench.results.paired_differences`), and, with published values, the paper's layout
with ours beside the published numbers (`published_layout`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cvgad.workbench.formatting import (
    cell_name,
    failed_lines,
    fmt,
    grid_line,
    md_table,
    num,
    paired_markdown,
    runs_line,
    settings_name,
    value_name,
)
from cvgad.workbench.grid import published_setting
from cvgad.workbench.results import METRICS, by_cell, paired_differences, reference_row, summarise, with_metrics

#: The columns of the per-cell and mean-over-cells tables as `cell_markdown` shows them.
CELL_COLUMNS = (
    "n",
    "AUC (chance 0.5)",
    "F1, best threshold (oracle: picked on the test set)",
    "F1 at validation threshold",
    "F1 floor 2p/(1+p)",
)


def cell_table(runs: pd.DataFrame, vary: Sequence[str]) -> pd.DataFrame:
    """Per cell of the varied settings and row (`collect_runs`' lines): n finished, not_ok, and the mean
    and std (ddof=1) over seeds of each metric; one column per varied setting, then row and label."""
    return summarise(by_cell(runs, vary), [*vary, "row"]).reset_index()


def mean_over_cells(runs: pd.DataFrame, vary: Sequence[str]) -> pd.DataFrame:
    """Per row: mean and std (ddof=1) over seeds of each seed's mean over the cells (how many: `cells`).
    Only seeds with every cell finished count (n); a mean over fewer cells would not be comparable."""
    runs = with_metrics(runs)
    n_cells = len(runs[list(vary)].drop_duplicates())
    by = [runs["row"], runs["seed"]]
    ok = runs["status"] == "ok"
    per_seed = pd.DataFrame({"label": runs["label"].groupby(by, sort=False).first()})
    per_seed["status"] = np.where(ok.groupby(by, sort=False).sum() == n_cells, "ok", "incomplete")
    for metric in METRICS:
        per_seed[metric] = pd.to_numeric(runs[metric], errors="coerce").groupby(by, sort=False).mean()
    return summarise(per_seed.reset_index(), ["row"]).assign(cells=n_cells).reset_index()


def _summary_cells(r: Any) -> list[str]:
    """One line of `summarise` as the text of `CELL_COLUMNS`."""
    return [
        str(r.n),
        fmt(r.auc_mean, r.auc_std, r.n),
        fmt(r.f1_best_mean, r.f1_best_std, r.n),
        fmt(r.f1_val_mean, r.f1_val_std, r.n),
        num(r.f1_floor_mean),
    ]


def cell_markdown(runs: pd.DataFrame, plan: dict, reference: str | None = None) -> str:
    """The per-cell report as Markdown: the mean over the cells per row, the paired differences to
    `reference` (default: the first row), and the table per cell and row."""
    vary = list(plan["vary"])
    dataset = plan.get("settings", {}).get("dataset")
    shown = settings_name(vary)
    reference = reference_row(runs, reference)
    over, pairs = mean_over_cells(runs, vary), paired_differences(runs, vary, reference)
    varied = "; ".join(f"{k} over {', '.join(map(str, values))}" for k, values in plan["vary"].items())
    lines = [
        f"# {plan.get('description') or 'Ablation'}: per {shown}",
        "",
        grid_line(plan),
        "",
        f"Varied: {varied}. {runs_line(runs)}",
        "",
        f"## Mean over the {int(over['cells'].iloc[0])} cells ({shown})",
        "",
        "Per seed, the mean over every cell; then mean ± sample std over the seeds (n) that have every cell finished.",
        "",
        *md_table(["row", *CELL_COLUMNS], [[f"{r.label} (`{r.row}`)", *_summary_cells(r)] for r in over.itertuples()]),
        "",
        *(paired_markdown(pairs, reference) if len(pairs) else []),
        f"## Per {shown}",
        "",
        *md_table(
            [shown, "row", *CELL_COLUMNS],
            [
                [
                    cell_name({k: getattr(r, k) for k in vary}, dataset, with_values=True),
                    f"`{r.row}`",
                    *_summary_cells(r),
                ]
                for r in cell_table(runs, vary).itertuples()
            ],
        ),
        "",
        "Values are mean ± sample std over seeds. The best-threshold F1 is an oracle: its threshold is chosen "
        "on the test set. F1 at the validation threshold uses a threshold fixed on normal validation images; "
        "the F1 floor is the F1 of flagging every test image as anomalous.",
    ]
    layout = published_layout(runs, plan)
    if layout is not None:
        lines += [
            "",
            f"## In the paper's layout, per {settings_name([layout.columns.name])}",
            "",
            "Ours: mean ± sample std over seeds (n) of each seed's mean over the other varied settings. "
            "Published: one number each, as printed.",
            "",
            *md_table([layout.columns.name, *map(str, layout.columns)], [[i, *r] for i, r in layout.iterrows()]),
            *(["", GPND_NOTE] if _gpnd(plan) else []),
        ]
    lines += failed_lines(runs, vary)
    return "\n".join(lines) + "\n"


#: Our metrics in the published layout, beside the paper's AUC and F1 (GPND's F1 under one_class only).
_LAYOUT = (
    ("auc", "AUC"),
    ("f1_best", "F1, best threshold (oracle: picked on the test set)"),
    ("f1_gpnd", "F1 in GPND's convention (inliers positive, threshold from validation)"),
    ("f1_val", "F1 at validation threshold"),
)
GPND_NOTE = (
    "F1 in GPND's convention, the rule of GPND's published F1: the inliers are the positive class, and the "
    "threshold is the one that maximises that F1 on the validation normals plus outliers from the other "
    "classes' validation folds in the test set's proportion. Its floor, calling every image an inlier, is "
    "high where outliers are few (0.947 at 10%). Runs that kept no such outliers show –."
)


def _gpnd(plan: dict) -> bool:
    """Whether the grid's runs have validation outliers, so GPND's F1 (the one-class protocol)."""
    return plan.get("settings", {}).get("protocol") == "one_class"


def published_layout(runs: pd.DataFrame, plan: dict) -> pd.DataFrame | None:
    """Tables 2 and 3 as the paper lays them out: one column per value of the setting the published
    values are given for (outlier share, inlier objects), lines for our rows and for each published
    method; None when the grid has no published values for this dataset. Ours is the mean ± std
    over seeds of each seed's mean over the other varied settings, counting only seeds with every
    one of those finished (as `mean_over_cells`), with n the number of such seeds."""
    if not plan.get("published"):
        return None
    published = pd.DataFrame(plan["published"])
    key = published_setting(plan["published"])
    others = [k for k in plan["vary"] if k != key]
    n_others = math.prod(len(plan["vary"][k]) for k in others)
    runs = with_metrics(runs)
    ok = runs[runs["status"] == "ok"].assign(**{m: pd.to_numeric(runs[m], errors="coerce") for m in METRICS})
    values = list(plan["vary"][key])
    lines: dict[str, dict[Any, str]] = {}
    for metric, name in [(m, n) for m, n in _LAYOUT if m != "f1_gpnd" or _gpnd(plan)]:
        for _, group in ok.groupby("row", sort=False):
            per_seed = group.groupby([key, "seed"])[metric].agg(["mean", "count"])
            per_seed = per_seed[per_seed["count"] == n_others]["mean"]
            summary = per_seed.groupby(level=0).agg(["mean", "std", "count"])
            lines[f"{name}: {group['label'].iloc[0]} (ours)"] = {
                v: f"{fmt(r['mean'], r['std'], int(r['count']))} (n={int(r['count'])})" for v, r in summary.iterrows()
            }
        if metric == "auc" or metric == ("f1_gpnd" if _gpnd(plan) else "f1_best"):
            column, shown = ("auc", "AUC") if metric == "auc" else ("f1", "F1 as published (its own threshold rule)")
            for method, group in published.groupby("method", sort=False):
                lines[f"{shown}: {method}, published"] = {
                    r[key]: "–" if pd.isna(r[column]) else f"{r[column]:.3f}" for _, r in group.iterrows()
                }
    floors = {"f1_floor": "F1 floor 2p/(1+p) (flag everything)"}
    if _gpnd(plan):
        floors["f1_gpnd_floor"] = "F1 floor in GPND's convention 2(1-p)/(2-p) (call everything an inlier)"
    for metric, name in floors.items():
        floor = ok.groupby(key)[metric].mean()
        lines[name] = {v: num(floor[v]) for v in floor.index}
    table = pd.DataFrame(lines).T.reindex(columns=values).fillna("–")  # a value nobody ran or published
    table.columns = [value_name(key, v, plan.get("settings", {}).get("dataset")) for v in values]
    table.columns.name = key
    return table
