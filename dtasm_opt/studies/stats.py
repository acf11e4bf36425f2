"""Statistics across seeds: Student-t intervals for the summary tables, bootstrap percentile
intervals for the plots (they stay inside the quantity's range), both reproducible."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # the same intervals on every redraw


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):  # fmt: skip
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betai(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t (``p`` in (0.5, 1)), by bisection on the CDF."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def t95(n: int) -> float:
    """The two-sided 95 % t quantile for ``n`` samples (n - 1 degrees of freedom)."""
    return t_quantile(0.975, n - 1)


def mean_ci(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and half-width of the 95 % Student-t interval (None for a single value)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), None
    return float(a.mean()), t95(len(a)) * float(a.std(ddof=1)) / math.sqrt(len(a))


def bootstrap_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95 % bootstrap percentile interval of the mean. It lies inside
    the values' range, so a nonnegative quantity never gets a negative bar."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), float(a.mean()), float(a.mean())
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = a[rng.integers(0, len(a), size=(BOOTSTRAP_RESAMPLES, len(a)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(a.mean()), float(lo), float(hi)
