"""Sphinx extension: the execution table's status in words.

myst-nb's `nb-exec-table` marks each page with an emoji (a check mark or a cross) that many page
fonts lack, so a reader sees an empty box. This writes "ran" or "failed" instead.
"""

from __future__ import annotations

from myst_nb.ext import execution_tables


def status(succeeded: object) -> str:
    return "ran" if succeeded is True else "failed"


def setup(app):
    execution_tables._key2transform["succeeded"] = status
    return {"parallel_read_safe": True, "parallel_write_safe": True}
