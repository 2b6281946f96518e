"""The command line, end to end on the embedded digits."""

import json
import subprocess
import sys

import pytest

from cvgad.cli import main


def test_train_then_evaluate_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--anomaly-class",
                "1",
                "--epochs",
                "1",
                "--width",
                "8",
                "--latent-dim",
                "16",
                "--train-subset",
                "200",
                "--seed",
                "0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
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
    done = subprocess.run(
        [sys.executable, "-m", "cvgad", "train", "--help"], capture_output=True, text=True, check=True
    )
    assert "--anomaly-class" in done.stdout and "--data-root" in done.stdout


TINY = ["--epochs", "0", "--width", "4", "--latent-dim", "4", "--test-subset", "100", "--quiet"]


def test_one_class_names_its_normal_class_and_the_old_flag_still_works_with_a_warning(capsys):
    assert main(["train", "--protocol", "one_class", "--normal-class", "3", *TINY]) == 0
    said = capsys.readouterr()
    assert "normal class 3" in said.out and "deprecated" not in said.err
    assert main(["train", "--protocol", "one_class", "--anomaly-class", "3", *TINY]) == 0
    said = capsys.readouterr()
    assert "normal class 3" in said.out
    assert "warning: anomaly_class=3 under protocol one_class is taken as the normal class" in said.err
    assert "set normal_class (--normal-class) instead" in said.err


def test_a_nan_loss_is_a_failed_run_exit_1(monkeypatch, capsys):
    from cvgad.experiment import experiment
    from cvgad.model.training import NonFiniteLossError

    def diverge(*args, **kwargs):
        raise NonFiniteLossError("loss 'latent' became nan at step 7 (Algorithm 1 counter 1)")

    monkeypatch.setattr(experiment, "run_experiment", diverge)
    assert main(["train", *TINY]) == 1
    assert "cvgad train: failed: loss 'latent' became nan at step 7" in capsys.readouterr().err


def test_a_missing_extra_is_bad_input_naming_what_to_install(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "papermill" else real(name, *a))
    grid = tmp_path / "g.yaml"
    grid.write_text("name: g\nseeds: [0]\nrows:\n  - {id: all, label: all, disabled: []}\n")
    assert main(["ablate", str(grid), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cvgad ablate: error: cvgad ablate needs papermill: pip install 'cvgad[ablation]'" in err
    assert not (tmp_path / "g").exists()  # nothing was planned or run


def test_train_flags_accept_none_and_refuse_bad_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--negative-radius", "three"])
    assert "invalid choice: 'three'" in capsys.readouterr().err
    assert (
        main(["train", "--width", "none", "--epochs", "0", "--latent-dim", "4", "--test-subset", "100", "--quiet"]) == 0
    )


def test_student_writes_the_students_copy_of_the_exercises(tmp_path, capsys):
    import nbformat

    from cvgad.book.student import student_copy

    assert main(["student", str(tmp_path / "class")]) == 0
    written = nbformat.read(tmp_path / "class" / "09_exercises.ipynb", as_version=4)
    assert [cell.source for cell in written.cells] == [cell.source for cell in student_copy().cells]
    assert f"wrote {tmp_path / 'class' / '09_exercises.ipynb'}" in capsys.readouterr().out


@pytest.mark.parametrize(("given", "value"), [("true", True), ("yes", True), ("no", False), ("Off", False)])
def test_a_switch_reads_true_or_false(given, value):
    from cvgad.cli import build_parser

    assert build_parser().parse_args(["train", "--compile", given]).compile is value


def test_a_switch_that_is_neither_true_nor_false_is_refused(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--compile", "1"])
    assert exit.value.code == 2
    assert "'1' is not true or false; use one of true, yes, on, false, no, off" in capsys.readouterr().err


def test_a_shortened_flag_is_refused_not_taken_for_a_longer_one(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--gradient-penalty", "5"])
    assert exit.value.code == 2
    assert "unrecognized arguments: --gradient-penalty 5" in capsys.readouterr().err
