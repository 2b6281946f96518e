"""Table 1's report: per row (a loss removed, or all), our mean ± std over seeds beside the
paper's value, and plain statements of which differences exceed the spread.

Two rules, stated in the output too, decide what counts as a difference; they are rough
screens, not significance tests: a row differs from the reference row ("all") when |mean
difference| > sqrt(std_row^2 + std_ref^2), and from the paper when |our mean - paper| > std_row
(the paper reports a single number, no spread). The paired differences beside them
(`cvgad.workbench.results.paired_differences`) carry a t-interval and a Wilcoxon p.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from cvgad.workbench.formatting import (
    failed_lines,
    fmt,
    grid_line,
    interval_text,
    md_table,
    num,
    paired_markdown,
    runs_line,
)
from cvgad.workbench.results import paired_differences, summarise

PAPER_NAMES = {"auc": "auc", "f1_best": "f1"}  # our metric -> the paper's column
RULES = (
    "A row differs from `{ref}` when |mean difference| > sqrt(std_row² + std_{ref}²), std being the "
    "sample standard deviation over seeds; it differs from the paper when |our mean − paper| > std_row "
    "(the paper gives one number without spread). Both are rough screens, not significance tests, and "
    "need at least 2 seeds."
)


def aggregate(
    runs: pd.DataFrame, paper: dict[str, dict[str, float]] | None = None, reference: str = "all"
) -> pd.DataFrame:
    """Per row: n, mean and std (ddof=1) of each metric over finished runs, the paper and the differences."""
    paper = paper or {}
    table = summarise(runs, ["row"])
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
                    parts.append(f"{num(diff, True)} vs `{reference}`, which {verdict} the spread over seeds")
            paper_diff = getattr(r, f"{metric}_vs_paper")
            if not pd.isna(paper_diff):
                verdict = "beyond" if getattr(r, f"{metric}_paper_beyond_spread") else "within"
                parts.append(f"{num(paper_diff, True)} vs the paper, {verdict} our spread (std {std:.3f})")
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


def _cells(r: Any) -> list[str]:
    """One row of `aggregate` as the text of `TABLE_COLUMNS`."""
    return [
        str(r.n),
        fmt(r.auc_mean, r.auc_std, r.n),
        num(r.auc_paper),
        num(r.auc_vs_paper, True),
        fmt(r.f1_best_mean, r.f1_best_std, r.n),
        num(r.f1_best_paper),
        num(r.f1_best_vs_paper, True),
        fmt(r.f1_val_mean, r.f1_val_std, r.n),
        num(r.f1_floor_mean),
    ]


def results_table(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 to read: per row of `aggregate`, our mean ± std over seeds beside the paper and the
    difference, as text ("–" where there is nothing), indexed by row."""
    return pd.DataFrame(
        [_cells(r) for r in table.itertuples()], index=pd.Index(table["row"], name="row"), columns=TABLE_COLUMNS
    )


def markdown(table: pd.DataFrame, runs: pd.DataFrame, plan: dict, reference: str = "all") -> str:
    """Table 1 as Markdown: our mean ± std (n), the paper and the difference, then the statements."""
    lines = [f"# {plan.get('description') or 'Ablation'}", "", grid_line(plan), ""]
    if plan.get("paper_note"):
        lines += [plan["paper_note"], ""]
    lines += [
        runs_line(runs),
        "",
        *md_table(
            ["row", *TABLE_COLUMNS[:2], "AUC 95% interval", *TABLE_COLUMNS[2:]],
            [
                [f"{r.label} (`{r.row}`)", *_cells(r)[:2], interval_text(r.auc_ci_low, r.auc_ci_high), *_cells(r)[2:]]
                for r in table.itertuples()
            ],
        ),
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
        lines += ["", *paired_markdown(paired_differences(runs, [], reference), reference)]
    lines += failed_lines(runs, list(plan.get("vary") or {}))
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
