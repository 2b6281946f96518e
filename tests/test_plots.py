"""Every figure function returns a Figure with the expected axes, titles, labels and legends, draws
onto given Axes when asked (as the widgets and the report do), and the house style is applied by a
call, never on import."""

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cvgad.model.scoring import Errors, evaluate  # noqa: E402
from cvgad.workbench import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _images(n: int, channels: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))


def _titled(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _row_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def _column_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def test_image_rows_one_labelled_grid():
    fig = plots.image_rows({"first": _images(3), "second": _images(2, channels=3)}, title="two rows")
    (ax,) = fig.axes
    assert _titled(fig) == ["two rows"] and _row_labels(ax) == ["first", "second"]
    assert _column_labels(ax) == ["1", "2", "3"]
    assert ax.images[0].get_array().shape == (2 + 2 * 34, 2 + 3 * 34, 3)  # 32 px images, 2 px apart
    assert fig.get_size_inches()[0] <= plots.WIDTH


def test_image_grid_rows_of_nrow_labelled_by_image_numbers():
    fig = plots.image_grid(_images(10), nrow=4, title="ten digits")
    (ax,) = fig.axes
    assert _row_labels(ax) == ["1-4", "5-8", "9-10"] and _column_labels(ax) == ["1", "2", "3", "4"]
    fig = plots.image_grid(_images(6), nrow=3, row_labels=["cluster 0", "cluster 1"])
    assert _row_labels(fig.axes[0]) == ["cluster 0", "cluster 1"]


def test_reconstructions_inputs_above_reconstructions_below():
    x = _images(6)
    fig = plots.reconstructions(x, x.float() / 255 * 0.5, title="normal test images")
    (ax,) = fig.axes
    assert _row_labels(ax) == ["input", "reconstruction"] and ax.get_title() == "normal test images"


def _history(steps: int = 30, negative_from: int = 6) -> pd.DataFrame:
    rows = []
    for step in range(steps):
        count = step % 6
        row = {"step": step, "count": count}
        if count <= 4:
            row.update(critic=1.0 / (step + 1), wasserstein=0.1 * step)
        if count <= 3:
            row.update(recon=100.0 / (step + 1), latent=0.5, mi=1.4, recon_2=90.0 / (step + 1), categorical=0.01)
            if step >= negative_from:
                row["negative"] = 0.01
        if count == 5:
            row["generator"] = -0.5
        rows.append(row)
    return pd.DataFrame(rows)


def test_loss_curves_two_panels_with_legends_and_negative_marker():
    history = _history()
    assert plots.negative_start(history) == 6
    fig = plots.loss_curves(history, window=3)
    assert len(fig.axes) == 2
    a, b = fig.axes
    assert a.get_title().startswith("(a)") and b.get_title().startswith("(b)")
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    legend_a = [t.get_text() for t in a.get_legend().get_texts()]
    assert len(legend_a) == 5 and any("negative training on (step 6)" in t for t in legend_a)
    assert len(b.get_legend().get_texts()) == 3


def test_loss_curves_without_negative_training():
    history = _history().drop(columns="negative")
    assert plots.negative_start(history) is None
    fig = plots.loss_curves(history)
    assert len(fig.axes[0].get_legend().get_texts()) == 3


def test_score_histogram_shows_each_group_as_a_density():
    scores, labels = np.array([0, 0, 1, 3, 3, 3.0]), np.array([0, 0, 0, 0, 1, 1])
    fig = plots.score_histogram(scores, labels, bins=3)  # edges 0, 1, 2, 3: each bin 1 wide
    heights = sorted([b.get_height() for b in bars] for bars in fig.axes[0].containers)
    assert heights == [[0.0, 0.0, 1.0], [0.5, 0.25, 0.25]]  # anomalous 2/2 in [2, 3]; normal 2/4, 1/4, 1/4


def test_score_histogram_with_threshold():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0, 1, 50), rng.normal(2, 1, 20)])
    labels = np.r_[np.zeros(50), np.ones(20)].astype(int)
    fig = plots.score_histogram(scores, labels, threshold=1.0)
    (ax,) = fig.axes
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["normal (n = 50)", "anomalous (n = 20)", "threshold 1.000"]


def test_roc_pr_reports_auc_and_floors():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(40), np.ones(10)].astype(int)
    test = Errors(rng.random(50) + labels, rng.random(50) + labels)
    evaluation = evaluate(test, labels, Errors(rng.random(20), rng.random(20)))
    fig = plots.roc_pr(evaluation)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    roc_texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    pr_texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert roc_texts[0] == f"CVGAD, AUC = {evaluation.metrics['auc']:.3f}" and "0.5" in roc_texts[1]
    assert pr_texts[0] == f"CVGAD, AUPRC = {evaluation.metrics['auprc']:.3f}" and "0.200" in pr_texts[1]


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_latent_projection_two_panels(method):
    rng = np.random.default_rng(2)
    classes = np.repeat(np.arange(3), 10)
    codes = rng.normal(size=(30, 8)) + classes[:, None]
    probs = torch.softmax(torch.as_tensor(rng.normal(size=(30, 4))), dim=1)
    fig = plots.latent_projection(torch.as_tensor(codes), classes, probs, method=method, anomaly_class=2)
    assert len(fig.axes) == 2
    a, b = fig.axes
    assert "true class" in a.get_title() and "p(y|z)" in b.get_title()
    assert b.get_xlabel() and a.get_ylabel()
    assert [t.get_text() for t in a.get_legend().get_texts()] == ["class 0", "class 1", "class 2 (anomaly)"]
    clusters = [t.get_text() for t in b.get_legend().get_texts()]
    assert clusters[-1] == "class 2 (anomaly)" and len(clusters) == len(np.unique(probs.argmax(dim=1))) + 1
    # The legends sit outside the data (right of the panels), and the clusters are not dots.
    fig.canvas.draw()
    for ax in (a, b):
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    assert {h.get_paths()[0].vertices.shape for h in b.collections} != {a.collections[0].get_paths()[0].vertices.shape}


def test_latent_projection_rejects_unknown_method():
    with pytest.raises(ValueError, match="pca"):
        plots.project_2d(np.zeros((5, 3)), method="umap")


def _ablation_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": ["all", "no_mi"],
            "auc_mean": [0.8, 0.7],
            "auc_std": [0.05, float("nan")],
            "auc_paper": [0.853, 0.794],
            "f1_best_mean": [0.6, 0.5],
            "f1_best_std": [0.01, 0.02],
            "f1_best_paper": [0.845, 0.781],
            "f1_floor_mean": [0.5, 0.6],
        }
    )


def test_ablation_bars_ours_with_error_bars_beside_the_paper():
    fig = plots.ablation_bars(_ablation_table())
    auc, f1 = fig.axes
    ours, paper = auc.containers[0], auc.containers[1]
    assert [b.get_height() for b in ours] == [0.8, 0.7] and [b.get_height() for b in paper] == [0.853, 0.794]
    assert [t.get_text() for t in auc.get_legend().get_texts()] == [
        "ours: mean ± std over seeds",
        "paper (Table 1)",
        "chance (AUC 0.5)",
    ]
    assert auc.lines[-1].get_ydata()[0] == 0.5 and f1.lines[-1].get_ydata()[0] == pytest.approx(0.55)  # mean floor
    caps = auc.containers[2].lines[2][0].get_segments()  # the error bars, centred on our bars
    np.testing.assert_allclose([seg[:, 0].mean() for seg in caps], [b.get_x() + b.get_width() / 2 for b in ours])
    np.testing.assert_allclose([seg[:, 1] for seg in caps], [[0.75, 0.85], [0.7, 0.7]])  # 0.8 ± 0.05; no std: none
    assert f1.get_xlabel() == "row (loss removed)" and auc.get_ylabel() == "score"


def test_figure_functions_draw_on_given_axes_without_pyplot():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(20), np.ones(10)].astype(int)
    evaluation = evaluate(Errors(rng.random(30) + labels, rng.random(30)), labels, Errors(rng.random(5), rng.random(5)))
    fig = Figure()
    a, b = fig.subplots(1, 2)
    assert plots.score_histogram(evaluation.scores, labels, ax=a) is fig
    assert (
        plots.roc(evaluation, operating_point=(0.1, 0.9), ax=b) is fig
        and "operating point" in b.get_legend_handles_labels()[1]
    )
    draws = {
        "image_grid": lambda f: plots.image_grid(_images(4), ax=f.subplots()),
        "reconstructions": lambda f: plots.reconstructions(_images(4), _images(4), ax=f.subplots()),
        "loss_curves": lambda f: plots.loss_curves(_history(), axes=f.subplots(2, 1)),
        "roc_pr": lambda f: plots.roc_pr(evaluation, axes=f.subplots(1, 2)),
        "latent_projection": lambda f: plots.latent_projection(
            rng.normal(size=(30, 4)), labels, rng.random((30, 3)), axes=f.subplots(1, 2)
        ),
        "neighbours": lambda f: plots.neighbours(_images(1)[0], _images(3), _images(3), ax=f.subplots()),
        "ablation_bars": lambda f: plots.ablation_bars(_ablation_table(), axes=f.subplots(2, 1)),
    }
    for name, draw in draws.items():
        fig = Figure()
        assert draw(fig) is fig and fig._suptitle is None, name  # the caller titles its own figure
    assert plt.get_fignums() == []


def test_house_style_sets_sizes_and_keeps_the_backend():
    backend = matplotlib.get_backend()
    plots.use_house_style()
    assert matplotlib.get_backend() == backend
    assert tuple(plt.rcParams["figure.figsize"]) == (plots.WIDTH, 3.2) and plt.rcParams["savefig.dpi"] >= 150
    assert plots.image_grid(_images(2)).get_size_inches()[0] <= plots.WIDTH
    assert (
        plots.roc_pr(
            evaluate(
                Errors(np.r_[0.0, 1, 2, 3], np.r_[0.0, 1, 2, 3]),
                np.r_[0, 0, 1, 1],
                Errors(np.r_[0.0, 1], np.r_[0.0, 1]),
            )
        ).get_size_inches()[0]
        == plots.WIDTH
    )


def test_neighbours_query_then_nearest_and_farthest():
    imgs = _images(21)
    fig = plots.neighbours(imgs[0], imgs[1:11], imgs[11:21])
    (ax,) = fig.axes
    assert _row_labels(ax) == ["10 nearest", "10 farthest"]
    assert _column_labels(ax) == ["query", *map(str, range(1, 11))]


def _legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_factor_points_one_row_per_factor_with_chance_the_paper_and_oracles_apart():
    table = pd.DataFrame({"factor": ["ours", "best epoch (ORACLE)"], "auc_mean": [0.47, 0.6], "auc_std": [0.02, 0.03]})
    fig = plots.factor_points(table, paper_auc=0.853)
    ax = fig.axes[0]
    assert _row_labels(ax) == ["ours", "best epoch (ORACLE)"] and ax.get_xlabel() == "AUC (test set)"
    assert {"chance (AUC 0.5)", "paper (0.853)", "uses the test labels (oracle)"} <= set(_legend_texts(ax))


def test_auc_by_epoch_and_budget_curve_label_their_axes_and_chance():
    rows = pd.DataFrame({"epoch": [0, 1, 0, 1], "auc": [0.4, 0.5, 0.42, 0.55], "seed": [0, 0, 1, 1], "label": "ours"})
    ax = plots.auc_by_epoch(rows).axes[0]
    assert ax.get_ylabel() == "AUC (test set)" and "chance (AUC 0.5)" in _legend_texts(ax)
    budget = pd.DataFrame({"recipe": "released_cpu", "image_epochs": [20000, 160000], "seed": 0,
                           "auc_released_oracle": [0.5, 0.6], "auc_released_last": [0.48, 0.55],
                           "auc_ours_last": [0.44, 0.5]})  # fmt: skip
    ax = plots.budget_curve(budget, paper_auc=0.853).axes[0]
    assert ax.get_xscale() == "log" and "paper (0.853)" in _legend_texts(ax)
    assert "our training, our evaluation, last epoch" not in _legend_texts(ax)  # no cpu recipe rows


def test_scale_curves_show_both_evaluations_the_untrained_network_chance_and_the_paper():
    curves = pd.DataFrame(
        [{"budget": "100x2", "recipe": m, "seed": s, "epoch": e, "image_epochs": 100 * e, "auc_ours": 0.4 + 0.1 * e,
          "auc_released": 0.45 + 0.1 * e} for m in ("cvgad", "ae") for s in (0, 1) for e in range(3)]
    )  # fmt: skip
    fig = plots.scale_curves(curves, paper_auc=0.853)
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("our evaluation", "released evaluation")
    assert left.get_xscale() == "log" and right.get_ylabel() == "AUC (test set)"
    untrained = [line.get_ydata()[0] for line in right.get_lines() if line.get_label() == "untrained"]
    assert untrained == [pytest.approx(0.45)]  # epoch 0, mean over models and seeds
    texts = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"cvgad", "ae", "100x2", "untrained network", "chance (AUC 0.5)", "paper (0.853)"} <= texts
    plt.close(fig)


def test_paired_dots_one_dot_per_seed_and_a_zero_line():
    runs = pd.DataFrame(
        [{"row": r, "seed": s, "status": "ok", "auc": a} for r, base in (("all", 0.9), ("no_ssim", 0.6)) for s, a in
         enumerate([base, base + 0.02, base - 0.01])]
    )  # fmt: skip
    fig = plots.paired_dots(runs, "all", title="t")
    [ax] = fig.axes
    dots = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert dots and np.allclose(dots[0].get_offsets()[:, 0], [-0.3, -0.3, -0.3])  # no_ssim minus all, per seed
    assert [t.get_text() for t in ax.get_yticklabels()] == ["no_ssim"]
    assert ax.get_legend().get_texts()[0].get_text() == "no difference from `all`"
    plt.close(fig)


def test_importing_the_package_changes_no_style_and_house_style_is_undone_after_its_block():
    script = (
        "import matplotlib as mpl; before = dict(mpl.rcParams)\n"
        "from cvgad.book import widgets, exercises, diagram, glance, latent\n"
        "from cvgad.workbench import formatting, per_cell, plots, report, results, statistics, table1\n"
        "assert dict(mpl.rcParams) == before\n"
        "with plots.house_style():\n"
        "    assert mpl.rcParams['savefig.dpi'] == plots.HOUSE['savefig.dpi'] != before['savefig.dpi']\n"
        "assert dict(mpl.rcParams) == before\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=os.environ | {"MPLBACKEND": "Agg"})
