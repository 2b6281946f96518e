"""A student's copy of the exercises: no solutions, no discussion answers, no outputs.

    cvgad student DIR        (or: make student)

writes DIR/09_exercises.ipynb from notebooks/09_exercises.py (`write_student_copy`). The copy
drops every cell tagged `solution`, every ```{admonition} Discussion``` block (they give the
answers away) and the notes for instructors, clears every output and sets `solutions = False`, so
that each check fails until the `...` above it is replaced by an answer.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat

SOURCE = Path(__file__).resolve().parents[2] / "notebooks" / "09_exercises.py"
DISCUSSION = re.compile(r"```\{admonition\} Discussion\n.*?\n```\n?", re.S)
INSTRUCTORS = re.compile(r"## Notes for instructors.*", re.S)
SOLUTIONS_ON = re.compile(r"^solutions = True\b", re.M)


def student_copy(source: Path = SOURCE) -> nbformat.NotebookNode:
    """The exercises of `source` (a jupytext notebook) as a student gets them."""
    notebook = jupytext.read(source)
    cells = []
    for cell in notebook.cells:
        if "solution" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "markdown":
            cell.source = INSTRUCTORS.sub("", DISCUSSION.sub("", cell.source)).strip()
            if not cell.source:
                continue
        else:
            cell.outputs, cell.execution_count = [], None
            if "parameters" in cell.metadata.get("tags", []):
                cell.source = SOLUTIONS_ON.sub("solutions = False", cell.source)
        cells.append(cell)
    notebook.cells = cells
    return notebook


def write_student_copy(out: Path) -> Path:
    """Write the students' copy into the folder `out` (made if missing); returns the notebook's path."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / "09_exercises.ipynb"
    nbformat.write(student_copy(), target)
    return target
