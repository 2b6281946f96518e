"""The Fig. 1 diagram shows the shapes the networks really produce, for any width and dataset."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from cvgad.book import diagram  # noqa: E402
from cvgad.model.config import ModelConfig  # noqa: E402
from cvgad.model.networks import CVAE, Critic  # noqa: E402


@pytest.mark.parametrize("channels, width", [(1, 4), (3, 8)])
def test_shapes_follow_the_width_and_the_channels(channels, width):
    cfg = ModelConfig(channels=channels, width=width, latent_dim=16, n_clusters=3)
    s = diagram.shapes(CVAE(cfg), Critic(cfg))
    w = width
    assert s["encoder"] == [(w, 16, 16), (2 * w, 8, 8), (4 * w, 4, 4)] == s["critic"][:3]
    assert s["heads"] == [(16,), (16,)] and s["z"] == [(16,)] and s["classifier"] == [(3,)]
    assert s["decoder"] == [(4 * w, 4, 4), (2 * w, 8, 8), (w, 16, 16), (channels, 32, 32)]
    assert s["means"] == [(3, 16)] and s["fd"][0] == (4 * w + 16, 4, 4) and s["critic"][-1] == (1,)


def test_the_diagram_labels_every_box_with_its_shapes():
    cfg = ModelConfig(channels=1, width=4, latent_dim=16, n_clusters=3)
    fig = diagram.architecture(CVAE(cfg), Critic(cfg))
    text = "\n".join(t.get_text() for t in fig.axes[0].texts)
    for label in ("encoder p(z|x)", "decoder q(x|z)", "classifier p(y|z)", "feature discriminator FD", "critic D"):
        assert label in text
    assert "4×16×16\n8×8×8\n16×4×4" in text and "3×16" in text and "32×4×4 → 1 logit" in text
