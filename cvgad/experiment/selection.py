"""Which epoch's model a run reports (TrainConfig.select).

"last" (the default) is the model training ends with. "val" is the epoch with the lowest
validation error: the mean over normal validation images of the model's own score terms,
unnormalised (for CVGAD the SSIM loss plus L1 of the reconstruction), the quantity training
lowers, computed from normal data alone, so a user could deploy the choice. "best_test" is the
epoch with the highest test AUC, as the authors' released code picks it: an oracle, since it
looks at the test labels, and it is reported as `best_test_oracle`.

With a rule other than "last", the run scores the test and validation images after every
epoch (`curves.csv` in the run folder, with the seconds spent training and scoring) and keeps
the weights each rule would pick (`select.pt`), so a killed run resumes with them.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cvgad.atomic import atomic_write_text, save_torch
from cvgad.experiment.runs import CURVES, SELECTED
from cvgad.model.scoring import Evaluation

#: Columns of a selection summary's entries.
REPORTED = ("auc", "f1_best", "f1_val", "auprc")
#: What each rule maximises over the epochs' rows.
MERIT: dict[str, Callable[[dict[str, float]], float]] = {
    "val": lambda r: -r["val_error"],
    "best_test": lambda r: r["auc"],
}


def validation_error(evaluation: Evaluation) -> float:
    """The mean over normal validation images of the summed raw score terms (lower is better)."""
    return float(sum(np.mean(v) for v in evaluation.val_errors.terms().values()))


class EpochSelector:
    """Records each epoch's metrics and keeps the weights of the epochs "val" and "best_test" pick."""

    def __init__(self, run_dir: str | os.PathLike | None = None, resuming: bool = False) -> None:
        """With `resuming`, the curve and kept weights in `run_dir` continue; otherwise any left
        there by an earlier run are removed."""
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.rows: list[dict[str, float]] = []
        self.kept: dict[str, dict[str, Any]] = {}  # rule -> {"epoch": e, "state": state dict}
        self._since = time.perf_counter()  # end of the last scoring: the next epoch's training starts
        if self.run_dir is None:
            return
        if resuming and (self.run_dir / CURVES).exists() and (self.run_dir / SELECTED).exists():
            self.rows = pd.read_csv(self.run_dir / CURVES).to_dict("records")
            self.kept = torch.load(self.run_dir / SELECTED, map_location="cpu", weights_only=True)
        else:
            (self.run_dir / CURVES).unlink(missing_ok=True)
            (self.run_dir / SELECTED).unlink(missing_ok=True)

    def after_epoch(self, epoch: int, evaluate: Callable[[], Evaluation], state: Callable[[], dict]) -> None:
        """Scores the model after `epoch` (timing its training and its scoring), records the row,
        and keeps the weights (`state()`) where a rule picks this epoch."""
        scoring = time.perf_counter()
        evaluation = evaluate()
        row = {
            "epoch": epoch,
            **{k: evaluation.metrics[k] for k in REPORTED},
            "val_error": validation_error(evaluation),
        }
        row |= {"train_seconds": scoring - self._since, "score_seconds": time.perf_counter() - scoring}
        self._since = time.perf_counter()
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + [row]  # an epoch redone after a kill
        picked = [rule for rule, merit in MERIT.items()
                  if rule not in self.kept or merit(row) > merit(self._row(self.kept[rule]["epoch"]))]  # fmt: skip
        weights = copy.deepcopy(state()) if picked else None
        for rule in picked:
            self.kept[rule] = {"epoch": epoch, "state": weights}
        if self.run_dir is not None:
            atomic_write_text(self.run_dir / CURVES, pd.DataFrame(self.rows).to_csv(index=False))
            if picked:
                save_torch(self.kept, self.run_dir / SELECTED)

    def _row(self, epoch: int) -> dict[str, float]:
        return next(r for r in self.rows if r["epoch"] == epoch)

    def state(self, rule: str) -> dict:
        """The weights that `rule` ("val" or "best_test") picks."""
        return self.kept[rule]["state"]

    def summary(self) -> dict[str, dict[str, float]]:
        """Each rule's epoch and metrics; the test-set pick is labelled an oracle."""
        last = max(self.rows, key=lambda r: r["epoch"])
        picks = {
            "last": last["epoch"],
            "val": self.kept["val"]["epoch"],
            "best_test_oracle": self.kept["best_test"]["epoch"],
        }
        return {rule: {"epoch": epoch, **{k: self._row(epoch)[k] for k in REPORTED}} for rule, epoch in picks.items()}

    def scoring_share(self) -> float:
        """Seconds spent scoring after each epoch, as a share of the seconds spent training."""
        return sum(r["score_seconds"] for r in self.rows) / max(sum(r["train_seconds"] for r in self.rows), 1e-9)
