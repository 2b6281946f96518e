"""Aggregate an ablation's runs into Table 1: a tidy CSV, Markdown, a bar chart and plain statements.

`write_report("ablations/results/table1/cpu")` (the `cvgad report` command) reads every
`<row>/seed<k>/` folder the runner left (and `plan.json`, for the row order, labels and the
paper's values) and writes `runs.csv` (one line per run), `table1.csv` (one line per row),
`table1.md` and `table1.png`.

The spread of a row is the sample standard deviation (ddof=1) of its seeds. Two rules, stated in
the output too, decide what counts as a difference; they are rough screens, not significance tests:
a row differs from the reference row ("all") when |mean difference| > sqrt(std_row^2 + std_ref^2),
and from the paper when |our mean - paper| > std_row (the paper reports a single number, no spread).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from cvgad.atomic import atomic_write
from cvgad.grid import read_paper_csv
from cvgad.runs import read_plan, seed_dir, seeds_found
from cvgad.runs import status as run_status

METRICS = ("auc", "f1_best", "auprc", "f1_val", "f1_floor")
COUNTS = ("n_train", "n_val", "n_test_normal", "n_test_anomalous")
RUN_COLUMNS = ("row", "label", "seed", "status", *METRICS, *COUNTS, "epochs", "device", "wall_seconds", "error")
PAPER_NAMES = {"auc": "auc", "f1_best": "f1"}  # our metric -> the paper's column
RULES = (
    "A row differs from `{ref}` when |mean difference| > sqrt(std_row² + std_{ref}²), std being the "
    "sample standard deviation over seeds; it differs from the paper when |our mean − paper| > std_row "
    "(the paper gives one number without spread). Both are rough screens, not significance tests, and "
    "need at least 2 seeds."
)


def collect_runs(root: str | Path) -> pd.DataFrame:
    """One line per run: planned (row, seed) pairs plus any other seed folders found, with status and metrics."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"results folder {str(root)!r} does not exist; run `cvgad ablate` first")
    plan = read_plan(root)
    lines = []
    for row in plan["rows"]:
        for seed in sorted(seeds_found(root, row["id"]) | set(plan["seeds"])):
            status, metrics, error = run_status(seed_dir(root, row["id"], seed))
            lines.append(
                {"row": row["id"], "label": row["label"], "seed": seed, "status": status, "error": error}
                | {k: metrics.get(k) for k in (*METRICS, *COUNTS, "epochs", "device", "wall_seconds")}
            )
    if not lines:
        raise ValueError(f"no runs found under {root}; expected <row>/seed<k>/ folders from `cvgad ablate`")
    return pd.DataFrame(lines, columns=list(RUN_COLUMNS))


def aggregate(
    runs: pd.DataFrame, paper: dict[str, dict[str, float]] | None = None, reference: str = "all"
) -> pd.DataFrame:
    """Per row: n, mean and std (ddof=1) of each metric over finished seeds, the paper and the differences."""
    paper = paper or {}
    order = list(dict.fromkeys(runs["row"]))
    ok = runs[runs["status"] == "ok"]
    table = pd.DataFrame({"label": runs.groupby("row", sort=False)["label"].first()}).reindex(order)
    table["n"] = ok.groupby("row")["seed"].count().reindex(order).fillna(0).astype(int)
    table["not_ok"] = (runs["status"] != "ok").groupby(runs["row"]).sum().reindex(order).astype(int)
    for metric in METRICS:
        values = pd.to_numeric(ok[metric], errors="coerce").groupby(ok["row"])
        table[f"{metric}_mean"] = values.mean().reindex(order)
        table[f"{metric}_std"] = values.std(ddof=1).reindex(order)
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


def _fmt(mean: float, std: float, n: int) -> str:
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


def markdown(table: pd.DataFrame, runs: pd.DataFrame, plan: dict, reference: str = "all") -> str:
    """Table 1 as Markdown: our mean ± std (n), the paper and the difference, then the statements."""
    settings = ", ".join(f"{k}={v}" for k, v in plan.get("settings", {}).items() if k not in ("device", "data_root"))
    preset = f"preset `{plan.get('preset')}`" + (
        f" ({plan['preset_description']})" if plan.get("preset_description") else ""
    )
    lines = [
        f"# {plan.get('description') or 'Ablation'}",
        "",
        f"Grid `{plan.get('grid', '?')}`, {preset}: {settings}.",
        "",
    ]
    if plan.get("paper_note"):
        lines += [plan["paper_note"], ""]
    lines += [
        f"Runs: {(runs.status == 'ok').sum()} finished, {(runs.status == 'failed').sum()} failed, "
        f"{runs.status.isin(['unfinished', 'missing']).sum()} unfinished or missing.",
        "",
        "| row | n | AUC | paper AUC | Δ AUC | F1, best threshold (paper's metric) | paper F1 | Δ F1 "
        "| F1 at validation threshold | F1 floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.label} (`{r.row}`) | {r.n} | {_fmt(r.auc_mean, r.auc_std, r.n)} | {_num(r.auc_paper)} "
            f"| {_num(r.auc_vs_paper, True)} | {_fmt(r.f1_best_mean, r.f1_best_std, r.n)} | {_num(r.f1_best_paper)} "
            f"| {_num(r.f1_best_vs_paper, True)} | {_fmt(r.f1_val_mean, r.f1_val_std, r.n)} | {_num(r.f1_floor_mean)} |"
        )
    lines += [
        "",
        "Values are mean ± sample std over seeds. The paper's F1 is the best F1 over all thresholds, "
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
    failed = runs[runs.status == "failed"]
    if len(failed):
        lines += ["", "## Failed runs", ""] + [f"- `{r.row}` seed {r.seed}: {r.error}" for r in failed.itertuples()]
    return "\n".join(lines) + "\n"


def bar_chart(table: pd.DataFrame, path: str | Path, title: str) -> None:
    """Our mean ± std beside the paper's value, per row, for AUC and best-threshold F1, with the
    chance level (AUC 0.5) and the F1 floor (`cvgad.plots.ablation_bars`, in the book's house
    style), saved to `path`. Drawn on a bare Figure: no pyplot backend is changed."""
    from matplotlib.figure import Figure

    from cvgad import plots

    fig = Figure(figsize=(plots.WIDTH, 5.4), layout="constrained")
    plots.ablation_bars(table, axes=fig.subplots(2, 1, sharex=True))
    fig.suptitle(title)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=plots.HOUSE["savefig.dpi"]))


def write_report(root: str | Path, out: str | Path | None = None, paper_csv: str | Path | None = None) -> pd.DataFrame:
    """Write runs.csv, table1.csv, table1.md and table1.png for the results under `root`; return the table."""
    root = Path(root)
    out = Path(out) if out else root
    runs, plan = collect_runs(root), read_plan(root)
    paper = read_paper_csv(paper_csv) if paper_csv else plan.get("paper", {})
    table = aggregate(runs, paper)
    atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False))
    atomic_write(out / "table1.csv", lambda tmp: table.to_csv(tmp, index=False, float_format="%.4f"))
    atomic_write(out / "table1.md", lambda tmp: tmp.write_text(markdown(table, runs, plan)))
    seeds = table["n"].max()
    bar_chart(
        table,
        out / "table1.png",
        f"{plan.get('grid', 'ablation')} / {plan.get('preset')}: ours (up to {seeds} seeds) beside the paper",
    )
    return table
