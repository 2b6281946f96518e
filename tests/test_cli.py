"""The command line, end to end on the embedded digits."""
import json
import subprocess
import sys

import pytest

from cvgad.cli import main


def test_train_then_evaluate_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--anomaly-class", "1", "--epochs", "1", "--width", "8",
                 "--latent-dim", "16", "--train-subset", "200", "--seed", "0", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed and "F1" in printed
    for name in ("config.json", "history.csv", "checkpoint.pt", "metrics.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == 200 and metrics["n_test_anomalous"] == 182 and metrics["device"] == "cpu"
    assert 0 <= metrics["auc"] <= 1 and metrics["wall_seconds"] > 0
    assert main(["evaluate", str(out)]) == 0
    again = json.loads((out / "evaluation.json").read_text())
    assert again["auc"] == pytest.approx(metrics["auc"], abs=1e-6)


def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["train", "--anomaly-class", "12", "--epochs", "0", "--quiet"]) == 2
    assert "anomaly class 12 is not in this dataset" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist", "--data-root", str(tmp_path), "--epochs", "0", "--quiet"]) == 2
    assert "--data-root" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a finished run directory" in capsys.readouterr().err


def test_python_dash_m_help():
    done = subprocess.run([sys.executable, "-m", "cvgad", "train", "--help"], capture_output=True, text=True, check=True)
    assert "--anomaly-class" in done.stdout and "--data-root" in done.stdout
