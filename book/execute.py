"""Execute the book's chapters into its execution cache, several at a time, before the build.

Usage (``make book`` runs it before ``jupyter-book build``)::

    python book/execute.py [--jobs N] [--write-back]

It is the execution that the build would otherwise do itself, one chapter after another
(myst-nb's ``cache`` mode, ``execute`` in ``_config.yml``): each chapter of ``_toc.yml`` runs once
in its own folder, with the configured timeout and errors, and is cached in
``_build/.jupyter_cache``, where the build finds it and executes nothing. A chapter already cached
with the same code is not run again. A chapter that fails is printed with its traceback and left
out of the cache, and the script exits 1 once the others have run.

``--write-back`` then gives the committed notebooks (``notebooks/*.ipynb``) the outputs of that
execution, so that a notebook read in the repository shows the numbers the book shows.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn, JupyterCacheAbstract
from jupyter_cache.executors.utils import single_nb_execution

BOOK_DIR = Path(__file__).resolve().parent
CACHE = BOOK_DIR / "_build" / ".jupyter_cache"
EXECUTE = yaml.safe_load((BOOK_DIR / "_config.yml").read_text())["execute"]


def chapters() -> list[Path]:
    """The notebooks the book builds, in the order of its table of contents."""
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if str(node.get("file", "")).startswith("notebooks/"):
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((BOOK_DIR / "_toc.yml").read_text()))
    return [BOOK_DIR / f"{file}.ipynb" for file in files]


def recorded_seconds(path: Path) -> float:
    """How long the committed notebook's code cells took when it was last executed (the cells'
    execution timestamps; 0 where it has none)."""
    total = 0.0
    for cell in nbformat.read(path, as_version=4).cells:
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            began, ended = (
                datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))  # Python 3.10 reads no "Z"
                for k in ("iopub.execute_input", "shell.execute_reply")
            )
            total += (ended - began).total_seconds()
    return total


def execute(path: Path) -> tuple[nbformat.NotebookNode, float, str | None]:
    """`path` executed as the build executes it (``run_in_temp: false``: in its own folder): the
    executed notebook, its seconds and the traceback of a failure."""
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(
        notebook, cwd=str(path.parent), timeout=EXECUTE["timeout"], allow_errors=EXECUTE["allow_errors"]
    )
    return notebook, result.time, result.exc_string


def store(cache: JupyterCacheAbstract, path: Path, notebook: nbformat.NotebookNode, seconds: float) -> None:
    """`notebook`, the execution of `path`, into the cache, where the build finds it."""
    record = cache.add_nb_to_project(str(path))
    bundle = CacheBundleIn(notebook, record.uri, data={"execution_seconds": seconds})
    cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)


def write_back(cache: JupyterCacheAbstract, paths: list[Path]) -> None:
    """Each notebook in `paths` takes the outputs of its cached execution. Its cells' metadata (tags,
    the timestamps `recorded_seconds` reads) stay as committed: the cache matches a notebook only
    where they are equal, and the execution records no new timestamps."""
    for path in paths:
        _, merged = cache.merge_match_into_notebook(nbformat.read(path, as_version=4))
        nbformat.write(merged, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="chapters at a time (default: the cores)")
    parser.add_argument("--write-back", action="store_true", help="then write the outputs into the committed notebooks")
    args = parser.parse_args()
    cache = get_cache(str(CACHE))

    def cached(path: Path) -> bool:
        try:
            return bool(cache.match_cache_notebook(nbformat.read(path, as_version=4)))
        except KeyError:
            return False

    # the longest first (as last recorded), so that no long chapter starts last and runs alone
    todo = sorted((path for path in chapters() if not cached(path)), key=recorded_seconds, reverse=True)
    print(f"executing {len(todo)} chapters, {args.jobs} at a time", flush=True)
    failed = []
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(execute, path): path for path in todo}
        for future in as_completed(futures):
            path = futures[future]
            try:
                notebook, seconds, error = future.result()
            except Exception as crash:  # the kernel or the worker died (e.g. out of memory)
                notebook, seconds, error = None, 0.0, repr(crash)
            if error is not None:
                print(f"{path.stem} failed after {seconds:.0f} s:\n{error}", flush=True)
                failed.append(path.stem)
                continue
            store(cache, path, notebook, seconds)
            print(f"{path.stem} executed in {seconds:.0f} s", flush=True)
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
        return 1
    if args.write_back:
        written = chapters()
        write_back(cache, written)
        print(f"outputs written into the {len(written)} committed notebooks", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
