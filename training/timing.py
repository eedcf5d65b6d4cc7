"""When the next purchase comes: a discrete-time hazard model, censored at H.

The horizon is cut into bins of ``bin_days`` days. For every backtest row and every bin
up to its first purchase (or up to H when it bought nothing: censored), the model
learns P(first purchase in this bin | none before it) from the customer's features and
the bin. The hazards give the cumulative probability of a purchase by the end of each
bin. (The bin's day of the year is left out on purpose: windows rarely cover every
season, and trees cannot extrapolate to days of the year they never saw.)

The scores use only the *shape* of that curve: P(purchase by day t) is the churn model's
P(purchase within H) spread over the horizon as the hazard model's timing given a
purchase, so churn and next purchase come from consistent estimates.
``expected_next_purchase`` is the median day of the next purchase *given a purchase
within H*: the day the conditional CDF F(t) / F(H) reaches 1/2 (:func:`median_days`);
none when P(purchase within H) < 1/2.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from fidelite.training.boosting import BoostedModel, Trees, small_batch_threads
from fidelite.training.forest import MAX_BINS
from fidelite.training.holdout import HOLDOUT, TRAIN, RowRoles

__all__ = ["TIMING_TREES", "TimingModel", "median_days"]

#: Default size of the hazard trees.
TIMING_TREES = Trees(n_estimators=200, num_leaves=15, min_child_samples=200)


def median_days(p_purchase: np.ndarray, cdf: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Days from the as-of day to the median next purchase *given one within H*, shape (n,).

    The conditional median: the day ``F(t) / F(H)`` reaches 1/2, where ``F`` is the
    hazard model's P(purchase by day t). It answers "if this customer buys within the
    horizon, when?", so it does not drift towards H for customers barely likelier to buy
    than not (the unconditional median ``F(t) = 1/2`` does: 35-59 days late on the buyers
    in the issue 10 benchmark). NaN when ``p_purchase < 1/2``: a date is given only when a
    purchase is likelier than not (that probability is reported as
    ``1 - churn_probability``).

    Parameters
    ----------
    p_purchase : ndarray, shape (n,)
        P(at least one purchase within H); decides only which rows get a day.
    cdf : ndarray, shape (n, n_bins)
        The hazard model's P(purchase by the end of each bin); only its shape
        ``cdf / cdf[:, -1]`` is used (uniform over the horizon where ``cdf[:, -1] == 0``).
    edges : ndarray, shape (n_bins + 1,)
        Bin edges in days (0 .. H).

    Returns
    -------
    ndarray, shape (n,)
        Whole days (1..H), linear within the bin where ``F(t) / F(H)`` crosses 1/2.
    """
    total = cdf[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.where(total > 0, cdf / total, np.linspace(0, 1, cdf.shape[1] + 1)[1:])
    # The last bin of the shape is 1 by construction: it always crosses 1/2. The tolerance
    # keeps a rounding error in cdf / total from skipping the bin where it is exactly 1/2.
    crossing = np.argmax(shape >= 0.5 - 1e-12, axis=1)
    rows = np.arange(len(p_purchase))
    before = np.where(crossing > 0, shape[rows, np.maximum(crossing - 1, 0)], 0.0)
    step = shape[rows, crossing] - before
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(step > 0, (0.5 - before) / step, 1.0)
    days = edges[crossing] + np.clip(fraction, 0.0, 1.0) * (edges[crossing + 1] - edges[crossing])
    days = np.clip(np.ceil(days), 1, edges[-1])
    return np.where(np.asarray(p_purchase, dtype=float) >= 0.5, days, np.nan)


class TimingModel(BoostedModel):
    """Discrete-time hazard of the first purchase within the horizon.

    Parameters
    ----------
    horizon_days : int
        Horizon ``H``: rows without a purchase are censored there.
    bin_days : int
        Width of the hazard's time bins (the last may be shorter).
    max_rows : int
        Most customer-bin rows to train on; training customers are sampled down to it
        (the hazard of a random sample of customers is the hazard of all).
    trees, n_jobs, random_state
        LightGBM settings (default trees :data:`TIMING_TREES`).

    Attributes
    ----------
    edges_ : ndarray of shape (n_bins + 1,)
        Bin edges in days.
    start_ : float
        Log-odds of the mean hazard (the boosting starts there).
    n_training_rows_ : int
        Customer-bin rows the hazard was fitted on.
    """

    def __init__(
        self,
        trees: Trees = TIMING_TREES,
        n_jobs: int = 2,
        random_state: int = 0,
        horizon_days: int = 90,
        bin_days: int = 7,
        max_rows: int = 300_000,
    ) -> None:
        super().__init__(trees, n_jobs, random_state)
        self.horizon_days = horizon_days
        self.bin_days = bin_days
        self.max_rows = max_rows

    def _lightgbm(self, n_estimators: int) -> lgb.LGBMModel:
        return lgb.LGBMClassifier(objective="binary", **self._settings(n_estimators))

    def _expand(self, X: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Customer-bin rows: features + bin index, and 1 in the purchase's bin."""
        n_bins = len(self.edges_) - 1
        event_bin = np.searchsorted(self.edges_[1:], days, side="left")
        last = np.where(np.isnan(days), n_bins - 1, np.minimum(event_bin, n_bins - 1))
        counts = (last + 1).astype(np.int64)
        row = np.repeat(np.arange(len(days)), counts)
        bin_index = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        event = (bin_index == last[row]) & ~np.isnan(days[row])
        return np.column_stack([X[row], bin_index.astype(X.dtype)]), event.astype(int)

    def fit(
        self,
        X: np.ndarray,
        days_to_purchase: np.ndarray,
        *,
        roles: RowRoles | None = None,
    ) -> TimingModel:
        """Fit on encoded rows (numpy) and the days to their first purchase.

        Parameters
        ----------
        X : ndarray, shape (n, n_features)
            ``FeatureEncoder.transform_array`` of stacked backtest rows.
        days_to_purchase : ndarray, shape (n,)
            Days from the cutoff to the first purchase (1..H); NaN when none (censored).
        roles : RowRoles, optional
            Training rows, and held-out rows to early-stop on.
        """
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)
        self.feature_names_ = []
        X = _floats(X)
        days = np.asarray(days_to_purchase, dtype=float)
        self.edges_ = np.unique(
            np.r_[np.arange(0, self.horizon_days, self.bin_days), self.horizon_days]
        ).astype(float)
        role = roles.role if roles is not None else np.full(len(days), TRAIN)
        train = self._sample(role == TRAIN, days)
        X_train, y_train = self._expand(X[train], days[train])
        self.n_training_rows_ = len(y_train)
        rate = float(np.clip(y_train.mean(), 1e-6, 1 - 1e-6))
        self.start_ = float(np.log(rate / (1 - rate)))
        validation = None
        # Early stopping on a sample too: a million held-out customers would expand to
        # ~10M customer-bin rows (gigabytes) to choose one tree count.
        held = self._sample(role == HOLDOUT, days)
        if held.any() and self.trees.early_stopping_rounds:
            X_held, y_held = self._expand(X[held], days[held])
            validation = (X_held, y_held, np.full(len(y_held), self.start_))
        self.estimator_, best = self._fit_booster(
            self._lightgbm(self.trees.n_estimators),
            X_train,
            y_train,
            np.full(len(y_train), self.start_),
            validation,
        )
        self.best_iteration_ = int(best) if best else self.trees.n_estimators
        return self

    def _sample(self, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """``rows`` thinned at random so that their customer-bin rows stay under max_rows."""
        n_bins = len(self.edges_) - 1
        expected = np.where(np.isnan(days), n_bins, np.ceil(days / self.bin_days))[rows].sum()
        if expected <= self.max_rows:
            return rows
        keep = np.random.default_rng(self.random_state).random(len(rows)) < self.max_rows / expected
        return rows & keep

    def next_purchase_days(self, X: np.ndarray, p_purchase: np.ndarray) -> np.ndarray:
        """:func:`median_days` of every row, shape (n,), the hazard evaluated only where needed.

        A row gets a day only when ``p_purchase >= 1/2``; the others are NaN whatever the
        hazard says, so their customer-bin rows (``n_bins`` booster rows per customer, the
        costliest part of scoring) are never built. Each row's day depends on its own
        curve only: the same values as ``median_days(p_purchase, purchase_cdf(X), edges_)``.

        Parameters
        ----------
        X : ndarray, shape (n, n_features)
            Encoded rows (``FeatureEncoder.transform_array``).
        p_purchase : ndarray, shape (n,)
            P(at least one purchase within H).
        """
        p_purchase = np.asarray(p_purchase, dtype=float)
        dated = p_purchase >= 0.5
        days = np.full(len(p_purchase), np.nan)
        if dated.any():
            rows = X if dated.all() else X[dated]
            days[dated] = median_days(p_purchase[dated], self.purchase_cdf(rows), self.edges_)
        return days

    def purchase_cdf(self, X: np.ndarray) -> np.ndarray:
        """P(first purchase by the end of each bin of the horizon), shape (n, n_bins).

        Scored by :meth:`Forest.binned_raw <fidelite.training.forest.Forest.binned_raw>`
        (each tree walked once per customer, both ways only at splits on the bin; the
        customer-bin rows are never built), one customer too: the booster's Python
        ``predict`` of the customer-bin rows cost ~130 us for one, the trees ~40 us. With
        more bins than the compiled trees take, the booster scores the customer-bin rows
        in one matrix. Both add the trees in LightGBM's order (the same bits).
        """
        X = _floats(X)
        n_bins = len(self.edges_) - 1
        if len(X) >= _COMPILED_HAZARD_MIN_ROWS and n_bins <= MAX_BINS:
            raw = self.compiled_trees().binned_raw(X, X.shape[1], n_bins)
            return self._cdf_of(raw)
        step = max(1, _CDF_CHUNK_ROWS // n_bins)
        parts = [self._cdf(X[i : i + step]) for i in range(0, len(X), step)]
        return np.concatenate(parts) if parts else np.empty((0, n_bins))

    def _cdf(self, X: np.ndarray) -> np.ndarray:
        n, n_bins = len(X), len(self.edges_) - 1
        # Row i * n_bins + b is customer i in bin b, written in one pass.
        matrix = np.empty((n * n_bins, X.shape[1] + 1), dtype=X.dtype)
        rows = matrix.reshape(n, n_bins, X.shape[1] + 1)
        rows[:, :, :-1] = X[:, None, :]
        rows[:, :, -1] = np.arange(n_bins)
        raw = self.estimator_.booster_.predict(
            matrix,
            raw_score=True,
            num_iteration=self.best_iteration_,
            **small_batch_threads(len(matrix)),
        )
        return self._cdf_of(raw.reshape(n, n_bins))

    def _cdf_of(self, raw: np.ndarray) -> np.ndarray:
        """The cumulative purchase probability from the trees' raw hazards (n, n_bins)."""
        hazard = 1.0 / (1.0 + np.exp(-(raw + self.start_)))
        return 1.0 - np.cumprod(1.0 - hazard, axis=1)


#: Batches of at least this many customers take the compiled trees' hazard (every
#: non-empty batch: unlike the other boosters, one customer is ``n_bins`` booster rows).
_COMPILED_HAZARD_MIN_ROWS = 1
#: Customer-bin rows scored at once on the booster path (~400 MB of float64 matrix at
#: 100 features).
_CDF_CHUNK_ROWS = 500_000


def _floats(X: np.ndarray) -> np.ndarray:
    """``X`` as float32 when it is (model matrices of compact windows), else float64."""
    X = np.asarray(X)
    return X if X.dtype == np.float32 else X.astype(float, copy=False)
