"""What a ranking is worth on held-out campaign rows, measured so a few big spenders cannot decide.

The policy choice compares rankings by the incremental value they capture when the top
share of held-out campaign rows is contacted, treatment against control. Measured on
net spend, that difference is dominated by the heavy-tailed spend of a few big buyers
(the 95% interval of one campaign's value at a 20% budget spans about twice the
estimate), so whichever ranking puts big spenders first wins or loses by chance. On 25
held-out campaigns of five demo draws (BENCHMARKS.md, "Uplift: how the policy is
chosen"), the uplift model truly captured more than value at risk on every one; the
measured spend gap had the right sign on 92% of them and stood 1.7 of its standard
deviations from zero on average, the covariate-adjusted valuation below on 100%, at 2.0.

The decision therefore measures the same quantity with far less noise:

* **purchases valued at a common value**: each row's outcome is ``y_i = purchased_i x
  v_i`` with ``v_i`` fixed before the send and the same for every candidate
  (:func:`customer_value`: ``value_if_retained`` from the churn/CLV scores, or for
  models without it the expected net spend given a purchase). ``k (mean_t y - mean_c
  y)`` over the top ``k`` rows estimates ``sum v_i tau_i``: incremental purchases valued
  at what a won-back customer is worth, without the order-size noise;
* **covariate adjustment** (CUPED, Deng et al. 2013): ``y_i - theta c_i`` with ``c_i =
  (1 - churn_probability_i) v_i``, the churn model's expected value without a contact,
  and ``theta = cov(y, c) / var(c)`` over the held-out rows. ``c`` is known before the
  send, so under randomisation the adjustment changes no expectation; it removes the
  share of the outcome's variance the churn model predicts;
* minus the offer cost of every contacted row.

Intervals come from one set of bootstrap replicates (rows resampled within each group)
shared by every ranking, so differences between rankings are paired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.training.uplift.evaluation import (
    bootstrap_counts,
    qini_coefficient,
    value_replicates,
)

__all__ = [
    "VALUE_BASES",
    "Comparison",
    "compare_rankings",
    "customer_value",
    "paired_gaps",
    "value_basis",
    "value_outcome",
]

#: Score input holding the value of keeping a customer (see training's scores frame).
RETAINED_VALUE = "score_value_if_retained"
#: Value bases: what an incremental purchase is worth, by name.
VALUE_BASES: tuple[str, ...] = ("value_if_retained", "response_spend")
_TAIL = 2.5  # percent in each tail of a 95% interval


def value_basis(inputs: pd.DataFrame) -> str:
    """``value_if_retained`` when the uplift inputs carry it (for some row), else
    ``response_spend`` (expected net spend in the window given a purchase)."""
    if RETAINED_VALUE in inputs and inputs[RETAINED_VALUE].notna().any():
        return "value_if_retained"
    return "response_spend"


def customer_value(
    inputs: pd.DataFrame | Mapping[str, np.ndarray], basis: str, response_spend: np.ndarray
) -> np.ndarray:
    """What winning each customer back is worth, shape (n_rows,), currency, >= 0 or NaN.

    Parameters
    ----------
    inputs : DataFrame or mapping of str -> ndarray, shape (n_rows, ...)
        Uplift inputs (features and ``score_*`` columns; arrays: numeric already).
    basis : {"value_if_retained", "response_spend"}
        Fixed when the uplift model is fitted, so one model never mixes the two.
    response_spend : ndarray, shape (n_rows,)
        The response-value model's expected net spend given a purchase.
    """
    if basis == "value_if_retained":
        if RETAINED_VALUE not in inputs:
            return np.full(len(response_spend), np.nan)
        raw = inputs[RETAINED_VALUE]
        values = (
            pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            if isinstance(raw, pd.Series)
            else np.asarray(raw, dtype=float)  # column arrays: already numbers
        )
    elif basis == "response_spend":
        values = np.asarray(response_spend, dtype=float)
    else:
        raise ValueError(f"value basis must be one of {VALUE_BASES}, got {basis!r}")
    return np.maximum(values, 0.0)


def value_outcome(
    purchased: np.ndarray, value: np.ndarray, churn: np.ndarray | None = None
) -> np.ndarray:
    """Purchases valued at ``value``, adjusted by the churn model's expectation.

    Parameters
    ----------
    purchased : ndarray of bool, shape (n,)
        Bought in the response window.
    value : ndarray, shape (n,)
        :func:`customer_value` of each row (NaN counts as 0).
    churn : ndarray, shape (n,), optional
        The churn model's probability at the day before the send; None (or no
        variation) leaves the outcome unadjusted.

    Returns
    -------
    ndarray, shape (n,)
        ``purchased x value - theta (1 - churn) value`` (see the module docstring).
    """
    value = np.nan_to_num(np.asarray(value, dtype=float), nan=0.0)
    y = np.asarray(purchased, dtype=float) * value
    if churn is None:
        return y
    covariate = (1.0 - np.nan_to_num(np.asarray(churn, dtype=float), nan=1.0)) * value
    spread = covariate.var()
    if len(y) < 3 or not spread > 0:
        return y
    theta = float(np.mean((y - y.mean()) * (covariate - covariate.mean())) / spread)
    return y - theta * covariate


@dataclass
class Comparison:
    """Every candidate ranking measured on the same held-out rows.

    Attributes
    ----------
    evidence : DataFrame
        One row per (candidate, budget_share): ``incremental_value`` with
        ``ci_low``/``ci_high`` (the decision's measurement, currency net of offer
        costs), ``measured_spend`` with ``spend_ci_low``/``spend_ci_high`` (the same
        from raw net spend, noisy; for reference) and ``qini`` (on purchases).
    metrics : dict of str to float
        ``uplift_*`` metrics of the same numbers.
    replicates : dict of str to dict of float to ndarray
        Per candidate and share: the estimate then the bootstrap replicates, shape
        (1 + n_boot,), paired across candidates.
    """

    evidence: pd.DataFrame
    metrics: dict[str, float]
    replicates: dict[str, dict[float, np.ndarray]]


def _interval(values: np.ndarray) -> tuple[float, float]:
    tail = values[1:]
    if not np.isfinite(tail).any():
        return np.nan, np.nan
    low, high = np.nanpercentile(tail, [_TAIL, 100 - _TAIL])
    return float(low), float(high)


def compare_rankings(
    scores: dict[str, np.ndarray],
    rows: pd.DataFrame,
    *,
    value: np.ndarray,
    churn: np.ndarray | None,
    shares: tuple[float, ...],
    n_boot: int,
    seed: int,
) -> Comparison:
    """Measure each candidate ranking at each budget share (module docstring).

    Parameters
    ----------
    scores : dict of str to ndarray, shape (n,)
        Candidate name -> ranking score (higher = contact first).
    rows : DataFrame, shape (n, ...)
        ``treated``, ``purchased``, ``net_spend``, ``offer_cost`` of the held-out rows.
    value, churn : ndarray, shape (n,)
        :func:`customer_value` and the churn probability at the day before each send.
    shares : tuple of float
        Budget shares in (0, 1].
    n_boot, seed : int
        Bootstrap replicates (shared by every candidate) and their seed.
    """
    treated = rows["treated"].to_numpy(dtype=bool)
    bought = rows["purchased"].to_numpy(dtype=float)
    spend = rows["net_spend"].to_numpy(dtype=float)
    cost = rows["offer_cost"].to_numpy(dtype=float)
    outcome = value_outcome(bought, value, churn)
    counts = bootstrap_counts(treated, n_boot, seed)
    records, metrics, replicates = [], {}, {}
    for name, score in scores.items():
        qini = qini_coefficient(score, treated, bought)
        metrics[f"uplift_qini_{name}"] = qini
        metrics[f"uplift_qini_spend_{name}"] = qini_coefficient(score, treated, spend)
        valued = value_replicates(score, treated, outcome, shares, cost=cost, counts=counts)
        measured = value_replicates(score, treated, spend, shares, cost=cost, counts=counts)
        replicates[name] = valued
        for share in shares:
            low, high = _interval(valued[share])
            spend_low, spend_high = _interval(measured[share])
            record = {
                "candidate": name,
                "budget_share": share,
                "incremental_value": float(valued[share][0]),
                "ci_low": low,
                "ci_high": high,
                "measured_spend": float(measured[share][0]),
                "spend_ci_low": spend_low,
                "spend_ci_high": spend_high,
                "qini": qini,
            }
            records.append(record)
            tag = f"uplift_value_at_{round(share * 100)}_{name}"
            metrics.update({tag: record["incremental_value"], f"{tag}_ci_low": low})
            metrics.update({f"{tag}_ci_high": high, f"{tag}_spend": record["measured_spend"]})
    return Comparison(pd.DataFrame(records), metrics, replicates)


def paired_gaps(
    evidence: pd.DataFrame,
    replicates: dict[str, dict[float, np.ndarray]],
    winners: dict[float, str],
) -> pd.DataFrame:
    """``evidence`` with each policy's paired gap to the winning policy at its share.

    ``gap`` = this policy's value - the winner's (0 for the winner), with the 95%
    interval of the paired bootstrap differences (``gap_ci_low``/``gap_ci_high``);
    NaN for rows whose ``policy`` is ``candidate`` (learners not standing for a policy).

    Parameters
    ----------
    evidence : DataFrame
        :attr:`Comparison.evidence` with a ``policy`` column.
    replicates : dict
        :attr:`Comparison.replicates`.
    winners : dict of float to str
        Winning policy per budget share.
    """
    out = evidence.assign(gap=np.nan, gap_ci_low=np.nan, gap_ci_high=np.nan)
    policies = out["policy"] != "candidate"
    for share, rows in out.loc[policies].groupby("budget_share"):
        best = rows.loc[rows["policy"] == winners[float(share)], "candidate"].iloc[0]
        for index, candidate in rows["candidate"].items():
            difference = replicates[candidate][share] - replicates[best][share]
            low, high = _interval(difference)
            out.loc[index, ["gap", "gap_ci_low", "gap_ci_high"]] = [difference[0], low, high]
    return out
