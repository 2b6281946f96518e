"""The students' copy of the exercises (cvgad.book.student): nothing that gives an answer away, and
each check fails on its `...` placeholder, where the instructor's copy passes them all.

The two copies are run (one training epoch instead of the exercises' few, to keep this quick)."""

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from cvgad.book import student

ROOT = Path(__file__).resolve().parents[1]


def _is_check(cell) -> bool:
    return cell.cell_type == "code" and "exercises.check_" in cell.source


def _run(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source += "\nepochs = 1"
    where = {"metadata": {"path": ROOT / "notebooks"}}
    return NotebookClient(notebook, timeout=600, allow_errors=True, resources=where).execute()


def _errors(cell) -> list[str]:
    return [out["ename"] for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def test_the_students_copy_gives_no_answer_away():
    notebook = student.student_copy()
    text = "\n".join(cell.source for cell in notebook.cells)
    assert not any("solution" in cell.metadata.get("tags", []) for cell in notebook.cells)
    assert "{admonition} Discussion" not in text and "Notes for instructors" not in text
    parameters = next(cell.source for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    assert "solutions = False" in parameters and "solutions = True" not in parameters
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert sum(map(_is_check, notebook.cells)) >= 5


@pytest.fixture(scope="module")
def both_copies():
    instructor = jupytext.read(student.SOURCE)
    return _run(student.student_copy()), _run(instructor)


def test_each_check_fails_on_its_placeholder_in_the_students_copy(both_copies):
    students, _ = both_copies
    checks = [cell for cell in students.cells if _is_check(cell)]
    assert checks and all(_errors(cell) == ["AssertionError"] for cell in checks), [_errors(c) for c in checks]


def test_the_instructors_copy_passes_every_check(both_copies):
    _, instructor = both_copies
    assert [(cell.source[:60], _errors(cell)) for cell in instructor.cells if _errors(cell)] == []
