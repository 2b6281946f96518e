"""Command line: `cvgad train`, `cvgad evaluate`, `cvgad ablate`, `cvgad report`."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cvgad.config import DATASETS, LOSS_NAMES, PROTOCOLS


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="dataset (default: digits, embedded, works offline)")
    p.add_argument("--protocol", default="leave_one_out", choices=PROTOCOLS,
                   help="leave_one_out (III.D), one_class (III.G), coil100 (III.H)")
    p.add_argument("--anomaly-class", type=int, default=1,
                   help="leave_one_out: the anomalous class; one_class: the normal class (default: 1)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 15)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, initialisation and batches (default: 0)")
    p.add_argument("--out", default=None, help="run directory for config.json, history.csv, checkpoint.pt, metrics.json")
    p.add_argument("--data-root", default=None, help="folder with the data (default: $CVGAD_DATA, else ./data)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N")
    p.add_argument("--disable", action="append", default=[], choices=LOSS_NAMES, metavar="LOSS",
                   help=f"switch a loss off (repeatable): {', '.join(LOSS_NAMES)}")
    p.add_argument("--n-clusters", type=int, default=None, help="K, the estimated number of normal categories")
    p.add_argument("--width", type=int, default=None, help="channels of the first conv stage (default: 32 on digits, 64 otherwise)")
    p.add_argument("--latent-dim", type=int, default=256, help="latent size (default: 256, III.C)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64, III.C)")
    p.add_argument("--train-subset", type=int, default=None, help="use at most this many training images")
    p.add_argument("--test-subset", type=int, default=None, help="use at most this many test images (stratified)")
    p.add_argument("--n-inliers", type=int, default=1, choices=(1, 4, 7), help="coil100 protocol: inlier objects")
    p.add_argument("--outlier-fraction", type=float, default=None, help="one_class / coil100: outlier share of the test set")
    p.add_argument("--fold", type=int, default=0, help="one_class: test fold 0-4")
    p.add_argument("--categorical-form", default=None, choices=("marginal", "per_sample"), help="categorical KL form")
    p.add_argument("--negative-radius", default=None, choices=("chi", "literal"), help="negative-code radius rule")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _train(args: argparse.Namespace) -> int:
    from cvgad.experiment import make_config, run_experiment, summary_line

    extra = {k: v for k, v in (("categorical_form", args.categorical_form), ("negative_radius", args.negative_radius),
                                ("outlier_fraction", args.outlier_fraction)) if v is not None}
    if args.protocol == "coil100":
        extra["n_inliers"] = args.n_inliers
    if args.protocol == "one_class":
        extra["fold"] = args.fold
    cfg = make_config(dataset=args.dataset, protocol=args.protocol, anomaly_class=args.anomaly_class, epochs=args.epochs,
                      seed=args.seed, device=args.device, data_root=args.data_root, disabled=args.disable,
                      n_clusters=args.n_clusters, width=args.width, latent_dim=args.latent_dim, batch_size=args.batch_size,
                      train_subset=args.train_subset, test_subset=args.test_subset, **extra)
    result = run_experiment(cfg, out_dir=args.out, progress=not args.quiet)
    m = result.metrics
    print(f"{args.dataset} ({m['protocol']}, class {args.anomaly_class}, seed {args.seed}) on {m['device']}: "
          f"train {m['n_train']}, val {m['n_val']}, test {m['n_test_normal']} normal + {m['n_test_anomalous']} anomalous; "
          f"{m['wall_seconds']:.0f} s")
    print(summary_line(m))
    if args.out:
        print(f"wrote {args.out}/config.json, history.csv, checkpoint.pt, metrics.json")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from cvgad.experiment import evaluate_run, summary_line

    metrics = evaluate_run(args.run_dir, device=args.device, data_root=args.data_root)
    print(summary_line(metrics))
    print(json.dumps(metrics, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cvgad", description="CVGAD (Bian et al., IEEE Access 2019): train, "
                                     "evaluate and ablate a CVAE-GAN semi-supervised anomaly detector.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train on normal images and score the test set",
                           description="Train with Algorithm 1 and evaluate (AUC, F1). Example: cvgad train "
                           "--dataset digits --anomaly-class 1 --epochs 5 --seed 0 --out runs/digits-1")
    _add_train_arguments(train)
    train.set_defaults(func=_train)
    ev = sub.add_parser("evaluate", help="score a saved run again", description="Re-score a run directory written by `cvgad train --out`.")
    ev.add_argument("run_dir", help="run directory with config.json and checkpoint.pt")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ev.add_argument("--data-root", default=None, help="override the data root saved in the run's config")
    ev.set_defaults(func=_evaluate)
    try:
        from cvgad import ablation, report
    except ImportError:  # the ablation extra is not installed
        return parser
    ab = sub.add_parser("ablate", help="run a loss-removal grid (Table 1) with papermill",
                        description="Run every (row, seed) of an ablation grid as a papermill notebook; resumable.")
    ablation.add_ablate_arguments(ab)
    ab.set_defaults(func=ablation.ablate_main)
    rep = sub.add_parser("report", help="aggregate an ablation grid into Table 1",
                         description="Aggregate finished ablation runs: CSV, Markdown table, bar chart.")
    report.add_report_arguments(rep)
    rep.set_defaults(func=report.report_main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"cvgad {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
