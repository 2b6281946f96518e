"""The GPU path checked in one prepared run of about 8 minutes on a CUDA machine.

    python benchmarks/gpu_check.py --out OUT [--data-root DIR] [--budget-s 420]
    python benchmarks/gpu_check.py --out OUT --quick     # the CPU test's sizes

Each part writes OUT/<part>.json; OUT/summary.json holds them all and a summary is printed.
1. parity: the losses of Algorithm 1's updates from the same weights and batch (no random
   draw) on the CPU and on CUDA in float32 and in bfloat16 autocast; then digits, anomaly class
   1, seed 0, the digits defaults and 5 epochs trained on each: the AUC, or the error that stopped
   training (e.g. a NaN loss). Tolerances (PARITY_TOLERANCE) are stated with their reasons.
2. throughput: Algorithm 1 images/s at batch 64 and 256, float32 and bfloat16, eager and with
   the CVAE compiled (torch.compile; the critic stays eager, since its gradient penalty needs a
   double backward that compiled graphs do not support), contiguous and channels_last, each as
   a fraction of the device's measured matmul peak in that dtype.
3. packed: Table 1's `paper` preset (its width, epochs and seeds, read from table1.yaml; every
   CIFAR-10 training normal) needs 7 rows x its seeds runs. K training processes share the GPU
   at once (K = 1, 2, 4, 7); their summed images/s gives the time of one seed's 7 rows and of
   the full preset at the best K. With CIFAR-10 under
   --data-root, the preset's seed-0 grid then runs at that K for the rest of the budget, and the
   finished runs' metrics are recorded.

Without CUDA it says so, runs the throughput part on the CPU (batch 64, float32, eager; bf16
is slower there and compiling takes minutes), records parity and packing as skipped with the
reason, and exits 0: that is the path CI tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import OPEN_GATE, count_flops, cycle_rate, matmul_peak  # noqa: E402

from cvgad.atomic import atomic_write_text  # noqa: E402
from cvgad.experiment.data import load_dataset  # noqa: E402
from cvgad.experiment.experiment import run_experiment  # noqa: E402
from cvgad.experiment.params import make_config  # noqa: E402
from cvgad.model import losses as L  # noqa: E402
from cvgad.model.algorithm1 import CYCLE, CVGADTrainer  # noqa: E402
from cvgad.model.config import ModelConfig, TrainConfig  # noqa: E402
from cvgad.model.networks import (  # noqa: E402
    CVAE,
    Critic,
    as_float_images,  # noqa: E402
)
from cvgad.workbench.grid import load_grid  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: CIFAR-10's training normals with deer as the anomaly (ablations/table1.yaml's comment).
PAPER_TRAIN_IMAGES = 43_200


def paper_preset() -> dict[str, int]:
    """Table 1's `paper` preset as the grid file says: rows that train (not `untrained`), seeds,
    epochs, width."""
    grid = load_grid(ROOT / "ablations" / "table1.yaml")
    settings, seeds = grid.resolve("paper")
    return {
        "train_images": PAPER_TRAIN_IMAGES,
        "epochs": settings["epochs"],
        "rows": sum(1 for row in grid.rows if row.settings.get("epochs") != 0),
        "seeds": len(seeds),
        "width": settings["width"],
    }


#: How closely CUDA must match the CPU. The updates' losses from the same weights and batch
#: (`_losses`): relative, float32 0.01 (cuDNN runs float32 convolutions in TF32 by default, a
#: 10-bit mantissa: ~1e-3 per operation), bfloat16 0.05 (an 8-bit mantissa). AUC after 5
#: epochs: trajectories diverge as rounding differences grow, so CUDA must land within the
#: seed-to-seed spread of this configuration on the CPU: AUC 0.757 +- 0.075 over 5 seeds
#: (benchmarks/results/side_by_side_metrics.csv), taken twice.
PARITY_TOLERANCE = {"losses_fp32": 0.01, "losses_bf16": 0.05, "auc": 0.15}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda": cuda,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cpu_threads": torch.get_num_threads(),
        "load_1min": os.getloadavg()[0],
    }


# ------------------------------------------------------------------------------------- parity
def _losses(device: str, amp: bool) -> dict[str, float]:
    """The losses of Algorithm 1's updates on 64 digits, from the same initial weights on every
    device and with no random draw (codes at mu, a fixed interpolation t): CPU and CUDA runs draw
    different random numbers, so losses of a real training step are not comparable across them."""
    torch.manual_seed(0)
    model_cfg = make_config(dataset="digits").model
    cvae, critic = CVAE(model_cfg).to(device), Critic(model_cfg).to(device)
    x = as_float_images(load_dataset("digits").images[:64]).to(device)
    t = torch.rand(64, 1, 1, 1, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        mu, logvar, features = cvae.encoder(x)
        recon = cvae.decoder(mu).float()
        probs = cvae.classifier(mu).float().softmax(dim=1)
        losses = {
            "recon": L.reconstruction_loss(x, recon),
            "latent": L.latent_loss(mu.float(), logvar.float(), cvae.means, probs),
            "mi": L.mutual_information_loss(cvae.fd, features, mu).float(),
            "critic": critic(recon.detach()).float().mean()
            - critic(x).float().mean()
            + 10 * L.gradient_penalty(critic, x, recon.detach(), t).float(),
        }
    return {name: float(value.detach()) for name, value in losses.items()}


def _train(device: str, amp: bool, epochs: int) -> dict[str, Any]:
    cfg = make_config(dataset="digits", anomaly_class=1, seed=0, epochs=epochs, device=device)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, amp=amp))
    start = time.perf_counter()
    try:
        result = run_experiment(cfg, progress=False)
    except Exception as error:  # a failed run (e.g. a NaN loss) is a result, not the end of the check
        return {"error": f"{type(error).__name__}: {error}", "seconds": time.perf_counter() - start}
    return {"auc": result.metrics["auc"], "seconds": time.perf_counter() - start}


def parity(epochs: int = 5) -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device: parity compares the CPU with CUDA"}
    losses = {"cpu": _losses("cpu", False), "cuda_fp32": _losses("cuda", False), "cuda_bf16": _losses("cuda", True)}
    runs = {
        "cpu": _train("cpu", False, epochs),
        "cuda_fp32": _train("cuda", False, epochs),
        "cuda_bf16": _train("cuda", True, epochs),
    }
    checks: dict[str, Any] = {}
    for name, key in (("cuda_fp32", "losses_fp32"), ("cuda_bf16", "losses_bf16")):
        rel = max(abs(losses[name][k] - v) / max(abs(v), 1e-8) for k, v in losses["cpu"].items())
        check = {"losses_max_relative_difference": rel, "losses_ok": rel <= PARITY_TOLERANCE[key]}
        failed = [run for run in ("cpu", name) if "error" in runs[run]]
        if failed:
            check["training_failed"] = failed
        else:
            gap = abs(runs[name]["auc"] - runs["cpu"]["auc"])
            check |= {"auc_difference": gap, "auc_ok": gap <= PARITY_TOLERANCE["auc"]}
        checks[name] = check
    return {
        "config": {"dataset": "digits", "anomaly_class": 1, "seed": 0, "epochs": epochs},
        "tolerance": PARITY_TOLERANCE,
        "losses": losses,
        "runs": runs,
        "checks": checks,
    }


# --------------------------------------------------------------------------------- throughput
def _flops_per_image(width: int, device: torch.device) -> float:
    """FLOPs of one Algorithm 1 cycle per image (batch 8: the count does not depend on batch size)."""
    model_cfg = ModelConfig(channels=3, width=width, latent_dim=256, n_clusters=9)
    cfg = TrainConfig(batch_size=8, device=str(device), amp=False, losses=OPEN_GATE)
    trainer, x = CVGADTrainer(model_cfg, cfg), torch.rand(8, 3, 32, 32, device=device)
    return count_flops(lambda: [trainer.step(x) for _ in range(CYCLE)]) / (CYCLE * 8)


def throughput(device: torch.device, width: int, cycles: int, quick: bool) -> dict[str, Any]:
    cuda = device.type == "cuda"
    batches = (16,) if quick else (64, 256) if cuda else (64,)
    dtypes = ("float32", "bfloat16") if cuda else ("float32",)
    compiles = (False, True) if cuda else (False,)
    flops = _flops_per_image(width, device)
    peaks = {d: matmul_peak(device, getattr(torch, d), 8192 if cuda else 1024) for d in dtypes}
    rows = []
    for batch in batches:
        for dtype in dtypes:
            for compiled in compiles:
                for fmt in ("contiguous", "channels_last"):
                    row: dict[str, Any] = {"batch": batch, "dtype": dtype, "compiled": compiled, "memory_format": fmt}
                    try:
                        start = time.perf_counter()
                        rate = cycle_rate(
                            width, batch, cycles, device, dtype == "bfloat16", compile=compiled, memory_format=fmt
                        )
                        row.update(
                            images_per_s=rate,
                            fraction_of_peak=rate * flops / peaks[dtype],
                            seconds=time.perf_counter() - start,
                        )
                    except Exception as error:  # a failed variant is a result, not the end of the check
                        row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
                    rows.append(row)
                    print("  throughput", row, flush=True)
    ok = [r for r in rows if "images_per_s" in r]
    best = max(ok, key=lambda r: r["images_per_s"]) if ok else None
    return {"width": width, "flops_per_image": flops, "matmul_peak_flops": peaks, "rows": rows, "best": best}


# ------------------------------------------------------------------------------------- packed
def _worker(seconds: float, width: int, batch: int, amp: bool) -> None:
    """One packed training process: Algorithm 1 on CIFAR-shaped images held on the device."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_cfg = ModelConfig(channels=3, width=width, latent_dim=256, n_clusters=9)
    trainer = CVGADTrainer(model_cfg, TrainConfig(batch_size=batch, device=str(device), amp=amp))
    data = torch.randint(0, 256, (batch * 8, 3, 32, 32), dtype=torch.uint8, device=device)
    for b in range(CYCLE):  # warm-up
        trainer.step(data[b * batch : (b + 1) * batch])
    _sync(device)
    start, images = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for b in range(CYCLE):
            trainer.step(data[b * batch : (b + 1) * batch])
        images += CYCLE * batch
        _sync(device)
    print(json.dumps({"images_per_s": images / (time.perf_counter() - start)}))


def _packed_rate(k: int, seconds: float, width: int, batch: int, amp: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", str(seconds), "--width", str(width), "--batch", str(batch)]
    procs = [subprocess.Popen([*cmd, *(["--amp"] if amp else [])], stdout=subprocess.PIPE, text=True) for _ in range(k)]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["images_per_s"] for p in procs]
    return {"processes": k, "images_per_s_each": rates, "images_per_s_total": sum(rates)}


def packed(
    device: torch.device,
    seconds: float,
    width: int,
    batch: int,
    ks: tuple[int, ...],
    data_root: str | None,
    budget_s: float,
    out: Path,
) -> dict[str, Any]:
    """Packing throughput, the full preset's projected time, and as much of the seed-0 grid as fits."""
    amp = device.type == "cuda"
    rows = [_packed_rate(k, seconds, width, batch, amp) for k in ks]
    best = max(rows, key=lambda r: r["images_per_s_total"])
    paper = paper_preset()
    per_seed = paper["train_images"] * paper["epochs"] * paper["rows"]
    result: dict[str, Any] = {
        "images": "random uint8 images of CIFAR-10's shape, on the device (throughput does not depend on content)",
        "width": width,
        "batch": batch,
        "bf16_autocast": amp,
        "rows": rows,
        "best_processes": best["processes"],
        "paper_preset": paper,
        "projected_hours_per_seed": per_seed / best["images_per_s_total"] / 3600,
        "projected_hours_full_preset": paper["seeds"] * per_seed / best["images_per_s_total"] / 3600,
        "projection_note": "training only; scoring the 10,000 test images adds seconds per run",
    }
    cifar = data_root is not None and (Path(data_root) / "cifar10_train_jpegq75.npz").exists()
    if not cifar:
        result["grid"] = {"skipped": f"no CIFAR-10 under --data-root {data_root!r}"}
    elif budget_s < 60:
        result["grid"] = {"skipped": f"{budget_s:.0f} s of the budget left, too little for a run"}
    else:
        result["grid"] = _paper_grid(best["processes"], data_root, budget_s, out / "table1_paper")
    return result


def _paper_grid(jobs: int, data_root: str, budget_s: float, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "cvgad",
        "ablate",
        str(ROOT / "ablations/table1.yaml"),
        "--preset",
        "paper",
        "--seeds",
        "0",
        "--jobs",
        str(jobs),
        "--data-root",
        data_root,
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, timeout=budget_s, check=False, capture_output=True, text=True)
        ended = {"returncode": done.returncode, "stderr_tail": done.stderr[-1000:]}
    except subprocess.TimeoutExpired:
        ended = {"returncode": None, "stopped_at_budget_s": budget_s}
    metrics = {p.parent.parent.name: json.loads(p.read_text()) for p in out.rglob("metrics.json")}
    return {
        "jobs": jobs,
        "seconds": time.perf_counter() - start,
        **ended,
        "finished_runs": {
            row: {k: m[k] for k in ("auc", "f1_best", "f1_val", "wall_seconds")} for row, m in metrics.items()
        },
    }


# --------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="folder for the JSON files")
    p.add_argument("--data-root", help="folder with cifar10_train_jpegq75.npz, for the packed grid")
    p.add_argument("--budget-s", type=float, default=420, help="seconds for the whole check (default 420)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: the CPU test")
    p.add_argument("--worker", type=float, help=argparse.SUPPRESS)  # seconds; one packed process
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--amp", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        _worker(args.worker, args.width, args.batch, args.amp)
        return {}
    if args.out is None:
        p.error("--out is required")
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    env = environment()
    device = torch.device("cuda" if env["cuda"] else "cpu")
    print(f"gpu_check: {env['device']}, torch {env['torch']}" + ("" if env["cuda"] else "; no CUDA, CPU parts only"))
    width = 8 if args.quick else args.width
    summary: dict[str, Any] = {"environment": env}
    summary["parity"] = parity(epochs=1 if args.quick else 5)
    summary["throughput"] = throughput(device, width, 1 if args.quick else 3, args.quick)
    if env["cuda"]:
        left = args.budget_s - (time.perf_counter() - start)
        width = paper_preset()["width"]
        summary["packed"] = packed(device, 20, width, 64, (1, 2, 4, 7), args.data_root, left - 90, args.out)
    else:
        summary["packed"] = {"skipped": "no CUDA device: packing runs share one GPU"}
    summary["seconds"] = time.perf_counter() - start
    for part, value in summary.items():
        atomic_write_text(args.out / f"{part}.json", json.dumps(value, indent=1))
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=1))
    _print_summary(summary)
    return summary


def _print_summary(s: dict[str, Any]) -> None:
    print(f"\n== gpu_check on {s['environment']['device']} in {s['seconds']:.0f} s")
    par = s["parity"]
    for name, c in par.get("checks", {}).items():
        line = f"parity {name}: losses rel. diff {c['losses_max_relative_difference']:.2g} (ok {c['losses_ok']})"
        if "training_failed" in c:
            line += f"; training failed on {', '.join(c['training_failed'])} (see parity.json)"
        else:
            line += f", AUC diff {c['auc_difference']:.3f} (ok {c['auc_ok']})"
        print(line)
    if "skipped" in par:
        print(f"parity: skipped ({par['skipped']})")
    best = s["throughput"]["best"]
    if best:
        print(
            f"throughput best: {best['images_per_s']:.0f} images/s at batch {best['batch']}, {best['dtype']}, "
            f"compiled {best['compiled']}, {best['memory_format']} ({100 * best['fraction_of_peak']:.1f}% of peak)"
        )
    pk = s["packed"]
    if "skipped" in pk:
        print(f"packed: skipped ({pk['skipped']})")
    else:
        print(
            f"packed: best {pk['best_processes']} processes; paper preset ~{pk['projected_hours_per_seed']:.2f} h "
            f"per seed (7 rows), ~{pk['projected_hours_full_preset']:.2f} h for its {pk['paper_preset']['seeds']} "
            f"seeds; grid: {pk['grid']}"
        )


if __name__ == "__main__":
    main()
