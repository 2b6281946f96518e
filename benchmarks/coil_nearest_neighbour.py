"""Why Table 3's AUCs are so high: how easy is the COIL-100 protocol without any training?

For the same draws (seeds) as `ablations/table3_coil100.yaml`, the same split (`cvgad.experiment.protocols`)
is scored by the pixel distance of each test image to its nearest training image (no model at
all), and, as a control that must sit at chance, by that score with the test labels shuffled.
If the untrained nearest-neighbour score is already near 1, the high AUCs of CVGAD and the
autoencoder say that the protocol is easy (a test view of an inlier object lies a few degrees
from one of its 70 training views), not that the models are good.

    python benchmarks/coil_nearest_neighbour.py --data-root ../shared/data \
        --out benchmarks/results/coil100_nearest_neighbour.csv
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from cvgad.atomic import atomic_write_text
from cvgad.experiment.data import load_dataset
from cvgad.experiment.params import make_config
from cvgad.experiment.protocols import make_split


def nearest_neighbour_auc(images: torch.Tensor, labels: np.ndarray, n_inliers: int, seed: int) -> dict:
    """AUC of the distance to the nearest training image on one draw, and with shuffled labels."""
    split = make_split(labels, make_config(dataset="coil100", protocol="coil100", n_inliers=n_inliers).data, seed)
    flat = images.flatten(1).float() / 255
    distance = torch.cdist(flat[split.test], flat[split.train]).min(dim=1).values.numpy()
    shuffled = np.random.default_rng(seed).permutation(split.test_labels)
    return {
        "n_inliers": n_inliers,
        "seed": seed,
        "n_test": len(split.test),
        "auc_nearest_neighbour": roc_auc_score(split.test_labels, distance),
        "auc_shuffled_labels": roc_auc_score(shuffled, distance),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--out", default=None, help="CSV to write (default: print only)")
    args = parser.parse_args()
    coil = load_dataset("coil100", args.data_root)
    rows = [nearest_neighbour_auc(coil.images, coil.labels, k, s) for k in (1, 4, 7) for s in args.seeds]
    table = pd.DataFrame(rows)
    print(table.groupby("n_inliers")[["auc_nearest_neighbour", "auc_shuffled_labels"]].agg(["mean", "std"]).round(3))
    if args.out:
        command = f"# python benchmarks/coil_nearest_neighbour.py --data-root ../shared/data --out {args.out}\n"
        atomic_write_text(args.out, command + table.to_csv(index=False, float_format="%.4f"))


if __name__ == "__main__":
    main()
