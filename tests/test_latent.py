"""Chapter 5's measurements of the latent space (cvgad.book.latent), on small hand-made tensors."""

import numpy as np
import pytest
import torch

from cvgad.book.latent import (
    Codes,
    decode_near_means,
    decoded_means_check,
    digit_classifier,
    encode,
    latent_summary,
    means_score,
)
from cvgad.experiment.data import load_dataset
from cvgad.model.config import ModelConfig
from cvgad.model.networks import CVAE


class Stub:
    """A 'classifier' of flattened images: class = the image's first pixel, rounded."""

    classes_ = np.array([0, 1, 2])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.eye(3)[np.rint(x[:, 0]).astype(int)] * 0.9 + 0.1 / 3


def test_decoded_means_check_counts_the_commonest_class_per_cluster():
    first_pixels = [0, 0, 0, 1, 2, 2, 1, 1, 1]  # cluster 0: 0 0 0; cluster 1: 1 2 2; cluster 2: 1 1 1
    decoded = torch.zeros(9, 1, 2, 2)
    decoded[:, 0, 0, 0] = torch.tensor(first_pixels, dtype=torch.float)
    check = decoded_means_check(Stub(), decoded, per_cluster=3)
    assert check["class"].tolist() == [0, 2, 1]
    assert check["consistency"].tolist() == pytest.approx([1.0, 2 / 3, 1.0])
    assert check["confidence"].tolist() == pytest.approx(
        [0.9 + 0.1 / 3, (2 * (0.9 + 0.1 / 3) + 0.1 / 3) / 3, 0.9 + 0.1 / 3]
    )
    score = means_score(check)
    assert score["distinct_digits"] == 3 and score["consistency"] == pytest.approx((1 + 2 / 3 + 1) / 3)


def test_one_blob_decodes_to_one_digit():
    check = decoded_means_check(Stub(), torch.zeros(6, 1, 2, 2), per_cluster=2)
    assert means_score(check)["distinct_digits"] == 1


def test_latent_summary_by_hand():
    cvae = CVAE(ModelConfig(channels=1, latent_dim=2, n_clusters=2, width=4))
    with torch.no_grad():
        cvae.means.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    init = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    # three normal codes at the means (certain of their cluster), one anomalous code far away
    mu = torch.tensor([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [30.0, 40.0]])
    codes = Codes(mu, torch.full((4, 2), -30.0), torch.tensor([[1.0, 0], [0, 1], [0, 1], [0, 1]]))
    classes = np.array([5, 6, 6, 7])
    summary = latent_summary(cvae, codes, classes, np.array([0, 0, 0, 1]), radius=1.0, init_means=init, seed=0)
    assert summary["nmi_normal"] == pytest.approx(1.0)  # clusters = classes on the normal codes
    assert summary["means_moved"] == pytest.approx(2.5)  # median of 0 and 5
    assert summary["means_min_gap"] == pytest.approx(5.0)
    assert summary["normal_inside_radius"] == pytest.approx(1.0)  # sigma ~ 0: the samples are the means


def test_decode_near_means_is_one_block_of_rows_per_cluster_and_reproducible():
    cvae = CVAE(ModelConfig(channels=1, latent_dim=4, n_clusters=3, width=4))
    a = decode_near_means(cvae, per_cluster=2, noise_scale=0.0, seed=0)
    b = decode_near_means(cvae, per_cluster=2, noise_scale=0.5, seed=1)
    assert a.shape == (6, 1, 32, 32) and torch.equal(a[0], a[1])  # no noise: both draws are the mean's image
    assert torch.equal(b, decode_near_means(cvae, per_cluster=2, noise_scale=0.5, seed=1))
    assert cvae.training  # decoding in eval mode leaves the model's mode as it was


def test_encode_returns_means_variances_and_probabilities_on_the_cpu():
    cvae = CVAE(ModelConfig(channels=1, latent_dim=4, n_clusters=3, width=4))
    codes = encode(cvae, torch.randint(0, 256, (5, 1, 32, 32), dtype=torch.uint8), batch_size=2)
    assert codes.mu.shape == codes.logvar.shape == (5, 4) and codes.probs.shape == (5, 3)
    assert torch.allclose(codes.probs.sum(1), torch.ones(5))


def test_the_judge_reads_real_digits():
    digits = load_dataset("digits")
    judge, accuracy = digit_classifier(digits.images, digits.labels)
    assert accuracy > 0.9  # a judge that could not read digits would make the decoded-means check mean nothing
    assert len(judge.classes_) == 10
