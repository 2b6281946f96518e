"""The book's default task and budget (cvgad.experiment.params.BOOK, issue 13) is declared once and used as
declared: by the parameter cells of chapters 3 to 5 and by the `digits` preset of Table 1."""

from pathlib import Path

import jupytext
import pytest

from cvgad.experiment.params import BOOK, make_config
from cvgad.workbench.grid import load_grid

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["03_training", "04_scoring", "05_latent_space"]


def _parameters(name: str) -> dict:
    cells = jupytext.read(ROOT / "notebooks" / f"{name}.py").cells
    [cell] = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    values: dict = {}
    exec(cell.source, {}, values)
    return values


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapters_run_the_books_defaults(name):
    values = _parameters(name)
    assert {k: values[k] for k in BOOK} == BOOK


def test_the_digits_preset_of_table1_is_the_books_task():
    settings, seeds = load_grid(ROOT / "ablations" / "table1.yaml").resolve("digits")
    assert {k: settings[k] for k in BOOK} == BOOK and len(seeds) >= 5


def test_the_books_defaults_make_a_valid_config():
    cfg = make_config(**BOOK)
    assert (cfg.model.latent_dim, cfg.model.width, cfg.train.means_lr) == (32, 16, 3e-2)
    assert cfg.train.losses.negative_threshold == 1.0 and cfg.data.anomaly_class == 7
