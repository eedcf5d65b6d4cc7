"""Training and scoring on a Dask cluster, through the single-machine pipeline.

``fidelite.training.train.train(inputs, TrainConfig(engine="dask"))`` runs the very same
pipeline (labels, backtest cutoffs, baseline, evaluation, MLflow logging); only two
things change, both provided here:

* **features** come from :mod:`fidelite.features.distributed` (the inputs are
  co-partitioned by customer once, then every backtest cutoff is a cheap map over the
  partitions);
* **LightGBM** fits run across the workers with ``lightgbm.DaskLGBMClassifier`` /
  ``DaskLGBMRegressor`` using the hyper-parameters of the single-machine estimator, and
  are converted back with ``.to_local()``. The logged ``FideliteModel`` is thus the same
  object either way and loads and scores without any cluster.

LightGBM cannot early-stop on Dask. Below the client budget (every row on the client,
scattered to the workers for the fit) the held-out fit therefore grows all
``n_estimators`` trees and the tree count is chosen afterwards as the minimum of the
held-out loss curve (evaluated locally, tree by tree): early stopping with unlimited
patience.

Over the client budget (:mod:`fidelite.training.worker_rows` switched on) the churn and
spend trees are fitted on **every** customer's training rows where they live on the
workers. The tree count is then the early-stopping optimum of an in-process fit on the
client's customer sample (same rows, levels and held-out window as the single-machine
fit of that sample); the Dask fit grows exactly that many trees. With more rows the
optimum usually lies a little further, so the count is on the conservative side. Levels,
held-out predictions and intervals are then computed on the sample with the all-rows
trees. The hazard model (timing) fits a sample of at most ``max_rows`` customer-bin rows
by design, so it stays on the client's rows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import log_loss, mean_gamma_deviance

from fidelite.training.boosting import BoostedModel, EarlyStoppingSet
from fidelite.training.churn import ChurnModel
from fidelite.training.encoding import Matrix
from fidelite.training.holdout import LEVEL, TRAIN, RowRoles, window_array
from fidelite.training.levels import WindowLevels
from fidelite.training.spend import SpendModel
from fidelite.training.timing import TimingModel
from fidelite.training.worker_rows import INIT_SCORE, TARGET, WorkerRows, current_worker_rows

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "DaskChurnModel",
    "DaskSpendModel",
    "DaskTimingModel",
    "model_classes",
    "score_dask",
]

_TARGET, _INIT_SCORE = TARGET, INIT_SCORE

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- engine switch
def model_classes(engine: str) -> dict[str, type]:
    """Estimator classes (``churn``, ``spend``, ``timing``) for ``engine`` ("pandas"/"dask")."""
    if engine == "dask":
        return {"churn": DaskChurnModel, "spend": DaskSpendModel, "timing": DaskTimingModel}
    return {"churn": ChurnModel, "spend": SpendModel, "timing": TimingModel}


# --------------------------------------------------------------------------- LightGBM on Dask
def _current_client() -> Client:
    from distributed import get_client

    try:
        return get_client()
    except ValueError as exc:
        raise RuntimeError(
            "engine 'dask' needs a running Dask client: use features.distributed.dask_client() "
            "(or `fidelite train --engine dask --scheduler ADDRESS`)"
        ) from exc


def _spread_over_workers(client: Client, frame: pd.DataFrame) -> Any:
    """A dask DataFrame with one contiguous block of ``frame`` on each worker.

    LightGBM only trains on workers that hold data and every worker must receive
    rows, so placement is explicit rather than left to the scheduler.
    """
    import dask.dataframe as dd

    workers = sorted(client.scheduler_info()["workers"])
    blocks = np.array_split(np.arange(len(frame)), min(len(workers), max(len(frame), 1)))
    futures = [
        client.scatter(frame.iloc[block], workers=[worker])
        for block, worker in zip(blocks, workers, strict=False)
    ]
    return dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False)


def _fit_watched(client: Client, model: lgb.LGBMModel, X: Any, data: Any, what: str) -> None:
    """``model.fit`` on dask collections; a worker dying meanwhile fails fast instead of
    leaving LightGBM's pinned tasks waiting for it (``features.cluster``)."""
    from fidelite.features.cluster import run_watching_workers

    def fit() -> None:
        with warnings.catch_warnings():
            # Each worker trains with its own thread count; LightGBM says so for n_jobs.
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            model.fit(X, data[_TARGET], init_score=data[_INIT_SCORE])

    run_watching_workers(client, fit, what=f"LightGBM: {what}")


def _held_out_losses(
    estimator: lgb.LGBMModel,
    X: Matrix,
    init_score: np.ndarray,
    y: np.ndarray,
    loss: Callable[[np.ndarray, np.ndarray], float],
) -> list[float]:
    """``loss(y, raw score after k trees)`` for k = 1..n_trees: one tree per predict call.

    The raw score is accumulated in place, so memory stays one vector of the held-out
    rows (the staged matrix, n_trees x n_rows, was 1.8 GB for 300 trees and 750k rows).
    """
    booster = estimator.booster_
    if isinstance(X, pd.DataFrame):
        # Converted once, as ``Booster.predict`` converts a frame (categoricals to their
        # training codes): 300 conversions of 650k rows took minutes at 5M customers.
        from lightgbm.basic import _data_from_pandas

        X = _data_from_pandas(X, "auto", "auto", booster.pandas_categorical)[0]
    raw = np.asarray(init_score, dtype=float).copy()
    losses = []
    for i in range(booster.num_trees()):
        raw += booster.predict(X, raw_score=True, start_iteration=i, num_iteration=1)
        losses.append(loss(y, raw))
    return losses


def fit_lightgbm_on_dask(
    estimator: lgb.LGBMModel,
    X: Matrix,
    y: np.ndarray,
    init_score: np.ndarray,
    validation: EarlyStoppingSet | None,
    validation_loss: Callable[[np.ndarray, np.ndarray], float],
) -> tuple[lgb.LGBMModel, int | None]:
    """Fit a copy of ``estimator`` on the Dask cluster; return it as a local estimator.

    Parameters
    ----------
    estimator : LGBMClassifier or LGBMRegressor
        Unfitted; its ``get_params()`` configure the Dask estimator.
    X : DataFrame or ndarray, shape (n, n_features)
    y, init_score : ndarray, shape (n,)
        Targets and starting raw scores.
    validation : (X_val, y_val, init_score_val), optional
        Held-out rows that choose the tree count.
    validation_loss : callable
        ``loss(y_val, raw_score_val)``; lower is better.

    Returns
    -------
    local : LGBMClassifier or LGBMRegressor
        ``DaskLGBM*.to_local()``: the fitted model, usable without a cluster.
    best_iteration : int or None
        Tree count minimising ``validation_loss`` (None without a validation set).
    """
    client = _current_client()
    model = _dask_estimator(estimator, client)
    if not isinstance(X, pd.DataFrame):  # the hazard model's customer-bin rows are numpy
        X = pd.DataFrame(np.asarray(X), columns=[f"x{i}" for i in range(np.shape(X)[1])])
    frame = X.assign(**{_TARGET: np.asarray(y), _INIT_SCORE: np.asarray(init_score, float)})
    data = _spread_over_workers(client, frame).persist()
    _fit_watched(client, model, data[list(X.columns)], data, f"{type(estimator).__name__} fit")
    local = model.to_local()
    if validation is None:
        return local, None
    X_val, y_val, init_val = validation
    losses = _held_out_losses(local, X_val, init_val, np.asarray(y_val), validation_loss)
    return local, int(np.argmin(losses)) + 1


def _dask_estimator(estimator: lgb.LGBMModel, client: Client, **params: Any) -> lgb.LGBMModel:
    dask_class = (
        lgb.DaskLGBMClassifier
        if isinstance(estimator, lgb.LGBMClassifier)
        else lgb.DaskLGBMRegressor
    )
    return dask_class(client=client, **{**estimator.get_params(), **params})


def fit_on_worker_rows(
    model: BoostedModel,
    rows: WorkerRows,
    estimator: lgb.LGBMModel,
    sample: tuple[pd.DataFrame, np.ndarray, np.ndarray],
    validation: EarlyStoppingSet | None,
    start_levels: WindowLevels,
) -> tuple[lgb.LGBMModel, int]:
    """Trees on every training row on the workers, as many as the sample's optimum.

    Parameters
    ----------
    model : ChurnModel or SpendModel (Dask)
        The model being fitted (its ``_start``, tree settings and target).
    rows : WorkerRows
    estimator : LGBMClassifier or LGBMRegressor
        Unfitted; its parameters configure both fits.
    sample : (X, y, init_score)
        The client's training rows (a customer sample), shape (n, n_features) / (n,).
    validation : (X_val, y_val, init_score_val), optional
        The sample's held-out rows: the in-process fit early-stops on them.
    start_levels : WindowLevels
        Each training window's level from the start score alone (what a row starts from
        is its baseline score plus that level).

    Returns
    -------
    local : LGBMClassifier or LGBMRegressor
        ``DaskLGBM*.to_local()`` of the all-rows fit.
    n_trees : int
    """
    X, y, init_score = sample
    # The tree count: the single-machine protocol (early stopping) on the sample.
    _, best = BoostedModel._fit_booster(model, clone(estimator), X, y, init_score, validation)
    n_trees = int(best or estimator.n_estimators)
    fresh = type(model)(**model.get_params())
    data, n_rows = rows.training_data(X.iloc[:0], fresh, start_levels, model._all_rows_target)
    dask_model = _dask_estimator(estimator, rows.client, n_estimators=n_trees)
    what = f"{type(model).__name__} on {n_rows:,} rows"
    _fit_watched(rows.client, dask_model, data[list(X.columns)], data, what)
    del data
    model.tree_rows_ = n_rows
    model.sample_tree_rows_ = len(y)
    logger.info(
        "%s: %d trees fitted on %s rows on the workers (tree count early-stopped on %s "
        "sample rows)",
        type(model).__name__,
        n_trees,
        f"{n_rows:,}",
        f"{len(y):,}",
    )
    return dask_model.to_local(), n_trees


class _FitOnDask:
    """Mixin: the boosted model's one fitting seam, sent to the Dask cluster.

    The estimator ends up a plain LightGBM model, so a pickled model needs no cluster to
    predict. Subclasses give ``_validation_loss(y, raw_score)`` and the target the
    workers' rows train on (``_all_rows_target``, :mod:`~fidelite.training.worker_rows`).

    Attributes
    ----------
    tree_rows_ : int
        Rows the trees were fitted on (every customer's with worker rows switched on).
    sample_tree_rows_ : int
        The client's rows the tree count was chosen on (worker rows only).
    """

    _all_rows_target = "churned"

    def _validation_loss(self, y: np.ndarray, raw: np.ndarray) -> float:
        raise NotImplementedError

    def _fit_windows(
        self, X: Matrix, y: np.ndarray, window: object, roles: RowRoles | None
    ) -> None:
        """``BoostedModel._fit_windows``; with worker rows on (time hold-out, frame ``X``),
        the levels of the start score are kept for the workers' starting scores."""
        rows = current_worker_rows()
        timed = roles is not None and roles.mode == "time"
        if rows is not None and timed and isinstance(X, pd.DataFrame):
            cutoffs = window_array(window, len(y))
            start = self._start(X)
            levels = self._levels(start, y, cutoffs, roles.role == LEVEL, roles.role == TRAIN)
            self.__dict__["_start_levels"] = levels
        try:
            super()._fit_windows(X, y, window, roles)
        finally:
            self.__dict__.pop("_start_levels", None)

    def _fit_booster(
        self,
        estimator: lgb.LGBMModel,
        X: Matrix,
        y: np.ndarray,
        init_score: np.ndarray,
        validation: EarlyStoppingSet | None = None,
    ) -> tuple[lgb.LGBMModel, int | None]:
        rows, levels = current_worker_rows(), self.__dict__.get("_start_levels")
        if rows is not None and levels is not None:
            sample = (X, y, init_score)
            return fit_on_worker_rows(self, rows, estimator, sample, validation, levels)
        self.tree_rows_ = len(y)
        return fit_lightgbm_on_dask(estimator, X, y, init_score, validation, self._validation_loss)


class DaskChurnModel(_FitOnDask, ChurnModel):
    """:class:`~fidelite.training.churn.ChurnModel` whose LightGBM fits run on Dask.

    Same parameters and fitted attributes; the held-out loss is the binary log-loss.
    """

    def _validation_loss(self, y: np.ndarray, raw: np.ndarray) -> float:
        return float(log_loss(y, 1.0 / (1.0 + np.exp(-raw)), labels=[0, 1]))


class DaskSpendModel(_FitOnDask, SpendModel):
    """:class:`~fidelite.training.spend.SpendModel` whose LightGBM fits run on Dask.

    The held-out loss is the gamma deviance (what LightGBM's ``gamma`` objective fits);
    on worker rows it trains on the buyers' spend.
    """

    _all_rows_target = "future_spend"

    def _validation_loss(self, y: np.ndarray, raw: np.ndarray) -> float:
        return float(mean_gamma_deviance(y, np.exp(raw)))


class DaskTimingModel(_FitOnDask, TimingModel):
    """:class:`~fidelite.training.timing.TimingModel` whose LightGBM fits run on Dask."""

    def _validation_loss(self, y: np.ndarray, raw: np.ndarray) -> float:
        return float(log_loss(y, 1.0 / (1.0 + np.exp(-raw)), labels=[0, 1]))


# --------------------------------------------------------------------------- scoring
def score_dask(
    transactions: Any,
    events: Any = None,
    customers: Any = None,
    *,
    as_of: pd.Timestamp,
    model_uri: str,
    tracking_uri: str | None = None,
    npartitions: int | None = None,
    consent_history: Any = None,
) -> pd.DataFrame:
    """``training.score.score`` with features and predictions computed on the workers.

    Parameters
    ----------
    transactions, events, customers : DataFrame, dask DataFrame or path/URL
        Inputs as for :func:`fidelite.features.distributed.build_features_dask` (read
        on the workers, so they are not loaded here).
    as_of : Timestamp
        Scoring day ``D`` (``fidelite.features.days.parse_day``).
    model_uri, tracking_uri : str
        As for ``training.score.score``.
    npartitions : int, optional
    consent_history : path or DataFrame, optional
        Consent changes, read on the client (``fidelite.features.consent``).

    Returns
    -------
    DataFrame
        The scores frame, one row per customer, sorted by ``customer_id`` like the
        single-machine scores.
    """
    import dask

    from fidelite.features.distributed import build_features_dask
    from fidelite.training.registry import load_model

    model = load_model(model_uri, tracking_uri=tracking_uri)
    features = build_features_dask(
        transactions,
        events,
        customers,
        as_of=as_of,
        npartitions=npartitions,
        consent_history=consent_history,
        params=model.feature_params,
    )
    shared_model = dask.delayed(model, pure=True)
    params = {"as_of": str(as_of.date())}
    parts = [
        dask.delayed(_predict_partition)(shared_model, part, params)
        for part in features.to_delayed()
    ]
    # Buckets without customers score to empty frames; concat only the others.
    scores = pd.concat([s for s in dask.compute(*parts) if len(s)], ignore_index=True)
    return scores.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _predict_partition(model: Any, features: pd.DataFrame, params: dict[str, str]) -> pd.DataFrame:
    return model.predict(None, features, params=params) if len(features) else pd.DataFrame()
