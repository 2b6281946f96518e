"""The statistics beside the reports' means: t-intervals over seeds, the Wilcoxon signed-rank p of
paired differences, and the Benjamini–Hochberg adjustment over a grid's rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import false_discovery_control, wilcoxon
from scipy.stats import t as student_t

#: The level of the interval beside each mean.
LEVEL = 0.95


def t_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Student's t interval of the mean of `values` (NaN dropped): mean ± t(n-1) s / sqrt(n); NaN
    below 2 values. A t-interval rather than a bootstrap over seeds because the tables have 3 to 8
    seeds: a bootstrap of so few values draws from a handful of distinct means and comes out too
    narrow, while the t-interval is exact when results spread normally over seeds."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan, math.nan
    half = float(student_t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return float(x.mean()) - half, float(x.mean()) + half


def bh_adjusted(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (scipy's `false_discovery_control`) over the tests that
    have a p; NaN stays NaN. A row is a discovery at false-discovery rate q when its adjusted p <= q."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    if (~np.isnan(p)).any():
        out[~np.isnan(p)] = false_discovery_control(p[~np.isnan(p)], method="bh")
    return out


def signed_rank_p(diff: np.ndarray) -> float:
    """Two-sided p of the Wilcoxon signed-rank test that paired differences centre on 0 (exact for
    small n: with 5 pairs all of one sign, p = 2/32 = 0.0625, the smallest 5 pairs can give);
    NaN with fewer than 2 pairs or when every difference is 0."""
    diff = np.asarray(diff, dtype=float)
    if len(diff) < 2 or not np.any(diff != 0):
        return float("nan")
    return float(wilcoxon(diff).pvalue)
