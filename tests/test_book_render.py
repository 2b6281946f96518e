"""Checks on the built book (book/_build/html), as a reader sees it in headless Chromium.

`make test` builds the book and installs Chromium (`make chromium`) before it runs this file,
so nothing here is skipped there: a missing book or browser fails with what to do. The pages
are measured by book/measure.js at a 1280-pixel window (a laptop) and at 500 pixels (a phone):
display equations fit their column at 1280 pixels, nothing sticks out of the column at either
width (wide tables and equations scroll), and at 1280 pixels no table or code block is cut at
the column's edge; no TeX or Markdown is left unrendered, no paragraph is bold from end to end,
no emoji stands where the font may lack it, no output shows a Python object's repr where its
display should be, and no page speaks of the project's own workings (issue numbers, its
`../shared` folder, its machines); figures are shown at the size they were made for, and the
widgets render. Each of these checks is shown to fail on a small page that has
its defect (tests/render_fixtures).
"""

from __future__ import annotations

import importlib.util
import os
import re
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from executed_book import executed_notebooks

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "book" / "_build" / "html"


def _load_screenshots():
    spec = importlib.util.spec_from_file_location("book_screenshots", ROOT / "book" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shots = _load_screenshots()
PAGES = shots.chapter_pages(HTML) if HTML.is_dir() else []
PAGE_IDS = [p.relative_to(HTML).as_posix() for p in PAGES]
LAPTOP, PHONE = 1280, 500  # 500: the narrowest window headless Chromium makes

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
def chromium() -> str:
    exe = shots.find_chromium()
    if exe is None:
        pytest.fail("no Chromium: `make chromium` installs Debian's (or set CHROMIUM=/path/to/chrome)")
    return exe


@pytest.fixture(scope="module")
def measured(chromium):
    """book/measure.js's results per (page, window width), each page loaded once per width."""
    cache: dict[tuple[Path, int], dict] = {}

    def get(page: Path, width: int) -> dict:
        if (page, width) not in cache:
            cache[page, width] = shots.measure(chromium, page, width)
        return cache[page, width]

    return get


def test_the_book_was_built():
    assert (HTML / "intro.html").is_file(), f"no built book in {HTML}: run `make book` (make test does)"
    built = set(PAGE_IDS)
    assert {"intro.html", "bibliography.html"} <= built
    chapters = ("01_cvae_bound", "07_baselines", "08_gap", "09_exercises", "10_verdict")
    assert {f"notebooks/{name}.html" for name in chapters} <= built
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
    if MATH_NODE.search(html):
        assert any("mathjax" in u.lower() for u in SCRIPT_SRC.findall(html)), "a page with math must load MathJax"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_images_exist_and_no_machine_paths(page):
    html = page.read_text(encoding="utf8")
    for url in IMG_SRC.findall(html):
        if url.startswith("data:"):
            continue
        assert not _is_remote(url), url
        target = _local_target(page, url)
        assert target.is_file() and target.stat().st_size > 0, url
    for folder in {str(ROOT), str(ROOT.parent), os.path.expanduser("~")} - {"/"}:
        assert f"{folder}/" not in html, f"{page.name} shows a path of the machine that built it: {folder}"


def test_bibliography_is_author_year():
    html = (HTML / "bibliography.html").read_text(encoding="utf8")
    assert "Bian et al., 2019" in html and "Kingma and Welling, 2013" in html
    assert not re.search(r">\[?1\]?<", html), "numbered labels: the citations are author-year"
    assert "{cite}" not in html


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_math_typesets_and_fits_the_column(page, measured):
    """Every math element is typeset without a TeX error, and every display equation fits its
    column at 1280 pixels, clear of its number: split a wider one with aligned, multline or split."""
    n_math = len(MATH_NODE.findall(page.read_text(encoding="utf8")))
    m = measured(page, LAPTOP)
    assert m["typeset"] >= n_math, f"MathJax typeset {m['typeset']} of {n_math} math elements"
    assert m["texErrors"] == 0, "MathJax reported a TeX error"
    too_wide = [
        f"({e['number']}) {e['width']} > {e['available']} px" for e in m["equations"] if e["width"] > e["available"]
    ]
    assert too_wide == [], f"display equations wider than the column at {LAPTOP} px: {too_wide}"
    assert m["rawTex"] == [], f"TeX outside math (a line starting with '- ' or '+ ' in a formula?): {m['rawTex']}"


@pytest.mark.parametrize("width", [LAPTOP, PHONE])
@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_nothing_sticks_out_of_the_column(page, width, measured):
    """Tables, outputs, figures and equations stay in the column, or scroll inside it."""
    assert measured(page, width)["stickingOut"] == []


def check_markdown_is_rendered(m: dict) -> None:
    assert m["unrendered"] == [], "Markdown shown as text (render it: a Markdown object, {glue:md})"


def check_no_bold_paragraphs(m: dict) -> None:
    assert m["boldParagraphs"] == [], "paragraphs bold from end to end"


def check_nothing_is_cut_off(m: dict) -> None:
    assert m["cutOff"] == [], f"tables or code blocks wider than their box at {LAPTOP} px: narrow or wrap them"


def check_no_glyphs_the_font_may_lack(m: dict) -> None:
    assert m["pictographs"] == [], "emoji in the text: the page font may lack them (they show as empty boxes)"


#: Words about the project that made the book, not about its subject: a reader has no issue
#: tracker, no `../shared` folder and none of the project's machines.
INSIDE_WORDS = re.compile(r"\bissues?\s*#?\s*\d+|\.\./shared\b|project[’']s machines?", re.I)
TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.I | re.S)


def check_no_inside_words(html: str) -> None:
    """Over everything the page holds: its text (folded code included) and its links."""
    text = unescape(TAG.sub(" ", html))
    found = [text[max(0, m.start() - 30) : m.end() + 30] for m in INSIDE_WORDS.finditer(text)]
    found += [url for url in HREF.findall(html) if INSIDE_WORDS.search(unquote(url))]
    assert found == [], "words about this project's workings, not the book's subject"


#: A Python object's repr standing where its display should be: `<IPython.core.display.Markdown
#: object>` (an empty Markdown has nothing else to show), `<pandas...Styler at 0x...>`, `<Figure size
#: ...>`, `<Axes: ...>`.
OBJECT_REPR = re.compile(r"<(?:[\w.]+ object|[\w.]+(?: object)? at 0x[0-9a-f]+|Figure size [^<>]*|Axes: [^<>]*)>")


def check_no_object_reprs(html: str) -> None:
    """Over the page's text, code outputs included (a repr is printed as an output)."""
    found = OBJECT_REPR.findall(unescape(TAG.sub(" ", html)))
    assert found == [], f"an object's repr shown instead of its display: {found}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_markdown_is_rendered(page, measured):
    """No Markdown shows as text: a table's pipes and rules, code's backticks, bold's asterisks."""
    check_markdown_is_rendered(measured(page, LAPTOP))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_paragraph_is_bold_from_end_to_end(page, measured):
    check_no_bold_paragraphs(measured(page, LAPTOP))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_table_or_code_block_is_cut_off(page, measured):
    """At 1280 pixels every table and code block shows whole (at 500 they may scroll)."""
    check_nothing_is_cut_off(measured(page, LAPTOP))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_glyphs_the_font_may_lack(page, measured):
    check_no_glyphs_the_font_may_lack(measured(page, LAPTOP))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_words_about_the_project_itself(page):
    check_no_inside_words(page.read_text(encoding="utf8"))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_object_reprs(page):
    check_no_object_reprs(page.read_text(encoding="utf8"))


FIXTURES = Path(__file__).resolve().parent / "render_fixtures"
#: Each check against a page that has its defect (tests/render_fixtures/<name>.html).
DEFECTS = {
    "markdown_table": check_markdown_is_rendered,
    "backticks": check_markdown_is_rendered,
    "bold_paragraph": check_no_bold_paragraphs,
    "cut_table": check_nothing_is_cut_off,
    "cut_code": check_nothing_is_cut_off,
    "missing_glyph": check_no_glyphs_the_font_may_lack,
}


@pytest.mark.parametrize("fixture", sorted(DEFECTS))
def test_each_check_fails_on_a_page_with_its_defect(fixture, measured):
    check = DEFECTS[fixture]
    check(measured(FIXTURES / "clean.html", LAPTOP))
    with pytest.raises(AssertionError):
        check(measured(FIXTURES / f"{fixture}.html", LAPTOP))


def test_the_inside_words_check_fails_on_a_page_with_them():
    check_no_inside_words((FIXTURES / "clean.html").read_text(encoding="utf8"))
    with pytest.raises(AssertionError):
        check_no_inside_words((FIXTURES / "inside_words.html").read_text(encoding="utf8"))


def test_the_object_repr_check_fails_on_a_page_with_one():
    check_no_object_reprs((FIXTURES / "clean.html").read_text(encoding="utf8"))
    with pytest.raises(AssertionError):
        check_no_object_reprs((FIXTURES / "object_repr.html").read_text(encoding="utf8"))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_figures_are_shown_at_their_size(page, measured):
    """A figure made `plots.WIDTH` wide is shown at that width (retina PNGs at half their pixels),
    not shrunk until its legend is unreadable."""
    shrunk = [
        f"{i['src']}: {i['shown']} of {i['intended']} px"
        for i in measured(page, LAPTOP)["images"]
        if i["shown"] < 0.95 * i["intended"]
    ]
    assert shrunk == []


def test_exercises_fold_their_solutions_and_show_each_widget_once(measured):
    page = HTML / "notebooks" / "09_exercises.html"
    html = page.read_text(encoding="utf8")
    assert html.count("Show the solution") == 5, "each exercise's solution sits in a folded cell"
    views = html.count(f'type="{WIDGET_VIEW}"')
    assert views == 4, "one view of each widget: threshold explorer, latent explorer, loss lab, quiz"
    assert measured(page, LAPTOP)["widgets"] == views, "each widget view must be drawn exactly once"


GLUE_REFERENCE = re.compile(r"\{glue(?::[a-z]+)?\}`([A-Za-z0-9_]+)")
#: Chapters whose every glued value must also be shown (the others glue whole tables of values).
ALL_SHOWN = ("02_model", "03_training", "04_scoring", "05_latent_space", "06_ablation")


def _markdown(name: str) -> str:
    """The Markdown of a page's source (the cache keeps the code cells only)."""
    import jupytext

    source = ROOT / "book" / f"{name}.md" if name == "intro" else ROOT / "notebooks" / f"{name}.py"
    return "\n".join(c.source for c in jupytext.read(source).cells if c.cell_type == "markdown")


def _glue_names_and_references(name: str, nb) -> tuple[set[str], set[str]]:
    """The names an executed page glued, and the names its Markdown refers to."""
    glued = {
        out["metadata"]["scrapbook"]["name"]
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if "scrapbook" in out.get("metadata", {})
    }
    return glued, set(GLUE_REFERENCE.findall(_markdown(name)))


def test_every_shown_value_is_glued_and_every_glued_value_is_shown():
    executed = executed_notebooks()
    assert set(ALL_SHOWN) <= set(executed), f"pages missing from the execution cache: {set(ALL_SHOWN) - set(executed)}"
    for name, nb in executed.items():
        glued, referred = _glue_names_and_references(name, nb)
        assert referred <= glued, f"{name} refers to values it never glues: {sorted(referred - glued)}"
        if name in ALL_SHOWN:
            assert glued <= referred, f"{name} glues values no sentence shows: {sorted(glued - referred)}"


def test_the_start_page_links_the_bottom_line_first():
    html = (HTML / "intro.html").read_text(encoding="utf8").split("<article", 1)[1]
    chapters = re.findall(r'href="(notebooks/\d\d_[a-z_0-9]+\.html)"', html)
    assert chapters and chapters[0] == "notebooks/10_verdict.html", chapters[:3]


@pytest.mark.parametrize(
    "chapter", ["02_model", "03_training", "04_scoring", "05_latent_space", "06_ablation", "07_baselines", "10_verdict"]
)
def test_chapters_state_their_numbers_in_their_summaries(chapter):
    """The summary of a chapter that shows results carries computed values (glued, and so checked
    by the test above to exist in the executed chapter)."""
    summary_text = _markdown(chapter).split("## Summary", 1)[1]
    assert GLUE_REFERENCE.search(summary_text), f"the summary of {chapter} shows no computed value"
