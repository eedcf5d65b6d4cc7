"""``FideliteModel``: the baseline and the purchasers' and prospects' models as one pyfunc.

``predict`` takes a ``build_features`` frame and returns the scores frame
(:data:`fidelite.features.contract.SCORE_COLUMNS`, conventions in
:mod:`fidelite.training.scoreframe`): purchasers are scored by the BG/NBD-boosted hurdle
models, customers without a purchase by the first-purchase (prospect) models. The model
carries the :class:`~fidelite.features.params.FeatureParams` it was trained with and the
code version, so features built for it from raw history
(:meth:`FideliteModel.build_features`) are built exactly as in training.

``reasons`` are phrases for the churn model's top positive contributions to the churn
log-odds, attributed along each customer's decision paths
(:class:`~fidelite.training.attribution.PathAttribution`, far cheaper than exact TreeSHAP
so that every scored row can carry reasons). ``params={"reasons": False}`` skips them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features import build_features
from fidelite.features.days import parse_day
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import is_purchaser
from fidelite.training.arrays import load_context, predict_arrays
from fidelite.training.attribution import PathAttribution
from fidelite.training.baseline import BaselineModel
from fidelite.training.hurdle import Hurdle
from fidelite.training.intervals import MixtureIntervals
from fidelite.training.reasons import describe_many, top_reasons
from fidelite.training.scoreframe import (
    CORE_COLUMNS,
    NO_HISTORY_REASON,
    STATUS_NO_HISTORY,
    STATUS_OK,
    STATUS_PROSPECT,
    assemble_scores,
    json_lists,
)
from fidelite.training.timing import median_days

if TYPE_CHECKING:
    from fidelite.training.uplift.model import UpliftModel

__all__ = ["REQUIRED_INPUT_COLUMNS", "FideliteModel"]
Raw = np.ndarray | None  # the churn trees' raw score when the reasons' leaf pass gave it

#: The baseline cannot score anyone without these; every other feature is optional.
REQUIRED_INPUT_COLUMNS = ("orders_total", "frequency", "recency", "T", "monetary_value")
# Features described when there is no churn model to attribute risk (baseline-only).
BASELINE_REASON_FEATURES = ("days_since_last_purchase", "frequency", "baseline_p_alive")


def as_features_frame(model_input: pd.DataFrame) -> pd.DataFrame:
    """Customer-indexed view of the model input; validates the required columns.

    The caller's frame is never modified (new frame; pandas copy-on-write shares the
    untouched columns), and only required columns that are not numeric already are
    parsed, which keeps one-customer requests cheap.
    """
    if "customer_id" in model_input.columns:
        frame = model_input.set_index("customer_id")
    else:
        frame = model_input.copy(deep=False)
    if not pd.api.types.is_string_dtype(frame.index.dtype) or frame.index.name != "customer_id":
        frame.index = frame.index.astype(str).rename("customer_id")
    missing = [col for col in REQUIRED_INPUT_COLUMNS if col not in frame.columns]
    if missing:
        raise DataContractError(
            f"model input: missing required feature column(s) {missing}; pass the output of "
            f"features.build_features (columns seen: {list(frame.columns)[:10]}...)"
        )
    for col in REQUIRED_INPUT_COLUMNS:
        if frame[col].dtype.kind in "biuf":
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            sample = frame.loc[bad, [col]].head(5).to_dict(orient="index")
            raise DataContractError(f"model input: column {col!r} is not numeric, e.g. {sample}")
        frame[col] = values.astype(float)
    return frame


def _flag(value: Any) -> bool:
    """A boolean param that may arrive as a string through MLflow's param schema."""
    if isinstance(value, str):
        return value.strip().lower() not in {"false", "0", "no", ""}
    return bool(value)


class FideliteModel(mlflow.pyfunc.PythonModel):
    """The baseline, the purchasers' and the prospects' models behind one ``predict``.

    Parameters
    ----------
    baseline : BaselineModel
        Fitted on the purchasers at the training ``as_of``.
    horizon_days : int
        Horizon ``H`` of every prediction.
    train_start, train_end : Timestamp
        First transaction day used and the training ``as_of``.
    feature_params : FeatureParams
        How the training features were built; :meth:`build_features` uses them.
    code_version : dict
        ``fidelite`` version (and git commit when known) that trained the model.
    purchasers : Hurdle, optional
        The purchasers' models; None for a baseline-only model.
    prospects : Hurdle, optional
        The first-purchase models; None when there were too few prospects to learn from
        (customers without a purchase then get ``insufficient_history``).
    intervals : MixtureIntervals, optional
        The baseline's intervals (baseline-only models).
    churn_reference : ndarray, optional
        Held-out churn probabilities (any sorted sample) for ``churn_percentile``.
    validation_metrics : dict
        Metrics on the held-out window (kept for inspection by serving).
    uplift : UpliftModel, optional
        Learnt from past campaigns (``fidelite train --campaigns``): fills the
        ``uplift_*`` score columns and picks the win-back policy.
    """

    def __init__(
        self,
        *,
        baseline: BaselineModel,
        horizon_days: int,
        train_start: pd.Timestamp,
        train_end: pd.Timestamp,
        feature_params: FeatureParams,
        code_version: dict[str, str | None],
        purchasers: Hurdle | None = None,
        prospects: Hurdle | None = None,
        intervals: MixtureIntervals | None = None,
        churn_reference: np.ndarray | None = None,
        validation_metrics: dict[str, float] | None = None,
        uplift: UpliftModel | None = None,
    ) -> None:
        self.baseline = baseline
        self.horizon_days = int(horizon_days)
        self.train_start = pd.Timestamp(train_start)
        self.train_end = pd.Timestamp(train_end)
        self.feature_params = feature_params
        self.code_version = dict(code_version)
        self.purchasers = purchasers
        self.prospects = prospects
        self.intervals = intervals
        self.churn_reference = None if churn_reference is None else np.sort(churn_reference)
        self.validation_metrics = dict(validation_metrics or {})
        self.uplift = uplift

    @property
    def baseline_only(self) -> bool:
        """True when no LightGBM models were fitted."""
        return self.purchasers is None

    @property
    def feature_names(self) -> list[str]:
        """The purchasers' model inputs after encoding (baseline columns included)."""
        return [] if self.purchasers is None else self.purchasers.encoder.feature_names_

    def build_features(self, inputs: Inputs) -> pd.DataFrame:
        """Features of every customer known at ``inputs.as_of``, built as in training."""
        return build_features(inputs, params=self.feature_params)

    # ------------------------------------------------------------------ scoring
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score customers.

        Parameters
        ----------
        context : mlflow PythonModelContext or None
            Unused (everything needed is pickled with the model).
        model_input : DataFrame, shape (n_customers, n_features)
            A ``build_features`` frame; ``customer_id`` as index or column; optional
            columns may be missing.
        params : dict, optional
            ``as_of`` (YYYY-MM-DD): the day the features were built at; defaults to the
            training ``as_of``. ``reasons`` (bool, default True): False leaves every
            ``reasons`` empty and skips computing them.

        Returns
        -------
        DataFrame, shape (n_customers, len(SCORE_COLUMNS))
            The scores frame, one row per input row.
        """
        frame = as_features_frame(model_input)
        params = params or {}
        day = parse_day(params.get("as_of") or self.train_end)
        with_reasons = _flag(params.get("reasons", True))
        n = len(frame)
        buying = is_purchaser(frame).to_numpy()
        status = np.where(buying, STATUS_OK, STATUS_NO_HISTORY).astype(object)
        no_history = json_lists([[NO_HISTORY_REASON] if with_reasons else []])[0]
        reasons = np.full(n, no_history if with_reasons else "[]", dtype=object)
        core = {col: np.full(n, np.nan) for col in CORE_COLUMNS}
        for rows, scorer in ((buying, self._score_purchasers), (~buying, self._score_prospects)):
            if not rows.any():
                continue
            scored = scorer(frame if rows.all() else frame.loc[rows], day, with_reasons)
            if scored is None:
                continue
            values, phrases = scored
            for col, array in values.items():
                core[col][rows] = array
            status[rows] = STATUS_OK if scorer == self._score_purchasers else STATUS_PROSPECT
            if phrases is not None:
                reasons[rows] = json_lists(phrases)
        scores = assemble_scores(
            frame,
            np.asarray(status, dtype=object),
            core,
            reasons,
            day=day,
            horizon_days=self.horizon_days,
            churn_reference=self.churn_reference,
        )
        if self.uplift is None or n == 0:
            return scores
        return self.uplift.add_scores(frame, scores)

    # Feature columns in, score columns out, no DataFrames: see training.arrays (which
    # also compiles the large-batch scoring when MLflow loads the model: load_context).
    predict_arrays, load_context = predict_arrays, load_context

    def _augment(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Features plus the baseline columns (recomputed if the input already has them)."""
        baseline = self.baseline.predict(frame)
        stale = frame.columns.intersection(baseline.columns)
        if len(stale):
            frame = frame.drop(columns=stale)
        # Same index on both sides, so no join/alignment is needed.
        return pd.concat([frame, baseline], axis=1)

    def _score_purchasers(
        self, frame: pd.DataFrame, day: pd.Timestamp, with_reasons: bool
    ) -> tuple[dict[str, np.ndarray], list[list[str]] | None]:
        augmented = self._augment(frame)
        base = {c: augmented[c].to_numpy(dtype=float) for c in self.baseline_columns}
        if self.purchasers is None:
            values = self._baseline_scores(base)
            phrases = _baseline_reasons(augmented, top_k=3) if with_reasons else None
            return values, phrases
        X = self.purchasers.encoder.transform_array(augmented)
        values = self._purchaser_values(base, X, day)
        phrases = self._reasons("purchasers", augmented, X) if with_reasons else None
        return values, phrases

    def _purchaser_values(
        self, base: dict[str, np.ndarray], X: np.ndarray, day: pd.Timestamp, churn_raw: Raw = None
    ) -> dict[str, np.ndarray]:
        """The purchasers' model outputs from their matrix and baseline columns."""
        assert self.purchasers is not None
        values = self.purchasers.predict(None, day, X, churn_raw)
        # P(alive) and purchases consistent with the model's P(purchase): BG/NBD's, scaled by
        # the ratio of the two P(purchase within H).
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (1.0 - values["churn_probability"]) / (1.0 - base["baseline_churn_probability"])
        ratio = np.nan_to_num(ratio, nan=1.0, posinf=1.0)
        values["p_alive"] = np.minimum(base["baseline_p_alive"] * ratio, 1.0)
        values["expected_purchases"] = base["baseline_expected_purchases"] * ratio
        return values

    baseline_columns = (
        "baseline_p_alive",
        "baseline_expected_purchases",
        "baseline_clv",
        "baseline_churn_probability",
    )

    def _baseline_scores(self, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Baseline-only scores: BG/NBD + Gamma-Gamma with the held-out intervals."""
        p_none = base["baseline_churn_probability"]
        with np.errstate(divide="ignore", invalid="ignore"):
            spend = np.nan_to_num(base["baseline_clv"] / (1.0 - p_none), nan=0.0, posinf=0.0)
        low = high = np.full(len(p_none), np.nan)
        if self.intervals is not None:
            low, high = self.intervals.predict(p_none, np.maximum(spend, 1e-9))
        # Without a hazard model, purchases are taken as spread evenly over the horizon (so
        # the median day given a purchase is H/2).
        edges = np.array([0.0, float(self.horizon_days)])
        days = median_days(1.0 - p_none, np.ones((len(p_none), 1)), edges)
        return {
            "churn_probability": p_none,
            "p_alive": base["baseline_p_alive"],
            "expected_purchases": base["baseline_expected_purchases"],
            "predicted_clv": base["baseline_clv"],
            "predicted_clv_p10": low,
            "predicted_clv_p90": high,
            "value_if_retained": spend,
            "next_purchase_days": days,
        }

    def _score_prospects(
        self, frame: pd.DataFrame, day: pd.Timestamp, with_reasons: bool
    ) -> tuple[dict[str, np.ndarray], list[list[str]] | None] | None:
        if self.prospects is None:
            return None
        X = self.prospects.encoder.transform_array(frame)
        values = self._prospect_values(X, day)
        phrases = self._reasons("prospects", frame, X) if with_reasons else None
        return values, phrases

    def _prospect_values(self, X: np.ndarray, day: pd.Timestamp, churn_raw: Raw = None) -> dict:
        """The prospects' model outputs from their matrix (``churn_raw``: see Hurdle.predict)."""
        assert self.prospects is not None
        values = self.prospects.predict(None, day, X, churn_raw)
        values["p_alive"] = np.full(len(X), np.nan)
        values["expected_purchases"] = (
            1.0 - values["churn_probability"]
        ) * self.prospects.purchase_days_if_buying
        return values

    # ------------------------------------------------------------------ reasons
    def explain(self, features: pd.DataFrame, top_k: int = 3) -> list[list[str]]:
        """Top reasons raising each purchaser's churn risk.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            ``build_features`` rows of customers with at least one purchase.
        top_k : int
            Maximum reasons per customer.

        Returns
        -------
        list of list of str, length n_customers
            Phrases from the churn model's largest positive contributions to the churn
            log-odds; a baseline-only model describes recency, frequency and P(alive).
        """
        augmented = self._augment(as_features_frame(features))
        if self.purchasers is None:
            return _baseline_reasons(augmented, top_k=top_k)
        X = self.purchasers.encoder.transform_array(augmented)
        return self._reasons("purchasers", augmented, X, top_k=top_k)

    def attribution(self, population: str = "purchasers") -> PathAttribution:
        """Leaf contribution tables of a population's churn model (built once, not pickled)."""
        hurdle = getattr(self, population)
        if hurdle is None:
            raise ValueError(f"this model has no {population} churn model to attribute")
        cache = self.__dict__.setdefault("_attributions", {})
        if population not in cache:
            churn = hurdle.churn
            cache[population] = PathAttribution(churn.best_iteration_).fit(churn.estimator_)
        return cache[population]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_attributions", None)
        return state

    def _reasons(
        self,
        population: str,
        frame: pd.DataFrame | Mapping[str, np.ndarray],
        X: np.ndarray,
        *,
        top_k: int = 3,
    ) -> list[list[str]]:
        hurdle = getattr(self, population)
        return top_reasons(
            self.attribution(population).contributions(X),
            frame,
            top_k=top_k,
            feature_names=hurdle.encoder.feature_names_,
        )


def _baseline_reasons(
    augmented: pd.DataFrame | Mapping[str, np.ndarray], *, top_k: int, n: int | None = None
) -> list[list[str]]:
    """Recency, frequency and P(alive) phrases, in that order, for each customer.

    ``augmented`` is a frame or a mapping of column arrays (then ``n`` is its row count).
    """
    n = len(augmented) if isinstance(augmented, pd.DataFrame) else int(n or 0)
    columns = [f for f in BASELINE_REASON_FEATURES[:top_k] if f in augmented]

    def context(column: str) -> np.ndarray:
        if column not in augmented:
            return np.full(n, np.nan)
        return pd.to_numeric(pd.Series(augmented[column], copy=False), errors="coerce").to_numpy(
            float
        )

    phrased = [describe_many(f, np.asarray(augmented[f]), context) for f in columns]
    if not phrased:
        return [[] for _ in range(n)]
    return [list(row) for row in zip(*phrased, strict=True)]
