"""``FideliteModel``: the fitted baseline, churn and CLV models as one MLflow pyfunc.

``predict`` takes a ``build_features`` frame and returns the scores frame
(:data:`fidelite.features.contract.SCORE_COLUMNS`, conventions in
:mod:`fidelite.training.scoreframe`). The model carries the
:class:`~fidelite.features.params.FeatureParams` it was trained with and the code
version, so features built for it from raw history (:meth:`FideliteModel.build_features`)
are built exactly as in training.

``reasons`` are phrases for the churn model's top positive contributions to the churn
log-odds, attributed along each customer's decision paths
(:class:`~fidelite.training.attribution.PathAttribution`, far cheaper than exact TreeSHAP
so that every scored row can carry reasons). ``params={"reasons": False}`` skips them.
"""

from __future__ import annotations

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
from fidelite.training.attribution import PathAttribution
from fidelite.training.baseline import BaselineModel
from fidelite.training.churn import ChurnModel
from fidelite.training.clv import ClvModel
from fidelite.training.encoding import FeatureEncoder
from fidelite.training.intervals import RatioIntervals
from fidelite.training.reasons import describe_many, top_reasons

if TYPE_CHECKING:
    from fidelite.training.uplift.model import UpliftModel
from fidelite.training.scoreframe import (
    CORE_COLUMNS,
    NO_HISTORY_REASON,
    assemble_scores,
    json_lists,
)

__all__ = ["REQUIRED_INPUT_COLUMNS", "FideliteModel"]

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
    """Baseline + LightGBM churn + LightGBM CLV behind one ``predict``.

    Parameters
    ----------
    baseline : BaselineModel
        Fitted on features at the training ``as_of``.
    horizon_days : int
        Horizon ``H`` of every prediction.
    train_start, train_end : Timestamp
        First transaction day used and the training ``as_of``.
    feature_params : FeatureParams
        How the training features were built; :meth:`build_features` uses them.
    code_version : dict
        ``fidelite`` version (and git commit when known) that trained the model.
    encoder, churn, clv : optional
        Feature encoder and fitted ML models; all None for a baseline-only model.
    intervals : RatioIntervals, optional
        Ratio table for ``predicted_clv_p10``/``_p90``; NaN intervals when None.
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
        encoder: FeatureEncoder | None = None,
        churn: ChurnModel | None = None,
        clv: ClvModel | None = None,
        intervals: RatioIntervals | None = None,
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
        self.encoder = encoder
        self.churn = churn
        self.clv = clv
        self.intervals = intervals
        self.churn_reference = None if churn_reference is None else np.sort(churn_reference)
        self.validation_metrics = dict(validation_metrics or {})
        self.uplift = uplift

    @property
    def baseline_only(self) -> bool:
        """True when no LightGBM models were fitted."""
        return self.churn is None

    @property
    def feature_names(self) -> list[str]:
        """Model inputs after encoding (baseline columns included)."""
        return [] if self.encoder is None else self.encoder.feature_names_

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
        scoreable = is_purchaser(frame).to_numpy()
        no_history = json_lists([[NO_HISTORY_REASON] if with_reasons else []])[0]
        reasons = np.full(n, no_history, dtype=object)
        core = {col: np.full(n, np.nan) for col in CORE_COLUMNS}
        if scoreable.any():
            # Baseline columns and the model matrix are shared by scores and reasons.
            buyers = frame if scoreable.all() else frame.loc[scoreable]
            augmented = self._augment(buyers)
            X = self._model_matrix(augmented)
            for col, values in self._predict_core(augmented, X, day).items():
                core[col][scoreable] = values
            if with_reasons:
                reasons[scoreable] = json_lists(self._reasons(augmented, X, top_k=3))
        scores = assemble_scores(
            frame,
            scoreable,
            core,
            reasons,
            day=day,
            horizon_days=self.horizon_days,
            churn_reference=self.churn_reference,
        )
        # Models pickled before uplift existed have no such attribute.
        uplift = getattr(self, "uplift", None)
        return scores if uplift is None or n == 0 else uplift.add_scores(frame, scores)

    def _augment(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Features plus the baseline columns (recomputed if the input already has them)."""
        baseline = self.baseline.predict(frame)
        stale = frame.columns.intersection(baseline.columns)
        if len(stale):
            frame = frame.drop(columns=stale)
        # Same index on both sides, so no join/alignment is needed.
        return pd.concat([frame, baseline], axis=1)

    def _model_matrix(self, augmented: pd.DataFrame) -> np.ndarray | None:
        """Encoded LightGBM input, shape (n, len(feature_names)), or None if baseline-only.

        The numpy form (``FeatureEncoder.transform_array``): the models then skip pandas
        and the scikit-learn wrapper, which dominate small requests.
        """
        return None if self.encoder is None else self.encoder.transform_array(augmented)

    def _predict_core(
        self, augmented: pd.DataFrame, X: np.ndarray | None, day: pd.Timestamp
    ) -> dict[str, np.ndarray]:
        """``CORE_COLUMNS`` for purchasers, each a float array of shape (n_purchasers,)."""

        def baseline(column: str) -> np.ndarray:
            return augmented[column].to_numpy(dtype=float)

        out = {
            "p_alive": baseline("baseline_p_alive"),
            "expected_purchases": baseline("baseline_expected_purchases"),
        }
        if X is None or self.churn is None or self.clv is None:
            out["churn_probability"] = baseline("baseline_churn_probability")
            out["predicted_clv"] = baseline("baseline_clv")
        else:
            out["churn_probability"] = self.churn.churn_probability(X)
            out["predicted_clv"] = self.clv.predict(X, as_of=day)
        if self.intervals is None:
            out["predicted_clv_p10"] = np.full(len(augmented), np.nan)
            out["predicted_clv_p90"] = np.full(len(augmented), np.nan)
        else:
            low, high = self.intervals.predict(out["predicted_clv"])
            out["predicted_clv_p10"], out["predicted_clv_p90"] = low, high
        return out

    # ------------------------------------------------------------------ reasons
    def explain(self, features: pd.DataFrame, top_k: int = 3) -> list[list[str]]:
        """Top reasons raising each customer's churn risk.

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
        return self._reasons(augmented, self._model_matrix(augmented), top_k=top_k)

    @property
    def attribution(self) -> PathAttribution:
        """Leaf contribution tables of the churn model, built on first use (not pickled)."""
        if self.churn is None:
            raise ValueError("a baseline-only model has no churn model to attribute")
        cached = self.__dict__.get("_attribution")
        if cached is None:
            cached = PathAttribution(self.churn.best_iteration_).fit(self.churn.estimator_)
            self.__dict__["_attribution"] = cached
        return cached

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_attribution", None)
        return state

    def _reasons(
        self, augmented: pd.DataFrame, X: np.ndarray | None, *, top_k: int
    ) -> list[list[str]]:
        """Reasons of purchasers given their augmented features and model matrix."""
        if X is None:
            return _baseline_reasons(augmented, top_k=top_k)
        return top_reasons(
            self.attribution.contributions(X),
            augmented,
            top_k=top_k,
            feature_names=self.feature_names,
        )


def _baseline_reasons(augmented: pd.DataFrame, *, top_k: int) -> list[list[str]]:
    """Recency, frequency and P(alive) phrases, in that order, for each customer."""
    columns = [f for f in BASELINE_REASON_FEATURES[:top_k] if f in augmented.columns]

    def context(column: str) -> np.ndarray:
        if column not in augmented.columns:
            return np.full(len(augmented), np.nan)
        return pd.to_numeric(augmented[column], errors="coerce").to_numpy(float)

    phrased = [describe_many(f, augmented[f].to_numpy(), context) for f in columns]
    if not phrased:
        return [[] for _ in augmented.index]
    return [list(row) for row in zip(*phrased, strict=True)]
