"""BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

"Counting your customers the easy way: an alternative to the Pareto/NBD model",
Marketing Science 24(2). While alive, a customer buys as a Poisson process with
rate ``lambda ~ Gamma(r, alpha)`` (shape ``r``, rate ``alpha``); after every
*repeat* purchase they drop out for good with probability ``p ~ Beta(a, b)``.

The math is written for ``k`` dropout opportunities survived by a customer with
``x`` repeat purchases: ``k = x`` here, ``k = x + 1`` in the MBG/NBD variant
(:mod:`fidelite.training.baseline.mbgnbd`), which may also drop out right after
the first purchase. Given alive at ``T``, ``lambda ~ Gamma(r + x, alpha + T)`` and
``p ~ Beta(a, b + k)``, which is all the predictions need.

A consequence of ``k = x``: a customer without a repeat purchase never had a chance
to drop out, so BG/NBD's ``p_alive`` is exactly 1 for every one-time buyer however
long ago they bought. Use MBG/NBD or Pareto/NBD where that matters.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import betaincinv, betaln, digamma, gammaln, hyp2f1, roots_legendre

from fidelite.training.baseline.inputs import ArrayLike, RfmData
from fidelite.training.baseline.purchase import PurchaseModel, finite_or_raise

__all__ = ["BetaGeoModel"]

_QUADRATURE_NODES, _QUADRATURE_WEIGHTS = roots_legendre(96)


def _log_likelihood_parts(
    params: np.ndarray, data: RfmData, offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row log-likelihood and the pieces its gradient reuses, each shape (n_rows,).

    ``LL = const(x) + logaddexp(A3, A4)`` with ``A3 = -(r+x) log(alpha+T)`` ("alive
    at T") and ``A4 = log(a/(b+k-1)) - (r+x) log(alpha+t_x)`` ("dropped out right
    after the last purchase", -inf when ``k == 0``: no dropout opportunity).
    Returns (LL, A3, LL - const, log(alpha+T), log(alpha+t_x)).
    """
    r, alpha, a, b = params
    lv, codes = data.x_levels, data.x_codes
    k = lv + offset
    constant = gammaln(r + lv) - gammaln(r) + r * np.log(alpha) + betaln(a, b + k) - betaln(a, b)
    # b + k - 1 >= b > 0 whenever k >= 1; the inner where() keeps k == 0 finite.
    log_dropout = np.where(k > 0, np.log(a) - np.log(np.where(k > 0, b + k - 1, 1.0)), -np.inf)
    log_alpha_t = np.log(alpha + data.T)
    log_alpha_t_x = np.log(alpha + data.t_x)
    rx = r + data.x
    a3 = -rx * log_alpha_t
    lse = np.logaddexp(a3, log_dropout[codes] - rx * log_alpha_t_x)
    return constant[codes] + lse, a3, lse, log_alpha_t, log_alpha_t_x


def log_likelihood_rows(params: np.ndarray, data: RfmData, offset: int = 0) -> np.ndarray:
    """Per-row log-likelihood, shape (n_rows,), for params (r, alpha, a, b)."""
    return _log_likelihood_parts(params, data, offset)[0]


def log_likelihood_and_gradient(
    params: np.ndarray, data: RfmData, offset: int = 0
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Per-row log-likelihood (n_rows,) and its gradient w.r.t. (r, alpha, a, b), 4 x (n_rows,)."""
    r, alpha, a, b = params
    lv, codes = data.x_levels, data.x_codes
    k = lv + offset
    ll, a3, lse, log_alpha_t, log_alpha_t_x = _log_likelihood_parts(params, data, offset)
    alive = np.exp(a3 - lse)  # posterior weight of "still alive at T"
    dropped = 1.0 - alive  # of "dropped out right after t_x" (0 when k == 0)
    inv_b_term = np.where(k > 0, 1.0 / np.where(k > 0, b + k - 1, 1.0), 0.0)
    rx = r + data.x
    d_r = (digamma(r + lv) - digamma(r) + np.log(alpha))[codes] - (
        alive * log_alpha_t + dropped * log_alpha_t_x
    )
    d_alpha = r / alpha - rx * (alive / (alpha + data.T) + dropped / (alpha + data.t_x))
    d_a = (digamma(a + b) - digamma(a + b + k))[codes] + dropped / a
    level_b = digamma(a + b) + digamma(b + k) - digamma(b) - digamma(a + b + k)
    d_b = level_b[codes] - dropped * inv_b_term[codes]
    return ll, (d_r, d_alpha, d_a, d_b)


def log_dead_odds(
    params: np.ndarray, x: np.ndarray, k: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> np.ndarray:
    """log P(dropped out) / P(alive) given the history; -inf when ``k == 0``.

    ``a / (b + k - 1) * ((alpha + T) / (alpha + t_x))^(r + x)``.
    """
    r, alpha, a, b = params
    b_term = np.where(k > 0, b + k - 1, 1.0)
    return np.where(
        k > 0,
        np.log(a) - np.log(b_term) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x)),
        -np.inf,
    )


def expected_purchases_if_alive(
    params: np.ndarray, x: np.ndarray, k: np.ndarray, big_t: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T, x, T], shape (n,).

    Closed form ``(a+b+k-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+k;
    a+b+k-1; z)]`` with ``z = t/(alpha+T+t)``, evaluated after Euler's transformation
    ``2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)``: the product becomes
    ``(1-z)^(a-1) 2F1(a+b+k-1-r-x, a-1; a+b+k-1; z)`` whose second parameter is
    small, so the series is tame. Where it still fails (huge ``r`` from a
    degenerate fit, ``a`` near 1) the expectation is integrated numerically.
    """
    r, alpha, a, b = params
    z = t / (alpha + big_t + t)
    with np.errstate(all="ignore"):
        hyp = hyp2f1(a + b + k - 1 - r - x, a - 1, a + b + k - 1, z)
        bracket = (1.0 - np.exp((a - 1) * np.log1p(-z)) * hyp) / (a - 1)
        result = (a + b + k - 1) * bracket
    suspect = ~np.isfinite(result) | (result < 0) | (abs(a - 1) < 1e-3)
    if suspect.any():
        result = np.where(
            suspect,
            _integrated_expectation(params, x, k, big_t, t, suspect),
            result,
        )
    return result


def _integrated_expectation(
    params: np.ndarray,
    x: np.ndarray,
    k: np.ndarray,
    big_t: np.ndarray,
    t: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """The same expectation by quadrature, for ``rows``; zeros elsewhere.

    Given alive, ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+k)``; given
    both, ``E[N(t)] = (1 - exp(-lambda p t)) / p``, so ``E[N(t)] = E_p[(1 - (1 + p
    t / (alpha+T))^-(r+x)) / p]``. The integrand is bounded by ``(r+x) t/(alpha+T)``,
    so Gauss-Legendre on the Beta quantile scale converges for any parameters.
    """
    r, alpha, a, b = params
    out = np.zeros(len(x))
    idx = np.flatnonzero(rows)
    u = (_QUADRATURE_NODES + 1) / 2
    levels, codes = np.unique(k[idx], return_inverse=True)
    p_nodes = betaincinv(a, b + levels[:, None], u[None, :])[codes]  # (n_rows, nodes)
    p_nodes = np.maximum(p_nodes, 1e-300)
    rate = (t[idx] / (alpha + big_t[idx]))[:, None]
    shape = (r + x[idx])[:, None]
    values = -np.expm1(-shape * np.log1p(p_nodes * rate)) / p_nodes
    out[idx] = (values * _QUADRATURE_WEIGHTS).sum(axis=1) / 2
    return out


class BetaGeoModel(PurchaseModel):
    """BG/NBD model fitted by penalised maximum likelihood.

    Parameters
    ----------
    penalizer : float or "auto", default "auto"
        L2 penalty ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` on the mean negative
        log-likelihood, ``alpha`` in units of the longest customer age (lifetimes'
        ``penalizer_coef``). Shrinks parameters on small or degenerate data sets.
        "auto": ``AUTO_PENALTY / n_customers`` (see ``fidelite.training.baseline.mle``).
    initial_params : mapping or sequence of 4 floats, optional
        Starting (r, alpha, a, b); ``alpha`` in the time unit of the data.
        Default: r=a=b=1 and alpha = max(T) / 10.

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``r``, ``alpha`` (in the time unit of ``recency``/``T``), ``a``, ``b``.
    standard_errors_, covariance_, log_likelihood_, n_customers_, converged_,
    gradient_norm_, n_iter_, fit_seconds_ :
        See :class:`~fidelite.training.baseline.mle.MaximumLikelihoodModel`.
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    time_scale_params: ClassVar[frozenset[str]] = frozenset({"alpha"})
    model_name: ClassVar[str] = "BG/NBD"
    # Dropout opportunities survived = repeat purchases + this (1: also after the first).
    dropout_offset: ClassVar[int] = 0

    def _log_likelihood_rows(self, params: np.ndarray, data: RfmData) -> np.ndarray:
        return log_likelihood_rows(params, data, self.dropout_offset)

    def _log_likelihood_and_gradient(
        self, params: np.ndarray, data: RfmData
    ) -> tuple[np.ndarray, np.ndarray]:
        return log_likelihood_and_gradient(params, data, self.dropout_offset)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(customer still alive at T | x, t_x, T), shape (n_customers,).

        ``1 / (1 + a/(b+k-1) * ((alpha+T)/(alpha+t_x))^(r+x))`` for ``k > 0`` and
        exactly 1 for ``k == 0`` (BG/NBD without repeat purchase: no dropout chance).
        """
        params, _, x, t_x, big_t = self._prediction_inputs(None, frequency, recency, T)
        return self._alive(params, x, t_x, big_t)

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """Conditional expected number of purchases in (T, T+t], shape (n_customers,).

        Parameters
        ----------
        t : float or array-like of shape (n_customers,)
            Horizon length, in the time unit of ``T``.
        frequency, recency, T : array-like of shape (n_customers,)

        Returns
        -------
        ndarray of shape (n_customers,)
            ``P(alive) * E[purchases in (T, T+t] | alive]`` (eq. 10 of the paper),
            finite and >= 0 for any fitted parameters.
        """
        params, horizon, x, t_x, big_t = self._prediction_inputs(t, frequency, recency, T)
        return self._expected(params, horizon, x, big_t, self._alive(params, x, t_x, big_t))

    def prob_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(no purchase in (T, T+t] | x, t_x, T), shape (n_customers,).

        A dead customer never buys. A customer alive at T can only drop out right
        after a purchase, so "no purchase in (T, T+t]" given alive is the Poisson
        zero-count ``exp(-lambda t)``, whose posterior mean is
        ``((alpha+T)/(alpha+T+t))^(r+x)``. Hence ``1 - P(alive) + P(alive) *
        ((alpha+T)/(alpha+T+t))^(r+x)``; it is never below ``1 - P(alive)``.
        """
        params, horizon, x, t_x, big_t = self._prediction_inputs(t, frequency, recency, T)
        return self._no_purchase(params, horizon, x, big_t, self._alive(params, x, t_x, big_t))

    def horizon_summary(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(``p_alive``, ``expected_purchases(t)``, ``prob_no_purchase(t)``), each (n,).

        The same values as the three methods, from one validation of the inputs and one
        P(alive) (what scoring a customer needs; the three calls cost three of each).
        """
        params, horizon, x, t_x, big_t = self._prediction_inputs(t, frequency, recency, T)
        alive = self._alive(params, x, t_x, big_t)
        return (
            alive,
            self._expected(params, horizon, x, big_t, alive),
            self._no_purchase(params, horizon, x, big_t, alive),
        )

    def _alive(
        self, params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
    ) -> np.ndarray:
        k = x + self.dropout_offset
        return np.exp(-np.logaddexp(0.0, log_dead_odds(params, x, k, t_x, big_t)))

    def _expected(
        self,
        params: np.ndarray,
        horizon: np.ndarray,
        x: np.ndarray,
        big_t: np.ndarray,
        alive: np.ndarray,
    ) -> np.ndarray:
        k = x + self.dropout_offset
        given_alive = expected_purchases_if_alive(params, x, k, big_t, horizon)
        return finite_or_raise(np.maximum(alive * given_alive, 0.0), "expected_purchases")

    @staticmethod
    def _no_purchase(
        params: np.ndarray,
        horizon: np.ndarray,
        x: np.ndarray,
        big_t: np.ndarray,
        alive: np.ndarray,
    ) -> np.ndarray:
        r, alpha, _, _ = params
        silent = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + horizon)))
        result = np.clip(1.0 - alive + alive * silent, 0.0, 1.0)
        return finite_or_raise(result, "prob_no_purchase")
