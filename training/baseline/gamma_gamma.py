"""Gamma-Gamma model of spend per transaction (Fader & Hardie 2013).

"The Gamma-Gamma model of monetary value" (brucehardie.com note). Each
transaction value of a customer is ``Gamma(p, nu)`` (shape ``p``, rate ``nu``);
across customers ``nu ~ Gamma(q, v)`` (shape ``q``, rate ``v``). Only the
customer's number of repeat transactions ``x`` and their mean value ``m_x`` are
needed. ``v`` is in the currency unit of ``monetary_value``; ``p`` and ``q`` are
unit-free. Spend is assumed independent of the purchase process, which is what
lets CLV = expected purchases x expected spend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from fidelite.errors import InsufficientHistoryError
from fidelite.training.baseline.inputs import (
    ArrayLike,
    check_frequency_monetary,
    check_weights,
)
from fidelite.training.baseline.mle import MaximumLikelihoodModel

logger = logging.getLogger(__name__)

__all__ = ["GammaGammaModel"]

# Fewer repeat customers than this cannot separate within- from between-customer
# spread (p from q and v), whatever the penalty.
MIN_REPEAT_CUSTOMERS = 2


@dataclass(frozen=True)
class SpendData:
    """Repeat customers' (x, m_x) with what the likelihood reuses across iterations.

    Log-gamma and digamma terms depend on ``x`` alone, so they are evaluated once per
    distinct transaction count (``x_levels[x_codes] == x``) instead of once per row.
    """

    x: np.ndarray
    m: np.ndarray
    log_m: np.ndarray
    log_x: np.ndarray
    x_levels: np.ndarray
    x_codes: np.ndarray


def spend_data(x: np.ndarray, m: np.ndarray) -> SpendData:
    """Build :class:`SpendData` from counts ``x`` > 0 and mean spends ``m`` > 0, shape (n,)."""
    levels, codes = np.unique(x, return_inverse=True)
    return SpendData(x, m, np.log(m), np.log(x), levels, codes.ravel())


def log_likelihood_and_gradient(
    params: np.ndarray, data: SpendData
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log density of the mean spend (n,) and its gradient w.r.t. (p, q, v) (3, n).

    ``log f(m | p, q, v, x) = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln m
    + px ln x - (px+q) ln(v + m x)``; requires x > 0 and m > 0.
    """
    p, q, v = params
    lv, codes, x = data.x_levels, data.x_codes, data.x
    px_levels = p * lv
    px = p * x
    log_total = np.log(v + data.m * x)
    constant = (gammaln(px_levels + q) - gammaln(px_levels) - gammaln(q))[codes]
    ll = constant + q * np.log(v) + (px - 1) * data.log_m + px * data.log_x - (px + q) * log_total
    d_p = x * (
        (digamma(px_levels + q) - digamma(px_levels))[codes] + data.log_m + data.log_x - log_total
    )
    d_q = (digamma(px_levels + q) - digamma(q))[codes] + np.log(v) - log_total
    d_v = q / v - (px + q) / (v + data.m * x)
    return ll, np.stack([d_p, d_q, d_v])


def log_likelihood_rows(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer log density of the mean spend ``m`` over ``x`` transactions, shape (n,)."""
    return log_likelihood_and_gradient(params, spend_data(x, m))[0]


class GammaGammaModel(MaximumLikelihoodModel):
    """Gamma-Gamma spend model fitted by penalised maximum likelihood.

    Parameters
    ----------
    penalizer : float or "auto", default "auto"
        L2 penalty ``penalizer * (p^2 + q^2 + v^2)`` on the mean negative
        log-likelihood, ``v`` in units of the median ``monetary_value`` (so the
        penalty does not depend on the currency). "auto": ``AUTO_PENALTY / n`` for the
        ``n`` repeat customers fitted (see ``fidelite.training.baseline.mle``).
    initial_params : mapping or sequence of 3 floats, optional
        Starting (p, q, v); ``v`` in the currency of ``monetary_value``.
        Default: p=1, q=2 and v = median(monetary_value).

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``p``, ``q``, ``v``.
    n_dropped_ : int
        Customers ignored because frequency == 0 or monetary_value <= 0.
    observed_mean_spend_ : float
        Weighted mean of ``monetary_value`` over the customers fitted (currency).
    standard_errors_, covariance_, log_likelihood_, n_customers_, converged_,
    gradient_norm_, n_iter_, fit_seconds_ :
        See :class:`~fidelite.training.baseline.mle.MaximumLikelihoodModel`.
    """

    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "v")
    model_name: ClassVar[str] = "Gamma-Gamma"

    def _log_likelihood_rows(self, params: np.ndarray, data: SpendData) -> np.ndarray:
        return log_likelihood_and_gradient(params, data)[0]

    def _log_likelihood_and_gradient(
        self, params: np.ndarray, data: SpendData
    ) -> tuple[np.ndarray, np.ndarray]:
        return log_likelihood_and_gradient(params, data)

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> GammaGammaModel:
        """Estimate (p, q, v) on repeat customers.

        Customers with ``frequency == 0`` or ``monetary_value <= 0`` say nothing about
        spend per transaction and are left out (counted in ``n_dropped_``).

        Parameters
        ----------
        frequency : array-like of shape (n_customers,)
            Number of repeat transactions ``x``.
        monetary_value : array-like of shape (n_customers,)
            Mean value of those transactions (currency units).
        weights : array-like of shape (n_customers,), optional
            Non-negative customer counts.

        Returns
        -------
        self

        Raises
        ------
        InsufficientHistoryError
            With fewer than 2 customers having frequency > 0 and monetary_value > 0.
        ValueError
            When an argument is invalid; the message names it.
        """
        x, m = check_frequency_monetary(frequency, monetary_value)
        w = check_weights(weights, len(x))
        usable = (x > 0) & (m > 0) & (w > 0)
        self.n_dropped_ = int((~usable).sum())
        if self.n_dropped_:
            logger.info(
                "Gamma-Gamma: ignoring %d of %d customers with frequency == 0 or "
                "monetary_value <= 0",
                self.n_dropped_,
                len(x),
            )
        if usable.sum() < MIN_REPEAT_CUSTOMERS:
            raise InsufficientHistoryError(
                f"Gamma-Gamma needs at least {MIN_REPEAT_CUSTOMERS} customers with a repeat "
                f"purchase (frequency > 0) and a positive mean spend (monetary_value > 0); "
                f"found {int(usable.sum())} among {len(x)}",
                field="monetary_value",
            )
        x, m, w = x[usable], m[usable], w[usable]
        median = float(np.median(m))
        start = self._start(np.array([1.0, 2.0, median]))
        # Money in units of the median spend: log(v) starts near 0 whatever the currency.
        scales = np.array([1.0, 1.0, 1.0 / median])
        self._maximise(spend_data(x, m / median), w, scales, start, spend_data(x, m))
        self.observed_mean_spend_ = float((w * m).sum() / w.sum())
        if self.params_["q"] <= 1:
            logger.warning(
                "Gamma-Gamma q=%.3f <= 1: the population mean spend is infinite; customers "
                "with too few repeat purchases get their own mean spend, those without any "
                "the observed mean %.2f",
                self.params_["q"],
                self.observed_mean_spend_,
            )
        return self

    def population_mean_spend(self) -> float:
        """Mean spend per transaction of a random customer, ``p v / (q - 1)``.

        Raises
        ------
        FloatingPointError
            When ``q <= 1`` (the mean is infinite).
        """
        p, q, v = self._param_array()
        if q <= 1:
            raise FloatingPointError(f"population mean spend is infinite for q={q:.4f} <= 1")
        return float(p * v / (q - 1))

    def expected_spend(self, frequency: ArrayLike, monetary_value: ArrayLike) -> np.ndarray:
        """Conditional expected spend per transaction, shape (n_customers,).

        ``E[Z | x, m_x] = p (v + x m_x) / (p x + q - 1)``, a credibility-weighted
        mix of the population mean ``p v / (q - 1)`` (weight ``(q-1)/(px+q-1)``)
        and the customer's own mean ``m_x``. Customers with ``x == 0`` get the
        population mean. Currency units of ``monetary_value``; finite for every row.

        When ``q <= 1`` the population mean is infinite and so is the posterior mean
        of customers with ``p x + q <= 1``: they get their own mean ``m_x`` (the
        no-shrinkage limit), or ``observed_mean_spend_`` without repeat purchases.
        """
        p, q, v = self._param_array()
        x, m = check_frequency_monetary(frequency, monetary_value)
        # Without repeat purchases m_x carries no information (it is 0 by convention).
        m = np.where(x > 0, m, 0.0)
        denominator = p * x + q - 1
        finite = denominator > 0
        shrunk = p * (v + x * m) / np.where(finite, denominator, 1.0)
        return np.where(finite, shrunk, np.where(x > 0, m, self.observed_mean_spend_))

    def log_likelihood(self, frequency: ArrayLike, monetary_value: ArrayLike) -> np.ndarray:
        """Per-customer log-likelihood, shape (n_customers,); NaN where frequency or
        monetary_value is 0 (the model says nothing about those customers)."""
        params = self._param_array()
        x, m = check_frequency_monetary(frequency, monetary_value)
        usable = (x > 0) & (m > 0)
        out = np.full(len(x), np.nan)
        out[usable] = log_likelihood_rows(params, x[usable], m[usable])
        return out

    def report(self) -> dict:
        """The summary plus fit diagnostics (JSON-serialisable), with ``n_dropped``."""
        return {**super().report(), "n_dropped": self.n_dropped_}
