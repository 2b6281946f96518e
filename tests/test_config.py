"""Configs validate themselves with messages that name the bad value and the valid ones."""

import pytest

from cvgad.experiment.experiment import make_config
from cvgad.model.config import DataConfig, ExperimentConfig, LossConfig, ModelConfig, TrainConfig


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LossConfig(disabled=("gan",)), "disabled loss='gan' is not valid; choose one of 'mi', 'latent'"),
        (lambda: LossConfig(mi=-1), "loss weight mi=-1 is not valid"),
        (lambda: LossConfig(negative_radius="two"), "negative_radius='two' is not valid"),
        (lambda: LossConfig(negative_gate="late"), "negative_gate='late' is not valid; choose one of 'first_epoch'"),
        (lambda: LossConfig(negative_l1_floor=2.0), "negative_l1_floor=2.0 must lie in"),
        (lambda: ModelConfig(logvar="clamped"), "logvar='clamped' is not valid; choose one of 'bounded', 'linear'"),
        (lambda: ModelConfig(channels=2), "channels=2 is not valid"),
        (lambda: make_config(model="ae", compile=True), "compile=True applies to model 'cvgad' only .*; got 'ae'"),
        (lambda: TrainConfig(batch_size=1), "batch_size=1 is not valid"),
        (lambda: DataConfig(dataset="svhn"), "dataset='svhn' is not valid; choose one of 'digits'"),
        (lambda: DataConfig(n_inliers=3), "n_inliers=3 is not valid; use 1, 4 or 7"),
        (lambda: ExperimentConfig.from_dict({"model": {}, "optim": {}}), "unknown config sections"),
    ],
)
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


def test_every_run_parameter_names_one_config_field():
    """RunParams.config() places each parameter by its name, so each must name exactly one field."""
    import dataclasses

    from cvgad.experiment.params import SECTIONS, RunParams

    for name in RunParams.names():
        homes = [s for s, cls in SECTIONS.items() if name in {f.name for f in dataclasses.fields(cls)}]
        assert len(homes) == 1, (name, homes)


def test_run_params_reach_the_config():
    cfg = make_config(
        dataset="cifar10",
        normal_class=3,
        protocol="one_class",
        fold=2,
        width=8,
        latent_dim=16,
        mean_init_scale=0.5,
        epochs=3,
        batch_size=32,
        seed=7,
        disabled=("mi",),
        fake_source="prior",
        val_fraction=0.2,
    )
    assert (cfg.data.normal_class, cfg.data.fold, cfg.data.val_fraction) == (3, 2, 0.2)
    assert (cfg.model.width, cfg.model.latent_dim) == (8, 16)
    assert (cfg.model.mean_init_scale, cfg.model.n_clusters, cfg.model.channels) == (0.5, 1, 3)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.seed) == (3, 32, 7)
    assert cfg.train.losses.disabled == ("mi",) and cfg.train.losses.fake_source == "prior"
    assert cfg.train.losses.negative_radius == "chi"  # None: the config's own default


def test_configs_are_frozen_and_replace_validates():
    import dataclasses

    cfg = make_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.epochs = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="epochs=-1 is not valid"):
        dataclasses.replace(cfg.train, epochs=-1)


def test_an_outlier_fraction_under_leave_one_out_is_refused_not_ignored():
    with pytest.raises(ValueError, match="outlier_fraction=0.2 does not apply to protocol leave_one_out"):
        make_config(outlier_fraction=0.2)
    assert make_config(protocol="one_class", normal_class=3, outlier_fraction=0.2).data.outlier_fraction == 0.2
