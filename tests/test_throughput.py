"""benchmarks/throughput.py's profile of an Algorithm 1 cycle, update by update."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import throughput  # noqa: E402


def test_each_update_of_a_cycle_is_timed_and_the_parts_add_up_to_the_cycle():
    ms = throughput.by_update(width=4, batch_size=4, cycles=1, device=torch.device("cpu"))
    assert set(ms) == {*throughput.UPDATES, "rest", "cycle"}
    assert all(ms[name] > 0 for name in throughput.UPDATES)  # the gate is open: every update runs
    assert sum(ms[name] for name in (*throughput.UPDATES, "rest")) == pytest.approx(ms["cycle"])
