"""Metrics of churn probabilities and CLV predictions against observed outcomes.

Pure functions of arrays (no plotting, no MLflow, no files): the training pipeline, the
``fidelite evaluate`` command and the benchmarks all use these definitions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm

__all__ = [
    "as_float_array",
    "binary_outcomes",
    "check_same_length",
    "churn_metrics",
    "clv_metrics",
    "descending_order",
    "expected_calibration_error",
    "next_purchase_metrics",
    "normalized_gini",
]

TOP_SHARE = 0.10
N_CALIBRATION_BINS = 10


def as_float_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype="float64").ravel()
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{name} has {bad.size} missing or infinite values, "
            f"e.g. at positions {bad[:5].tolist()}"
        )
    return array


def check_same_length(first: np.ndarray, second: np.ndarray, names: str) -> None:
    if first.shape != second.shape:
        raise ValueError(f"{names} have different lengths: {first.size} vs {second.size}")
    if first.size == 0:
        raise ValueError(f"{names} are empty")


def binary_outcomes(y_true: Any, p_churn: Any) -> tuple[np.ndarray, np.ndarray]:
    y = as_float_array(y_true, "y_true")
    p = as_float_array(p_churn, "p_churn")
    check_same_length(y, p, "y_true and p_churn")
    not_binary = np.flatnonzero((y != 0) & (y != 1))
    if not_binary.size:
        raise ValueError(f"y_true must be 0/1, got {y[not_binary[:5]].tolist()}")
    out_of_range = np.flatnonzero((p < 0) | (p > 1))
    if out_of_range.size:
        raise ValueError(f"p_churn must lie in [0, 1], got {p[out_of_range[:5]].tolist()}")
    return y.astype(int), p


def _top_count(n: int, share: float = TOP_SHARE) -> int:
    """Number of rows in the top ``share`` (at least one)."""
    return max(1, math.ceil(n * share))


def descending_order(scores: np.ndarray) -> np.ndarray:
    # A stable sort keeps ties in input order so results are reproducible.
    return np.argsort(-scores, kind="stable")


def _safe_ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator != 0 else float("nan")


def expected_calibration_error(
    y: np.ndarray, p: np.ndarray, n_bins: int = N_CALIBRATION_BINS
) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by bin size.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Observed 0/1 outcomes.
    p : ndarray, shape (n,)
        Predicted probabilities in [0, 1].
    n_bins : int
        Number of equal-width probability bins on [0, 1].
    """
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    return float(np.abs(sum_y - sum_p).sum() / len(y))


def _gini(actual: np.ndarray, order_by: np.ndarray) -> float:
    ordered = actual[descending_order(order_by)]
    n = len(ordered)
    total = ordered.sum()
    if total == 0:
        return float("nan")
    cumulative_share = np.cumsum(ordered) / total
    return float(cumulative_share.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: Any, predicted: Any) -> float:
    """Gini of ``actual`` ordered by ``predicted`` over the Gini of the perfect order.

    1 for a perfect ranking, 0 for a random one, -1 for the reversed ranking;
    NaN when ``actual`` sums to zero or is constant.
    """
    a = as_float_array(actual, "actual")
    p = as_float_array(predicted, "predicted")
    check_same_length(a, p, "actual and predicted")
    return _safe_ratio(_gini(a, p), _gini(a, a))


# --------------------------------------------------------------------------- metrics
def churn_metrics(y_true: Any, p_churn: Any) -> dict[str, float]:
    """Discrimination, calibration and targeting metrics of churn probabilities.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        1 when the customer churned, else 0.
    p_churn : array-like, shape (n,)
        Predicted churn probability in [0, 1].

    Returns
    -------
    dict
        ``roc_auc``, ``pr_auc`` (average precision), ``brier``, ``log_loss``,
        ``top_decile_lift`` (churn rate in the 10% highest-risk / base rate),
        ``top_decile_capture`` (share of all churners found in that 10%),
        ``expected_calibration_error`` (10 equal-width bins), ``base_rate``.
        Ranking metrics are NaN when ``y_true`` has a single class.
    """
    y, p = binary_outcomes(y_true, p_churn)
    both_classes = 0 < y.sum() < len(y)
    top = descending_order(p)[: _top_count(len(y))]
    base_rate = float(y.mean())
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both_classes else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both_classes else float("nan"),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "top_decile_lift": _safe_ratio(y[top].mean(), base_rate),
        "top_decile_capture": _safe_ratio(y[top].sum(), y.sum()),
        "expected_calibration_error": expected_calibration_error(y, p),
        "base_rate": base_rate,
    }


def clv_metrics(actual: Any, predicted: Any) -> dict[str, float]:
    """Ranking, error and aggregate metrics of predicted customer value.

    Parameters
    ----------
    actual : array-like, shape (n,)
        Observed net spend over the horizon, currency units (may be negative).
    predicted : array-like, shape (n,)
        Predicted spend over the same horizon, currency units.

    Returns
    -------
    dict
        ``normalized_gini``, ``spearman``, ``mae``, ``rmse`` (currency units),
        ``total_predicted``, ``total_actual``, ``total_ratio``
        (total predicted / total actual), ``top_decile_capture`` (share of actual
        spend from the 10% customers with the highest prediction).
    """
    a = as_float_array(actual, "actual")
    p = as_float_array(predicted, "predicted")
    check_same_length(a, p, "actual and predicted")
    top = descending_order(p)[: _top_count(len(a))]
    constant = np.ptp(a) == 0 or np.ptp(p) == 0
    spearman = float("nan") if constant else float(stats.spearmanr(a, p).statistic)
    return {
        "normalized_gini": normalized_gini(a, p),
        "spearman": spearman,
        "mae": float(skm.mean_absolute_error(a, p)),
        "rmse": float(np.sqrt(skm.mean_squared_error(a, p))),
        "total_predicted": float(p.sum()),
        "total_actual": float(a.sum()),
        "total_ratio": _safe_ratio(p.sum(), a.sum()),
        "top_decile_capture": _safe_ratio(a[top].sum(), a.sum()),
    }


def next_purchase_metrics(frame: Any, horizon_days: int) -> dict[str, float]:
    """Errors of next-purchase days against two naive rules, in days.

    Parameters
    ----------
    frame : DataFrame
        Held-out rows with ``days_to_purchase`` (actual first purchase, 1..H, NaN without
        one), ``next_purchase_days`` (predicted median day given a purchase within H,
        NaN when P(purchase within H) < 1/2), and the features ``ipt_mean_days`` and
        ``days_since_last_purchase``.
    horizon_days : int

    Returns
    -------
    dict
        ``mae_days`` (model), ``mae_rhythm_days`` (last purchase + the customer's own mean
        gap, at least tomorrow) and ``mae_constant_days`` (as-of + H/2), all on the rows
        where the customer bought and every rule gives a day (``n_compared``);
        ``mae_all_days`` (model, every buyer it dates) and ``dated_share`` (rows dated).
    """
    actual = np.asarray(frame["days_to_purchase"], dtype=float)
    model = np.asarray(frame["next_purchase_days"], dtype=float)
    rhythm = np.maximum(
        np.asarray(frame["ipt_mean_days"], dtype=float)
        - np.asarray(frame["days_since_last_purchase"], dtype=float),
        1.0,
    )
    bought = ~np.isnan(actual)
    dated = bought & ~np.isnan(model)
    compared = dated & ~np.isnan(rhythm)
    nan = float("nan")

    def mae(predicted: np.ndarray, rows: np.ndarray) -> float:
        return float(np.mean(np.abs(predicted[rows] - actual[rows]))) if rows.any() else nan

    return {
        "mae_days": mae(model, compared),
        "mae_rhythm_days": mae(rhythm, compared),
        "mae_constant_days": mae(np.full(len(actual), horizon_days / 2), compared),
        "n_compared": float(compared.sum()),
        "mae_all_days": mae(model, dated),
        "dated_share": float(np.mean(~np.isnan(model))) if len(model) else nan,
    }
