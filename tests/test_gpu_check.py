"""benchmarks/gpu_check.py, the one prepared GPU run: its CPU path, as CI runs it."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path: a CUDA machine runs the whole check instead")
def test_without_cuda_the_check_says_so_runs_the_cpu_parts_and_writes_json(tmp_path, capsys):
    summary = gpu_check.main(["--out", str(tmp_path), "--quick"])
    assert "no CUDA" in capsys.readouterr().out
    assert summary["environment"]["cuda"] is False
    assert "skipped" in summary["parity"] and "skipped" in summary["packed"]
    rows = summary["throughput"]["rows"]
    assert {r["memory_format"] for r in rows} == {"contiguous", "channels_last"}
    assert all(r["images_per_s"] > 0 and 0 < r["fraction_of_peak"] < 1 for r in rows)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["throughput"]["best"] == summary["throughput"]["best"]
    assert {p.name for p in tmp_path.iterdir()} >= {"summary.json", "parity.json", "throughput.json", "packed.json"}


def test_packed_processes_each_train_and_report_their_rate():
    """The packing part's worker processes, run on the CPU at a tiny size."""
    result = gpu_check._packed_rate(2, seconds=0.5, width=4, batch=4, amp=False)
    assert result["processes"] == 2 and len(result["images_per_s_each"]) == 2
    assert result["images_per_s_total"] == pytest.approx(sum(result["images_per_s_each"]))
    assert all(rate > 0 for rate in result["images_per_s_each"])


def test_the_parity_losses_draw_nothing_at_random_so_devices_can_be_compared():
    """Run twice on the CPU they are equal: on CUDA any difference is then the device's arithmetic."""
    first, second = gpu_check._losses("cpu", False), gpu_check._losses("cpu", False)
    assert set(first) == {"recon", "latent", "mi", "critic"} and first == second


def test_the_projection_reads_the_paper_preset_from_the_grid_file():
    assert gpu_check.paper_preset() == {"train_images": 43_200, "epochs": 15, "rows": 7, "seeds": 5, "width": 64}
