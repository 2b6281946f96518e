"""Every preset the book shows, with its model size and its measured minutes per run.

The sizes come from the grid files (ablations/*.yaml, through `cvgad.workbench.grid`) and from
`cvgad.experiment.params` (the library's defaults and the book's `BOOK`); the minutes from the
recorded runs of each preset (ablations/results/<grid>/<preset>/). One table, so that a chapter
that names a size can point to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cvgad.experiment.params import BOOK, RunParams
from cvgad.workbench.grid import cells, load_grid
from cvgad.workbench.results import load_runs

#: The grids whose presets the book shows, relative to the repository root.
GRIDS = ("table1", "fig2_mnist", "fig3_cifar10", "table2_oneclass", "table3_coil100")
COLUMNS = ["dataset", "images", "epochs", "width", "latent", "seeds", "runs", "minutes per run", "record"]


def _line(name: str, settings: dict[str, Any], seeds: int | str, runs: int | str, minutes: str, record: str) -> dict:
    cfg = RunParams.from_mapping(settings).config()
    return {
        "preset": name,
        "dataset": cfg.data.dataset,
        "images": f"{settings['train_subset']:,}" if settings.get("train_subset") else "all",
        "epochs": cfg.train.epochs,
        "width": cfg.model.width,
        "latent": cfg.model.latent_dim,
        "seeds": seeds,
        "runs": runs,
        "minutes per run": minutes,
        "record": record,
    }


def _minutes(repo: Path, record: Path) -> str:
    """Mean (and longest) wall time of a preset's finished runs, in minutes ("–" when none is recorded)."""
    runs, _ = load_runs(repo / record) if (repo / record).is_dir() else (None, "")
    if runs is None or "wall_seconds" not in runs:
        return "–"
    walls = pd.to_numeric(runs.loc[runs["status"] == "ok", "wall_seconds"], errors="coerce").dropna() / 60
    return "–" if walls.empty else f"{walls.mean():.1f} ({walls.max():.1f})"


def presets(repo: Path) -> pd.DataFrame:
    """One line per preset: the library's defaults (chapter 2), the book's task (chapters 3-5) and
    every preset of the grids in `GRIDS`, except the `ci` smoke tests."""
    lines = [
        _line("library defaults (chapter 2)", {"dataset": "digits"}, 1, 1, "–", "cvgad.experiment.params"),
        _line("book (chapters 3–5)", dict(BOOK), 1, 1, "–", "cvgad.experiment.params.BOOK"),
    ]
    for name in GRIDS:
        grid = load_grid(repo / "ablations" / f"{name}.yaml")
        for preset in grid.presets:
            if preset == "ci":
                continue
            settings, seeds = grid.resolve(preset)
            n_runs = len(grid.rows) * len(cells(grid.vary_for(preset))) * len(seeds)
            record = Path("ablations/results") / name / preset
            lines.append(
                _line(f"{name} / {preset}", settings, len(seeds), n_runs, _minutes(repo, record), record.as_posix())
            )
    return pd.DataFrame(lines).set_index("preset")[COLUMNS]
