"""LightGBM churn classifier and the feature encoding shared by the ML models.

The encoder turns a ``build_features`` frame (plus the baseline columns added by
``training.baseline.BaselineModel``) into the fixed numeric/categorical matrix LightGBM
sees. Category lists are frozen at fit so codes mean the same thing at scoring
time, and optional columns missing at scoring time become NaN (LightGBM routes
missing values down a learned branch) instead of failing.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

# OpenMP worker threads that busy-wait at LightGBM's many per-leaf barriers steal
# the core their peer needs whenever the machine is shared: 100 boosting rounds on
# 130k rows took 20-50 s with 2 threads on a loaded 2-core box instead of 2-3 s
# with sleeping waiters. The price on an idle machine is a futex wake per barrier
# (20k-customer fit 3.2 s -> 6.5 s; a short GOMP_SPINCOUNT was 2.5x slower than
# this under load), so the bounded worst case wins. libgomp reads it when
# LightGBM loads it, so it must be set before the import; the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from fidelite.training.evaluate import expected_calibration_error

__all__ = [
    "CATEGORICAL_FEATURES",
    "NON_FEATURE_COLUMNS",
    "ChurnModel",
    "FeatureEncoder",
    "baseline_log_odds",
    "choose_calibration",
    "eval_set_kwargs",
    "model_column",
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


def unsupported_features(
    train: pd.DataFrame, reference: pd.DataFrame, columns: list[str], max_share: float
) -> list[str]:
    """Numeric columns where more than ``max_share`` of ``reference`` is outside ``train``'s range.

    Parameters
    ----------
    train : DataFrame, shape (n_train, ...)
        Stacked training rows.
    reference : DataFrame, shape (n_reference, ...)
        Rows the model will score (no labels needed).
    columns : list of str
        Candidate numeric columns; those absent from ``reference`` are kept.
    max_share : float
        Largest tolerated share (0-1) of non-missing reference values below the
        training minimum or above the training maximum.

    Returns
    -------
    list of str
        The unsupported columns, in ``columns`` order. A typical case is tenure
        (``T``) when the training windows are all younger than the scored cohort.
    """
    present = [col for col in columns if col in reference.columns]

    def numeric(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[present].apply(pd.to_numeric, errors="coerce").astype("float64")

    values = numeric(train)
    lo, hi = values.min(), values.max()
    ref = numeric(reference)
    outside = ref.lt(lo, axis=1) | ref.gt(hi, axis=1)
    share = outside.sum() / ref.notna().sum().clip(lower=1)
    return [col for col in present if share[col] > max_share]


class FeatureEncoder:
    """Freeze the model's feature list and category levels.

    Parameters
    ----------
    categorical_features : tuple of str
        Columns encoded as pandas categoricals.
    exclude : tuple of str
        Numeric columns never used as model inputs.
    max_unsupported_share : float
        With a ``reference`` frame at fit, numeric columns for which more than
        this share of the reference rows lies outside the training range are
        dropped (see ``unsupported_features``). High on purpose: a column that
        still ranks a sizeable part of the scored rows (e.g. days since last
        purchase, which merely saturates) is worth keeping.

    Attributes
    ----------
    numeric_features_ : list of str
        Numeric and boolean columns seen at fit, in model order.
    categories_ : dict of str to list of str
        Category levels per categorical column, sorted.
    unsupported_features_ : list of str
        Numeric columns dropped because the reference rows lie outside the
        training range (empty without a reference).
    """

    def __init__(
        self,
        categorical_features: tuple[str, ...] = CATEGORICAL_FEATURES,
        exclude: tuple[str, ...] = (),
        max_unsupported_share: float = 0.9,
    ) -> None:
        self.categorical_features = categorical_features
        self.exclude = exclude
        self.max_unsupported_share = max_unsupported_share

    def fit(self, features: pd.DataFrame, reference: pd.DataFrame | None = None) -> FeatureEncoder:
        """Learn columns and levels from a features frame of shape (n_customers, n_columns).

        ``reference`` (optional, unlabelled) holds the rows the model will score,
        e.g. the features at ``as_of``. A column that places almost all of them
        outside the training range cannot rank them (trees send every such row
        down the same edge branch) and only adds the bias of extrapolating, so
        it is left out. No labels are involved, so this is point-in-time safe.
        """
        skip = set(NON_FEATURE_COLUMNS) | set(self.categorical_features) | set(self.exclude)
        self.numeric_features_ = [
            col
            for col in features.columns
            if col not in skip
            and (
                pd.api.types.is_numeric_dtype(features[col])
                or pd.api.types.is_bool_dtype(features[col])
            )
        ]
        self.unsupported_features_: list[str] = []
        if reference is not None:
            self.unsupported_features_ = unsupported_features(
                features, reference, self.numeric_features_, self.max_unsupported_share
            )
            self.numeric_features_ = [
                col for col in self.numeric_features_ if col not in self.unsupported_features_
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
        matrix = pd.DataFrame(
            self._numeric_array(features), index=features.index, columns=self.numeric_features_
        )
        for col, levels in self._level_indexes().items():
            codes = self._category_codes(features, col, levels)
            matrix[col] = pd.Categorical.from_codes(codes, categories=self.categories_[col])
        return matrix

    def _level_indexes(self) -> dict[str, pd.Index]:
        """``categories_`` as lookup indexes, built once (not pickled: derived state)."""
        cached = self.__dict__.get("_level_index_cache")
        if cached is None or cached[0] is not self.categories_:
            indexes = {
                col: pd.Index(levels, dtype=object) for col, levels in self.categories_.items()
            }
            cached = (self.categories_, indexes)
            self.__dict__["_level_index_cache"] = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_level_index_cache", None)
        return state

    def transform_array(self, features: pd.DataFrame) -> np.ndarray:
        """The model matrix as float64, shape (n_rows, len(feature_names_)).

        Same values as ``transform`` except that categorical columns hold their
        level's position in ``categories_`` (NaN when missing or unseen), which is
        exactly what LightGBM turns a pandas categorical into. Meant for the
        models' numpy fast path (``ChurnModel``/``ClvModel`` accept either form),
        where building a frame of categoricals would cost more than scoring.
        """
        numeric = self._numeric_array(features)
        if not self.categories_:
            return numeric
        codes = [
            self._category_codes(features, col, levels).astype("float64")
            for col, levels in self._level_indexes().items()
        ]
        matrix = np.column_stack([numeric, *codes])
        matrix[:, numeric.shape[1] :][matrix[:, numeric.shape[1] :] < 0] = np.nan
        return matrix

    def _numeric_array(self, features: pd.DataFrame) -> np.ndarray:
        """Numeric columns as float64, shape (n_rows, len(numeric_features_)).

        Columns already numeric or boolean are converted in one block; only
        object/string columns (e.g. JSON rows with text in them) go through
        ``pd.to_numeric`` one by one, with unparsable values becoming NaN.
        """
        out = np.full((len(features), len(self.numeric_features_)), np.nan)
        positions = features.columns.get_indexer(self.numeric_features_)
        dtypes = features.dtypes.to_numpy()
        fast, slow = [], []
        for target, source in enumerate(positions):
            if source < 0:
                continue
            (fast if getattr(dtypes[source], "kind", "O") in "biuf" else slow).append(
                (target, source)
            )
        if fast:
            targets, sources = zip(*fast, strict=False)
            out[:, list(targets)] = features.iloc[:, list(sources)].to_numpy(
                dtype="float64", na_value=np.nan
            )
        if slow:
            targets, sources = zip(*slow, strict=False)
            out[:, list(targets)] = _objects_to_float(features.iloc[:, list(sources)])
        return out

    @staticmethod
    def _category_codes(features: pd.DataFrame, col: str, levels: pd.Index) -> np.ndarray:
        """Position of each row's level in ``levels``, shape (n_rows,); -1 if missing/unseen."""
        if col not in features.columns:
            return np.full(len(features), -1, dtype=np.int64)
        raw = features[col]
        if raw.dtype == object or not pd.api.types.is_string_dtype(raw.dtype):
            # Anything but a text column (e.g. ints from JSON) is compared as text,
            # like the levels; missing values stay missing.
            raw = raw.where(raw.isna(), raw.astype(str))
        return levels.get_indexer(raw.to_numpy(dtype=object, na_value=None))


def _objects_to_float(frame: pd.DataFrame) -> np.ndarray:
    """Non-numeric columns as float64, shape (n_rows, n_columns); unparsable values NaN.

    JSON rows give object columns of numbers and None (a column that is null in a
    one-row request has no numeric dtype): those convert as one block. Anything
    else (text) falls back to ``pd.to_numeric(errors="coerce")`` per column.
    """
    values = frame.to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = np.nan
    try:
        return values.astype("float64")
    except (TypeError, ValueError):
        return np.column_stack(
            [
                pd.to_numeric(frame.iloc[:, i], errors="coerce").to_numpy(
                    dtype="float64", na_value=np.nan
                )
                for i in range(frame.shape[1])
            ]
        ).reshape(len(frame), frame.shape[1])


Matrix = pd.DataFrame | np.ndarray
"""A model matrix: ``FeatureEncoder.transform`` (frame) or ``transform_array`` (numpy)."""


def model_column(X: Matrix, name: str, feature_names: list[str]) -> np.ndarray | None:
    """Column ``name`` of a model matrix as float64, shape (n,); None when it is absent.

    ``feature_names`` gives the column order of a numpy ``X`` (ignored for frames).
    """
    if isinstance(X, pd.DataFrame):
        return X[name].to_numpy(dtype=float) if name in X.columns else None
    if name not in feature_names:
        return None
    return np.asarray(X[:, feature_names.index(name)], dtype=float)


def booster_predict(model: lgb.LGBMModel, X: Matrix, **kwargs: Any) -> np.ndarray:
    """``predict`` of a fitted LightGBM estimator on either matrix form.

    A numpy matrix (``FeatureEncoder.transform_array``) goes straight to the
    underlying ``Booster``: the scikit-learn wrapper's input checks cost ~10 ms
    per call, which dominates single-customer scoring. Frames keep the wrapper,
    which also re-maps categoricals whose levels differ from the training ones.
    """
    if isinstance(X, np.ndarray):
        return model.booster_.predict(X, **kwargs)
    return model.predict(X, **kwargs)


def fitted_feature_names(model: Any) -> list[str]:
    """Column order a fitted ``ChurnModel``/``ClvModel`` expects (``feature_names_``).

    Models pickled before ``feature_names_`` existed read it from the booster.
    """
    names = model.__dict__.get("feature_names_")
    if names is None:
        names = list(model.booster_.feature_name_)
        model.__dict__["feature_names_"] = names
    return names


def baseline_log_odds(X: Matrix, feature_names: list[str] | None = None) -> np.ndarray:
    """Churn log-odds of the BG/NBD baseline, shape (n,); 0 (p = 0.5) where it is missing.

    Reads ``baseline_churn_probability`` (added by ``training.baseline.BaselineModel``),
    clipped away from 0 and 1 so the logit stays finite. A numpy ``X`` needs
    ``feature_names`` (its column order).
    """
    p = model_column(X, "baseline_churn_probability", feature_names or [])
    if p is None:
        return np.zeros(len(X))
    p = np.clip(np.nan_to_num(p, nan=0.5), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return np.log(p / (1.0 - p))


class ChurnModel:
    """Gradient-boosted churn classifier with optional post-hoc calibration.

    Why boost from the baseline: trees cannot extrapolate, so a classifier
    trained on windows where customers were young holds their tenure-driven
    risk flat as they age. The BG/NBD churn probability extrapolates in ``T``
    by construction; starting the booster from its log-odds (``init_score``)
    leaves the trees to learn only corrections, and with no useful signal the
    model falls back to the baseline instead of to a stale average.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM params
        Small trees on large leaves: the corrections must hold for customers
        older than any in the training windows. Chosen with data before
        ``as_of`` only, by training on the oldest backtest window and scoring
        the newest (the largest age gap a history offers): 15 leaves x 200 rows
        beat 31 x 50 there on both CDNOW (ROC-AUC 0.733 vs 0.723) and the demo
        data (0.884 vs 0.883).
    boost_from_baseline : bool
        Start from ``baseline_log_odds(X)`` instead of the training churn rate.
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
    feature_names_ : list of str
        Columns of the training matrix, i.e. the column order of a numpy ``X``.
    calibrator_ : IsotonicRegression or None
        Applied on top of the raw probability when set by ``set_calibrator``.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 200,
        early_stopping_rounds: int = 30,
        boost_from_baseline: bool = True,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.boost_from_baseline = boost_from_baseline
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
            "boost_from_baseline": self.boost_from_baseline,
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
        on log-loss over that window (scored from the same starting point).
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
        if self.boost_from_baseline:
            fit_kwargs["init_score"] = baseline_log_odds(X)
        if X_val is not None and y_val is not None and self.early_stopping_rounds:
            fit_kwargs.update(eval_set_kwargs(X_val, y_val))
            if self.boost_from_baseline:
                fit_kwargs["eval_init_score"] = [baseline_log_odds(X_val)]
            fit_kwargs["callbacks"] = [
                lgb.early_stopping(self.early_stopping_rounds, verbose=False)
            ]
        best = self._fit_booster(X, np.asarray(y), **fit_kwargs)
        self.best_iteration_ = int(best) if best else self.n_estimators
        self.feature_names_ = list(X.columns)
        self.calibrator_: IsotonicRegression | None = None
        return self

    def _fit_booster(self, X: pd.DataFrame, y: np.ndarray, **fit_kwargs: Any) -> int | None:
        """Fit ``booster_`` in-process; return the early-stopping tree count (None without).

        The one seam ``training.distributed.DaskChurnModel`` overrides to fit on Dask.
        """
        self.booster_.fit(X, y, **fit_kwargs)
        return self.booster_.best_iteration_ if "callbacks" in fit_kwargs else None

    def predict_raw_proba(self, X: Matrix) -> np.ndarray:
        """Uncalibrated churn probability, shape (n,).

        ``X`` is ``FeatureEncoder.transform`` (frame) or ``transform_array`` (numpy,
        in ``feature_names_`` order; the fast path for small batches).
        """
        raw = booster_predict(self.booster_, X, raw_score=True, num_iteration=self.best_iteration_)
        # LightGBM never stores init_score in the model: add the starting point back.
        if getattr(self, "boost_from_baseline", False):
            names = [] if isinstance(X, pd.DataFrame) else fitted_feature_names(self)
            raw = raw + baseline_log_odds(X, names)
        return 1.0 / (1.0 + np.exp(-raw))

    def predict_proba(self, X: Matrix) -> np.ndarray:
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
