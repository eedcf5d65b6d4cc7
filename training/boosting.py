"""What the LightGBM models share: tree settings, window levels, the hold-out protocol.

Every boosted model starts from a baseline score plus its window's intercept (on its
link scale: log-odds or log), so the trees learn only within-window corrections. Inside
``fit``, with rows marked by :class:`~fidelite.training.holdout.RowRoles`:

1. each training window's intercept is set from the baseline alone;
2. the trees are fitted on the training rows, early-stopped on the held-out rows (which
   reuse the intercept of their comparable window, :mod:`~fidelite.training.levels`);
3. every window with known outcomes (training, level-only and, once it has been
   predicted, the held-out one) gets its intercept given the trees: ``levels_``;
4. what the model predicted for the held-out rows is kept (``validation_``): the
   calibrators, intervals and validation metrics are fitted on it.

The shipped model is the one fitted in step 2: it never saw the held-out window.
:meth:`BoostedModel._fit_booster` is the one seam ``training.distributed`` overrides to
fit on a Dask cluster.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from fidelite.training.encoding import Matrix
from fidelite.training.forest import FOREST_MIN_ROWS, Forest
from fidelite.training.holdout import HOLDOUT, LEVEL, TRAIN, HeldOut, RowRoles, window_array
from fidelite.training.levels import LevelChoice, WindowLevels
from fidelite.training.single_row import predict_one

__all__ = [
    "BoostedModel",
    "EarlyStoppingSet",
    "Trees",
    "booster_predict",
    "small_batch_threads",
    "eval_set_kwargs",
    "rows_of",
]

#: Held-out rows a fit early-stops on: (X_val, y_val, init_score_val).
EarlyStoppingSet = tuple[Matrix, np.ndarray, np.ndarray]

# LightGBM 4.7 renamed eval_set to eval_X/eval_y (the old name warns); support both.
_HAS_EVAL_X = "eval_X" in inspect.signature(lgb.LGBMModel.fit).parameters


@dataclass(frozen=True)
class Trees:
    """Size and learning rate of a boosted model (LightGBM parameters of the same names).

    Attributes
    ----------
    n_estimators : int
        Most trees; early stopping on the held-out window usually picks fewer.
    learning_rate : float
    num_leaves : int
        Leaves per tree.
    min_child_samples : int
        Fewest training rows per leaf.
    early_stopping_rounds : int
        Patience on the held-out window; 0 grows all ``n_estimators`` trees.
    """

    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    early_stopping_rounds: int = 30


def eval_set_kwargs(X_val: Matrix, y_val: np.ndarray) -> dict[str, Any]:
    """Validation-set keyword arguments for ``LGBMModel.fit`` on any LightGBM 4.x."""
    if _HAS_EVAL_X:
        return {"eval_X": (X_val,), "eval_y": (np.asarray(y_val),)}
    return {"eval_set": [(X_val, np.asarray(y_val))]}


#: Below this many rows a prediction runs on one thread (see :func:`small_batch_threads`).
SMALL_BATCH_ROWS = 256


def small_batch_threads(n_rows: int) -> dict[str, int]:
    """``Booster.predict`` keyword arguments for a batch of ``n_rows`` matrix rows.

    Small batches (a served customer is 1-14 rows) run on one thread: waking LightGBM's
    OpenMP team costs more than the trees, and on a busy machine much more (measured
    0.25-1.2 ms per one-row call with every thread vs 0.05-0.10 ms with one). Larger
    batches keep the booster's own thread setting. Same predictions either way.
    """
    return {"num_threads": 1} if n_rows < SMALL_BATCH_ROWS else {}


def booster_predict(estimator: lgb.LGBMModel, X: Matrix, **kwargs: Any) -> np.ndarray:
    """``predict`` of a fitted LightGBM estimator on either matrix form.

    A numpy matrix (``FeatureEncoder.transform_array``) goes straight to the underlying
    ``Booster``: the scikit-learn wrapper's input checks cost ~10 ms per call, which
    dominates single-customer scoring. One row goes through LightGBM's single-row API
    (:func:`~fidelite.training.single_row.predict_one`).
    """
    if isinstance(X, np.ndarray):
        # A caller's own thread count (the uplift learners pass theirs) wins.
        return predict_one(estimator.booster_, X, **{**small_batch_threads(len(X)), **kwargs})
    return estimator.predict(X, **kwargs)


#: Most as-of days whose level choice a model remembers.
_LEVEL_CACHE_SIZE = 64


def rows_of(X: Matrix, mask: np.ndarray) -> Matrix:
    """The rows of a frame or an array selected by a boolean mask."""
    return X.loc[mask] if isinstance(X, pd.DataFrame) else X[mask]


class BoostedModel(BaseEstimator):
    """Base of the boosted models: settings, levels, the two-step fit, link-scale scores.

    Subclasses add their own parameters to ``__init__`` and give the LightGBM estimator
    (:meth:`_lightgbm`), the starting score (:meth:`_start`), the intercept of a window
    (:meth:`_window_level`) and the inverse link (:meth:`_inverse_link`).

    Parameters
    ----------
    trees : Trees
        LightGBM size and learning rate.
    n_jobs : int
        LightGBM threads.
    random_state : int
        Seed for LightGBM's bagging and feature sampling.

    Attributes
    ----------
    estimator_ : lightgbm.LGBMClassifier or LGBMRegressor
        The shipped model, fitted on the training rows.
    best_iteration_ : int
        Trees used (early-stopping optimum on the held-out rows, or all of them).
    feature_names_ : list of str
        Columns of the training matrix, i.e. the column order of a numpy ``X``.
    levels_ : WindowLevels
        Intercepts of every window with known outcomes.
    holdout_level_ : LevelChoice or None
        The intercept the held-out rows were predicted with (from another window).
    validation_ : HeldOut or None
        What the shipped model predicted for the held-out rows.
    """

    def __init__(self, trees: Trees, n_jobs: int, random_state: int) -> None:
        self.trees = trees
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -------------------------------------------------------------- subclass hooks
    def _lightgbm(self, n_estimators: int) -> lgb.LGBMModel:
        """An unfitted LightGBM estimator with ``n_estimators`` trees."""
        raise NotImplementedError

    def _start(self, X: Matrix) -> np.ndarray:
        """The baseline score each row starts from (link scale), shape (n,)."""
        raise NotImplementedError

    def _window_level(self, score: np.ndarray, y: np.ndarray) -> float:
        """The intercept that makes the mean prediction of one window match ``y``."""
        raise NotImplementedError

    def _inverse_link(self, score: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _settings(self, n_estimators: int) -> dict[str, Any]:
        """LightGBM keyword arguments shared by every boosted model."""
        return {
            "n_estimators": n_estimators,
            "learning_rate": self.trees.learning_rate,
            "num_leaves": self.trees.num_leaves,
            "min_child_samples": self.trees.min_child_samples,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "n_jobs": self.n_jobs,
            "random_state": self.random_state,
            "verbose": -1,
        }

    def _names(self, X: Matrix) -> list[str]:
        """Column names of ``X``: a frame's own, else the training matrix's (numpy ``X``)."""
        return [] if isinstance(X, pd.DataFrame) else self.feature_names_

    # ------------------------------------------------------------------- fitting
    def _fit_booster(
        self,
        estimator: lgb.LGBMModel,
        X: Matrix,
        y: np.ndarray,
        init_score: np.ndarray,
        validation: EarlyStoppingSet | None = None,
    ) -> tuple[lgb.LGBMModel, int | None]:
        """Fit ``estimator`` in-process; return it and the early-stopping tree count.

        ``validation`` is ``(X_val, y_val, init_score_val)`` to early-stop on (None: grow
        every tree, and the count returned is None). The seam ``training.distributed``
        overrides to fit on Dask.
        """
        kwargs: dict[str, Any] = {"init_score": init_score}
        if validation is not None:
            X_val, y_val, init_val = validation
            kwargs.update(eval_set_kwargs(X_val, y_val))
            kwargs["eval_init_score"] = [init_val]
            stop = lgb.early_stopping(self.trees.early_stopping_rounds, verbose=False)
            kwargs["callbacks"] = [stop]
        estimator.fit(X, y, **kwargs)
        return estimator, (estimator.best_iteration_ if validation is not None else None)

    def _fit_windows(
        self, X: Matrix, y: np.ndarray, window: object, roles: RowRoles | None
    ) -> None:
        """Steps 1-4 of the module docstring, on targets ``y`` (link-ready)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)
        cutoffs = window_array(window, len(y))
        roles = roles or RowRoles(np.zeros(len(y), np.int8), None, "none")
        train, held = roles.role == TRAIN, roles.role == HOLDOUT
        self.feature_names_ = list(X.columns) if isinstance(X, pd.DataFrame) else []
        start = self._start(X)
        first = self._levels(start, y, cutoffs, roles.role == LEVEL, train)
        offset = np.zeros(len(y))
        for cutoff, level in zip(first.cutoffs, first.offsets, strict=True):
            offset[cutoffs == np.datetime64(cutoff)] = level
        validation = None
        if held.any() and self.trees.early_stopping_rounds:
            choice = first.choose(roles.holdout_cutoff, exclude=self._exclude(roles))
            validation = (rows_of(X, held), y[held], start[held] + choice.offset)
        self.estimator_, best = self._fit_booster(
            self._lightgbm(self.trees.n_estimators),
            rows_of(X, train),
            y[train],
            start[train] + offset[train],
            validation,
        )
        self.best_iteration_ = int(best) if best else self.trees.n_estimators
        score = start + self._raw_score(X)
        self.levels_ = self._levels(score, y, cutoffs, roles.role == LEVEL, train)
        self.holdout_level_: LevelChoice | None = None
        self.validation_: HeldOut | None = None
        if held.any():
            self._predict_held_out(X, y, score, held, roles)

    def _exclude(self, roles: RowRoles) -> pd.Timestamp | None:
        return roles.holdout_cutoff if roles.mode == "time" else None

    def _levels(
        self,
        score: np.ndarray,
        y: np.ndarray,
        cutoffs: np.ndarray,
        level_rows: np.ndarray,
        train: np.ndarray,
    ) -> WindowLevels:
        known = train | level_rows
        days = np.unique(cutoffs[known])
        offsets = [
            self._window_level(score[known & (cutoffs == d)], y[known & (cutoffs == d)])
            for d in days
        ]
        return WindowLevels([pd.Timestamp(d) for d in days], offsets)

    def _predict_held_out(
        self, X: Matrix, y: np.ndarray, score: np.ndarray, held: np.ndarray, roles: RowRoles
    ) -> None:
        """``validation_`` with the comparable window's level; then the held-out window's
        own level joins ``levels_`` (its outcomes are known once it has been predicted)."""
        cutoff = roles.holdout_cutoff
        self.holdout_level_ = self.levels_.choose(cutoff, exclude=self._exclude(roles))
        index = X.index[held] if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(y))[held]
        predicted = self._inverse_link(score[held] + self.holdout_level_.offset)
        self.validation_ = HeldOut(index, cutoff, y[held].astype(float), predicted)
        if roles.mode == "time":
            own = self._window_level(score[held], y[held])
            self.levels_ = WindowLevels(
                [*self.levels_.cutoffs, cutoff], [*self.levels_.offsets, own]
            )

    # ---------------------------------------------------------------- prediction
    def _raw_score(self, X: Matrix) -> np.ndarray:
        """What the trees add to the starting score, shape (n,).

        A large numpy batch is scored by compiled loops over the trees
        (:class:`~fidelite.training.forest.Forest`: LightGBM's bits, about half its time).
        """
        if isinstance(X, np.ndarray) and len(X) >= FOREST_MIN_ROWS:
            return self.compiled_trees().raw_score(X)
        return booster_predict(
            self.estimator_, X, raw_score=True, num_iteration=self.best_iteration_
        ).astype(float)

    def compiled_trees(self) -> Forest:
        """The shipped trees for compiled evaluation (built once per fit, not pickled)."""
        forest = self.__dict__.get("_forest")
        if forest is None or forest[0] is not self.estimator_:
            built = Forest.from_booster(self.estimator_.booster_, self.best_iteration_)
            forest = self.__dict__["_forest"] = (self.estimator_, built)
        return forest[1]

    def level_for(self, as_of: object = None) -> LevelChoice:
        """The intercept for the window starting at ``as_of`` (default: the newest window's).

        Remembered per ``as_of`` for the current ``levels_`` (a served model looks up the
        same day for every request; derived state, not pickled).
        """
        if not (as_of is None or isinstance(as_of, str | pd.Timestamp)):
            return self._choose_level(as_of)
        cache = self.__dict__.get("_level_cache")
        if cache is None or cache[0] is not self.levels_ or len(cache[1]) >= _LEVEL_CACHE_SIZE:
            cache = self.__dict__["_level_cache"] = (self.levels_, {})
        choice = cache[1].get(as_of)
        if choice is None:
            choice = cache[1][as_of] = self._choose_level(as_of)
        return choice

    def _choose_level(self, as_of: object) -> LevelChoice:
        if as_of is None:
            return self.levels_.choose(self.levels_.cutoffs[-1])
        return self.levels_.choose(pd.Timestamp(as_of))

    def __getstate__(self) -> dict:
        # a copy: object.__getstate__ may hand back the live __dict__
        state = dict(super().__getstate__())
        state.pop("_level_cache", None)
        state.pop("_forest", None)
        return state

    def predict_mean(
        self,
        X: Matrix,
        *,
        as_of: object = None,
        level: LevelChoice | None = None,
        raw_score: np.ndarray | None = None,
    ) -> np.ndarray:
        """The prediction on the response scale, shape (n,).

        ``level`` (a :class:`LevelChoice`) overrides the intercept looked up for ``as_of``.
        ``raw_score`` (shape (n,)) is what the trees add for ``X`` when the caller already
        has it (from a ``pred_leaf`` pass: ``PathAttribution.raw_score``); the booster is
        then not called again.
        """
        choice = level if level is not None else self.level_for(as_of)
        trees = self._raw_score(X) if raw_score is None else raw_score
        return self._inverse_link(self._start(X) + trees + choice.offset)

    def feature_importance(self) -> pd.Series:
        """Total split gain per feature of the shipped model, sorted descending."""
        booster = self.estimator_.booster_
        gain = booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=booster.feature_name(), name="gain").sort_values(
            ascending=False
        )
