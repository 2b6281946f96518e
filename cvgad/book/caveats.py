"""What a page prints about the records it reads: `cvgad.workbench.records.caveats` as Markdown,
or nothing where every record the page reads is current."""

from __future__ import annotations

from pathlib import Path

from IPython.display import Markdown

from cvgad.workbench import records


def shown(page: str, repo: Path | None = None) -> Markdown | None:
    """The caveats of `page` (e.g. "06_ablation", "intro") to display; None, which a cell shows as
    nothing, where there are none (an empty Markdown would show its repr instead)."""
    text = records.caveats(page, repo)
    return Markdown(text) if text else None
