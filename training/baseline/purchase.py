"""What every purchase-process model shares: the RFM inputs, their checks and fit.

A purchase model (BG/NBD, MBG/NBD, Pareto/NBD) reads one RFM summary per customer:
``frequency`` = repeat purchases ``x``, ``recency`` = time from the first to the last
purchase ``t_x``, ``T`` = time from the first purchase to the end of observation.
Models are unit-agnostic: scale parameters (``alpha``, ``beta``) come out in the
unit of ``recency``/``T`` (days in the pipeline, weeks in the CDNOW literature) and
horizons ``t`` must use the same unit.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from fidelite.errors import InsufficientHistoryError
from fidelite.training.baseline.inputs import (
    ArrayLike,
    RfmData,
    check_horizon,
    check_rfm,
    check_weights,
    compress_rfm,
)
from fidelite.training.baseline.mle import MaximumLikelihoodModel

__all__ = ["PurchaseModel"]


class PurchaseModel(MaximumLikelihoodModel):
    """Base of the purchase-process models: fit on (frequency, recency, T).

    Subclasses define ``param_names`` (scale parameters listed in
    ``time_scale_params``), the per-row log-likelihood and the predictions
    ``p_alive``, ``expected_purchases`` and ``prob_no_purchase``.
    """

    time_scale_params: ClassVar[frozenset[str]] = frozenset()

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> PurchaseModel:
        """Estimate the parameters by penalised maximum likelihood.

        Parameters
        ----------
        frequency : array-like of shape (n_customers,)
            Number of repeat purchases ``x`` (>= 0).
        recency : array-like of shape (n_customers,)
            Time from first to last purchase ``t_x`` (0 when ``x == 0``, <= T).
        T : array-like of shape (n_customers,)
            Time from first purchase to the end of the calibration period.
        weights : array-like of shape (n_customers,), optional
            Non-negative customer counts (pre-aggregated data). Identical rows are
            collapsed either way, so 100k customers fit in a fraction of a second.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On invalid input (the message names the argument).
        InsufficientHistoryError
            When the data cannot identify the model: no customer, no time elapsed
            since any first purchase, or no repeat purchase at all.
        """
        x, t_x, big_t = check_rfm(frequency, recency, T)
        w = check_weights(weights, len(x))
        data = compress_rfm(x, t_x, big_t, w)
        _require_history(data, self.model_name)
        # Time in units of the longest age (lifetimes' convention): the penalty and the
        # optimiser see the same numbers whether the data are in days or weeks.
        time_scale = 1.0 / float(data.T.max())
        scales = np.array(
            [time_scale if name in self.time_scale_params else 1.0 for name in self.param_names]
        )
        start = self._start(self._default_start(float(data.T.max())))
        self._maximise(data.rescaled(time_scale), data.weights, scales, start, data)
        return self

    def _default_start(self, max_t: float) -> np.ndarray:
        """Starting values in the data's time unit."""
        return np.array(
            [max_t / 10 if n in self.time_scale_params else 1.0 for n in self.param_names]
        )

    def log_likelihood(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Per-customer log-likelihood under the fitted parameters, shape (n_customers,)."""
        params = self._param_array()
        x, t_x, big_t = check_rfm(frequency, recency, T)
        return self._log_likelihood_rows(params, compress_rfm(x, t_x, big_t))

    def _prediction_inputs(
        self, t: ArrayLike | None, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(params, horizon, x, t_x, T), validated and broadcast to a common length."""
        params = self._param_array()
        x, t_x, big_t = check_rfm(frequency, recency, T)
        horizon = np.zeros(1) if t is None else check_horizon(t)
        horizon, x, t_x, big_t = np.broadcast_arrays(horizon, x, t_x, big_t)
        return params, horizon.astype(float), x, t_x, big_t

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(customer still alive at T | x, t_x, T), shape (n_customers,)."""
        raise NotImplementedError

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[number of purchases in (T, T+t] | x, t_x, T], shape (n_customers,)."""
        raise NotImplementedError

    def expected_purchases_new_customer(self, t: ArrayLike) -> np.ndarray:
        """Unconditional E[X(t)] for a customer just acquired, shape of ``t``.

        The conditional expectation at ``x = t_x = T = 0``.
        """
        horizon = np.atleast_1d(np.asarray(t, dtype=float))
        zeros = np.zeros_like(horizon)
        return self.expected_purchases(horizon, zeros, zeros, zeros)

    def prob_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(no purchase in (T, T+t] | x, t_x, T), shape (n_customers,)."""
        raise NotImplementedError

    def horizon_summary(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(``p_alive``, ``expected_purchases(t)``, ``prob_no_purchase(t)``), each (n,).

        A model may compute them together (shared validation and P(alive)); the values
        are those of the three methods.
        """
        return (
            self.p_alive(frequency, recency, T),
            self.expected_purchases(t, frequency, recency, T),
            self.prob_no_purchase(t, frequency, recency, T),
        )


def _require_history(data: RfmData, model_name: str) -> None:
    """Raise InsufficientHistoryError when the rows cannot identify a purchase model."""
    n = float(data.weights.sum())
    if n <= 0:
        raise InsufficientHistoryError(
            f"{model_name}: no customer with a purchase to fit on", field="frequency"
        )
    if float(data.T.max()) <= 0:
        raise InsufficientHistoryError(
            f"{model_name}: all {n:.0f} customers made their first purchase at the end of "
            "the period (T = 0), so no time was observed for repeat purchases; fit at a "
            "later date",
            field="T",
        )
    if not np.any(data.x > 0):
        raise InsufficientHistoryError(
            f"{model_name}: none of the {n:.0f} customers has a repeat purchase, so the "
            "purchase rate and the dropout cannot be estimated; the history needs repeat "
            "buyers (a few dozen at least) or a longer period",
            field="frequency",
        )


def finite_or_raise(values: np.ndarray, what: str) -> np.ndarray:
    """Return ``values`` when all finite; else raise FloatingPointError naming positions."""
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values))[:5]
        raise FloatingPointError(f"{what}: non-finite result at positions {bad.tolist()}")
    return values
