"""Ablation grids and runner: validation, resume, failures, Dask and the real papermill path.

Training is faked: `run_notebook` is replaced by a function that writes metrics.json at once, or
papermill runs a tiny notebook written here; no test trains a network.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cvgad.cli import main
from cvgad.experiment import runs
from cvgad.model.config import LOSS_NAMES
from cvgad.workbench import ablation
from cvgad.workbench.ablation import RunSpec, load_notebook, plan_runs, run_grid
from cvgad.workbench.grid import SETTINGS, load_grid

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


def ablate(grid: Path, out: Path, *extra: str) -> int:
    """`cvgad ablate GRID --out OUT ...`, returning the exit code."""
    return main(["ablate", str(grid), "--out", str(out), *extra])


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
        runs.write_json(output.parent / "metrics.json", {"auc": auc, "f1_best": auc - 0.05})

    monkeypatch.setattr(ablation, "run_notebook", fake_run_notebook)
    return calls


def test_table1_grid_has_the_papers_rows_and_presets():
    grid = load_grid(TABLE1)
    assert [r.id for r in grid.rows] == [
        "all",
        "no_mi",
        "no_latent",
        "no_ssim",
        "no_l1",
        "no_wasserstein",
        "no_negative",
        "untrained",  # not the paper's: the reference every trained row must beat
    ]
    assert grid.row("all").disabled == () and grid.row("untrained").settings == {"epochs": 0}
    assert sorted(d for r in grid.rows for d in r.disabled) == sorted(LOSS_NAMES)
    assert grid.paper["all"] == {"f1": 0.845, "auc": 0.853}
    assert grid.paper["no_wasserstein"] == {"f1": 0.705, "auc": 0.718}
    assert set(grid.presets) == {"ci", "digits", "cpu", "paper", "released", "released_cpu"}
    settings, seeds = grid.resolve("ci")
    assert settings["dataset"] == "digits" and settings["anomaly_class"] == 1 and seeds == [0, 1]
    settings, seeds = grid.resolve("paper")
    assert settings["dataset"] == "cifar10" and settings["anomaly_class"] == 4
    assert settings["train_subset"] is None and len(seeds) >= 3
    assert grid.paper_for("cpu") == (grid.paper, "")
    paper, note = grid.paper_for("ci")  # digits class 1 is not the paper's task: no comparison
    assert paper == {} and "dataset=digits" in note and "dataset=cifar10" in note


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "disabled: [l1]",
            "disabled: [l2]",
            r"unknown loss name 'l2'.*valid: l1, latent, mi, negative, ssim, wasserstein",
        ),
        ("anomaly_class: 1", "anomaly_clas: 1", r"unknown key\(s\) \['anomaly_clas'\]; valid keys: .*anomaly_class"),
        ("epochs: 1,", "epoch: 1,", r"preset ci: unknown key\(s\) \['epoch'\]"),
        ("epochs: 1,", "epochs: '1',", r"epochs='1' has type str; expected int"),
        ("width: 16,", "width: true,", r"width=True has type bool; expected int"),
        ("dataset: digits", "dataset: imagenet", r"dataset='imagenet' is not valid; choose one of"),
        ("seeds: [0, 1]\nrows", "seeds: []\nrows", r"seeds=\[\] is not valid"),
        ("{id: no_mi,", "{id: all,", r"repeat an id"),
        (
            "label: without MI,",
            "label: without MI, colour: red,",
            r"row no_mi: unknown key\(s\) \['colour'\]; valid keys: anomaly_class, .*disabled, .*id, .*label, .*width",
        ),
    ],
)
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
    assert ablate(write_grid(tmp_path), tmp_path, "--preset", "gpu") == 2


def test_plan_lays_out_one_folder_per_row_and_seed(tmp_path):
    grid = load_grid(write_grid(tmp_path))
    specs = plan_runs(
        grid, "ci", tmp_path / "out", rows=["no_mi"], seeds=[3], place={"data_root": "data", "device": "cpu"}
    )
    [spec] = specs
    assert Path(spec.run_dir) == tmp_path / "out" / "tiny" / "ci" / "no_mi" / "seed3"
    assert spec.params["disabled"] == ["mi"] and spec.params["seed"] == 3 and spec.params["epochs"] == 1
    assert spec.params["data_root"] == "data" and spec.params["device"] == "cpu"  # as given: no machine paths
    relative = plan_runs(grid, "ci", Path("results"), rows=["all"], seeds=[0])[0]
    assert relative.params["out_dir"] == str(Path("results/tiny/ci/all/seed0"))
    assert set(spec.params) == set(SETTINGS) | {"seed", "disabled", "out_dir"}


def test_resume_skips_finished_and_redoes_killed_or_changed_runs(tmp_path, fake_runs):
    grid_file = write_grid(tmp_path)
    assert ablate(grid_file, tmp_path, "--preset", "ci", "--rows", "all,no_mi") == 0
    assert len(fake_runs) == 4
    root = tmp_path / "tiny" / "ci"
    killed = root / "no_mi" / "seed1"
    (killed / "metrics.json").unlink()  # killed before the atomic final write: partial files only
    (killed / "history.csv").write_text("epoch,loss\n0,1.0\n")
    fake_runs.clear()
    assert ablate(grid_file, tmp_path, "--preset", "ci", "--rows", "all,no_mi", "--device", "cpu") == 0
    assert [(c["disabled"], c["seed"]) for c in fake_runs] == [(["mi"], 1)]  # a device change alone keeps results
    summary = json.loads((root / "summary.json").read_text())
    assert sorted(r["status"] for r in summary["runs"]) == ["done", "skipped", "skipped", "skipped"]
    assert summary["load_1min_max"] >= summary["load_1min_mean"] >= 0 and summary["jobs"] >= 1
    assert set(summary["provenance"]) == set(runs.PROVENANCE_FIELDS) and summary["provenance"]["threads"] >= 1
    fake_runs.clear()
    write_grid(tmp_path, GRID.replace("epochs: 1,", "epochs: 2,"))  # changed settings: refused, never mixed
    assert ablate(grid_file, tmp_path, "--preset", "ci", "--rows", "all") == 2
    assert fake_runs == [] and (root / "all" / "seed0" / "metrics.json").exists()
    assert ablate(grid_file, tmp_path, "--preset", "ci", "--rows", "all", "--replace") == 0
    assert [c["epochs"] for c in fake_runs] == [2, 2]


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path, fake_runs):
    assert ablate(write_grid(tmp_path), tmp_path, "--preset", "ci") == 1
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
    with distributed.LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        code = ablate(
            write_grid(tmp_path),
            tmp_path,
            "--preset",
            "ci",
            "--rows",
            "all,no_mi",
            "--scheduler",
            cluster.scheduler_address,
        )
    assert code == 0 and len(fake_runs) == 4
    assert all(c["threads"] == ablation._cores() for c in fake_runs)  # one task at a time: all cores
    assert all((Path(c["out_dir"]) / "metrics.json").is_file() for c in fake_runs)


TINY_NOTEBOOK = """# %% tags=["parameters"]
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
"""


def test_papermill_executes_the_notebook_in_worker_processes(tmp_path, monkeypatch):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONPATH"):
        monkeypatch.setenv(var, os.environ.get(var, ""))  # restored after the test
    (tmp_path / "tiny.py").write_text(TINY_NOTEBOOK)
    notebook = load_notebook(tmp_path / "tiny.ipynb")  # missing .ipynb: converted from the .py
    specs = [
        RunSpec(
            row,
            row,
            seed,
            str(tmp_path / row / f"seed{seed}"),
            {"seed": seed, "disabled": disabled, "out_dir": str(tmp_path / row / f"seed{seed}")},
        )
        for row, seed, disabled in (("all", 0, []), ("all", 1, []), ("no_l1", 0, ["l1"]))
    ]
    outcomes = {(o.row, o.seed): o for o in run_grid(specs, notebook, jobs=2)}
    assert outcomes["all", 1].status == "done" and outcomes["all", 1].auc == pytest.approx(0.6)
    assert json.loads((tmp_path / "all" / "seed0" / "metrics.json").read_text())["omp"] == str(
        max(1, ablation._cores() // 2)
    )
    executed = json.loads((tmp_path / "all" / "seed1" / "executed.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert (
        outcomes["no_l1", 0].status == "failed" and outcomes["no_l1", 0].error == "ValueError: no L1 in this notebook"
    )
    assert "no L1 in this notebook" in (tmp_path / "no_l1" / "seed0" / "error.txt").read_text()


def test_run_notebook_takes_every_run_parameter(tmp_path, monkeypatch):
    """The run notebook declares none of the run parameters itself: papermill's values reach the config."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONPATH"):
        monkeypatch.setenv(var, os.environ.get(var, ""))
    out = tmp_path / "run"
    params = {
        "latent_dim": 8,
        "width": 4,
        "n_clusters": 2,
        "epochs": 1,
        "train_subset": 40,
        "test_subset": 60,
        "negative_radius": "literal",
        "disabled": ["mi"],
        "out_dir": str(out),
    }
    ablation.run_notebook(load_notebook(REPO / "notebooks" / "run.ipynb"), tmp_path / "executed.ipynb", params, 1)
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["model"]["latent_dim"], cfg["model"]["width"], cfg["model"]["n_clusters"]) == (8, 4, 2)
    assert cfg["train"]["losses"]["negative_radius"] == "literal" and cfg["train"]["losses"]["disabled"] == ["mi"]
    assert cfg["data"]["train_subset"] == 40 and runs.read_metrics(out) is not None


SLEEPY_NOTEBOOK = """# %% tags=["parameters"]
out_dir = "."

# %%
import time
time.sleep(300)
"""


def test_ctrl_c_stops_workers_and_kernels_and_says_how_to_resume(tmp_path):
    """Ctrl-C on `cvgad ablate --jobs 2`: the runs that had not started are cancelled, the workers and
    their kernels end at once (not at the end of their runs), exit code 130, no traceback."""
    import psutil

    (tmp_path / "sleepy.py").write_text(SLEEPY_NOTEBOOK)
    grid = write_grid(tmp_path, GRID.replace("seeds: [0, 1]}", "seeds: [0, 1, 2]}"))
    command = [
        sys.executable,
        "-m",
        "cvgad",
        "ablate",
        str(grid),
        "--preset",
        "ci",
        "--rows",
        "all",
        "--jobs",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--notebook",
        str(tmp_path / "sleepy.py"),
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a shell that starts a job in the background sets SIGINT to "ignore" for it and its children
        # (as CI may); a terminal's foreground job, which this test stands for, has the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    root = tmp_path / "out" / "tiny" / "ci" / "all"
    deadline = time.time() + 120
    while len(list(root.glob("seed*/executed.ipynb"))) < 2 and time.time() < deadline:
        time.sleep(0.5)  # papermill writes executed.ipynb as the kernel starts running the cells
    time.sleep(3)
    family = psutil.Process(proc.pid).children(recursive=True)
    assert len(family) >= 4, family  # two workers, each with a kernel
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "rerun the same command to resume" in err and "Traceback" not in err
    _, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, alive
    assert not (root / "seed2").exists()  # cancelled before it started


def test_every_run_parameter_has_one_declaration():
    """CLI flags, grid settings and notebook parameters all come from RunParams: they cannot drift."""
    import argparse

    from cvgad.cli import add_param_arguments
    from cvgad.experiment.params import RunParams, defaults

    names = set(RunParams.names())
    train = argparse.ArgumentParser()
    add_param_arguments(train)
    assert {a.dest for a in train._actions} - {"help"} == names
    assert set(SETTINGS) == names - {"seed", "disabled"}
    settings, _ = load_grid(TABLE1).resolve("ci")
    assert {k: v for k, v in defaults().items() if k in SETTINGS}.keys() == settings.keys()
    import nbformat

    for path in (REPO / "notebooks" / "run.ipynb", REPO / "notebooks" / "run.py"):
        cells = nbformat.reads(load_notebook(path), as_version=4).cells
        [params] = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        declared = {
            line.split("=")[0].strip()
            for line in params.source.splitlines()
            if "=" in line and not line.startswith("#")
        }
        assert declared <= names | {"out_dir", "threads"}, path
        assert any("RunParams.from_mapping(globals())" in c.source for c in cells), path


def test_a_recorded_run_counts_as_finished_only_for_the_recipe_it_was_trained_with(tmp_path):
    """Table 1's `cpu` record, made with today's recipe, is finished for today's specs. A run whose
    params.json predates a setting whose default changed (runs.BEFORE: the log-variance head, the
    gate) was trained with the old value: it counts for that value, not for today's, so a rerun
    retrains; a setting added later at its default (`compile`) changes nothing."""
    specs = plan_runs(load_grid(TABLE1), "cpu", REPO / "ablations" / "results", place={"data_root": "../shared/data"})
    assert len(specs) == 24 and all(ablation.finished_metrics(spec) is not None for spec in specs)
    spec = specs[0]
    older = tmp_path / "run"
    older.mkdir()
    shutil.copy(Path(spec.run_dir) / "metrics.json", older)
    params = json.loads((Path(spec.run_dir) / "params.json").read_text())
    for key in ("logvar", "negative_gate", "compile"):  # not yet settings when it ran
        del params[key]
    (older / "params.json").write_text(json.dumps(params))
    today = RunSpec(spec.row, spec.label, spec.seed, older, spec.params)
    as_trained = RunSpec(
        spec.row, spec.label, spec.seed, older, spec.params | {"logvar": "linear", "negative_gate": "absolute"}
    )
    assert ablation.finished_metrics(today) is None
    assert ablation.finished_metrics(as_trained) is not None


def test_recorded_results_hold_no_machine_paths():
    import re

    machine_path = re.compile(r"(?<![\w.])/(?:work|home|root|tmp|Users|mnt)/")
    for folder in ("ablations/results", "benchmarks/results", "notebooks"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".json", ".csv", ".md", ".ipynb"):
                assert not machine_path.search(path.read_text()), path
