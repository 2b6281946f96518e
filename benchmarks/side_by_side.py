"""Algorithm 1 side by side, in one sitting on one machine: against an older commit's code, or
against the peer, anomalib's GANomaly; or this code's defaults against a variant (`--set`).

Speed: images/s and MFLOP/image (`throughput.py --cycle-only`), each measurement in a fresh
process, the two sides alternating (in the order AB, BA, AB, ...) so that both meet the same
load; each row records the 1-minute load before it ran. The ratio is paired by round.
Metrics: `cvgad train` on the book's task (`cvgad.experiment.params.BOOK`: digits, 7 the
anomaly) for the same seeds under both codes, so AUC can be compared paired by seed (a
speed-up must leave results unchanged).

    python benchmarks/side_by_side.py --peer ganomaly --rounds 6 --out benchmarks/results/side_by_side_ganomaly.csv
    python benchmarks/side_by_side.py --ref a0d7fd2 --rounds 6 --out benchmarks/results/side_by_side_speed.csv
    python benchmarks/side_by_side.py --ref a0d7fd2 --metrics --seeds 0 1 2 3 4 \\
        --out benchmarks/results/side_by_side_metrics.csv
    python benchmarks/side_by_side.py --peer ganomaly --set gradient_penalty_every=4 --out ...
    python benchmarks/side_by_side.py --metrics --set gradient_penalty_every=4 --out ...

`--set KEY=VALUE` changes a LossConfig field of Algorithm 1, `--compile` compiles its CVAE
(TrainConfig.compile): against the peer, the timed Algorithm 1 uses them; with `--metrics` and
no `--ref`, the defaults are compared with them.

An older commit is checked out into a temporary git worktree and timed with its own
`benchmarks/throughput.py`, importing its own code (PYTHONPATH).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from throughput import add_variant_arguments

from cvgad.experiment.params import BOOK, RunParams

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """`ref` checked out in a temporary directory (removed afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=True)


def _run(code: Path, args: list[str]) -> str:
    """`python args` importing cvgad from `code` (run there too: `-m` puts the working directory first)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.run([sys.executable, *args], env=env, cwd=code, check=True, capture_output=True, text=True).stdout


def speed_rows(sides: dict[str, tuple[Path, list[str]]], rounds: int, width: int, cycles: int) -> list[dict]:
    """`sides`: name -> (code, extra throughput.py arguments)."""
    rows = []
    for r in range(rounds):
        for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
            code, extra = sides[name]
            load = os.getloadavg()[0]
            out = _run(code, [str(code / "benchmarks/throughput.py"), "--cycle-only", "--device", "cpu",
                              "--width", str(width), "--cycles", str(cycles), *extra])  # fmt: skip
            rows.append({"round": r, "code": name, "width": width, "load_1min": round(load, 2), **json.loads(out)})
            print(rows[-1], flush=True)
    return rows


def book_task_args(seed: int) -> list[str]:
    """`cvgad train` arguments of the book's task (BOOK) with `seed`."""
    args = [f"--{key.replace('_', '-')}={value}" for key, value in BOOK.items()]
    return [*args, f"--seed={seed}", "--device=cpu"]


def metric_rows(sides: dict[str, tuple[Path, list[str]]], seeds: list[int]) -> list[dict]:
    """`sides`: name -> (code, extra `cvgad train` arguments)."""
    rows = []
    for seed in seeds:
        for name, (code, extra) in sides.items():
            with tempfile.TemporaryDirectory() as out:
                _run(code, ["-m", "cvgad", "train", *book_task_args(seed), *extra, "--out", out, "--quiet"])
                metrics = json.loads((Path(out) / "metrics.json").read_text())
            rows.append({"seed": seed, "code": name, **BOOK, "auc": metrics["auc"], "f1_best": metrics.get("f1_best")})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    side = p.add_mutually_exclusive_group()
    side.add_argument("--ref", help="the older commit (e.g. a0d7fd2)")
    side.add_argument("--peer", choices=("ganomaly",), help="the peer model to time Algorithm 1 against")
    p.add_argument("--out", required=True, type=Path, help="CSV to write")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--cycles", type=int, default=3)
    metrics_help = "AUC on the book's task instead of speed: with --ref, or of a variant (--set, --compile)"
    p.add_argument("--metrics", action="store_true", help=metrics_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    add_variant_arguments(p, "timed against --peer, or with --metrics against the defaults")
    args = p.parse_args()
    settings = args.set
    variant = " ".join(settings + ["compile"] * args.compile)  # what differs from the defaults, named in the CSV
    if args.ref and (settings or args.compile):
        p.error("--ref compares two commits' defaults: --set and --compile go with --peer or --metrics alone")
    if args.peer:
        if args.metrics:
            p.error("--metrics compares AUC on the book's task: use it with --ref, or with --set alone")
        ours = [arg for setting in settings for arg in ("--set", setting)] + ["--compile"] * args.compile
        name = f"cvgad {variant}".strip()
        base, rows = args.peer, speed_rows({name: (ROOT, ours), args.peer: (ROOT, ["--model", args.peer])},
                                           args.rounds, args.width, args.cycles)  # fmt: skip
    elif not args.ref:
        if not (args.metrics and (settings or args.compile)):
            p.error("give --ref or --peer, or --metrics with --set or --compile to compare the defaults with a variant")
        untrainable = [text for text in settings if text.partition("=")[0] not in RunParams.names()]
        if untrainable:
            p.error(f"{', '.join(untrainable)}: not a setting of cvgad train (a RunParams field)")
        flags = [f"--{key.replace('_', '-')}={value}" for key, _, value in (text.partition("=") for text in settings)]
        flags += ["--compile=true"] * args.compile
        base, rows = "default", metric_rows({"default": (ROOT, []), variant: (ROOT, flags)}, args.seeds)
    else:
        with worktree(args.ref) as old:
            codes = {args.ref: old, "current": ROOT}
            if args.metrics:
                rows = metric_rows({k: (v, []) for k, v in codes.items()}, args.seeds)
            else:
                rows = speed_rows({k: (v, []) for k, v in codes.items()}, args.rounds, args.width, args.cycles)
        base = args.ref
    new = name if args.peer else "current" if args.ref else variant
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out, index=False)
    value = "auc" if args.metrics else "images_per_s"
    wide = frame.pivot(index="seed" if args.metrics else "round", columns="code", values=value)
    paired = wide[new] - wide[base] if args.metrics else wide[new] / wide[base]
    if not args.metrics:
        wide["ratio"] = paired
        wide["load_1min"] = frame.groupby("round")["load_1min"].mean()
    print(wide.round(3).to_string())
    if "mflop_per_image" in frame:
        mflop = frame.groupby("code")["mflop_per_image"].median()
        print("MFLOP/image: " + ", ".join(f"{code} {m:.1f}" for code, m in mflop.items()))
    label = f"AUC {new} - {base}" if args.metrics else f"speed {new} / {base}"
    where = ""
    if not args.metrics:
        load, threads = frame["load_1min"], frame["threads"].iloc[0]
        where = f"; 1-minute load {load.min():.2f}-{load.max():.2f}, {threads} threads"
    print(f"{label}, paired: median {paired.median():.3f}, mean {paired.mean():.3f}, min {paired.min():.3f}, "
          f"max {paired.max():.3f} (n = {len(paired)}){where}")  # fmt: skip


if __name__ == "__main__":
    main()
