"""Train / validation / test splits of the paper's three protocols, deterministic per seed.

Training sets hold normal images only; labels are never used in training. In the test and
validation sets the label is 1 for an anomaly and 0 for a normal image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cvgad.model.config import DataConfig

#: III.H: the outlier share of the COIL-100 test sets for 1, 4 and 7 inlier objects.
COIL_OUTLIERS = {1: 0.5, 4: 0.25, 7: 0.15}
COIL_TRAIN, COIL_TEST = 70, 2


@dataclass
class Split:
    """Indices into a dataset. `val` holds normal images only (to fix a deployable threshold);
    one_class adds `val_outliers`, which with `val` make GPND's validation set (`gpnd_outliers`)."""

    protocol: str
    normal_classes: list[int]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray  # 1 = anomaly
    val_outliers: np.ndarray = field(default_factory=lambda: np.array([], np.int64))

    def counts(self) -> dict[str, int]:
        return {
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test_normal": int((self.test_labels == 0).sum()),
            "n_test_anomalous": int(self.test_labels.sum()),
        }

    @property
    def anomaly_share(self) -> float:
        return float(self.test_labels.mean())


def _check_class(labels: np.ndarray, cls: int, role: str) -> None:
    valid = sorted(int(c) for c in np.unique(labels))
    if cls not in valid:
        raise ValueError(
            f"{role} {cls} is not in this dataset; valid classes are {valid[0]} to {valid[-1]}"
            if valid == list(range(valid[0], valid[-1] + 1))
            else f"{role} {cls} is not valid; choose one of {valid}"
        )


def leave_one_out(
    labels: np.ndarray, anomaly_class: int, seed: int, train_fraction: float = 0.8, val_fraction: float = 0.1
) -> Split:
    """III.D: one class is the anomaly; 80% of the normal images train (of which `val_fraction`
    is held out as validation); the test set is all anomalous images plus the other normals."""
    _check_class(labels, anomaly_class, "anomaly class")
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(labels != anomaly_class))
    anomalous = np.flatnonzero(labels == anomaly_class)
    n_train = int(round(train_fraction * len(normal)))
    n_val = int(round(val_fraction * n_train))
    test = np.concatenate([normal[n_train:], anomalous])
    return Split(
        "leave_one_out",
        sorted(int(c) for c in np.unique(labels[labels != anomaly_class])),
        train=normal[n_val:n_train],
        val=normal[:n_val],
        test=test,
        test_labels=(labels[test] == anomaly_class).astype(np.int64),
    )


def _with_outliers(
    rng: np.random.Generator, normal: np.ndarray, pool: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """`normal` plus outliers drawn from `pool` so that they make up `fraction` of the result."""
    n_out = int(round(len(normal) * fraction / (1 - fraction)))
    if n_out > len(pool):
        raise ValueError(f"an outlier share of {fraction} needs {n_out} outliers but only {len(pool)} are available")
    out = rng.choice(pool, size=n_out, replace=False)
    return np.concatenate([normal, out]), np.concatenate([np.zeros(len(normal), np.int64), np.ones(n_out, np.int64)])


def _folds(rng: np.random.Generator, labels: np.ndarray) -> dict[int, list[np.ndarray]]:
    """III.G: the indices of every class, shuffled and cut into 5 folds of 20%."""
    return {int(c): np.array_split(rng.permutation(np.flatnonzero(labels == c)), 5) for c in np.unique(labels)}


def one_class(labels: np.ndarray, normal_class: int, outlier_fraction: float, fold: int, seed: int) -> Split:
    """III.G (after GPND): one normal class; every class is cut into 5 folds of 20%; fold `fold`
    tests, the next fold validates, the other three train (6:2:2). Test and validation sets get
    outliers from the other classes' folds at `outlier_fraction`."""
    _check_class(labels, normal_class, "normal class")
    rng = np.random.default_rng(seed)
    folds = _folds(rng, labels)
    val_fold = (fold + 1) % 5
    others = [c for c in folds if c != normal_class]
    train = np.concatenate([folds[normal_class][k] for k in range(5) if k not in (fold, val_fold)])
    test, test_labels = _with_outliers(
        rng, folds[normal_class][fold], np.concatenate([folds[c][fold] for c in others]), outlier_fraction
    )
    return Split(
        "one_class", [normal_class], train=train, val=folds[normal_class][val_fold], test=test, test_labels=test_labels
    )


def gpnd_outliers(labels: np.ndarray, split: Split, outlier_fraction: float, fold: int, seed: int) -> np.ndarray:
    """GPND's validation outliers (Pidhorskyi et al., 2018) for a one_class `split`: drawn from the
    other classes' validation folds so that they make up `outlier_fraction` of them plus `split.val`,
    as in the test set. The folds are `one_class`'s; the draw has its own random stream (seed + 2),
    so the split's own sets, and every metric made from them, stay as they are."""
    folds = _folds(np.random.default_rng(seed), labels)
    val_fold = (fold + 1) % 5
    pool = np.concatenate([folds[c][val_fold] for c in folds if c not in split.normal_classes])
    both, _ = _with_outliers(np.random.default_rng(seed + 2), split.val, pool, outlier_fraction)
    return both[len(split.val) :]


def coil100(labels: np.ndarray, n_inliers: int, seed: int, outlier_fraction: float | None = None) -> Split:
    """III.H (after You et al.): `n_inliers` random objects are normal; 70 images of each train
    and 2 test; at most one image of each other object is an outlier, `outlier_fraction` of the
    test set (50/25/15% for 1/4/7 inliers by default). Objects with fewer than 72 images are
    not chosen as inliers. No validation set: the paper has none, so the deployable threshold
    is fixed on the training images."""
    if n_inliers not in COIL_OUTLIERS:
        raise ValueError(f"n_inliers={n_inliers} is not valid; use 1, 4 or 7 (III.H)")
    fraction = COIL_OUTLIERS[n_inliers] if outlier_fraction is None else outlier_fraction
    rng = np.random.default_rng(seed)
    objects, counts = np.unique(labels, return_counts=True)
    eligible = objects[counts >= COIL_TRAIN + COIL_TEST]
    inliers = rng.choice(eligible, size=n_inliers, replace=False)
    train, test_normal = [], []
    for obj in inliers:
        idx = rng.permutation(np.flatnonzero(labels == obj))
        train.append(idx[:COIL_TRAIN])
        test_normal.append(idx[COIL_TRAIN : COIL_TRAIN + COIL_TEST])
    others = [o for o in objects if o not in set(inliers)]
    one_each = np.array([rng.choice(np.flatnonzero(labels == o)) for o in others])
    test, test_labels = _with_outliers(rng, np.concatenate(test_normal), one_each, fraction)
    return Split(
        "coil100",
        sorted(int(o) for o in inliers),
        train=np.concatenate(train),
        val=np.array([], np.int64),
        test=test,
        test_labels=test_labels,
    )


def _stratified_subset(
    rng: np.random.Generator, idx: np.ndarray, labels: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most `n` of `idx`, keeping the anomaly share of `labels`."""
    if n >= len(idx):
        return idx, labels
    keep = []
    for value in (0, 1):
        pool = np.flatnonzero(labels == value)
        keep.append(rng.choice(pool, size=int(round(n * len(pool) / len(idx))), replace=False))
    chosen = np.sort(np.concatenate(keep))
    return idx[chosen], labels[chosen]


def make_split(labels: np.ndarray, cfg: DataConfig, seed: int) -> Split:
    """The split `cfg` asks for, then the optional train/test subsets (drawn with the same seed)."""
    if cfg.protocol == "leave_one_out":
        split = leave_one_out(labels, cfg.anomaly_class, seed, val_fraction=cfg.val_fraction)
    elif cfg.protocol == "one_class":
        assert cfg.normal_class is not None  # DataConfig sets it under one_class
        split = one_class(labels, cfg.normal_class, cfg.outlier_fraction or 0.5, cfg.fold, seed)
    else:
        split = coil100(labels, cfg.n_inliers, seed, cfg.outlier_fraction)
    rng = np.random.default_rng(seed + 1)
    if cfg.train_subset is not None and cfg.train_subset > len(split.train):
        raise ValueError(
            f"train_subset={cfg.train_subset} is larger than the {len(split.train)} training images the "
            f"{cfg.protocol} protocol gives for {cfg.dataset}; use at most {len(split.train)}, or None for all"
        )
    if cfg.train_subset is not None and cfg.train_subset < len(split.train):
        split.train = rng.choice(split.train, size=cfg.train_subset, replace=False)
        split.val = (
            split.val[: max(1, int(round(cfg.val_fraction * cfg.train_subset)))] if len(split.val) else split.val
        )
    if cfg.test_subset is not None:
        split.test, split.test_labels = _stratified_subset(rng, split.test, split.test_labels, cfg.test_subset)
    if cfg.protocol == "one_class":
        split.val_outliers = gpnd_outliers(labels, split, cfg.outlier_fraction or 0.5, cfg.fold, seed)
    return split
