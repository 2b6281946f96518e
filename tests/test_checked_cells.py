"""The cells tagged nbval-check-output print what the committed notebooks show, checked on the
book's own execution: `make test` runs each chapter once (in `make book`) instead of once under
nbval and again for the book.

The comparison is nbval's in --nbval-lax mode: only tagged cells, streams of one name merged,
and execution counts, metadata, images and widget ids left out. It runs after `make book`, which
`make test` builds from an empty execution cache.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest
from executed_book import chapters, executed_notebooks
from nbval.plugin import coalesce_streams, transform_streams_for_comparison

ROOT = Path(__file__).resolve().parents[1]
TAG = "nbval-check-output"
#: What nbval leaves out of a comparison (its `skip_compare`, run without --nbdime).
SKIPPED = {"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
           "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg"}  # fmt: skip


def _committed(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _checked() -> list[tuple[str, int]]:
    """(chapter, index among its code cells) of every tagged cell of the committed notebooks."""
    out = []
    for name in chapters():
        cells = _code_cells(_committed(name))
        out += [(name, i) for i, c in enumerate(cells) if TAG in c.get("metadata", {}).get("tags", [])]
    return out


def comparable(outputs: list) -> dict[str, list]:
    """A cell's outputs as nbval compares them: each key (a stream's name, a MIME type) with its values in order."""
    by_key = defaultdict(list)
    for output in transform_streams_for_comparison(coalesce_streams(copy.deepcopy(outputs))):
        for key, value in output.items():
            if key == "data":
                for mime, v in value.items():
                    if mime not in SKIPPED:
                        by_key[mime].append(v)
            elif key not in SKIPPED:
                by_key[key].append(value)
    return dict(by_key)


CHECKED = _checked()


@pytest.fixture(scope="module")
def executed() -> dict[str, dict]:
    return executed_notebooks()


def test_the_chapters_have_checked_cells():
    assert len({name for name, _ in CHECKED}) >= 5, CHECKED


@pytest.mark.parametrize(("chapter", "index"), CHECKED, ids=[f"{n}::code{i}" for n, i in CHECKED])
def test_a_checked_cell_prints_what_the_notebook_shows(executed, chapter, index):
    assert chapter in executed, f"the book did not execute {chapter} (make book builds it)"
    committed = _code_cells(_committed(chapter))[index]
    ran = _code_cells(executed[chapter])[index]
    assert ran["source"] == committed["source"], f"{chapter}: the executed notebook is another version: rebuild"
    assert comparable(ran["outputs"]) == comparable(committed["outputs"])
