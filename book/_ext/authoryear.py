"""Sphinx extension: a bibliography whose labels read as the book's citations do.

The chapters cite author-year ("Bian et al. (2019)", sphinxcontrib-bibtex's `author_year`
reference style); pybtex's own styles label the list [1], [2], ... or [BHS+19]. This registers
the pybtex formatting style `authoryear`: the entries of pybtex's `unsrt` style, sorted by
author, year and title, each labelled like its citation, [Bian et al., 2019].
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def label(entry) -> str:
    """'Kingma and Welling, 2013', 'Bian et al., 2019': as the citations name the work (LaTeX accents
    decoded: 'Serrà', not 'Serr\\`a')."""
    last = [" ".join(name.render_as("text") for name in person.rich_last_names) for person in entry.persons["author"]]
    who = last[0] if len(last) == 1 else " and ".join(last) if len(last) == 2 else f"{last[0]} et al."
    return f"{who}, {entry.fields['year']}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        return (label(entry) for entry in sorted_entries)


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
