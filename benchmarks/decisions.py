"""Measures the choices the paper leaves open (issue 2, item 4) on digits and prints a table;
with `--variants default` and several classes it measures the defaults class by class, on
digits or (with --dataset and --data-root) on a real dataset.

Each variant changes one setting of the defaults; every (variant, seed) trains a model and
reports AUC, the paper's best F1, cluster purity of argmax p(y|z) on normal test images
(NMI, ARI against the true digits) and how many negative-training updates the gate allowed.

    python benchmarks/decisions.py --classes 1 --seeds 0 1 2 --epochs 8 --jobs 2
    python benchmarks/decisions.py --variants default --classes 0 1 2 3 4 5 6 7 8 9 --epochs 15
    python benchmarks/decisions.py --variants default --classes 0 1 2 3 4 5 6 7 8 9 --epochs 3 \
        --dataset mnist --data-root ../shared/data --train-subset 3000 --test-subset 5000 --width 32
    python benchmarks/decisions.py --from-csv benchmarks/results/mnist_5ep_train2000.csv   # recorded rows

The rows behind the README's numbers are in benchmarks/results/ (see its README).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import torch

from cvgad.atomic import atomic_write

VARIANTS: dict[str, dict] = {
    "default": {},
    "negative_radius=literal": {"negative_radius": "literal"},
    "categorical_form=per_sample": {"categorical_form": "per_sample"},
    "mean_init_scale=1": {"mean_init_scale": 1.0},
    "latent_reduction=sum": {"latent_reduction": "sum"},
}


def run_one(variant: str, anomaly_class: int, seed: int, epochs: int, data: dict) -> dict:
    from cvgad.experiment.experiment import make_config, run_experiment
    from cvgad.model.scoring import cluster_purity

    torch.set_num_threads(1)
    cfg = make_config(anomaly_class=anomaly_class, epochs=epochs, seed=seed, device="cpu", **data, **VARIANTS[variant])
    r = run_experiment(cfg, progress=False)
    normal = r.split.test[r.split.test_labels == 0]
    _, probs = r.trainer.cvae.eval().encode(r.dataset.images[torch.as_tensor(normal)].float().div(255))
    history = r.history
    return {
        "variant": variant,
        "dataset": data["dataset"],
        "class": anomaly_class,
        "seed": seed,
        "auc": r.metrics["auc"],
        "f1_best": r.metrics["f1_best"],
        "f1_val": r.metrics["f1_val"],
        **cluster_purity(probs.numpy(), r.dataset.labels[normal]),
        "negative_updates": int(history["negative"].notna().sum()) if "negative" in history else 0,
        "seconds": r.metrics["wall_seconds"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--classes", nargs="+", type=int, default=[1])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default=None, help="also write the per-run rows as CSV here")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-root", default=None)
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--test-subset", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument(
        "--from-csv",
        nargs="+",
        default=None,
        help="train nothing: print the tables of rows written earlier by --out (several files are joined)",
    )
    args = p.parse_args()
    df = pd.concat(map(pd.read_csv, args.from_csv)) if args.from_csv else run_all(args)
    columns = ["auc", "f1_best", "f1_val", "nmi", "ari", "clusters_used", "negative_updates", "seconds"]
    for keys in (["variant", "class"], ["variant"]):
        print(df.groupby(keys)[columns].agg(["mean", "std"]).round(3).to_string())
    print_paired(df)


def run_all(args: argparse.Namespace) -> pd.DataFrame:
    """Trains every (variant, seed, class); with --out, rewrites the CSV after each finished run."""
    data = {
        "dataset": args.dataset,
        "data_root": args.data_root,
        "train_subset": args.train_subset,
        "test_subset": args.test_subset,
        "width": args.width,
    }
    jobs = [(v, c, s, args.epochs, data) for v in args.variants for s in args.seeds for c in args.classes]
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(run_one, *zip(*jobs, strict=True)):
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.out:
                atomic_write(args.out, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
    return pd.DataFrame(rows)


def print_paired(df: pd.DataFrame) -> None:
    """Each variant's AUC minus the default's for the same (class, seed), where both ran."""
    auc = df.pivot_table(index=["class", "seed"], columns="variant", values="auc")
    if "default" not in auc:
        return
    for variant in auc.columns.drop("default"):
        diff = (auc[variant] - auc["default"]).dropna()
        if len(diff):
            print(
                f"paired AUC, {variant} - default: {diff.mean():+.3f} +- {diff.std():.3f} "
                f"(better in {(diff > 0).sum()} of {len(diff)})"
            )


if __name__ == "__main__":
    main()
