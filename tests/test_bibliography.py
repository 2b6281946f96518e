"""The bibliography lists exactly the works the book cites, labelled as the citations read."""

import importlib.util
import re
from pathlib import Path

from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parents[1]
BIB = parse_file(ROOT / "book" / "references.bib")
SOURCES = [*ROOT.glob("book/*.md"), *ROOT.glob("notebooks/*.py")]
CITE = re.compile(r"\{cite(?::[pt])?\}`([^`]+)`")


def _cited() -> set[str]:
    return {key.strip() for path in SOURCES for keys in CITE.findall(path.read_text()) for key in keys.split(",")}


def test_every_entry_is_cited_and_every_citation_has_an_entry():
    assert set(BIB.entries) == _cited()


def test_labels_read_like_author_year_citations():
    spec = importlib.util.spec_from_file_location("authoryear", ROOT / "book" / "_ext" / "authoryear.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.label(BIB.entries["bian2019"]) == "Bian et al., 2019"
    assert module.label(BIB.entries["kingma2013"]) == "Kingma and Welling, 2013"
