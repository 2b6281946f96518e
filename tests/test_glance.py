"""The start page's results at a glance (cvgad.book.glance) come from the recorded results."""

from pathlib import Path

from cvgad.book import glance

ROOT = Path(__file__).resolve().parents[1]


def test_results_at_a_glance_name_their_chapter_and_a_relative_record():
    table = glance.at_a_glance(ROOT)
    assert set(table["chapter"]) == {"4", "5", "6"} and len(table) == 8
    assert all((ROOT / r).exists() and not Path(r).is_absolute() for r in table["record"])
    markdown = glance.markdown(table)
    assert "[4](notebooks/04_scoring.ipynb)" in markdown and str(ROOT) not in markdown


def test_a_checkout_without_records_shows_nothing(tmp_path):
    assert glance.at_a_glance(tmp_path).empty
