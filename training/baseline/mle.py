"""One maximum-likelihood base for the probabilistic customer-base models.

Every model here is fitted the same way: the L2-penalised mean negative
log-likelihood (lifetimes' ``penalizer_coef`` convention)

    objective(theta) = -sum_i w_i ll_i(theta) / sum_i w_i + penalizer * sum_j theta_j**2

is minimised by L-BFGS-B over the logs of the positive parameters, with time (or
money) rescaled to a fixed unit first, so that the penalty and the optimiser see
unit-free numbers: a scale parameter such as BG/NBD's ``alpha`` is penalised in
units of the longest customer age (as lifetimes does), Gamma-Gamma's ``v`` in units
of the median spend. One convergence rule holds for all models (a small projected
gradient, no parameter at the search box edge) and one error model: standard errors
from the inverse Hessian of the penalised objective at the optimum, with 95% Wald
intervals ``coef +/- 1.96 se``, as lifetimes reports them.

A model subclass provides its parameter names, per-row log-likelihood (and, when it
has one, its analytic gradient); it prepares and rescales its data and calls
:meth:`MaximumLikelihoodModel._maximise`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

__all__ = [
    "AUTO_PENALTY",
    "GRADIENT_TOLERANCE",
    "SUMMARY_COLUMNS",
    "MaximumLikelihoodModel",
]

# The optimum is accepted when every component of the projected gradient of the mean
# objective w.r.t. log-parameters is below this. The objective is a sum of log-gamma
# terms that cancel to O(1) and is only known to ~1e-15, and along flat ridges of the
# likelihood the line search cannot find the remaining ~g**2 decrease, so L-BFGS-B
# may stop with "ABNORMAL" on the optimum: the gradient, not its message, decides.
GRADIENT_TOLERANCE = 1e-5
LOG_BOUND = 20.0  # |log(parameter)| in rescaled units; beyond it a fit has diverged
Z_95 = 1.96  # lifetimes' two-sided 95% normal quantile
SUMMARY_COLUMNS = ("coef", "se(coef)", "lower 95% bound", "upper 95% bound")
# penalizer="auto" is AUTO_PENALTY / n: a fixed L2 penalty on the *total* negative
# log-likelihood (a weak Gaussian prior, sd ~4 on each rescaled parameter), so it
# settles small data and fades as data grow. Chosen on held-out log-likelihood over
# CDNOW and demo subsamples of 20 to 12,000 customers (BENCHMARKS.md, "Baseline
# models"): lowest mean and max regret among constant and 1/n rules, never unconverged.
AUTO_PENALTY = 0.03
_HESSIAN_STEP = 1e-4  # in log-parameter units
_GRADIENT_STEP = 1e-6


class MaximumLikelihoodModel(BaseEstimator):
    """Penalised maximum-likelihood estimation, standard errors and summary.

    Parameters
    ----------
    penalizer : float or "auto"
        L2 penalty on the (rescaled) parameters added to the mean negative
        log-likelihood; 0 is the plain MLE, "auto" is ``AUTO_PENALTY / n`` for ``n``
        customers fitted.
    initial_params : mapping or sequence of floats, optional
        Starting values in the data's units, one per name in ``param_names``.

    Attributes
    ----------
    params_ : dict[str, float]
        Estimates in the data's units.
    penalizer_ : float
        The penalty coefficient used (``penalizer``, or its "auto" value).
    standard_errors_ : dict[str, float]
        From the inverse Hessian of the penalised objective (NaN when singular).
    covariance_ : ndarray of shape (n_params, n_params)
        Asymptotic covariance of the estimates, in the data's units.
    log_likelihood_ : float
        Total weighted log-likelihood at the optimum (without the penalty).
    n_customers_ : float
        Sum of the weights fitted on.
    converged_ : bool
        The convergence rule held: projected gradient below ``GRADIENT_TOLERANCE``, no
        parameter at the edge of the search range, and a positive definite Hessian
        (finite ``covariance_``: the data pin every parameter down).
    gradient_norm_ : float
        Largest component of the projected gradient at the optimum.
    n_iter_ : int
        Optimiser iterations.
    fit_seconds_ : float
        Wall time of the optimisation, including the Hessian.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    model_name: ClassVar[str] = ""

    def __init__(
        self,
        penalizer: float | str = "auto",
        initial_params: Mapping[str, float] | list[float] | tuple[float, ...] | None = None,
    ) -> None:
        self.penalizer = penalizer
        self.initial_params = initial_params

    # ------------------------------------------------------------- model hooks
    def _log_likelihood_rows(self, params: np.ndarray, data: Any) -> np.ndarray:
        """Per-row log-likelihood, shape (n_rows,), for parameters ``params``."""
        raise NotImplementedError

    def _log_likelihood_and_gradient(
        self, params: np.ndarray, data: Any
    ) -> tuple[np.ndarray, Sequence[np.ndarray] | None]:
        """Per-row log-likelihood (n_rows,) and its gradient w.r.t. each parameter
        (n_params arrays of shape (n_rows,)), or None without an analytic gradient."""
        return self._log_likelihood_rows(params, data), None

    # ---------------------------------------------------------------- fitting
    def _resolve_penalizer(self, n_customers: float) -> float:
        """The penalty coefficient for ``n_customers``; validates ``penalizer``."""
        if isinstance(self.penalizer, str):
            if self.penalizer != "auto":
                raise ValueError(
                    f'penalizer must be a number >= 0 or "auto", got {self.penalizer!r}'
                )
            return AUTO_PENALTY / max(n_customers, 1.0)
        penalizer = float(self.penalizer)
        if not np.isfinite(penalizer) or penalizer < 0:
            raise ValueError(f"penalizer must be a finite number >= 0, got {self.penalizer}")
        return penalizer

    def _start(self, default: np.ndarray) -> np.ndarray:
        """Starting values in the data's units: ``initial_params`` or ``default``."""
        if self.initial_params is None:
            return np.asarray(default, dtype=float)
        if isinstance(self.initial_params, Mapping):
            missing = set(self.param_names) - set(self.initial_params)
            if missing:
                raise ValueError(f"initial_params: missing {sorted(missing)}")
            values = np.array([self.initial_params[k] for k in self.param_names], dtype=float)
        else:
            values = np.asarray(self.initial_params, dtype=float)
        k = len(self.param_names)
        if values.shape != (k,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"initial_params: need {k} positive finite values, got {values}")
        return values

    def _objective(
        self, log_params: np.ndarray, data: Any, weights: np.ndarray, penalizer: float
    ) -> tuple[float, np.ndarray]:
        """Penalised mean negative log-likelihood and its gradient w.r.t. log-parameters."""
        params = np.exp(log_params)
        total = weights.sum()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ll, rows = self._log_likelihood_and_gradient(params, data)
        value = -(weights * ll).sum() / total + penalizer * np.sum(params**2)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(log_params)
        if rows is None:
            grad_ll = self._numeric_gradient(log_params, data, weights) / params
        else:
            # Plain multiply-and-sum rather than `@`: BLAS threads thrash on a busy box.
            grad_ll = np.array([(weights * g).sum() for g in rows]) / total
        # Chain rule for the log-parametrisation: d/dlog(p) = p * d/dp.
        return float(value), -grad_ll * params + 2.0 * penalizer * params**2

    def _numeric_gradient(
        self, log_params: np.ndarray, data: Any, weights: np.ndarray
    ) -> np.ndarray:
        """Central-difference gradient of the mean log-likelihood w.r.t. log-parameters."""
        total = weights.sum()
        grad = np.empty_like(log_params)
        for j in range(len(log_params)):
            step = np.zeros_like(log_params)
            step[j] = _GRADIENT_STEP
            up = (weights * self._log_likelihood_rows(np.exp(log_params + step), data)).sum()
            down = (weights * self._log_likelihood_rows(np.exp(log_params - step), data)).sum()
            grad[j] = (up - down) / (2 * _GRADIENT_STEP * total)
        return grad

    def _maximise(
        self,
        data: Any,
        weights: np.ndarray,
        scales: np.ndarray,
        start: np.ndarray,
        natural_data: Any,
    ) -> None:
        """Fit on rescaled ``data`` and store every learned attribute.

        Parameters
        ----------
        data : model-specific rows in rescaled units (rescaled parameter =
            natural parameter * ``scales``).
        weights : ndarray of shape (n_rows,)
        scales : ndarray of shape (n_params,)
        start : ndarray of shape (n_params,), starting values in natural units.
        natural_data : the same rows in the data's own units, for ``log_likelihood_``.
        """
        penalizer = self._resolve_penalizer(float(weights.sum()))
        begin = time.perf_counter()
        bounds = [(-LOG_BOUND, LOG_BOUND)] * len(self.param_names)
        # L-BFGS-B's BLAS calls on 4-vectors only lose time to thread hand-offs
        # (10 ms a call on a busy machine): one thread, for this call only.
        with threadpool_limits(limits=1, user_api="blas"):
            result = minimize(
                self._objective,
                np.clip(np.log(start * scales), -LOG_BOUND + 1, LOG_BOUND - 1),
                args=(data, weights, penalizer),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 3000, "ftol": 1e-14, "gtol": 1e-9},
            )
        if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
            raise RuntimeError(f"{self.model_name} fit diverged: {result.message}")
        _, grad = self._objective(result.x, data, weights, penalizer)
        scaled = np.exp(result.x)
        natural = scaled / scales
        self.params_ = dict(zip(self.param_names, natural.tolist(), strict=True))
        self.penalizer_ = penalizer
        self.n_customers_ = float(weights.sum())
        self.n_iter_ = int(result.nit)
        self.gradient_norm_ = _projected_gradient_norm(result.x, grad)
        at_bound = bool(np.any(np.abs(result.x) >= LOG_BOUND - 1e-6))
        self.log_likelihood_ = float(
            (weights * self._log_likelihood_rows(natural, natural_data)).sum()
        )
        self._store_covariance(result.x, data, weights, penalizer, natural)
        # A small gradient is not enough: on a ridge (BG/NBD's r and alpha running off
        # together towards the Poisson limit) L-BFGS-B may stop anywhere with a tiny
        # gradient, depending on the CPU's rounding. A maximum the data pin down has a
        # positive definite Hessian, hence a finite covariance.
        identified = bool(np.all(np.isfinite(self.covariance_)))
        self.converged_ = self.gradient_norm_ <= GRADIENT_TOLERANCE and not at_bound and identified
        self.fit_seconds_ = time.perf_counter() - begin
        self._report_fit(result, at_bound, identified)

    def _store_covariance(
        self,
        log_params: np.ndarray,
        data: Any,
        weights: np.ndarray,
        penalizer: float,
        natural: np.ndarray,
    ) -> None:
        """Delta-method covariance ``p_i p_j [H^-1]_ij / n`` (H: Hessian in log-params)."""
        k = len(log_params)
        hessian = np.empty((k, k))
        for j in range(k):
            step = np.zeros(k)
            step[j] = _HESSIAN_STEP
            up = self._objective(log_params + step, data, weights, penalizer)[1]
            down = self._objective(log_params - step, data, weights, penalizer)[1]
            hessian[:, j] = (up - down) / (2 * _HESSIAN_STEP)
        hessian = (hessian + hessian.T) / 2
        covariance = np.full((k, k), np.nan)
        if np.all(np.isfinite(hessian)) and np.linalg.eigvalsh(hessian).min() > 0:
            covariance = np.outer(natural, natural) * np.linalg.inv(hessian) / weights.sum()
        self.covariance_ = covariance
        self.standard_errors_ = dict(
            zip(self.param_names, np.sqrt(np.diag(covariance)).tolist(), strict=True)
        )

    def _report_fit(self, result: Any, at_bound: bool, identified: bool) -> None:
        shown = {k: float(f"{v:.4g}") for k, v in self.params_.items()}
        if self.converged_:
            logger.info(
                "%s fitted on %d customers in %.3fs (%d iterations): %s, LL=%.2f",
                self.model_name,
                self.n_customers_,
                self.fit_seconds_,
                self.n_iter_,
                shown,
                self.log_likelihood_,
            )
            return
        why = (
            "a parameter ran to the edge of the search range (the data cannot pin it down)"
            if at_bound
            else "the likelihood is flat along some direction at the optimum (its Hessian is "
            "not positive definite: the data cannot pin the parameters down)"
            if not identified
            else f"max |gradient| {self.gradient_norm_:.1e} > {GRADIENT_TOLERANCE:.0e} "
            f"after {self.n_iter_} iterations ({result.message})"
        )
        warnings.warn(
            f"{self.model_name} fit did not converge: {why}; parameters {shown} may be "
            f"off. A larger penalizer (now {self.penalizer_:.3g}) stabilises small data.",
            ConvergenceWarning,
            stacklevel=4,
        )

    # -------------------------------------------------------------- reporting
    def _param_array(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit first."
            )
        return np.array([self.params_[k] for k in self.param_names])

    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals, as lifetimes prints them.

        Returns
        -------
        DataFrame of shape (n_params, 4)
            Indexed by parameter name; columns ``coef``, ``se(coef)``,
            ``lower 95% bound``, ``upper 95% bound`` (``coef -/+ 1.96 se``).
        """
        coef = pd.Series(self._param_array(), index=list(self.param_names))
        se = pd.Series(self.standard_errors_).reindex(coef.index)
        frame = pd.DataFrame({"coef": coef, "se(coef)": se})
        frame["lower 95% bound"] = coef - Z_95 * se
        frame["upper 95% bound"] = coef + Z_95 * se
        return frame

    def report(self) -> dict[str, Any]:
        """The summary plus fit diagnostics as plain JSON-serialisable values."""
        table = self.summary()
        return {
            "model": self.model_name,
            "penalizer": self.penalizer,
            "penalizer_used": self.penalizer_,
            "params": {
                name: {column: _json_float(table.loc[name, column]) for column in table.columns}
                for name in table.index
            },
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "converged": self.converged_,
            "gradient_norm": self.gradient_norm_,
            "n_iter": self.n_iter_,
            "fit_seconds": self.fit_seconds_,
        }


def _projected_gradient_norm(log_params: np.ndarray, grad: np.ndarray) -> float:
    """Max |gradient| ignoring components that push against an active box bound."""
    blocked = ((log_params <= -LOG_BOUND) & (grad > 0)) | ((log_params >= LOG_BOUND) & (grad < 0))
    return float(np.max(np.abs(np.where(blocked, 0.0, grad))))


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
