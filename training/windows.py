"""Backtest windows: which cutoffs, and each cutoff's customers with their outcomes.

For as-of ``D`` and horizon ``H``, :func:`backtest_cutoffs` gives cutoffs
``c_1 < ... < c_k`` whose label windows ``(c, c+H]`` end by ``D``, and
:func:`plan_windows` decides what each is for: the newest is held out, the training
windows are those whose labels end by its cutoff (a gap), and level-only windows one
year before the held-out window and before ``D`` are added when no training window is of
the same season (:mod:`~fidelite.training.levels`). At each cutoff a :class:`Window`
holds every known customer's features (the purchasers' with a BG/NBD + Gamma-Gamma
baseline refitted at ``c``, so its columns are point-in-time too) and their outcomes
over ``(c, c+H]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from fidelite.errors import InsufficientHistoryError
from fidelite.features.days import parse_day
from fidelite.features.purchases import is_purchaser
from fidelite.training.baseline import BaselineModel
from fidelite.training.labels import check_horizon
from fidelite.training.levels import SEASON_DAYS, season_distance

if TYPE_CHECKING:
    from fidelite.training.worker_rows import WorkerRows

logger = logging.getLogger(__name__)

__all__ = [
    "Scored",
    "Stacked",
    "Window",
    "WindowPlan",
    "WindowSource",
    "backtest_cutoffs",
    "build_window",
    "compact",
    "fit_baseline_rows",
    "plan_windows",
    "purchasers",
    "stack",
    "window_and_baseline",
]


def purchasers(features: pd.DataFrame) -> pd.DataFrame:
    """The purchasers' rows (``features.purchases.is_purchaser``): the ones the models score."""
    return features.loc[is_purchaser(features).to_numpy()]


@dataclass(frozen=True)
class Window:
    """One backtest window.

    Attributes
    ----------
    cutoff : Timestamp
        Cutoff day ``c``; features see data up to ``c``.
    features : DataFrame, shape (n_purchasers, n_columns)
        ``build_features`` rows of the purchasers at ``c`` plus the ``baseline_*``
        columns of a baseline fitted at ``c``; indexed by ``customer_id``.
    labels : DataFrame, shape (n_purchasers, 4)
        Their outcomes over ``(c, c+H]`` (``training.labels.LABEL_COLUMNS``), same index.
    prospects : DataFrame, shape (n_prospects, n_columns)
        ``build_features`` rows of the customers known at ``c`` without a purchase.
    prospect_labels : DataFrame, shape (n_prospects, 4)
        Their outcomes (a first purchase or not).
    """

    cutoff: pd.Timestamp
    features: pd.DataFrame
    labels: pd.DataFrame
    prospects: pd.DataFrame = field(default_factory=pd.DataFrame)
    prospect_labels: pd.DataFrame = field(default_factory=pd.DataFrame)


class WindowSource(Protocol):
    """Where a training run's features and outcomes come from, at any cutoff up to ``D``.

    Implemented by :func:`fidelite.training.distributed.window_source` for one machine
    (the tables encoded once, :class:`fidelite.features.windows.WindowFeatures`) and for
    a Dask cluster (the tables stay on the workers; only per-customer rows come back).
    """

    def features(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        """``build_features`` at ``cutoff``: one row per customer known by then."""
        ...

    def model_rows(self, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The feature rows the models see at ``cutoff``, and the baseline's rows.

        ``(features(cutoff), None)`` unless the source samples customers (a Dask run
        over its client budget): then the sample's rows and the RFM columns of every
        purchaser, which the baseline is fitted on.
        """
        ...

    def labels(self, cutoff: pd.Timestamp, horizon_days: int, customers: pd.Index) -> pd.DataFrame:
        """:data:`~fidelite.training.labels.LABEL_COLUMNS` of ``customers`` over ``(c, c+H]``."""
        ...

    def first_day(self) -> pd.Timestamp | None:
        """Day of the earliest transaction (None when there is none)."""
        ...

    def fingerprint(self) -> dict:
        """:func:`~fidelite.training.tracking.data_fingerprint` of the tables."""
        ...

    def worker_rows(self, cutoffs: list, baselines: dict, horizon_days: int) -> WorkerRows | None:
        """Every customer's rows at ``cutoffs`` where they live, when :meth:`model_rows` gives
        a sample (``baselines``: cutoff -> its baseline); None: all rows are here."""
        ...


def build_window(source: WindowSource, cutoff: pd.Timestamp, horizon_days: int) -> Window:
    """The :class:`Window` at ``cutoff`` (:func:`window_and_baseline` without the baseline)."""
    return window_and_baseline(source, cutoff, horizon_days)[0]


def window_and_baseline(
    source: WindowSource, cutoff: pd.Timestamp, horizon_days: int
) -> tuple[Window, BaselineModel]:
    """The :class:`Window` at ``cutoff`` (features + baseline, labels), and its baseline.

    The window is kept compact (:func:`compact`): it is held until the models are fitted.
    A sampling source (``WindowSource.model_rows``) gives the sample's rows; the
    baseline is then fitted on every purchaser's RFM columns all the same.
    """
    features, rfm = source.model_rows(cutoff)
    labels = source.labels(cutoff, horizon_days, features.index)
    buying = is_purchaser(features).to_numpy()
    buyers = features.loc[buying]
    baseline, predicted = fit_baseline_rows(buyers, rfm, horizon_days)
    window = Window(
        cutoff,
        compact(buyers.join(predicted)),
        labels.loc[buying],
        compact(features.loc[~buying]),
        labels.loc[~buying],
    )
    return window, baseline


def fit_baseline_rows(
    buyers: pd.DataFrame, rfm: pd.DataFrame | None, horizon_days: int
) -> tuple[BaselineModel, pd.DataFrame]:
    """The baseline fitted on every purchaser, and its columns for ``buyers``.

    ``rfm`` (every purchaser's float64 RFM columns, when ``buyers`` is a sample) is what
    it is fitted on and predicts from; None: ``buyers`` are every purchaser.
    """
    rows = buyers if rfm is None else rfm
    baseline = BaselineModel(horizon_days).fit(rows)
    own = buyers if rfm is None else rfm.loc[buyers.index]
    return baseline, baseline.predict(own)


def compact(features: pd.DataFrame) -> pd.DataFrame:
    """Model rows in less memory: float64 columns as float32, text columns as categories.

    LightGBM bins every feature into at most a few hundred values, so float32 (7
    significant digits) loses nothing it would use; the text columns hold a handful of
    distinct values. Halves a window of a million purchasers (about 0.7 GB to 0.3 GB).
    """
    converted = {}
    for column, dtype in features.dtypes.items():
        if dtype == np.float64:
            converted[column] = features[column].astype(np.float32)
        elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
            converted[column] = features[column].astype("category")
    return features.assign(**converted) if converted else features


@dataclass(frozen=True)
class Scored:
    """The customers at the as-of day: the rows the shipped models will score.

    Attributes
    ----------
    as_of : Timestamp
        The as-of day ``D``.
    features : DataFrame, shape (n_purchasers, n_columns)
        Their ``build_features`` rows plus the columns of the baseline fitted at ``D``.
    prospects : DataFrame, shape (n_prospects, n_columns)
        The ``build_features`` rows of the customers without a purchase.
    """

    as_of: pd.Timestamp
    features: pd.DataFrame
    prospects: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Stacked:
    """Windows stacked row-wise (the training rows of the models).

    Attributes
    ----------
    features, labels : DataFrame
        Concatenated ``Window.features`` / ``Window.labels`` (customer ids repeat).
    window : ndarray of datetime64[ns], shape (n_rows,)
        Each row's cutoff.
    """

    features: pd.DataFrame
    labels: pd.DataFrame
    window: np.ndarray


def stack(windows: Sequence[Window], *, prospects: bool = False) -> Stacked:
    """Stack the purchasers (or the prospects) of windows; ``window`` gives each row's cutoff."""
    frames = [w.prospects if prospects else w.features for w in windows]
    labels = [w.prospect_labels if prospects else w.labels for w in windows]
    cutoffs = [
        np.full(len(frame), w.cutoff.to_datetime64(), "datetime64[ns]")
        for frame, w in zip(frames, windows, strict=True)
    ]
    return Stacked(pd.concat(frames), pd.concat(labels), np.concatenate(cutoffs))


def backtest_cutoffs(
    first_day: pd.Timestamp,
    as_of: pd.Timestamp,
    *,
    horizon_days: int,
    n_windows: int = 3,
    step_days: int | None = None,
    min_history_days: int | None = None,
) -> list[pd.Timestamp]:
    """Cutoff days for rolling-origin backtests that end by ``as_of``.

    The newest cutoff is ``D - H`` so its label window ``(D-H, D]`` ends exactly on
    ``D``; older ones step back ``step_days`` at a time. A cutoff is kept only when the
    data holds at least ``min_history_days`` days before it.

    Parameters
    ----------
    first_day : day
        Day of the earliest transaction (a time of day is floored).
    as_of : day
        Latest day with observed outcomes ``D``.
    horizon_days : int
        Label horizon ``H`` in days.
    n_windows : int, default 3
        Number of cutoffs wanted.
    step_days : int, optional
        Days between consecutive cutoffs; defaults to ``horizon_days`` so the label
        windows tile without overlap.
    min_history_days : int, optional
        Days of history required before each cutoff; defaults to ``max(H, 90)``.

    Returns
    -------
    list of Timestamp
        Between 1 and ``n_windows`` cutoff days, oldest first.

    Raises
    ------
    InsufficientHistoryError
        When not even the newest cutoff has enough history before it.
    """
    horizon = check_horizon(horizon_days)
    if n_windows < 1:
        raise ValueError(f"n_windows must be at least 1, got {n_windows}")
    step = horizon if step_days is None else int(step_days)
    if step <= 0:
        raise ValueError(f"step_days must be positive, got {step}")
    min_history = max(horizon, 90) if min_history_days is None else int(min_history_days)
    if min_history < 0:
        raise ValueError(f"min_history_days must be non-negative, got {min_history}")

    first = parse_day(first_day, name="first_day")
    day = parse_day(as_of)
    earliest_cutoff = first + pd.Timedelta(days=min_history)
    wanted = [day - pd.Timedelta(days=horizon + k * step) for k in range(n_windows)]
    cutoffs = [cutoff for cutoff in wanted if cutoff >= earliest_cutoff]
    if not cutoffs:
        needed_days = horizon + min_history
        raise InsufficientHistoryError(
            f"not enough history for a {horizon}-day backtest ending {day.date()}: "
            f"need at least {needed_days} days ({min_history} days of history before the "
            f"cutoff + {horizon} days of labels), i.e. data starting on or before "
            f"{(day - pd.Timedelta(days=needed_days)).date()}, but the data starts "
            f"{first.date()} ({(day - first).days} days before {day.date()})"
        )
    if len(cutoffs) < n_windows:
        logger.info(
            "only %d of %d backtest windows fit: data starts %s and each cutoff needs "
            "%d days of history before it",
            len(cutoffs),
            n_windows,
            first.date(),
            min_history,
        )
    return sorted(cutoffs)


@dataclass(frozen=True)
class WindowPlan:
    """What each backtest cutoff is for.

    Attributes
    ----------
    train : list of Timestamp
        Cutoffs of the windows the models are fitted on.
    holdout : Timestamp or None
        Cutoff of the held-out window (the newest); None without windows.
    level : list of Timestamp
        Level-only windows: the comparable (same season) windows of the held-out window
        and of the as-of day when no training window is of their season.
    mode : {"time", "customers", "none"}
        "time": the training labels end by the held-out cutoff; "customers": the windows
        overlap too much for that and a share of the customers is held out instead.
    notes : list of str
        What the plan had to give up, for the run's warnings.
    """

    train: list[pd.Timestamp]
    holdout: pd.Timestamp | None
    level: list[pd.Timestamp]
    mode: str
    notes: list[str]

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        """Every cutoff to build, oldest first."""
        holdout = [] if self.holdout is None else [self.holdout]
        return sorted({*self.train, *self.level, *holdout})


def _comparable_cutoff(
    target: pd.Timestamp, known: list[pd.Timestamp], earliest: pd.Timestamp, notes: list[str]
) -> pd.Timestamp | None:
    """A level-only window one year before ``target``, unless one of ``known`` is of its season."""
    if any(season_distance(target, k) <= 45 for k in known):
        return None
    season = target - pd.Timedelta(days=SEASON_DAYS)
    if season >= earliest:
        return season
    notes.append(
        f"no window of the same season as {target.date()} (one would start {season.date()}, "
        f"before the history allows, {earliest.date()}): its level is the nearest in season's"
    )
    return None


def plan_windows(
    cutoffs: list[pd.Timestamp], as_of: pd.Timestamp, horizon_days: int, earliest: pd.Timestamp
) -> WindowPlan:
    """Roles of the backtest ``cutoffs`` (oldest first) for a run at ``as_of``.

    ``earliest`` is the first cutoff the history allows (first day + minimum history).
    """
    notes: list[str] = []
    if not cutoffs:
        return WindowPlan([], None, [], "none", notes)
    holdout = cutoffs[-1]
    horizon = pd.Timedelta(days=horizon_days)
    train = [c for c in cutoffs[:-1] if c + horizon <= holdout]
    mode = "time"
    if not train and len(cutoffs) > 1:
        mode, train = "customers", list(cutoffs)
        notes.append(
            f"every training window's labels overlap the held-out window {holdout.date()} "
            "(step < horizon and a short history): a random quarter of the customers is held "
            "out instead of a later period"
        )
    elif len(train) < len(cutoffs) - 1:
        skipped = ", ".join(str(c.date()) for c in cutoffs[:-1] if c not in train)
        notes.append(f"windows {skipped} left out: their labels overlap the held-out window")
    level: list[pd.Timestamp] = []
    for target in [holdout, as_of] if mode == "time" else [as_of]:
        known = [*train, *level, *([holdout] if target == as_of else [])]
        season = _comparable_cutoff(target, known, earliest, notes)
        if season is not None:
            level.append(season)
    return WindowPlan(train, holdout, level, mode, notes)
