"""Fitting the models from backtest windows: pure, no MLflow, no display.

:func:`fit_models` is the whole modelling step of a training run::

    windows (every known customer's features at each cutoff, their outcomes) + plan
      -> purchasers: Hurdle (encoder, churn, spend, timing, intervals; baseline-boosted)
      -> prospects:  Hurdle without a baseline (when there are enough of them)
      -> FittedModels (the fitted parts, validation metrics, held-out predictions, notes)

Every model is fitted on the training windows only; the held-out window (never seen by
the shipped models) chooses the tree counts and calibrates the intervals, and is where
the validation metrics are measured. :func:`fit_baseline` is the same step for a
baseline-only run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fidelite.errors import InsufficientHistoryError
from fidelite.training.boosting import Trees
from fidelite.training.config import TrainConfig
from fidelite.training.distributed import model_classes
from fidelite.training.holdout import RowRoles
from fidelite.training.hurdle import Hurdle, fit_hurdle
from fidelite.training.intervals import MixtureIntervals
from fidelite.training.metrics import churn_metrics, clv_metrics, next_purchase_metrics
from fidelite.training.stacked import stacked_rows
from fidelite.training.windows import Scored, Window, WindowPlan
from fidelite.training.worker_rows import WorkerRows, fitting_on

__all__ = [
    "FittedModels",
    "check_labels",
    "finite",
    "fit_baseline",
    "fit_models",
    "validation_metrics",
]

#: Size of the stored sample of held-out churn probabilities (``churn_percentile``).
_REFERENCE_QUANTILES = np.linspace(0, 1, 1001)
#: Fewest prospect rows (and first purchases among them) worth a prospect model.
MIN_PROSPECT_ROWS, MIN_PROSPECT_BUYERS = 200, 20
#: Tree settings of the prospects' models (few rows: small leaves, few of them).
PROSPECT_TREES = Trees(n_estimators=200, num_leaves=7, min_child_samples=20)


@dataclass
class FittedModels:
    """What :func:`fit_models` learned.

    Attributes
    ----------
    purchasers, prospects : Hurdle or None
        The models of customers with a purchase, and of those without one yet (None
        when too few prospects or a baseline-only run).
    intervals : MixtureIntervals or None
        The baseline's intervals (baseline-only runs).
    churn_reference : ndarray or None
        Quantiles of held-out churn probabilities, for ``churn_percentile``.
    metrics : dict of str -> float
        Validation metrics (model and ``baseline_`` side by side) and fit facts.
    validation : DataFrame or None
        The purchasers' held-out rows: outcomes, predictions and the baseline's.
    notes : list of str
        What the run had to give up (logged as warnings and to MLflow).
    """

    purchasers: Hurdle | None = None
    prospects: Hurdle | None = None
    intervals: MixtureIntervals | None = None
    churn_reference: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    validation: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def unsupported_features(self) -> list[str]:
        """Columns left out because the scored rows lie beyond the windows' range."""
        return [] if self.purchasers is None else self.purchasers.encoder.unsupported_features_


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


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that are not NaN (MLflow and the model keep only those)."""
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def check_labels(windows: Sequence[Window], role: str) -> None:
    """Refuse windows whose outcomes cannot train or validate a model, naming them."""
    labels = pd.concat([w.labels for w in windows])
    cutoffs = ", ".join(str(w.cutoff.date()) for w in windows) or "none"
    if labels.empty or labels["churned"].nunique() < 2:
        outcome = (
            "no customers"
            if labels.empty
            else ("every customer churned" if labels["churned"].iat[0] else "no customer churned")
        )
        raise InsufficientHistoryError(
            f"{role} window(s) at {cutoffs}: {outcome} within the horizon, so churn cannot "
            "be learnt or evaluated; check that the transactions cover the label windows, "
            "or use --baseline-only"
        )
    if labels["future_spend"].clip(lower=0).sum() <= 0:
        raise InsufficientHistoryError(
            f"{role} window(s) at {cutoffs}: no positive spend after the cutoff, so CLV "
            "cannot be learnt or evaluated; use --baseline-only"
        )


def _roles(rows: Any, plan: WindowPlan, seed: int) -> RowRoles:
    return RowRoles.assign(
        rows.window,
        rows.features.index.to_numpy(dtype=object),
        train_cutoffs=plan.train,
        holdout_cutoff=plan.holdout,
        level_cutoffs=plan.level,
        mode=plan.mode,
        seed=seed,
    )


def _params(config: TrainConfig, with_baseline: bool) -> dict[str, dict[str, Any]]:
    # Prospects are few: smaller leaves than the purchasers' defaults.
    common: dict[str, Any] = {"n_jobs": config.n_jobs}
    if not with_baseline:
        common["trees"] = PROSPECT_TREES
    return {
        "churn": {**common, "boost_from_baseline": with_baseline, **config.churn_params},
        "spend": {**common, "start_from_baseline": with_baseline, **config.spend_params},
        "timing": {**common, "horizon_days": config.horizon_days, **config.timing_params},
    }


def _purchaser_metrics(held: pd.DataFrame, hurdle: Hurdle, horizon: int) -> dict[str, float]:
    return {
        **validation_metrics(held, held["churn_probability"], held["predicted_clv"]),
        **validation_metrics(
            held, held["baseline_churn_probability"], held["baseline_clv"], "baseline_"
        ),
        **_prefixed("next_purchase_", next_purchase_metrics(held, horizon)),
        "clv_interval_coverage_p10_p90": hurdle.intervals.crossfit_coverage_,
        "clv_interval_tail": hurdle.intervals.tail_,
        "churn_best_iteration": float(hurdle.churn.best_iteration_),
        "spend_best_iteration": float(hurdle.spend.best_iteration_),
        "timing_best_iteration": float(hurdle.timing.best_iteration_),
        "n_validation_rows": float(len(held)),
    }


def _level_notes(
    hurdle: Hurdle, as_of: pd.Timestamp, horizon_days: int, notes: list[str]
) -> dict[str, float]:
    """Where the scored window's levels come from and how the rule did on the known
    windows (``training.levels``); a note when not from its season, untested or off."""
    out = {}
    for name, model in (("churn", hurdle.churn), ("spend", hurdle.spend)):
        choice = model.level_for(as_of)
        out[f"{name}_level_comparable"] = float(choice.comparable)
        out[f"{name}_level_distance_days"] = choice.distance_days
        out[f"{name}_level_offset"] = choice.offset
        out[f"{name}_level_source_days_before"] = float((as_of - choice.source).days)
        if not choice.comparable:
            notes.append(
                f"{name} level for {as_of.date()}: no comparable (same-season) window; the "
                f"window nearest in time of year ({choice.source.date()}, "
                f"{choice.distance_days:.0f} days from this season) is used"
            )
        backtest = model.levels_.backtest(as_of, horizon_days)
        out.update(backtest.metrics(name))
        note = backtest.note(name, as_of)
        if note is not None:
            notes.append(note)
    return out


def _tree_rows(hurdle: Hurdle, n_train: int, prefix: str = "") -> dict[str, float]:
    """Rows the churn and spend trees saw: every customer's on worker rows, else the
    training rows here (the spend model's are its buyers: logged when known)."""
    out = {f"{prefix}churn_tree_rows": float(getattr(hurdle.churn, "tree_rows_", n_train))}
    if hasattr(hurdle.spend, "tree_rows_"):
        out[f"{prefix}spend_tree_rows"] = float(hurdle.spend.tree_rows_)
    return out


def _fit_prospects(
    windows: Sequence[Window],
    scored: Scored,
    config: TrainConfig,
    plan: WindowPlan,
    notes: list[str],
    worker_rows: WorkerRows | None = None,
) -> tuple[Hurdle | None, dict[str, float]]:
    rows = stacked_rows(windows, prospects=True)
    roles = _roles(rows, plan, seed=1)
    train_buyers = int((rows.labels["churned"].to_numpy()[roles.train] == 0).sum())
    held_labels = rows.labels["churned"].to_numpy()[roles.held]
    if (
        roles.train.sum() < MIN_PROSPECT_ROWS
        or train_buyers < MIN_PROSPECT_BUYERS
        or len(set(held_labels)) < 2
    ):
        notes.append(
            f"no prospect model: {int(roles.train.sum())} prospect rows with {train_buyers} first "
            "purchases in the training windows (customers without a purchase keep the status "
            "insufficient_history)"
        )
        return None, {}
    classes = model_classes(config.engine)
    params = _params(config, False)
    with fitting_on(worker_rows):
        hurdle, held = fit_hurdle(rows, roles, scored.prospects, classes, params, scored.as_of)
    metrics = {
        **_prefixed("prospect_churn_", churn_metrics(held["churned"], held["churn_probability"])),
        "prospect_n_validation_rows": float(len(held)),
        **_tree_rows(hurdle, int(roles.train.sum()), "prospect_"),
    }
    return hurdle, metrics


def fit_models(
    windows: Sequence[Window],
    scored: Scored,
    config: TrainConfig,
    plan: WindowPlan,
    worker_rows: WorkerRows | None = None,
) -> FittedModels:
    """Fit every model on backtest windows.

    Parameters
    ----------
    windows : sequence of Window, oldest first
        Every window of ``plan`` (training, held-out and level-only); a
        :class:`~fidelite.training.stacked.StackedWindows` is used without a copy.
    scored : Scored
        The customers at the as-of day: the rows the shipped models will score. Used
        without labels (point-in-time safe) to leave out columns they lie beyond.
    config : TrainConfig
    plan : WindowPlan
        What each window is for (``training.windows.plan_windows``).
    worker_rows : WorkerRows, optional
        ``windows`` hold a customer sample (a Dask run over its client budget): the churn
        and spend trees are fitted on every customer's rows on the workers instead
        (:mod:`~fidelite.training.worker_rows`); the rest is fitted on the sample.

    Returns
    -------
    FittedModels
    """
    by_cutoff = {w.cutoff: w for w in windows}
    check_labels([by_cutoff[c] for c in plan.train], "training")
    check_labels([by_cutoff[plan.holdout]], "validation")
    notes = list(plan.notes)
    rows = stacked_rows(windows)
    roles = _roles(rows, plan, seed=0)
    classes = model_classes(config.engine)
    params = _params(config, True)
    # The workers' frames are kept through the prospects' fit: built once for both.
    with fitting_on(None if worker_rows is None else worker_rows.population(True)):
        hurdle, held = fit_hurdle(rows, roles, scored.features, classes, params, scored.as_of)
    extra = [
        "baseline_churn_probability",
        "baseline_clv",
        "ipt_mean_days",
        "days_since_last_purchase",
    ]
    present = rows.features.loc[roles.held].reindex(columns=extra)
    held = held.assign(**{col: present[col].to_numpy(dtype=float) for col in extra})
    metrics = {
        **_purchaser_metrics(held, hurdle, config.horizon_days),
        **_level_notes(hurdle, scored.as_of, config.horizon_days, notes),
        "n_train_rows": float(roles.train.sum()),
        **_tree_rows(hurdle, int(roles.train.sum())),
    }
    prospect_rows = None if worker_rows is None else worker_rows.population(False)
    prospects, prospect_metrics = _fit_prospects(
        windows, scored, config, plan, notes, prospect_rows
    )
    return FittedModels(
        purchasers=hurdle,
        prospects=prospects,
        churn_reference=np.quantile(held["churn_probability"], _REFERENCE_QUANTILES),
        metrics={**metrics, **prospect_metrics},
        validation=held,
        notes=notes,
    )


def fit_baseline(windows: Sequence[Window], plan: WindowPlan) -> FittedModels:
    """Baseline-only: metrics, intervals and the percentile reference on the held-out window.

    With no window (too little history) nothing is learned beyond the baseline itself.
    """
    if plan.holdout is None:
        return FittedModels(notes=["no labelled window: the baseline has no validation"])
    window = {w.cutoff: w for w in windows}[plan.holdout]
    p_none = window.features["baseline_churn_probability"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        spend = window.features["baseline_clv"].to_numpy() / (1.0 - p_none)
    spend = np.nan_to_num(spend, nan=0.0, posinf=0.0)
    held = window.labels.assign(
        churn_probability=p_none,
        predicted_clv=window.features["baseline_clv"].to_numpy(),
        baseline_churn_probability=p_none,
        baseline_clv=window.features["baseline_clv"].to_numpy(),
    )
    intervals = None
    if (held["future_spend"] > 0).sum() >= MIN_PROSPECT_BUYERS:
        intervals = MixtureIntervals().fit(p_none, np.maximum(spend, 1e-9), held["future_spend"])
    metrics = {
        **validation_metrics(held, p_none, held["predicted_clv"]),
        **validation_metrics(held, p_none, held["predicted_clv"], "baseline_"),
        "clv_interval_coverage_p10_p90": np.nan
        if intervals is None
        else intervals.crossfit_coverage_,
        "n_validation_rows": float(len(held)),
    }
    return FittedModels(
        intervals=intervals,
        churn_reference=np.quantile(p_none, _REFERENCE_QUANTILES),
        metrics=metrics,
        validation=held,
    )
