"""``FideliteModel``: the fitted baseline, churn and CLV models as one MLflow pyfunc.

``predict`` takes a ``build_features`` frame and returns the scores frame of
ARCHITECTURE.md. Conventions fixed here (other tools read them):

- ``status`` is "insufficient_history" for customers with no purchase yet
  (``orders_total == 0``): BG/NBD has nothing to condition on, so every
  prediction is NaN for them.
- ``expected_next_purchase`` = ``as_of + H / expected_purchases`` days, i.e. one
  expected purchase at the customer's expected rate over the horizon; NaT when
  that is more than ``3 x H`` days away (the model would be extrapolating).
- ``churn_percentile`` (0-100) places the probability within the churn
  probabilities of the validation window stored at fit, so a single customer's
  percentile does not depend on who else is in the batch.
- ``risk_band`` cut-offs on churn probability: < 0.25 low, < 0.50 medium,
  < 0.75 high, otherwise critical (``RISK_BAND_EDGES``).
- ``reasons`` is a JSON list of phrases from the churn model's top positive
  contributions to the churn log-odds, attributed along each customer's decision
  paths (``training.explain.PathAttribution``, far cheaper than exact TreeSHAP so
  that every scored row can carry reasons). ``params={"reasons": False}`` skips
  them (every ``reasons`` is then ``[]``).
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from fidelite.features.data import DataContractError, as_of_bounds
from fidelite.training.baseline import BaselineModel
from fidelite.training.churn import ChurnModel, FeatureEncoder
from fidelite.training.clv import ClvModel, RatioIntervals, SeasonalLevel
from fidelite.training.explain import PathAttribution, describe_many, top_reasons

__all__ = ["REQUIRED_INPUT_COLUMNS", "RISK_BAND_EDGES", "SCORE_COLUMNS", "FideliteModel"]

SCORE_COLUMNS = (
    "customer_id",
    "as_of",
    "horizon_days",
    "status",
    "churn_probability",
    "p_alive",
    "expected_purchases",
    "predicted_clv",
    "predicted_clv_p10",
    "predicted_clv_p90",
    "expected_next_purchase",
    "lifecycle_stage",
    "churn_percentile",
    "risk_band",
    "value_at_risk",
    "reasons",
    "best_channel",
    "channel_preference",
    "email_opt_in",
    "sms_opt_in",
    "push_opt_in",
)
# The baseline cannot score anyone without these; everything else is optional.
REQUIRED_INPUT_COLUMNS = ("orders_total", "frequency", "recency", "T", "monetary_value")
RISK_BAND_EDGES = (0.25, 0.50, 0.75)
RISK_BANDS = ("low", "medium", "high", "critical")
_CORE_COLUMNS = (
    "p_alive",
    "expected_purchases",
    "churn_probability",
    "predicted_clv",
    "predicted_clv_p10",
    "predicted_clv_p90",
)
NO_HISTORY_REASON = "no purchase yet: not enough history to score"
# Features described when there is no churn model to attribute risk (baseline-only).
BASELINE_REASON_FEATURES = ("days_since_last_purchase", "frequency", "baseline_p_alive")


def _as_features_frame(model_input: pd.DataFrame) -> pd.DataFrame:
    """Customer-indexed view of the model input; validates the required columns.

    The caller's frame is never modified (new frame; pandas copy-on-write shares
    the untouched columns), and only columns that are not numeric already are
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


class FideliteModel(mlflow.pyfunc.PythonModel):
    """Baseline + LightGBM churn + LightGBM CLV behind one ``predict``.

    Parameters
    ----------
    baseline : BaselineModel
        Fitted on features at the training ``as_of``.
    horizon_days : int
        Horizon ``H`` of every prediction.
    encoder, churn, clv : optional
        Feature encoder and fitted ML models; all None for a baseline-only model.
    clv_level : SeasonalLevel, optional
        Window-level (seasonal) log offset of the CLV model, looked up by ``as_of``.
    intervals : RatioIntervals, optional
        Ratio table for ``predicted_clv_p10``/``_p90``; NaN intervals when None.
    churn_reference : ndarray, optional
        Quantiles (shape (101,) or any sorted array) of validation-window churn
        probabilities used for ``churn_percentile``.
    train_start, train_end : Timestamp
        First transaction day used and the training ``as_of``.
    validation_metrics : dict
        Metrics on the held-out window (kept for inspection by serving).
    """

    def __init__(
        self,
        *,
        baseline: BaselineModel,
        horizon_days: int,
        train_start: pd.Timestamp,
        train_end: pd.Timestamp,
        encoder: FeatureEncoder | None = None,
        churn: ChurnModel | None = None,
        clv: ClvModel | None = None,
        clv_level: SeasonalLevel | None = None,
        intervals: RatioIntervals | None = None,
        churn_reference: np.ndarray | None = None,
        validation_metrics: dict[str, float] | None = None,
    ) -> None:
        self.baseline = baseline
        self.horizon_days = int(horizon_days)
        self.train_start = pd.Timestamp(train_start)
        self.train_end = pd.Timestamp(train_end)
        self.encoder = encoder
        self.churn = churn
        self.clv = clv
        self.clv_level = clv_level
        self.intervals = intervals
        self.churn_reference = None if churn_reference is None else np.sort(churn_reference)
        self.validation_metrics = dict(validation_metrics or {})

    @property
    def baseline_only(self) -> bool:
        """True when no LightGBM models were fitted."""
        return self.churn is None

    @property
    def feature_names(self) -> list[str]:
        """Model inputs after encoding (baseline columns included)."""
        return [] if self.encoder is None else self.encoder.feature_names_

    # ------------------------------------------------------------------ scoring
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

        The numpy form (``FeatureEncoder.transform_array``): the models then skip
        pandas and the scikit-learn wrapper, which dominate small requests.
        """
        return None if self.baseline_only else self.encoder.transform_array(augmented)

    def _predict_core(
        self, augmented: pd.DataFrame, X: np.ndarray | None, day: pd.Timestamp
    ) -> dict[str, np.ndarray]:
        """``_CORE_COLUMNS`` for purchasers, each a float array of shape (n_purchasers,).

        ``augmented`` is ``_augment(features)`` and ``X`` its ``_model_matrix``.
        """

        def baseline(column: str) -> np.ndarray:
            return augmented[column].to_numpy(dtype=float)

        out = {
            "p_alive": baseline("baseline_p_alive"),
            "expected_purchases": baseline("baseline_expected_purchases"),
        }
        if X is None:
            out["churn_probability"] = baseline("baseline_churn_probability")
            out["predicted_clv"] = baseline("baseline_clv")
        else:
            out["churn_probability"] = self.churn.predict_proba(X)
            offset = 0.0 if self.clv_level is None else self.clv_level.predict(day)
            out["predicted_clv"] = self.clv.predict(X, offset=offset)
        if self.intervals is None:
            out["predicted_clv_p10"] = np.full(len(augmented), np.nan)
            out["predicted_clv_p90"] = np.full(len(augmented), np.nan)
        else:
            low, high = self.intervals.predict(out["predicted_clv"])
            out["predicted_clv_p10"], out["predicted_clv_p90"] = low, high
        return out

    def _percentile(self, proba: np.ndarray) -> np.ndarray:
        if self.churn_reference is None or len(self.churn_reference) == 0:
            return pd.Series(proba).rank(pct=True).to_numpy() * 100
        ref = self.churn_reference
        return np.searchsorted(ref, proba, side="right") / len(ref) * 100

    def _next_purchase(self, expected: np.ndarray, day: pd.Timestamp) -> np.ndarray:
        """``day`` + expected gap, datetime64[ns] of shape (n,), NaT beyond ``3 x H``."""
        h = float(self.horizon_days)
        with np.errstate(divide="ignore", invalid="ignore"):
            days_ahead = np.where(expected > 0, h / expected, np.inf)
        days_ahead = np.where(days_ahead <= 3 * h, np.ceil(days_ahead), np.nan)
        # Whole days as int64 nanoseconds (NaN -> NaT) without pandas timedelta parsing.
        nanos = np.where(np.isnan(days_ahead), 0, days_ahead).astype(np.int64) * 86_400_000_000_000
        dates = np.datetime64(day.to_datetime64(), "ns") + nanos.astype("timedelta64[ns]")
        dates[np.isnan(days_ahead)] = np.datetime64("NaT")
        return dates

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Score customers.

        Parameters
        ----------
        context : mlflow PythonModelContext or None
            Unused (everything needed is pickled with the model).
        model_input : DataFrame, shape (n_customers, n_features)
            A ``build_features`` frame; ``customer_id`` as index or column;
            optional columns may be missing.
        params : dict, optional
            ``as_of`` (date-like): the day the features were built at; defaults
            to the training ``as_of``. ``reasons`` (bool, default True): False
            leaves every ``reasons`` empty and skips computing them.

        Returns
        -------
        DataFrame, shape (n_customers, 21)
            The scores frame (``SCORE_COLUMNS``), one row per input row.
        """
        frame = _as_features_frame(model_input)
        params = params or {}
        as_of = params.get("as_of") or self.train_end
        with_reasons = _flag(params.get("reasons", True))
        day, _ = as_of_bounds(as_of)
        n = len(frame)
        scoreable = (frame["orders_total"].fillna(0) > 0).to_numpy()
        no_reasons = json.dumps([NO_HISTORY_REASON]) if with_reasons else "[]"
        reasons = np.full(n, no_reasons, dtype=object)
        core = {col: np.full(n, np.nan) for col in _CORE_COLUMNS}
        if scoreable.any():
            # Baseline columns and the model matrix are shared by scores and reasons.
            buyers = frame if scoreable.all() else frame.loc[scoreable]
            augmented = self._augment(buyers)
            X = self._model_matrix(augmented)
            for col, values in self._predict_core(augmented, X, day).items():
                core[col][scoreable] = values
            if with_reasons:
                reasons[scoreable] = _json_lists(self._reasons(augmented, X, top_k=3))

        # Built as one dict of arrays: per-column frame inserts cost more than
        # the models for the one-customer requests of the HTTP service.
        proba = core["churn_probability"]
        percentile = np.full(n, np.nan)
        percentile[scoreable] = self._percentile(proba[scoreable])
        band_index = np.searchsorted(RISK_BAND_EDGES, np.nan_to_num(proba), side="right")
        columns: dict[str, Any] = {
            "customer_id": frame.index.to_numpy(dtype=object),
            "as_of": np.full(n, day.to_datetime64()),
            "horizon_days": np.full(n, self.horizon_days, dtype=np.int64),
            "status": np.where(scoreable, "ok", "insufficient_history").astype(object),
            **core,
            "expected_next_purchase": self._next_purchase(core["expected_purchases"], day),
            "lifecycle_stage": self._passthrough(frame, "lifecycle_stage", None),
            "churn_percentile": percentile,
            "risk_band": np.where(
                scoreable, np.asarray(RISK_BANDS, dtype=object)[band_index], None
            ),
            "value_at_risk": proba * core["predicted_clv"],
            "reasons": reasons,
            "best_channel": self._passthrough(frame, "best_channel", None),
            "channel_preference": self._passthrough(frame, "channel_preference", None),
        }
        for col in ("email_opt_in", "sms_opt_in", "push_opt_in"):
            # Absent consent columns mean opted in, as in features.data.load_customers.
            consent = self._passthrough(frame, col, True)
            columns[col] = consent.where(consent.notna(), True).to_numpy(dtype=bool)
        return pd.DataFrame({col: columns[col] for col in SCORE_COLUMNS})

    @staticmethod
    def _passthrough(frame: pd.DataFrame, column: str, default: Any) -> pd.Series:
        """A feature column copied to the scores (object dtype, missing values as None)."""
        if column in frame.columns:
            values = frame[column].to_numpy(dtype=object, na_value=None)
        else:
            values = np.full(len(frame), default, dtype=object)
        # An explicit object Series: a bare array of strings would become pandas' str dtype.
        return pd.Series(values, dtype=object, copy=False)

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
            Phrases from the churn model's largest positive contributions to the
            churn log-odds (``training.explain.PathAttribution``); a baseline-only
            model describes recency, frequency and P(alive).
        """
        augmented = self._augment(_as_features_frame(features))
        return self._reasons(augmented, self._model_matrix(augmented), top_k=top_k)

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the churn log-odds, shape (n_customers, n_features).

        They add up, with ``attribution.expected_value_``, to the raw churn score.
        """
        if self.baseline_only:
            raise ValueError("a baseline-only model has no churn model to attribute")
        augmented = self._augment(_as_features_frame(features))
        X = self._model_matrix(augmented)
        return pd.DataFrame(
            self.attribution.contributions(X), index=augmented.index, columns=self.feature_names
        )

    @property
    def attribution(self) -> PathAttribution:
        """Leaf contribution tables of the churn model, built on first use.

        Derived state: rebuilt (not unpickled) so that models logged before it
        existed, or whose churn model was refitted, stay correct.
        """
        booster = self.churn.booster_
        cached = self.__dict__.get("_attribution")
        if cached is None or cached.booster_ is not getattr(booster, "booster_", booster):
            cached = PathAttribution(self.churn.best_iteration_).fit(booster)
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
            return self._baseline_reasons(augmented, top_k=top_k)
        attribution = self.attribution
        return top_reasons(
            attribution.contributions(X),
            augmented,
            top_k=top_k,
            feature_names=self.feature_names,
        )

    @staticmethod
    def _baseline_reasons(augmented: pd.DataFrame, *, top_k: int) -> list[list[str]]:
        """Recency, frequency and P(alive) phrases, in that order, for each customer."""
        columns = [f for f in BASELINE_REASON_FEATURES[:top_k] if f in augmented.columns]

        def context(column: str) -> np.ndarray:
            if column not in augmented.columns:
                return np.full(len(augmented), np.nan)
            return pd.to_numeric(augmented[column], errors="coerce").to_numpy(float)

        phrased = [describe_many(f, augmented[f].to_numpy(), context) for f in columns]
        return (
            [list(row) for row in zip(*phrased, strict=False)]
            if phrased
            else [[] for _ in augmented.index]
        )


def _flag(value: Any) -> bool:
    """A boolean param that may arrive as a string through MLflow's param schema."""
    if isinstance(value, str):
        return value.strip().lower() not in {"false", "0", "no", ""}
    return bool(value)


def _json_lists(lists: list[list[str]]) -> np.ndarray:
    """JSON encodings of string lists, shape (n,) object array."""
    encode = json.JSONEncoder(ensure_ascii=True).encode
    return np.asarray([encode(items) for items in lists], dtype=object)
