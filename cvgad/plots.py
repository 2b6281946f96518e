"""Figures for the notebooks and widgets, in the manner of the paper's Figs. 4-9.

Every function returns a `matplotlib.figure.Figure` with a title, labelled axes and, where
several things are drawn, a legend. Images are uint8 (0-255) or float (0-1) tensors (N, C, H, W).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torchvision.utils import make_grid

#: Columns of `Trainer.history_frame()` drawn in the two panels of `loss_curves` (Fig. 8).
CVAE_LOSSES = ("recon", "latent", "mi", "negative")
WGAN_LOSSES = ("critic", "wasserstein", "generator")
LOSS_LABELS = {"recon": "reconstruction (w·(−log SSIM) + w·L1)", "latent": "latent (nats per dimension)",
               "mi": "mutual information (FD cross-entropy)", "negative": "negative (SSIM hinge)",
               "critic": "critic loss $L_D$ (eq. 15)", "wasserstein": "Wasserstein estimate",
               "generator": "generator loss $L_G$ (eq. 13)"}


def as_float_images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (0-255) or float (0-1) images as a float CPU tensor in [0, 1]."""
    t = torch.as_tensor(images).detach().cpu()
    return t.float() / 255 if t.dtype == torch.uint8 else t.float().clamp(0, 1)


def _show(ax: Axes, images: torch.Tensor | np.ndarray, nrow: int, title: str) -> None:
    grid = make_grid(as_float_images(images), nrow=max(1, nrow), padding=2, pad_value=1.0)
    ax.imshow(grid.permute(1, 2, 0).numpy(), vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, title: str = "images") -> Figure:
    """A grid of images, `nrow` per row (torchvision's make_grid)."""
    n = len(images)
    rows, cols = -(-n // max(1, nrow)), min(n, nrow)
    fig, ax = plt.subplots(figsize=(max(2.0, 0.6 * cols), max(1.2, 0.6 * rows + 0.4)))
    _show(ax, images, nrow, title)
    fig.tight_layout()
    return fig


def reconstructions(x: torch.Tensor | np.ndarray, recon: torch.Tensor | np.ndarray,
                    title: str = "inputs and reconstructions", nrow: int | None = None) -> Figure:
    """Inputs above, their reconstructions below (Figs. 4, 5 and 9)."""
    nrow = nrow or min(len(x), 16)
    rows = -(-len(x) // nrow)
    fig, axes = plt.subplots(2, 1, figsize=(max(3.0, 0.6 * nrow), 2 * (0.6 * rows + 0.5)))
    _show(axes[0], x, nrow, "(a) input")
    _show(axes[1], recon, nrow, "(b) reconstruction")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def smooth(values: pd.Series, window: int) -> pd.Series:
    """Centred moving average over the non-missing values of a loss column."""
    v = values.dropna()
    return v.rolling(window, center=True, min_periods=1).mean()


def negative_start(history: pd.DataFrame) -> int | None:
    """The first step at which negative training ran (the gate T was open), or None."""
    if "negative" not in history or history["negative"].isna().all():
        return None
    return int(history.loc[history["negative"].notna(), "step"].iloc[0])


def loss_curves(history: pd.DataFrame, window: int = 5, title: str = "training losses (cf. Fig. 8)") -> Figure:
    """Fig. 8: (a) the CVAE's losses, (b) the WGAN-GP's, each smoothed over `window` logged values.

    `history` is `Trainer.history_frame()` (one row per step, NaN where an update did not run).
    Panel (a) uses a symmetric log scale, as the losses differ by orders of magnitude; a dotted
    line marks the step at which negative training first ran.
    """
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(12, 4))
    for ax, names, panel in ((ax_a, CVAE_LOSSES, "(a) CVAE"), (ax_b, WGAN_LOSSES, "(b) WGAN-GP")):
        for name in names:
            if name in history and history[name].notna().any():
                s = smooth(history.set_index("step")[name], window)
                ax.plot(s.index, s.values, label=LOSS_LABELS[name])
        ax.set_title(panel)
        ax.set_xlabel("step (batch)")
        ax.set_ylabel("loss (smoothed)")
    ax_a.set_yscale("symlog", linthresh=1e-2)
    start = negative_start(history)
    if start is not None:
        ax_a.axvline(start, color="grey", linestyle=":", label=f"negative training on (step {start})")
    ax_b.axhline(0, color="lightgrey", linewidth=0.8)
    for ax in (ax_a, ax_b):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def score_histogram(scores: np.ndarray, labels: np.ndarray, threshold: float | None = None,
                    title: str = "anomaly scores", bins: int = 40) -> Figure:
    """Score distributions of normal (label 0) and anomalous (label 1) images, as densities."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    edges = np.histogram_bin_edges(scores, bins=bins)
    for value, name, colour in ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red")):
        part = scores[labels == value]
        if len(part):
            ax.hist(part, bins=edges, density=True, alpha=0.55, color=colour, label=f"{name} (n = {len(part)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def roc_pr(evaluation, title: str = "ROC and precision-recall curves") -> Figure:
    """(a) ROC with the chance diagonal, (b) precision-recall with the floor p (the anomaly share).

    `evaluation` is a `cvgad.scoring.Evaluation`; AUC and AUPRC are given in the legends.
    """
    m = evaluation.metrics
    fpr, tpr = evaluation.roc()
    precision, recall = evaluation.pr()
    p = float(np.mean(evaluation.labels))
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax_roc.plot(fpr, tpr, label=f"CVGAD, AUC = {m['auc']:.3f}")
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance, AUC = 0.5")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="(a) ROC", xlim=(0, 1), ylim=(0, 1.02))
    ax_pr.plot(recall, precision, label=f"CVGAD, AUPRC = {m['auprc']:.3f}")
    ax_pr.axhline(p, color="grey", linestyle="--", label=f"floor (anomaly share) = {p:.3f}")
    ax_pr.set(xlabel="recall", ylabel="precision", title="(b) precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="lower right" if ax is ax_roc else "upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def project_2d(codes: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Codes (N, d) projected to (N, 2) by PCA or t-SNE (scikit-learn)."""
    codes = np.asarray(codes, float)
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(codes)
    if method == "tsne":
        from sklearn.manifold import TSNE
        return TSNE(n_components=2, init="pca", perplexity=min(30.0, max(2.0, (len(codes) - 1) / 3)),
                    random_state=seed).fit_transform(codes)
    raise ValueError(f"method={method!r} is not valid; choose 'pca' or 'tsne'")


def _scatter_by(ax: Axes, xy: np.ndarray, groups: np.ndarray, names: dict[int, str]) -> None:
    palette = plt.get_cmap("tab10" if len(np.unique(groups)) <= 10 else "tab20")
    for i, g in enumerate(np.unique(groups)):
        sel = groups == g
        ax.scatter(xy[sel, 0], xy[sel, 1], s=8, alpha=0.7, color=palette(i % palette.N), label=names.get(int(g), str(g)))
    ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2 if len(np.unique(groups)) > 6 else 1)


def latent_projection(codes: np.ndarray | torch.Tensor, classes: np.ndarray, probs: np.ndarray | torch.Tensor,
                      method: str = "pca", anomaly_class: int | None = None,
                      title: str = "latent codes in 2-D") -> Figure:
    """Two panels of the same 2-D projection: coloured by (a) the true class, (b) argmax p(y|z)."""
    codes = torch.as_tensor(codes).detach().cpu().numpy()
    probs = torch.as_tensor(probs).detach().cpu().numpy()
    classes = np.asarray(classes)
    xy = project_2d(codes, method)
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(11, 4.8), sharex=True, sharey=True)
    class_names = {int(c): f"{c} (anomaly)" if c == anomaly_class else str(c) for c in np.unique(classes)}
    _scatter_by(ax_a, xy, classes, {k: f"class {v}" for k, v in class_names.items()})
    _scatter_by(ax_b, xy, probs.argmax(axis=1), {k: f"cluster {k}" for k in range(probs.shape[1])})
    ax_a.set_title("(a) coloured by true class")
    ax_b.set_title("(b) coloured by argmax p(y|z)")
    axis = "PC" if method == "pca" else "t-SNE "
    for ax in (ax_a, ax_b):
        ax.set_xlabel(f"{axis}1")
        ax.set_ylabel(f"{axis}2")
    fig.suptitle(f"{title} ({method.upper() if method == 'pca' else 't-SNE'})")
    fig.tight_layout()
    return fig


def neighbours(query: torch.Tensor | np.ndarray, near: torch.Tensor | np.ndarray, far: torch.Tensor | np.ndarray,
               title: str = "neighbours in latent space (cf. Fig. 7)") -> Figure:
    """Fig. 7: (a) a query image, (b) its nearest and (c) its farthest images in latent space."""
    query = as_float_images(query)
    query = query[None] if query.dim() == 3 else query
    n = max(len(near), len(far), 1)
    fig = plt.figure(figsize=(max(4.0, 0.75 * n + 1.2), 3.2))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, n], wspace=0.05)
    _show(fig.add_subplot(grid[:, 0]), query, 1, "(a) query")
    _show(fig.add_subplot(grid[0, 1]), near, n, f"(b) {len(near)} nearest")
    _show(fig.add_subplot(grid[1, 1]), far, n, f"(c) {len(far)} farthest")
    fig.suptitle(title)
    return fig


def close_all(figures: Sequence[Figure] = ()) -> None:
    """Closes the given figures (or all) to free memory in long notebook sessions."""
    for f in figures or plt.get_fignums():
        plt.close(f)


__all__ = ["image_grid", "reconstructions", "loss_curves", "score_histogram", "roc_pr", "latent_projection",
           "neighbours", "project_2d", "smooth", "negative_start", "as_float_images", "close_all"]
