"""Aggregation of ablation runs: the arithmetic on a hand-made CSV, and the files `cvgad report` writes."""

import io
import json
import math

import pandas as pd
import pytest

from cvgad.cli import main
from cvgad.report import aggregate, agreement, collect_runs, load_runs, results_table, statements

RUNS_CSV = """row,label,seed,status,auc,f1_best,auprc,f1_val,f1_floor
all,use all losses,0,ok,0.80,0.70,0.6,0.60,0.18
all,use all losses,1,ok,0.84,0.74,0.6,0.62,0.18
all,use all losses,2,ok,0.82,0.72,0.6,0.64,0.18
no_mi,without MI,0,ok,0.70,0.71,0.5,0.50,0.18
no_mi,without MI,1,ok,0.74,0.73,0.5,0.52,0.18
no_mi,without MI,2,failed,,,,,
no_l1,without L1,0,ok,0.81,0.60,0.5,0.50,0.18
"""
PAPER = {"all": {"auc": 0.853, "f1": 0.845}, "no_mi": {"auc": 0.794, "f1": 0.781}}


def test_aggregate_arithmetic_by_hand():
    table = aggregate(pd.read_csv(io.StringIO(RUNS_CSV)), PAPER).set_index("row")
    assert list(table.index) == ["all", "no_mi", "no_l1"]
    assert table.loc["all", "n"] == 3 and table.loc["no_mi", "n"] == 2 and table.loc["no_l1", "n"] == 1
    assert table.loc["no_mi", "not_ok"] == 1
    # all: AUC 0.80, 0.84, 0.82 -> mean 0.82, deviations -0.02, 0.02, 0 -> var 0.0008/2, std 0.02
    assert table.loc["all", "auc_mean"] == pytest.approx(0.82)
    assert table.loc["all", "auc_std"] == pytest.approx(0.02)
    # no_mi: the failed seed is left out; AUC 0.70, 0.74 -> mean 0.72, std sqrt(0.0008) = 0.028284
    assert table.loc["no_mi", "auc_mean"] == pytest.approx(0.72)
    assert table.loc["no_mi", "auc_std"] == pytest.approx(math.sqrt(0.0008))
    assert table.loc["no_mi", "f1_val_mean"] == pytest.approx(0.51)
    # no_mi vs all, AUC: -0.10; combined std sqrt(0.02^2 + 0.0008) = 0.034641 -> beyond the spread
    assert table.loc["no_mi", "auc_vs_all"] == pytest.approx(-0.10)
    assert table.loc["no_mi", "auc_all_beyond_spread"] == True  # noqa: E712
    # no_mi vs all, F1: 0.72 - 0.72 = 0 -> within the spread
    assert table.loc["no_mi", "f1_best_vs_all"] == pytest.approx(0.0)
    assert table.loc["no_mi", "f1_best_all_beyond_spread"] == False  # noqa: E712
    # vs the paper: all AUC 0.82 - 0.853 = -0.033, |.| > std 0.02 -> beyond; no_mi F1 0.72 - 0.781 = -0.061
    assert table.loc["all", "auc_vs_paper"] == pytest.approx(-0.033)
    assert table.loc["all", "auc_paper_beyond_spread"] == True  # noqa: E712
    assert table.loc["no_mi", "f1_best_vs_paper"] == pytest.approx(-0.061)
    # one seed: no std, so no verdict; no paper value: NaN
    assert math.isnan(table.loc["no_l1", "auc_std"]) and pd.isna(table.loc["no_l1", "auc_all_beyond_spread"])
    assert math.isnan(table.loc["no_l1", "auc_paper"])


def test_statements_say_what_exceeds_the_spread():
    text = "\n".join(statements(aggregate(pd.read_csv(io.StringIO(RUNS_CSV)), PAPER)))
    assert "`no_mi` AUC 0.720: -0.100 vs `all`, which exceeds the spread over seeds" in text
    assert "`no_mi` F1 (best threshold) 0.720: +0.000 vs `all`, which is within the spread" in text
    assert "`all` AUC 0.820: -0.033 vs the paper, beyond our spread (std 0.020)" in text
    assert "`no_l1` AUC: 1 finished seed(s), too few to judge a spread." in text


def test_results_table_is_text_with_a_dash_where_there_is_nothing():
    shown = results_table(aggregate(pd.read_csv(io.StringIO(RUNS_CSV)), PAPER))
    assert list(shown.index) == ["all", "no_mi", "no_l1"] and shown.columns[1] == "AUC (chance 0.5)"
    assert list(shown.loc["all"].iloc[:4]) == ["3", "0.820 ± 0.020", "0.853", "-0.033"]
    assert list(shown.loc["no_l1"].iloc[:4]) == ["1", "0.810", "–", "–"]  # one seed: no spread; no paper value
    assert not shown.isna().any().any()


def test_agreement_writes_the_comparison_from_the_numbers():
    text = agreement(aggregate(pd.read_csv(io.StringIO(RUNS_CSV)), PAPER))
    assert "With all losses our AUC is 0.820 ± 0.020 over 3 seed(s) against the paper's 0.853" in text
    assert "Our rows from lowest to highest mean AUC: `no_mi` (0.720), `no_l1` (0.810), `all` (0.820)." in text
    assert "The paper's order of the same rows: `no_mi`, `all`. The two orders are the same." in text
    assert "the costliest removal is `no_mi` in the paper and in ours" in text
    assert "differs from `all` by more than the combined spread: `no_mi` (-0.100)." in text
    assert "No row has a mean AUC below chance (0.5)." in text


def test_load_runs_prefers_the_source_with_more_finished_runs(tmp_path):
    assert load_runs(tmp_path) == (None, "")
    pd.read_csv(io.StringIO(RUNS_CSV)).to_csv(tmp_path / "runs.csv", index=False)
    runs, source = load_runs(tmp_path)
    assert source == "runs.csv" and int((runs["status"] == "ok").sum()) == 6


def make_results(root):
    """A results folder as the runner leaves it: two finished rows, a failed run and a killed one."""
    rows = [
        {"id": "all", "label": "use all losses", "disabled": []},
        {"id": "no_mi", "label": "without MI", "disabled": ["mi"]},
    ]
    (root).mkdir(parents=True)
    (root / "plan.json").write_text(
        json.dumps(
            {
                "grid": "table1",
                "preset": "ci",
                "description": "Table 1 test",
                "settings": {"dataset": "cifar10", "epochs": 1},
                "seeds": [0, 1, 2],
                "rows": rows,
                "paper": PAPER,
            }
        )
    )
    for row, seed, auc in (("all", 0, 0.80), ("all", 1, 0.84), ("all", 2, 0.82), ("no_mi", 0, 0.70)):
        run = root / row / f"seed{seed}"
        run.mkdir(parents=True)
        run.joinpath("metrics.json").write_text(
            json.dumps(
                {
                    "auc": auc,
                    "f1_best": auc - 0.1,
                    "auprc": 0.5,
                    "f1_val": 0.5,
                    "f1_floor": 0.18,
                    "n_train": 100,
                    "n_val": 10,
                    "n_test_normal": 90,
                    "n_test_anomalous": 10,
                    "epochs": 1,
                    "device": "cpu",
                    "wall_seconds": 3.0,
                }
            )
        )
    (root / "no_mi" / "seed1").mkdir()
    (root / "no_mi" / "seed1" / "error.txt").write_text("Traceback ...\nValueError: broken\n")
    (root / "no_mi" / "seed2").mkdir()  # killed: params.json and a partial notebook, no metrics
    (root / "no_mi" / "seed2" / "executed.ipynb").write_text("{")


def test_report_writes_csv_markdown_and_chart(tmp_path, capsys):
    root = tmp_path / "table1" / "ci"
    make_results(root)
    runs = collect_runs(root)
    assert list(runs.status) == ["ok", "ok", "ok", "ok", "failed", "unfinished"]
    out = tmp_path / "report"
    assert main(["report", str(root), "--out", str(out)]) == 0
    written = pd.read_csv(out / "runs.csv")
    assert list(written.columns[:4]) == ["row", "label", "seed", "status"] and len(written) == 6
    assert written.loc[4, "error"] == "ValueError: broken"
    table = pd.read_csv(out / "table1.csv").set_index("row")
    assert table.loc["all", "auc_mean"] == pytest.approx(0.82) and table.loc["no_mi", "n"] == 1
    md = (out / "table1.md").read_text()
    assert "| use all losses (`all`) | 3 | 0.820 ± 0.020 | 0.853 | -0.033 | 0.720 ± 0.020 | 0.845 | -0.125 |" in md
    assert "F1, best threshold (paper's metric)" in md and "JPEG" in md and "`no_mi` seed 1: ValueError: broken" in md
    assert (out / "table1.png").stat().st_size > 10_000
    assert not list(out.glob(".*"))  # no temp files left behind


def test_report_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "does not exist; run `cvgad ablate` first" in capsys.readouterr().err
