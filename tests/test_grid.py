"""Grids with more than one axis: rows that carry settings, and `vary`, crossed with rows and seeds.

Planning and validation need no training; the runner's tests replace papermill with a function
that writes metrics.json at once.
"""

import json
from pathlib import Path

import pytest

from cvgad.cli import main
from cvgad.experiment import runs
from cvgad.experiment.params import make_config
from cvgad.workbench import ablation
from cvgad.workbench.ablation import plan_runs
from cvgad.workbench.grid import load_grid

GRID = """
name: classes
dataset: digits
epochs: 1
width: 16
seeds: [0, 1]
vary: {anomaly_class: [0, 1, 2]}
rows:
  - {id: cvgad, label: CVGAD}
  - {id: ae, label: plain autoencoder, model: ae, latent_dim: 8}
presets:
  ci: {seeds: [0], latent_dim: 32, vary: {anomaly_class: [3, 4]}}
  full: {seeds: [0, 1]}
"""


def write_grid(tmp_path: Path, text: str = GRID) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def fake_runs(monkeypatch):
    """Papermill replaced by a function that writes metrics at once; the calls' parameters are logged."""
    calls = []

    def fake_run_notebook(notebook, output, parameters, threads):
        calls.append(parameters)
        output.write_text("{}")
        auc = 0.5 + 0.1 * parameters["anomaly_class"] / 4
        runs.write_json(output.parent / "metrics.json", {"auc": auc, "f1_best": auc - 0.1})

    monkeypatch.setattr(ablation, "run_notebook", fake_run_notebook)
    monkeypatch.setattr(ablation, "load_notebook", lambda notebook=None: "{}")
    return calls


def test_a_rows_settings_win_over_the_preset_and_the_grid(tmp_path):
    specs = {s.row: s.params for s in plan_runs(load_grid(write_grid(tmp_path)), "ci", tmp_path)}
    assert specs["ae"]["model"] == "ae" and specs["ae"]["latent_dim"] == 8  # the row's, not the preset's 32
    assert specs["cvgad"]["model"] == "cvgad" and specs["cvgad"]["latent_dim"] == 32  # the preset's
    assert specs["ae"]["epochs"] == 1 and specs["ae"]["width"] == 16  # the grid's


def test_vary_crosses_rows_cells_and_seeds_in_folders(tmp_path):
    specs = plan_runs(load_grid(write_grid(tmp_path)), "full", tmp_path / "out")
    assert len(specs) == 2 * 3 * 2
    assert [(s.row, s.cell["anomaly_class"], s.seed) for s in specs[:4]] == [
        ("cvgad", 0, 0),
        ("cvgad", 0, 1),
        ("cvgad", 1, 0),
        ("cvgad", 1, 1),
    ]
    last = specs[-1]
    assert Path(last.run_dir) == tmp_path / "out" / "classes" / "full" / "ae" / "anomaly_class-2" / "seed1"
    assert last.params["anomaly_class"] == 2 and last.params["out_dir"] == last.run_dir  # the notebook gets the value
    assert len({s.run_dir for s in specs}) == len(specs)


def test_a_presets_vary_replaces_the_grids(tmp_path):
    grid = load_grid(write_grid(tmp_path))
    assert grid.vary_for("ci") == {"anomaly_class": [3, 4]} and grid.vary_for("full") == {"anomaly_class": [0, 1, 2]}
    specs = plan_runs(grid, "ci", tmp_path)
    assert sorted((s.row, s.params["anomaly_class"]) for s in specs) == [
        ("ae", 3),
        ("ae", 4),
        ("cvgad", 3),
        ("cvgad", 4),
    ]


def test_two_varied_settings_nest_in_the_order_given(tmp_path):
    text = GRID.replace("vary: {anomaly_class: [0, 1, 2]}", "vary: {anomaly_class: [0, 1], batch_size: [32, 64]}")
    grid = load_grid(write_grid(tmp_path, text))
    specs = plan_runs(grid, "full", tmp_path, rows=["cvgad"], seeds=[0])
    assert [s.cell for s in specs] == [
        {"anomaly_class": 0, "batch_size": 32},
        {"anomaly_class": 0, "batch_size": 64},
        {"anomaly_class": 1, "batch_size": 32},
        {"anomaly_class": 1, "batch_size": 64},
    ]
    assert (
        Path(specs[1].run_dir)
        == tmp_path / "classes" / "full" / "cvgad" / "anomaly_class-0" / "batch_size-64" / "seed0"
    )


def test_without_vary_the_layout_is_row_then_seed(tmp_path):
    text = GRID.replace("vary: {anomaly_class: [0, 1, 2]}\n", "").replace(", vary: {anomaly_class: [3, 4]}", "")
    grid = load_grid(write_grid(tmp_path, text))
    [spec] = plan_runs(grid, "ci", tmp_path, rows=["ae"])
    assert Path(spec.run_dir) == tmp_path / "classes" / "ci" / "ae" / "seed0" and spec.cell == {}
    assert grid.plan("ci", "grid.yaml")["vary"] == {}


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: [anomaly_class]",
            r"vary=\['anomaly_class'\] is not valid; give a mapping",
        ),
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: {anomaly_clas: [0]}",
            r"grid classes: vary: unknown key\(s\) \['anomaly_clas'\]; valid keys: anomaly_class, ",
        ),
        ("vary: {anomaly_class: [0, 1, 2]}", "vary: {seed: [0, 1]}", r"vary: unknown key\(s\) \['seed'\]"),
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: {anomaly_class: []}",
            r"anomaly_class=\[\] is not valid; give a non-empty list",
        ),
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: {anomaly_class: 3}",
            r"anomaly_class=3 is not valid; give a non-empty list",
        ),
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: {anomaly_class: [0, two]}",
            r"anomaly_class='two' has type str; expected int",
        ),
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: {model: [cvgad, svm]}",
            r"model='svm' is not valid; choose one of ae, cvgad, ganomaly, vae",
        ),
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: {anomaly_class: [1, 1]}",
            r"anomaly_class=\[1, 1\] repeats a value",
        ),
        (
            "vary: {anomaly_class: [0, 1, 2]}",
            "vary: {device: ['cuda:0']}",
            r"device='cuda:0' is not valid; it names a folder",
        ),
        (
            "vary: {anomaly_class: [3, 4]}",
            "vary: {anomaly_class: [3, x]}",
            r"preset ci: vary: anomaly_class='x' has type str",
        ),
        ("model: ae,", "model: ae, anomaly_class: 3,", r"row ae: \['anomaly_class'\] also in vary \(preset ci\)"),
        ("model: ae,", "model: svm,", r"row ae: model='svm' is not valid; choose one of ae, cvgad, ganomaly, vae"),
        (
            "model: ae,",
            "model: ae, disabled: [mi],",
            r"row ae, anomaly_class=3: model 'ae' has no loss 'mi' to disable",
        ),
        ("latent_dim: 8}", "latent_dim: eight}", r"row ae: latent_dim='eight' has type str; expected int"),
        ("latent_dim: 8}", "latent_dim: true}", r"row ae: latent_dim=True has type bool; expected int"),
        ("model: ae,", "model: ae, compile: yes please,", r"row ae: compile='yes please' has type str; expected bool"),
        ("model: ae,", "model: ae, compile: true,", r"row ae, anomaly_class=3: compile=True applies to model 'cvgad'"),
        ("model: ae,", "model: ae, bn_at_test: batch,", r"row ae: bn_at_test='batch' is not valid; choose one of eval"),
        ("model: ae,", "model: ae, test_order: sorted,", r"row ae: test_order='sorted' is not valid; choose one of"),
        ("model: ae,", "model: ae, score: ssim+psnr,", r"row ae, anomaly_class=3: score='ssim\+psnr': term 'psnr'"),
        (
            "model: ae,",
            "modle: ae,",
            r"row ae: unknown key\(s\) \['modle'\]; valid keys: .*disabled, .*id, .*label, .*model",
        ),
    ],
)
def test_bad_vary_and_row_settings_get_clear_errors(tmp_path, old, new, message):
    assert old in GRID
    with pytest.raises(ValueError, match=message):
        load_grid(write_grid(tmp_path, GRID.replace(old, new, 1)))


def test_each_cell_is_checked_as_the_run_it_makes_before_anything_runs(tmp_path):
    """n_clusters 0 is a valid int but no valid model: only the cell that has it fails, and says so."""
    text = GRID.replace("vary: {anomaly_class: [3, 4]}", "vary: {n_clusters: [2, 0]}")
    with pytest.raises(ValueError, match=r"preset ci, row cvgad, n_clusters=0: .*n_clusters"):
        load_grid(write_grid(tmp_path, text))


def test_the_plan_records_the_axes_and_the_rows_settings(tmp_path):
    plan = load_grid(write_grid(tmp_path)).plan("full", "grid.yaml")
    assert plan["vary"] == {"anomaly_class": [0, 1, 2]} and plan["seeds"] == [0, 1]
    assert plan["rows"][1] == {
        "id": "ae",
        "label": "plain autoencoder",
        "disabled": [],
        "settings": {"model": "ae", "latent_dim": 8},
    }


def test_ablate_runs_every_cell_and_resumes_per_cell(tmp_path, fake_runs):
    grid_file = write_grid(tmp_path)
    out = tmp_path / "out"
    assert main(["ablate", str(grid_file), "--preset", "full", "--out", str(out)]) == 0
    assert sorted({(c["anomaly_class"], c["model"]) for c in fake_runs}) == [
        (a, m) for a in (0, 1, 2) for m in ("ae", "cvgad")
    ]
    root = out / "classes" / "full"
    assert runs.read_metrics(root / "ae" / "anomaly_class-2" / "seed1")["auc"] == pytest.approx(0.55)
    assert json.loads((root / "plan.json").read_text())["vary"] == {"anomaly_class": [0, 1, 2]}
    fake_runs.clear()
    (root / "cvgad" / "anomaly_class-1" / "seed0" / "metrics.json").unlink()  # killed
    assert main(["ablate", str(grid_file), "--preset", "full", "--out", str(out)]) == 0
    assert [(c["anomaly_class"], c["seed"], c["model"]) for c in fake_runs] == [(1, 0, "cvgad")]
    fake_runs.clear()
    write_grid(tmp_path, GRID.replace("latent_dim: 8}", "latent_dim: 16}"))  # the row's settings changed
    rerun = ["ablate", str(grid_file), "--preset", "full", "--out", str(out), "--seeds", "1"]
    assert main(rerun) == 2  # refused: a record never mixes two configurations
    assert fake_runs == [] and (root / "ae" / "anomaly_class-0" / "seed1" / "metrics.json").exists()
    assert main([*rerun, "--replace"]) == 0  # only the changed row's cells run again
    assert sorted((c["anomaly_class"], c["latent_dim"]) for c in fake_runs) == [(0, 16), (1, 16), (2, 16)]
    summary = json.loads((root / "summary.json").read_text())
    assert {tuple(r["cell"].items()) for r in summary["runs"]} == {(("anomaly_class", a),) for a in (0, 1, 2)}


PROTOCOL_GRID = """
name: protocols
dataset: digits
protocol: one_class
normal_class: 0
seeds: [0]
vary: {outlier_fraction: [0.1, 0.5], normal_class: [0, 1]}
rows:
  - {id: cvgad, label: CVGAD}
"""


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "protocol: one_class",
            "protocol: leave_one_out",
            r"outlier_fraction=0.1 does not apply to protocol leave_one_out",
        ),
        ("normal_class: [0, 1]}", "normal_class: [0, 1], fold: [0, 5]}", r"fold=5 is not valid; use 0 to 4"),
        (
            "vary: {outlier_fraction: [0.1, 0.5], normal_class: [0, 1]}",
            "protocol: coil100\nvary: {n_inliers: [1, 8]}",
            r"n_inliers=8 is not valid; use 1, 4 or 7",
        ),
        (
            "outlier_fraction: [0.1, 0.5]",
            "outlier_fraction: [0.1, 1.5]",
            r"outlier_fraction=1.5 must be None or lie in",
        ),
    ],
)
def test_protocol_settings_in_a_grid_are_checked_before_anything_runs(tmp_path, old, new, message):
    """Tables 2 and 3 vary the protocols' settings; a value the protocol cannot take fails at load time."""
    assert old in PROTOCOL_GRID
    with pytest.raises(ValueError, match=message):
        load_grid(write_grid(tmp_path, PROTOCOL_GRID.replace(old, new, 1)))


def test_published_values_need_method_auc_f1_and_one_setting(tmp_path):
    (tmp_path / "ok.csv").write_text("method,outlier_fraction,auc,f1\nGPND,0.1,0.928,0.968\n")
    (tmp_path / "unvaried.csv").write_text("method,n_inliers,auc,f1\nGPND,1,0.968,0.979\n")
    (tmp_path / "bad.csv").write_text("method,auc,f1\nGPND,0.968,0.979\n")
    text = PROTOCOL_GRID + "published: CSV\n"
    assert load_grid(write_grid(tmp_path, text.replace("CSV", "ok.csv"))).published == [
        {"method": "GPND", "outlier_fraction": 0.1, "auc": 0.928, "f1": 0.968}
    ]
    with pytest.raises(ValueError, match=r"published values are per n_inliers, which the grid does not vary"):
        load_grid(write_grid(tmp_path, text.replace("CSV", "unvaried.csv")))
    with pytest.raises(ValueError, match=r"bad.csv: needs columns method, auc, f1 and exactly one grid setting"):
        load_grid(write_grid(tmp_path, text.replace("CSV", "bad.csv")))


def test_published_values_for_another_dataset_are_left_out_of_the_plan():
    grid = load_grid(Path(__file__).resolve().parents[1] / "ablations" / "table2_oneclass.yaml")
    methods = {p["method"] for p in grid.plan("cpu", "table2_oneclass.yaml")["published"]}
    assert methods == {"GPND (its own paper)"}  # the MNIST reference; the paper's Table 2 is Fashion-MNIST


@pytest.mark.parametrize(
    "name, preset, n_runs",
    [
        ("fig2_mnist", "cpu", 120),
        ("fig3_cifar10", "cpu", 120),
        ("table3_coil100", "full", 60),
        ("table2_oneclass", "cpu", 150),
        ("table1", "released", 24),  # 7 rows of the paper's and `untrained`, 3 seeds
        ("table1", "released_cpu", 24),
    ],
)
def test_the_papers_grids_plan_every_class_model_and_seed(tmp_path, name, preset, n_runs):
    grid = load_grid(Path(__file__).resolve().parents[1] / "ablations" / f"{name}.yaml")
    specs = plan_runs(grid, preset, tmp_path)
    assert len(specs) == n_runs and len({s.run_dir for s in specs}) == n_runs


def test_the_released_preset_sets_what_the_released_code_does():
    grid = load_grid(Path(__file__).resolve().parents[1] / "ablations" / "table1.yaml")
    settings, _ = grid.resolve("released_cpu")
    cfg = make_config(**{k: v for k, v in settings.items() if k != "model"}, model=settings["model"])
    assert (cfg.model.latent_dim, cfg.train.lr, cfg.train.losses.ssim, cfg.train.losses.l1) == (300, 2e-4, 50, 50)
    assert cfg.train.losses.negative_threshold == float("inf") and cfg.train.losses.negative_gate == "absolute"
    assert cfg.train.select == "best_test"
    assert (cfg.evaluation.bn_at_test, cfg.evaluation.test_order) == ("train", "normals_first")
    assert cfg.evaluation.score == "logssim+l1+mi" and cfg.evaluation.score_batch_size == 64
    assert "Not modelled" in grid.presets["released"]["description"]


def test_a_switch_is_written_true_or_false(tmp_path):
    grid = load_grid(write_grid(tmp_path, GRID.replace("{id: cvgad, label: CVGAD}", "{id: cvgad, compile: true}", 1)))
    assert {row.id: row.settings.get("compile") for row in grid.rows} == {"cvgad": True, "ae": None}
