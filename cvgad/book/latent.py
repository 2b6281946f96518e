"""What the latent space learnt, measured (chapter 5): clusters, distances, decoded means.

The paper's Figs. 6 and 7 are pictures; these functions turn them into numbers a test can check:
how well the clusters argmax p(y|z) match the classes (NMI), how far the means mu_y moved from
their initialisation, where the codes lie relative to the negative radius, and whether images
decoded near each mean look like one digit (`decoded_means_check`, with a small classifier trained
on the digits themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch import Tensor

from cvgad.model.networks import CVAE, as_float_images, eval_mode
from cvgad.model.scoring import cluster_purity


@dataclass
class Codes:
    """The encoder's output for a set of images: posterior means and log variances, p(y|z=mu)."""

    mu: Tensor
    logvar: Tensor
    probs: Tensor

    def sample(self, seed: int) -> Tensor:
        """One draw z = mu + sigma * xi per image, from its own random stream."""
        xi = torch.randn(self.mu.shape, generator=torch.Generator().manual_seed(seed))
        return self.mu + torch.exp(0.5 * self.logvar) * xi


@torch.no_grad()
def encode(cvae: CVAE, images: Tensor, batch_size: int = 256) -> Codes:
    """Encodes uint8 images (N, C, 32, 32) in eval mode; the codes come back on the CPU."""
    device = cvae.means.device
    mu, logvar, probs = [], [], []
    with eval_mode(cvae):
        for chunk in images.split(batch_size):
            m, lv, _ = cvae.encoder(as_float_images(chunk.to(device)))
            mu.append(m.float().cpu())
            logvar.append(lv.float().cpu())
            probs.append(cvae.classifier(m).softmax(dim=1).float().cpu())
    return Codes(torch.cat(mu), torch.cat(logvar), torch.cat(probs))


def latent_summary(
    cvae: CVAE, codes: Codes, classes: np.ndarray, is_anomaly: np.ndarray, radius: float, init_means: Tensor, seed: int
) -> dict[str, float]:
    """The clustering numbers of chapter 5 for encoded test images: NMI of the clusters with the
    classes on the normal images, how far the means moved from `init_means` (median over clusters),
    the smallest distance between two means, and the share of normal samples z within the
    negative `radius` of their nearest mean (negative training should not draw where they are)."""
    means = cvae.means.detach().float().cpu()
    normal = ~np.asarray(is_anomaly, dtype=bool)
    nearest = torch.cdist(codes.sample(seed), means).min(dim=1).values.numpy()
    return {
        "nmi_normal": cluster_purity(codes.probs[torch.as_tensor(normal)].numpy(), classes[normal])["nmi"],
        "means_moved": float(np.median((means - init_means.float().cpu()).norm(dim=1).numpy())),
        "means_min_gap": float(torch.pdist(means).min()) if len(means) > 1 else float("nan"),
        "normal_inside_radius": float(np.mean(nearest[normal] <= radius)),
    }


def digit_classifier(images: Tensor, labels: np.ndarray, seed: int = 0) -> tuple[LogisticRegression, float]:
    """A small classifier of 32x32 grey digits (logistic regression on the pixels), fitted on 80%
    of `images` and returned with its accuracy on the other 20%: the judge of `decoded_means_check`."""
    x = as_float_images(images).flatten(1).numpy()
    x_fit, x_held, y_fit, y_held = train_test_split(x, labels, test_size=0.2, random_state=seed, stratify=labels)
    model = LogisticRegression(max_iter=2000).fit(x_fit, y_fit)
    return model, float(model.score(x_held, y_held))


@torch.no_grad()
def decode_near_means(cvae: CVAE, per_cluster: int, noise_scale: float, seed: int) -> Tensor:
    """Fig. 6: decodes mu_y + noise_scale * xi, `per_cluster` draws per cluster, cluster by cluster
    (shape (K * per_cluster, C, 32, 32), on the CPU)."""
    device = cvae.means.device
    z = cvae.means.detach().repeat_interleave(per_cluster, 0)
    z = z + noise_scale * torch.randn(z.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    with eval_mode(cvae):
        return cvae.decoder(z).float().cpu()


def decoded_means_check(classifier: LogisticRegression, decoded: Tensor, per_cluster: int) -> pd.DataFrame:
    """For each cluster, the class the classifier gives most of its decoded images, the share of
    them it gives that class (consistency) and its mean probability for it (confidence)."""
    probs = classifier.predict_proba(decoded.flatten(1).numpy())
    labels = classifier.classes_[probs.argmax(axis=1)]
    rows = []
    for y in range(len(decoded) // per_cluster):
        block = slice(y * per_cluster, (y + 1) * per_cluster)
        values, counts = np.unique(labels[block], return_counts=True)
        top = values[counts.argmax()]
        column = int(np.flatnonzero(classifier.classes_ == top)[0])
        rows.append(
            {
                "cluster": y,
                "class": int(top),
                "consistency": float(counts.max() / per_cluster),
                "confidence": float(probs[block, column].mean()),
            }
        )
    return pd.DataFrame(rows).set_index("cluster")


def means_score(check: pd.DataFrame) -> dict[str, float]:
    """One line of `decoded_means_check`: how many distinct digits the clusters decode to, and the
    mean consistency and confidence over clusters."""
    return {
        "distinct_digits": int(check["class"].nunique()),
        "consistency": float(check["consistency"].mean()),
        "confidence": float(check["confidence"].mean()),
    }
