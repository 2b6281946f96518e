"""Aggregation of ablation runs: the arithmetic on a hand-made CSV, and the files `cvgad report` writes;
for a grid that varies the anomaly class, the per-class tables, paired differences and figure."""

import io
import json
import math

import pandas as pd
import pytest

from cvgad.cli import main
from cvgad.workbench.formatting import cell_name, num, value_name
from cvgad.workbench.per_cell import cell_table, mean_over_cells, published_layout
from cvgad.workbench.plots import cell_bars
from cvgad.workbench.results import collect_runs, load_runs, paired_differences
from cvgad.workbench.statistics import signed_rank_p
from cvgad.workbench.table1 import aggregate, agreement, results_table, statements

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
    # the interval: 0.820 ± t(0.975, 2) 0.020 / sqrt(3) = 0.820 ± 0.050
    assert "| use all losses (`all`) | 3 | 0.820 ± 0.020 | [0.770, 0.870] | 0.853 | -0.033 | 0.720 ± 0.020 |" in md
    assert "F1, best threshold (paper's metric)" in md and "JPEG" in md and "`no_mi` seed 1: ValueError: broken" in md
    assert (out / "table1.png").stat().st_size > 10_000
    assert not list(out.glob(".*"))  # no temp files left behind


def test_report_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "does not exist; run `cvgad ablate` first" in capsys.readouterr().err


#: AUC per (row, anomaly class, seed) of a grid that varies the anomaly class; ae class 4 seed 1 failed.
CLASS_AUC = {
    ("cvgad", 0): (0.90, 0.94),
    ("cvgad", 1): (0.70, 0.74),
    ("cvgad", 4): (0.60, 0.64),
    ("ae", 0): (0.80, 0.96),
    ("ae", 1): (0.60, 0.70),
    ("ae", 4): (0.50, None),
}


def make_class_results(root):
    """A results folder of a grid with `vary: {anomaly_class: [0, 1, 4]}` on CIFAR-10, as the runner leaves it."""
    rows = [{"id": "cvgad", "label": "CVGAD", "disabled": []}, {"id": "ae", "label": "autoencoder", "disabled": []}]
    root.mkdir(parents=True, exist_ok=True)
    plan = {
        "grid": "classes",
        "preset": "ci",
        "description": "Per class",
        "settings": {"dataset": "cifar10"},
        "seeds": [0, 1],
        "vary": {"anomaly_class": [0, 1, 4]},
        "rows": rows,
        "paper": {},
    }
    (root / "plan.json").write_text(json.dumps(plan))
    for (row, cls), aucs in CLASS_AUC.items():
        for seed, auc in enumerate(aucs):
            run = root / row / f"anomaly_class-{cls}" / f"seed{seed}"
            run.mkdir(parents=True)
            if auc is None:
                (run / "error.txt").write_text("Traceback ...\nRuntimeError: diverged\n")
                continue
            metrics = {"auc": auc, "f1_best": auc - 0.1, "auprc": 0.5, "f1_val": 0.5, "f1_floor": 0.18}
            (run / "metrics.json").write_text(json.dumps(metrics))


def test_collect_runs_gives_each_varied_setting_a_column(tmp_path):
    make_class_results(tmp_path)
    runs = collect_runs(tmp_path)
    assert list(runs.columns[:5]) == ["row", "label", "anomaly_class", "seed", "status"] and len(runs) == 12
    assert list(runs.anomaly_class[:6]) == [0, 0, 1, 1, 4, 4]
    assert runs.set_index(["row", "anomaly_class", "seed"]).loc[("ae", 4, 1), "status"] == "failed"


def test_cell_table_per_class_and_row_by_hand(tmp_path):
    make_class_results(tmp_path)
    table = cell_table(collect_runs(tmp_path), ["anomaly_class"])
    assert list(zip(table.anomaly_class, table.row, strict=True)) == [
        (0, "cvgad"),
        (0, "ae"),
        (1, "cvgad"),
        (1, "ae"),
        (4, "cvgad"),
        (4, "ae"),
    ]
    line = table.set_index(["anomaly_class", "row"])
    # ae class 0: AUC 0.80, 0.96 -> mean 0.88, std sqrt(2 * 0.08^2 / 1) = 0.113137
    assert line.loc[(0, "ae"), "auc_mean"] == pytest.approx(0.88)
    assert line.loc[(0, "ae"), "auc_std"] == pytest.approx(math.sqrt(2 * 0.08**2))
    assert line.loc[(0, "ae"), "f1_best_mean"] == pytest.approx(0.78)
    # ae class 4: one finished seed, one failed
    assert (line.loc[(4, "ae"), "n"], line.loc[(4, "ae"), "not_ok"]) == (1, 1)
    assert math.isnan(line.loc[(4, "ae"), "auc_std"])


def test_mean_over_cells_counts_only_seeds_with_every_class(tmp_path):
    make_class_results(tmp_path)
    table = mean_over_cells(collect_runs(tmp_path), ["anomaly_class"]).set_index("row")
    # cvgad: seed 0 (0.90 + 0.70 + 0.60) / 3 = 0.7333, seed 1 0.7733 -> mean 0.7533, std sqrt(2 * 0.02^2)
    assert table.loc["cvgad", "n"] == 2 and table.loc["cvgad", "cells"] == 3
    assert table.loc["cvgad", "auc_mean"] == pytest.approx(0.75333, abs=1e-5)
    assert table.loc["cvgad", "auc_std"] == pytest.approx(math.sqrt(2 * 0.02**2))
    # ae: seed 1 lacks class 4, so only seed 0 counts: (0.80 + 0.60 + 0.50) / 3
    assert (table.loc["ae", "n"], table.loc["ae", "not_ok"]) == (1, 1)
    assert table.loc["ae", "auc_mean"] == pytest.approx(1.9 / 3)


def test_paired_differences_pair_class_and_seed(tmp_path):
    make_class_results(tmp_path)
    [line] = paired_differences(collect_runs(tmp_path), ["anomaly_class"]).itertuples()
    # ae - cvgad: -0.10, +0.02 (class 0), -0.10, -0.04 (class 1), -0.10 (class 4, seed 0; seed 1 failed)
    assert (line.row, line.reference, line.pairs, line.ahead) == ("ae", "cvgad", 5, 1)
    assert line.auc_diff_mean == pytest.approx(-0.064)
    [back] = paired_differences(collect_runs(tmp_path), ["anomaly_class"], reference="ae").itertuples()
    assert (back.row, back.pairs, back.ahead) == ("cvgad", 5, 4) and back.auc_diff_mean == pytest.approx(0.064)


def test_class_names_where_the_dataset_has_them():
    assert value_name("anomaly_class", 4, "cifar10") == "deer"
    assert value_name("normal_class", 0, "fashion_mnist") == "T-shirt/top"
    assert value_name("anomaly_class", 4, "coil100") == "4"  # no names
    assert value_name("batch_size", 4, "cifar10") == "4"  # not a class
    assert cell_name({"anomaly_class": 4, "batch_size": 32}, "cifar10") == "deer, 32"
    assert cell_name({"anomaly_class": 4, "batch_size": 32}, "cifar10", with_values=True) == "4 (deer), 32"


def test_cell_bars_draw_one_bar_per_class_and_row_with_chance(tmp_path):
    from matplotlib.figure import Figure

    make_class_results(tmp_path)
    ax = Figure().subplots()
    cell_bars(collect_runs(tmp_path), ["anomaly_class"], "cifar10", ax=ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["airplane", "automobile", "deer"]
    assert len([p for p in ax.patches if p.get_height() > 0]) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["CVGAD", "autoencoder", "chance (AUC 0.5)"]
    [chance] = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert list(chance.get_ydata()) == [0.5, 0.5]
    assert ax.get_xlabel() == "anomaly class" and "AUC" in ax.get_ylabel()


def test_report_of_a_grid_with_vary_writes_the_per_class_files(tmp_path):
    root = tmp_path / "classes" / "ci"
    make_class_results(root)
    assert main(["report", str(root)]) == 0
    per_cell = pd.read_csv(root / "per_cell.csv")
    assert list(per_cell.columns[:4]) == ["anomaly_class", "row", "label", "n"] and len(per_cell) == 6
    assert list(pd.read_csv(root / "mean_over_cells.csv").row) == ["cvgad", "ae"]
    assert list(pd.read_csv(root / "paired.csv").columns) == [
        "row",
        "label",
        "reference",
        "pairs",
        "auc_diff_mean",
        "auc_diff_std",
        "auc_diff_ci_low",
        "auc_diff_ci_high",
        "ahead",
        "wilcoxon_p",
        "wilcoxon_p_bh",
    ]
    md = (root / "per_cell.md").read_text()
    assert "| 4 (deer) | `ae` | 1 | 0.500 | 0.400 | 0.500 | 0.180 |" in md
    assert "| CVGAD (`cvgad`) | 2 | 0.753 ± 0.028 |" in md
    assert "| autoencoder (`ae`) | 5 | -0.064 ± " in md and "F1, best threshold (oracle: picked on the test set)" in md
    assert "F1 floor 2p/(1+p)" in md and "`ae` anomaly_class=4 seed 1: RuntimeError: diverged" in md
    assert (root / "per_cell.png").stat().st_size > 10_000


def test_report_of_a_vary_grid_does_not_pool_classes_into_a_table1(tmp_path):
    make_class_results(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    assert not list(tmp_path.glob("table1.*"))


def make_coil_results(root):
    """Table 3's layout: vary n_inliers over 1 and 4, two seeds, one row; published values for both."""
    root.mkdir(parents=True, exist_ok=True)
    plan = {
        "grid": "coil",
        "preset": "full",
        "settings": {"dataset": "coil100"},
        "seeds": [0, 1],
        "vary": {"n_inliers": [1, 4]},
        "rows": [{"id": "cvgad", "label": "CVGAD", "disabled": []}],
        "published": [
            {"method": "GPND", "n_inliers": 1, "auc": 0.968, "f1": 0.979},
            {"method": "GPND", "n_inliers": 4, "auc": 0.945, "f1": float("nan")},
        ],
    }
    (root / "plan.json").write_text(json.dumps(plan))
    for (k, seed), auc in {(1, 0): 1.0, (1, 1): 0.5, (4, 0): 0.9, (4, 1): 0.7}.items():
        run = root / "cvgad" / f"n_inliers-{k}" / f"seed{seed}"
        run.mkdir(parents=True)
        metrics = {"auc": auc, "f1_best": 1.0, "auprc": 1.0, "f1_val": 0.8, "f1_floor": 2 / 3 if k == 1 else 0.4}
        (run / "metrics.json").write_text(json.dumps(metrics))
    return plan


def test_published_layout_puts_ours_beside_the_published_values_per_setting(tmp_path):
    plan = make_coil_results(tmp_path)
    table = published_layout(collect_runs(tmp_path), plan)
    assert list(table.columns) == ["1", "4"] and table.columns.name == "n_inliers"
    # n_inliers 1: AUC 1.0 and 0.5 -> 0.750 ± 0.354 over 2 seeds
    assert table.loc["AUC: CVGAD (ours)"].tolist() == ["0.750 ± 0.354 (n=2)", "0.800 ± 0.141 (n=2)"]
    assert table.loc["AUC: GPND, published"].tolist() == ["0.968", "0.945"]
    assert table.loc["F1 as published (its own threshold rule): GPND, published"].tolist() == ["0.979", "–"]
    assert table.loc["F1 floor 2p/(1+p) (flag everything)"].tolist() == ["0.667", "0.400"]
    assert (
        table.loc["F1, best threshold (oracle: picked on the test set): CVGAD (ours)"].tolist()
        == ["1.000 ± 0.000 (n=2)"] * 2
    )
    assert table.loc["F1 at validation threshold: CVGAD (ours)"].tolist() == ["0.800 ± 0.000 (n=2)"] * 2
    assert published_layout(collect_runs(tmp_path), plan | {"published": []}) is None


def test_published_layout_counts_a_seed_only_when_every_other_cell_finished(tmp_path):
    """With two varied settings, a seed's mean over the other one is comparable only when complete."""
    plan = make_coil_results(tmp_path)
    plan["vary"] = {"n_inliers": [1, 4], "fold": [0, 1]}
    for k in (1, 4):
        for seed in (0, 1):
            old = tmp_path / "cvgad" / f"n_inliers-{k}" / f"seed{seed}"
            for fold, auc in ((0, 0.6), (1, 0.8)):
                run = tmp_path / "cvgad" / f"n_inliers-{k}" / f"fold-{fold}" / f"seed{seed}"
                run.mkdir(parents=True)
                metrics = json.loads((old / "metrics.json").read_text()) | {"auc": auc + 0.1 * seed}
                (run / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "cvgad" / "n_inliers-4" / "fold-1" / "seed1" / "metrics.json").unlink()  # seed 1 incomplete at 4
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    table = published_layout(collect_runs(tmp_path), plan)
    # n_inliers 1: seed 0 (0.6 + 0.8) / 2 = 0.7, seed 1 0.8 -> 0.750 ± 0.071; n_inliers 4: only seed 0
    assert table.loc["AUC: CVGAD (ours)"].tolist() == ["0.750 ± 0.071 (n=2)", "0.700 (n=1)"]


def test_an_unknown_reference_row_is_an_error_not_an_empty_table(tmp_path):
    make_class_results(tmp_path)
    with pytest.raises(ValueError, match="reference row 'CVGAD' is not in these runs; valid rows: cvgad, ae"):
        paired_differences(collect_runs(tmp_path), ["anomaly_class"], reference="CVGAD")


def test_a_varied_setting_that_metrics_also_record_is_one_column(tmp_path):
    """metrics.json records `epochs`; a grid that varies epochs must still give one epochs column."""
    plan = {"grid": "g", "preset": "p", "settings": {}, "seeds": [0], "vary": {"epochs": [10, 30]},
            "rows": [{"id": "cvgad", "label": "CVGAD", "disabled": []}]}  # fmt: skip
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    for epochs in (10, 30):
        run = tmp_path / "cvgad" / f"epochs-{epochs}" / "seed0"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"auc": 0.9, "f1_best": 0.8, "epochs": epochs}))
    runs = collect_runs(tmp_path)
    assert list(runs.columns).count("epochs") == 1 and list(runs["epochs"]) == [10, 30]
    assert list(cell_table(runs, ["epochs"])["epochs"]) == [10, 30]


def test_num_rounds_to_three_decimals_and_signs_a_difference_without_a_negative_zero():
    assert num(0.4517) == "0.452"
    assert num(0.0294, signed=True) == "+0.029"
    assert num(-0.0012, signed=True) == "-0.001"
    assert num(-0.0004, signed=True) == "+0.000"
    assert num(float("nan")) == "–"


def test_signed_rank_p_by_hand():
    # five differences of one sign: of the 2^5 equally likely sign patterns, 2 are as extreme
    assert signed_rank_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 32)
    # ranks 1..5, the largest negative: W- = 5; 10 of 32 sign patterns have W- <= 5, two-sided x2
    assert signed_rank_p([0.1, 0.2, 0.3, 0.4, -0.5]) == pytest.approx(20 / 32)
    assert math.isnan(signed_rank_p([0.0, 0.0, 0.0])) and math.isnan(signed_rank_p([0.1]))


def test_paired_differences_carry_the_signed_rank_p():
    runs = pd.read_csv(io.StringIO(RUNS_CSV))
    lines = paired_differences(runs, []).set_index("row")
    # no_mi - all on seeds 0 and 1: -0.10, -0.10 (tied ranks); no_l1: one pair
    assert lines.at["no_mi", "pairs"] == 2 and 0 < lines.at["no_mi", "wilcoxon_p"] <= 1
    assert math.isnan(lines.at["no_l1", "wilcoxon_p"])
