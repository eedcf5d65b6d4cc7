"""LightGBM churn classifier and the feature encoding shared by the ML models.

The encoder turns a ``build_features`` frame (plus the baseline columns added by
``training.clv.BaselineModel``) into the fixed numeric/categorical matrix LightGBM
sees. Category lists are frozen at fit so codes mean the same thing at scoring
time, and optional columns missing at scoring time become NaN (LightGBM routes
missing values down a learned branch) instead of failing.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from training.evaluate import expected_calibration_error

__all__ = [
    "CATEGORICAL_FEATURES",
    "NON_FEATURE_COLUMNS",
    "ChurnModel",
    "FeatureEncoder",
    "choose_calibration",
    "eval_set_kwargs",
]

CATEGORICAL_FEATURES = ("lifecycle_stage", "rfm_segment", "best_channel", "acquisition_channel")
PROBABILITY_FLOOR = 0.005
# Free-text / identifier columns that are not model inputs.
NON_FEATURE_COLUMNS = ("customer_id", "channel_preference", "as_of")


# LightGBM 4.7 renamed eval_set to eval_X/eval_y (the old name warns); support both.
_HAS_EVAL_X = "eval_X" in inspect.signature(lgb.LGBMModel.fit).parameters


def eval_set_kwargs(X_val: pd.DataFrame, y_val: np.ndarray) -> dict[str, Any]:
    """Validation-set keyword arguments for ``LGBMModel.fit`` on any LightGBM 4.x."""
    if _HAS_EVAL_X:
        return {"eval_X": (X_val,), "eval_y": (np.asarray(y_val),)}
    return {"eval_set": [(X_val, np.asarray(y_val))]}


class FeatureEncoder:
    """Freeze the model's feature list and category levels.

    Attributes
    ----------
    numeric_features_ : list of str
        Numeric and boolean columns seen at fit, in model order.
    categories_ : dict of str to list of str
        Category levels per categorical column, sorted.
    """

    def __init__(self, categorical_features: tuple[str, ...] = CATEGORICAL_FEATURES) -> None:
        self.categorical_features = categorical_features

    def fit(self, features: pd.DataFrame) -> FeatureEncoder:
        """Learn columns and levels from a features frame of shape (n_customers, n_columns)."""
        skip = set(NON_FEATURE_COLUMNS) | set(self.categorical_features)
        self.numeric_features_ = [
            col
            for col in features.columns
            if col not in skip
            and (
                pd.api.types.is_numeric_dtype(features[col])
                or pd.api.types.is_bool_dtype(features[col])
            )
        ]
        self.categories_ = {
            col: sorted(features[col].dropna().astype(str).unique().tolist())
            for col in self.categorical_features
            if col in features.columns
        }
        return self

    @property
    def feature_names_(self) -> list[str]:
        """All model inputs in order: numeric first, then categorical."""
        return [*self.numeric_features_, *self.categories_]

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Return the model matrix, shape (n_rows, len(feature_names_)).

        Missing columns become NaN, unseen category levels become NaN, booleans
        become 0/1 floats; the index is preserved.
        """
        numeric = features.reindex(columns=self.numeric_features_)
        matrix = numeric.apply(pd.to_numeric, errors="coerce").astype("float64")
        for col, levels in self.categories_.items():
            raw = (
                features[col]
                if col in features.columns
                else pd.Series(np.nan, index=features.index)
            )
            values = raw.where(raw.isna(), raw.astype(str))
            matrix[col] = pd.Categorical(values, categories=levels)
        return matrix


class ChurnModel:
    """Gradient-boosted churn classifier with optional post-hoc calibration.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM params
        Modest defaults that generalise across window sizes.
    early_stopping_rounds : int
        Patience when a validation window is given to ``fit``.
    n_jobs : int
        LightGBM threads.
    random_state : int
        Seed for LightGBM's bagging/feature sampling.

    Attributes
    ----------
    booster_ : lightgbm.LGBMClassifier
        The fitted classifier.
    best_iteration_ : int
        Trees used (early-stopping optimum, or ``n_estimators``).
    calibrator_ : IsotonicRegression or None
        Applied on top of the raw probability when set by ``set_calibrator``.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        early_stopping_rounds: int = 30,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (for logging)."""
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "early_stopping_rounds": self.early_stopping_rounds,
            "random_state": self.random_state,
        }

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        X_val: pd.DataFrame | None = None,
        y_val: np.ndarray | None = None,
    ) -> ChurnModel:
        """Fit on an encoded matrix X of shape (n, n_features) and 0/1 labels y (n,).

        With ``X_val``/``y_val`` the number of trees is chosen by early stopping
        on log-loss over that window.
        """
        self.booster_ = lgb.LGBMClassifier(
            objective="binary",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=-1,
        )
        fit_kwargs: dict[str, Any] = {}
        if X_val is not None and y_val is not None and self.early_stopping_rounds:
            fit_kwargs.update(eval_set_kwargs(X_val, y_val))
            fit_kwargs["callbacks"] = [
                lgb.early_stopping(self.early_stopping_rounds, verbose=False)
            ]
        best = self._fit_booster(X, np.asarray(y), **fit_kwargs)
        self.best_iteration_ = int(best) if best else self.n_estimators
        self.calibrator_: IsotonicRegression | None = None
        return self

    def _fit_booster(self, X: pd.DataFrame, y: np.ndarray, **fit_kwargs: Any) -> int | None:
        """Fit ``booster_`` in-process; return the early-stopping tree count (None without).

        The one seam ``training.distributed.DaskChurnModel`` overrides to fit on Dask.
        """
        self.booster_.fit(X, y, **fit_kwargs)
        return self.booster_.best_iteration_ if fit_kwargs else None

    def predict_raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated churn probability, shape (n,)."""
        return self.booster_.predict_proba(X, num_iteration=self.best_iteration_)[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Churn probability in [0, 1], shape (n,), calibrated when a calibrator is set."""
        raw = self.predict_raw_proba(X)
        if self.calibrator_ is None:
            return raw
        # Isotonic steps can reach exactly 0 or 1 on a finite window; no customer is certain.
        return np.clip(self.calibrator_.predict(raw), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)

    def set_calibrator(self, calibrator: IsotonicRegression | None) -> ChurnModel:
        """Attach (or remove) a probability calibrator fitted elsewhere."""
        self.calibrator_ = calibrator
        return self

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature SHAP contributions to the raw log-odds, shape (n, n_features).

        The bias column LightGBM appends is dropped.
        """
        contrib = self.booster_.predict(X, pred_contrib=True, num_iteration=self.best_iteration_)
        return pd.DataFrame(contrib[:, :-1], index=X.index, columns=list(X.columns))

    def feature_importance(self) -> pd.Series:
        """Total split gain per feature, sorted descending."""
        gain = self.booster_.booster_.feature_importance(importance_type="gain")
        names = self.booster_.booster_.feature_name()
        return pd.Series(gain, index=names, name="gain").sort_values(ascending=False)


def choose_calibration(
    y_val: np.ndarray, proba_val: np.ndarray, *, seed: int = 0, min_gain: float = 0.3
) -> tuple[IsotonicRegression | None, dict[str, float]]:
    """Decide honestly whether isotonic calibration helps on the validation window.

    The window is split in two random halves; isotonic is fitted on one half and
    its ECE measured on the other (and vice versa), so the reported calibrated
    ECE is never measured on the data the calibrator saw. Calibration is adopted
    only when it cuts the cross-fitted ECE by at least ``min_gain`` (relative).

    Returns
    -------
    calibrator : IsotonicRegression or None
        Fitted on the whole validation window when adopted, else None.
    report : dict
        ``ece_raw``, ``ece_isotonic_crossfit`` and ``calibrated`` (0/1).
    """
    y_val = np.asarray(y_val, dtype=float)
    proba_val = np.asarray(proba_val, dtype=float)
    rng = np.random.default_rng(seed)
    half = rng.random(len(y_val)) < 0.5
    calibrated = np.empty_like(proba_val)
    for fit_mask in (half, ~half):
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(proba_val[fit_mask], y_val[fit_mask])
        calibrated[~fit_mask] = iso.predict(proba_val[~fit_mask])
    ece_raw = expected_calibration_error(y_val, proba_val)
    ece_iso = expected_calibration_error(y_val, calibrated)
    adopt = ece_iso < (1.0 - min_gain) * ece_raw and ece_raw > 0.02
    report = {"ece_raw": ece_raw, "ece_isotonic_crossfit": ece_iso, "calibrated": float(adopt)}
    if not adopt:
        return None, report
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(proba_val, y_val)
    return iso, report
