"""The closing chapter's verdicts (cvgad.book.verdicts) and presets table (cvgad.book.presets)
follow from the records: a rule applied to recorded numbers, never a typed verdict."""

from pathlib import Path

import pandas as pd
import pytest

from cvgad.book import presets, verdicts
from cvgad.experiment.params import BOOK

ROOT = Path(__file__).resolve().parents[1]


def _fig2_record(repo: Path, cvgad_auc: float, ae_auc: float) -> None:
    """A Fig. 2 record of ten classes x 3 seeds in which every run of a model scores the same AUC,
    give or take a small per-seed wobble (so that paired differences have a spread)."""
    lines = [
        {"row": model, "label": model, "anomaly_class": c, "seed": s, "status": "ok", "auc": auc + 0.001 * s}
        for model, auc in (("cvgad", cvgad_auc), ("ae", ae_auc))
        for c in range(10)
        for s in range(3)
    ]
    folder = repo / verdicts.RECORDS["fig2"]
    folder.mkdir(parents=True)
    pd.DataFrame(lines).to_csv(folder / "runs.csv", index=False)


@pytest.mark.parametrize(
    ("cvgad_auc", "ae_auc", "verdict"),
    [(0.80, 0.60, "holds"), (0.60, 0.80, "does not hold: CVGAD is no better than its own autoencoder")],
)
def test_the_baseline_verdict_follows_the_paired_record(tmp_path, cvgad_auc, ae_auc, verdict):
    _fig2_record(tmp_path, cvgad_auc, ae_auc)
    found = verdicts.baselines(tmp_path, "fig2", "MNIST")
    assert found.verdict == verdict
    assert f"autoencoder − CVGAD {ae_auc - cvgad_auc:+.3f}" in found.evidence


def _pairs(*budgets: tuple[int, int, float, float]) -> pd.DataFrame:
    """paired_by_budget's table: (training images, pairs, interval low, high) per budget, 15 epochs."""
    return pd.DataFrame([{"train_images": i, "epochs": 15, "n": n, "diff_mean": (lo + hi) / 2, "ci_low": lo,
                          "ci_high": hi, "ahead": n, "wilcoxon_p": 0.25} for i, n, lo, hi in budgets])  # fmt: skip


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (0.01, 0.03, "holds"),
        (-0.02, 0.03, "does not hold: CVGAD is not distinguishable from its own autoencoder"),
        (-0.03, -0.01, "does not hold: CVGAD is behind its own autoencoder"),
    ],
)
def test_the_verdict_at_scale_is_the_interval_at_the_largest_budget_with_three_pairs(low, high, verdict):
    found = verdicts.at_scale(_pairs((5000, 3, -0.5, -0.4), (38880, 3, low, high), (50000, 2, 0.5, 0.6)))
    assert found.verdict == verdict  # the 2-pair budget does not count, the smaller one is superseded
    assert "38,880 images × 15 epochs: autoencoder − CVGAD" in found.evidence
    assert f"{-(low + high) / 2:+.3f} AUC (95% t-interval {-high:+.3f} to {-low:+.3f})" in found.evidence


def test_every_claim_has_a_verdict_a_chapter_and_an_existing_record():
    table = verdicts.verdicts(ROOT)
    assert table["verdict"].str.len().gt(0).all()
    assert set(table["chapter"]) <= set(verdicts.CHAPTERS)
    assert all((ROOT / verdicts.RECORDS[r]).exists() for r in table["record"] if r)
    markdown = verdicts.markdown(table)
    assert "[7](07_baselines.ipynb)" in markdown and str(ROOT) not in markdown


def test_the_presets_table_shows_the_books_sizes_and_every_grid_preset_but_ci():
    table = presets.presets(ROOT)
    book = table.loc["book (chapters 3–5)"]
    assert (book["width"], book["latent"], book["epochs"]) == (BOOK["width"], BOOK["latent_dim"], BOOK["epochs"])
    assert "table1 / cpu" in table.index and not any(name.endswith("/ ci") for name in table.index)
    assert table.loc["table1 / cpu", "images"] == "5,000"
