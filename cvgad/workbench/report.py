"""The files of `cvgad report`: an ablation's runs aggregated into tidy CSVs, Markdown and a chart.

`write_report("ablations/results/table1/cpu")` reads the runs of a grid
(`cvgad.workbench.results.collect_runs`) and writes `runs.csv` (one line per run), `table1.csv`
(one line per row), `table1.md` and `table1.png` (`cvgad.workbench.table1`).

A grid that varies settings (`vary`, e.g. every anomaly class) has one column per varied
setting in `runs.csv`, and the report writes instead (`cvgad.workbench.per_cell`):
`per_cell.csv` (per cell and row), `mean_over_cells.csv` (per row, over seeds of the mean over
the cells), `paired.csv` (per row against a reference row, paired over cell and seed),
`per_cell.md` (the three as Markdown) and `per_cell.png`; with published values (Tables 2 and
3), `published_layout.csv` (the paper's layout, ours beside the published numbers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cvgad.atomic import atomic_write, atomic_write_text
from cvgad.experiment.runs import read_plan
from cvgad.workbench import plots
from cvgad.workbench.formatting import settings_name
from cvgad.workbench.grid import read_paper_csv
from cvgad.workbench.per_cell import cell_markdown, cell_table, mean_over_cells, published_layout
from cvgad.workbench.results import collect_runs, paired_differences
from cvgad.workbench.table1 import aggregate, markdown


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
        plots.save_figure(
            out / "per_cell.png",
            (plots.WIDTH, 3.6),
            f"{grid}: AUC per {settings_name(vary)}",
            lambda fig: plots.cell_bars(runs, vary, dataset, ax=fig.subplots()),
        )
        charts = ["per_cell.png"]
    else:
        paper = read_paper_csv(paper_csv) if paper_csv else plan.get("paper", {})
        table = aggregate(runs, paper)
        tables, texts = {"table1.csv": table}, {"table1.md": markdown(table, runs, plan)}
        plots.save_figure(
            out / "table1.png",
            (plots.WIDTH, 5.4),
            f"{grid}: ours (up to {table['n'].max()} seeds) beside the paper",
            lambda fig: plots.ablation_bars(table, axes=fig.subplots(2, 1, sharex=True)),
        )
        charts = ["table1.png"]
    for name, frame in tables.items():
        _write_csv(out / name, frame, float_format="%.4f")
    for name, text in texts.items():
        atomic_write_text(out / name, text)
    return [out / name for name in ("runs.csv", *tables, *texts, *charts)]
