"""Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

While alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r,
alpha)``; their lifetime is exponential with rate ``mu ~ Gamma(s, beta)``, so they
can leave at any moment, not only after a purchase (BG/NBD). The likelihood follows
Fader, Hardie & Lee's implementation note (2005), "A note on deriving the Pareto/NBD
model and related expressions":

    L(x, t_x, T) = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s
                   + s * integral_{t_x}^{T} (alpha+y)^-(r+x) (beta+y)^-(s+1) dy ]

The first term is "alive at T", the second "left at some y in (t_x, T]". The tail
integral ``I(y) = integral_y^inf ...`` is a Gauss hypergeometric function, evaluated
after Euler's transformation so that it converges at both ends. Two identities give
the predictions: ``P(alive) = first term / L``, and a customer silent through
``T + t`` has history ``(x, t_x, T + t)``, so ``P(no purchase in (T, T+t]) =
L(x, t_x, T+t) / L(x, t_x, T)``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import gammaln, hyp2f1

from fidelite.training.baseline.inputs import ArrayLike, RfmData, compress_rfm
from fidelite.training.baseline.purchase import PurchaseModel, finite_or_raise

__all__ = ["ParetoNBDModel"]


def _log_tail_integral(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log integral_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du``, shape (n,).

    With ``m = max(alpha, beta)``, ``z = |alpha - beta| / (m + y)`` and ``B = s + 1``
    (alpha >= beta) or ``r + x`` (alpha < beta), the integral is ``(m+y)^-(r+s+x)
    2F1(r+s+x, B; r+s+x+1; z) / (r+s+x)``. That series diverges like ``(1-z)^(1-B)``
    as z -> 1; Euler's transformation ``(1-z)^(1-B) 2F1(1, r+s+x+1-B; r+s+x+1; z)``
    converges there whenever ``B > 1``, the direct form whenever ``B <= 1``.
    """
    r, alpha, s, beta = params
    rsx = r + s + x
    m = max(alpha, beta)
    b_param = np.full_like(x, s + 1.0) if alpha >= beta else r + x
    z = abs(alpha - beta) / (m + y)
    with np.errstate(divide="ignore", invalid="ignore"):
        transformed = (1 - b_param) * np.log1p(-z) + np.log(
            hyp2f1(1.0, rsx + 1 - b_param, rsx + 1, z)
        )
        direct = np.log(hyp2f1(rsx, b_param, rsx + 1, z))
    log_hyp = np.where(b_param > 1, transformed, direct)
    return log_hyp - rsx * np.log(m + y) - np.log(rsx)


def _log_alive_term(params: np.ndarray, data: RfmData) -> tuple[np.ndarray, np.ndarray]:
    """(log constant, log of "alive at T" term), each shape (n_rows,)."""
    r, alpha, s, beta = params
    lv, codes = data.x_levels, data.x_codes
    constant = (gammaln(r + lv) - gammaln(r))[codes] + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + data.x) * np.log(alpha + data.T) - s * np.log(beta + data.T)
    return constant, alive


def log_likelihood_rows(params: np.ndarray, data: RfmData) -> np.ndarray:
    """Per-row Pareto/NBD log-likelihood, shape (n_rows,), for (r, alpha, s, beta)."""
    s = params[2]
    constant, alive = _log_alive_term(params, data)
    tail_from_t_x = _log_tail_integral(params, data.x, data.t_x)
    tail_from_t = _log_tail_integral(params, data.x, data.T)
    # integral over (t_x, T] = I(t_x) - I(T) >= 0; exactly 0 when t_x == T.
    with np.errstate(divide="ignore"):
        ratio = np.minimum(np.exp(tail_from_t - tail_from_t_x), 1.0)
        left = np.log(s) + tail_from_t_x + np.log1p(-ratio)
    return constant + np.logaddexp(alive, left)


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD model fitted by penalised maximum likelihood.

    Parameters
    ----------
    penalizer : float or "auto", default "auto"
        L2 penalty on (r, alpha, s, beta), ``alpha`` and ``beta`` in units of the
        longest customer age (lifetimes' ``penalizer_coef`` convention); "auto":
        ``AUTO_PENALTY / n_customers``.
    initial_params : mapping or sequence of 4 floats, optional
        Starting (r, alpha, s, beta) in the time unit of the data.

    Attributes
    ----------
    params_ : dict[str, float]
        ``r``, ``alpha`` (purchase rate ~ Gamma(r, alpha)), ``s``, ``beta`` (dropout
        rate ~ Gamma(s, beta)); ``alpha`` and ``beta`` in the time unit of ``T``.

    Notes
    -----
    The gradient is taken by central differences (the analytic one needs the
    derivatives of 2F1 in its parameters), so fits are several times slower than
    BG/NBD's on the same data.
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    time_scale_params: ClassVar[frozenset[str]] = frozenset({"alpha", "beta"})
    model_name: ClassVar[str] = "Pareto/NBD"

    def _log_likelihood_rows(self, params: np.ndarray, data: RfmData) -> np.ndarray:
        return log_likelihood_rows(params, data)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(alive at T | x, t_x, T) = "alive at T" term / likelihood, shape (n_customers,)."""
        params, _, x, t_x, big_t = self._prediction_inputs(None, frequency, recency, T)
        data = compress_rfm(x, t_x, big_t)
        constant, alive = _log_alive_term(params, data)
        result = np.exp(np.minimum(constant + alive - log_likelihood_rows(params, data), 0.0))
        return finite_or_raise(result, "p_alive")

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """Conditional expected number of purchases in (T, T+t], shape (n_customers,).

        ``P(alive) * (r+x)/(alpha+T) * E[(1 - exp(-mu t)) / mu]`` with ``mu ~ Gamma(s,
        beta+T)``, i.e. ``(beta+T) (1 - ((beta+T)/(beta+T+t))^(s-1)) / (s-1)``
        (its limit ``(beta+T) log(1 + t/(beta+T))`` at ``s = 1``).
        """
        params, horizon, x, t_x, big_t = self._prediction_inputs(t, frequency, recency, T)
        r, alpha, s, beta = params
        alive = self.p_alive(x, t_x, big_t)
        growth = np.log1p(horizon / (beta + big_t))
        # E[(1 - exp(-mu t)) / mu] / (beta + T); its s -> 1 limit is `growth` itself.
        lifetime = growth if abs(s - 1) < 1e-8 else -np.expm1(-(s - 1) * growth) / (s - 1)
        result = alive * (r + x) / (alpha + big_t) * (beta + big_t) * lifetime
        return finite_or_raise(np.maximum(result, 0.0), "expected_purchases")

    def prob_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(no purchase in (T, T+t] | x, t_x, T) = L(x, t_x, T+t) / L(x, t_x, T)."""
        params, horizon, x, t_x, big_t = self._prediction_inputs(t, frequency, recency, T)
        now = log_likelihood_rows(params, compress_rfm(x, t_x, big_t))
        later = log_likelihood_rows(params, compress_rfm(x, t_x, big_t + horizon))
        result = np.clip(np.exp(later - now), 0.0, 1.0)
        return finite_or_raise(result, "prob_no_purchase")
