"""The book's results at a glance: its headline numbers, read from the recorded results.

The start page shows this table; each line names the chapter that explains it and the file it was
read from, so a number on the start page is never typed in and changes when the record does.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cvgad.workbench.formatting import fmt, num
from cvgad.workbench.results import load_runs, paired_differences

#: The search behind the book's defaults, and the candidate the defaults are (cvgad.experiment.params.BOOK).
SEARCH = Path("benchmarks/results/book_defaults.csv")
BOOK_CANDIDATE = "a7_meanslr3e-2_gate1"
DIGITS_GRID = Path("ablations/results/table1/digits")
CIFAR_GRID = Path("ablations/results/table1/cpu")


def _mean_std(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return fmt(values.mean(), values.std(), len(values))


def _grid_lines(repo: Path, record: Path, chapter: str, task: str) -> list[dict[str, str]]:
    """`all` against `untrained` in a recorded Table 1 grid (`record`, relative to `repo`), and its
    largest paired removal."""
    runs, _ = load_runs(repo / record)
    if runs is None:
        return []
    ok = runs[runs["status"] == "ok"]
    auc = ok.pivot_table(index="seed", columns="row", values="auc")
    lines = [
        {
            "chapter": chapter,
            "result": f"{task}: AUC with all losses, and untrained (paired by seed: `all` ahead)",
            "value": f"{_mean_std(auc['all'])} vs {_mean_std(auc['untrained'])} "
            f"({int((auc['all'] > auc['untrained']).sum())} of {len(auc)} seeds)",
            "record": record.as_posix(),
        }
    ]
    pairs = paired_differences(runs, [], reference="all").set_index("row").drop(index="untrained")
    worst = pairs["auc_diff_mean"].idxmin()
    p = pairs.at[worst, "wilcoxon_p"]
    lines.append(
        {
            "chapter": chapter,
            "result": f"{task}: the removal that costs most AUC (paired with `all`, Wilcoxon p)",
            "value": f"`{worst}` {num(pairs.at[worst, 'auc_diff_mean'], signed=True)} "
            f"± {pairs.at[worst, 'auc_diff_std']:.3f} "
            f"(lower on {int(pairs.at[worst, 'pairs'] - pairs.at[worst, 'ahead'])} of {int(pairs.at[worst, 'pairs'])}"
            f" seeds, p = {p:.3f})",
            "record": record.as_posix(),
        }
    )
    return lines


def at_a_glance(repo: Path) -> pd.DataFrame:
    """The headline numbers of chapters 4 to 6 from the records under `repo` (mean ± std, n seeds)."""
    lines: list[dict[str, str]] = []
    search_file = repo / SEARCH
    if search_file.is_file():
        search = pd.read_csv(search_file)
        book = search[search["candidate"] == BOOK_CANDIDATE]
        record = SEARCH.as_posix()
        lines += [
            {
                "chapter": "4",
                "result": "digits, 7 as the anomaly: AUC trained, and untrained",
                "value": f"{_mean_std(book['auc'])} vs {_mean_std(book['auc_untrained'])} "
                f"({int((book['auc_gain'] > 0).sum())} of {len(book)} seeds ahead)",
                "record": record,
            },
            {
                "chapter": "5",
                "result": "NMI of the clusters with the classes (normal test images), trained and untrained",
                "value": f"{_mean_std(book['nmi_normal'])} vs {_mean_std(book['nmi_normal_untrained'])}",
                "record": record,
            },
            {
                "chapter": "5",
                "result": "distinct digits the 9 cluster means decode to, trained and untrained",
                "value": f"{book['distinct_digits'].mean():.1f} vs {book['distinct_digits_untrained'].mean():.1f}"
                f" (mean over {len(book)} seeds)",
                "record": record,
            },
            {
                "chapter": "5",
                "result": "epoch in which the gate T first let negative training run (of 6)",
                "value": ", ".join(str(int(e) + 1) for e in book["gate_open_epoch"].dropna())
                + f" ({book['gate_open_epoch'].isna().sum()} seeds never)",
                "record": record,
            },
        ]
    lines += _grid_lines(repo, DIGITS_GRID, "6", "digits, 7 as the anomaly")
    lines += _grid_lines(repo, CIFAR_GRID, "6", "CIFAR-10 deer, cpu budget")
    return pd.DataFrame(lines, columns=["chapter", "result", "value", "record"])


#: The source of each chapter, relative to the start page (MyST links a source to its page).
PAGES = {"4": "notebooks/04_scoring.ipynb", "5": "notebooks/05_latent_space.ipynb", "6": "notebooks/06_ablation.ipynb"}


def markdown(table: pd.DataFrame) -> str:
    """`at_a_glance` as a Markdown table whose chapter numbers link to the chapters."""
    lines = ["| chapter | result | value (mean ± std, n seeds) | recorded in |", "|---|---|---|---|"]
    lines += [
        f"| [{r.chapter}]({PAGES[r.chapter]}) | {r.result} | {r.value} | `{r.record}` |" for r in table.itertuples()
    ]
    return "\n".join(lines)
