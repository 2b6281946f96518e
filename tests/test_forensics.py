"""The forensics of issue 9: every evaluation factor from one training, and the tables read from it."""

import json

import pandas as pd
import pytest

from cvgad.cli import build_parser, main
from cvgad.experiment import runs
from cvgad.experiment.experiment import prepare
from cvgad.experiment.params import make_config
from cvgad.model.trainers import trainer_for
from cvgad.workbench import forensics as F


def _curve(aucs, val_errors):
    return pd.DataFrame({"epoch": range(len(aucs)), "auc": aucs, "val_error": val_errors})


def test_each_rule_picks_its_epoch_and_never_the_untrained_one_unless_asked():
    curve = _curve([0.9, 0.6, 0.8, 0.7], [5.0, 3.0, 2.0, 4.0])  # epoch 0 is the untrained network
    assert F.select(curve, "last")["epoch"] == 3
    assert F.select(curve, "untrained")["epoch"] == 0
    assert F.select(curve, "val")["epoch"] == 2  # lowest validation error
    assert F.select(curve, "best_test")["epoch"] == 2  # highest test AUC after training: the oracle
    with pytest.raises(ValueError, match="rule='first' is not valid"):
        F.select(curve, "first")


def _rows(recipe, seed, auc_by_pass):
    """One run's rows: every pass and score, epochs 0-2, AUC rising by 0.1 an epoch from auc_by_pass."""
    return [
        {"recipe": recipe, "seed": seed, "epoch": e, "pass": p, "score": s, "auc": a + 0.1 * e,
         "auprc": 0.5, "f1_best": 0.5, "f1_val": 0.4, "f1_floor": 0.53, "val_error": 1.0 - 0.1 * e}
        for p, a in auc_by_pass.items() for s in F.SCORES for e in range(3)
    ]  # fmt: skip


def test_the_factor_table_pairs_each_factor_with_the_projects_evaluation_by_seed():
    base = {"eval": 0.40, "train_shuffled": 0.40, "train_normals_first": 0.55}
    rows = pd.DataFrame(
        _rows("cpu", 0, base)
        + _rows("cpu", 1, {k: v + 0.02 for k, v in base.items()})
        + _rows("released_cpu", 0, base)
        + _rows("released_cpu", 1, base)
    )
    table = F.factor_table(rows).set_index("factor")
    project = table.loc[F.FACTOR_ROWS[0][0]]
    assert project["auc_mean"] == pytest.approx(0.61) and project["n"] == 2  # last epoch: 0.6 and 0.62
    untrained = table.loc["untrained network (epoch 0)"]
    assert untrained["diff_mean"] == pytest.approx(-0.2) and untrained["epochs"] == "0 0"
    normals_first = table.loc["batch statistics, normals first (released)"]
    assert normals_first["diff_mean"] == pytest.approx(0.15) and normals_first["diff_std"] == pytest.approx(0)


def test_a_setting_given_on_the_command_line_is_read_as_yaml():
    settings = ["negative_threshold=.inf", "train_subset=10000", "negative_gate=absolute"]
    args = build_parser().parse_args(
        ["forensics", "run", "--preset", "cpu", *(f"--set={s}" for s in settings), "--out", "x"]
    )
    assert args.set == [("negative_threshold", float("inf")), ("train_subset", 10000), ("negative_gate", "absolute")]


def test_an_unknown_preset_fails_before_any_training(tmp_path, capsys):
    assert main(["forensics", "run", "--preset", "cpu", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_run_scores_every_pass_and_score_before_and_after_each_epoch_and_is_not_redone(tmp_path):
    cfg = make_config(dataset="digits", anomaly_class=1, epochs=2, width=4, latent_dim=8, train_subset=64,
                      test_subset=60, device="cpu")  # fmt: skip
    rows = F.run(cfg, tmp_path / "cpu" / "seed0")
    assert sorted(rows["epoch"].unique()) == [0, 1, 2]
    assert len(rows) == 3 * len(F.PASSES) * len(F.SCORES)
    assert rows["auc"].between(0, 1).all()
    record = json.loads((tmp_path / "cpu" / "seed0" / runs.RUN_RECORD).read_text())
    assert record["epochs"] == 2 and record["logvar"] == "bounded"
    again = F.run(cfg, tmp_path / "cpu" / "seed0")  # finished: read back, not retrained
    pd.testing.assert_frame_equal(again, rows.reset_index(drop=True), check_dtype=False)
    collected = F.collect(tmp_path)
    assert set(collected["recipe"]) == {"cpu"} and set(collected["seed"]) == {0}


def test_a_run_that_becomes_nan_is_recorded_and_the_next_goes_on(tmp_path, monkeypatch, capsys):
    from cvgad.model.training import NonFiniteLossError

    calls = []

    def fake_run(cfg, folder):
        calls.append(cfg.train.seed)
        if cfg.train.seed == 0:
            raise NonFiniteLossError("loss 'latent' became nan at step 3 (Algorithm 1 counter 3)")

    monkeypatch.setattr(F, "run", fake_run)
    (tmp_path / "ci" / "seed0").mkdir(parents=True)
    assert main(["forensics", "run", "--preset", "ci", "--seeds", "0", "1", "--out", str(tmp_path)]) == 1
    assert calls == [0, 1]
    failed = json.loads((tmp_path / "ci" / "seed0" / runs.FAILED).read_text())
    assert "became nan at step 3" in failed["error"]
    timings = pd.read_csv(tmp_path / "timings.csv")
    assert list(timings["outcome"]) == [failed["error"], "finished"]


def test_a_folder_holding_another_configuration_is_refused_before_training(tmp_path, capsys):
    small = dict(dataset="digits", anomaly_class=1, width=4, latent_dim=8, train_subset=64, test_subset=60)
    F.run(make_config(epochs=1, device="cpu", **small), tmp_path / "cpu" / "seed0")
    with pytest.raises(ValueError, match="holds a run of another configuration"):
        F.run(make_config(epochs=2, device="cpu", **small), tmp_path / "cpu" / "seed0")
    assert F.conflict(make_config(epochs=1, device="cuda", **small), tmp_path / "cpu" / "seed0") is None  # place only


@pytest.mark.parametrize(
    "setting, message",
    [("seed=3", "--set seed: fixed by a forensics run"), ("epoch=3", "unknown key(s) ['epoch']")],
)
def test_a_setting_the_run_fixes_or_does_not_know_is_refused(tmp_path, capsys, setting, message):
    assert main(["forensics", "run", "--preset", "ci", "--set", setting, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_a_study_crosses_its_axes_first_axis_outermost_then_seed(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(
        "preset: ci\nsettings: {epochs: 1}\nseeds: [0, 1]\n"
        "cross:\n  budget:\n    100x1: {train_subset: 100}\n    allx2: {train_subset: null, epochs: 2}\n"
        "  model:\n    cvgad: {model: cvgad}\n    ae: {model: ae}\n"
    )
    planned = F.load_study(spec)
    assert [str(p.folder) for p in planned[:4]] == [
        "100x1/cvgad/seed0", "100x1/ae/seed0", "100x1/cvgad/seed1", "100x1/ae/seed1"
    ]  # fmt: skip
    assert len(planned) == 8
    last = planned[-1]
    assert (last.cfg.data.train_subset, last.cfg.train.epochs, last.seed) == (None, 2, 1)
    assert planned[1].cfg.model.model == "ae"


def test_a_study_with_a_bad_setting_fails_naming_the_run(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text("preset: ci\nseeds: [0]\ncross:\n  model:\n    x: {width: -3}\n")
    with pytest.raises(ValueError, match="x/seed0"):
        F.load_study(spec)


def test_budget_folders_name_images_and_epochs_or_every_image():
    assert F._budget("5000x4") == (5000, 4)
    assert F._budget("allx15") == (-1, 15)
    assert F._budget("timings.csv") == (0, 0)
    assert sorted(["allx15", "20000x8", "5000x4"], key=F._budget_order) == ["5000x4", "20000x8", "allx15"]


def _fake_run(root, budget, recipe, seed, ours, released, n_train=100):
    """A finished run: per epoch (0 = untrained) our AUC and the released one; an autoencoder
    (`ae`) has no FD term, so its released score is -log SSIM + L1 alone."""
    folder = root / budget / recipe / f"seed{seed}"
    folder.mkdir(parents=True)
    score = F.RELEASED_SCORE_NO_MI if recipe == "ae" else F.RELEASED_SCORE
    rows = [{"epoch": e, "pass": "eval", "score": "ssim+l1", "auc": a} for e, a in enumerate(ours)]
    rows += [{"epoch": e, "pass": "train_normals_first", "score": score, "auc": a} for e, a in enumerate(released)]
    pd.DataFrame(rows).to_csv(folder / runs.FACTORS, index=False)
    (folder / runs.RUN_RECORD).write_text(json.dumps({"n_train": n_train, "wall_seconds": 1.0}))


def test_the_scale_tables_read_every_epoch_and_pair_cvgad_with_its_autoencoder_by_seed(tmp_path):
    for seed, shift in enumerate([0.0, 0.02, 0.04]):
        _fake_run(tmp_path, "allx2", "cvgad", seed, [0.3, 0.5 + shift, 0.6 + shift], [0.4, 0.9, 0.7])
        _fake_run(tmp_path, "allx2", "ae", seed, [0.3, 0.5, 0.55], [0.4, 0.6, 0.8])
    table = F.budget_table(tmp_path).set_index(["recipe", "seed"])
    assert table.loc[("cvgad", 1), "auc_ours_last"] == pytest.approx(0.62)
    assert table.loc[("cvgad", 1), "auc_released_oracle"] == pytest.approx(0.9)  # the best epoch
    assert table.loc[("ae", 0), "auc_released_last"] == pytest.approx(0.8)  # its released terms
    assert table.loc[("ae", 0), "train_images"] == 100 and table.loc[("ae", 0), "auc_untrained"] == 0.3
    paired = F.paired_by_budget(F.budget_table(tmp_path), "auc_ours_last").iloc[0]
    assert paired["n"] == 3 and paired["ahead"] == 3
    assert paired["diff_mean"] == pytest.approx(0.07)  # 0.05, 0.07, 0.09
    half = 4.302653 * 0.02 / 3**0.5  # t(2) at 97.5% x std / sqrt(n)
    assert (paired["ci_low"], paired["ci_high"]) == pytest.approx((0.07 - half, 0.07 + half))
    assert paired["wilcoxon_p"] == pytest.approx(0.25)  # 3 pairs of one sign: 2/8
    curves = F.epoch_curves(tmp_path)
    assert len(curves) == 6 * 3 and list(curves[curves["seed"] == 0]["image_epochs"][:3]) == [0, 100, 200]
    _fake_run(tmp_path, "allx4", "cvgad", 0, [0.3, 0.5, 0.6], [0.4, 0.9, 0.7])  # a larger budget, ae not yet run
    later = F.paired_by_budget(F.budget_table(tmp_path), "auc_ours_last").set_index("epochs")
    assert later.loc[4, "n"] == 0 and later.loc[2, "n"] == 3


def test_an_autoencoder_is_scored_on_the_terms_it_has():
    cfg = make_config(dataset="digits", anomaly_class=1, model="ae", epochs=1, width=4, latent_dim=8,
                      train_subset=64, test_subset=60, device="cpu")  # fmt: skip
    dataset, split = prepare(cfg)
    model = trainer_for(cfg.model, cfg.train).scorer
    complexity = {"test": F.png_bits_per_dimension(dataset.images[split.test]),
                  "val": F.png_bits_per_dimension(dataset.images[split.val])}  # fmt: skip
    rows = pd.DataFrame(F.epoch_rows(model, dataset.images, split, complexity, seed=0))
    assert set(rows["score"]) == {"ssim+l1", "logssim+l1", "ssim+l1+complexity"}  # no FD, no cluster means
