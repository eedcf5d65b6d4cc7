"""Judging a ranking on randomised campaign rows: Qini, uplift curves, incremental value.

Rows are ranked best first by a score; at each depth ``k`` (the top ``k`` rows, both
groups together) the treated and control rows in the top ``k`` are compared:

* **Qini curve** ``Q(k) = Y_t(k) - Y_c(k) N_t(k) / N_c(k)``: incremental outcomes among
  the treated rows of the top ``k`` (``Y``: summed outcome, ``N``: row count);
* **uplift curve** ``U(k) = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) k``: incremental outcome
  had all top ``k`` rows been contacted. ``U`` at a budget share ``f`` (``k = f n``),
  minus ``k`` offer costs, is the *incremental net value* a policy captures there;
* **Qini coefficient**: area between the Qini curve and the random line, divided by the
  same area for the perfect ranking of the observed outcomes (scikit-uplift's
  ``qini_auc_score`` with ``negative_effect=True``), so 1 is perfect and 0 random.

Confidence intervals come from a bootstrap that resamples rows within each group
(``n_boot`` replicates, the same replicates for every ranking, so differences between
rankings are paired).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.integrate import trapezoid

__all__ = [
    "Estimate",
    "average_treatment_effect",
    "bootstrap_counts",
    "incremental_value",
    "qini_coefficient",
    "qini_curve",
    "uplift_curve",
    "value_replicates",
]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval."""

    value: float
    low: float
    high: float

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {prefix: self.value, f"{prefix}_ci_low": self.low, f"{prefix}_ci_high": self.high}


def average_treatment_effect(
    treated: np.ndarray, y: np.ndarray, confidence: float = 0.95
) -> Estimate:
    """Difference in mean outcome, treated minus control, with a Welch normal interval.

    Parameters
    ----------
    treated : ndarray of bool, shape (n,)
    y : ndarray of float, shape (n,)
        Outcome (purchase 0/1, or net spend in currency).
    """
    treated = np.asarray(treated, dtype=bool)
    y = np.asarray(y, dtype=float)
    yt, yc = y[treated], y[~treated]
    if len(yt) < 2 or len(yc) < 2:
        return Estimate(np.nan, np.nan, np.nan)
    effect = yt.mean() - yc.mean()
    se = np.sqrt(yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return Estimate(float(effect), float(effect - z * se), float(effect + z * se))


def _cumulative(order: np.ndarray, treated: np.ndarray, y: np.ndarray, weights: np.ndarray):
    """Cumulative (N_t, Y_t, N_c, Y_c) down the ranking; arrays of shape (..., n)."""
    t = treated[order]
    w = weights[..., order]
    wy = w * y[order]
    return (
        np.cumsum(w * t, axis=-1),
        np.cumsum(wy * t, axis=-1),
        np.cumsum(w * ~t, axis=-1),
        np.cumsum(wy * ~t, axis=-1),
    )


def _ranking(score: np.ndarray, seed: int = 0) -> np.ndarray:
    """Row order, best score first; ties in random (seeded) order, NaN scores last."""
    score = np.asarray(score, dtype=float)
    tie_break = np.random.default_rng(seed).random(len(score))
    return np.lexsort((tie_break, -np.nan_to_num(score, nan=-np.inf)))


def qini_curve(score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Qini curve values ``Q(k)`` for ``k = 0..n``, shape (n + 1,)."""
    treated = np.asarray(treated, dtype=bool)
    y = np.asarray(y, dtype=float)
    nt, yt, nc, yc = _cumulative(_ranking(score), treated, y, np.ones(len(y)))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = yt - np.where(nc > 0, yc * nt / nc, 0.0)
    return np.r_[0.0, q]


def uplift_curve(score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Uplift curve values ``U(k)`` for ``k = 0..n``, shape (n + 1,); NaN while a group is empty."""
    treated = np.asarray(treated, dtype=bool)
    y = np.asarray(y, dtype=float)
    nt, yt, nc, yc = _cumulative(_ranking(score), treated, y, np.ones(len(y)))
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (yt / nt - yc / nc) * np.arange(1, len(y) + 1)
    return np.r_[0.0, u]


def qini_coefficient(score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> float:
    """Normalised area between the Qini curve and the random line (1 = perfect ranking)."""
    treated = np.asarray(treated, dtype=bool)
    y = np.asarray(y, dtype=float)
    actual = qini_curve(score, treated, y)
    perfect = qini_curve(y * treated - y * ~treated, treated, y)
    x = np.arange(len(actual), dtype=float)
    random_area = perfect[-1] * x[-1] / 2.0
    gained = trapezoid(actual, x) - random_area
    best = trapezoid(perfect, x) - random_area
    return float(gained / best) if best > 0 else float("nan")


def bootstrap_counts(treated: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Row multiplicities of ``n_boot`` bootstrap replicates, shape (n_boot, n).

    Rows are resampled within their group, so every replicate keeps the group sizes.
    """
    treated = np.asarray(treated, dtype=bool)
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(treated)))
    for group in (treated, ~treated):
        rows = np.flatnonzero(group)
        if len(rows) == 0:
            continue
        draws = rng.integers(0, len(rows), size=(n_boot, len(rows)))
        for b in range(n_boot):
            counts[b, rows] = np.bincount(draws[b], minlength=len(rows))
    return counts


def value_replicates(
    score: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    fractions: tuple[float, ...],
    *,
    cost: np.ndarray | float = 0.0,
    counts: np.ndarray | None = None,
) -> dict[float, np.ndarray]:
    """Incremental net value at each share: the estimate, then one per bootstrap replicate.

    Returns
    -------
    dict of float to ndarray, shape (1 + n_boot,)
        Per share ``f``: ``(mean_t - mean_c) k - sum of costs`` over the top
        ``k = ceil(f n)`` rows; replicates weight the rows by ``counts`` (same depth).
    """
    treated = np.asarray(treated, dtype=bool)
    y = np.asarray(y, dtype=float)
    n = len(y)
    order = _ranking(score)
    costs = np.broadcast_to(np.asarray(cost, dtype=float), (n,))[order]
    weights = np.ones((1, n)) if counts is None else np.vstack([np.ones(n), counts])
    nt, yt, nc, yc = _cumulative(order, treated, y, weights)
    ordered_weights = weights[:, order]
    out = {}
    for fraction in fractions:
        k = max(1, int(np.ceil(fraction * n)))
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = nt[:, k - 1] + nc[:, k - 1]
            effect = yt[:, k - 1] / nt[:, k - 1] - yc[:, k - 1] / nc[:, k - 1]
            spent = (ordered_weights[:, :k] * costs[:k]).sum(axis=1)
            out[fraction] = effect * depth - spent
    return out


def incremental_value(
    score: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    fractions: tuple[float, ...],
    *,
    cost: np.ndarray | float = 0.0,
    counts: np.ndarray | None = None,
    confidence: float = 0.95,
) -> dict[float, Estimate]:
    """Incremental net value of contacting the top share of rows, per share.

    Parameters
    ----------
    score : ndarray, shape (n,)
        Higher = contact first.
    treated : ndarray of bool, shape (n,)
    y : ndarray, shape (n,)
        Outcome per row (net spend in currency, or purchase 0/1).
    fractions : tuple of float
        Budget shares in (0, 1].
    cost : float or ndarray of shape (n,)
        Offer cost per contacted row, subtracted for every row of the top share.
    counts : ndarray, shape (n_boot, n), optional
        Bootstrap multiplicities (:func:`bootstrap_counts`); without them the
        interval is NaN.

    Returns
    -------
    dict of float to Estimate
        Per share (see :func:`value_replicates`), with a percentile bootstrap interval.
    """
    replicates = value_replicates(score, treated, y, fractions, cost=cost, counts=counts)
    tail = (1 - confidence) / 2 * 100
    out = {}
    for fraction, values in replicates.items():
        point = float(values[0])
        if counts is None or not np.isfinite(values[1:]).any():
            out[fraction] = Estimate(point, np.nan, np.nan)
            continue
        low, high = np.nanpercentile(values[1:], [tail, 100 - tail])
        out[fraction] = Estimate(point, float(low), float(high))
    return out
