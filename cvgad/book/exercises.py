"""The checks of the exercises chapter (notebooks/09_exercises).

A check returns quietly (printing what was right) when an answer is right. It raises an
`AssertionError` that says what to look at when the answer is wrong, and one that asks for an
answer while the answer cell still holds `...`, the placeholder the chapter hands out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cvgad.model.losses import negative_radius, normal_share_beyond
from cvgad.model.scoring import confusion_at


def _given(answer: Any, name: str) -> None:
    """Rejects the placeholder `...` with a request for an answer."""
    assert answer is not ..., f"{name} is still `...`: replace it by your answer in the cell above, then run both cells"


def _close(a: Any, b: float, tol: float = 1e-6) -> bool:
    return abs(float(a) - float(b)) <= tol


def check_confusion(answer: Mapping[str, float], scores: np.ndarray, labels: np.ndarray, threshold: float) -> None:
    """Exercise 1: the counts and F1 when the images with scores >= `threshold` are flagged."""
    _given(answer, "answer_1")
    truth = confusion_at(scores, labels, threshold)
    hints = {
        "tp": "anomalies (label 1) with a score >= the threshold",
        "fp": "normal images (label 0) with a score >= the threshold",
        "tn": "normal images with a score below the threshold",
        "fn": "anomalies with a score below the threshold",
        "f1": "2 precision recall / (precision + recall), precision = tp / (tp + fp), recall = tp / (tp + fn)",
    }
    for key, hint in hints.items():
        assert key in answer, f"your answer has no {key!r}; give tp, fp, tn, fn and f1"
        _given(answer[key], f"answer_1[{key!r}]")
        assert _close(answer[key], truth[key]), f"{key} = {answer[key]} is not right; {key} counts {hint}"
    print("Correct: F1 =", round(truth["f1"], 4))


def check_f1_floor(answer: float, p: float) -> None:
    """Exercise 2: the F1 of flagging every image when a share `p` is anomalous."""
    _given(answer, "answer_2")
    expected = 2 * p / (1 + p)
    assert _close(answer, expected, 1e-4), (
        f"{answer} is not the F1 floor for p = {p:.3f}. Flagging everything gives recall 1 and "
        "precision p; put them into F1 = 2PR / (P + R)"
    )
    print(f"Correct: F1 floor {expected:.4f} for p = {p:.3f}")


def check_radius_rule(rule: str, shares: Mapping[str, float], latent_dim: int) -> None:
    """Exercise 3: the share of normal codes beyond each rule's radius, and the rule that keeps
    negative codes away from normal codes."""
    _given(shares, "shares")
    _given(rule, "answer_3")
    assert set(shares) == {"literal", "chi"}, "give the share of normal codes beyond the radius for 'literal' and 'chi'"
    for name, share in shares.items():
        radius = negative_radius(latent_dim, name)
        assert _close(share, normal_share_beyond(radius, latent_dim), 1e-4), (
            f"the share for {name!r} (radius {radius:.2f}) is wrong: normal codes z ~ N(mu_y, I) lie at a "
            f"chi-distributed distance with {latent_dim} degrees of freedom from mu_y; use its survival function"
        )
    assert rule in ("literal", "chi"), "the rule is 'literal' or 'chi'"
    assert rule == "chi", (
        "'literal' (radius 2) has almost every normal code beyond it: codes drawn there are normal codes, "
        "and negative training would unlearn the normal data. Look at the shares again"
    )
    print("Correct: only the chi rule keeps negatives outside the normal shell")


def check_missing_updates(
    answer: set[str], runs_on: Sequence[Mapping[str, float]], runs_off: Sequence[Mapping[str, float]]
) -> None:
    """Exercise 4: the logged updates that vanish when the latent loss is switched off."""
    _given(answer, "answer_4")
    keys_on, keys_off = set().union(*runs_on) - {"step"}, set().union(*runs_off) - {"step"}
    missing = keys_on - keys_off
    assert isinstance(answer, set), "answer with a set of names, e.g. {'mi'}"
    assert answer == missing, (
        f"{sorted(answer)} is not what vanished. Compare the keys of the logs with all losses on "
        f"({sorted(keys_on)}) and with the latent loss off; read CVGADTrainer.step to see what one update logs"
    )
    print("Correct:", sorted(missing), "vanished; these still ran:", sorted(keys_off))


def check_order(order: Sequence[str], rows: Sequence[str]) -> None:
    """Raises ValueError unless `order` names every row exactly once."""
    missing, repeated = sorted(set(rows) - set(order)), sorted({r for r in order if list(order).count(r) > 1})
    if missing or repeated or len(order) != len(rows):
        raise ValueError(f"rank every row exactly once: repeated {repeated or 'none'}, missing {missing or 'none'}")


def check_ranking(order: Sequence[str], rows: Sequence[str]) -> None:
    """Exercise 5: a ranking names every row of Table 1 once (there is no right ranking to check
    before the results are revealed)."""
    _given(order, "my_ranking")
    try:
        check_order(order, rows)
    except ValueError as err:
        raise AssertionError(f"{err}; the rows are {list(rows)}") from None
    print("A valid ranking of", len(rows), "rows")
