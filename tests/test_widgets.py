"""cvgad.book.widgets: the pure functions on hand-computed values, and the widgets driven from code
(set a control's value, click a button) without a browser or a kernel."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("ipywidgets")

from matplotlib.figure import Figure  # noqa: E402

from cvgad.book import widgets as w  # noqa: E402
from cvgad.experiment import runs  # noqa: E402
from cvgad.model.algorithm1 import CVGADTrainer  # noqa: E402
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig  # noqa: E402
from cvgad.model.losses import normal_share_beyond  # noqa: E402
from cvgad.model.scoring import Errors, confusion_at, evaluate  # noqa: E402
from cvgad.workbench import plots  # noqa: E402

torch.set_num_threads(1)
TINY = ModelConfig(latent_dim=8, n_clusters=3, width=4)


# ------------------------------------------------------------------ pure functions
def test_latent_geometry_by_hand():
    assert w.shell_radius(256) == 16.0
    assert normal_share_beyond(2.0, 2) == pytest.approx(math.exp(-2))  # chi with 2 dof: exp(-r^2/2)
    assert normal_share_beyond(w.shell_radius(256), 256) == pytest.approx(0.5, abs=0.05)
    np.testing.assert_allclose(w.latent_point(np.array([1.0, 0.0]), np.array([0.0, 2.0]), 3.0), [1.0, 3.0])
    d = w.random_directions(5, 4, seed=1)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    np.testing.assert_array_equal(d, w.random_directions(5, 4, seed=1))
    pos = w.latent_position(np.array([7.0, 0.0]), np.array([[0.0, 0.0], [10.0, 0.0]]), negative_radius=2.0)
    assert pos["nearest_cluster"] == 1 and pos["distance"] == pytest.approx(3.0)
    assert pos["shells"] == pytest.approx(3 / math.sqrt(2)) and pos["beyond_negative"]
    assert not w.latent_position(np.array([1.0, 0.0]), np.array([[0.0, 0.0]]), 2.0)["beyond_negative"]


def test_agreement_table_and_order_check():
    values = pd.Series({"a": 0.9, "b": 0.8, "c": 0.7})
    table, rho = w.agreement_table(["a", "b", "c"], values)
    assert rho == pytest.approx(1.0) and list(table["rank"]) == [1, 2, 3]
    assert w.agreement_table(["c", "b", "a"], values)[1] == pytest.approx(-1.0)
    assert w.agreement_table(["b", "a", "c"], values)[1] == pytest.approx(0.5)  # 1 - 6*2/(3*8)
    with pytest.raises(ValueError, match="repeated \\['a'\\], missing \\['c'\\]"):
        w.check_order(["a", "a", "b"], ["a", "b", "c"])


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A project folder with ablations/paper_table1.csv and a recorded runs.csv; the working
    directory is its notebooks/ folder, as when the book runs."""
    (tmp_path / "ablations" / "results" / "table1").mkdir(parents=True)
    (tmp_path / "ablations" / "paper_table1.csv").write_text(
        "row,label,f1,auc\nall,use all losses,0.845,0.853\nno_mi,without mutual information loss,0.781,0.794\n"
    )
    runs = pd.DataFrame(
        {
            "row": ["all", "all", "no_mi", "no_mi", "no_mi", "untrained"],  # untrained: not one of the paper's
            "label": ["all"] * 2 + ["no MI"] * 3 + ["untrained"],
            "seed": [0, 1, 0, 1, 2, 0],
            "status": ["ok", "ok", "ok", "ok", "failed", "ok"],
            "auc": [0.8, 0.9, 0.6, 0.7, None, 0.5],
            "f1_best": [0.5] * 6,
        }
    )
    runs.to_csv(tmp_path / "ablations" / "results" / "table1" / "runs.csv", index=False)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    return tmp_path


def test_load_ablation_results_recorded_and_paper_fallback(checkout):
    table, source = w.load_ablation_results()  # the newest runs.csv under ../ablations/results
    assert table.loc["all", "value"] == pytest.approx(0.85) and table.loc["no_mi", "value"] == pytest.approx(0.65)
    assert list(table["n"]) == [2, 2] and list(table["label"]) == ["all", "no MI"] and "recorded" in source
    paper, source = w.load_ablation_results(checkout / "absent.csv", metric="f1_best")
    assert list(paper["value"]) == [0.845, 0.781] and list(paper["n"]) == [0, 0] and "paper" in source
    with pytest.raises(ValueError, match="auc, f1_best"):
        w.load_ablation_results(metric="auprc")  # the paper gives no AUPRC


def test_the_checkout_is_found_from_the_working_directory(checkout, tmp_path_factory, monkeypatch):
    assert runs.checkout() == checkout and runs.checkout(checkout / "notebooks") == checkout
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    with pytest.raises(FileNotFoundError, match="no ablations/ folder in .*elsewhere"):
        w.load_ablation_results()


def test_lab_loss_config():
    cfg = w.lab_loss_config(LossConfig(), {"mi": False, "ssim": True}, {"latent": 2.0})
    assert cfg.disabled == ("mi",) and cfg.latent == 2.0 and cfg.ssim == LossConfig().ssim


# ----------------------------------------------------------------------- widgets
@pytest.fixture(scope="module")
def evaluation():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(60, int), np.ones(40, int)]
    errors = Errors(rng.random(100) * 0.5 + 0.4 * labels, rng.random(100) * 0.2 + 0.1 * labels)
    return evaluate(errors, labels, Errors(rng.random(30) * 0.5, rng.random(30) * 0.2))


def test_threshold_explorer_raising_the_threshold_flags_fewer(evaluation):
    ex = w.ThresholdExplorer(evaluation)
    assert ex.slider.value == pytest.approx(evaluation.metrics["threshold_best"])
    assert ex.stats["f1"] == pytest.approx(evaluation.metrics["f1_best"])
    before, html, png = dict(ex.stats), ex.table.value, ex.image.value
    ex.slider.value = before_t = float(np.quantile(evaluation.scores, 0.9))
    assert ex.stats["flagged"] < before["flagged"] and ex.stats["recall"] < before["recall"]
    assert ex.stats == confusion_at(evaluation.scores, evaluation.labels, before_t)
    assert ex.table.value != html and f"{ex.stats['recall']:.3f}" in ex.table.value and ex.image.value != png
    assert isinstance(ex.static(), Figure)


def test_loss_lab_switching_a_loss_off_removes_its_update():
    images = torch.randint(0, 256, (64, 1, 32, 32), dtype=torch.uint8)
    lab = w.LossLab(images, TINY, steps=4, batch_size=8, n_show=2)
    png = lab.image.value
    lab.button.click()
    assert len(lab.history) == 4 and all("mi" in log for log in lab.last_logs)
    assert lab.trainer.latent_reference is not None  # a press is an epoch for the gate T
    assert lab.image.value != png
    lab.checkboxes["mi"].value = False
    lab.sliders["latent"].value = 2.0
    assert lab.loss_config().disabled == ("mi",) and lab.loss_config().latent == 2.0
    lab.button.click()
    assert len(lab.history) == 8 and [log["step"] for log in lab.last_logs] == [4, 5, 6, 7]
    assert not any("mi" in log for log in lab.last_logs) and "off: mi" in lab.status.value
    assert lab.trainer.loss_cfg.latent == 2.0
    lab.reset_button.click()
    assert lab.history == [] and lab.trainer.steps == 0
    assert isinstance(lab.static(), Figure)


def test_latent_explorer_marker_flips_past_the_negative_radius():
    trainer = CVGADTrainer(TINY, TrainConfig(device="cpu", amp=False))
    ex = w.LatentExplorer(trainer, n_directions=3)
    assert ex.negative_radius == pytest.approx(trainer.radius) and ex.shell == pytest.approx(math.sqrt(8))
    assert not ex.position["beyond_negative"] and "inside" in ex.marker.value
    png = ex.image.value
    ex.radius.value = 1.3 * ex.negative_radius
    assert ex.position["beyond_negative"] and "beyond" in ex.marker.value and ex.image.value != png
    assert ex.position["shells"] == pytest.approx(ex.position["distance"] / math.sqrt(8))
    ex.direction.value = 2
    np.testing.assert_allclose(np.linalg.norm(ex.code() - ex.means[0]), ex.radius.value, rtol=1e-6)
    assert ex.decode(ex.code()).shape == (32, 32) and isinstance(ex.static(), Figure)


def test_ablation_quiz_reveals_spearman_and_rejects_repeats():
    results = pd.DataFrame(
        {"label": ["all", "no MI", "no SSIM"], "value": [0.85, 0.78, 0.72], "n": 0},
        index=pd.Index(["all", "no_mi", "no_ssim"], name="row"),
    )
    quiz = w.AblationQuiz(results, source="test table")
    assert quiz.order() == ["all", "no_mi", "no_ssim"] and quiz.rho is None
    for dropdown, row in zip(quiz.dropdowns, ["no_ssim", "no_mi", "all"], strict=True):
        dropdown.value = row
    quiz.button.click()
    assert quiz.rho == pytest.approx(-1.0) and "-1.00" in quiz.message.value and "no_ssim" in quiz.table.value
    quiz.dropdowns[0].value = "all"  # "all" now twice, "no_ssim" missing
    quiz.button.click()
    assert quiz.rho is None and "repeated" in quiz.message.value and quiz.table.value == ""
    assert list(quiz.ranked().index) == ["all", "no_mi", "no_ssim"]


def test_a_widget_shows_once_with_its_static_state_as_the_fallback(evaluation):
    """Frontends pick the widget view where they can show widgets, the fallback elsewhere; the
    quiz's fallback asks the question without giving the results away."""
    data, metadata = w.ThresholdExplorer(evaluation)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and data["image/png"]
    assert int(metadata["image/png"]["width"]) <= 100 * plots.WIDTH + 50  # at its size, not wider
    results = pd.DataFrame(
        {"label": ["all", "no MI"], "value": [0.853, 0.794], "n": 0}, index=pd.Index(["all", "no_mi"], name="row")
    )
    data, _ = w.AblationQuiz(results, source="test table")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and "no MI" in data["text/html"]
    assert "0.853" not in data["text/html"]


def test_loss_lab_trains_the_cluster_means_at_their_own_learning_rate():
    images = torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8)
    lab = w.LossLab(images, TINY, steps=1, batch_size=8, n_show=2, means_lr=0.03)
    rates = sorted(group["lr"] for group in lab.trainer.opt_cvae.param_groups)
    assert lab.trainer.cfg.means_lr == 0.03 and 0.03 in rates


def test_loss_lab_redraws_after_the_last_step_and_along_the_way_only_for_the_button(monkeypatch):
    images = torch.randint(0, 256, (64, 1, 32, 32), dtype=torch.uint8)
    lab = w.LossLab(images, TINY, steps=5, batch_size=8, n_show=2, redraw_every=2)
    drawn = []
    monkeypatch.setattr(lab, "redraw", lambda: drawn.append(lab.trainer.steps))
    lab.train(5)  # from code: one figure, at the end
    assert drawn == [5]
    lab.button.click()  # the button: every 2 steps, and at the end
    assert drawn == [5, 7, 9, 10]
