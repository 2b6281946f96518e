"""book/execute.py: the chapters run longest first, by the time their committed notebooks recorded,
and their outputs can be written back into the committed notebooks."""

import nbformat
from executed_book import book_execute
from jupyter_cache import get_cache

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


def test_write_back_gives_the_committed_notebook_the_outputs_of_its_execution(tmp_path):
    path = tmp_path / "chapter.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("six times seven"), nbformat.v4.new_code_cell("print(6 * 7)")]
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="41\n")]  # an old output
    notebook.cells[1].metadata["tags"] = ["nbval-check-output"]
    nbformat.write(notebook, path)
    cache = get_cache(str(tmp_path / "cache"))
    executed, seconds, error = execute.execute(path)
    assert error is None
    execute.store(cache, path, executed, seconds)
    execute.write_back(cache, [path])
    written = nbformat.read(path, as_version=4)
    assert written.cells[0].source == "six times seven"
    assert written.cells[1].source == "print(6 * 7)"
    assert [o["text"] for o in written.cells[1].outputs] == ["42\n"]
    assert written.cells[1].metadata["tags"] == ["nbval-check-output"]
