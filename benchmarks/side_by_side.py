"""Today's code against an older commit's, on the same machine in one sitting.

Speed: Algorithm 1 images/s (`throughput.py --cycle-only`), the two codes alternating round by
round so that both meet the same load; each row records the 1-minute load before it ran.
Metrics: `cvgad train` on digits for the same seeds under both codes, so AUC can be compared
paired by seed (a speed-up must leave results unchanged).

    python benchmarks/side_by_side.py --ref a0d7fd2 --rounds 6 --out benchmarks/results/side_by_side_speed.csv
    python benchmarks/side_by_side.py --ref a0d7fd2 --metrics --seeds 0 1 2 3 4 \\
        --out benchmarks/results/side_by_side_metrics.csv

The older commit is checked out into a temporary git worktree and imported via PYTHONPATH.
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


def speed_rows(codes: dict[str, Path], rounds: int, width: int, cycles: int) -> list[dict]:
    rows = []
    for r in range(rounds):
        for name, code in codes.items():
            load = os.getloadavg()[0]
            out = _run(code, [str(ROOT / "benchmarks/throughput.py"), "--cycle-only", "--device", "cpu",
                              "--width", str(width), "--cycles", str(cycles)])  # fmt: skip
            rows.append({"round": r, "code": name, "width": width, "load_1min": round(load, 2), **json.loads(out)})
            print(rows[-1], flush=True)
    return rows


def metric_rows(codes: dict[str, Path], seeds: list[int], epochs: int, anomaly_class: int) -> list[dict]:
    rows = []
    for seed in seeds:
        for name, code in codes.items():
            with tempfile.TemporaryDirectory() as out:
                _run(code, ["-m", "cvgad", "train", "--dataset", "digits", "--anomaly-class", str(anomaly_class),
                            "--seed", str(seed), "--epochs", str(epochs), "--device", "cpu", "--out", out])  # fmt: skip
                metrics = json.loads((Path(out) / "metrics.json").read_text())
            rows.append({"seed": seed, "code": name, "epochs": epochs, "anomaly_class": anomaly_class,
                         "auc": metrics["auc"], "f1_best": metrics.get("f1_best")})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="the older commit (e.g. a0d7fd2)")
    p.add_argument("--out", required=True, type=Path, help="CSV to write")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--metrics", action="store_true", help="compare AUC on digits instead of speed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--anomaly-class", type=int, default=1)
    args = p.parse_args()
    with worktree(args.ref) as old:
        codes = {args.ref: old, "current": ROOT}
        if args.metrics:
            rows = metric_rows(codes, args.seeds, args.epochs, args.anomaly_class)
        else:
            rows = speed_rows(codes, args.rounds, args.width, args.cycles)
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out, index=False)
    value = "auc" if args.metrics else "images_per_s"
    wide = frame.pivot(index="seed" if args.metrics else "round", columns="code", values=value)
    ratio = wide["current"] - wide[args.ref] if args.metrics else wide["current"] / wide[args.ref]
    label = "AUC current - ref" if args.metrics else "speed current / ref"
    print(wide.round(3).to_string())
    print(f"{label}, paired: mean {ratio.mean():.3f}, median {ratio.median():.3f}, min {ratio.min():.3f}, "
          f"max {ratio.max():.3f} (n = {len(ratio)})")  # fmt: skip


if __name__ == "__main__":
    main()
