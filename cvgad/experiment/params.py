"""The parameters of one run, declared once.

`RunParams` is the flat list of what a user sets for a run. The command line's `train` flags
(`cvgad.cli`), the settings a grid may give (`cvgad.workbench.grid`) and the papermill parameters of
`notebooks/run.ipynb` are all derived from its fields, so a new setting is one new field here.
`RunParams.config()` turns them into a validated `ExperimentConfig`, filling in the defaults
that depend on the dataset and protocol (this module is their one home).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from cvgad.model.config import (
    PAPER_SCORE,
    BnAtTest,
    CategoricalForm,
    DataConfig,
    DatasetName,
    EvalConfig,
    ExperimentConfig,
    FakeSource,
    LatentReduction,
    LogvarHead,
    LossConfig,
    LossName,
    ModelConfig,
    ModelName,
    NegativeGate,
    NegativeRadius,
    ProtocolName,
    SelectRule,
    TestOrder,
    TrainConfig,
)

#: Dataset-dependent default: the 8x8 digits need a small network.
DEFAULT_WIDTH = {"digits": 32}
#: Model-dependent default: GANomaly's own learning rate (its paper and anomalib); III.C's 1e-3 otherwise.
DEFAULT_LR = {"ganomaly": 2e-4}
GREY = ("digits", "mnist", "fashion_mnist")
MNIST_LIKE = ("digits", "mnist")  # III.C: latent weight 15 "for the simplest MNIST dataset"
#: The book's default task and budget (chapters 3 to 5, the `digits` preset of ablations/table1.yaml),
#: chosen by benchmarks/book_defaults.py (benchmarks/results/book_defaults.csv, issue 13). Digit 7 is
#: the anomaly because an untrained network already scores digit 1, the thinnest, at AUC 0.85-0.88
#: and training does not beat that at this budget; a latent of 32 and width 16 because the digits
#: are 8x8 images; means_lr because at lr 1e-3 the means mu_y stay where their initialisation put
#: them and decode to one grey blob; negative_threshold 1 because the latent loss per dimension
#: starts low (every code and mean near the origin) and never falls to 0.8 of the first epoch's mean
#: within the budget, so the gate would never open.
BOOK = {
    "dataset": "digits",
    "anomaly_class": 7,
    "epochs": 6,
    "width": 16,
    "latent_dim": 32,
    "means_lr": 3e-2,
    "negative_threshold": 1.0,
}
#: Parameters that say where a run executes, not what it computes: a finished run stays
#: finished when only these change (another machine, another data folder).
PLACE = ("device", "data_root")
#: Parameters of how a trained model is scored: `cvgad evaluate` can change them without retraining.
EVAL_PARAMS = tuple(f.name for f in dataclasses.fields(EvalConfig))


def _p(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RunParams:
    """Every setting of one run. None means the default for the dataset (or of the config class)."""

    model: ModelName = _p("cvgad", "cvgad, or a baseline: ae, vae, ganomaly (needs pip install 'cvgad[peers]')")
    dataset: DatasetName = _p("digits", "dataset (digits is embedded and works offline)")
    protocol: ProtocolName = _p("leave_one_out", "leave_one_out (III.D), one_class (III.G) or coil100 (III.H)")
    anomaly_class: int = _p(1, "leave_one_out: the class held out of training, the anomaly")
    normal_class: int | None = _p(None, "one_class: the normal class (the others supply outliers)")
    seed: int = _p(0, "seed for the split, initialisation and batches")
    epochs: int | None = _p(None, f"training epochs (None: {TrainConfig.epochs})")
    device: str = _p("auto", "auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps")
    data_root: str | None = _p(None, "folder with the data (None: $CVGAD_DATA, else ./data)")
    disabled: tuple[LossName, ...] = _p((), "losses switched off, the rows of Table 1")
    width: int | None = _p(None, "channels of the first conv stage (None: 32 on digits, else 64)")
    latent_dim: int = _p(256, "latent size (III.C)")
    batch_size: int = _p(64, "batch size (III.C)")
    compile: bool = _p(False, "torch.compile the CVAE's networks: minutes of compiling, then faster steps (cvgad)")
    lr: float | None = _p(None, "Adam learning rate (None: 1e-3 as in III.C; 2e-4 for ganomaly, as in its paper)")
    means_lr: float | None = _p(None, "Adam learning rate of the cluster means mu_y alone (None: lr)")
    n_clusters: int | None = _p(None, "K, the estimated number of normal categories (None: the protocol's)")
    mean_init_scale: float | None = _p(None, "scale of the cluster means' initial N(0, I) draws")
    logvar: LogvarHead | None = _p(None, "log sigma^2 head: bounded (None: the default) or linear (the paper's)")
    train_subset: int | None = _p(None, "training images to use, at most what the protocol gives (None: all)")
    test_subset: int | None = _p(None, "use at most this many test images, drawn stratified (None: all)")
    n_inliers: int = _p(1, "coil100: the number of inlier objects, 1, 4 or 7")
    outlier_fraction: float | None = _p(None, "one_class, coil100: outlier share of the test set")
    fold: int = _p(0, "one_class: the test fold, 0 to 4")
    val_fraction: float | None = _p(None, "share of the training normals held out to fix a deployable threshold")
    categorical_form: CategoricalForm | None = _p(None, "form of the categorical KL (LossConfig)")
    latent_reduction: LatentReduction | None = _p(None, "latent loss per dimension or summed (LossConfig)")
    negative_radius: NegativeRadius | None = _p(None, "rule for the negative codes' radius (LossConfig)")
    fake_source: FakeSource | None = _p(None, "what the critic sees as generated images (LossConfig)")
    gradient_penalty_every: int | None = _p(
        None, "the critic's gradient penalty in every k-th update, weighted k (None: 1, every update, the paper)"
    )
    l1: float | None = _p(None, "weight of the L1 reconstruction term (III.C: 10; the released code: 50)")
    negative_gate: NegativeGate | None = _p(
        None, "how T is set: first_epoch (a share of the first epoch's latent loss) or absolute (nats per dimension)"
    )
    negative_threshold: float | None = _p(
        None,
        "T of Algorithm 1: the share (first_epoch) or nats per latent dimension (absolute); inf: always open "
        "(after the first epoch under first_epoch)",
    )
    negative_l1_floor: float | None = _p(None, "hinge floor for the negatives' L1 error (0: SSIM's hinge alone)")
    bn_at_test: BnAtTest = _p("eval", "batchnorm while scoring: eval (running statistics) or train (batch statistics)")
    test_order: TestOrder = _p(
        "shuffled", "test order in the scoring batches: shuffled or normals_first (released code)"
    )
    score_batch_size: int = _p(64, "scoring batch size (matters with --bn-at-test train)")
    score: str = _p(PAPER_SCORE, "anomaly score terms joined by '+': ssim, logssim, l1, mi, cluster, complexity")
    select: SelectRule = _p("last", "epoch reported: last, val (lowest validation error) or best_test (an oracle)")

    def __post_init__(self) -> None:
        object.__setattr__(self, "disabled", tuple(self.disabled))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunParams:
        """The fields found in `values` (e.g. a notebook's `globals()`); other keys are ignored."""
        return cls(**{name: values[name] for name in cls.names() if name in values})

    def config(self) -> ExperimentConfig:
        """The validated ExperimentConfig: each parameter set (not None) goes to the config field of
        its name; those left at None take the defaults for the dataset and protocol, or the config's."""
        given = {name: value for name, value in dataclasses.asdict(self).items() if value is not None}
        parts = {name: {k: v for k, v in given.items() if k in _fields(cls)} for name, cls in SECTIONS.items()}
        if self.protocol == "leave_one_out":
            clusters = 99 if self.dataset == "coil100" else 9
        else:
            clusters = self.n_inliers if self.protocol == "coil100" else 1
        parts["model"] |= {"channels": 1 if self.dataset in GREY else 3}
        parts["model"].setdefault("n_clusters", clusters)
        parts["model"].setdefault("width", DEFAULT_WIDTH.get(self.dataset, 64))
        if self.model in DEFAULT_LR:
            parts["train"].setdefault("lr", DEFAULT_LR[self.model])
        parts["losses"] |= {"latent": 15.0 if self.dataset in MNIST_LIKE else 5.0}
        return ExperimentConfig(
            data=DataConfig(**parts["data"]),
            model=ModelConfig(**parts["model"]),
            train=TrainConfig(**parts["train"], losses=LossConfig(**parts["losses"])),
            evaluation=EvalConfig(**parts["evaluation"]),
        )


#: Where RunParams' fields go, by name: every field names a field of exactly one of these.
SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "losses": LossConfig,
    "evaluation": EvalConfig,
}


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def make_config(**params: Any) -> ExperimentConfig:
    """`RunParams(**params).config()`: an ExperimentConfig from flat keyword parameters."""
    return RunParams(**params).config()


@dataclass(frozen=True)
class ParamType:
    """What a field accepts, read from its annotation: base type, None allowed, choices, a list."""

    base: type
    optional: bool
    choices: tuple[Any, ...] | None
    many: bool


def param_types() -> dict[str, ParamType]:
    """The accepted type of every RunParams field, for the CLI and the grid validator."""
    hints = typing.get_type_hints(RunParams)
    out = {}
    for name in RunParams.names():
        hint, optional, many = hints[name], False, False
        if get_origin(hint) in (typing.Union, types.UnionType):
            args = [a for a in get_args(hint) if a is not type(None)]
            hint, optional = args[0], True
        if get_origin(hint) is tuple:
            hint, many = get_args(hint)[0], True
        choices = get_args(hint) if get_origin(hint) is Literal else None
        base = type(choices[0]) if choices else hint
        out[name] = ParamType(base, optional, choices, many)
    return out


def param_help(name: str) -> str:
    return dataclasses.fields(RunParams)[RunParams.names().index(name)].metadata["help"]


def defaults() -> dict[str, Any]:
    """Every field's default, as a grid resolves it when no setting is given."""
    return {f.name: f.default for f in dataclasses.fields(RunParams)}
