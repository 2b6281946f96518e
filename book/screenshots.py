"""Screenshot every chapter of the built book with headless Chromium.

Usage (after ``make book``)::

    python book/screenshots.py [--chromium /usr/bin/chromium] [--html book/_build/html]
                               [--out book/_build/screenshots]

The script installs nothing: ``make chromium`` (a step of ``make screenshots`` and ``make test``)
apt-installs Chromium when it is missing.  It writes one PNG per page: ``intro.png``,
``bibliography.png``, ``notebooks__01_cvae_bound.png`` and so on, shot down to ``--height``
pixels, or the whole page with ``--full-page``.  ``--report`` prints, per page, the share of its
height that is code and the widest display equation against its column.  The helpers
``chapter_pages``, ``measure`` and ``screenshot`` are reused by ``tests/test_book_render.py``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BOOK_DIR = Path(__file__).resolve().parent
DEFAULT_HTML = BOOK_DIR / "_build" / "html"
DEFAULT_OUT = BOOK_DIR / "_build" / "screenshots"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
MEASURE_JS = BOOK_DIR / "measure.js"

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
]
#: Virtual milliseconds a page gets for its scripts (MathJax, the widget manager) before Chromium
#: dumps or shoots it; virtual time runs as fast as the page lets it, so this costs little.
BUDGET_MS = 20000


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
    env = dict(os.environ)
    env.setdefault("HOME", "/tmp")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _with_script(page: Path, script: str, folder: Path) -> Path:
    """A copy of `page` in `folder` that runs `script` at the end of its body; its <base> keeps
    every relative link pointing into the built book."""
    text = page.read_text(encoding="utf8")
    text = re.sub(r"<head[^>]*>", lambda m: f'{m.group(0)}<base href="{page.resolve().as_uri()}">', text, count=1)
    copy = folder / page.name
    copy.write_text(text.replace("</body>", f"<script>{script}</script></body>", 1), encoding="utf8")
    return copy


def _load(chromium: str, page: Path, width: int, height: int, action: list[str], script: str, timeout: float):
    """Loads `page` (with `script` injected, if any) in a window of `width` x `height` and does
    `action` (--dump-dom, --screenshot=...) once its scripts have run."""
    with tempfile.TemporaryDirectory() as folder:
        url = (_with_script(page, script, Path(folder)) if script else page.resolve()).as_uri()
        window = [f"--window-size={width},{height}", f"--virtual-time-budget={BUDGET_MS}"]
        profile = f"--user-data-dir={folder}/profile"  # a throw-away profile: runs do not interfere
        return _run([chromium, *BASE_FLAGS, profile, *window, *action, url], timeout)


def dump_dom(chromium: str, page: Path, timeout: float = 180) -> str:
    """The DOM of ``page`` after its scripts (MathJax, widgets) ran for the virtual-time budget."""
    return _load(chromium, page, 1280, 900, ["--dump-dom"], "", timeout).stdout


def measure(chromium: str, page: Path, width: int = 1280, before: str = "", timeout: float = 180) -> dict:
    """What book/measure.js measures on ``page`` in a window ``width`` pixels wide: display
    equations against their column, content sticking out of the column, raw TeX, figures shown
    smaller than made, widgets, and the page height taken by code. `before` is JavaScript run
    first, e.g. `window.cvgadBeforeMeasure = () => ...` to open the folded cells."""
    proc = _load(chromium, page, width, 900, ["--dump-dom"], before + MEASURE_JS.read_text(), timeout)
    found = re.search(r'<pre id="cvgad-measure">(.*?)</pre>', proc.stdout, re.S)
    if found is None:
        raise RuntimeError(f"no measurement of {page} from {chromium}: {proc.stderr[-1000:]}")
    return json.loads(html.unescape(found.group(1)))


def screenshot(
    chromium: str,
    page: Path,
    png: Path,
    width: int = 1280,
    height: int = 900,
    before: str = "",
    timeout: float = 180,
) -> bool:
    """Shoots the top ``height`` pixels of ``page`` into ``png``; `before` is JavaScript run first
    (it may scroll the window to the part to shoot)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    proc = _load(chromium, page, width, height, [f"--screenshot={png}"], before, timeout)
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
    ap.add_argument("--full-page", action="store_true", help="shoot each page whole (as tall as it is)")
    ap.add_argument("--report", action="store_true", help="print the code share and equation widths per page")
    args = ap.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("chromium not found: apt-get install -y chromium (or make chromium)", file=sys.stderr)
        return 2
    if not (args.html / "intro.html").is_file():
        print(f"no built book in {args.html}: run `make book` first", file=sys.stderr)
        return 2

    failed = 0
    for page in chapter_pages(args.html):
        png = args.out / png_name(page, args.html)
        measured = measure(chromium, page, args.width) if args.full_page or args.report else {}
        if args.report:
            code, equations = measured["code"], measured["equations"]
            widest = max(equations, key=lambda e: e["width"] - e["available"], default=None)
            print(
                f"{page.relative_to(args.html)}: code {100 * code['visible'] / code['page']:.1f}% of "
                f"{code['page']} px (+{100 * code['toggles'] / code['page']:.1f}% folded-code toggles); "
                + (f"widest equation {widest['width']} of {widest['available']} px" if widest else "no equations")
            )
        height = measured["code"]["page"] if args.full_page else args.height
        if screenshot(chromium, page, png, args.width, height):
            print(f"{png}")
        else:
            failed += 1
            print(f"FAILED {page}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
