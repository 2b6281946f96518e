"""Checks on the built book (book/_build/html): offline assets, MathJax, images, widgets.

Skipped when the book has not been built (``make book``).  The checks that render pages need
headless Chromium (/usr/bin/chromium, or $CHROMIUM) and are skipped without it.
``make test-book`` runs the unit tests, builds the book and then this file.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "book" / "_build" / "html"

pytestmark = pytest.mark.skipif(not (HTML / "intro.html").is_file(), reason="book not built (make book)")


def _load_screenshots():
    spec = importlib.util.spec_from_file_location("book_screenshots", ROOT / "book" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shots = _load_screenshots()
PAGES = shots.chapter_pages(HTML) if HTML.is_dir() else []
PAGE_IDS = [p.relative_to(HTML).as_posix() for p in PAGES]

SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.I)
LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
HREF = re.compile(r"\bhref=\"([^\"]+)\"", re.I)
LOADED_RELS = ("stylesheet", "preload", "modulepreload", "icon")
IMG_SRC = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"", re.I)
MATH_NODE = re.compile(r"class=\"math notranslate")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://", "//"))


def _local_target(page: Path, url: str) -> Path:
    return (page.parent / unquote(urlsplit(url).path)).resolve()


@pytest.fixture(scope="module")
def chromium():
    exe = shots.find_chromium()
    if exe is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return exe


def test_every_toc_page_was_built():
    built = set(PAGE_IDS)
    assert {"intro.html", "bibliography.html"} <= built
    assert any(p.startswith("notebooks/") for p in built), built
    # The jupytext twins and the papermill template are no pages of the book.
    assert "notebooks/run.html" not in built


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_third_party_scripts_or_styles(page):
    """Scripts and stylesheets all come from the book itself, so the HTML works offline."""
    html = page.read_text(encoding="utf8")
    remote = [u for u in SCRIPT_SRC.findall(html) if _is_remote(u)]
    for tag in LINK_TAG.findall(html):
        href = HREF.search(tag)
        if href and _is_remote(href.group(1)) and any(r in tag for r in LOADED_RELS):
            remote.append(href.group(1))
    assert remote == []
    for url in SCRIPT_SRC.findall(html):
        assert _local_target(page, url).is_file(), url


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_math_uses_local_mathjax(page):
    html = page.read_text(encoding="utf8")
    if not MATH_NODE.search(html):
        pytest.skip("no math on this page")
    mathjax = [u for u in SCRIPT_SRC.findall(html) if "mathjax" in u.lower()]
    assert mathjax, "a page with math must load MathJax"
    assert all(not _is_remote(u) for u in mathjax), mathjax


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_images_exist(page):
    html = page.read_text(encoding="utf8")
    for url in IMG_SRC.findall(html):
        if url.startswith("data:"):
            continue
        assert not _is_remote(url), url
        target = _local_target(page, url)
        assert target.is_file() and target.stat().st_size > 0, url


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_rendered_math_images_and_widgets(page, chromium):
    """Load the page in headless Chromium: MathJax typesets, images and widgets show up."""
    html = page.read_text(encoding="utf8")
    n_math = len(MATH_NODE.findall(html))
    n_img = len(IMG_SRC.findall(html))
    has_widgets = WIDGET_VIEW in html
    if not (n_math or n_img or has_widgets):
        pytest.skip("nothing to render on this page")

    dom = shots.dump_dom(chromium, page)
    assert "</html>" in dom, "chromium returned no DOM"
    if n_math:
        typeset = dom.count("<mjx-container")
        assert typeset >= n_math, f"MathJax typeset {typeset} of {n_math} math elements"
        assert "<mjx-merror" not in dom, "MathJax reported a TeX error"
    if n_img:
        assert len(IMG_SRC.findall(dom)) >= n_img
    if has_widgets:
        # The widget manager replaced the view placeholders with live widgets.
        assert "jupyter-widgets" in dom and "lm-Widget" in dom
