"""The frame-free scoring path behind :meth:`FideliteModel.predict_arrays`.

``predict`` takes a features frame; for the HTTP service, where most requests carry one
customer, building and indexing frames costs far more than the models themselves. This
path goes from column arrays to the numpy model matrix
(:meth:`~fidelite.training.encoding.FeatureEncoder.transform_columns`), through the same
baseline formulas (:meth:`~fidelite.training.baseline.BaselineModel.predict_arrays`),
boosters, intervals, timing and reasons as ``predict``, to the score columns
(:func:`~fidelite.training.scoreframe.score_arrays`), so both give the same answers (the
tests compare them). The optional uplift component's columns come from its own array
path (:meth:`~fidelite.training.uplift.model.UpliftModel.score_arrays`).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features.days import parse_day
from fidelite.training import booster_outputs, forest
from fidelite.training.baseline.model import RFM_COLUMNS
from fidelite.training.reasons import compile_top_reasons, top_reasons_json
from fidelite.training.scoreframe import (
    CORE_COLUMNS,
    NO_HISTORY_REASON,
    PASSTHROUGH_COLUMNS,
    STATUS_NO_HISTORY,
    STATUS_OK,
    STATUS_PROSPECT,
    json_lists,
    score_arrays,
)
from fidelite.training.threads import LazyPool

if TYPE_CHECKING:
    from fidelite.training.model import FideliteModel

__all__ = ["feature_columns", "load_context", "predict_arrays", "warm_up"]

Columns = dict[str, np.ndarray]
#: Score columns and the reasons as JSON text (shape (n,) object), or None without them.
Scored = tuple[dict[str, np.ndarray], np.ndarray | None]


def feature_columns(
    columns: Mapping[str, Any], required: tuple[str, ...]
) -> tuple[np.ndarray, Columns, int]:
    """Customer ids (str), the feature columns as arrays, and the row count.

    The array counterpart of :func:`fidelite.training.model.as_features_frame`: the
    ``required`` columns must be present and numeric (non-numeric arrays are parsed, an
    unparsable value is an error), ``customer_id`` (default: row positions) becomes text.
    """
    arrays = {str(name): np.asarray(values) for name, values in columns.items()}
    raw_ids = arrays.pop("customer_id", None)
    lengths = {len(values) for values in arrays.values()}
    if raw_ids is not None:
        lengths.add(len(raw_ids))
    if len(lengths) > 1:
        raise DataContractError(f"model input: columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    ids = np.arange(n) if raw_ids is None else raw_ids
    if ids.dtype != object or not set(map(type, ids.tolist())) <= {str}:
        ids = np.asarray([str(v) for v in ids.tolist()], dtype=object)
    missing = [col for col in required if col not in arrays]
    if missing:
        raise DataContractError(
            f"model input: missing required feature column(s) {missing}; pass the output of "
            f"features.build_features (columns seen: {list(arrays)[:10]}...)"
        )
    for col in required:
        values = arrays[col]
        if values.dtype.kind in "biuf":
            continue
        parsed = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        bad = np.flatnonzero(np.isnan(parsed) & ~pd.isna(values))
        if len(bad):
            sample = {ids[i]: {col: values[i]} for i in bad[:5]}
            raise DataContractError(f"model input: column {col!r} is not numeric, e.g. {sample}")
        arrays[col] = parsed
    return ids, arrays, n


def predict_arrays(
    model: FideliteModel,
    columns: Mapping[str, Any],
    *,
    as_of: object = None,
    reasons: bool = True,
) -> dict[str, np.ndarray]:
    """``FideliteModel.predict`` without DataFrames: feature columns in, score columns out.

    Parameters
    ----------
    model : FideliteModel
        (``self`` when called as ``model.predict_arrays(columns, ...)``.)
    columns : mapping of str -> array-like, each of shape (n,)
        ``customer_id`` and feature columns (numeric arrays, or object arrays for text
        and flags with None for missing); optional columns may be absent.
    as_of : day, optional
        As ``params["as_of"]`` of ``predict`` (default: the training ``as_of``).
    reasons : bool
        As ``params["reasons"]`` of ``predict``.

    Returns
    -------
    dict of str -> ndarray, each of shape (n,)
        The columns of ``predict``'s scores frame, same values and order. For one
        customer this costs about a millisecond, far less than ``predict``.
    """
    from fidelite.training.model import REQUIRED_INPUT_COLUMNS, _flag

    reasons = _flag(reasons)
    ids, cols, n = feature_columns(columns, REQUIRED_INPUT_COLUMNS)
    day = _day(as_of or model.train_end)
    buying = cols["orders_total"].astype(float) > 0  # NaN: no purchase
    status = np.where(buying, STATUS_OK, STATUS_NO_HISTORY).astype(object)
    reason_text = np.full(n, _NO_HISTORY_TEXT if reasons else "[]", dtype=object)
    core = {col: np.full(n, np.nan) for col in CORE_COLUMNS}
    for rows, population in ((buying, "purchasers"), (~buying, "prospects")):
        if not rows.any():
            continue
        every = bool(rows.all())  # once: a dozen checks cost a one-row request ~10 us
        part = cols if every else {name: values[rows] for name, values in cols.items()}
        scorer = _purchasers if population == "purchasers" else _prospects
        scored = scorer(model, part, int(rows.sum()), day, reasons)
        if scored is None:
            continue
        values, reason_json = scored
        for col, array in values.items():
            if every:  # a fresh float64 copy, as the masked assignment makes
                core[col] = np.array(array, dtype=float)
            else:
                core[col][rows] = array
        status[rows] = STATUS_OK if population == "purchasers" else STATUS_PROSPECT
        if reason_json is not None:
            reason_text[rows] = reason_json
    copied = {col: _objects(cols[col]) for col in PASSTHROUGH_COLUMNS if col in cols}
    scores = score_arrays(
        ids,
        copied,
        np.asarray(status, dtype=object),
        core,
        reason_text,
        day=day,
        horizon_days=model.horizon_days,
        churn_reference=model.churn_reference,
    )
    if model.uplift is None or n == 0:
        return scores
    return _with_uplift(model, cols, scores, n)


def warm_up(model: FideliteModel) -> None:
    """Compile the large-batch loops and build ``model``'s compiled trees now.

    Batches of 64+ rows walk the trees in numba-compiled loops
    (:mod:`~fidelite.training.forest`); compiling them takes seconds without numba's disk
    cache, building a model's trees tens of milliseconds. ``FideliteModel.load_context``
    calls this when MLflow loads the model, so the service pays at startup, not in the
    first large request.
    """
    if model.purchasers is None and model.prospects is None:
        return
    forest.warm_up()
    compile_top_reasons()
    for population in ("purchasers", "prospects"):
        hurdle = getattr(model, population)
        if hurdle is None:
            continue
        model.attribution(population).compiled_trees()
        for part in (hurdle.churn, hurdle.spend, hurdle.timing):
            part.compiled_trees()
    learner = model.uplift.learner if model.uplift is not None else None
    for estimator in getattr(learner, "lightgbm_models", list)():
        booster_outputs.prepare(estimator.booster_)


def load_context(model: FideliteModel, context: object) -> None:
    """``FideliteModel.load_context``, MLflow's hook when it loads the model: :func:`warm_up`."""
    warm_up(model)


#: The reasons of customers nobody scores (JSON text, as json_lists writes it).
_NO_HISTORY_TEXT = json_lists([[NO_HISTORY_REASON]])[0]


def _day(value: object) -> pd.Timestamp:
    """:func:`parse_day`, cached for hashable values (one day serves many requests)."""
    try:
        return _cached_day(value)
    except TypeError:  # unhashable: parsed (and refused) as usual
        return parse_day(value)


@functools.lru_cache(maxsize=1024)
def _cached_day(value: object) -> pd.Timestamp:
    return parse_day(value)


def _purchasers(
    model: FideliteModel, cols: Columns, n: int, day: pd.Timestamp, with_reasons: bool
) -> Scored:
    """``FideliteModel._score_purchasers`` on column arrays."""
    missing = [c for c in RFM_COLUMNS if c not in cols]
    if missing:
        raise DataContractError(
            f"baseline: the features frame lacks column(s) {missing}; it needs {list(RFM_COLUMNS)}",
            field=missing[0],
        )
    rfm = [np.asarray(cols[c], dtype=float) for c in RFM_COLUMNS]
    baseline = model.baseline.predict_arrays(*rfm)
    augmented = {**cols, **baseline}
    base = {c: baseline[c] for c in model.baseline_columns}
    if model.purchasers is None:
        from fidelite.training.model import _baseline_reasons

        values = model._baseline_scores(base)
        if not with_reasons:
            return values, None
        return values, json_lists(_baseline_reasons(augmented, top_k=3, n=n))
    X = model.purchasers.encoder.transform_columns(augmented, n)
    return _churn_pass(
        model,
        "purchasers",
        augmented,
        X,
        with_reasons,
        lambda raw: model._purchaser_values(base, X, day, raw),
    )


def _prospects(
    model: FideliteModel, cols: Columns, n: int, day: pd.Timestamp, with_reasons: bool
) -> Scored | None:
    """``FideliteModel._score_prospects`` on column arrays."""
    if model.prospects is None:
        return None
    X = model.prospects.encoder.transform_columns(cols, n)
    return _churn_pass(
        model, "prospects", cols, X, with_reasons, lambda raw: model._prospect_values(X, day, raw)
    )


def _churn_pass(
    model: FideliteModel,
    population: str,
    cols: Columns,
    X: np.ndarray,
    with_reasons: bool,
    values_of: Callable[[np.ndarray | None], dict[str, np.ndarray]],
) -> Scored:
    """The score columns (``values_of(churn raw score)``) and the reasons (JSON text),
    from one pass over the churn trees.

    ``FideliteModel.predict`` evaluates the churn booster twice (its score, then the
    leaves for the reasons); the leaves alone give both
    (``PathAttribution.score_and_contributions``: a ``pred_leaf`` pass for a few rows, one
    compiled walk of the trees for 64 or more, both adding the leaf outputs in the
    booster's order). Without reasons: ``values_of(None)`` (the churn model is called as
    usual) and None. From :data:`OVERLAP_MIN_ROWS` rows the score columns (mostly
    compiled tree walks, which release the GIL) are computed on a helper thread while this
    one phrases the reasons (Python, holding it): the two overlap instead of queueing.
    """
    if not with_reasons:
        return values_of(None), None
    raw, contributions = model.attribution(population).score_and_contributions(X)
    names = getattr(model, population).encoder.feature_names_
    if len(X) < OVERLAP_MIN_ROWS:
        reason_json = top_reasons_json(contributions, cols, 3, names)
        return values_of(raw), reason_json
    # The caller's context (numpy's error state is a context variable) goes along.
    pending = _HELPER.get().submit(contextvars.copy_context().run, values_of, raw)
    try:
        reason_json = top_reasons_json(contributions, cols, 3, names)
    finally:
        values = pending.result()
    return values, reason_json


#: Batches of at least this many rows phrase their reasons while a helper thread computes
#: the score columns (the trees' own threads start at the same size).
OVERLAP_MIN_ROWS = forest.PARALLEL_MIN_ROWS
#: One thread for :func:`_churn_pass`' score columns.
_HELPER = LazyPool(1, "scores")


#: Element types whose missing values are exactly None and float NaN.
_PLAIN = frozenset({str, bool, int, float, type(None)})
#: Element types none of whose values is missing (only None is).
_NEVER_NAN = frozenset({str, bool, int, type(None)})


def _objects(values: np.ndarray) -> np.ndarray:
    """A column as objects with every missing value as None (as ``to_numpy(na_value=None)``)."""
    values = np.asarray(values)
    if values.dtype.kind in "biu":
        return values.astype(object)
    if values.dtype.kind == "f":
        out = values.astype(object)
        out[np.isnan(values)] = None
        return out
    items = values.tolist()
    out = np.empty(len(items), dtype=object)
    types = set(map(type, items))
    if types <= _NEVER_NAN:  # None is the only missing value pd.isna would find
        out[:] = items
        return out
    # pd.isna costs more than the whole column for the service's few-row requests; on
    # plain values both find the same missing values (None and float NaN).
    if len(items) < _ISNA_MIN_ROWS and types <= _PLAIN:
        out[:] = [None if v is None or (type(v) is float and v != v) else v for v in items]
        return out
    out[:] = items
    out[pd.isna(out)] = None
    return out


#: Object columns of at least this many rows find their missing values with pd.isna.
_ISNA_MIN_ROWS = 64


def _with_uplift(
    model: FideliteModel, cols: Columns, scores: dict[str, np.ndarray], n: int
) -> dict[str, np.ndarray]:
    """The score columns plus the uplift component's, from its array path."""
    assert model.uplift is not None
    return {**scores, **model.uplift.score_arrays(cols, scores, n)}
