"""Validated inputs of the probabilistic models.

The purchase models (BG/NBD, MBG/NBD, Pareto/NBD) read the usual RFM summary per
customer, the spend model (Gamma-Gamma) reads the repeat-purchase count and the mean
spend. Everything is checked here once, with messages naming the argument, so the
model files only hold the math.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

ArrayLike = npt.ArrayLike

__all__ = [
    "ArrayLike",
    "RfmData",
    "as_float_array",
    "check_frequency_monetary",
    "check_horizon",
    "check_rfm",
    "check_weights",
    "compress_rfm",
]


def as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    """Convert ``values`` to a 1-D float64 array, rejecting NaN/inf and negatives.

    Parameters
    ----------
    values : array-like of shape (n_customers,) or scalar
        Input column (Series, list, ndarray...).
    name : str
        Argument name used in the error message.

    Returns
    -------
    ndarray of shape (n_customers,)

    Raises
    ------
    ValueError
        Naming ``name`` and the first offending positions.
    """
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: values must be numeric ({exc})") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} NaN/infinite value(s), e.g. at positions "
            f"{np.flatnonzero(bad)[:5].tolist()}"
        )
    negative = arr < 0
    if negative.any():
        idx = np.flatnonzero(negative)[:5]
        raise ValueError(
            f"{name}: {int(negative.sum())} negative value(s), e.g. positions "
            f"{idx.tolist()} = {arr[idx].tolist()}"
        )
    return arr


def check_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate an RFM summary and broadcast it to equal-length float arrays.

    Parameters
    ----------
    frequency : array-like of shape (n_customers,)
        Repeat purchases ``x`` (whole numbers >= 0).
    recency : array-like of shape (n_customers,)
        Time from the first to the last purchase ``t_x`` (0 when ``x == 0``).
    T : array-like of shape (n_customers,)
        Time from the first purchase to the end of observation, ``>= t_x``.

    Returns
    -------
    x, t_x, T : ndarray of shape (n_customers,)

    Raises
    ------
    ValueError
        Naming the offending argument on NaN, negative or fractional counts, length
        mismatch, ``recency > T``, or ``recency > 0`` with ``frequency == 0``.
    """
    if _valid_float_rfm(frequency, recency, T):
        x, t_x, big_t = frequency, recency, T  # type: ignore[assignment]
        return x.astype(np.float64), np.minimum(t_x, big_t), big_t.astype(np.float64)
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    big_t = as_float_array(T, "T")
    lengths = {len(x), len(t_x), len(big_t)}
    if len(lengths - {1}) > 1:
        raise ValueError(
            f"length mismatch: frequency has {len(x)}, recency {len(t_x)}, T {len(big_t)} values"
        )
    x, t_x, big_t = np.broadcast_arrays(x, t_x, big_t)
    fractional = x != np.round(x)
    if fractional.any():
        idx = np.flatnonzero(fractional)[:5]
        raise ValueError(
            f"frequency: {int(fractional.sum())} non-integer count(s), e.g. positions "
            f"{idx.tolist()} = {x[idx].tolist()}"
        )
    # Tolerate float round-off from upstream day arithmetic.
    too_recent = t_x > big_t * (1 + 1e-12) + 1e-12
    if too_recent.any():
        idx = np.flatnonzero(too_recent)[:5]
        raise ValueError(
            f"recency: {int(too_recent.sum())} value(s) greater than T, e.g. positions "
            f"{idx.tolist()} (recency={t_x[idx].tolist()}, T={big_t[idx].tolist()})"
        )
    orphan = (x == 0) & (t_x > 0)
    if orphan.any():
        idx = np.flatnonzero(orphan)[:5]
        raise ValueError(
            f"recency: {int(orphan.sum())} customer(s) with frequency 0 but recency > 0, "
            f"e.g. positions {idx.tolist()}"
        )
    return x.astype(np.float64), np.minimum(t_x, big_t), big_t.astype(np.float64)


def _valid_float_rfm(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> bool:
    """Whether ``check_rfm`` would accept these as they are: float64 arrays of shape (n,),
    n >= 1, that pass every one of its checks.

    One combined test instead of each check's own (the scorer's one-customer requests
    spend more on the checks than on the math); any failure takes the checks that name it.
    """
    arrays = (frequency, recency, T)
    if not all(type(a) is np.ndarray and a.dtype == np.float64 for a in arrays):
        return False
    x, t_x, big_t = arrays
    if any(a.ndim != 1 for a in arrays) or not 0 < len(x) == len(t_x) == len(big_t):
        return False
    usable = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(big_t)
    usable &= (x >= 0) & (t_x >= 0) & (big_t >= 0) & (x == np.round(x))
    usable &= ~(t_x > big_t * (1 + 1e-12) + 1e-12) & ~((x == 0) & (t_x > 0))
    return bool(usable.all())


def check_horizon(t: ArrayLike) -> np.ndarray:
    """Validate a prediction horizon ``t`` (scalar or shape (n_customers,)), >= 0."""
    return as_float_array(t, "t")


def check_weights(weights: ArrayLike | None, n: int) -> np.ndarray:
    """Customer counts of shape (n,), ones when ``weights`` is None."""
    if weights is None:
        return np.ones(n)
    w = as_float_array(weights, "weights")
    if len(w) != n:
        raise ValueError(f"length mismatch: weights has {len(w)} values, frequency {n}")
    return w


def check_frequency_monetary(
    frequency: ArrayLike, monetary_value: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Validate (frequency, monetary_value) as equal-length, finite, non-negative arrays."""
    x = as_float_array(frequency, "frequency")
    m = as_float_array(monetary_value, "monetary_value")
    if len(x) != len(m) and 1 not in (len(x), len(m)):
        raise ValueError(f"length mismatch: frequency has {len(x)} values, monetary_value {len(m)}")
    x, m = np.broadcast_arrays(x, m)
    return x.astype(np.float64), m.astype(np.float64)


@dataclass(frozen=True)
class RfmData:
    """Distinct RFM rows with their customer counts, ready for likelihood evaluation.

    Summaries on whole days repeat heavily, so the likelihood runs on far fewer rows
    than there are customers. ``x_levels[x_codes] == x``: functions of ``x`` alone
    (log-gamma, digamma) are evaluated once per distinct purchase count.

    Attributes
    ----------
    x, t_x, T, weights : ndarray of shape (n_rows,)
    x_levels : ndarray of shape (n_levels,)
    x_codes : ndarray of int, shape (n_rows,)
    """

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weights: np.ndarray
    x_levels: np.ndarray
    x_codes: np.ndarray

    def rescaled(self, time_scale: float) -> RfmData:
        """The same rows with ``t_x`` and ``T`` multiplied by ``time_scale``."""
        return RfmData(
            self.x,
            self.t_x * time_scale,
            self.T * time_scale,
            self.weights,
            self.x_levels,
            self.x_codes,
        )


def compress_rfm(
    x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, weights: np.ndarray | None = None
) -> RfmData:
    """Collapse identical (x, t_x, T) rows, summing ``weights`` (a hash group-by).

    Without ``weights`` the rows are kept as they are (one weight per row), which is
    what per-customer predictions need.
    """
    if weights is None:
        weights = np.ones_like(x)
    else:
        frame = pd.DataFrame({"x": x, "t_x": t_x, "T": big_t, "w": weights})
        frame = frame[frame["w"] > 0]
        grouped = frame.groupby(["x", "t_x", "T"], sort=False)["w"].sum().reset_index()
        x, t_x, big_t, weights = (grouped[c].to_numpy(np.float64) for c in ("x", "t_x", "T", "w"))
    levels, codes = np.unique(x, return_inverse=True)
    return RfmData(x, t_x, big_t, weights, levels, codes.ravel())
