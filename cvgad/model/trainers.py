"""The trainer of each model: CVGAD's Algorithm 1, or a baseline's."""

from __future__ import annotations

from collections.abc import Callable

from cvgad.model.algorithm1 import CVGADTrainer
from cvgad.model.baselines import AutoencoderTrainer, GanomalyTrainer
from cvgad.model.config import ModelConfig, TrainConfig
from cvgad.model.training import Trainer

#: The trainer class of each ModelConfig.model.
TRAINERS: dict[str, Callable[[ModelConfig, TrainConfig], Trainer]] = {
    "cvgad": CVGADTrainer,
    "ae": AutoencoderTrainer,
    "vae": AutoencoderTrainer,
    "ganomaly": GanomalyTrainer,
}


def trainer_for(model_cfg: ModelConfig, cfg: TrainConfig) -> Trainer:
    """A new trainer of the configured model."""
    return TRAINERS[model_cfg.model](model_cfg, cfg)
