"""Datasets, the three protocols of Section III, and clear errors for unusable requests."""

import urllib.error
from pathlib import Path

import numpy as np
import pytest

from cvgad.experiment import data as D
from cvgad.experiment import protocols as P
from cvgad.model.config import DataConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _labels(per_class: int, classes: int = 10) -> np.ndarray:
    return np.repeat(np.arange(classes), per_class)


def _disjoint(*parts: np.ndarray) -> bool:
    joined = np.concatenate(parts)
    return len(np.unique(joined)) == len(joined)


def test_digits_are_embedded_and_resized_to_32x32():
    ds = D.load_dataset("digits")
    assert ds.images.shape == (1797, 1, 32, 32) and ds.images.dtype.is_floating_point is False
    assert ds.classes == list(range(10)) and ds.images.max() > 200


def test_leave_one_out_counts_follow_iii_d():
    labels = _labels(100)
    s = P.leave_one_out(labels, anomaly_class=3, seed=0, val_fraction=0.1)
    # 900 normals: 80% = 720 train (72 of them validation), 180 normal + 100 anomalous test
    assert s.counts() == {"n_train": 648, "n_val": 72, "n_test_normal": 180, "n_test_anomalous": 100}
    assert _disjoint(s.train, s.val, s.test)
    assert (labels[s.train] != 3).all() and (labels[s.val] != 3).all()
    assert ((labels[s.test] == 3) == (s.test_labels == 1)).all()
    assert s.normal_classes == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_splits_are_deterministic_per_seed():
    labels = _labels(50)
    a, b, c = (P.leave_one_out(labels, 1, seed) for seed in (0, 0, 1))
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)


def test_one_class_splits_6_2_2_with_outlier_share():
    labels = _labels(100)
    s = P.one_class(labels, normal_class=2, outlier_fraction=0.2, fold=0, seed=0)
    assert s.counts() == {"n_train": 60, "n_val": 20, "n_test_normal": 20, "n_test_anomalous": 5}
    assert (labels[s.train] == 2).all() and (labels[s.val] == 2).all()
    assert _disjoint(s.train, s.val, s.test)
    assert (labels[s.test][s.test_labels == 1] != 2).all()


def test_one_class_adds_gpnd_validation_outliers_at_the_test_share_and_keeps_the_split():
    labels = _labels(100)
    s = P.make_split(labels, DataConfig(protocol="one_class", normal_class=2, outlier_fraction=0.2), seed=0)
    plain = P.one_class(labels, normal_class=2, outlier_fraction=0.2, fold=0, seed=0)
    assert all(np.array_equal(getattr(s, k), getattr(plain, k)) for k in ("train", "val", "test", "test_labels"))
    # 20 validation normals and 5 outliers: a fifth, as in the test set, from the other classes' fold 1
    other_val_folds = np.concatenate([f[1] for c, f in P._folds(np.random.default_rng(0), labels).items() if c != 2])
    assert len(s.val_outliers) == 5 and set(s.val_outliers) <= set(other_val_folds)
    assert _disjoint(s.train, s.val, s.test, s.val_outliers)
    assert len(P.make_split(labels, DataConfig(anomaly_class=2), seed=0).val_outliers) == 0


def test_coil100_protocol_counts_70_train_2_test_per_inlier_and_one_outlier_per_object():
    labels = _labels(72, classes=100)
    for k, share in P.COIL_OUTLIERS.items():
        s = P.coil100(labels, n_inliers=k, seed=0)
        assert len(s.train) == 70 * k and (s.test_labels == 0).sum() == 2 * k
        n_out = int(s.test_labels.sum())
        assert n_out == round(2 * k * share / (1 - share))
        outliers = labels[s.test][s.test_labels == 1]
        assert len(np.unique(outliers)) == n_out and not set(outliers) & set(s.normal_classes)
        assert _disjoint(s.train, s.test)


def test_subsets_cap_sizes_and_keep_the_anomaly_share():
    labels = _labels(100)
    s = P.make_split(labels, DataConfig(anomaly_class=0, train_subset=100, test_subset=140), seed=0)
    full = P.leave_one_out(labels, 0, 0)
    assert len(s.train) == 100 and len(s.test) == 140
    assert s.anomaly_share == pytest.approx(full.anomaly_share, abs=0.01)


def test_a_training_budget_larger_than_the_protocol_gives_is_refused_naming_both():
    labels = _labels(100)  # 10 classes of 100: leave-one-out trains on part of the 900 normals
    available = len(P.leave_one_out(labels, 0, 0).train)
    with pytest.raises(ValueError, match=rf"train_subset={available + 1} is larger than the {available} training"):
        P.make_split(labels, DataConfig(anomaly_class=0, train_subset=available + 1), seed=0)
    assert len(P.make_split(labels, DataConfig(anomaly_class=0, train_subset=available), seed=0).train) == available


@pytest.mark.parametrize("cls", [10, -1])
def test_class_out_of_range_names_the_valid_range(cls):
    with pytest.raises(ValueError, match=rf"anomaly class {cls} is not in this dataset; valid classes are 0 to 9"):
        P.leave_one_out(_labels(5), cls, 0)


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'svhn' is not known; choose one of digits, mnist"):
        D.load_dataset("svhn")


def test_missing_data_offline_says_how_to_provide_it(tmp_path, monkeypatch):
    import torchvision

    for err in (RuntimeError("Error downloading"), urllib.error.URLError("no network")):

        def fail(*args, _err=err, **kwargs):
            raise _err

        monkeypatch.setattr(torchvision.datasets, "MNIST", fail)
        with pytest.raises(D.DataUnavailableError, match=r"'mnist' is not in .* could not be downloaded.*--data-root"):
            D.load_dataset("mnist", tmp_path)
    with pytest.raises(D.DataUnavailableError, match="coil100"):
        D.load_dataset("coil100", tmp_path)


def test_corrupt_or_incomplete_archives_are_reported(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(D.DataUnavailableError, match="not a readable NumPy archive"):
        D.load_dataset("mnist", tmp_path)
    np.savez(tmp_path / "mnist.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(D.DataUnavailableError, match="needs 'x'"):
        D.load_dataset("mnist", tmp_path)


def test_npz_archives_in_the_data_root_are_found_and_resized(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "cifar10_train_jpegq75.npz", x=rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8), y=np.arange(6)
    )
    np.savez(
        tmp_path / "cifar10_test_jpegq75.npz", x=rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8), y=np.arange(4)
    )
    np.savez(tmp_path / "mnist.npz", x=rng.integers(0, 255, (3, 28, 28), dtype=np.uint8), y=np.arange(3))
    monkeypatch.setenv("CVGAD_DATA", str(tmp_path))
    c = D.load_dataset("cifar10")
    assert c.images.shape == (10, 3, 32, 32) and list(c.labels) == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    m = D.load_dataset("mnist")
    assert m.images.shape == (3, 1, 32, 32)


def test_coil100_png_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "coil-100"
    folder.mkdir()
    for obj in (1, 2):
        for angle in (0, 5):
            Image.new("RGB", (128, 128), (obj * 50, angle, 0)).save(folder / f"obj{obj}__{angle}.png")
    ds = D.load_dataset("coil100", tmp_path)
    assert ds.images.shape == (4, 3, 32, 32) and sorted(ds.labels) == [1, 1, 2, 2]


@pytest.mark.skipif(not (SHARED / "mnist_train.npz").exists(), reason="offline copies in ../shared/data not present")
def test_shared_copies_give_the_papers_counts():
    mnist = D.load_dataset("mnist", SHARED)
    assert len(mnist.labels) == 70_000
    s = P.leave_one_out(mnist.labels, 1, seed=0)
    n_normal = 70_000 - int((mnist.labels == 1).sum())
    assert len(s.train) + len(s.val) == round(0.8 * n_normal)
    assert s.counts()["n_test_anomalous"] == int((mnist.labels == 1).sum())
    coil = D.load_dataset("coil100", SHARED)
    assert coil.images.shape[1:] == (3, 32, 32) and len(np.unique(coil.labels)) == 100
    s = P.coil100(coil.labels, n_inliers=7, seed=0)
    assert len(s.train) == 490 and _disjoint(s.train, s.test)


def test_fashion_mnist_from_a_users_data_root_runs_the_one_class_protocol(tmp_path):
    """Fashion-MNIST cannot be downloaded here; a user's copy in the data root (a stand-in of the
    same format: uint8 28x28 images x, labels y 0-9) loads and runs Table 2's protocol."""
    from cvgad.experiment.experiment import make_config, run_experiment

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(200, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "fashion_mnist.npz", x=x, y=np.repeat(np.arange(10), 20))
    ds = D.load_dataset("fashion_mnist", tmp_path)
    assert ds.images.shape == (200, 1, 32, 32) and ds.class_name(7) == "sneaker"
    cfg = make_config(
        dataset="fashion_mnist",
        protocol="one_class",
        normal_class=7,
        outlier_fraction=0.2,
        data_root=str(tmp_path),
        epochs=1,
        width=4,
        latent_dim=8,
        batch_size=4,
    )
    result = run_experiment(cfg, progress=False)
    # 20 sneakers in 5 folds of 4: 3 folds train, 1 validates, 1 tests with 1 outlier (20%)
    assert (result.metrics["n_train"], result.metrics["n_test_normal"], result.metrics["n_test_anomalous"]) == (
        12,
        4,
        1,
    )
    assert result.config.model.channels == 1 and result.config.model.n_clusters == 1
