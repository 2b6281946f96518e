"""Throughput of Algorithm 1 on the current device (not a test; prints numbers).

Measures, at batch 64 on 32x32x3 images with the DCGAN-width model (latent 256, K 9):
- images per second of full Algorithm 1 cycles (six batches: four "0-3" steps, a critic
  step and a generator step), and of a plain VAE step (one forward/backward/Adam update of
  encoder + decoder with L1 + Gaussian KL) for scale;
- the FLOPs per image of each (counted by torch.utils.flop_counter on one cycle);
- the device's measured matmul peak and the fraction of it that the training reaches;
- Algorithm 1 in both memory layouts (contiguous NCHW and channels_last), and which one
  `TrainConfig.memory_format="auto"` picks on this device.

    python benchmarks/throughput.py [--device auto] [--width 64] [--cycles 3]
    python benchmarks/throughput.py --cycle-only   # one JSON line: Algorithm 1 images/s, MFLOP/image
    python benchmarks/throughput.py --cycle-only --model ganomaly   # the same for the peer
    python benchmarks/throughput.py --by-update   # milliseconds per cycle in each update

The peer is anomalib's GANomaly (`cvgad.model.baselines.GanomalyTrainer`: a generator and a
discriminator update per batch) with its own latent size (100) and `--width` features, timed
over as many images as the Algorithm 1 cycles. `side_by_side.py --peer ganomaly` alternates both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from cvgad.model.algorithm1 import CYCLE, CVGADTrainer
from cvgad.model.baselines import GanomalyTrainer
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig
from cvgad.model.networks import CVAE
from cvgad.model.training import Trainer, resolve_device

#: The gate T always open, so every update of Algorithm 1 is timed.
OPEN_GATE = LossConfig(negative_gate="absolute", negative_threshold=float("inf"))
#: GANomaly's latent size in its paper and in anomalib (`latent_vec_size`).
GANOMALY_LATENT = 100


def make_trainer(
    model: str,
    width: int,
    batch_size: int,
    device: torch.device,
    amp: bool = True,
    losses: dict[str, Any] | None = None,
    **train,
) -> Trainer:
    """Algorithm 1 (latent 256, K 9, the gate open so every update runs; `losses` sets other
    LossConfig fields) or GANomaly (its own latent size), `width` channels in the first stage;
    `train` sets TrainConfig fields."""
    cfg = TrainConfig(batch_size=batch_size, device=str(device), amp=amp, **train)
    if model == "ganomaly":
        return GanomalyTrainer(ModelConfig(model="ganomaly", channels=3, width=width, latent_dim=GANOMALY_LATENT), cfg)
    model_cfg = ModelConfig(channels=3, width=width, latent_dim=256, n_clusters=9)
    return CVGADTrainer(model_cfg, dataclasses.replace(cfg, losses=dataclasses.replace(OPEN_GATE, **(losses or {}))))


def six_batches(trainer: Trainer, batch_size: int, device: torch.device) -> Callable[[], None]:
    """Six training steps on one random batch: one Algorithm 1 cycle, or six GANomaly steps."""
    x = torch.rand(batch_size, 3, 32, 32, device=device)

    def run() -> None:
        for _ in range(CYCLE):
            trainer.step(x)

    return run


def cycle_rate(
    width: int, batch_size: int, cycles: int, device: torch.device, amp: bool, compile: bool = False, **train
) -> float:
    """Images per second of full Algorithm 1 cycles (gate open, so every update runs); with
    `compile`, the CVAE's networks are compiled (TrainConfig.compile) and the critic stays eager."""
    trainer = make_trainer("cvgad", width, batch_size, device, amp, compile=compile, **train)
    return CYCLE * batch_size / time_it(six_batches(trainer, batch_size, device), device, cycles)


def step_rate(
    model: str,
    width: int,
    batch_size: int,
    cycles: int,
    device: torch.device,
    amp: bool,
    losses: dict[str, Any] | None = None,
    compile: bool = False,
) -> dict:
    """Images/s of training `model` over `cycles` x 6 batches (after one warm-up), and its MFLOP per
    image (counted on an eager copy where `compile`: the same work, as the operators run it)."""
    run = six_batches(make_trainer(model, width, batch_size, device, amp, losses, compile=compile), batch_size, device)
    rate = CYCLE * batch_size / time_it(run, device, cycles)
    if compile:
        run = six_batches(make_trainer(model, width, batch_size, device, amp, losses), batch_size, device)
    return {"images_per_s": rate, "mflop_per_image": count_flops(run) / (CYCLE * batch_size) / 1e6}


#: Algorithm 1's updates (CVGADTrainer methods), each timed alone by `by_update`.
UPDATES = (
    "_reconstruction_update", "_critic_update", "_negative_update", "_mutual_information_update",
    "_latent_update", "_generator_update",
)  # fmt: skip


def by_update(
    width: int, batch_size: int, cycles: int, device: torch.device, losses: dict[str, Any] | None = None
) -> dict[str, float]:
    """Where an Algorithm 1 cycle's time goes: milliseconds per cycle in each update (eager, the
    gate open), and the rest (the first CVAE pass of counters 0-3, the images the critic updates
    get, logging)."""
    trainer = make_trainer("cvgad", width, batch_size, device, losses=losses)
    spent = dict.fromkeys(UPDATES, 0.0)
    for name in UPDATES:
        method = getattr(trainer, name)

        def timed(*args, _method=method, _name=name, **kwargs):
            _sync(device)
            start = time.perf_counter()
            out = _method(*args, **kwargs)
            _sync(device)
            spent[_name] += time.perf_counter() - start
            return out

        setattr(trainer, name, timed)
    run = six_batches(trainer, batch_size, device)
    run()  # warm-up
    spent.update(dict.fromkeys(UPDATES, 0.0))
    start = time.perf_counter()
    for _ in range(cycles):
        run()
    total = time.perf_counter() - start
    ms = {name: 1000 * seconds / cycles for name, seconds in spent.items()}
    return {**ms, "rest": 1000 * total / cycles - sum(ms.values()), "cycle": 1000 * total / cycles}


def loss_setting(text: str) -> str:
    """KEY=VALUE for a LossConfig field (VALUE read as YAML: 4, 0.5, prior), checked and kept as given."""
    key, equals, _ = text.partition("=")
    fields = sorted(f.name for f in dataclasses.fields(LossConfig))
    if not equals or key not in fields:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE of a LossConfig field: {', '.join(fields)}")
    return text


def loss_settings(texts: list[str]) -> dict[str, Any]:
    """The LossConfig fields of `loss_setting` texts, their values read as YAML."""
    return {key: yaml.safe_load(value) for key, _, value in (text.partition("=") for text in texts)}


def add_variant_arguments(p: argparse.ArgumentParser, when: str) -> None:
    """--set KEY=VALUE (LossConfig fields, repeatable) and --compile (TrainConfig.compile): Algorithm 1's variant."""
    p.add_argument(
        "--set",
        action="append",
        default=[],
        type=loss_setting,
        metavar="KEY=VALUE",
        help=f"{when}: a LossConfig field of Algorithm 1, e.g. gradient_penalty_every=4 (repeatable)",
    )
    p.add_argument("--compile", action="store_true", help=f"{when}: Algorithm 1 with TrainConfig.compile")  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 10) -> float:
    """FLOP/s of an n x n matmul in `dtype`, the best of `repeats`."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def time_it(fn, device: torch.device, repeats: int) -> float:
    """Seconds per call of `fn`, after one warm-up call, syncing only around the timed loop."""
    fn()
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / repeats


class _FlopCount(TorchDispatchMode):
    """Adds up torch's own per-operator FLOP formulas (those of FlopCounterMode). FlopCounterMode
    itself cannot be used: its module hooks break the double backward of the gradient penalty."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(fn) -> int:
    with _FlopCount() as counter:
        fn()
    return counter.total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cycles", type=int, default=3, help="Algorithm 1 cycles (of 6 batches) to time")
    p.add_argument("--no-amp", action="store_true", help="disable bfloat16 autocast on CUDA")
    p.add_argument("--cycle-only", action="store_true", help="print one JSON line: images/s and MFLOP/image")
    p.add_argument("--model", choices=("cvgad", "ganomaly"), default="cvgad", help="what --cycle-only trains")
    p.add_argument("--by-update", action="store_true", help="milliseconds per cycle in each update of Algorithm 1")
    add_variant_arguments(p, "with --cycle-only or --by-update")
    args = p.parse_args()
    if (args.set or args.compile) and (not (args.cycle_only or args.by_update) or args.model != "cvgad"):
        p.error("--set and --compile change Algorithm 1: use them with --cycle-only (--model cvgad) or --by-update")
    if args.by_update and args.compile:
        p.error("--by-update times the eager updates; --compile is for --cycle-only")
    device = resolve_device(args.device)
    if args.by_update:
        ms = by_update(args.width, args.batch_size, args.cycles, device, loss_settings(args.set))
        for name, value in sorted(ms.items(), key=lambda kv: -kv[1]):
            print(f"{name.strip('_'):>26}: {value:8.0f} ms per cycle  {100 * value / ms['cycle']:5.1f}%")
        print(f"threads {torch.get_num_threads()}, 1-minute load {os.getloadavg()[0]:.2f}")
        return
    if args.cycle_only:
        amp, losses = not args.no_amp, loss_settings(args.set)
        rates = step_rate(args.model, args.width, args.batch_size, args.cycles, device, amp, losses, args.compile)
        print(json.dumps({**rates, "threads": torch.get_num_threads()}))
        return
    trainer = make_trainer("cvgad", args.width, args.batch_size, device, not args.no_amp)
    cycle = six_batches(trainer, args.batch_size, device)
    x = torch.rand(args.batch_size, 3, 32, 32, device=device)
    model_cfg = trainer.model_cfg

    vae = CVAE(model_cfg).to(device)
    params = list(vae.encoder.parameters()) + list(vae.decoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.999))

    def vae_step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=trainer.use_amp):
            mu, logvar, _ = vae.encoder(x)
            recon = vae.decoder(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)).float()
        kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).sum(1).mean()
        loss = (recon - x).abs().mean() + kl / 256
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    images_per_cycle = CYCLE * args.batch_size
    cycle_flops = count_flops(cycle) / images_per_cycle
    vae_flops = count_flops(vae_step) / args.batch_size
    t_cycle = time_it(cycle, device, args.cycles)
    t_vae = time_it(vae_step, device, args.cycles * CYCLE)
    dtype = torch.bfloat16 if trainer.use_amp else torch.float32
    peak = matmul_peak(device, dtype, 8192 if device.type == "cuda" else 1024)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {name}; autocast {'bfloat16' if trainer.use_amp else 'off'}; "
        f"batch {args.batch_size}; width {args.width}"
    )
    print(f"matmul peak ({str(dtype).replace('torch.', '')}): {peak / 1e12:.3f} TFLOP/s")
    for label, seconds, images, flops in (
        ("Algorithm 1 cycle", t_cycle, images_per_cycle, cycle_flops),
        ("plain VAE step", t_vae, args.batch_size, vae_flops),
    ):
        rate = images / seconds
        print(
            f"{label:>18}: {rate:9.1f} images/s | {flops / 1e6:8.1f} MFLOP/image | "
            f"{rate * flops / 1e12:.4f} TFLOP/s = {100 * rate * flops / peak:.1f}% of peak"
        )
    rates = {
        fmt: cycle_rate(args.width, args.batch_size, args.cycles, device, trainer.use_amp, memory_format=fmt)
        for fmt in ("contiguous", "channels_last")
    }
    print("Algorithm 1 by memory layout: " + ", ".join(f"{fmt} {r:.1f} images/s" for fmt, r in rates.items()))
    from cvgad.model.training import resolve_memory_format  # not at the top: --cycle-only runs older code too

    chosen = "channels_last" if resolve_memory_format("auto") == torch.channels_last else "contiguous"
    faster = max(rates, key=lambda k: rates[k])
    print(f"memory_format='auto' uses {chosen} on {device.type}; {faster} measured faster here")


if __name__ == "__main__":
    main()
