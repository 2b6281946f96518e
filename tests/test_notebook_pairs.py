"""Every notebook is a jupytext pair: the reviewed `.py` (py:percent) and the `.ipynb` the book
and nbval run. Their cells must agree, or one of them was edited without `jupytext --sync`."""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("*.py"))


def _cells(path: Path) -> list[tuple[str, str, list[str]]]:
    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_there_are_notebooks():
    assert PAIRS, f"no jupytext sources in {NOTEBOOKS}"


@pytest.mark.parametrize("py", PAIRS, ids=[p.stem for p in PAIRS])
def test_pair_is_in_sync(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run jupytext --sync {py}"
    assert _cells(py) == _cells(ipynb), f"{py.name} and {ipynb.name} differ: run jupytext --sync {py}"
    assert "py:percent" in str(jupytext.read(py).metadata.get("jupytext", {}).get("formats", "")), (
        f"{py.name} is not paired as py:percent"
    )


@pytest.mark.parametrize("py", PAIRS, ids=[p.stem for p in PAIRS])
def test_notebook_has_a_papermill_parameters_cell(py):
    tagged = [c for c in jupytext.read(py).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{py.name} needs exactly one cell tagged 'parameters' for papermill"
