"""The model matrix: which feature columns the models see, and how they are encoded.

:class:`FeatureEncoder` turns a ``build_features`` frame plus the ``baseline_*`` columns
into the fixed numeric/categorical matrix LightGBM sees. Which columns are model inputs
and which are categorical comes from :mod:`fidelite.features.contract` (current-state
consent and free text are never inputs); the baseline columns are training's own.
Category lists are frozen at fit so codes mean the same thing at scoring time, and
optional columns missing at scoring time become NaN (LightGBM routes missing values
down a learned branch) instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from fidelite.features.contract import categorical_features, model_input_features
from fidelite.training.column_codes import array_codes, numeric_block, series_codes

__all__ = [
    "BASELINE_INPUTS",
    "FeatureEncoder",
    "Matrix",
    "model_column",
    "unsupported_features",
]

#: Columns added by the BG/NBD + Gamma-Gamma baseline that the models learn from.
BASELINE_INPUTS = (
    "baseline_p_alive",
    "baseline_expected_purchases",
    "baseline_expected_spend",
    "baseline_clv",
    "baseline_churn_probability",
)

Matrix = pd.DataFrame | np.ndarray
"""A model matrix: ``FeatureEncoder.transform`` (frame) or ``transform_array`` (numpy)."""


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


def model_column(X: Matrix, name: str, feature_names: list[str]) -> np.ndarray | None:
    """Column ``name`` of a model matrix as float64, shape (n,); None when it is absent.

    ``feature_names`` gives the column order of a numpy ``X`` (ignored for frames).
    """
    if isinstance(X, pd.DataFrame):
        return X[name].to_numpy(dtype=float) if name in X.columns else None
    if name not in feature_names:
        return None
    return np.asarray(X[:, feature_names.index(name)], dtype=float)


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """Freeze the model's feature list and category levels.

    Parameters
    ----------
    exclude : tuple of str
        Columns never used as model inputs, on top of what the contract excludes.
    extra_inputs : tuple of str
        Numeric columns outside the contract that are model inputs too (a model's own
        derived columns, such as another model's scores).
    extra_categorical : tuple of str
        Categorical columns outside the contract that are model inputs too.
    max_unsupported_share : float
        With a ``reference`` frame at fit, numeric columns for which more than
        this share of the reference rows lies outside the training range are
        dropped (see :func:`unsupported_features`). High on purpose: a column that
        still ranks a sizeable part of the scored rows (e.g. days since last
        purchase, which merely saturates) is worth keeping.

    Attributes
    ----------
    numeric_features_ : list of str
        Numeric and boolean model inputs seen at fit, in model order.
    categories_ : dict of str to list of str
        Category levels per categorical model input, sorted.
    unsupported_features_ : list of str
        Numeric columns dropped because the reference rows lie outside the
        training range (empty without a reference).
    feature_names_ : list of str
        All model inputs in order: numeric first, then categorical.
    """

    def __init__(
        self,
        exclude: tuple[str, ...] = (),
        extra_inputs: tuple[str, ...] = (),
        extra_categorical: tuple[str, ...] = (),
        max_unsupported_share: float = 0.9,
    ) -> None:
        self.exclude = exclude
        self.extra_inputs = extra_inputs
        self.extra_categorical = extra_categorical
        self.max_unsupported_share = max_unsupported_share

    def fit(
        self, X: pd.DataFrame, y: Any = None, *, reference: pd.DataFrame | None = None
    ) -> FeatureEncoder:
        """Learn columns and levels from a features frame of shape (n_customers, n_columns).

        ``reference`` (optional, unlabelled) holds the rows the model will score,
        e.g. the features at ``as_of``. A column that places almost all of them
        outside the training range cannot rank them (trees send every such row
        down the same edge branch) and only adds the bias of extrapolating, so
        it is left out. No labels are involved, so this is point-in-time safe.
        """
        categorical = {*categorical_features(), *self.extra_categorical}
        extra = {*BASELINE_INPUTS, *self.extra_inputs, *self.extra_categorical}
        inputs = [
            col
            for col in X.columns
            if col not in self.exclude and (col in extra or col in model_input_features([col]))
        ]
        numeric = [
            col
            for col in inputs
            if col not in categorical
            and (pd.api.types.is_numeric_dtype(X[col]) or pd.api.types.is_bool_dtype(X[col]))
        ]
        self.unsupported_features_: list[str] = []
        if reference is not None:
            self.unsupported_features_ = unsupported_features(
                X, reference, numeric, self.max_unsupported_share
            )
        self.numeric_features_ = [c for c in numeric if c not in self.unsupported_features_]
        self.categories_ = {
            col: sorted(X[col].dropna().astype(str).unique().tolist())
            for col in inputs
            if col in categorical
        }
        self.feature_names_ = [*self.numeric_features_, *self.categories_]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the model matrix, shape (n_rows, len(feature_names_)).

        Missing columns become NaN, unseen category levels become NaN, booleans
        become 0/1 floats; the index is preserved. Numbers are float32 when every input
        value is exactly a float32 (compact training windows: half the memory, the same
        values, so the same LightGBM bins), else float64.
        """
        numeric = self._numeric_array(X, _exact_dtype(X, self.numeric_features_))
        matrix = pd.DataFrame(numeric, index=X.index, columns=self.numeric_features_, copy=False)
        for col, levels in self._level_indexes().items():
            codes = _category_codes(X, col, levels)
            matrix[col] = pd.Categorical.from_codes(codes, categories=self.categories_[col])
        return matrix

    def transform_array(self, X: pd.DataFrame) -> np.ndarray:
        """The model matrix as float64, shape (n_rows, len(feature_names_)).

        Same values as ``transform`` except that categorical columns hold their
        level's position in ``categories_`` (NaN when missing or unseen), which is
        exactly what LightGBM turns a pandas categorical into. This is the fast path
        for small requests, where a frame of categoricals costs more than scoring.
        """
        dtype = _exact_dtype(X, self.numeric_features_)
        numeric = self._numeric_array(X, dtype)
        if not self.categories_:
            return numeric
        codes = [
            _category_codes(X, col, levels).astype(dtype)
            for col, levels in self._level_indexes().items()
        ]
        matrix = np.column_stack([numeric, *codes])
        categorical_part = matrix[:, numeric.shape[1] :]
        categorical_part[categorical_part < 0] = np.nan
        return matrix

    def transform_columns(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """``transform_array`` of column arrays, shape (n, len(feature_names_)), no frame.

        Parameters
        ----------
        columns : mapping of str -> ndarray, shape (n,)
            Feature columns: numeric or boolean arrays, or object arrays (text, flags,
            numbers with None for missing). Absent columns are missing.
        n : int
            Number of rows.

        Returns the same values as ``transform_array`` of a frame holding these columns:
        this is the array path of ``FideliteModel.predict_arrays``.
        """
        out = numeric_block(columns, self.numeric_features_, n)
        if not self.categories_:
            return out
        codes = [
            array_codes(columns.get(col), n, levels, lookup).astype("float64")
            for (col, levels), lookup in zip(
                self._level_indexes().items(), self._level_lookups(), strict=True
            )
        ]
        matrix = np.column_stack([out, *codes])
        categorical_part = matrix[:, out.shape[1] :]
        categorical_part[categorical_part < 0] = np.nan
        return matrix

    def _level_lookups(self) -> list[dict[str, int]]:
        """``categories_`` as dicts of level -> position (derived state, not pickled)."""
        cached = self.__dict__.get("_level_lookup_cache")
        if cached is None or cached[0] is not self.categories_:
            lookups = [
                {level: i for i, level in enumerate(levels)} for levels in self.categories_.values()
            ]
            cached = (self.categories_, lookups)
            self.__dict__["_level_lookup_cache"] = cached
        return cached[1]

    def _level_indexes(self) -> dict[str, pd.Index]:
        """``categories_`` as lookup indexes, built once (derived state, not pickled)."""
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
        state.pop("_level_lookup_cache", None)
        return state

    def _numeric_array(self, X: pd.DataFrame, dtype: type = np.float64) -> np.ndarray:
        """Numeric columns as ``dtype`` (float64/32), shape (n_rows, len(numeric_features_)).

        Columns already numeric or boolean are converted in one block; only
        object/string columns (e.g. JSON rows with text in them) go through
        ``pd.to_numeric`` one by one, with unparsable values becoming NaN.
        """
        out = np.full((len(X), len(self.numeric_features_)), np.nan, dtype=dtype)
        positions = X.columns.get_indexer(self.numeric_features_)
        dtypes = X.dtypes.to_numpy()
        fast, slow = [], []
        for target, source in enumerate(positions):
            if source >= 0:
                kind = getattr(dtypes[source], "kind", "O")
                (fast if kind in "biuf" else slow).append((target, source))
        if fast:  # straight into ``dtype``: no float64 copy of a float32 window
            targets, sources = zip(*fast, strict=True)
            numbers = X.iloc[:, list(sources)].to_numpy(dtype=dtype, na_value=np.nan)
            out[:, list(targets)] = numbers
        if slow:
            targets, sources = zip(*slow, strict=True)
            out[:, list(targets)] = _objects_to_float(X.iloc[:, list(sources)])
        return out


def _exact_dtype(X: pd.DataFrame, columns: list[str]) -> type:
    """float32 when every value of ``columns`` is exactly a float32, else float64: the
    compact training windows (``training.windows.compact``) then make float32 matrices,
    half the memory for the same values (so the same LightGBM bins and trees)."""
    for dtype, values in ((X[c].dtype, X[c]) for c in columns if c in X.columns):
        kind, size = getattr(dtype, "kind", "O"), getattr(dtype, "itemsize", 8)
        magnitude = np.abs(values.to_numpy(dtype=float, na_value=0.0)) if kind in "iu" else None
        small = kind in "iu" and (size <= 2 or np.max(magnitude, initial=0.0) < 2**24)
        if not (kind == "b" or (kind == "f" and size <= 4) or small):
            return np.float64
    return np.float32


def _category_codes(X: pd.DataFrame, col: str, levels: pd.Index) -> np.ndarray:
    """Position of each row's level in ``levels``, shape (n_rows,); -1 if missing/unseen."""
    if col not in X.columns:
        return np.full(len(X), -1, dtype=np.int64)
    return series_codes(X[col], levels)


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
