"""The students' copy of the exercises (cvgad.book.student): nothing that gives an answer away, and
each check fails on its `...` placeholder. The instructor's copy, with the solutions, is the
chapter the book executes, where an error (a check that fails) fails the build.

The students' copy runs on the smallest network, untrained: each check fails before it looks at
a result."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from cvgad.book import student

ROOT = Path(__file__).resolve().parents[1]


def _is_check(cell) -> bool:
    return cell.cell_type == "code" and "exercises.check_" in cell.source


def _run(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source += "\nepochs, width, latent_dim = 0, 4, 2"
    where = {"metadata": {"path": ROOT / "notebooks"}}
    return NotebookClient(notebook, timeout=600, allow_errors=True, resources=where).execute()


def _errors(cell) -> list[tuple[str, str]]:
    """(name, message) of each exception the cell raised."""
    return [(out["ename"], out["evalue"]) for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def test_the_students_copy_gives_no_answer_away():
    notebook = student.student_copy()
    text = "\n".join(cell.source for cell in notebook.cells)
    assert not any("solution" in cell.metadata.get("tags", []) for cell in notebook.cells)
    assert "{admonition} Discussion" not in text and "Notes for instructors" not in text
    parameters = next(cell.source for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    assert "solutions = False" in parameters and "solutions = True" not in parameters
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert sum(map(_is_check, notebook.cells)) >= 5


def test_each_check_fails_on_its_placeholder_in_the_students_copy():
    checks = [cell for cell in _run(student.student_copy()).cells if _is_check(cell)]
    errors = [_errors(cell) for cell in checks]
    asks_for_an_answer = [len(e) == 1 and e[0][0] == "AssertionError" and "is still `...`" in e[0][1] for e in errors]
    assert checks and all(asks_for_an_answer), errors
