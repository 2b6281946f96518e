"""The book's executed notebooks, read from its execution cache (book/_build/.jupyter_cache), for
the tests that check what a chapter computed when `make book` ran it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "book" / "_build" / ".jupyter_cache"


def book_execute() -> ModuleType:
    """book/execute.py, the script `make book` runs (not a package), as a module."""
    spec = importlib.util.spec_from_file_location("book_execute", ROOT / "book" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapters() -> list[str]:
    """The chapters `make book` executes (book/execute.py), by name, in the book's order."""
    return [path.stem for path in book_execute().chapters()]


def executed_notebooks() -> dict[str, dict]:
    """The newest execution of each page, by name (e.g. "03_training"): its code cells and their
    outputs, glue outputs included (the pages' downloadable copies drop those)."""
    from jupyter_cache import get_cache

    assert CACHE.is_dir(), f"no execution cache in {CACHE}: build the book first (make book)"
    cache, newest = get_cache(str(CACHE)), {}
    for record in sorted(cache.list_cache_records(), key=lambda r: r.pk):
        newest[Path(record.uri).stem] = record.pk
    return {name: cache.get_cache_bundle(pk).nb for name, pk in newest.items()}
