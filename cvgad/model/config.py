"""Configuration dataclasses that validate themselves.

Every value a run depends on lives here, so a run is fully described by one JSON file
(`ExperimentConfig.to_dict`) and can be rebuilt from it (`ExperimentConfig.from_dict`). Configs
are frozen: change one with `dataclasses.replace`, which validates the new value again.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

LossName = Literal["mi", "latent", "ssim", "l1", "wasserstein", "negative"]
DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10", "coil100"]
ProtocolName = Literal["leave_one_out", "one_class", "coil100"]
CategoricalForm = Literal["marginal", "per_sample"]
MemoryFormat = Literal["auto", "channels_last", "contiguous"]
LatentReduction = Literal["mean", "sum"]
LogvarHead = Literal["bounded", "linear"]
#: How T of Algorithm 1 is set: a fixed value, or a share of the first epoch's mean latent loss.
NegativeGate = Literal["first_epoch", "absolute"]
NegativeRadius = Literal["chi", "literal"]
FakeSource = Literal["reconstruction", "prior"]
#: CVGAD, or a baseline trained and scored through the same data, split and run folders (issue 10).
ModelName = Literal["cvgad", "ae", "vae", "ganomaly"]
BnAtTest = Literal["eval", "train"]
TestOrder = Literal["shuffled", "normals_first"]
#: Terms an anomaly score can add up (II.F and the released code's), each min-max normalised.
ScoreTerm = Literal["ssim", "logssim", "l1", "mi", "cluster", "complexity"]
PAPER_SCORE = "ssim+l1"
SelectRule = Literal["last", "val", "best_test"]

#: Losses that an ablation can switch off (the rows of the paper's Table 1).
LOSS_NAMES: tuple[str, ...] = get_args(LossName)
DATASETS: tuple[str, ...] = get_args(DatasetName)
PROTOCOLS: tuple[str, ...] = get_args(ProtocolName)
MODELS: tuple[str, ...] = get_args(ModelName)
#: The losses each model trains with, so `disabled` can only name one it has.
MODEL_LOSSES: dict[str, tuple[str, ...]] = {
    "cvgad": LOSS_NAMES,
    "ae": ("ssim", "l1"),
    "vae": ("ssim", "l1", "latent"),
    "ganomaly": (),
}
#: The score terms each model can compute (GANomaly scores by its own latent distance only).
MODEL_SCORE_TERMS: dict[str, tuple[str, ...]] = {
    "cvgad": get_args(ScoreTerm),
    "ae": ("ssim", "logssim", "l1", "complexity"),
    "vae": ("ssim", "logssim", "l1", "complexity"),
    "ganomaly": (),
}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_choice(name: str, value: Any, valid: Any) -> None:
    """Raises ValueError naming `value` and the valid ones; `valid` is a tuple or a Literal type."""
    options = get_args(valid) or tuple(valid)
    _check(value in options, f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, options))}")


def _set(obj: object, name: str, value: Any) -> None:
    """Normalises a field of a frozen dataclass during its own __post_init__ (e.g. list -> tuple)."""
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class ModelConfig:
    """Which model, and the sizes of the networks of Fig. 1. Images are always 32x32 (III.C)."""

    #: "cvgad" (the paper's model), or a baseline: "ae" (the same encoder and decoder, trained on
    #: the reconstruction loss alone), "vae" (the same networks, one standard-normal prior) or
    #: "ganomaly" (Akcay et al. 2018, anomalib's model; width and latent_dim size it too).
    model: ModelName = "cvgad"
    channels: int = 1
    latent_dim: int = 256
    n_clusters: int = 9  # K, the user's estimate of the number of normal categories
    width: int = 64  # channels of the first conv stage (DCGAN uses 64)
    #: Cluster means mu_y start as mean_init_scale * N(0, I) draws. Small, so that all means
    #: start where the untrained encoder puts its codes: with scale 1 one mean is nearest to
    #: every code, takes them all, and the other K - 1 are never used (measured on digits).
    mean_init_scale: float = 0.05
    #: The encoder's log sigma^2 head: "bounded" keeps it softly inside networks.LOGVAR_BOUNDS;
    #: "linear" is the paper's unbounded linear layer. Ours, because unbounded, CIFAR-10 deer at
    #: 20,000 images x 8 epochs drove log sigma^2 to -32.5 and the latent loss to NaN.
    logvar: LogvarHead = "bounded"

    def __post_init__(self) -> None:
        check_choice("model", self.model, ModelName)
        check_choice("logvar", self.logvar, LogvarHead)
        if self.model == "ganomaly" and importlib.util.find_spec("anomalib") is None:
            raise ImportError("model 'ganomaly' needs anomalib: pip install 'cvgad[peers]'")
        _check(self.channels in (1, 3), f"channels={self.channels} is not valid; use 1 (grey) or 3 (colour)")
        _check(self.latent_dim >= 2, f"latent_dim={self.latent_dim} is not valid; use 2 or more")
        _check(self.n_clusters >= 1, f"n_clusters={self.n_clusters} is not valid; use 1 or more")
        _check(self.width >= 4, f"width={self.width} is not valid; use 4 or more")
        _check(self.mean_init_scale >= 0, f"mean_init_scale={self.mean_init_scale} is not valid; use 0 or more")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights of III.C and the choices the paper leaves open.

    `disabled` switches losses off by name (Table 1). The remaining fields decide the
    ambiguous points; their docstrings in `cvgad.model.losses` give the reasons.
    """

    ssim: float = 50.0
    l1: float = 10.0
    latent: float = 5.0  # 15 on MNIST-like data (III.C)
    categorical: float = 1.0
    mi: float = 10.0
    adversarial: float = 1.0  # weight of L_G, eq. (13); the paper gives none
    gradient_penalty: float = 10.0  # lambda of eq. (15)
    #: The penalty of eq. (15) in every k-th critic update only, weighted k (lazy regularisation,
    #: Karras et al. 2020): on average the same penalty, at 1/k of its double-backward cost, which is
    #: about half a critic update's. 1: in every update, as the paper.
    gradient_penalty_every: int = 1
    negative: float = 1.0
    disabled: tuple[LossName, ...] = ()
    #: "marginal": KL(mean_i p(y|z_i) || q(y)), balances clusters; "per_sample": the paper's
    #: E_z KL(p(y|z) || q(y)), pushes every p(y|z) to uniform.
    categorical_form: CategoricalForm = "marginal"
    #: "mean": the latent loss of eq. (4) divided by latent_dim (nats per dimension), so the
    #: weights of III.C balance it against the reconstruction loss; "sum": the plain sum.
    latent_reduction: LatentReduction = "mean"
    #: "chi": negatives lie beyond the `negative_quantile` of the chi distribution with
    #: latent_dim degrees of freedom (outside the shell where q(z|y) puts its mass);
    #: "literal": the paper's distance > 2.
    negative_radius: NegativeRadius = "chi"
    negative_quantile: float = 0.999
    #: A negative's reconstruction is pushed until its SSIM falls below this, then left alone.
    negative_ssim_ceiling: float = 0.5
    #: How T of Algorithm 1 is set. "first_epoch": T = negative_threshold x the mean latent loss
    #: of the first epoch, during which the gate stays shut, so negatives come only once the
    #: codes have moved towards their clusters (II.E, III.C). "absolute": T = negative_threshold
    #: nats per latent dimension (at 1, the old default, the gate was open from the first batch).
    negative_gate: NegativeGate = "first_epoch"
    #: T's value, a share (first_epoch) or nats per latent dimension (absolute); the negative
    #: update runs while the latent loss is below T; inf: always (absolute: from the first batch,
    #: as the released code; first_epoch: once the first epoch is over).
    negative_threshold: float = 0.8
    #: A negative's reconstruction L1 is pushed up until it reaches this (a hinge like the SSIM
    #: ceiling's); 0: off, the negative loss is SSIM's alone.
    negative_l1_floor: float = 0.0
    #: What the critic sees as generated images: decoded codes of the batch ("reconstruction",
    #: z ~ p(z), the aggregate posterior, as eq. 13 writes) or decoded samples of the prior
    #: mixture q(z) ("prior").
    fake_source: FakeSource = "reconstruction"

    def __post_init__(self) -> None:
        _set(self, "disabled", tuple(self.disabled))
        for loss in self.disabled:
            check_choice("disabled loss", loss, LossName)
        for name in ("ssim", "l1", "latent", "categorical", "mi", "adversarial", "gradient_penalty", "negative"):
            value = getattr(self, name)
            _check(value >= 0, f"loss weight {name}={value} is not valid; weights must be >= 0")
        check_choice("categorical_form", self.categorical_form, CategoricalForm)
        check_choice("negative_radius", self.negative_radius, NegativeRadius)
        check_choice("latent_reduction", self.latent_reduction, LatentReduction)
        check_choice("fake_source", self.fake_source, FakeSource)
        check_choice("negative_gate", self.negative_gate, NegativeGate)
        _check(0 <= self.negative_l1_floor <= 1, f"negative_l1_floor={self.negative_l1_floor} must lie in [0, 1]")
        _check(0 < self.negative_quantile < 1, f"negative_quantile={self.negative_quantile} must lie in (0, 1)")
        _check(
            -1 <= self.negative_ssim_ceiling <= 1,
            f"negative_ssim_ceiling={self.negative_ssim_ceiling} must lie in [-1, 1]",
        )
        _check(self.negative_threshold > 0, f"negative_threshold={self.negative_threshold} must be > 0")
        _check(self.gradient_penalty_every >= 1, f"gradient_penalty_every={self.gradient_penalty_every} must be >= 1")

    def on(self, name: str) -> bool:
        """Whether loss `name` (one of LOSS_NAMES) takes part in training."""
        check_choice("loss", name, LossName)
        return name not in self.disabled

    def reconstruction_weights(self) -> tuple[float, float]:
        """The (SSIM, L1) weights of III.C's reconstruction loss, 0 for a switched-off term."""
        return (self.ssim if self.on("ssim") else 0.0, self.l1 if self.on("l1") else 0.0)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of III.C and Algorithm 1."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 1e-3
    #: Learning rate of the cluster means mu_y alone (None: lr). Adam moves a parameter by about
    #: its learning rate per step, and the means are updated only by the latent loss, on 4 of
    #: every 6 batches: at 1e-3 a few hundred steps leave them where their small initialisation
    #: put them (chapter 5 measured it; benchmarks/results/book_defaults.csv).
    means_lr: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    amp: bool = True  # bfloat16 autocast, used on CUDA only
    #: Layout of images and conv weights; "auto": what measured faster on the device (trainer.resolve_memory_format)
    memory_format: MemoryFormat = "auto"
    #: torch.compile the CVAE's networks (CVGAD; the critic stays eager, since its gradient penalty
    #: needs a double backward that compiled graphs do not support). Faster steps after minutes of
    #: compiling, so for long runs; the same maths, rounded differently.
    compile: bool = False
    #: which epoch's model the run reports: last, val (lowest validation error, normal data
    #: only) or best_test (highest test AUC: an oracle, the released code's); cvgad.experiment.selection
    select: SelectRule = "last"
    losses: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if isinstance(self.losses, dict):
            _set(self, "losses", LossConfig(**self.losses))
        _set(self, "betas", tuple(self.betas))
        check_choice("memory_format", self.memory_format, MemoryFormat)
        check_choice("select", self.select, SelectRule)
        _check(self.epochs >= 0, f"epochs={self.epochs} is not valid; use 0 or more")
        _check(
            self.batch_size >= 2,
            f"batch_size={self.batch_size} is not valid; use 2 or more (MI shuffles the batch)",
        )
        _check(self.lr > 0, f"lr={self.lr} is not valid; use a positive learning rate")
        _check(
            self.means_lr is None or self.means_lr > 0,
            f"means_lr={self.means_lr} is not valid; use a positive learning rate or None (the same as lr)",
        )
        _check(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"betas={self.betas} must be two numbers in [0, 1)",
        )
        _check(
            self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
            f"device={self.device!r} is not valid; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'",
        )


@dataclass(frozen=True)
class DataConfig:
    """Which images, and how they are split into train, validation and test sets."""

    dataset: DatasetName = "digits"
    protocol: ProtocolName = "leave_one_out"
    #: leave_one_out: the anomalous class (every other class is normal).
    anomaly_class: int = 1
    #: one_class: the normal class (every other class supplies the outliers).
    normal_class: int | None = None
    data_root: str | None = None  # None: $CVGAD_DATA, else ./data
    #: Outlier share of the test set. one_class: None means 0.5; coil100: None means the
    #: paper's 50/25/15% for 1/4/7 inliers. Unused by leave_one_out.
    outlier_fraction: float | None = None
    fold: int = 0  # one_class protocol: which of the 5 folds is the test fold
    n_inliers: int = 1  # coil100 protocol: 1, 4 or 7 inlier objects
    val_fraction: float = 0.1  # share of the training normals held out to fix a threshold
    train_subset: int | None = None  # cap on training images (CPU-sized runs)
    test_subset: int | None = None  # cap on test images, drawn stratified

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DatasetName)
        check_choice("protocol", self.protocol, ProtocolName)
        if self.protocol == "one_class" and self.normal_class is None:
            warnings.warn(
                f"anomaly_class={self.anomaly_class} under protocol one_class is taken as the normal class; "
                "this use is deprecated: set normal_class (--normal-class) instead",
                FutureWarning,
                stacklevel=3,
            )
            _set(self, "normal_class", self.anomaly_class)
        _check(
            self.outlier_fraction is None or 0 < self.outlier_fraction < 1,
            f"outlier_fraction={self.outlier_fraction} must be None or lie in (0, 1)",
        )
        _check(
            self.outlier_fraction is None or self.protocol != "leave_one_out",
            f"outlier_fraction={self.outlier_fraction} does not apply to protocol leave_one_out (its test set "
            "holds every anomalous image); use it with one_class or coil100, or leave it unset",
        )
        _check(0 <= self.fold < 5, f"fold={self.fold} is not valid; use 0 to 4")
        _check(self.n_inliers in (1, 4, 7), f"n_inliers={self.n_inliers} is not valid; use 1, 4 or 7 (III.H)")
        _check(0 <= self.val_fraction < 1, f"val_fraction={self.val_fraction} must lie in [0, 1)")
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            _check(value is None or value >= 2, f"{name}={value} is not valid; use None or 2 or more")


@dataclass(frozen=True)
class EvalConfig:
    """How a trained model is scored. The defaults are this project's: batchnorm with its running
    statistics, II.F's terms. The authors' released code scores with batch statistics
    (`bn_at_test="train"`) over a test set ordered normals first, in batches of 64, and adds
    the feature discriminator's term (`score="ssim+l1+mi"`): switches, to measure what each does."""

    #: "eval": batchnorm uses its running statistics; "train": each scoring batch its own
    #: (running statistics and weights stay unchanged)
    bn_at_test: BnAtTest = "eval"
    #: order of the test images in the scoring batches (matters with bn_at_test="train" only)
    test_order: TestOrder = "shuffled"
    score_batch_size: int = 64
    #: terms joined by "+": ssim (1 - SSIM), logssim (-log SSIM), l1, mi (the feature
    #: discriminator's mismatch logit for (features, mu)), cluster (distance of mu to the nearest
    #: cluster mean), complexity (PNG bits per dimension of the input, subtracted: Serra et al. 2020)
    score: str = PAPER_SCORE

    def __post_init__(self) -> None:
        check_choice("bn_at_test", self.bn_at_test, BnAtTest)
        check_choice("test_order", self.test_order, TestOrder)
        _check(self.score_batch_size >= 2, f"score_batch_size={self.score_batch_size} is not valid; use 2 or more")
        terms = self.terms
        for term in terms:
            _check(
                term in get_args(ScoreTerm),
                f"score={self.score!r}: term {term!r} is not valid; join terms of "
                f"{', '.join(get_args(ScoreTerm))} with '+'",
            )
        _check(len(set(terms)) == len(terms), f"score={self.score!r} names a term twice")
        _check(
            set(terms) != {"complexity"}, f"score={self.score!r}: complexity is subtracted from other terms; add one"
        )

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.score.split("+"))


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole run: data, model, training and evaluation."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        sections = (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig), ("evaluation", EvalConfig))
        for name, cls in sections:
            if isinstance(getattr(self, name), dict):
                _set(self, name, cls(**getattr(self, name)))
        model, losses = self.model.model, self.train.losses
        _check(
            model not in ("ae", "vae")
            or (losses.on("ssim") and losses.ssim > 0)
            or (losses.on("l1") and losses.l1 > 0),
            f"model {model!r} trains on the reconstruction loss; disabled={list(losses.disabled)} leaves none of it",
        )
        if self.evaluation.score != PAPER_SCORE:  # a model's own score (GANomaly's) stands for II.F's
            scorable = MODEL_SCORE_TERMS[model]
            _check(
                set(self.evaluation.terms) <= set(scorable),
                f"model {model!r} cannot score with {self.evaluation.score!r}; "
                + (f"its terms: {', '.join(scorable)}" if scorable else "it scores by its own latent distance only"),
            )
        _check(
            not self.train.compile or model == "cvgad",
            f"compile=True applies to model 'cvgad' only (the baselines train eagerly); got {model!r}",
        )
        has = MODEL_LOSSES[model]
        for loss in losses.disabled:
            _check(
                loss in has,
                f"model {model!r} has no loss {loss!r} to disable; "
                f"its losses: {', '.join(has) if has else 'none that can be switched off'}",
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        unknown = set(d) - {"data", "model", "train", "evaluation"}
        _check(not unknown, f"unknown config sections {sorted(unknown)}; valid: data, model, train, evaluation")
        return cls(**d)
