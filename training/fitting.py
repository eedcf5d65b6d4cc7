"""Fitting the models from backtest windows: pure, no MLflow, no display.

:func:`fit_models` is the whole modelling step of a training run::

    windows (purchasers' features + baseline at each cutoff, and their outcomes)
      -> FeatureEncoder (columns and levels; columns the scored rows lie beyond are left out)
      -> ChurnModel / ClvModel (newest window held out: tree counts, calibration,
         intervals; then refitted on every window)
      -> FittedModels (the fitted parts, validation metrics, held-out predictions)

:func:`fit_baseline` is the same step for a baseline-only run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fidelite.training.churn import ChurnModel
from fidelite.training.clv import ClvModel
from fidelite.training.config import TrainConfig
from fidelite.training.distributed import model_classes
from fidelite.training.encoding import FeatureEncoder
from fidelite.training.intervals import RatioIntervals, crossfit_interval_coverage
from fidelite.training.metrics import churn_metrics, clv_metrics
from fidelite.training.windows import Scored, Window, check_labels, stack

__all__ = ["FittedModels", "Validation", "fit_baseline", "fit_models", "validation_metrics"]

#: Size of the stored sample of held-out churn probabilities (``churn_percentile``).
_REFERENCE_QUANTILES = np.linspace(0, 1, 1001)


@dataclass(frozen=True)
class Validation:
    """The held-out window: outcomes next to each model's predictions.

    Attributes
    ----------
    cutoff : Timestamp
        The held-out window's cutoff day.
    frame : DataFrame, indexed by customer_id
        ``churned``, ``future_spend`` (outcomes), ``churn_probability``,
        ``predicted_clv`` (the model that chose the tree counts, churn uncalibrated),
        ``baseline_churn_probability``, ``baseline_clv`` (BG/NBD + Gamma-Gamma).
    """

    cutoff: pd.Timestamp
    frame: pd.DataFrame


@dataclass
class FittedModels:
    """What :func:`fit_models` learned.

    Attributes
    ----------
    encoder, churn, clv : fitted estimators, or None for a baseline-only run
    intervals : RatioIntervals or None
        CLV interval table (None without a held-out window).
    churn_reference : ndarray or None
        Quantiles of held-out churn probabilities, for ``churn_percentile``.
    metrics : dict of str -> float
        Validation metrics (model and ``baseline_`` side by side) and fit facts.
    validation : Validation or None
    """

    encoder: FeatureEncoder | None = None
    churn: ChurnModel | None = None
    clv: ClvModel | None = None
    intervals: RatioIntervals | None = None
    churn_reference: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    validation: Validation | None = None

    @property
    def unsupported_features(self) -> list[str]:
        """Columns left out because the scored rows lie beyond the windows' range."""
        return [] if self.encoder is None else list(self.encoder.unsupported_features_)


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()}


def validation_metrics(
    labels: pd.DataFrame, churn_p: np.ndarray, clv_pred: np.ndarray, prefix: str = ""
) -> dict[str, float]:
    """``{prefix}churn_*`` and ``{prefix}clv_*`` metrics of predictions against labels."""
    return {
        **_prefixed(f"{prefix}churn_", churn_metrics(labels["churned"], churn_p)),
        **_prefixed(f"{prefix}clv_", clv_metrics(labels["future_spend"], clv_pred)),
    }


def _metrics(validation: Validation) -> dict[str, float]:
    frame = validation.frame
    return {
        **validation_metrics(frame, frame["churn_probability"], frame["predicted_clv"]),
        **validation_metrics(
            frame, frame["baseline_churn_probability"], frame["baseline_clv"], "baseline_"
        ),
        "clv_interval_coverage_p10_p90": crossfit_interval_coverage(
            frame["predicted_clv"].to_numpy(), frame["future_spend"].to_numpy()
        ),
        "n_validation_rows": float(len(frame)),
    }


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that are not NaN (MLflow and the model keep only those)."""
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def fit_models(windows: Sequence[Window], scored: Scored, config: TrainConfig) -> FittedModels:
    """Fit the encoder, the churn model and the CLV model on backtest windows.

    Parameters
    ----------
    windows : sequence of Window, oldest first
        At least two: the newest is held out (tree counts, calibration, intervals,
        validation metrics), then the models are refitted on all of them.
    scored : Scored
        The purchasers at the as-of day: the rows the shipped models will score. Used
        without labels (point-in-time safe) to leave out columns they lie beyond and
        to keep the CLV trees level-neutral on them.
    config : TrainConfig

    Returns
    -------
    FittedModels
    """
    check_labels(windows[:-1], "training")
    check_labels(windows[-1:], "validation")
    rows = stack(windows)
    encoder = FeatureEncoder().fit(rows.features, reference=scored.features)
    X = encoder.transform(rows.features)
    churn_class, clv_class = model_classes(config.engine)
    churn = churn_class(n_jobs=config.n_jobs).set_params(**config.churn_params)
    churn.fit(X, rows.labels["churned"], window=rows.window)
    clv = clv_class(horizon_days=config.horizon_days, n_jobs=config.n_jobs)
    clv.set_params(**config.clv_params).fit(
        X,
        rows.labels["future_spend"],
        window=rows.window,
        X_target=encoder.transform(scored.features),
        target_window=scored.as_of,
    )
    held_out = windows[-1]
    validation = Validation(
        held_out.cutoff,
        held_out.labels.assign(
            churn_probability=churn.validation_.predicted,
            predicted_clv=clv.validation_.predicted,
            baseline_churn_probability=held_out.features["baseline_churn_probability"],
            baseline_clv=held_out.features["baseline_clv"],
        ),
    )
    p_held = churn.validation_.predicted
    if churn.calibrator_ is not None:
        p_held = churn.calibrator_.predict(p_held)
    metrics = {
        **_metrics(validation),
        **_prefixed("churn_", churn.calibration_),
        "churn_best_iteration": float(churn.best_iteration_),
        "clv_best_iteration": float(clv.best_iteration_),
        "n_train_rows": float(len(X) - len(held_out.labels)),
    }
    return FittedModels(
        encoder=encoder,
        churn=churn,
        clv=clv,
        intervals=clv.intervals_,
        churn_reference=np.quantile(p_held, _REFERENCE_QUANTILES),
        metrics=metrics,
        validation=validation,
    )


def fit_baseline(windows: Sequence[Window]) -> FittedModels:
    """Baseline-only: metrics, intervals and the percentile reference on the newest window.

    With no window (too little history) nothing is learned beyond the baseline itself.
    """
    if not windows:
        return FittedModels()
    held_out = windows[-1]
    validation = Validation(
        held_out.cutoff,
        held_out.labels.assign(
            churn_probability=held_out.features["baseline_churn_probability"],
            predicted_clv=held_out.features["baseline_clv"],
            baseline_churn_probability=held_out.features["baseline_churn_probability"],
            baseline_clv=held_out.features["baseline_clv"],
        ),
    )
    frame = validation.frame
    return FittedModels(
        intervals=RatioIntervals().fit(frame["predicted_clv"], frame["future_spend"]),
        churn_reference=np.quantile(frame["churn_probability"], _REFERENCE_QUANTILES),
        metrics=_metrics(validation),
        validation=validation,
    )
