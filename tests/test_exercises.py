"""The checks of the exercises chapter reject the placeholder `...` and wrong answers, each with a
message that says what to do, and accept right ones; the chapter hands out `...` in every answer
cell and keeps each solution in a folded cell that runs only with `solutions = True`."""

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import numpy as np
import pytest

from cvgad.book import exercises as ex
from cvgad.model.losses import negative_radius, normal_share_beyond

CHAPTER = Path(__file__).resolve().parents[1] / "notebooks" / "09_exercises.py"
SCORES, LABELS = np.array([0.1, 0.4, 0.35, 0.8, 0.7]), np.array([0, 0, 1, 1, 1])


def test_a_placeholder_is_asked_to_be_filled_in():
    for check in (
        lambda: ex.check_confusion(..., SCORES, LABELS, 0.5),
        lambda: ex.check_f1_floor(..., 0.5),
        lambda: ex.check_radius_rule(..., ..., 32),
        lambda: ex.check_missing_updates(..., [{"latent": 1.0}], [{}]),
        lambda: ex.check_ranking(..., ["all"]),
    ):
        with pytest.raises(AssertionError, match=r"is still `...`: replace it by your answer"):
            check()


def test_confusion_counts_by_hand(capsys):
    # threshold 0.5 flags 0.8 and 0.7, both anomalies: tp 2, fp 0, tn 2, fn 1; P 1, R 2/3, F1 0.8
    right = {"tp": 2, "fp": 0, "tn": 2, "fn": 1, "f1": 0.8}
    ex.check_confusion(right, SCORES, LABELS, 0.5)
    assert "Correct: F1 = 0.8" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="fn = 0 is not right; fn counts anomalies with a score below"):
        ex.check_confusion(right | {"fn": 0}, SCORES, LABELS, 0.5)
    with pytest.raises(AssertionError, match=r"answer_1\['tp'\] is still"):
        ex.check_confusion(right | {"tp": ...}, SCORES, LABELS, 0.5)


def test_f1_floor_radius_rule_updates_and_ranking():
    ex.check_f1_floor(2 * 0.25 / 1.25, 0.25)
    with pytest.raises(AssertionError, match="put them into F1"):
        ex.check_f1_floor(0.25, 0.25)
    shares = {rule: normal_share_beyond(negative_radius(32, rule), 32) for rule in ("literal", "chi")}
    ex.check_radius_rule("chi", shares, 32)
    with pytest.raises(AssertionError, match="Look at the shares again"):
        ex.check_radius_rule("literal", shares, 32)
    on, off = [{"step": 0, "latent": 1.0, "categorical": 0.1, "mi": 1.3}], [{"step": 0, "mi": 1.3}]
    ex.check_missing_updates({"latent", "categorical"}, on, off)
    with pytest.raises(AssertionError, match="is not what vanished"):
        ex.check_missing_updates({"latent"}, on, off)
    ex.check_ranking(["no_mi", "all"], ["all", "no_mi"])
    with pytest.raises(AssertionError, match="repeated"):
        ex.check_ranking(["all", "all"], ["all", "no_mi"])


def test_the_chapter_hands_out_placeholders_and_folds_its_solutions():
    cells = [c for c in jupytext.read(CHAPTER).cells if c.cell_type == "code"]
    answers = [i for i, c in enumerate(cells) if c.source.startswith("# your answer")]
    assert len(answers) == 5
    for i in answers:  # answer, folded solution, check: in that order
        placeholders = re.findall(r"^(\w+) = \.\.\.$", cells[i].source, re.M)
        solution, check = cells[i + 1], cells[i + 2]
        assert placeholders, f"an answer cell hands out `...`:\n{cells[i].source}"
        assert {"hide-input", "solution"} <= set(solution.metadata.get("tags", []))
        assert solution.source.startswith("if solutions:")
        assert all(re.search(rf"^\s+{name} = ", solution.source, re.M) for name in placeholders), solution.source
        assert check.source.startswith("exercises.check_") and all(name in check.source for name in placeholders)
    parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    assert re.search(r"^solutions = True\b", parameters.source, re.M)


def test_the_exercises_need_no_widgets():
    script = "import sys; import cvgad.book.exercises; assert 'ipywidgets' not in sys.modules"
    subprocess.run([sys.executable, "-c", script], check=True)
