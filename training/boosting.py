"""What the LightGBM models share: tree settings, the hold-out protocol and prediction.

Both :class:`~fidelite.training.churn.ChurnModel` and
:class:`~fidelite.training.clv.ClvModel` boost from a baseline (``init_score``) on
stacked backtest windows, and fit in two steps inside ``fit``:

1. a model on every window but the newest, early-stopped on the newest (the held-out
   window), which fixes the number of trees; what it predicts on the held-out window
   is kept (:class:`~fidelite.training.holdout.HeldOut`) and is what calibrators,
   intervals and validation metrics are fitted on;
2. the shipped model, refitted on every window with that number of trees.

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

__all__ = ["BoostedModel", "EarlyStoppingSet", "Trees", "booster_predict", "eval_set_kwargs"]

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


def booster_predict(estimator: lgb.LGBMModel, X: Matrix, **kwargs: Any) -> np.ndarray:
    """``predict`` of a fitted LightGBM estimator on either matrix form.

    A numpy matrix (``FeatureEncoder.transform_array``) goes straight to the
    underlying ``Booster``: the scikit-learn wrapper's input checks cost ~10 ms
    per call, which dominates single-customer scoring. Frames keep the wrapper,
    which also re-maps categoricals whose levels differ from the training ones.
    """
    if isinstance(X, np.ndarray):
        return estimator.booster_.predict(X, **kwargs)
    return estimator.predict(X, **kwargs)


def _rows(X: Matrix, mask: np.ndarray) -> Matrix:
    return X.loc[mask] if isinstance(X, pd.DataFrame) else X[mask]


class BoostedModel(BaseEstimator):
    """Base of the boosted models: LightGBM settings, the two-step fit, raw scores.

    Subclasses add their own parameters to ``__init__`` and give the LightGBM class and
    objective (:meth:`_lightgbm`).

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
        The shipped model, fitted on every window.
    best_iteration_ : int
        Trees used (early-stopping optimum on the held-out window, or all of them).
    feature_names_ : list of str
        Columns of the training matrix, i.e. the column order of a numpy ``X``.
    """

    def __init__(self, trees: Trees, n_jobs: int, random_state: int) -> None:
        self.trees = trees
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _lightgbm(self, n_estimators: int) -> lgb.LGBMModel:
        """An unfitted LightGBM estimator with ``n_estimators`` trees (subclass hook)."""
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

    def _fit_booster(
        self,
        estimator: lgb.LGBMModel,
        X: Matrix,
        y: np.ndarray,
        init_score: np.ndarray,
        validation: EarlyStoppingSet | None = None,
    ) -> tuple[lgb.LGBMModel, int | None]:
        """Fit ``estimator`` in-process; return it and the early-stopping tree count.

        ``validation`` is ``(X_val, y_val, init_score_val)`` to early-stop on (None:
        grow every tree, and the count returned is None). The seam
        ``training.distributed`` overrides to fit on Dask.
        """
        kwargs: dict[str, Any] = {"init_score": init_score}
        if validation is not None:
            X_val, y_val, init_val = validation
            kwargs.update(eval_set_kwargs(X_val, y_val))
            kwargs["eval_init_score"] = [init_val]
            kwargs["callbacks"] = [
                lgb.early_stopping(self.trees.early_stopping_rounds, verbose=False)
            ]
        estimator.fit(X, y, **kwargs)
        return estimator, (estimator.best_iteration_ if validation is not None else None)

    def _fit_held_out(
        self,
        X: Matrix,
        y: np.ndarray,
        init_score: np.ndarray,
        held: np.ndarray,
        init_held: np.ndarray,
    ) -> lgb.LGBMModel:
        """Step 1: fit on the rows outside ``held``, early-stopped on ``held``.

        Sets ``best_iteration_`` and returns the fitted estimator, whose predictions
        on ``held`` are what the subclass calibrates on.
        """
        train = ~held
        validation = None
        if self.trees.early_stopping_rounds:
            validation = (_rows(X, held), y[held], init_held)
        estimator, best = self._fit_booster(
            self._lightgbm(self.trees.n_estimators),
            _rows(X, train),
            y[train],
            init_score[train],
            validation,
        )
        self.best_iteration_ = int(best) if best else self.trees.n_estimators
        return estimator

    def _fit_shipped(self, X: Matrix, y: np.ndarray, init_score: np.ndarray) -> None:
        """Step 2: ``estimator_`` on every row with ``best_iteration_`` trees."""
        if not hasattr(self, "best_iteration_"):
            self.best_iteration_ = self.trees.n_estimators
        self.feature_names_ = list(X.columns) if isinstance(X, pd.DataFrame) else []
        self.estimator_, _ = self._fit_booster(
            self._lightgbm(self.best_iteration_), X, y, init_score
        )

    def _reset(self) -> None:
        """Forget what an earlier ``fit`` learned (``fit`` always starts afresh)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)

    def _raw_score(self, X: Matrix, estimator: lgb.LGBMModel | None = None) -> np.ndarray:
        """Raw score (log-odds or log-mean) without the starting score, shape (n,)."""
        estimator = self.estimator_ if estimator is None else estimator
        return booster_predict(
            estimator, X, raw_score=True, num_iteration=self.best_iteration_
        ).astype(float)

    def feature_importance(self) -> pd.Series:
        """Total split gain per feature of the shipped model, sorted descending."""
        booster = self.estimator_.booster_
        gain = booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=booster.feature_name(), name="gain").sort_values(
            ascending=False
        )
