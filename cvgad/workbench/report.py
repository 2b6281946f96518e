"""Aggregate an ablation's runs: tidy CSVs, Markdown, bar charts and plain statements.

`write_report("ablations/results/table1/cpu")` (the `cvgad report` command) reads every
`<row>/seed<k>/` folder the runner left (and `plan.json`, for the row order, labels and the
paper's values; each run's metrics recomputed from its kept per-image scores, `scores.npz`, where
it has them, else as its `metrics.json` recorded them) and writes `runs.csv` (one line per run),
`table1.csv` (one line per row), `table1.md` and `table1.png`.

A grid that varies settings (`vary`, e.g. every anomaly class) has one column per varied
setting in `runs.csv`, and the report writes instead, as the paper's Figs. 2 and 3 show them:
`per_cell.csv` (`cell_table`: per cell and row), `mean_over_cells.csv` (`mean_over_cells`: per
row, over seeds of the mean over the cells), `paired.csv` (`paired_differences`: per row against
a reference row, paired over cell and seed), `per_cell.md` (the three as Markdown) and
`per_cell.png` (`cell_bars`); with published values (Tables 2 and 3), `published_layout.csv`
(`published_layout`: the paper's layout, ours beside the published numbers).

The spread of a row is the sample standard deviation (ddof=1) of its seeds. Two rules, stated in
the output too, decide what counts as a difference; they are rough screens, not significance tests:
a row differs from the reference row ("all") when |mean difference| > sqrt(std_row^2 + std_ref^2),
and from the paper when |our mean - paper| > std_row (the paper reports a single number, no spread).
Beside each mean stands its 95% t-interval over seeds (`t_interval`), and beside each paired
Wilcoxon p its Benjamini–Hochberg adjustment over the grid's rows (`bh_adjusted`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.stats import false_discovery_control, wilcoxon
from scipy.stats import t as student_t

from cvgad.atomic import atomic_write, atomic_write_text
from cvgad.experiment.data import CLASS_NAMES
from cvgad.experiment.experiment import metrics_from_scores
from cvgad.experiment.runs import SCORES, UnreadableRecord, read_plan, seed_dir, seeds_found
from cvgad.experiment.runs import status as run_status
from cvgad.workbench.grid import cells, published_setting, read_paper_csv

METRICS = ("auc", "f1_best", "auprc", "f1_val", "f1_floor", "f1_gpnd", "f1_gpnd_floor")
COUNTS = ("n_train", "n_val", "n_test_normal", "n_test_anomalous")
#: What a line of `collect_runs` takes from a run's metrics (`run_metrics`).
FROM_RUN = (*METRICS, *COUNTS, "epochs", "device", "wall_seconds", "metrics_from")
RUN_COLUMNS = ("row", "label", "seed", "status", *FROM_RUN, "error")
PAPER_NAMES = {"auc": "auc", "f1_best": "f1"}  # our metric -> the paper's column
RULES = (
    "A row differs from `{ref}` when |mean difference| > sqrt(std_row² + std_{ref}²), std being the "
    "sample standard deviation over seeds; it differs from the paper when |our mean − paper| > std_row "
    "(the paper gives one number without spread). Both are rough screens, not significance tests, and "
    "need at least 2 seeds."
)


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


def _with_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with an empty column for each metric it lacks (a runs.csv written before the metric was)."""
    return runs.assign(**{metric: np.nan for metric in METRICS if metric not in runs})


def _summarise(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys` (in the order first seen): the label, n finished, not_ok, and the mean and
    std (ddof=1) of each metric over the finished lines."""
    runs = _with_metrics(runs)
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


#: The level of the interval beside each mean.
LEVEL = 0.95


def t_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Student's t interval of the mean of `values` (NaN dropped): mean ± t(n-1) s / sqrt(n); NaN
    below 2 values. A t-interval rather than a bootstrap over seeds because the tables have 3 to 8
    seeds: a bootstrap of so few values draws from a handful of distinct means and comes out too
    narrow, while the t-interval is exact when results spread normally over seeds."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan, math.nan
    half = float(student_t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return float(x.mean()) - half, float(x.mean()) + half


def bh_adjusted(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (scipy's `false_discovery_control`) over the tests that
    have a p; NaN stays NaN. A row is a discovery at false-discovery rate q when its adjusted p <= q."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    if (~np.isnan(p)).any():
        out[~np.isnan(p)] = false_discovery_control(p[~np.isnan(p)], method="bh")
    return out


def interval_text(low: float, high: float) -> str:
    return "–" if pd.isna(low) else f"[{low:.3f}, {high:.3f}]"


def aggregate(
    runs: pd.DataFrame, paper: dict[str, dict[str, float]] | None = None, reference: str = "all"
) -> pd.DataFrame:
    """Per row: n, mean and std (ddof=1) of each metric over finished runs, the paper and the differences."""
    paper = paper or {}
    table = _summarise(runs, ["row"])
    order = list(table.index)
    for metric, name in PAPER_NAMES.items():
        table[f"{metric}_paper"] = [paper.get(row, {}).get(name, math.nan) for row in order]
        table[f"{metric}_vs_paper"] = table[f"{metric}_mean"] - table[f"{metric}_paper"]
        beyond = table[f"{metric}_vs_paper"].abs() > table[f"{metric}_std"]
        table[f"{metric}_paper_beyond_spread"] = beyond.where(table[f"{metric}_std"].notna())
        if reference in table.index:
            ref_mean, ref_std = table.at[reference, f"{metric}_mean"], table.at[reference, f"{metric}_std"]
            table[f"{metric}_vs_{reference}"] = table[f"{metric}_mean"] - ref_mean
            combined = (table[f"{metric}_std"] ** 2 + ref_std**2) ** 0.5
            beyond = table[f"{metric}_vs_{reference}"].abs() > combined
            table[f"{metric}_{reference}_beyond_spread"] = beyond.where(combined.notna())
    return table.rename_axis("row").reset_index()


def fmt(mean: float, std: float, n: int) -> str:
    """The text "mean ± std" to 3 decimals; the mean alone for one value; "–" for none."""
    if n == 0 or pd.isna(mean):
        return "–"
    return f"{mean:.3f}" if n < 2 or pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def _num(value: float, signed: bool = False) -> str:
    """Three decimals; `signed` adds + and never shows -0.000."""
    return "–" if pd.isna(value) else (f"{round(value, 3) + 0.0:+.3f}" if signed else f"{value:.3f}")


def statements(table: pd.DataFrame, reference: str = "all") -> list[str]:
    """One plain sentence per row and metric: does it differ from the reference row and from the paper?"""
    out = []
    for r in table.itertuples():
        for metric, name in (("auc", "AUC"), ("f1_best", "F1 (best threshold)")):
            mean, std = getattr(r, f"{metric}_mean"), getattr(r, f"{metric}_std")
            if r.n < 2:
                out.append(f"`{r.row}` {name}: {r.n} finished seed(s), too few to judge a spread.")
                continue
            parts = []
            if r.row != reference and hasattr(r, f"{metric}_vs_{reference}"):
                diff, beyond = getattr(r, f"{metric}_vs_{reference}"), getattr(r, f"{metric}_{reference}_beyond_spread")
                if not pd.isna(diff):
                    verdict = "exceeds" if beyond else "is within"
                    parts.append(f"{_num(diff, True)} vs `{reference}`, which {verdict} the spread over seeds")
            paper_diff = getattr(r, f"{metric}_vs_paper")
            if not pd.isna(paper_diff):
                verdict = "beyond" if getattr(r, f"{metric}_paper_beyond_spread") else "within"
                parts.append(f"{_num(paper_diff, True)} vs the paper, {verdict} our spread (std {std:.3f})")
            out.append(f"`{r.row}` {name} {mean:.3f}: " + ("; ".join(parts) if parts else "nothing to compare") + ".")
    return out


#: The columns of Table 1 as the book and `markdown` show it (`results_table`).
TABLE_COLUMNS = (
    "n",
    "AUC (chance 0.5)",
    "paper AUC",
    "Δ AUC",
    "F1, best threshold (paper's metric)",
    "paper F1",
    "Δ F1",
    "F1 at validation threshold",
    "F1 floor 2p/(1+p)",
)


def _cells(r) -> list[str]:
    """One row of `aggregate` as the text of `TABLE_COLUMNS`."""
    return [
        str(r.n),
        fmt(r.auc_mean, r.auc_std, r.n),
        _num(r.auc_paper),
        _num(r.auc_vs_paper, True),
        fmt(r.f1_best_mean, r.f1_best_std, r.n),
        _num(r.f1_best_paper),
        _num(r.f1_best_vs_paper, True),
        fmt(r.f1_val_mean, r.f1_val_std, r.n),
        _num(r.f1_floor_mean),
    ]


def results_table(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 to read: per row of `aggregate`, our mean ± std over seeds beside the paper and the
    difference, as text ("–" where there is nothing), indexed by row."""
    return pd.DataFrame(
        [_cells(r) for r in table.itertuples()], index=pd.Index(table["row"], name="row"), columns=TABLE_COLUMNS
    )


def _grid_line(plan: dict) -> str:
    """The grid, the preset and the settings every run shares, as a Markdown sentence."""
    settings = ", ".join(f"{k}={v}" for k, v in plan.get("settings", {}).items() if k not in ("device", "data_root"))
    preset = f"preset `{plan.get('preset')}`" + (
        f" ({plan['preset_description']})" if plan.get("preset_description") else ""
    )
    return f"Grid `{plan.get('grid', '?')}`, {preset}: {settings}."


def _runs_line(runs: pd.DataFrame) -> str:
    kept = int((runs["metrics_from"] == SCORES).sum()) if "metrics_from" in runs else 0
    return (
        f"Runs: {(runs.status == 'ok').sum()} finished, {(runs.status == 'failed').sum()} failed, "
        f"{(runs.status == 'unreadable').sum()} unreadable, "
        f"{runs.status.isin(['unfinished', 'missing']).sum()} unfinished or missing; the metrics of {kept} "
        "recomputed from their kept per-image scores, the others' as recorded."
    )


def _failed_lines(runs: pd.DataFrame, vary: Sequence[str] = ()) -> list[str]:
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


def markdown(table: pd.DataFrame, runs: pd.DataFrame, plan: dict, reference: str = "all") -> str:
    """Table 1 as Markdown: our mean ± std (n), the paper and the difference, then the statements."""
    lines = [f"# {plan.get('description') or 'Ablation'}", "", _grid_line(plan), ""]
    if plan.get("paper_note"):
        lines += [plan["paper_note"], ""]
    lines += [
        _runs_line(runs),
        "",
        "| row | " + " | ".join((*TABLE_COLUMNS[:2], "AUC 95% interval", *TABLE_COLUMNS[2:])) + " |",
        "|---" * (2 + len(TABLE_COLUMNS)) + "|",
    ]
    lines += [
        f"| {r.label} (`{r.row}`) | "
        + " | ".join((*_cells(r)[:2], interval_text(r.auc_ci_low, r.auc_ci_high), *_cells(r)[2:]))
        + " |"
        for r in table.itertuples()
    ]
    lines += [
        "",
        "Values are mean ± sample std over seeds; the interval is the mean's 95% t-interval (Student's t with "
        "n − 1 degrees of freedom: with 3 to 8 seeds a bootstrap over seeds would be too narrow). "
        "The paper's F1 is the best F1 over all thresholds, "
        "chosen on the test set, so it is optimistic; F1 at the validation threshold uses a threshold fixed "
        "on normal validation images; the F1 floor is the F1 of flagging every test image as anomalous.",
    ]
    if plan.get("settings", {}).get("dataset") == "cifar10":
        lines += [
            "",
            "CIFAR-10 read from the project's offline copy (`cifar10_*_jpegq75.npz`) is JPEG-compressed "
            "(quality 75); reconstruction-based scores on it may differ slightly from the original pixels.",
        ]
    lines += ["", "## Which differences exceed the spread", "", RULES.format(ref=reference), ""]
    lines += [f"- {s}" for s in statements(table, reference)]
    if reference in set(runs["row"]) and runs["row"].nunique() > 1:
        lines += ["", *_paired_lines(paired_differences(runs, [], reference), reference)]
    lines += _failed_lines(runs, list(plan.get("vary") or {}))
    return "\n".join(lines) + "\n"


def _rows(names) -> str:
    return ", ".join(f"`{r}`" for r in names)


def agreement(table: pd.DataFrame, reference: str = "all") -> str:
    """Where our results (`aggregate`) agree with the paper's Table 1, in plain sentences (Markdown
    paragraphs): the reference row against the paper, the order of the rows and its rank
    correlation, the costliest removal, differences beyond the spread, F1 at its floor, AUC below
    chance. Written from the numbers, so it stays true when the results are recorded again."""
    lines = []
    t = table.set_index("row")
    if reference in t.index and t.at[reference, "n"] > 0:
        a = t.loc[reference]
        paper_auc = "" if pd.isna(a.auc_paper) else f" against the paper's {a.auc_paper:.3f}"
        paper_f1 = "" if pd.isna(a.f1_best_paper) else f" against the paper's {a.f1_best_paper:.3f}"
        lines.append(
            f"With all losses our AUC is {fmt(a.auc_mean, a.auc_std, a.n)} over {a.n} seed(s){paper_auc}, "
            f"and our best-threshold F1 is {fmt(a.f1_best_mean, a.f1_best_std, a.n)}{paper_f1} "
            f"(floor {a.f1_floor_mean:.3f}; at the validation threshold {fmt(a.f1_val_mean, a.f1_val_std, a.n)})."
        )
    rated = t[t["n"] > 0]
    lines.append(
        "Our rows from lowest to highest mean AUC: "
        + ", ".join(f"`{r}` ({rated.at[r, 'auc_mean']:.3f})" for r in rated.sort_values("auc_mean").index)
        + "."
    )
    with_paper = rated[rated["auc_paper"].notna()]
    if not t["auc_paper"].notna().any():
        lines.append(
            "The paper's values do not apply to these results (another dataset or class), so only the rows "
            "can be compared with each other."
        )
    elif len(with_paper) < 2:
        lines.append("Fewer than two rows have finished runs, so the order of the rows cannot be compared yet.")
    else:
        lines += _order_against_paper(with_paper, reference)
    others = [r for r in rated.index if r != reference and rated.at[r, "n"] >= 2]
    if not (others and reference in rated.index and rated.at[reference, "n"] >= 2):
        lines.append(f"No row has two finished seeds beside `{reference}` yet, so none can be judged against it.")
    else:
        beyond = t[f"auc_{reference}_beyond_spread"].fillna(False).astype(bool)
        differ = [r for r in others if beyond[r]]
        listed = ", ".join(f"`{r}` ({t.at[r, f'auc_vs_{reference}']:+.3f})" for r in differ) or "none"
        lines.append(
            f"Rows (with at least two seeds) whose AUC differs from `{reference}` by more than the combined "
            f"spread: {listed}."
        )
    at_floor = [r for r in rated.index if abs(rated.at[r, "f1_best_mean"] - rated.at[r, "f1_floor_mean"]) < 0.01]
    if at_floor:
        lines.append(
            f"Best-threshold F1 within 0.01 of the flag-everything floor in: {_rows(at_floor)}. There, no "
            "threshold does better than flagging every test image as anomalous, so the F1 says nothing about "
            "the detector."
        )
    below = [r for r in rated.index if rated.at[r, "auc_mean"] < 0.5]
    clear = [r for r in below if rated.at[r, "auc_mean"] + rated.at[r, "auc_std"] < 0.5]
    if not below:
        lines.append("No row has a mean AUC below chance (0.5).")
    else:
        lines.append(
            f"Mean AUC below chance (0.5) in: {_rows(below)}; by more than one standard deviation over seeds in: "
            f"{_rows(clear) if clear else 'none'}. Only a row clearly below 0.5 ranks the anomalies as more "
            "normal than the normal images; the others are at chance."
        )
    return "\n\n".join(lines)


def _order_against_paper(with_paper: pd.DataFrame, reference: str) -> list[str]:
    """The sentences of `agreement` on the order of the rows that have the paper's value."""
    paper_order = list(with_paper.sort_values("auc_paper").index)
    ours_order = list(with_paper.sort_values("auc_mean").index)
    rho = with_paper["auc_mean"].rank().corr(with_paper["auc_paper"].rank())
    same = "The two orders are the same." if ours_order == paper_order else "The orders differ."
    lines = [
        f"The paper's order of the same rows: {_rows(paper_order)}. {same} Rank correlation (Spearman) between "
        f"our mean AUCs and the paper's over these {len(with_paper)} rows: {rho:+.2f}."
    ]
    removals = with_paper.drop(index=reference, errors="ignore")
    if len(removals):
        costliest_paper, costliest_ours = removals["auc_paper"].idxmin(), removals["auc_mean"].idxmin()
        lines.append(
            f"Among the rows with results, the costliest removal is `{costliest_paper}` in the paper and in ours."
            if costliest_paper == costliest_ours
            else f"Among the rows with results, the paper's costliest removal is `{costliest_paper}`; "
            f"ours is `{costliest_ours}`."
        )
    if reference in with_paper.index:
        best = with_paper["auc_mean"].idxmax()
        lines.append(
            "In the paper every removal lowers the AUC; "
            + (
                f"among our rows with results, too, `{reference}` has the highest mean AUC."
                if best == reference
                else f"among our rows with results the highest mean AUC is `{best}`'s, not `{reference}`'s."
            )
        )
    beyond = with_paper["auc_paper_beyond_spread"].fillna(False).astype(bool)
    judged = with_paper["auc_std"].notna()
    lines.append(
        f"Rows with a spread (two or more seeds): {int(judged.sum())}; of these, {int(beyond[judged].sum())} "
        "differ from the paper's AUC by more than our standard deviation over seeds."
    )
    return lines


# ------------------------------------------------ grids that vary settings (the paper's Figs. 2 and 3)
#: Varied settings whose values are classes, shown by name where the dataset has names.
CLASS_KEYS = ("anomaly_class", "normal_class")
#: The columns of the per-cell and mean-over-cells tables as `cell_markdown` shows them.
CELL_COLUMNS = (
    "n",
    "AUC (chance 0.5)",
    "F1, best threshold (oracle: picked on the test set)",
    "F1 at validation threshold",
    "F1 floor 2p/(1+p)",
)


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


def _by_cell(runs: pd.DataFrame, vary: Sequence[str]) -> pd.DataFrame:
    """`runs` with the lines of each cell together, cells in the order first seen, rows in theirs within."""
    codes, _ = pd.factorize(pd.Series(list(zip(*(runs[key] for key in vary), strict=True)), dtype=object))
    return runs.iloc[np.argsort(codes, kind="stable")]


def cell_table(runs: pd.DataFrame, vary: Sequence[str]) -> pd.DataFrame:
    """Per cell of the varied settings and row (`collect_runs`' lines): n finished, not_ok, and the mean
    and std (ddof=1) over seeds of each metric; one column per varied setting, then row and label."""
    return _summarise(_by_cell(runs, vary), [*vary, "row"]).reset_index()


def mean_over_cells(runs: pd.DataFrame, vary: Sequence[str]) -> pd.DataFrame:
    """Per row: mean and std (ddof=1) over seeds of each seed's mean over the cells (how many: `cells`).
    Only seeds with every cell finished count (n); a mean over fewer cells would not be comparable."""
    runs = _with_metrics(runs)
    n_cells = len(runs[list(vary)].drop_duplicates())
    by = [runs["row"], runs["seed"]]
    ok = runs["status"] == "ok"
    per_seed = pd.DataFrame({"label": runs["label"].groupby(by, sort=False).first()})
    per_seed["status"] = np.where(ok.groupby(by, sort=False).sum() == n_cells, "ok", "incomplete")
    for metric in METRICS:
        per_seed[metric] = pd.to_numeric(runs[metric], errors="coerce").groupby(by, sort=False).mean()
    return _summarise(per_seed.reset_index(), ["row"]).assign(cells=n_cells).reset_index()


def _reference(runs: pd.DataFrame, reference: str | None) -> str:
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
    reference = _reference(runs, reference)
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


def signed_rank_p(diff: np.ndarray) -> float:
    """Two-sided p of the Wilcoxon signed-rank test that paired differences centre on 0 (exact for
    small n: with 5 pairs all of one sign, p = 2/32 = 0.0625, the smallest 5 pairs can give);
    NaN with fewer than 2 pairs or when every difference is 0."""
    diff = np.asarray(diff, dtype=float)
    if len(diff) < 2 or not np.any(diff != 0):
        return float("nan")
    return float(wilcoxon(diff).pvalue)


def _summary_cells(r: Any) -> list[str]:
    """One line of `_summarise` as the text of `CELL_COLUMNS`."""
    return [
        str(r.n),
        fmt(r.auc_mean, r.auc_std, r.n),
        fmt(r.f1_best_mean, r.f1_best_std, r.n),
        fmt(r.f1_val_mean, r.f1_val_std, r.n),
        _num(r.f1_floor_mean),
    ]


def _md_table(header: Sequence[str], lines: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"] + ["| " + " | ".join(x) + " |" for x in lines]


def _paired_lines(pairs: pd.DataFrame, reference: str) -> list[str]:
    return [
        f"## AUC paired with `{reference}`",
        "",
        f"Each row's AUC minus `{reference}`'s in the same cell and seed, over the pairs where both finished "
        "(mean ± sample std, and its 95% t-interval), in how many pairs the row is ahead, the two-sided p of "
        "the Wilcoxon signed-rank test, and that p adjusted for testing every row (Benjamini–Hochberg).",
        "",
        *_md_table(
            ["row", "pairs", f"Δ AUC vs `{reference}`", "95% interval", "ahead", "Wilcoxon p", "p (BH)"],
            [
                [
                    f"{r.label} (`{r.row}`)",
                    str(r.pairs),
                    fmt(r.auc_diff_mean, r.auc_diff_std, r.pairs),
                    interval_text(r.auc_diff_ci_low, r.auc_diff_ci_high),
                    str(r.ahead),
                    _num(r.wilcoxon_p),
                    _num(r.wilcoxon_p_bh),
                ]
                for r in pairs.itertuples()
            ],
        ),
        "",
    ]


def cell_markdown(runs: pd.DataFrame, plan: dict, reference: str | None = None) -> str:
    """The per-cell report as Markdown: the mean over the cells per row, the paired differences to
    `reference` (default: the first row), and the table per cell and row."""
    vary = list(plan["vary"])
    dataset = plan.get("settings", {}).get("dataset")
    shown = settings_name(vary)
    reference = _reference(runs, reference)
    over, pairs = mean_over_cells(runs, vary), paired_differences(runs, vary, reference)
    varied = "; ".join(f"{k} over {', '.join(map(str, values))}" for k, values in plan["vary"].items())
    lines = [
        f"# {plan.get('description') or 'Ablation'}: per {shown}",
        "",
        _grid_line(plan),
        "",
        f"Varied: {varied}. {_runs_line(runs)}",
        "",
        f"## Mean over the {int(over['cells'].iloc[0])} cells ({shown})",
        "",
        "Per seed, the mean over every cell; then mean ± sample std over the seeds (n) that have every cell finished.",
        "",
        *_md_table(["row", *CELL_COLUMNS], [[f"{r.label} (`{r.row}`)", *_summary_cells(r)] for r in over.itertuples()]),
        "",
        *(_paired_lines(pairs, reference) if len(pairs) else []),
        f"## Per {shown}",
        "",
        *_md_table(
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
            *_md_table([layout.columns.name, *map(str, layout.columns)], [[i, *r] for i, r in layout.iterrows()]),
            *(["", GPND_NOTE] if _gpnd(plan) else []),
        ]
    lines += _failed_lines(runs, vary)
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
    runs = _with_metrics(runs)
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
        lines[name] = {v: _num(floor[v]) for v in floor.index}
    table = pd.DataFrame(lines).T.reindex(columns=values).fillna("–")  # a value nobody ran or published
    table.columns = [value_name(key, v, plan.get("settings", {}).get("dataset")) for v in values]
    table.columns.name = key
    return table


def cell_bars(runs: pd.DataFrame, vary: Sequence[str], dataset: str | None = None, ax: Axes | None = None) -> Figure:
    """The paper's Figs. 2 and 3: per cell of the varied settings (x; classes by name where `dataset`
    has names), one bar per row, the AUC's mean ± std over seeds, and chance (AUC 0.5) dashed.
    Draws into `ax`, else into a new pyplot figure in the house style."""
    import seaborn as sns

    from cvgad.workbench import plots

    if ax is None:
        _, ax = plots.new_figure((plots.WIDTH, 3.6))
    ordered = _by_cell(runs, vary)
    names = [
        cell_name(dict(zip(vary, values, strict=True)), dataset)
        for values in zip(*(ordered[k] for k in vary), strict=True)
    ]
    shown = ordered.assign(cell=names, auc=pd.to_numeric(ordered["auc"], errors="coerce"))
    sns.barplot(
        shown[shown["status"] == "ok"],
        x="cell",
        y="auc",
        hue="label",
        order=list(dict.fromkeys(names)),
        hue_order=list(dict.fromkeys(runs["label"])),
        errorbar="sd",
        err_kws={"linewidth": 1},
        capsize=0.2,
        ax=ax,
    )
    ax.axhline(0.5, color="0.3", ls="--", lw=1, label="chance (AUC 0.5)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, frameon=False)
    ax.set(xlabel=settings_name(vary), ylabel="AUC (mean ± std over seeds)", ylim=(0, 1.05))
    if max(map(len, names), default=0) > 3:
        ax.tick_params(axis="x", labelrotation=30)
    return plots.root_figure(ax)


def styled(frame: pd.DataFrame, precision: int = 3):
    """`frame` as the book shows tables: floats to `precision` decimals, integers as integers and
    "–" where a value is missing (a pandas Styler, shown as HTML)."""
    return frame.style.format(precision=precision, na_rep="–")


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


def bar_chart(table: pd.DataFrame, path: str | Path, title: str) -> None:
    """Our mean ± std beside the paper's value, per row, for AUC and best-threshold F1, with the
    chance level (AUC 0.5) and the F1 floor (`cvgad.workbench.plots.ablation_bars`, in the book's house
    style), saved to `path`. Drawn on a bare Figure: no pyplot backend is changed."""
    from cvgad.workbench import plots

    with plots.house_style():
        fig = Figure(figsize=(plots.WIDTH, 5.4), layout="constrained")
        plots.ablation_bars(table, axes=fig.subplots(2, 1, sharex=True))
        fig.suptitle(title)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=plots.HOUSE["savefig.dpi"]))


def cell_chart(runs: pd.DataFrame, vary: Sequence[str], dataset: str | None, path: str | Path, title: str) -> None:
    """`cell_bars` saved to `path`, drawn on a bare Figure: no pyplot backend is changed."""
    from cvgad.workbench import plots

    with plots.house_style():
        fig = Figure(figsize=(plots.WIDTH, 3.6), layout="constrained")
        cell_bars(runs, vary, dataset, ax=fig.subplots())
        fig.suptitle(title)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=plots.HOUSE["savefig.dpi"]))


def _write_csv(path: Path, frame: pd.DataFrame, **options: Any) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, **options))


def write_report(root: str | Path, out: str | Path | None = None, paper_csv: str | Path | None = None) -> list[Path]:
    """Write runs.csv and, for a grid of rows x seeds (Table 1), table1.csv, table1.md and
    table1.png; for a grid that varies settings (Figs. 2 and 3), per_cell.csv,
    mean_over_cells.csv, paired.csv, per_cell.md and per_cell.png instead (pooling over classes
    would mix them). Returns the paths written."""
    root = Path(root)
    out = Path(out) if out else root
    runs, plan = collect_runs(root), read_plan(root)
    _write_csv(out / "runs.csv", runs)
    grid = f"{plan.get('grid', 'ablation')} / {plan.get('preset')}"
    vary = list(plan.get("vary") or {})
    if vary and paper_csv:
        raise ValueError(
            "--paper gives Table 1's values per row; this grid varies settings (its published values are in the grid)"
        )
    if vary:
        tables = {
            "per_cell.csv": cell_table(runs, vary),
            "mean_over_cells.csv": mean_over_cells(runs, vary),
            "paired.csv": paired_differences(runs, vary),
        }
        layout = published_layout(runs, plan)
        if layout is not None:
            tables["published_layout.csv"] = layout.rename_axis("line").reset_index()
        texts = {"per_cell.md": cell_markdown(runs, plan)}
        dataset = plan.get("settings", {}).get("dataset")
        cell_chart(runs, vary, dataset, out / "per_cell.png", f"{grid}: AUC per {settings_name(vary)}")
        charts = ["per_cell.png"]
    else:
        paper = read_paper_csv(paper_csv) if paper_csv else plan.get("paper", {})
        table = aggregate(runs, paper)
        tables, texts = {"table1.csv": table}, {"table1.md": markdown(table, runs, plan)}
        bar_chart(table, out / "table1.png", f"{grid}: ours (up to {table['n'].max()} seeds) beside the paper")
        charts = ["table1.png"]
    for name, frame in tables.items():
        _write_csv(out / name, frame, float_format="%.4f")
    for name, text in texts.items():
        atomic_write_text(out / name, text)
    return [out / name for name in ("runs.csv", *tables, *texts, *charts)]
