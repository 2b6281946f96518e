"""Screenshot every chapter of the built book with headless Chromium.

Usage (after ``make book``)::

    python book/screenshots.py [--chromium /usr/bin/chromium] [--html book/_build/html]
                               [--out book/_build/screenshots]

The script installs nothing: ``make screenshots`` apt-installs Chromium when it is missing.
It writes one PNG per page: ``intro.png``, ``bibliography.png``, ``notebooks__01_cvae_bound.png``
and so on.  A long page is shot down to ``--height`` pixels.  The helpers ``chapter_pages`` and
``dump_dom`` are reused by ``tests/test_book_render.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

BOOK_DIR = Path(__file__).resolve().parent
DEFAULT_HTML = BOOK_DIR / "_build" / "html"
DEFAULT_OUT = BOOK_DIR / "_build" / "screenshots"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

# Sphinx pages that are not chapters; index.html is only a redirect to intro.html.
NOT_CHAPTERS = {"index.html", "genindex.html", "search.html", "py-modindex.html"}

BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of a Chromium executable, or None."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), DEFAULT_CHROMIUM):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chapter_pages(html_dir: Path = DEFAULT_HTML) -> list[Path]:
    """The built content pages: the top-level pages and the notebooks, in a stable order."""
    pages = [p for p in sorted(html_dir.glob("*.html")) if p.name not in NOT_CHAPTERS]
    pages += sorted((html_dir / "notebooks").glob("*.html"))
    return pages


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    # The Chromium profile goes into a throw-away directory so that runs do not interfere.
    env = dict(os.environ)
    env.setdefault("HOME", "/tmp")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def dump_dom(chromium: str, page: Path, timeout: float = 120) -> str:
    """The DOM of ``page`` after its scripts (MathJax, widgets) ran for the virtual-time budget."""
    cmd = [chromium, *BASE_FLAGS, "--window-size=1280,900", "--dump-dom", page.resolve().as_uri()]
    return _run(cmd, timeout).stdout


def screenshot(
    chromium: str, page: Path, png: Path, width: int = 1280, height: int = 900, timeout: float = 120
) -> bool:
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    cmd = [chromium, *BASE_FLAGS, f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()]
    proc = _run(cmd, timeout)
    ok = png.is_file() and png.stat().st_size > 0
    if not ok:
        sys.stderr.write(proc.stderr[-2000:])
    return ok


def png_name(page: Path, html_dir: Path) -> str:
    return page.relative_to(html_dir).with_suffix("").as_posix().replace("/", "__") + ".png"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default=None, help="Chromium executable")
    ap.add_argument("--html", type=Path, default=DEFAULT_HTML, help="built HTML folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("chromium not found: apt-get install -y chromium (or make screenshots)", file=sys.stderr)
        return 2
    if not (args.html / "intro.html").is_file():
        print(f"no built book in {args.html}: run `make book` first", file=sys.stderr)
        return 2

    failed = 0
    for page in chapter_pages(args.html):
        png = args.out / png_name(page, args.html)
        if screenshot(chromium, page, png, args.width, args.height):
            print(f"{png}")
        else:
            failed += 1
            print(f"FAILED {page}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
