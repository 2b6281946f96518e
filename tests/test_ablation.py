"""Ablation grids and runner: validation, resume, failures, Dask and the real papermill path.

Training is faked: `run_notebook` is replaced by a function that writes metrics.json at once, or
papermill runs a tiny notebook written here; no test trains a network.
"""
import argparse
import json
import os
from pathlib import Path

import pytest

from cvgad import ablation
from cvgad.ablation import RunSpec, ablate_main, add_ablate_arguments, load_notebook, plan_runs, run_grid
from cvgad.config import LOSS_NAMES
from cvgad.grid import SETTINGS, load_grid

REPO = Path(__file__).resolve().parents[1]
TABLE1 = REPO / "ablations" / "table1.yaml"
GRID = """
name: tiny
dataset: digits
anomaly_class: 1
seeds: [0, 1]
rows:
  - {id: all, label: use all losses, disabled: []}
  - {id: no_l1, label: without L1, disabled: [l1]}
  - {id: no_mi, label: without MI, disabled: [mi]}
presets:
  ci: {epochs: 1, width: 16, seeds: [0, 1]}
"""


def write_grid(tmp_path: Path, text: str = GRID) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def args_for(grid: Path, out: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_ablate_arguments(parser)
    return parser.parse_args([str(grid), "--out", str(out), *extra])


@pytest.fixture
def fake_runs(monkeypatch):
    """Replace papermill with a fake that writes metrics (or fails for rows with 'l1' off); log the calls."""
    calls = []

    def fake_run_notebook(notebook, output, parameters, threads):
        calls.append(parameters | {"threads": threads})
        output.write_text("{}")
        if "l1" in parameters["disabled"]:
            raise RuntimeError("simulated failure without L1")
        auc = 0.8 - 0.1 * len(parameters["disabled"]) + 0.01 * parameters["seed"]
        ablation.write_json_atomic(output.parent / "metrics.json", {"auc": auc, "f1_best": auc - 0.05})

    monkeypatch.setattr(ablation, "run_notebook", fake_run_notebook)
    return calls


def test_table1_grid_has_the_papers_rows_and_presets():
    grid = load_grid(TABLE1)
    assert [r.id for r in grid.rows] == ["all", "no_mi", "no_latent", "no_ssim", "no_l1", "no_wasserstein", "no_negative"]
    assert grid.row("all").disabled == ()
    assert sorted(d for r in grid.rows for d in r.disabled) == sorted(LOSS_NAMES)
    assert grid.paper["all"] == {"f1": 0.845, "auc": 0.853}
    assert grid.paper["no_wasserstein"] == {"f1": 0.705, "auc": 0.718}
    assert set(grid.presets) == {"ci", "cpu", "paper"}
    settings, seeds = grid.resolve("ci")
    assert settings["dataset"] == "digits" and settings["anomaly_class"] == 1 and seeds == [0, 1]
    settings, seeds = grid.resolve("paper")
    assert settings["dataset"] == "cifar10" and settings["anomaly_class"] == 4
    assert settings["train_subset"] is None and len(seeds) >= 3
    assert grid.paper_for("cpu") == (grid.paper, "")
    paper, note = grid.paper_for("ci")  # digits class 1 is not the paper's task: no comparison
    assert paper == {} and "dataset=digits" in note and "dataset=cifar10" in note


@pytest.mark.parametrize("old, new, message", [
    ("disabled: [l1]", "disabled: [l2]", r"unknown loss name 'l2'.*valid: l1, latent, mi, negative, ssim, wasserstein"),
    ("anomaly_class: 1", "anomaly_clas: 1", r"unknown key\(s\) \['anomaly_clas'\]; valid keys: .*anomaly_class"),
    ("epochs: 1,", "epoch: 1,", r"preset ci: unknown key\(s\) \['epoch'\]"),
    ("epochs: 1,", "epochs: '1',", r"epochs='1' has type str; expected int"),
    ("width: 16,", "width: true,", r"width=True has type bool; expected int"),
    ("dataset: digits", "dataset: imagenet", r"dataset='imagenet' is not valid; choose one of"),
    ("seeds: [0, 1]\nrows", "seeds: []\nrows", r"seeds=\[\] is not valid"),
    ("{id: no_mi,", "{id: all,", r"repeat an id"),
    ("label: without MI,", "label: without MI, colour: red,", r"unknown key\(s\) \['colour'\]; valid keys: disabled, id, label"),
])
def test_bad_grids_get_clear_errors(tmp_path, old, new, message):
    assert old in GRID
    with pytest.raises(ValueError, match=message):
        load_grid(write_grid(tmp_path, GRID.replace(old, new, 1)))


def test_unknown_preset_and_row_name_the_valid_ones(tmp_path):
    grid = load_grid(write_grid(tmp_path))
    with pytest.raises(ValueError, match=r"unknown preset 'gpu' for grid tiny; valid presets: ci"):
        plan_runs(grid, "gpu", tmp_path)
    with pytest.raises(ValueError, match=r"has presets; choose one of ci"):
        plan_runs(grid, None, tmp_path)
    with pytest.raises(ValueError, match=r"unknown row 'no_ssim' in grid tiny; valid rows: all, no_l1, no_mi"):
        plan_runs(grid, "ci", tmp_path, rows=["no_ssim"])
    assert ablate_main(args_for(write_grid(tmp_path), tmp_path, "--preset", "gpu")) == 2


def test_plan_lays_out_one_folder_per_row_and_seed(tmp_path):
    grid = load_grid(write_grid(tmp_path))
    specs = plan_runs(grid, "ci", tmp_path / "out", rows=["no_mi"], seeds=[3], place={"data_root": "data", "device": "cpu"})
    [spec] = specs
    assert Path(spec.run_dir) == (tmp_path / "out" / "tiny" / "ci" / "no_mi" / "seed3").resolve()
    assert spec.params["disabled"] == ["mi"] and spec.params["seed"] == 3 and spec.params["epochs"] == 1
    assert spec.params["data_root"] == str(Path("data").resolve()) and spec.params["device"] == "cpu"
    assert set(spec.params) == set(SETTINGS) | {"seed", "disabled", "out_dir"}


def test_resume_skips_finished_and_redoes_killed_or_changed_runs(tmp_path, fake_runs):
    grid_file = write_grid(tmp_path)
    assert ablate_main(args_for(grid_file, tmp_path, "--preset", "ci", "--rows", "all,no_mi")) == 0
    assert len(fake_runs) == 4
    root = tmp_path / "tiny" / "ci"
    killed = root / "no_mi" / "seed1"
    (killed / "metrics.json").unlink()  # killed before the atomic final write: partial files only
    (killed / "history.csv").write_text("epoch,loss\n0,1.0\n")
    fake_runs.clear()
    assert ablate_main(args_for(grid_file, tmp_path, "--preset", "ci", "--rows", "all,no_mi", "--device", "cpu")) == 0
    assert [(c["disabled"], c["seed"]) for c in fake_runs] == [(["mi"], 1)]  # a device change alone keeps results
    summary = json.loads((root / "summary.json").read_text())
    assert sorted(r["status"] for r in summary["runs"]) == ["done", "skipped", "skipped", "skipped"]
    fake_runs.clear()
    write_grid(tmp_path, GRID.replace("epochs: 1,", "epochs: 2,"))  # changed settings: nothing is reused
    assert ablate_main(args_for(grid_file, tmp_path, "--preset", "ci", "--rows", "all")) == 0
    assert [c["epochs"] for c in fake_runs] == [2, 2]


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path, fake_runs):
    assert ablate_main(args_for(write_grid(tmp_path), tmp_path, "--preset", "ci")) == 1
    assert len(fake_runs) == 6
    root = tmp_path / "tiny" / "ci"
    error = (root / "no_l1" / "seed0" / "error.txt").read_text()
    assert "Traceback" in error and "simulated failure without L1" in error
    assert not (root / "no_l1" / "seed0" / "metrics.json").exists()
    runs = json.loads((root / "summary.json").read_text())["runs"]
    failed = [r for r in runs if r["status"] == "failed"]
    assert {(r["row"], r["seed"]) for r in failed} == {("no_l1", 0), ("no_l1", 1)}
    assert failed[0]["error"] == "RuntimeError: simulated failure without L1"
    assert sum(r["status"] == "done" for r in runs) == 4
    plan = json.loads((root / "plan.json").read_text())
    assert [r["id"] for r in plan["rows"]] == ["all", "no_l1", "no_mi"] and plan["seeds"] == [0, 1]


def test_dask_cluster_runs_the_grid(tmp_path, fake_runs):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None) as cluster:
        code = ablate_main(args_for(write_grid(tmp_path), tmp_path, "--preset", "ci", "--rows", "all,no_mi",
                                    "--scheduler", cluster.scheduler_address))
    assert code == 0 and len(fake_runs) == 4
    assert all(c["threads"] == ablation._cores() for c in fake_runs)  # one task at a time: all cores
    assert all((Path(c["out_dir"]) / "metrics.json").is_file() for c in fake_runs)


TINY_NOTEBOOK = '''# %% tags=["parameters"]
seed = 0
disabled = []
out_dir = "."
threads = None

# %%
import json, os
from pathlib import Path
if "l1" in disabled:
    raise ValueError("no L1 in this notebook")
tmp = Path(out_dir) / "metrics.json.tmp"
tmp.write_text(json.dumps({"auc": 0.5 + seed / 10, "f1_best": 0.4, "omp": os.environ["OMP_NUM_THREADS"]}))
os.replace(tmp, Path(out_dir) / "metrics.json")
'''


def test_papermill_executes_the_notebook_in_worker_processes(tmp_path, monkeypatch):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONPATH"):
        monkeypatch.setenv(var, os.environ.get(var, ""))  # restored after the test
    (tmp_path / "tiny.py").write_text(TINY_NOTEBOOK)
    notebook = load_notebook(tmp_path / "tiny.ipynb")  # missing .ipynb: converted from the .py
    specs = [RunSpec(row, row, seed, str(tmp_path / row / f"seed{seed}"),
                     {"seed": seed, "disabled": disabled, "out_dir": str(tmp_path / row / f"seed{seed}")})
             for row, seed, disabled in (("all", 0, []), ("all", 1, []), ("no_l1", 0, ["l1"]))]
    outcomes = {(o.row, o.seed): o for o in run_grid(specs, notebook, jobs=2)}
    assert outcomes["all", 1].status == "done" and outcomes["all", 1].auc == pytest.approx(0.6)
    assert json.loads((tmp_path / "all" / "seed0" / "metrics.json").read_text())["omp"] == str(max(1, ablation._cores() // 2))
    executed = json.loads((tmp_path / "all" / "seed1" / "executed.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert outcomes["no_l1", 0].status == "failed" and outcomes["no_l1", 0].error == "ValueError: no L1 in this notebook"
    assert "no L1 in this notebook" in (tmp_path / "no_l1" / "seed0" / "error.txt").read_text()


def test_run_notebook_parameters_match_the_grid_settings():
    import nbformat

    for path in (REPO / "notebooks" / "run.ipynb", REPO / "notebooks" / "run.py"):
        cells = nbformat.reads(load_notebook(path), as_version=4).cells
        [params] = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        names = {line.split("=")[0].strip() for line in params.source.splitlines() if "=" in line}
        assert names == set(SETTINGS) | {"seed", "disabled", "out_dir", "threads"}, path


def test_grid_settings_are_make_config_parameters():
    experiment = pytest.importorskip("cvgad.experiment")
    import inspect

    signature = inspect.signature(experiment.make_config).parameters
    assert set(SETTINGS) | {"seed", "disabled"} <= set(signature)
    for name, (_, default) in SETTINGS.items():
        assert signature[name].default == default, name
