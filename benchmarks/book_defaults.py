"""The search behind the book's defaults (issue 13): which digits configuration and budget make the
chapters demonstrate what they claim, on 2 CPU cores.

For each candidate and seed (digits, anomaly class 1 unless a candidate says otherwise) it trains
one model and records, paired on the seed: the test AUC of the same network before training (epoch
0), after every epoch and at the end; the clustering of chapter 5 before and after (NMI of
argmax p(y|z) with the classes on normal test images, how far the means mu_y moved, the smallest
distance between two means, the share of normal codes inside the negative radius); the
decoded-means check (a logistic regression fitted on the digits labels images decoded near each
mean: how many distinct digits, how consistently and confidently per cluster); and when the gate T
first let negative training through, with the NMI at the end of the epoch before.

    python benchmarks/book_defaults.py --out benchmarks/results/book_defaults.csv --jobs 2

Rows are written (atomically) as they finish and a rerun skips the (candidate, seed) pairs already in --out.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from cvgad.atomic import atomic_write
from cvgad.experiment.params import BOOK

#: The candidates: settings over the digits defaults (anomaly class 1).
CANDIDATES: dict[str, dict] = {
    "latent256_w32_e6": {"latent_dim": 256, "width": 32, "epochs": 6},  # the chapters before issue 13
    "latent256_sum_e6": {"latent_dim": 256, "width": 32, "epochs": 6, "latent_reduction": "sum"},
    "latent64_w32_e6": {"latent_dim": 64, "width": 32, "epochs": 6},
    "latent32_w32_e6": {"latent_dim": 32, "width": 32, "epochs": 6},
    "latent32_w16_e6": {"latent_dim": 32, "width": 16, "epochs": 6},
    "latent32_w16_e3": {"latent_dim": 32, "width": 16, "epochs": 3},
    "latent32_w16_e3_train500": {"latent_dim": 32, "width": 16, "epochs": 3, "train_subset": 500},  # the ci preset
    "latent32_w32_e10": {"latent_dim": 32, "width": 32, "epochs": 10},
    "latent32_w32_e6_lr3e-4": {"latent_dim": 32, "width": 32, "epochs": 6, "lr": 3e-4},
    "latent32_w16_e6_anomaly0": {"latent_dim": 32, "width": 16, "epochs": 6, "anomaly_class": 0},
    "latent32_w16_e6_anomaly2": {"latent_dim": 32, "width": 16, "epochs": 6, "anomaly_class": 2},
    "latent32_w16_e6_anomaly7": {"latent_dim": 32, "width": 16, "epochs": 6, "anomaly_class": 7},
    "a7_meanslr1e-2": {"latent_dim": 32, "width": 16, "epochs": 6, "anomaly_class": 7, "means_lr": 1e-2},
    "a7_meanslr3e-2": {"latent_dim": 32, "width": 16, "epochs": 6, "anomaly_class": 7, "means_lr": 3e-2},
    "a7_meaninit1": {"latent_dim": 32, "width": 16, "epochs": 6, "anomaly_class": 7, "mean_init_scale": 1.0},
    "a7_e12": {"latent_dim": 32, "width": 16, "epochs": 12, "anomaly_class": 7},
    "a7_meanslr3e-2_gate0.9": {
        "latent_dim": 32,
        "width": 16,
        "epochs": 6,
        "anomaly_class": 7,
        "means_lr": 3e-2,
        "negative_threshold": 0.9,
    },
    "a7_meanslr3e-2_gate1": {
        k: v for k, v in BOOK.items() if k != "dataset"
    },  # the book's (cvgad.experiment.params.BOOK)
    "a1_meanslr3e-2_gate1": {
        "latent_dim": 32,
        "width": 16,
        "epochs": 6,
        "anomaly_class": 1,
        "means_lr": 3e-2,
        "negative_threshold": 1.0,
    },
}
PER_CLUSTER = 10
NOISE_SCALE = 0.5


def run_one(candidate: str, seed: int, threads: int) -> dict:
    from cvgad.book.latent import (
        decode_near_means,
        decoded_means_check,
        digit_classifier,
        encode,
        latent_summary,
        means_score,
    )
    from cvgad.experiment.data import load_dataset
    from cvgad.experiment.experiment import make_config, prepare, run_experiment
    from cvgad.model.scoring import evaluate_model

    torch.set_num_threads(threads)
    data = load_dataset("digits")
    classifier, _ = digit_classifier(data.images, data.labels)
    cfg = make_config(
        **{"dataset": "digits", "anomaly_class": 1, "seed": seed, "device": "cpu", **CANDIDATES[candidate]}
    )
    _, split = prepare(cfg, data)
    test_images, classes, is_anomaly = (
        data.images[torch.as_tensor(split.test)],
        data.labels[split.test],
        split.test_labels == 1,
    )
    record: dict = {
        "candidate": candidate,
        "seed": seed,
        **CANDIDATES[candidate],
        "anomaly_class": cfg.data.anomaly_class,
    }
    init: dict = {}
    auc_after: dict[int, float] = {}
    measured: dict[int, dict] = {}  # per epoch: latent_summary, with the decoded-means check at 0 and at the end

    def on_epoch(epoch: int, trainer) -> None:
        """Scores and encodes the test images once per epoch (0: the seed's untrained network)."""
        if epoch == 0:
            init["means"] = trainer.cvae.means.detach().clone()
        codes = encode(trainer.cvae, test_images)
        measured[epoch] = latent_summary(trainer.cvae, codes, classes, is_anomaly, trainer.radius, init["means"], seed)
        if epoch in (0, cfg.train.epochs):
            decoded = decode_near_means(trainer.cvae, PER_CLUSTER, NOISE_SCALE, seed)
            measured[epoch] |= means_score(decoded_means_check(classifier, decoded, PER_CLUSTER))
        reference = split.val if len(split.val) else split.train
        auc_after[epoch] = evaluate_model(
            trainer.cvae, data.images, split.test, split.test_labels, reference, seed=seed
        ).metrics["auc"]

    start = time.perf_counter()
    result = run_experiment(cfg, progress=False, dataset=data, on_epoch=on_epoch)
    history = result.history
    negative = history["negative"] if "negative" in history else pd.Series(dtype=float)
    opened = negative.first_valid_index()
    gate_epoch = None if opened is None else int(history.loc[opened, "step"]) * cfg.train.epochs // len(history)
    untrained = {f"{k}_untrained": v for k, v in measured[0].items() if k != "means_moved"}
    return (
        record
        | untrained
        | {
            "auc": result.metrics["auc"],
            "auc_untrained": auc_after[0],
            "auc_gain": result.metrics["auc"] - auc_after[0],
            "auc_by_epoch": " ".join(f"{auc_after[e]:.3f}" for e in sorted(auc_after)),
            "f1_val": result.metrics["f1_val"],
            "f1_floor": result.metrics["f1_floor"],
            **measured[cfg.train.epochs],
            "negative_updates": int(negative.notna().sum()),
            "gate_open_epoch": gate_epoch,
            "nmi_when_gate_opened": None if gate_epoch is None else measured[gate_epoch]["nmi_normal"],
            "nmi_by_epoch": " ".join(f"{measured[e]['nmi_normal']:.3f}" for e in sorted(measured)),
            "seconds": time.perf_counter() - start,
            "threads": threads,
        }
    )


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per candidate: n seeds, mean ± std of the paired measures, and how many seeds agree."""

    def ms(values: pd.Series) -> str:
        return f"{values.mean():.3f} ± {values.std():.3f}" if len(values) > 1 else f"{values.mean():.3f}"

    out = []
    for candidate, r in rows.groupby("candidate", sort=False):
        out.append(
            {
                "candidate": candidate,
                "n": len(r),
                "AUC untrained": ms(r["auc_untrained"]),
                "AUC trained": ms(r["auc"]),
                "gain (ahead)": f"{r['auc_gain'].mean():+.3f} ({int((r['auc_gain'] > 0).sum())}/{len(r)})",
                "NMI untrained -> trained": f"{r['nmi_normal_untrained'].mean():.3f} -> {r['nmi_normal'].mean():.3f}",
                "distinct digits (of 9)": (
                    f"{r['distinct_digits_untrained'].mean():.1f} -> {r['distinct_digits'].mean():.1f}"
                ),
                "consistency": f"{r['consistency'].mean():.2f}",
                "means moved": f"{r['means_moved'].mean():.2f}",
                "normal inside radius": f"{r['normal_inside_radius'].mean():.3f}",
                "gate opened (epoch, per seed)": " ".join(
                    "-" if pd.isna(e) else str(int(e) + 1) for e in r["gate_open_epoch"]
                ),
            }
        )
    return pd.DataFrame(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="CSV of rows (resumed; with --summary: read)")
    p.add_argument("--summary", action="store_true", help="print the per-candidate summary of --out and stop")
    args = p.parse_args()
    if args.summary:
        print(summary(pd.read_csv(args.out)).to_markdown(index=False))
        return
    done = pd.read_csv(args.out) if args.out.exists() else pd.DataFrame(columns=["candidate", "seed"])
    finished = set(zip(done["candidate"], done["seed"], strict=True))
    todo = [(c, s) for c in args.candidates for s in args.seeds if (c, s) not in finished]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(f"{len(todo)} runs to do, {args.jobs} at a time with {threads} thread(s) each; load {os.getloadavg()}")
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_one, c, s, threads) for c, s in todo]
        for future in futures:
            row = pd.DataFrame([future.result()])
            done = pd.concat([done, row], ignore_index=True)
            atomic_write(args.out, lambda tmp, table=done: table.to_csv(tmp, index=False))
            print(
                row[
                    ["candidate", "seed", "auc_untrained", "auc", "nmi_normal", "distinct_digits", "seconds"]
                ].to_string(header=False)
            )
    print(f"load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
