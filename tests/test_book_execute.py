"""book/execute.py: the chapters run longest first, by the time their committed notebooks recorded."""

import nbformat
from executed_book import book_execute

execute = book_execute()


def _cell(began: str, ended: str | None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("pass")
    stamps = {"iopub.execute_input": began} | ({"shell.execute_reply": ended} if ended else {})
    cell.metadata["execution"] = stamps
    return cell


def test_a_notebook_recorded_the_seconds_its_code_cells_took(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        _cell("2026-12-06T10:00:00.000000Z", "2026-12-06T10:00:01.500000Z"),  # 1.5 s
        nbformat.v4.new_markdown_cell("text"),
        _cell("2026-12-06T10:00:02.000000Z", "2026-12-06T10:00:04.000000Z"),  # 2 s
        _cell("2026-12-06T10:00:05.000000Z", None),  # interrupted: no reply, not counted
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)
    assert execute.recorded_seconds(path) == 3.5
    nbformat.write(nbformat.v4.new_notebook(), path)
    assert execute.recorded_seconds(path) == 0.0
