"""Configs validate themselves with messages that name the bad value and the valid ones."""
import pytest

from cvgad.config import DataConfig, ExperimentConfig, LossConfig, ModelConfig, TrainConfig
from cvgad.experiment import make_config


@pytest.mark.parametrize("make, message", [
    (lambda: LossConfig(disabled=("gan",)), "disabled loss='gan' is not valid; choose one of 'mi', 'latent'"),
    (lambda: LossConfig(mi=-1), "loss weight mi=-1 is not valid"),
    (lambda: LossConfig(negative_radius="two"), "negative_radius='two' is not valid"),
    (lambda: ModelConfig(channels=2), "channels=2 is not valid"),
    (lambda: TrainConfig(batch_size=1), "batch_size=1 is not valid"),
    (lambda: DataConfig(dataset="svhn"), "dataset='svhn' is not valid; choose one of 'digits'"),
    (lambda: DataConfig(n_inliers=3), "n_inliers=3 is not valid; use 1, 4 or 7"),
    (lambda: ExperimentConfig.from_dict({"model": {}, "optim": {}}), "unknown config sections"),
])
def test_bad_values_are_refused_clearly(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make()


def test_make_config_applies_dataset_defaults_and_round_trips_through_json():
    cfg = make_config(dataset="mnist", disabled=["mi"])
    assert cfg.model.channels == 1 and cfg.train.losses.latent == 15.0 and cfg.model.n_clusters == 9
    assert make_config(dataset="cifar10").train.losses.latent == 5.0
    assert make_config(dataset="cifar10").model.channels == 3
    assert make_config(protocol="coil100", dataset="coil100", n_inliers=4).model.n_clusters == 4
    again = ExperimentConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.train.losses.disabled == ("mi",)
