"""Algorithm 1, as the trainer performs it."""

import json

import pytest
import torch

from cvgad.config import LossConfig, ModelConfig, TrainConfig
from cvgad.trainer import CYCLE, NonFiniteLossError, Trainer

TINY = ModelConfig(channels=1, latent_dim=8, n_clusters=2, width=4)


def _trainer(**losses) -> Trainer:
    return Trainer(TINY, TrainConfig(batch_size=8, device="cpu", seed=0, losses=LossConfig(**losses)))


def _updates(log: dict) -> list[str]:
    return [k for k in log if k not in ("wasserstein", "categorical")]


def _batch(seed: int = 0) -> torch.Tensor:
    return torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


FULL = ["critic", "recon", "latent", "negative", "mi", "recon_2"]


def test_twelve_steps_follow_algorithm_1_in_order():
    t = _trainer(negative_threshold=1e9)  # gate always open
    seen = [_updates(t.step(_batch(i))) for i in range(12)]
    expected = [FULL] * 4 + [["critic"], ["generator"]]
    assert seen == expected * 2
    assert t.count == 0 and t.steps == 12


def test_negative_training_waits_for_the_latent_loss_to_fall_below_t():
    t = _trainer(negative_threshold=1e-9)  # gate never opens
    assert _updates(t.step(_batch())) == ["critic", "recon", "latent", "mi", "recon_2"]


@pytest.mark.parametrize(
    "loss, removed",
    [
        ("mi", {"mi"}),
        ("latent", {"latent"}),
        ("negative", {"negative"}),
        ("wasserstein", {"critic", "generator"}),
    ],
)
def test_switching_a_loss_off_removes_its_update(loss, removed):
    t = _trainer(negative_threshold=1e9, disabled=(loss,))
    seen = [u for i in range(CYCLE) for u in _updates(t.step(_batch(i)))]
    reference = _trainer(negative_threshold=1e9)
    full = [u for i in range(CYCLE) for u in _updates(reference.step(_batch(i)))]
    assert set(full) - set(seen) == removed
    assert [u for u in full if u not in removed] == seen


def test_switching_off_ssim_keeps_l1_and_both_off_removes_reconstruction_updates():
    x = _batch()
    only_l1 = _trainer(disabled=("ssim",)).step(x)
    torch.manual_seed(0)
    assert "recon" in only_l1
    none = _trainer(disabled=("ssim", "l1")).step(x)
    assert "recon" not in none and "recon_2" not in none


def test_training_on_a_tiny_dataset_lowers_the_reconstruction_loss():
    torch.manual_seed(0)
    images = (torch.rand(2, 1, 32, 32) > 0.5).float().repeat(8, 1, 1, 1)  # two patterns, 16 images
    t = _trainer()
    history = t.fit(images, epochs=12, progress=False)
    recon = history["recon"].dropna()
    assert recon.tail(4).mean() < 0.8 * recon.head(4).mean()


def test_same_seed_same_history_on_cpu():
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    a = _trainer().fit(images, epochs=2, progress=False)
    b = _trainer().fit(images, epochs=2, progress=False)
    assert a.equals(b)


def test_a_non_finite_loss_stops_training_and_names_loss_and_step():
    t = _trainer()
    x = _batch()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"loss '\w+' became nan at step 0"):
        t.step(x)
        t.history_frame()


def test_uint8_images_are_scaled_to_unit_range():
    t = _trainer()
    log = t.step((_batch() * 255).to(torch.uint8))
    assert torch.isfinite(log["recon"])


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    t = _trainer()
    t.step(_batch())
    torch.save(t.state_dict(), tmp_path / "c.pt")
    (tmp_path / "c.json").write_text(json.dumps({"width": TINY.width}))
    u = _trainer()
    u.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True))
    for (k, v), w in zip(t.cvae.state_dict().items(), u.cvae.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_auto_device_is_cpu_without_cuda_and_unknown_device_is_refused():
    if not torch.cuda.is_available():
        assert _trainer().device.type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            Trainer(TINY, TrainConfig(device="cuda"))
    with pytest.raises(ValueError, match="device='tpu'"):
        TrainConfig(device="tpu")


def test_a_run_stopped_after_an_epoch_resumes_to_the_same_result(tmp_path):
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    whole = _trainer().fit(images, epochs=3, progress=False)
    first = _trainer()
    first.fit(images, epochs=1, progress=False, resume=tmp_path / "resume.pt")  # then "killed"
    resumed = _trainer()
    history = resumed.fit(images, epochs=3, progress=False, resume=tmp_path / "resume.pt")
    assert history.equals(whole)
