"""Figures for the notebooks, the widgets and the ablation report, in the manner of the paper's Figs. 2-9.

Every function returns the `matplotlib.figure.Figure` it drew on, with titles, labelled axes and,
where several things are drawn, a legend. Given `ax` (or `axes`, or `fig`), a function draws
there, so a widget or a report can place it in a figure of its own; otherwise it makes a pyplot
figure, which a notebook shows with `plt.show()`. Importing this module changes no style: a
notebook calls `use_house_style()` once, and a report draws inside `house_style()`. A
figure-wide `title` is set only on a figure the function made. Images are uint8 (0-255) or
float (0-1) tensors or arrays (N, C, H, W).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid

from cvgad.atomic import atomic_write
from cvgad.model.networks import as_float_images
from cvgad.workbench.formatting import cell_name, settings_name
from cvgad.workbench.results import by_cell

#: Width (inches) of every figure: at the screen's 100 dpi it fits the book's text column
#: (688 px in a 1280-px window), legends placed outside the axes included.
WIDTH = 6.4
#: The house style's rcParams: readable type at that width, 150 dpi when a figure is saved.
HOUSE = {
    "figure.figsize": (WIDTH, 3.2),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 11,
}
#: Normal and anomalous images have the same colours in every figure (seaborn's colour-blind palette).
NORMAL, ANOMALOUS = sns.color_palette("colorblind")[0], sns.color_palette("colorblind")[3]

#: Columns of `Trainer.history_frame()` drawn in the two panels of `loss_curves` (Fig. 8).
CVAE_LOSSES = ("recon", "latent", "mi", "negative")
WGAN_LOSSES = ("critic", "wasserstein", "generator")
LOSS_LABELS = {
    "recon": "reconstruction (w·(−log SSIM) + w·L1)",
    "latent": "latent (nats per dimension)",
    "mi": "mutual information (FD cross-entropy)",
    "negative": "negative (SSIM hinge)",
    "critic": "critic loss $L_D$ (eq. 15)",
    "wasserstein": "Wasserstein estimate",
    "generator": "generator loss $L_G$ (eq. 13)",
}


def _set_house_theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", rc=HOUSE)


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """The house style's theme for the `with` block only (a report's figure saved to a file); the
    rcParams are restored afterwards."""
    with plt.rc_context():
        _set_house_theme()
        yield


def use_house_style() -> None:
    """Seaborn's white grid, the colour-blind palette and the sizes of `HOUSE` for every later
    figure, so the book's figures look alike. The backend stays as it is; in IPython the inline
    backend draws at twice `figure.dpi` and shows the figure at its size in inches ("retina"),
    so a figure of `WIDTH` fits the book's column at 200 dpi with its type at the stated sizes."""
    _set_house_theme()
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # no IPython: nothing is shown inline
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def save_figure(path: str | Path, figsize: tuple[float, float], title: str, draw: Callable[[Figure], Any]) -> None:
    """`draw` onto a bare Figure of `figsize` in the house style, titled `title`, and save it whole
    to `path` (a report's chart): no pyplot backend is changed."""
    with house_style():
        fig = Figure(figsize=figsize, layout="constrained")
        draw(fig)
        fig.suptitle(title)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=HOUSE["savefig.dpi"]))


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A new pyplot figure (so notebooks show it) with constrained layout, and its Axes."""
    return plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", **kwargs)


def root_figure(ax: Axes) -> Figure:
    """The Figure `ax` is drawn in, through any SubFigure."""
    fig = ax.figure
    return fig if isinstance(fig, Figure) else fig.figure


def _legend(ax: Axes, *artists: Artist, **kwargs: Any) -> None:
    """One legend without a title: the entries seaborn put in `ax`'s legend, then `artists`."""
    seaborn_legend = ax.get_legend()
    if seaborn_legend is None:
        raise ValueError("no legend to extend: draw with seaborn (hue=...) first")
    entries = zip(seaborn_legend.legend_handles, seaborn_legend.get_texts(), strict=True)
    shown = [(handle, text.get_text()) for handle, text in entries if handle is not None]
    handles: list[Artist] = [handle for handle, _ in shown] + list(artists)
    ax.legend(handles, [label for _, label in shown] + [str(a.get_label()) for a in artists], **kwargs)


#: Pixels of white between the images of a grid, and the width (inches) kept for its row labels.
PAD, ROW_LABELS = 2, 1.3


def _grid_size(nrows: int, ncols: int) -> tuple[float, float]:
    """Width and height (inches) of a titled grid: square images of at most 0.6 in, within the house width."""
    side = min(0.6, (WIDTH - ROW_LABELS) / max(1, ncols))
    return side * ncols + ROW_LABELS, side * nrows + 0.7


def image_rows(
    rows: Mapping[str, torch.Tensor | np.ndarray],
    title: str = "",
    column_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The book's one image-grid style: a row of images per entry of `rows`, labelled on the left
    by its key, the columns numbered from 1 (or labelled by `column_labels`) above."""
    tensors = [as_float_images(v).detach().cpu().clamp(0, 1) for v in rows.values()]
    ncols, channels = max(len(t) for t in tensors), max(t.shape[1] for t in tensors)
    height, width = tensors[0].shape[2:]
    padded = [
        torch.cat([t.expand(-1, channels, -1, -1), torch.ones(ncols - len(t), channels, height, width)])
        for t in tensors
    ]
    grid = make_grid(torch.cat(padded), nrow=ncols, padding=PAD, pad_value=1.0)
    if ax is None:
        _, ax = new_figure(_grid_size(len(tensors), ncols))
    ax.imshow(grid.permute(1, 2, 0).numpy(), vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([PAD + r * (height + PAD) + height / 2 for r in range(len(tensors))], list(rows))
    labels = list(column_labels) if column_labels is not None else [str(c + 1) for c in range(ncols)]
    ax.set_xticks([PAD + c * (width + PAD) + width / 2 for c in range(ncols)], labels)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.grid(False)
    ax.spines[:].set_visible(False)
    ax.set_title(title)
    return root_figure(ax)


def image_grid(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    title: str = "images",
    row_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """`images` in rows of `nrow` (`image_rows`), the rows labelled by `row_labels` or by the
    numbers of their first and last image."""
    n, nrow = len(images), max(1, nrow)
    starts = range(0, n, nrow)
    labels = row_labels or [f"{s + 1}-{min(n, s + nrow)}" for s in starts]
    return image_rows({label: images[s : s + nrow] for label, s in zip(labels, starts, strict=True)}, title, ax=ax)


def reconstructions(
    x: torch.Tensor | np.ndarray,
    recon: torch.Tensor | np.ndarray,
    title: str = "inputs and reconstructions",
    ax: Axes | None = None,
) -> Figure:
    """Inputs above, their reconstructions below (Figs. 4, 5 and 9), in one grid (`image_rows`)."""
    return image_rows({"input": x, "reconstruction": recon}, title, ax=ax)


def smooth(values: pd.Series, window: int) -> pd.Series:
    """Centred moving average over the non-missing values of a loss column."""
    v = values.dropna()
    return v.rolling(window, center=True, min_periods=1).mean()


def negative_start(history: pd.DataFrame) -> int | None:
    """The first step at which negative training ran (the gate T was open), or None."""
    if "negative" not in history or history["negative"].isna().all():
        return None
    return int(history.loc[history["negative"].notna(), "step"].iloc[0])


def loss_curves(
    history: pd.DataFrame,
    window: int = 5,
    title: str = "training losses (cf. Fig. 8)",
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Fig. 8: (a) the CVAE's losses above (b) the WGAN-GP's, each smoothed over `window` logged values.

    `history` is `Trainer.history_frame()` (one row per step, NaN where an update did not run).
    Panel (a) uses a symmetric log scale, as the losses differ by orders of magnitude; a dotted
    line marks the step at which negative training first ran.
    """
    if axes is None:
        fig, axes = new_figure((WIDTH, 5.4), 2, 1)
        fig.suptitle(title)
    ax_a, ax_b = axes
    for ax, names, panel in ((ax_a, CVAE_LOSSES, "(a) CVAE"), (ax_b, WGAN_LOSSES, "(b) WGAN-GP")):
        for name in names:
            if name in history and history[name].notna().any():
                s = smooth(history.set_index("step")[name], window)
                ax.plot(s.index, s.values, label=LOSS_LABELS[name])
        ax.set(title=panel, xlabel="step (batch)", ylabel="loss (smoothed)" if window > 1 else "loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_a.set_yscale("symlog", linthresh=1e-2)
    start = negative_start(history)
    if start is not None:
        ax_a.axvline(start, color="grey", linestyle=":", label=f"negative training on (step {start})")
    ax_b.axhline(0, color="lightgrey", linewidth=0.8)
    for ax in (ax_a, ax_b):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return root_figure(ax_a)


def score_histogram(
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float | None = None,
    title: str = "anomaly scores",
    bins: int = 40,
    ax: Axes | None = None,
) -> Figure:
    """Score distributions of normal (label 0) and anomalous (label 1) images, each as a density
    (each integrates to 1, so groups of different sizes compare), with the threshold if given."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    if ax is None:
        _, ax = new_figure((WIDTH, 3.2))
    groups = {value: f"{name} (n = {np.sum(labels == value)})" for value, name in ((0, "normal"), (1, "anomalous"))}
    present = [value for value in groups if np.any(labels == value)]
    sns.histplot(
        x=scores,
        hue=pd.Series(labels).map(groups),
        hue_order=[groups[v] for v in present],
        palette=[(NORMAL, ANOMALOUS)[v] for v in present],
        bins=np.histogram_bin_edges(scores, bins=bins),
        stat="density",
        common_norm=False,
        alpha=0.55,
        ax=ax,
    )
    lines = (
        []
        if threshold is None
        else [ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")]
    )
    _legend(ax, *lines)
    ax.set(xlabel="anomaly score (higher = more anomalous)", ylabel="density (per group)", title=title)
    return root_figure(ax)


def roc(
    evaluation, title: str = "ROC", operating_point: tuple[float, float] | None = None, ax: Axes | None = None
) -> Figure:
    """The ROC curve with its AUC and the chance diagonal; `operating_point` = (FPR, TPR) marks
    one threshold. `evaluation` is a `cvgad.model.scoring.Evaluation`."""
    if ax is None:
        _, ax = new_figure((WIDTH / 2, 3.4))
    fpr, tpr = evaluation.roc()
    ax.plot(fpr, tpr, label=f"CVGAD, AUC = {evaluation.metrics['auc']:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance, AUC = 0.5")
    if operating_point is not None:
        ax.plot(*operating_point, "o", color="black", label="operating point")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right")
    return root_figure(ax)


def precision_recall(evaluation, title: str = "precision-recall", ax: Axes | None = None) -> Figure:
    """The precision-recall curve with its AUPRC and the floor p (the anomaly share)."""
    if ax is None:
        _, ax = new_figure((WIDTH / 2, 3.4))
    precision, recall = evaluation.pr()
    p = float(np.mean(evaluation.labels))
    ax.plot(recall, precision, label=f"CVGAD, AUPRC = {evaluation.metrics['auprc']:.3f}")
    ax.axhline(p, color="grey", linestyle="--", label=f"floor (anomaly share) = {p:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="best")
    return root_figure(ax)


def roc_pr(evaluation, title: str = "ROC and precision-recall curves", axes: Sequence[Axes] | None = None) -> Figure:
    """(a) ROC with the chance diagonal, (b) precision-recall with the floor p (the anomaly share).

    `evaluation` is a `cvgad.model.scoring.Evaluation`; AUC and AUPRC are given in the legends.
    """
    if axes is None:
        fig, axes = new_figure((WIDTH, 3.6), 1, 2)
        fig.suptitle(title)
    roc(evaluation, title="(a) ROC", ax=axes[0])
    precision_recall(evaluation, title="(b) precision-recall", ax=axes[1])
    return root_figure(axes[0])


def project_2d(codes: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Codes (N, d) projected to (N, 2) by PCA or t-SNE (scikit-learn)."""
    codes = np.asarray(codes, float)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(codes)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(
            n_components=2, init="pca", perplexity=min(30.0, max(2.0, (len(codes) - 1) / 3)), random_state=seed
        ).fit_transform(codes)
    raise ValueError(f"method={method!r} is not valid; choose 'pca' or 'tsne'")


#: Marker shapes of the clusters in `latent_projection` (the classes are all dots): a shape and a
#: colour of its own palette tell a cluster from a class at a glance.
CLUSTER_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p")


def _outside_legend(ax: Axes, n: int) -> None:
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        markerscale=1.6,
        frameon=False,
        ncol=2 if n > 10 else 1,
        borderaxespad=0.0,
    )


def latent_projection(
    codes: np.ndarray | torch.Tensor,
    classes: np.ndarray,
    probs: np.ndarray | torch.Tensor,
    method: str = "pca",
    anomaly_class: int | None = None,
    title: str = "latent codes in 2-D",
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Two panels of the same 2-D projection, legends outside the data: (a) the true classes as
    coloured dots, (b) the clusters argmax p(y|z) as shapes in another palette. The anomalous
    class is drawn as black crosses in both, so that a reader sees where it lands."""
    codes = torch.as_tensor(codes).detach().cpu().numpy()
    probs = torch.as_tensor(probs).detach().cpu().numpy()
    classes = np.asarray(classes)
    xy = project_2d(codes, method)
    if axes is None:
        fig, axes = new_figure((WIDTH, 6.6), 2, 1, sharex=True, sharey=True)
        fig.suptitle(f"{title} ({method.upper() if method == 'pca' else 't-SNE'})")
    ax_a, ax_b = axes
    anomalous = classes == anomaly_class
    normal_classes = [int(c) for c in np.unique(classes[~anomalous])]
    for colour, c in zip(sns.color_palette("colorblind", len(normal_classes)), normal_classes, strict=True):
        at = classes == c
        ax_a.scatter(xy[at, 0], xy[at, 1], s=8, alpha=0.7, lw=0, color=colour, label=f"class {c}")
    clusters = [int(k) for k in np.unique(probs.argmax(axis=1))]
    assigned = probs.argmax(axis=1)
    palette = sns.color_palette("dark", len(clusters))
    for i, k in enumerate(clusters):
        at = (assigned == k) & ~anomalous
        marker = CLUSTER_MARKERS[i % len(CLUSTER_MARKERS)]
        ax_b.scatter(xy[at, 0], xy[at, 1], s=10, alpha=0.7, lw=0, color=palette[i], marker=marker, label=f"cluster {k}")
    for ax in (ax_a, ax_b):
        if anomalous.any():
            ax.scatter(
                xy[anomalous, 0],
                xy[anomalous, 1],
                s=12,
                lw=0.7,
                color="k",
                marker="x",
                label=f"class {anomaly_class} (anomaly)",
            )
    _outside_legend(ax_a, len(normal_classes) + 1)
    _outside_legend(ax_b, len(clusters) + 1)
    axis = "PC" if method == "pca" else "t-SNE "
    ax_a.set(title="(a) true class; anomalies as black crosses", ylabel=f"{axis}2")
    ax_b.set(
        title="(b) cluster argmax p(y|z); anomalies as black crosses",
        xlabel=f"{axis}1",
        ylabel=f"{axis}2",
    )
    return root_figure(ax_a)


def neighbours(
    query: torch.Tensor | np.ndarray,
    near: torch.Tensor | np.ndarray,
    far: torch.Tensor | np.ndarray,
    title: str = "neighbours in latent space (cf. Fig. 7)",
    ax: Axes | None = None,
) -> Figure:
    """Fig. 7: a query image, then its nearest (top row) and its farthest (bottom row) images in
    latent space, nearest first (`image_rows`)."""
    query = as_float_images(query)
    query = query[None] if query.dim() == 3 else query
    rows = {
        f"{len(near)} nearest": torch.cat([query, as_float_images(near)]),
        f"{len(far)} farthest": torch.cat([query, as_float_images(far)]),
    }
    columns = ["query", *(str(i + 1) for i in range(max(len(near), len(far))))]
    return image_rows(rows, title, column_labels=columns, ax=ax)


def ablation_bars(
    table: pd.DataFrame, title: str = "ablation: ours beside the paper", axes: Sequence[Axes] | None = None
) -> Figure:
    """Per row of an ablation table (`cvgad.workbench.table1.aggregate`): our mean ± std over seeds beside the
    paper's value, (a) AUC with the chance level 0.5, (b) best-threshold F1 with the F1 floor."""
    if axes is None:
        fig, axes = new_figure((WIDTH, 5.4), 2, 1, sharex=True)
        fig.suptitle(title)
    ours, paper = "ours: mean ± std over seeds", "paper (Table 1)"
    panels = (("auc", "(a) AUC"), ("f1_best", "(b) F1, best threshold (paper's metric)"))
    for ax, (metric, name) in zip(axes, panels, strict=True):
        has_paper = bool(table[f"{metric}_paper"].notna().any())
        bars = pd.concat(
            [
                pd.DataFrame({"row": table["row"], "value": table[f"{metric}_mean"], "source": ours}),
                pd.DataFrame({"row": table["row"], "value": table[f"{metric}_paper"], "source": paper}),
            ],
            ignore_index=True,
        )
        sns.barplot(
            bars,
            x="row",
            y="value",
            hue="source",
            order=list(table["row"]),
            hue_order=[ours, paper][: 1 + has_paper],
            palette=["C0", "0.6"][: 1 + has_paper],
            errorbar=None,
            ax=ax,
        )
        dodge = 0.2 if has_paper else 0.0  # seaborn's bars of two hues share a width of 0.8
        ax.errorbar(
            np.arange(len(table)) - dodge,
            table[f"{metric}_mean"],
            yerr=table[f"{metric}_std"].fillna(0),
            fmt="none",
            ecolor="black",
            capsize=3,
        )
        if metric == "f1_best":
            line = ax.axhline(
                table["f1_floor_mean"].mean(), color=ANOMALOUS, ls="--", lw=1, label="F1 floor (flag everything)"
            )
        else:
            line = ax.axhline(0.5, color=ANOMALOUS, ls=":", lw=1, label="chance (AUC 0.5)")
        _legend(ax, line, loc="upper left", ncol=3)  # above the bars, which stay below 1
        ax.set(title=name, xlabel="", ylabel="score", ylim=(0, 1.2))
    axes[-1].set_xlabel("row (loss removed)")
    plt.setp(axes[-1].get_xticklabels(), rotation=30, ha="right")
    return root_figure(axes[0])


def cell_bars(runs: pd.DataFrame, vary: Sequence[str], dataset: str | None = None, ax: Axes | None = None) -> Figure:
    """The paper's Figs. 2 and 3: per cell of the varied settings (x; classes by name where `dataset`
    has names), one bar per row, the AUC's mean ± std over seeds, and chance (AUC 0.5) dashed.
    Draws into `ax`, else into a new pyplot figure in the house style."""
    if ax is None:
        _, ax = new_figure((WIDTH, 3.6))
    ordered = by_cell(runs, vary)
    names = [
        cell_name(dict(zip(vary, values, strict=True)), dataset)
        for values in zip(*(ordered[k] for k in vary), strict=True)
    ]
    shown = ordered.assign(cell=names, auc=pd.to_numeric(ordered["auc"], errors="coerce"))
    sns.barplot(
        shown[shown["status"] == "ok"],
        x="cell",
        y="auc",
        hue="label",
        order=list(dict.fromkeys(names)),
        hue_order=list(dict.fromkeys(runs["label"])),
        errorbar="sd",
        err_kws={"linewidth": 1},
        capsize=0.2,
        ax=ax,
    )
    ax.axhline(0.5, color="0.3", ls="--", lw=1, label="chance (AUC 0.5)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, frameon=False)
    ax.set(xlabel=settings_name(vary), ylabel="AUC (mean ± std over seeds)", ylim=(0, 1.05))
    if max(map(len, names), default=0) > 3:
        ax.tick_params(axis="x", labelrotation=30)
    return root_figure(ax)


def _reference_lines(ax: Axes, paper_auc: float | None, vertical: bool = False) -> list[Artist]:
    """The chance level (AUC 0.5) and, where given, the paper's AUC, as lines across `ax`."""
    line = ax.axvline if vertical else ax.axhline
    lines: list[Artist] = [line(0.5, color="black", ls=":", lw=1, label="chance (AUC 0.5)")]
    if paper_auc is not None:
        lines.append(line(paper_auc, color="0.4", ls="--", lw=1, label=f"paper ({paper_auc:.3f})"))
    return lines


def factor_points(
    table: pd.DataFrame,
    paper_auc: float | None = None,
    title: str = "the gap, factor by factor",
    ax: Axes | None = None,
) -> Figure:
    """Per factor of `cvgad.workbench.forensics.factor_table`: the AUC's mean ± std over seeds (one point
    per factor, top to bottom in the table's order), with chance and the paper's AUC."""
    if ax is None:
        fig, ax = new_figure((WIDTH, 0.3 * len(table) + 1.2))
        fig.suptitle(title)
    y = np.arange(len(table))
    oracle = table["factor"].str.contains("ORACLE")
    for mask, colour, label in (
        (~oracle, "C0", "mean ± std over seeds"),
        (oracle, "C1", "uses the test labels (oracle)"),
    ):
        ax.errorbar(table["auc_mean"][mask], y[mask], xerr=table["auc_std"][mask].fillna(0), fmt="o", color=colour,
                    capsize=3, label=label)  # fmt: skip
    _reference_lines(ax, paper_auc, vertical=True)
    ax.set_yticks(y, table["factor"])
    ax.invert_yaxis()
    ax.set(xlabel="AUC (test set)", xlim=(0.0, 1.0))
    ax.legend(loc="upper center", bbox_to_anchor=(0.3, -0.12 * 14 / (len(table) + 2)), ncol=2)
    return root_figure(ax)


def paired_dots(
    runs: pd.DataFrame, reference: str = "all", title: str = "AUC paired by seed", ax: Axes | None = None
) -> Figure:
    """Per row of `runs` (`cvgad.workbench.results.collect_runs`' lines): its AUC minus `reference`'s for the
    same seed, one dot per seed and the mean as a bar, with no difference (0) as a line."""
    ok = runs[runs["status"] == "ok"]
    ref = ok[ok["row"] == reference].set_index("seed")["auc"].astype(float)
    diffs = ok[ok["row"] != reference].assign(
        diff=lambda d: d["auc"].astype(float).to_numpy() - ref.reindex(d["seed"]).to_numpy()
    )
    if ax is None:
        fig, ax = new_figure((WIDTH, 0.35 * diffs["row"].nunique() + 1.3))
        fig.suptitle(title)
    sns.stripplot(diffs, x="diff", y="row", color="C0", alpha=0.6, jitter=0.15, ax=ax)
    sns.pointplot(diffs, x="diff", y="row", color="black", errorbar=None, markers="|", markersize=14,
                  linestyles="none", ax=ax)  # fmt: skip
    line = ax.axvline(0, color="black", ls=":", lw=1, label=f"no difference from `{reference}`")
    ax.set(xlabel=f"AUC minus `{reference}`'s AUC, same seed (dots: seeds; bar: mean)", ylabel="")
    ax.legend(handles=[line], loc="upper left")
    return root_figure(ax)


def auc_by_epoch(rows: pd.DataFrame, title: str = "test AUC after each epoch", ax: Axes | None = None) -> Figure:
    """AUC against epoch (0: untrained), mean and 95% interval over seeds, one line per `label`."""
    if ax is None:
        fig, ax = new_figure((WIDTH, 4.0))
        fig.suptitle(title)
    sns.lineplot(rows, x="epoch", y="auc", hue="label", marker="o", errorbar=("ci", 95), ax=ax)
    _legend(ax, *_reference_lines(ax, None), loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    ax.set(xlabel="epoch (0: untrained network)", ylabel="AUC (test set)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return root_figure(ax)


def budget_curve(
    table: pd.DataFrame,
    paper_auc: float | None = None,
    title: str = "AUC against training budget",
    ax: Axes | None = None,
) -> Figure:
    """`cvgad.workbench.forensics.budget_table`: AUC against images x epochs (log scale), each seed a point,
    the mean a line: the released training read with the released evaluation (best epoch, an
    oracle, and last epoch) and with ours, and this project's training with ours."""
    if ax is None:
        fig, ax = new_figure((WIDTH, 4.4))
        fig.suptitle(title)
    views = {
        ("released_cpu", "auc_released_oracle"): "released training + evaluation, best epoch (oracle)",
        ("released_cpu", "auc_released_last"): "released training + evaluation, last epoch",
        ("released_cpu", "auc_ours_last"): "released training, our evaluation, last epoch",
        ("cpu", "auc_ours_last"): "our training, our evaluation, last epoch",
    }
    long = pd.concat(
        [
            table[table["recipe"] == recipe].assign(view=label, auc=table[column])
            for (recipe, column), label in views.items()
        ],
        ignore_index=True,
    )
    order = [label for label in views.values() if label in set(long["view"])]
    sns.lineplot(long, x="image_epochs", y="auc", hue="view", hue_order=order, marker="o", errorbar=None, ax=ax)
    sns.scatterplot(long, x="image_epochs", y="auc", hue="view", hue_order=order, legend=False, alpha=0.5, s=18, ax=ax)
    _legend(ax, *_reference_lines(ax, paper_auc), loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    ax.set(xscale="log", xlabel="training images × epochs (log scale)", ylabel="AUC (test set)", ylim=(0.3, 1.05))
    return root_figure(ax)


def scale_curves(curves: pd.DataFrame, paper_auc: float | None = None, title: str = "AUC against training") -> Figure:
    """`cvgad.workbench.forensics.epoch_curves`: per evaluation a panel (ours; the released one,
    whose best epoch is an oracle), AUC after every epoch against training images x epochs (log
    scale), mean over seeds, one line per model and budget (colour: model; marker: budget), and
    the untrained network (epoch 0, mean over seeds) as a line."""
    fig, axes = new_figure((WIDTH, 4.4), 1, 2, sharey=True)
    fig.suptitle(title)
    trained = curves[curves["epoch"] > 0].rename(columns={"recipe": "model"})
    panels = {"auc_ours": "our evaluation", "auc_released": "released evaluation"}
    for ax, (column, label) in zip(axes, panels.items(), strict=True):
        mean = trained.groupby(["model", "budget", "epoch"], sort=False)[[column, "image_epochs"]].mean()
        sns.lineplot(mean.reset_index(), x="image_epochs", y=column, hue="model", style="budget", markers=True,
                     dashes=False, units="budget", estimator=None, ax=ax, legend=ax is axes[0])  # fmt: skip
        ax.axhline(curves.loc[curves["epoch"] == 0, column].mean(), color="0.2", ls="-.", lw=1, label="untrained")
        _reference_lines(ax, paper_auc)
        ax.set(xscale="log", xlabel="images × epochs (log)", ylabel="AUC (test set)", title=label)
    legend = axes[0].get_legend()
    handles = [h for h in legend.legend_handles if h is not None] + axes[1].get_lines()[-3:]
    labels = [t.get_text() for h, t in zip(legend.legend_handles, legend.get_texts(), strict=True) if h is not None]
    legend.remove()
    fig.legend(handles, labels + ["untrained network", *(line.get_label() for line in axes[1].get_lines()[-2:])],
               loc="outside lower center", ncol=4, frameon=False)  # fmt: skip
    return fig


def close_all(figures: Sequence[Figure] = ()) -> None:
    """Closes the given figures (or all) to free memory in long notebook sessions."""
    for f in figures or plt.get_fignums():
        plt.close(f)


__all__ = [
    "scale_curves",
    "WIDTH",
    "HOUSE",
    "paired_dots",
    "NORMAL",
    "ANOMALOUS",
    "use_house_style",
    "house_style",
    "new_figure",
    "root_figure",
    "image_rows",
    "image_grid",
    "reconstructions",
    "loss_curves",
    "score_histogram",
    "roc",
    "precision_recall",
    "roc_pr",
    "latent_projection",
    "neighbours",
    "ablation_bars",
    "project_2d",
    "smooth",
    "negative_start",
    "close_all",
]
