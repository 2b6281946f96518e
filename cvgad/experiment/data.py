"""Datasets as uint8 image tensors (N, C, 32, 32) with integer labels.

Sources, tried in this order:
1. `digits`: scikit-learn's 8x8 handwritten digits, shipped with scikit-learn (offline default).
2. NumPy archives in the data root: `{name}.npz`, or `{name}_train*.npz` plus `{name}_test*.npz`
   (e.g. `cifar10_train_jpegq75.npz`), else any `{name}_*.npz` (e.g. `coil100_32px.npz`), each
   holding `x` (uint8 N x H x W [x 3]) and `y` labels.
   COIL-100 may also be a folder `coil-100/` (or `coil100/`) of `obj{N}__{angle}.png` files.
3. torchvision's downloaders for mnist, fashion_mnist and cifar10, saving into the data root.

The data root is `data_root` if given, else $CVGAD_DATA, else ./data. Train and test parts are
concatenated (the leave-one-class-out protocol of III.D re-splits everything).
"""

from __future__ import annotations

import os
import re
import urllib.error
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cvgad.model.config import DATASETS

IMAGE_SIZE = 32
CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


class DataUnavailableError(FileNotFoundError):
    """The requested data is missing or unreadable; the message says how to provide it."""


@dataclass
class Dataset:
    """Images resized to 32x32 as uint8 (N, C, 32, 32), labels (N,), and where they came from."""

    name: str
    images: torch.Tensor
    labels: np.ndarray
    source: str

    @property
    def classes(self) -> list[int]:
        return sorted(int(c) for c in np.unique(self.labels))

    def class_name(self, label: int) -> str:
        names = CLASS_NAMES.get(self.name)
        return names[label] if names and 0 <= label < len(names) else f"object {label}"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder searched for data: `root`, else $CVGAD_DATA, else ./data."""
    return Path(root if root is not None else os.environ.get("CVGAD_DATA", "data")).expanduser()


def to_tensor32(x: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W (grey) or N x H x W x 3 (colour) -> uint8 N x C x 32 x 32 (bilinear, antialiased)."""
    if x.ndim == 3:
        x = x[:, :, :, None]
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise ValueError(f"images of shape {x.shape} are not valid; expected N x H x W or N x H x W x 3")
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    if t.shape[2:] == (IMAGE_SIZE, IMAGE_SIZE):
        return t.contiguous()
    out = [
        F.interpolate(
            chunk.float(), size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
        for chunk in t.split(4096)
    ]
    return torch.cat(out).round().clamp(0, 255).to(torch.uint8)


def _how_to_provide(name: str, root: Path) -> str:
    return (
        f"Put {name}.npz (arrays x: uint8 images, y: labels) or {name}_train*.npz and {name}_test*.npz "
        f"into the data root {str(root)!r}, point --data-root or $CVGAD_DATA at a folder that has them "
        f"(offline copies: ../shared/data), or use a machine with network access so torchvision can download it."
    )


def _in_root(names: Iterable[str]) -> str:
    """Where data came from, relative to the data root: recorded results hold no machine paths."""
    return ", ".join(names) + " in the data root"


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as archive:
            if "x" not in archive or "y" not in archive:
                raise DataUnavailableError(
                    f"{path} holds arrays {sorted(archive.files)}; it needs 'x' (uint8 images) and 'y' (labels)"
                )
            x, y = archive["x"], archive["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataUnavailableError(
            f"{path} is not a readable NumPy archive ({err}); replace it with a good copy"
        ) from err
    if x.dtype != np.uint8 or len(x) != len(y):
        raise DataUnavailableError(
            f"{path}: x must be uint8 with one label in y per image; got x {x.dtype} {x.shape}, y {y.shape}"
        )
    return x, y.astype(np.int64)


def _from_npz(name: str, root: Path) -> tuple[np.ndarray, np.ndarray, str] | None:
    single = root / f"{name}.npz"
    parts = (
        [single]
        if single.exists()
        else sorted(root.glob(f"{name}_train*.npz")) + sorted(root.glob(f"{name}_test*.npz"))
    )
    parts = parts or sorted(root.glob(f"{name}_*.npz"))  # e.g. coil100_32px.npz
    if not parts:
        return None
    arrays = [_read_npz(p) for p in parts]
    return (
        np.concatenate([a[0] for a in arrays]),
        np.concatenate([a[1] for a in arrays]),
        _in_root(p.name for p in parts),
    )


def _from_coil_folder(root: Path) -> tuple[np.ndarray, np.ndarray, str] | None:
    from PIL import Image

    for folder in (root / "coil-100", root / "coil100"):
        files = sorted(folder.glob("obj*__*.png")) if folder.is_dir() else []
        if files:
            pattern = re.compile(r"obj(\d+)__(\d+)\.png$")
            keep = [(f, int(m.group(1))) for f in files if (m := pattern.search(f.name))]
            x = np.stack(
                [
                    np.asarray(Image.open(f).convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX))
                    for f, _ in keep
                ]
            )
            return x, np.array([obj for _, obj in keep], dtype=np.int64), _in_root([f"{folder.name}/"])
    return None


def _from_torchvision(name: str, root: Path) -> tuple[np.ndarray, np.ndarray, str]:
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    try:
        parts = [cls(root=str(root), train=train, download=True) for train in (True, False)]
    except (RuntimeError, urllib.error.URLError, OSError) as err:
        raise DataUnavailableError(
            f"dataset {name!r} is not in {str(root)!r} and could not be downloaded ({err}). "
            + _how_to_provide(name, root)
        ) from err
    x = np.concatenate([np.asarray(p.data) for p in parts])
    y = np.concatenate([np.asarray(p.targets) for p in parts]).astype(np.int64)
    return x, y, f"torchvision {_TORCHVISION[name]} in the data root"


def _digits() -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)  # values 0..16 -> 0..255
    return x, d.target.astype(np.int64), "scikit-learn load_digits (8x8, embedded)"


def load_dataset(name: str, root: str | os.PathLike | None = None) -> Dataset:
    """Loads `name` (one of DATASETS) as 32x32 uint8 images, from the first source that has it."""
    if name not in DATASETS:
        raise ValueError(f"dataset {name!r} is not known; choose one of {', '.join(DATASETS)}")
    root_path = data_root(root)
    found: tuple[np.ndarray, np.ndarray, str] | None
    if name == "digits":
        found = _digits()
    else:
        found = _from_npz(name, root_path) or (_from_coil_folder(root_path) if name == "coil100" else None)
        if found is None:
            if name == "coil100":
                raise DataUnavailableError(
                    f"dataset 'coil100' is not in {str(root_path)!r} (looked for coil100.npz, "
                    f"coil100_*.npz, coil-100/obj*__*.png). " + _how_to_provide(name, root_path)
                )
            found = _from_torchvision(name, root_path)
    x, y, source = found
    return Dataset(name=name, images=to_tensor32(x), labels=y, source=source)
