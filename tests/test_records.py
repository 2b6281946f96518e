"""What a record says of its making (provenance) and what it keeps (per-image scores)."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cvgad.cli import main
from cvgad.experiment import runs
from cvgad.experiment.experiment import metrics_from_scores, run_experiment
from cvgad.experiment.params import make_config
from cvgad.workbench.report import bh_adjusted, paired_differences, t_interval, write_report

REPO = Path(__file__).resolve().parents[1]
TINY = {"dataset": "digits", "anomaly_class": 1, "epochs": 1, "width": 8, "latent_dim": 16, "train_subset": 200}


def test_a_run_records_its_provenance_without_machine_paths(tmp_path):
    run_experiment(make_config(**TINY, device="cpu"), out_dir=tmp_path, progress=False)
    text = (tmp_path / runs.METRICS).read_text()
    made = json.loads(text)["provenance"]
    assert set(made) == set(runs.PROVENANCE_FIELDS)
    assert made["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", made["commit"])
    assert made["dirty"] in (True, False, None) and made["cvgad"] == made["package"]
    assert made["torch"] == torch.__version__ and made["threads"] == torch.get_num_threads()
    assert made["device"] == "cpu" and made["cores"] >= 1 and made["wall_seconds"] > 0
    assert made["started"] <= made["ended"] and made["load_1min_start"] >= 0 and made["load_1min_end"] >= 0
    assert str(REPO) not in text and str(tmp_path) not in text


def test_a_record_made_before_provenance_reads_as_unknown():
    assert runs.read_provenance({"auc": 0.5}) == dict.fromkeys(runs.PROVENANCE_FIELDS, "unknown")
    assert runs.read_provenance(None)["commit"] == "unknown"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny finished run on the digits."""
    out = tmp_path_factory.mktemp("run")
    run_experiment(make_config(**TINY, device="cpu"), out_dir=out, progress=False)
    return out


def test_metrics_recomputed_from_the_kept_scores_equal_those_written_at_training(run_dir, capsys):
    written = json.loads((run_dir / runs.METRICS).read_text())
    recomputed = metrics_from_scores(run_dir)
    assert recomputed == {k: written[k] for k in recomputed}
    test, labels, val = runs.read_scores(run_dir)
    assert len(labels) == written["n_test_normal"] + written["n_test_anomalous"] == len(test["ssim_loss"])
    assert set(test) == set(val) == {"ssim_loss", "l1"} and len(val["l1"]) == written["n_val"]
    assert (run_dir / runs.SCORES).stat().st_size < 20_000  # small enough to commit with the record
    assert main(["evaluate", str(run_dir)]) == 0  # no model, no data: from the scores
    again = json.loads((run_dir / runs.EVALUATION).read_text())
    assert again["recomputed_from"] == runs.SCORES and again["auc"] == written["auc"]


def _truncated(path: Path, tmp_path: Path) -> Path:
    """A copy of `path`'s run folder with `path` cut to half its size."""
    copy = tmp_path / "run"
    shutil.copytree(path.parent, copy)
    data = (copy / path.name).read_bytes()
    (copy / path.name).write_bytes(data[: len(data) // 2])
    return copy


@pytest.mark.parametrize(("name", "flags"), [(runs.CHECKPOINT, ["--bn-at-test", "train"]), (runs.SCORES, [])])
def test_a_truncated_file_gets_an_error_naming_it_and_how_to_remake_it(run_dir, tmp_path, capsys, name, flags):
    copy = _truncated(run_dir / name, tmp_path)
    assert main(["evaluate", str(copy), *flags]) == 2
    err = capsys.readouterr().err
    assert f"{copy / name} cannot be read" in err and "cvgad train" in err and "Traceback" not in err


def test_report_names_runs_whose_metrics_cannot_be_read(run_dir, tmp_path):
    root = tmp_path / "grid"
    for seed in (0, 1):
        shutil.copytree(run_dir, root / "all" / f"seed{seed}")
    (root / "all" / "seed1" / runs.METRICS).write_text('{"auc": 0.7')  # truncated
    write_report(root)
    text = (root / "table1.md").read_text()
    assert "1 finished, 0 failed, 1 unreadable" in text
    assert f"`all` seed 1: {root / 'all' / 'seed1' / runs.METRICS} cannot be read" in text


def test_the_t_interval_and_the_bh_adjustment_on_values_by_hand():
    low, high = t_interval([1.0, 2.0, 3.0, np.nan])  # mean 2, s = 1, n = 3, t(0.975, 2) = 4.302653
    assert (low, high) == pytest.approx((2 - 4.302653 / 3**0.5, 2 + 4.302653 / 3**0.5), abs=1e-6)
    assert np.isnan(t_interval([0.7])).all()
    # sorted p 0.01, 0.03, 0.04 (m = 3): 0.04 * 3/3 = 0.04; min(0.03 * 3/2, 0.04) = 0.04; 0.01 * 3 = 0.03
    adjusted = bh_adjusted([0.01, 0.04, np.nan, 0.03])
    assert adjusted[[0, 1, 3]] == pytest.approx([0.03, 0.04, 0.04]) and np.isnan(adjusted[2])


def test_paired_differences_carry_the_adjusted_p_beside_the_raw_one():
    rows = [("all", s, 0.80 + 0.01 * s) for s in range(5)] + [("no_l1", s, 0.70 + 0.01 * s) for s in range(5)]
    rows += [("no_mi", s, 0.80 + 0.01 * s + (0.02 if s % 2 else -0.01)) for s in range(5)]
    runs_ = pd.DataFrame([{"row": r, "label": r, "seed": s, "status": "ok", "auc": a} for r, s, a in rows])
    pairs = paired_differences(runs_, [], reference="all").set_index("row")
    assert pairs.at["no_l1", "wilcoxon_p"] == pytest.approx(0.0625)  # 5 of 5 lower: 2/32
    assert pairs["wilcoxon_p_bh"].to_numpy() == pytest.approx(bh_adjusted(pairs["wilcoxon_p"].to_numpy()))
    assert pairs.at["no_l1", "auc_diff_ci_low"] == pytest.approx(-0.1) == pairs.at["no_l1", "auc_diff_ci_high"]
