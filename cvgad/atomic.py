"""Atomic file writes: a reader sees the old file or the whole new one, never a part, so a
killed run cannot leave a result that looks finished."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` on a temp file beside `path`, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from others on a shared cluster
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Writes `text` to `path` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save_torch(obj: Any, path: str | os.PathLike[str]) -> None:
    """`torch.save` atomically: a kill mid-save leaves the previous file intact."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
