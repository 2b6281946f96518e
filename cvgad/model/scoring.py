"""Anomaly score (II.F) and metrics (III.B), computed with scikit-learn.

The paper's score: per image, the SSIM loss (1 - SSIM) and the L1 error, each min-max
normalised over the evaluated set, summed with equal weights. Because that normalisation
uses the test set itself, the paper's best-F1 threshold is also picked on the test set: we
report it as the paper's metric, and next to it the F1 at a threshold a user could deploy,
fixed on normal validation images alone (their `VAL_QUANTILE` quantile, with the components
normalised by the validation set's own minimum and maximum). Where the validation set also has
outliers (the one-class protocol), the F1 in GPND's convention stands beside them (`gpnd_f1`).

How a model is scored is an `EvalConfig`: batchnorm with running or batch statistics, the
order of the test images in the scoring batches, and the score's terms (see the config).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import (
    adjusted_rand_score,
    average_precision_score,
    normalized_mutual_info_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from torch import Tensor, nn

from cvgad.model.baselines import Autoencoder, Ganomaly
from cvgad.model.config import EvalConfig
from cvgad.model.losses import SSIM_FLOOR, l1_per_sample, ssim_per_sample
from cvgad.model.networks import CVAE, as_float_images, batch_statistics, eval_mode

#: A deployable threshold flags the top 5% of normal validation scores.
VAL_QUANTILE = 0.95


@dataclass
class Errors:
    """Per-image errors, the terms of the anomaly score. Reconstruction models (CVGAD, ae, vae)
    give the SSIM loss and L1 of II.F; GANomaly gives its latent distance alone."""

    ssim_loss: np.ndarray | None = None  # 1 - SSIM
    l1: np.ndarray | None = None
    latent: np.ndarray | None = None  # GANomaly: mean squared distance of E(x) and E'(G(x))
    log_ssim_loss: np.ndarray | None = None  # -log SSIM
    mi: np.ndarray | None = None  # the feature discriminator's mismatch logit for (features, mu)
    cluster: np.ndarray | None = None  # distance of mu to the nearest cluster mean
    complexity: np.ndarray | None = None  # PNG bits per dimension of the input (subtracted)

    def terms(self) -> dict[str, np.ndarray]:
        return {f.name: v for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None}

    @staticmethod
    def fields_of(terms: tuple[str, ...]) -> list[str]:
        """The fields that hold score terms (EvalConfig.terms), e.g. ssim -> ssim_loss."""
        return [TERM_FIELDS[term] for term in terms]

    def __len__(self) -> int:
        return len(next(iter(self.terms().values())))


#: Where each score term (config.ScoreTerm) lives in Errors.
TERM_FIELDS = {
    "ssim": "ssim_loss",
    "logssim": "log_ssim_loss",
    "l1": "l1",
    "mi": "mi",
    "cluster": "cluster",
    "complexity": "complexity",
}
#: This project's scoring (the EvalConfig defaults): running statistics, II.F's terms.
PAPER_EVALUATION = EvalConfig()
#: Terms subtracted from the score rather than added (Serra et al., ICLR 2020).
SUBTRACTED = ("complexity",)


def reconstruction_errors(x: Tensor, recon: Tensor, terms: tuple[str, ...] = ("ssim", "l1")) -> dict[str, Tensor]:
    """II.F: the per-image reconstruction errors the anomaly score adds up, of `terms`: the SSIM
    loss as this project scores (ssim: 1 - SSIM), as II.C's loss writes it (logssim:
    -log SSIM, SSIM clamped at SSIM_FLOOR), and L1. Other terms are skipped."""
    out = {}
    if {"ssim", "logssim"} & set(terms):
        ssim = ssim_per_sample(x, recon)
        if "ssim" in terms:
            out["ssim_loss"] = 1 - ssim
        if "logssim" in terms:
            out["log_ssim_loss"] = -torch.log(ssim.clamp_min(SSIM_FLOOR))
    if "l1" in terms:
        out["l1"] = l1_per_sample(x, recon)
    return out


@torch.no_grad()
def score_terms(model: nn.Module, x: Tensor, terms: tuple[str, ...] = ("ssim", "l1")) -> dict[str, Tensor]:
    """The per-image terms of the anomaly score of `model` on images `x` in [0, 1], of `terms`.
    A CVAE or an autoencoder baseline: one pass through the posterior mean mu, II.F's
    reconstruction errors, and for a CVAE where asked the feature discriminator's mismatch logit
    for (features, mu) (mi, the released code's third term) and the distance of mu to the nearest
    cluster mean (cluster). GANomaly: its own score, the mean squared distance of its two
    encoders' codes (latent, its only term)."""
    if isinstance(model, Ganomaly):
        _, latent_i, latent_o = model.net.generator(x * 2 - 1)
        return {"latent": (latent_i - latent_o).pow(2).flatten(1).mean(dim=1)}
    if not isinstance(model, (CVAE, Autoencoder)):
        raise TypeError(f"cannot score a {type(model).__name__}: a CVAE, an Autoencoder or a Ganomaly can be")
    mu, _, features = model.encoder(x)
    out = reconstruction_errors(x, model.decoder(mu).float(), terms)
    if isinstance(model, CVAE) and "mi" in terms:
        out["mi"] = model.fd(features, mu).float()
    if isinstance(model, CVAE) and "cluster" in terms:
        out["cluster"] = torch.cdist(mu.float(), model.means.float()).min(dim=1).values
    return out


def png_bits_per_dimension(images: torch.Tensor) -> np.ndarray:
    """Input complexity (Serra et al., ICLR 2020): each image's losslessly compressed (PNG)
    size in bits per dimension. Images are uint8 (N, C, H, W)."""
    if images.dtype != torch.uint8:
        images = (as_float_images(images) * 255).round().to(torch.uint8)
    out = []
    for image in images.cpu().numpy():
        buffer = io.BytesIO()
        Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(buffer, format="PNG")
        out.append(8 * buffer.getbuffer().nbytes / image.size)
    return np.asarray(out)


def scoring_order(labels: np.ndarray, order: str, seed: int = 0) -> np.ndarray:
    """The order of the test images in the scoring batches: `normals_first` as the released code
    (every normal image, then every anomaly, each in index order) or `shuffled` (by `seed`)."""
    if order == "normals_first":
        return np.argsort(np.asarray(labels), kind="stable")
    return np.random.default_rng(seed).permutation(len(labels))


@torch.no_grad()
def model_errors(
    model: nn.Module,
    images: torch.Tensor,
    cfg: EvalConfig = PAPER_EVALUATION,
    order: np.ndarray | None = None,
) -> Errors:
    """The score terms of `cfg` of every image: `score_terms` in batches of
    cfg.score_batch_size taken in `order` (default: as given), batchnorm as cfg.bn_at_test says,
    plus the model-free complexity term. Rows come back in the images' own order; the model's
    mode and buffers are as before."""
    device = next(model.parameters()).device
    order = np.arange(len(images)) if order is None else np.asarray(order)
    terms: dict[str, list[torch.Tensor]] = {}
    with batch_statistics(model) if cfg.bn_at_test == "train" else eval_mode(model):
        for start in range(0, len(order), cfg.score_batch_size):
            chunk = images[torch.as_tensor(order[start : start + cfg.score_batch_size])]
            for name, value in score_terms(model, as_float_images(chunk.to(device)), cfg.terms).items():
                terms.setdefault(name, []).append(value.float().cpu())
    unordered = np.argsort(order)  # row i of the batches' output is image order[i]
    errors = {name: torch.cat(values).numpy()[unordered] for name, values in terms.items()}
    if "complexity" in cfg.terms:
        errors["complexity"] = png_bits_per_dimension(images)
    return Errors(**errors)


def _minmax(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    low, high = reference.min(), reference.max()
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def anomaly_score(errors: Errors, reference: Errors | None = None) -> np.ndarray:
    """II.F: the sum of the min-max normalised terms (SSIM loss plus L1, equal weights), less
    those in SUBTRACTED. The normalisation uses `reference` (default: the evaluated set itself,
    as the paper does)."""
    ref = (reference or errors).terms()
    return np.sum(
        [(-1 if name in SUBTRACTED else 1) * _minmax(v, ref[name]) for name, v in errors.terms().items()], axis=0
    )


def f1_floor(labels: np.ndarray, positive: int = 1) -> float:
    """F1 of calling every image `positive` (default: flagging every image as an anomaly): 2p / (1 + p)
    for the share p of that class."""
    p = float(np.mean(np.asarray(labels) == positive))
    return 2 * p / (1 + p)


def best_f1(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The largest F1 over all thresholds (the paper's F1, picked on the test set) and its threshold."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    i = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(f1[i]), float(thresholds[i]) if len(thresholds) else float("nan")


def confusion_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Confusion counts, precision, recall (= TPR), F1 and FPR when scores >= threshold are
    flagged as anomalies (label 1). A ratio with nothing to count (e.g. precision when nothing
    is flagged) is 0."""
    flagged, anomalous = np.asarray(scores) >= threshold, np.asarray(labels) == 1
    tp, fp = int(np.sum(flagged & anomalous)), int(np.sum(flagged & ~anomalous))
    fn, tn = int(np.sum(~flagged & anomalous)), int(np.sum(~flagged & ~anomalous))
    precision, recall = tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "flagged": tp + fp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
    }


def f1_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 when scores >= threshold are flagged (see `confusion_at`)."""
    counts = confusion_at(scores, labels, threshold)
    return {key: counts[key] for key in ("precision", "recall", "f1")}


def gpnd_f1(
    val_labels: np.ndarray, val_scores: np.ndarray, test_labels: np.ndarray, test_scores: np.ndarray
) -> tuple[float, float]:
    """F1 in GPND's convention (Pidhorskyi et al., 2018) and its threshold: inliers (label 0) are
    the positive class, and the threshold is the one that maximises that F1 on validation images
    holding outliers in the test set's proportion; test images scoring at most it count as inliers."""
    _, threshold = best_f1(1 - np.asarray(val_labels), -np.asarray(val_scores))
    return f1_at(1 - np.asarray(test_labels), -np.asarray(test_scores), threshold)["f1"], -threshold


@dataclass
class Evaluation:
    """Metrics plus the arrays behind them (for plots)."""

    metrics: dict[str, float]
    scores: np.ndarray
    labels: np.ndarray
    errors: Errors
    val_errors: Errors
    val_outlier_errors: Errors | None = None

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        fpr, tpr, _ = roc_curve(self.labels, self.scores)
        return fpr, tpr

    def pr(self) -> tuple[np.ndarray, np.ndarray]:
        precision, recall, _ = precision_recall_curve(self.labels, self.scores)
        return precision, recall


def evaluate(test: Errors, labels: np.ndarray, val: Errors, val_outliers: Errors | None = None) -> Evaluation:
    """All metrics for test errors with labels (1 = anomaly), given normal validation errors and,
    where there are, validation outliers' errors. The three F1 follow three conventions:
    f1_best (the paper's) flags anomalies as positive at the threshold best on the test set itself;
    f1_val flags anomalies as positive at a threshold fixed on the normal validation images alone;
    f1_gpnd (GPND's, with `val_outliers` only) takes inliers as positive at the threshold best on
    the validation normals plus outliers (`gpnd_f1`; the score normalised by that set)."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) != 2:
        raise ValueError("the test set needs both normal (0) and anomalous (1) images to compute AUC and F1")
    scores = anomaly_score(test)
    f1_best, threshold = best_f1(labels, scores)
    val_scores = anomaly_score(val)
    val_threshold = float(np.quantile(val_scores, VAL_QUANTILE))
    at_val = f1_at(labels, anomaly_score(test, reference=val), val_threshold)
    metrics = {
        "auc": float(roc_auc_score(labels, scores)),
        "f1_best": f1_best,
        "threshold_best": threshold,
        "auprc": float(average_precision_score(labels, scores)),
        "f1_val": at_val["f1"],
        "precision_val": at_val["precision"],
        "recall_val": at_val["recall"],
        "threshold_val": val_threshold,
        "f1_floor": f1_floor(labels),
        "auprc_floor": float(np.mean(labels)),
    }
    if val_outliers is not None and len(val_outliers):
        both = Errors(**{k: np.concatenate([v, val_outliers.terms()[k]]) for k, v in val.terms().items()})
        both_labels = np.r_[np.zeros(len(val), np.int64), np.ones(len(val_outliers), np.int64)]
        f1, gpnd_threshold = gpnd_f1(both_labels, anomaly_score(both), labels, anomaly_score(test, reference=both))
        metrics |= {"f1_gpnd": f1, "threshold_gpnd": gpnd_threshold, "f1_gpnd_floor": f1_floor(labels, positive=0)}
    return Evaluation(metrics, scores, labels, test, val, val_outliers)


def evaluate_model(
    model: nn.Module,
    images: torch.Tensor,
    test_idx: np.ndarray,
    test_labels: np.ndarray,
    val_idx: np.ndarray,
    cfg: EvalConfig = PAPER_EVALUATION,
    seed: int = 0,
    val_outlier_idx: np.ndarray | None = None,
) -> Evaluation:
    """Scores `images[test_idx]` (in the order of cfg.test_order, shuffled by `seed`),
    `images[val_idx]` and any `images[val_outlier_idx]` with `model` (a CVAE or a baseline's
    scoring module) as `cfg` says, and computes the metrics."""
    order = scoring_order(test_labels, cfg.test_order, seed)
    test = model_errors(model, images[torch.as_tensor(test_idx)], cfg, order)
    val = model_errors(model, images[torch.as_tensor(val_idx)], cfg)
    outliers = None
    if val_outlier_idx is not None and len(val_outlier_idx):
        outliers = model_errors(model, images[torch.as_tensor(val_outlier_idx)], cfg)
    return evaluate(test, test_labels, val, outliers)


def cluster_purity(probs: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """How well the latent clusters (argmax p(y|z)) match the true classes: NMI and ARI
    (1 = the same partition, 0 = chance), and how many clusters are in use."""
    assigned = np.asarray(probs).argmax(axis=1)
    return {
        "nmi": float(normalized_mutual_info_score(classes, assigned)),
        "ari": float(adjusted_rand_score(classes, assigned)),
        "clusters_used": int(len(np.unique(assigned))),
    }
