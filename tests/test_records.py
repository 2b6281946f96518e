"""What a record says of its making (provenance) and what it keeps (per-image scores)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cvgad.book import caveats, presets, verdicts
from cvgad.cli import build_parser, main
from cvgad.experiment import runs
from cvgad.experiment.experiment import metrics_from_scores, run_experiment
from cvgad.experiment.params import make_config
from cvgad.workbench import records
from cvgad.workbench.report import write_report
from cvgad.workbench.results import METRICS, paired_differences, run_metrics
from cvgad.workbench.statistics import bh_adjusted, t_interval

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
    assert made["device"] == "cpu" and made["cores"] >= 1 and made["wall_seconds"] > 0 and made["cpu_seconds"] > 0
    assert (made["earlier_processes"], made["earlier_wall_seconds"], made["earlier_cpu_seconds"]) == (0, 0.0, 0.0)
    assert made["started"] <= made["ended"] and made["load_1min_start"] >= 0 and made["load_1min_end"] >= 0
    assert str(REPO) not in text and str(tmp_path) not in text


def test_the_code_is_dirty_when_code_changed_not_when_a_record_was_rewritten(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for name in ("cvgad/model.py", "ablations/results/grid/metrics.json", "benchmarks/results/speed.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "code and records")
    assert runs.code_version(tmp_path)["dirty"] is False
    (tmp_path / "ablations/results/grid/metrics.json").write_text("2\n")  # a record remade in place
    (tmp_path / "benchmarks/results/speed.csv").write_text("2\n")
    assert runs.code_version(tmp_path)["dirty"] is False
    (tmp_path / "cvgad/model.py").write_text("2\n")
    assert runs.code_version(tmp_path)["dirty"] is True


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
    test, labels, val, outliers = runs.read_scores(run_dir)
    assert len(labels) == written["n_test_normal"] + written["n_test_anomalous"] == len(test["ssim_loss"])
    assert set(test) == set(val) == {"ssim_loss", "l1"} and len(val["l1"]) == written["n_val"]
    assert outliers == {}  # leave_one_out: no outliers among the validation images
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


@pytest.fixture(scope="module")
def one_class_run(tmp_path_factory):
    """One tiny finished run of the one-class protocol (Table 2's), which keeps validation outliers."""
    out = tmp_path_factory.mktemp("one_class")
    settings = TINY | {"protocol": "one_class", "normal_class": 0, "outlier_fraction": 0.3, "train_subset": None}
    run_experiment(make_config(**settings, device="cpu"), out_dir=out, progress=False)
    return out


def test_report_recomputes_a_runs_metrics_from_its_kept_scores_else_reads_metrics_json(one_class_run, tmp_path):
    written = json.loads((one_class_run / runs.METRICS).read_text())
    assert 0 <= written["f1_gpnd"] <= 1 and runs.read_scores(one_class_run)[3]  # validation outliers kept
    status, metrics, _ = run_metrics(one_class_run)
    assert status == "ok" and metrics["metrics_from"] == runs.SCORES
    shown = (*METRICS, "threshold_gpnd")
    assert {k: metrics[k] for k in shown} == {k: written[k] for k in shown}
    older = tmp_path / "older"  # a run whose metrics.json predates a metric: the kept scores give it
    shutil.copytree(one_class_run, older)
    runs.write_json(older / runs.METRICS, {k: v for k, v in written.items() if k != "f1_gpnd"})
    assert run_metrics(older)[1]["f1_gpnd"] == written["f1_gpnd"]
    (older / runs.SCORES).unlink()  # a run that kept no scores: its metrics.json as recorded
    _, metrics, _ = run_metrics(older)
    assert "f1_gpnd" not in metrics and metrics["auc"] == written["auc"] and metrics["metrics_from"] == runs.METRICS


def test_table2s_report_prints_gpnds_f1_beside_ours_and_the_published(one_class_run, tmp_path):
    root = tmp_path / "table2"
    shutil.copytree(one_class_run, root / "cvgad" / "outlier_fraction-0.3" / "seed0")
    plan = {
        "grid": "table2_oneclass", "settings": {"dataset": "digits", "protocol": "one_class"}, "seeds": [0],
        "vary": {"outlier_fraction": [0.3]}, "rows": [{"id": "cvgad", "label": "CVGAD"}],
        "published": [{"method": "GPND", "dataset": "digits", "outlier_fraction": 0.3, "auc": None, "f1": 0.941}],
    }  # fmt: skip
    runs.write_json(root / runs.PLAN, plan)
    write_report(root)
    layout = pd.read_csv(root / "published_layout.csv").set_index("line")["0.3"]
    written = json.loads((one_class_run / runs.METRICS).read_text())
    ours = "F1 in GPND's convention (inliers positive, threshold from validation): CVGAD (ours)"
    published = "F1 as published (its own threshold rule): GPND, published"
    assert layout[ours] == f"{written['f1_gpnd']:.3f} (n=1)" and layout[published] == "0.941"
    assert list(layout.index).index(ours) + 1 == list(layout.index).index(published)  # side by side
    inliers = written["n_test_normal"] / (written["n_test_normal"] + written["n_test_anomalous"])
    floor = "F1 floor in GPND's convention 2(1-p)/(2-p) (call everything an inlier)"
    assert layout[floor] == f"{2 * inliers / (1 + inliers):.3f}"
    assert "the metrics of 1 recomputed from their kept per-image scores" in (root / "per_cell.md").read_text()


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


# ------------------------------------------------------------------ the manifest of records
TINY_GRID = """
name: tiny
dataset: digits
anomaly_class: 1
seeds: [0]
rows:
  - {id: all, label: all losses}
presets:
  ci: {epochs: 1, width: 16, latent_dim: 32, train_subset: 100}
"""


def _recorded(repo: Path, params_of_another_time: bool) -> None:
    """A tiny grid's one run, recorded with today's settings or, as an older record, without the
    settings added since (the log-variance head and the gate, whose defaults then were others)."""
    from cvgad.workbench.ablation import plan_runs
    from cvgad.workbench.grid import load_grid

    spec = plan_runs(load_grid(repo / "ablations" / "tiny.yaml"), "ci", repo / "ablations" / "results")[0]
    params = {k: v for k, v in spec.params.items() if not (params_of_another_time and k in ("logvar", "negative_gate"))}
    runs.begin_grid_run(spec.run_dir, params)
    runs.write_json(Path(spec.run_dir) / runs.METRICS, {"auc": 0.6, "f1_best": 0.5, "wall_seconds": 90.0})


@pytest.fixture
def tiny_repo(tmp_path, monkeypatch):
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "tiny.yaml").write_text(TINY_GRID)
    (tmp_path / "ablations" / "records.yaml").write_text(
        "records:\n  tiny_ci:\n    make: cvgad ablate ablations/tiny.yaml --preset ci\n"
        "    read_by: [notebooks/06_ablation.py]\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_check_passes_a_record_of_todays_settings_and_fails_one_made_under_others(tiny_repo, capsys):
    _recorded(tiny_repo, params_of_another_time=False)
    assert main(["reproduce", "--check"]) == 0
    assert "tiny_ci: current (1 of 1 runs current); 1.5 run-minutes measured" in capsys.readouterr().out
    _recorded(tiny_repo, params_of_another_time=True)
    assert main(["reproduce", "--check"]) == 1
    captured = capsys.readouterr()
    assert "tiny_ci: stale (0 of 1 runs current)" in captured.out and "tiny_ci" in captured.err
    manifest = tiny_repo / "ablations" / "records.yaml"
    manifest.write_text(manifest.read_text() + "    historical: made under the old defaults.\n")
    assert main(["reproduce", "--check"]) == 0  # kept as historical: the pages print why
    assert records.caveats("06_ablation", tiny_repo).startswith("**Historical record `tiny_ci`.** made under")
    assert records.caveats("07_baselines", tiny_repo) == ""
    assert caveats.shown("06_ablation", tiny_repo).data == records.caveats("06_ablation", tiny_repo)
    assert caveats.shown("07_baselines", tiny_repo) is None  # shows nothing, not an empty Markdown's repr


def test_a_record_in_progress_may_be_read_while_its_runs_are_being_made_but_not_once_stale(tiny_repo, capsys):
    from cvgad.workbench.ablation import plan_runs
    from cvgad.workbench.grid import load_grid

    spec = plan_runs(load_grid(tiny_repo / "ablations" / "tiny.yaml"), "ci", tiny_repo / "ablations" / "results")[0]
    runs.begin_grid_run(spec.run_dir, spec.params)  # started under today's settings, not finished
    assert main(["reproduce", "--check"]) == 1
    manifest = tiny_repo / "ablations" / "records.yaml"
    manifest.write_text(manifest.read_text() + "    in_progress: its one run is still training.\n")
    assert main(["reproduce", "--check"]) == 0
    assert "tiny_ci: incomplete (0 of 1 runs current), in progress" in capsys.readouterr().out
    assert records.caveats("06_ablation", tiny_repo).startswith("**Record in progress `tiny_ci`.** its one run")
    _recorded(tiny_repo, params_of_another_time=False)  # finished: the page must no longer say "in progress"
    assert main(["reproduce", "--check"]) == 1
    assert "tiny_ci: current (1 of 1 runs current), marked in progress but finished" in capsys.readouterr().out
    _recorded(tiny_repo, params_of_another_time=True)  # a run of other settings is not excused by being in progress
    assert main(["reproduce", "--check"]) == 1


def test_a_record_is_historical_or_in_progress_not_both(tiny_repo, capsys):
    manifest = tiny_repo / "ablations" / "records.yaml"
    manifest.write_text(manifest.read_text() + "    historical: old.\n    in_progress: still running.\n")
    assert main(["reproduce", "--check"]) == 2
    assert "record tiny_ci is historical or in progress, not both" in capsys.readouterr().err


def test_an_unknown_record_name_gets_the_valid_ones(tiny_repo, capsys):
    assert main(["reproduce", "--dry-run", "--only", "tiny,nope"]) == 2
    assert "unknown record(s) tiny, nope; valid records: tiny_ci" in capsys.readouterr().err


def test_no_page_reads_a_record_that_is_not_current_unless_it_is_historical_and_the_page_prints_why():
    states = [records.judge(REPO, record, build_parser().parse_args) for record in records.load_manifest(REPO)]
    assert [s.record.name for s in records.stale_in_book(states)] == []
    for state in states:
        for page in state.record.read_by:
            assert (REPO / page).is_file(), f"{state.record.name}: {page} does not exist"
            is_chapter = page.startswith("notebooks/") or page == "book/intro.md"
            held = state.record.historical and state.status != records.CURRENT
            if is_chapter and (held or state.record.in_progress and state.status == records.INCOMPLETE):
                assert f'caveats.shown("{Path(page).stem}")' in (REPO / page).read_text(), page


def test_the_closing_chapter_is_listed_as_a_reader_of_every_record_its_verdicts_and_presets_read():
    read = [p.as_posix() for p in verdicts.RECORDS.values()]
    read += [r for r in presets.presets(REPO)["record"] if (REPO / r).exists()]
    for record in records.load_manifest(REPO):
        folders = [t for c in (*record.make, *record.summary) for t in c.split() if t.startswith(runs.RECORD_FOLDERS)]
        if any(p == f or p.startswith(f + "/") or f.startswith(p + "/") for p in read for f in folders):
            assert "notebooks/10_verdict.py" in record.read_by, record.name


@pytest.mark.parametrize(
    "command",
    [c for r in records.load_manifest(REPO) for c in r.summary if c.startswith("cvgad report ")],
)
def test_each_recorded_report_is_what_todays_report_writes_from_its_runs(command, tmp_path):
    """A record's tables and Markdown are rewritten whenever the report changes, none left as an older one wrote it."""
    folder = REPO / command.split()[-1]
    for written in write_report(folder, out=tmp_path):
        if written.suffix in (".csv", ".md"):
            assert written.read_text() == (folder / written.name).read_text(), (
                f"{folder / written.name} is out of date: run {command}"
            )
