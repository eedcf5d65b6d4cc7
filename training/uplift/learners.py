"""Meta-learners of the conditional average treatment effect on LightGBM.

Each learner estimates ``tau(x) = E[Y | x, contacted] - E[Y | x, not contacted]`` for a
binary outcome ``Y`` (bought in the response window) from randomised campaign rows:

* :class:`TLearner` (two models): ``mu1(x) - mu0(x)``, one classifier per group;
* :class:`XLearner` (Kuenzel et al. 2019): imputes each row's effect with the other
  group's model, regresses the imputed effects per group and blends the two by the
  propensity, which suits unbalanced groups (a 20% control);
* :class:`DRLearner` (doubly robust, Kennedy 2023): regresses the AIPW pseudo-outcome
  built from cross-fitted outcome models and the known propensity;
* :class:`EnsembleLearner`: the mean of the three (or of those ``fit_uplift`` keeps).

The matrix ``X`` (shape (n_rows, n_features), float64) may contain the channel the row
was (or would have been) contacted on as a categorical column, and inputs derived from
it (``channel_column``: their positions). The control group's outcome model never sees
them (a message not sent cannot matter), so its estimate is the same whatever the
channel.
"""

from __future__ import annotations

import os

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold

from fidelite.training.booster_outputs import FOREST_MIN_ROWS, compiled_predict
from fidelite.training.boosting import booster_predict

__all__ = [
    "ENSEMBLE_MEMBERS",
    "LEARNERS",
    "DRLearner",
    "EnsembleLearner",
    "TLearner",
    "XLearner",
    "lgbm_predict",
]


def lgbm_predict(estimator: lgb.LGBMModel, X: np.ndarray) -> np.ndarray:
    """``estimator.predict(X)`` (a classifier's ``predict_proba(X)[:, 1]``), straight
    from its booster, shape (n_rows,).

    The scikit-learn wrapper's input checks cost more than the trees for a few rows, so
    the booster is called directly, with the wrapper's thread count (``n_jobs``): the
    booster's default, every OpenMP thread, costs several times more than one thread on
    a single customer's matrix.
    """
    if isinstance(X, np.ndarray) and len(X) >= FOREST_MIN_ROWS:
        predicted = compiled_predict(estimator.booster_, X)  # same bits, both cores
        if predicted is not None:
            return predicted
    n_jobs = getattr(estimator, "n_jobs", None)
    if isinstance(n_jobs, int) and n_jobs < 0:  # as scikit-learn: -1 = every core
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    threads = {"num_threads": n_jobs} if isinstance(n_jobs, int) and n_jobs > 0 else {}
    return booster_predict(estimator, X, **threads)


class _MetaLearner(BaseEstimator):
    """Shared LightGBM settings and helpers.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings
        Small, strongly regularised trees: uplift signals are weak next to the noise.
    categorical : tuple of int
        Column positions of categorical features in ``X``.
    channel_column : int, tuple of int or None
        Position(s) of the contact channel column and of the inputs derived from it
        (hidden from the control model).
    n_jobs : int
        LightGBM threads.
    random_state : int
        Seed of the trees' row/feature sampling and of the cross-fitting folds.
    """

    def __init__(
        self,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        categorical: tuple[int, ...] = (),
        channel_column: int | tuple[int, ...] | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.categorical = categorical
        self.channel_column = channel_column
        self.n_jobs = n_jobs
        self.random_state = random_state

    def lightgbm_models(self) -> list[lgb.LGBMModel]:
        """The fitted LightGBM models inside (its own and its members'), e.g. to build
        their compiled trees when a model is loaded."""
        found: list[lgb.LGBMModel] = []
        for name, value in vars(self).items():
            if not name.endswith("_"):
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, lgb.LGBMModel):
                    found.append(item)
                elif isinstance(item, _MetaLearner):
                    found.extend(item.lightgbm_models())
        return found

    def _params(self) -> dict:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            "n_jobs": self.n_jobs,
            "random_state": self.random_state,
            "verbose": -1,
        }

    def _fit_kwargs(self) -> dict:
        return {"categorical_feature": list(self.categorical)} if self.categorical else {}

    def _classifier(self, X: np.ndarray, y: np.ndarray) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(**self._params()).fit(X, y, **self._fit_kwargs())

    def _regressor(self, X: np.ndarray, y: np.ndarray) -> lgb.LGBMRegressor:
        return lgb.LGBMRegressor(**self._params()).fit(X, y, **self._fit_kwargs())

    def _without_channel(self, X: np.ndarray) -> np.ndarray:
        if self.channel_column is None:
            return X
        out = X.copy()
        out[:, np.atleast_1d(np.asarray(self.channel_column, dtype=int))] = np.nan
        return out

    def predict_by_channel(self, matrices: list[np.ndarray]) -> np.ndarray:
        """Estimates of the same rows at several contact channels, shape (n, len(matrices)).

        Parameters
        ----------
        matrices : list of ndarray, each of shape (n, p)
            The rows' matrix at each channel (they differ in the contact columns only).

        Each model sees the matrices stacked, in one booster call: a call costs far more
        than a row for few-row requests, and each row's estimate is its own.
        """
        n = len(matrices[0])
        return self.predict(np.vstack(matrices)).reshape(len(matrices), n).T

    @staticmethod
    def _proba(model: lgb.LGBMClassifier, X: np.ndarray) -> np.ndarray:
        if len(model.classes_) == 1:  # one outcome only in the fitted group
            return np.full(len(X), float(model.classes_[0]))
        return lgbm_predict(model, X)

    def _outcome_models(
        self, X: np.ndarray, treated: np.ndarray, y: np.ndarray
    ) -> tuple[lgb.LGBMClassifier, lgb.LGBMClassifier]:
        mu0 = self._classifier(self._without_channel(X[~treated]), y[~treated])
        mu1 = self._classifier(X[treated], y[treated])
        return mu0, mu1

    @staticmethod
    def _check(X: np.ndarray, treated: np.ndarray, y: np.ndarray) -> tuple:
        X = np.asarray(X, dtype=np.float64)
        treated = np.asarray(treated, dtype=bool)
        y = np.asarray(y, dtype=np.float64)
        if not (len(X) == len(treated) == len(y)):
            raise ValueError("X, treated and y must have the same number of rows")
        if treated.all() or not treated.any():
            raise ValueError("uplift needs both treated and control rows")
        return X, treated, y


class TLearner(_MetaLearner):
    """Two-model learner: ``tau(x) = mu1(x) - mu0(x)``.

    Attributes
    ----------
    mu0_, mu1_ : LGBMClassifier
        Outcome models of the control and treated rows.
    """

    def fit(
        self, X: np.ndarray, treated: np.ndarray, y: np.ndarray, propensity: np.ndarray
    ) -> TLearner:
        """Fit on rows ``X`` (n, p), ``treated`` (n,) bool, outcome ``y`` (n,) in {0, 1}."""
        X, treated, y = self._check(X, treated, y)
        del propensity  # randomised: the two groups are comparable as they are
        self.mu0_, self.mu1_ = self._outcome_models(X, treated, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Estimated effect on P(purchase), shape (n_rows,)."""
        X = np.asarray(X, dtype=np.float64)
        return self._proba(self.mu1_, X) - self._proba(self.mu0_, self._without_channel(X))

    def predict_by_channel(self, matrices: list[np.ndarray]) -> np.ndarray:
        """:meth:`_MetaLearner.predict_by_channel`; the control model, which never sees the
        contact columns, scores the rows once for every channel."""
        hidden = [self._without_channel(np.asarray(X, dtype=np.float64)) for X in matrices]
        if not all(np.array_equal(hidden[0], other, equal_nan=True) for other in hidden[1:]):
            return super().predict_by_channel(matrices)  # not the same rows: no shortcut
        n = len(matrices[0])
        treated = self._proba(self.mu1_, np.vstack(matrices).astype(np.float64, copy=False))
        return treated.reshape(len(matrices), n).T - self._proba(self.mu0_, hidden[0])[:, None]


class XLearner(_MetaLearner):
    """X-learner: imputed effects regressed per group, blended by the propensity.

    Attributes
    ----------
    mu0_, mu1_ : LGBMClassifier
        First-stage outcome models.
    tau0_, tau1_ : LGBMRegressor
        Effect models fitted on the control and on the treated rows.
    propensity_ : float
        Mean treated share, the weight of ``tau0_`` (the control-side estimate).
    """

    def fit(
        self, X: np.ndarray, treated: np.ndarray, y: np.ndarray, propensity: np.ndarray
    ) -> XLearner:
        """Fit on rows ``X`` (n, p), ``treated`` (n,) bool, ``y`` (n,), ``propensity`` (n,)."""
        X, treated, y = self._check(X, treated, y)
        self.mu0_, self.mu1_ = self._outcome_models(X, treated, y)
        imputed_treated = y[treated] - self._proba(self.mu0_, self._without_channel(X[treated]))
        imputed_control = self._proba(self.mu1_, X[~treated]) - y[~treated]
        self.tau1_ = self._regressor(X[treated], imputed_treated)
        self.tau0_ = self._regressor(X[~treated], imputed_control)
        self.propensity_ = float(np.mean(propensity))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Estimated effect on P(purchase), shape (n_rows,)."""
        X = np.asarray(X, dtype=np.float64)
        g = self.propensity_
        return g * lgbm_predict(self.tau0_, X) + (1.0 - g) * lgbm_predict(self.tau1_, X)


class DRLearner(_MetaLearner):
    """Doubly robust learner on cross-fitted AIPW pseudo-outcomes.

    Parameters
    ----------
    n_folds : int
        Cross-fitting folds for the outcome models (each row's pseudo-outcome uses
        models that never saw it).

    Attributes
    ----------
    tau_ : LGBMRegressor
        Regression of the pseudo-outcomes on ``X``.
    """

    def __init__(
        self,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        categorical: tuple[int, ...] = (),
        channel_column: int | tuple[int, ...] | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
        n_folds: int = 3,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            categorical=categorical,
            channel_column=channel_column,
            n_jobs=n_jobs,
            random_state=random_state,
        )
        self.n_folds = n_folds

    def fit(
        self, X: np.ndarray, treated: np.ndarray, y: np.ndarray, propensity: np.ndarray
    ) -> DRLearner:
        """Fit on rows ``X`` (n, p), ``treated`` (n,) bool, ``y`` (n,), ``propensity`` (n,)."""
        X, treated, y = self._check(X, treated, y)
        e = np.clip(np.asarray(propensity, dtype=np.float64), 0.02, 0.98)
        mu0, mu1 = np.zeros(len(y)), np.zeros(len(y))
        folds = KFold(self.n_folds, shuffle=True, random_state=self.random_state)
        for fit_rows, out_rows in folds.split(X):
            m0, m1 = self._outcome_models(X[fit_rows], treated[fit_rows], y[fit_rows])
            mu0[out_rows] = self._proba(m0, self._without_channel(X[out_rows]))
            mu1[out_rows] = self._proba(m1, X[out_rows])
        pseudo = mu1 - mu0 + treated * (y - mu1) / e - (~treated) * (y - mu0) / (1.0 - e)
        self.tau_ = self._regressor(X, pseudo)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Estimated effect on P(purchase), shape (n_rows,)."""
        return lgbm_predict(self.tau_, np.asarray(X, dtype=np.float64))


#: The learners the ensemble may average, in the order their estimates are summed.
ENSEMBLE_MEMBERS: tuple[str, ...] = ("t_learner", "x_learner", "dr_learner")


class EnsembleLearner(DRLearner):
    """The mean of the T-, X- and DR-learners' estimates (or of a chosen few of them).

    Each learner errs in its own way on noisy outcomes (the T-learner's difference of
    two fits, the DR pseudo-outcomes' variance); their average is steadier than any
    one of them. ``fit_uplift`` leaves out the members that ranked the rolling-origin
    held-out campaigns worse (:mod:`~fidelite.training.uplift.members`).

    Parameters
    ----------
    members : tuple of str
        Names of the averaged learners (a subset of :data:`ENSEMBLE_MEMBERS`, in its order).
    (others as :class:`DRLearner`)

    Attributes
    ----------
    members_ : list of fitted learners
    """

    #: Ensembles pickled before members existed averaged all three (and read it here).
    members: tuple[str, ...] = ENSEMBLE_MEMBERS

    def __init__(
        self,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        categorical: tuple[int, ...] = (),
        channel_column: int | tuple[int, ...] | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
        n_folds: int = 3,
        members: tuple[str, ...] = ENSEMBLE_MEMBERS,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            categorical=categorical,
            channel_column=channel_column,
            n_jobs=n_jobs,
            random_state=random_state,
            n_folds=n_folds,
        )
        self.members = members

    def fit(
        self, X: np.ndarray, treated: np.ndarray, y: np.ndarray, propensity: np.ndarray
    ) -> EnsembleLearner:
        """Fit the members on the same rows (see :class:`TLearner`)."""
        unknown = sorted(set(self.members) - set(ENSEMBLE_MEMBERS))
        if not self.members or unknown:
            raise ValueError(f"members must be among {ENSEMBLE_MEMBERS}, got {self.members}")
        params = self.get_params()
        n_folds = params.pop("n_folds")
        del params["members"]
        self.members_ = [
            LEARNERS[name](**params, **({"n_folds": n_folds} if name == "dr_learner" else {})).fit(
                X, treated, y, propensity
            )
            for name in ENSEMBLE_MEMBERS
            if name in self.members
        ]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Mean estimated effect on P(purchase), shape (n_rows,)."""
        return np.mean([member.predict(X) for member in self.members_], axis=0)

    def predict_by_channel(self, matrices: list[np.ndarray]) -> np.ndarray:
        """Mean of the members' :meth:`_MetaLearner.predict_by_channel`, shape (n, k)."""
        return np.mean([m.predict_by_channel(matrices) for m in self.members_], axis=0)


#: The meta-learners fidelite compares, by name.
LEARNERS: dict[str, type[_MetaLearner]] = {
    "t_learner": TLearner,
    "x_learner": XLearner,
    "dr_learner": DRLearner,
    "ensemble": EnsembleLearner,
}
