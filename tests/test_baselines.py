"""The baselines (issue 10): each trains and scores through CVGAD's data, split and run folders."""

import importlib.util
import math

import numpy as np
import pytest
import torch

from cvgad.experiment.experiment import load_run, make_config, prepare, run_experiment
from cvgad.model import baselines as B
from cvgad.model import losses as L
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig
from cvgad.model.scoring import model_errors, score_terms
from cvgad.model.trainers import trainer_for
from cvgad.model.training import Trainer

TINY = dict(channels=1, latent_dim=8, n_clusters=2, width=4)
TINY_RUN = dict(epochs=1, train_subset=64, test_subset=60, width=4, latent_dim=8, batch_size=16)


def _batch(seed: int = 0) -> torch.Tensor:
    return torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


def _trainer(model: str, **losses) -> Trainer:
    return trainer_for(
        ModelConfig(model=model, **TINY), TrainConfig(batch_size=8, device="cpu", seed=0, losses=LossConfig(**losses))
    )


def test_standard_normal_kl_is_the_closed_form():
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # 1/2 sum(sigma^2 + mu^2 - 1 - log sigma^2) = 1/2 [(1 + 1 - 1 - 0) + (4 + 4 - 1 - log 4)]
    expected = 0.5 * (1 + (7 - math.log(4)))
    assert B.standard_normal_kl(mu, logvar).item() == pytest.approx(expected)


def test_ae_step_minimises_the_reconstruction_loss_of_the_posterior_mean():
    t = _trainer("ae")
    x = _batch()
    with torch.no_grad():
        recon, _, _ = t.ae(x, sample=False)
        expected = L.reconstruction_loss(x, recon, 50.0, 10.0)
    log = t.step(x)
    assert list(log) == ["recon"]
    assert log["recon"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_vae_adds_the_latent_weight_times_the_kl_per_dimension():
    t = _trainer("vae", latent=15.0)
    log = t.step(_batch())
    assert set(log) == {"recon", "latent"}
    summed = _trainer("vae", latent=15.0, latent_reduction="sum").step(_batch())
    assert summed["latent"].item() == pytest.approx(8 * log["latent"].item(), rel=1e-5)  # same seed, same draw


def test_vae_without_latent_loss_trains_on_reconstruction_alone():
    assert list(_trainer("vae", disabled=("latent",)).step(_batch())) == ["recon"]


def test_ganomaly_score_is_the_mean_squared_distance_of_its_two_codes():
    t = _trainer("ganomaly")
    log = t.step(_batch())
    assert set(log) == {"generator", "discriminator"} and all(torch.isfinite(v) for v in log.values())
    x = _batch(1)
    t.model.eval()
    with torch.no_grad():
        _, latent_i, latent_o = t.model.net.generator(x * 2 - 1)
    expected = ((latent_i - latent_o) ** 2).flatten(1).mean(1)
    assert torch.allclose(score_terms(t.model, x)["latent"], expected)
    errors = model_errors(t.model, (x * 255).to(torch.uint8))
    assert list(errors.terms()) == ["latent"] and len(errors) == 8


@pytest.mark.parametrize("model", ["ae", "vae", "ganomaly"])
def test_each_baseline_trains_scores_and_reloads_on_tiny_data(model, tmp_path):
    result = run_experiment(make_config(model=model, **TINY_RUN), out_dir=tmp_path / model, progress=False)
    assert result.metrics["model"] == model and 0 <= result.metrics["auc"] <= 1
    assert len(result.history) == 4  # 64 images / batch 16, one epoch
    _, reloaded = load_run(tmp_path / model, device="cpu")
    for name, module in reloaded.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, result.trainer.modules[name].state_dict()[key])


def test_the_models_see_identical_splits_for_the_same_seed():
    splits = {
        model: prepare(make_config(model=model, seed=3, **TINY_RUN))[1] for model in ("cvgad", "ae", "vae", "ganomaly")
    }
    ref = splits["cvgad"]
    assert len(ref.train) == 64 and len(ref.test) == 60
    for split in splits.values():
        for part in ("train", "val", "test", "test_labels"):
            assert np.array_equal(getattr(split, part), getattr(ref, part))
    assert not np.array_equal(prepare(make_config(seed=4, **TINY_RUN))[1].train, ref.train)  # the seed decides


def test_a_ganomaly_step_updates_the_generator_on_its_loss_then_the_discriminator():
    from anomalib.models.image.ganomaly.loss import GeneratorLoss

    t = _trainer("ganomaly")
    gen, disc = t.model.net.generator, t.model.net.discriminator
    x = _batch() * 2 - 1
    with torch.no_grad():  # the generator loss on the weights before the step (batchnorm in train mode, as in the step)
        t.model.train()
        fake, latent_i, latent_o = gen(x)
        expected = GeneratorLoss(1, 50, 1)(latent_i, latent_o, x, fake, disc(x)[0], disc(fake)[0])
    gen_before = [p.clone() for p in gen.parameters()]
    disc_before = [p.clone() for p in disc.parameters()]
    log = t.step(_batch())
    assert log["generator"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, gen.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, disc.parameters(), strict=True))
    # the discriminator's update leaves the generator alone: one Adam step moves a weight by at most lr
    step = max((a - b).abs().max().item() for a, b in zip(gen_before, gen.parameters(), strict=True))
    assert 0 < step <= t.cfg.lr * 1.01


def test_a_killed_baseline_run_resumes_with_the_same_result(tmp_path):
    cfg = make_config(model="vae", **(TINY_RUN | {"epochs": 2}))
    whole = run_experiment(cfg, out_dir=tmp_path / "whole", progress=False)
    half = trainer_for(cfg.model, cfg.train)
    data = whole.dataset.images[torch.as_tensor(whole.split.train)]
    half.fit(data, epochs=1, progress=False, resume=tmp_path / "state.pt")
    resumed = trainer_for(cfg.model, cfg.train)
    resumed.fit(data, progress=False, resume=tmp_path / "state.pt")
    assert resumed.history_frame().equals(whole.history)


def test_bad_model_settings_name_what_is_valid():
    with pytest.raises(ValueError, match="model='gan' is not valid; choose one of 'cvgad', 'ae', 'vae', 'ganomaly'"):
        make_config(model="gan")
    with pytest.raises(ValueError, match="model 'ae' has no loss 'mi' to disable; its losses: ssim, l1"):
        make_config(model="ae", disabled=("mi",))
    with pytest.raises(ValueError, match="leaves none of it"):
        make_config(model="ae", disabled=("ssim", "l1"))


def test_ganomaly_without_anomalib_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "anomalib" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'cvgad\[peers\]'"):
        make_config(model="ganomaly")


def test_ganomaly_trains_at_its_own_learning_rate_unless_told_otherwise():
    assert make_config(model="ganomaly").train.lr == 2e-4  # GANomaly's paper and anomalib
    assert make_config(model="ae").train.lr == make_config().train.lr == 1e-3  # III.C
    assert make_config(model="ganomaly", lr=1e-3).train.lr == 1e-3
