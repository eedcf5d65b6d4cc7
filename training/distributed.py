"""Training and scoring on a Dask cluster, through the single-machine pipeline.

``training.train.train(..., config=TrainConfig(engine="dask"))`` runs the very same
pipeline (labels, backtest cutoffs, baseline, evaluation, MLflow logging); only two
things change, both provided here:

* **features** come from :mod:`features.distributed` (the inputs are co-partitioned
  by customer once, then every backtest cutoff is a cheap map over the partitions);
* **LightGBM** fits run across the workers with ``lightgbm.DaskLGBMClassifier`` /
  ``DaskLGBMRegressor`` using the hyper-parameters of the single-machine estimator,
  and are converted back with ``.to_local()``. The logged ``FideliteModel`` is thus
  the same object either way and loads and scores without any cluster.

LightGBM cannot early-stop on Dask. The validation fit therefore grows all
``n_estimators`` trees and the tree count is chosen afterwards as the minimum of the
validation loss curve (evaluated locally, tree by tree): early stopping with
unlimited patience. The final refit uses that fixed count, as on one machine.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, mean_tweedie_deviance

from fidelite.features.data import as_of_bounds
from fidelite.features.inputs import Inputs
from fidelite.training.churn import ChurnModel
from fidelite.training.clv import ClvModel

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "ENGINES",
    "DaskChurnModel",
    "DaskClvModel",
    "DaskFeatureBuilder",
    "feature_builder",
    "model_classes",
    "score_dask",
]

ENGINES = ("pandas", "dask")
_TARGET = "__target__"
_INIT_SCORE = "__init_score__"

FeatureBuilder = Callable[[Any], pd.DataFrame]


# --------------------------------------------------------------------------- engine switch
def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def model_classes(engine: str) -> tuple[type[ChurnModel], type[ClvModel]]:
    """Churn and CLV estimator classes for ``engine`` ("pandas" or "dask")."""
    _check_engine(engine)
    return (DaskChurnModel, DaskClvModel) if engine == "dask" else (ChurnModel, ClvModel)


def feature_builder(
    engine: str, inputs: Inputs, *, npartitions: int | None = None
) -> FeatureBuilder:
    """``build(cutoff) -> features`` for every cutoff up to ``inputs.as_of`` on one engine.

    Parameters
    ----------
    engine : {"pandas", "dask"}
    inputs : Inputs
        Loaded inputs (as returned by ``training.train.load_inputs``); their as-of day
        is the latest cutoff that will be asked for.
    npartitions : int, optional
        Customer buckets on Dask (default: 2 per worker thread).

    Returns
    -------
    callable
        ``build(cutoff)`` returns ``build_features(...)``'s frame for that cutoff.
    """
    _check_engine(engine)
    if engine == "dask":
        _current_client()  # fail before any work when no cluster is connected
        return DaskFeatureBuilder(
            inputs.transactions,
            inputs.events,
            inputs.customers,
            as_of=inputs.as_of,
            npartitions=npartitions,
        )
    from fidelite.features import build_features

    def build(cutoff: Any) -> pd.DataFrame:
        return build_features(inputs, as_of=cutoff)

    return build


class DaskFeatureBuilder:
    """Co-partitions the inputs once (persisted on the cluster), then builds any cutoff.

    Parameters
    ----------
    transactions, events, customers : DataFrame, dask DataFrame, path/URL or None
    as_of : date-like
        Latest cutoff; later rows are dropped before the shuffle.
    npartitions : int, optional
    """

    def __init__(
        self,
        transactions: Any,
        events: Any = None,
        customers: Any = None,
        *,
        as_of: Any,
        npartitions: int | None = None,
    ) -> None:
        from fidelite.features.distributed import partition_by_customer

        self.partitions_ = partition_by_customer(
            transactions, events, customers, as_of=as_of, npartitions=npartitions
        ).persist()

    def __call__(self, cutoff: Any) -> pd.DataFrame:
        """Features as of ``cutoff``, sorted by customer like ``build_features``."""
        from fidelite.features.distributed import compute_features, features_from_partitions

        return compute_features(features_from_partitions(self.partitions_, as_of=cutoff))


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


def _validation_set(fit_kwargs: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The (X_val, y_val) pair of ``eval_set`` or ``eval_X``/``eval_y`` keyword arguments."""
    if fit_kwargs.get("eval_set"):
        X_val, y_val = fit_kwargs["eval_set"][0]
        return X_val, np.asarray(y_val)
    if fit_kwargs.get("eval_X") is not None:
        return fit_kwargs["eval_X"][0], np.asarray(fit_kwargs["eval_y"][0])
    return None


def _staged_raw_scores(booster: lgb.LGBMModel, X: pd.DataFrame) -> np.ndarray:
    """Raw score after each tree, shape (n_trees, n_rows): one tree per predict call."""
    n_trees = booster.booster_.num_trees()
    steps = [
        booster.predict(X, raw_score=True, start_iteration=i, num_iteration=1)
        for i in range(n_trees)
    ]
    return np.cumsum(np.vstack(steps), axis=0)


def fit_lightgbm_on_dask(
    estimator: lgb.LGBMModel,
    X: pd.DataFrame,
    y: np.ndarray,
    validation_loss: Callable[[np.ndarray, np.ndarray], float],
    **fit_kwargs: Any,
) -> tuple[lgb.LGBMModel, int | None]:
    """Fit a copy of ``estimator`` on the Dask cluster; return it as a local estimator.

    Parameters
    ----------
    estimator : LGBMClassifier or LGBMRegressor
        Unfitted; its ``get_params()`` configure the Dask estimator.
    X : DataFrame, shape (n, n_features)
    y : ndarray, shape (n,)
    validation_loss : callable
        ``loss(y_val, raw_score_val)``; lower is better.
    **fit_kwargs
        What ``LGBMModel.fit`` would get: ``init_score``, a validation set
        (``eval_set`` or ``eval_X``/``eval_y``) with ``eval_init_score``, and
        ``callbacks`` (early stopping, dropped: unsupported on Dask).

    Returns
    -------
    local : LGBMClassifier or LGBMRegressor
        ``DaskLGBM*.to_local()``: the fitted model, usable without a cluster.
    best_iteration : int or None
        Tree count minimising ``validation_loss`` (None without a validation set).
    """
    client = _current_client()
    known = {"init_score", "eval_set", "eval_X", "eval_y", "eval_init_score", "callbacks"}
    if unknown := set(fit_kwargs) - known:
        raise TypeError(f"fit_lightgbm_on_dask: unsupported fit arguments {sorted(unknown)}")
    dask_class = (
        lgb.DaskLGBMClassifier
        if isinstance(estimator, lgb.LGBMClassifier)
        else lgb.DaskLGBMRegressor
    )
    model = dask_class(client=client, **estimator.get_params())

    frame = X.assign(**{_TARGET: np.asarray(y)})
    init_score = fit_kwargs.get("init_score")
    if init_score is not None:
        frame[_INIT_SCORE] = np.broadcast_to(np.asarray(init_score, dtype=float), len(X))
    data = _spread_over_workers(client, frame).persist()
    with warnings.catch_warnings():
        # Each worker trains with its own thread count; LightGBM says so for n_jobs.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(
            data[list(X.columns)],
            data[_TARGET],
            init_score=data[_INIT_SCORE] if init_score is not None else None,
        )
    local = model.to_local()

    validation = _validation_set(fit_kwargs)
    if validation is None:
        return local, None
    X_val, y_val = validation
    raw = _staged_raw_scores(local, X_val)
    if fit_kwargs.get("eval_init_score") is not None:
        raw = raw + np.asarray(fit_kwargs["eval_init_score"][0], dtype=float)
    losses = [validation_loss(y_val, step) for step in raw]
    return local, int(np.argmin(losses)) + 1


def _binary_log_loss(y: np.ndarray, raw: np.ndarray) -> float:
    return float(log_loss(y, 1.0 / (1.0 + np.exp(-raw)), labels=[0, 1]))


class DaskChurnModel(ChurnModel):
    """:class:`training.churn.ChurnModel` whose LightGBM fit runs on the Dask cluster.

    Same parameters and fitted attributes; ``fit`` uses the current Dask client
    (``distributed.get_client()``) and ``booster_`` ends up a plain
    ``LGBMClassifier``, so a pickled model needs no cluster to predict.
    """

    def _fit_booster(self, X: pd.DataFrame, y: np.ndarray, **fit_kwargs: Any) -> int | None:
        self.booster_, best = fit_lightgbm_on_dask(
            self.booster_, X, y, _binary_log_loss, **fit_kwargs
        )
        return best


class DaskClvModel(ClvModel):
    """:class:`training.clv.ClvModel` whose LightGBM fit runs on the Dask cluster.

    See :class:`DaskChurnModel`; the validation loss is the Tweedie deviance with
    the model's ``tweedie_variance_power`` (what LightGBM's ``tweedie`` metric
    ranks by).
    """

    def _tweedie_loss(self, y: np.ndarray, raw: np.ndarray) -> float:
        return float(mean_tweedie_deviance(y, np.exp(raw), power=self.tweedie_variance_power))

    def _fit_booster(self, X: pd.DataFrame, y: np.ndarray, **fit_kwargs: Any) -> int | None:
        self.booster_, best = fit_lightgbm_on_dask(
            self.booster_, X, y, self._tweedie_loss, **fit_kwargs
        )
        return best


# --------------------------------------------------------------------------- scoring
def score_dask(
    transactions: Any,
    events: Any = None,
    customers: Any = None,
    *,
    as_of: Any,
    model_uri: str,
    tracking_uri: str | None = None,
    npartitions: int | None = None,
) -> pd.DataFrame:
    """``training.score.score`` with features and predictions computed on the workers.

    Parameters
    ----------
    transactions, events, customers : DataFrame, dask DataFrame or path/URL
        Inputs as for :func:`features.distributed.build_features_dask`.
    as_of : date-like
    model_uri, tracking_uri : str
        As for ``training.score.score``.
    npartitions : int, optional

    Returns
    -------
    DataFrame
        The scores frame of ARCHITECTURE.md, one row per customer, sorted by
        ``customer_id`` like the single-machine scores.
    """
    import dask

    from fidelite.features.distributed import build_features_dask
    from fidelite.training.score import load_model

    day, _ = as_of_bounds(as_of)
    model = load_model(model_uri, tracking_uri=tracking_uri)
    features = build_features_dask(
        transactions, events, customers, as_of=day, npartitions=npartitions
    )
    shared_model = dask.delayed(model, pure=True)
    params = {"as_of": str(day.date())}
    parts = [
        dask.delayed(_predict_partition)(shared_model, part, params)
        for part in features.to_delayed()
    ]
    # Buckets without customers score to empty frames; concat only the others.
    scores = pd.concat([s for s in dask.compute(*parts) if len(s)], ignore_index=True)
    return scores.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _predict_partition(model: Any, features: pd.DataFrame, params: dict[str, str]) -> pd.DataFrame:
    return model.predict(None, features, params=params) if len(features) else pd.DataFrame()
