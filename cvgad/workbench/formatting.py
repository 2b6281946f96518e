"""Numbers, names and Markdown as the reports and the book show them: "mean ± std", intervals,
the names of varied settings and their cells, and the lines both reports share."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import pandas as pd

from cvgad.experiment.data import CLASS_NAMES
from cvgad.experiment.runs import SCORES


def fmt(mean: float, std: float, n: int) -> str:
    """The text "mean ± std" to 3 decimals; the mean alone for one value; "–" for none."""
    if n == 0 or pd.isna(mean):
        return "–"
    return f"{mean:.3f}" if n < 2 or pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def num(value: float, signed: bool = False) -> str:
    """Three decimals; `signed` adds + and never shows -0.000."""
    return "–" if pd.isna(value) else (f"{round(value, 3) + 0.0:+.3f}" if signed else f"{value:.3f}")


def interval_text(low: float, high: float) -> str:
    """An interval as "[low, high]" to 3 decimals; "–" for none."""
    return "–" if pd.isna(low) else f"[{low:.3f}, {high:.3f}]"


def styled(frame: pd.DataFrame, precision: int = 3):
    """`frame` as the book shows tables: floats to `precision` decimals, integers as integers and
    "–" where a value is missing (a pandas Styler, shown as HTML)."""
    return frame.style.format(precision=precision, na_rep="–")


def md_table(header: Sequence[str], lines: list[list[str]]) -> list[str]:
    """A Markdown table's lines: the header, its rule, then one line per list of cells."""
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"] + ["| " + " | ".join(x) + " |" for x in lines]


def paired_markdown(pairs: pd.DataFrame, reference: str) -> list[str]:
    """The section on `cvgad.workbench.results.paired_differences`: what it measures, then its table."""
    return [
        f"## AUC paired with `{reference}`",
        "",
        f"Each row's AUC minus `{reference}`'s in the same cell and seed, over the pairs where both finished "
        "(mean ± sample std, and its 95% t-interval), in how many pairs the row is ahead, the two-sided p of "
        "the Wilcoxon signed-rank test, and that p adjusted for testing every row (Benjamini–Hochberg).",
        "",
        *md_table(
            ["row", "pairs", f"Δ AUC vs `{reference}`", "95% interval", "ahead", "Wilcoxon p", "p (BH)"],
            [
                [
                    f"{r.label} (`{r.row}`)",
                    str(r.pairs),
                    fmt(r.auc_diff_mean, r.auc_diff_std, r.pairs),
                    interval_text(r.auc_diff_ci_low, r.auc_diff_ci_high),
                    str(r.ahead),
                    num(r.wilcoxon_p),
                    num(r.wilcoxon_p_bh),
                ]
                for r in pairs.itertuples()
            ],
        ),
        "",
    ]


def grid_line(plan: dict) -> str:
    """The grid, the preset and the settings every run shares, as a Markdown sentence."""
    settings = ", ".join(f"{k}={v}" for k, v in plan.get("settings", {}).items() if k not in ("device", "data_root"))
    preset = f"preset `{plan.get('preset')}`" + (
        f" ({plan['preset_description']})" if plan.get("preset_description") else ""
    )
    return f"Grid `{plan.get('grid', '?')}`, {preset}: {settings}."


def runs_line(runs: pd.DataFrame) -> str:
    """How many runs finished, failed or are missing, and whose metrics come from kept scores."""
    kept = int((runs["metrics_from"] == SCORES).sum()) if "metrics_from" in runs else 0
    return (
        f"Runs: {(runs.status == 'ok').sum()} finished, {(runs.status == 'failed').sum()} failed, "
        f"{(runs.status == 'unreadable').sum()} unreadable, "
        f"{runs.status.isin(['unfinished', 'missing']).sum()} unfinished or missing; the metrics of {kept} "
        "recomputed from their kept per-image scores, the others' as recorded."
    )


def failed_lines(runs: pd.DataFrame, vary: Sequence[str] = ()) -> list[str]:
    """The failed runs and those whose files cannot be read, each named with its error."""
    lines = []
    for status, title in (("failed", "Failed runs"), ("unreadable", "Runs whose files cannot be read")):
        chosen = runs[runs.status == status]
        if len(chosen):
            lines += ["", f"## {title}", ""] + [
                " ".join(["-", f"`{r['row']}`", *(f"{k}={r[k]}" for k in vary), f"seed {r['seed']}: {r['error']}"])
                for _, r in chosen.iterrows()
            ]
    return lines


#: Varied settings whose values are classes, shown by name where the dataset has names.
CLASS_KEYS = ("anomaly_class", "normal_class")


def value_name(key: str, value: Any, dataset: str | None) -> str:
    """A varied setting's value as shown: a class by its name where the dataset has names ("deer"), else the value."""
    names = CLASS_NAMES.get(dataset or "")
    if key in CLASS_KEYS and names and isinstance(value, numbers.Integral) and 0 <= int(value) < len(names):
        return names[int(value)]
    return str(value)


def settings_name(vary: Sequence[str]) -> str:
    """The varied settings as words, e.g. "anomaly class"."""
    return ", ".join(key.replace("_", " ") for key in vary)


def cell_name(cell: dict[str, Any], dataset: str | None, with_values: bool = False) -> str:
    """A cell (the values of the varied settings) as shown, e.g. "deer" (or "4 (deer)" `with_values`) or "1, 32"."""
    shown = []
    for key, value in cell.items():
        name = value_name(key, value, cell.get("dataset", dataset))
        shown.append(f"{value} ({name})" if with_values and name != str(value) else name)
    return ", ".join(shown)
