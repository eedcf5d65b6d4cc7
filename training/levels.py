"""Window levels: each backtest window's intercept, and which one a new window reuses.

Purchase rates and basket sizes move with the calendar (holiday peaks, January slumps)
and the baseline knows nothing about the calendar. A boosted model fitted on stacked
windows would blame a window's season on whatever customer features happened to
differ, so every window gets its own intercept (on the model's link scale: log-odds for
churn, log for spend), the trees learn only within-window structure, and a window
whose outcomes are not known yet reuses the intercept of the **comparable window**: the
known window of the same season, ideally one year (52 weeks) earlier.

When no known window lies within ``max_distance_days`` of the same time of year, the
known window **nearest in time of year** is still the one used (the most recent one on
ties) and :attr:`LevelChoice.comparable` is False: the training run logs that as a
warning (nothing falls back silently). Of the known windows, the nearest in time of year
is the one whose label period shares the most calendar days with the new window's (with
equal horizons, ``H - distance`` days). Until session 5 the fallback was the newest
window; CDNOW's situation (H = 182, windows 28 days apart, no window of the as-of day's
season) replayed on the demo data's first year (3 seeds x 4 as-of days, outcomes after
each as-of day) gave mean churn ECE 0.038 with the newest window and 0.024 with the
nearest in season, the spend total's mean absolute log error 0.38 and 0.23 (BENCHMARKS.md,
"Model quality"). A nowcast from the partly observed windows after ``D - H`` was measured
too and not kept (their levels follow the season of their own label periods).

How good the rule is on a given history is measured, not assumed:
:meth:`WindowLevels.backtest` replays it on the known windows (rolling origin: each
window's level chosen from the windows whose outcomes were known at its cutoff) and the
run logs the errors, with a warning when the rule could not be checked at all or
missed by more than :data:`LEVEL_ERROR_WARN`. The rule itself stays the same-season one:
choosing among rules (newest window, mean of the windows, same season, a blend) by that
backtest was tried on the demo data and would have taken the holiday-peak CLV total from
0.96 to 0.59-0.63 of actual (BENCHMARKS.md, "Model quality"): a history of a year or two
offers zero to two replayable windows, and the choice follows their noise. On CDNOW
(windows 28 days apart, H = 182) no window can be replayed at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

__all__ = [
    "LEVEL_ERROR_WARN",
    "SEASON_DAYS",
    "LevelBacktest",
    "LevelChoice",
    "WindowLevels",
    "log_ratio",
    "logit_shift",
    "season_distance",
]

#: A year in whole weeks: the comparable window keeps the weekdays of the target's.
SEASON_DAYS = 364

#: Backtest error of the level rule (link scale) above which a run warns: 0.1 on the
#: log scale is a 10% error in the spend total, on the log-odds scale about two points
#: of churn probability between 0.3 and 0.7 (issue 10's targets: +/-10%, ECE 0.02).
LEVEL_ERROR_WARN = 0.1


def logit_shift(log_odds: np.ndarray, rate: float) -> float:
    """The constant ``a`` with ``mean(sigmoid(log_odds + a)) == rate``.

    ``rate`` is clipped to (1e-6, 1 - 1e-6): a window where nobody (or everybody)
    churned gets a large but finite intercept.
    """
    z = np.asarray(log_odds, dtype=float)
    target = float(np.clip(rate, 1e-6, 1.0 - 1e-6))

    def gap(a: float) -> float:
        return float(np.mean(1.0 / (1.0 + np.exp(-(z + a))))) - target

    return float(brentq(gap, -60.0, 60.0, xtol=1e-10))


def log_ratio(log_mean: np.ndarray, actual: np.ndarray) -> float:
    """The constant ``b`` with ``sum(exp(log_mean + b)) == sum(actual)`` (actual >= 0)."""
    total = float(np.clip(np.asarray(actual, dtype=float), 0, None).sum())
    predicted = float(np.exp(np.asarray(log_mean, dtype=float)).sum())
    return float(np.log(max(total, 1e-9) / max(predicted, 1e-9)))


def season_distance(a: pd.Timestamp, b: pd.Timestamp) -> float:
    """Days between two days' positions in the year (0-182.6), ignoring the year."""
    gap = abs((a - b).days) % 365.25
    return float(min(gap, 365.25 - gap))


@dataclass(frozen=True)
class LevelChoice:
    """The intercept a window reuses, and where it comes from.

    Attributes
    ----------
    offset : float
        Intercept on the link scale.
    source : Timestamp
        Cutoff of the known window it comes from.
    distance_days : float
        Time-of-year distance between the target and the source (0 = same season).
    comparable : bool
        Whether the source lies within ``max_distance_days`` of the target's season.
    """

    offset: float
    source: pd.Timestamp
    distance_days: float
    comparable: bool


@dataclass(frozen=True)
class LevelBacktest:
    """The level rule replayed on the known windows (:meth:`WindowLevels.backtest`).

    Attributes
    ----------
    comparable : bool
        The situation replayed: the rule finding a same-season window (True) or only a
        window of another season (False: the nearest in time of year), as it does for the
        day it is asked about.
    targets : int
        Known windows replayed in that situation.
    rule_error, newest_error, mean_error : float
        Mean absolute error (link scale) over those windows of the rule, of the newest
        known window's level and of the mean of the known levels; NaN without targets.
    """

    comparable: bool
    targets: int
    rule_error: float
    newest_error: float
    mean_error: float

    def metrics(self, name: str) -> dict[str, float]:
        """``{name}_level_backtest_*`` run metrics (the errors only when there are targets)."""
        out = {f"{name}_level_backtest_windows": float(self.targets)}
        if self.targets:
            out[f"{name}_level_backtest_error"] = self.rule_error
            out[f"{name}_level_backtest_error_newest"] = self.newest_error
            out[f"{name}_level_backtest_error_mean"] = self.mean_error
        return out

    def note(self, name: str, day: pd.Timestamp) -> str | None:
        """A warning when the rule is untested here or missed by more than the limit."""
        rule = "same-season window" if self.comparable else "nearest window in season"
        if not self.targets:
            return (
                f"{name} level for {day.date()}: the rule ({rule}) has no earlier case on "
                "this history to be checked on (no known window can be replayed in the "
                "same situation from the windows known at its cutoff): its error is unknown"
            )
        if self.rule_error > LEVEL_ERROR_WARN:
            return (
                f"{name} level for {day.date()}: the rule ({rule}) missed the levels of "
                f"{self.targets} earlier window(s) by {self.rule_error:.3f} on average "
                f"(link scale; newest window {self.newest_error:.3f}, mean of the windows "
                f"{self.mean_error:.3f}): expect this level to be off by about as much"
            )
        return None


class WindowLevels:
    """Intercepts of known windows, looked up by season for new ones.

    Parameters
    ----------
    cutoffs : sequence of Timestamp
        Cutoff day of each known window.
    offsets : sequence of float
        Their intercepts (link scale).
    max_distance_days : float
        Largest time-of-year distance still treated as the same season.
    fallback : {"nearest", "newest"}
        The window used when none is of the target's season: the nearest in time of year
        (the rule since session 5) or the newest (the former rule).
    """

    #: Models pickled before session 5 have no ``fallback`` of their own: they keep the
    #: rule they were validated with, so loading them with this code changes no score.
    fallback = "newest"

    def __init__(
        self,
        cutoffs: list[pd.Timestamp],
        offsets: list[float],
        max_distance_days: float = 45.0,
        fallback: str = "nearest",
    ) -> None:
        if len(cutoffs) != len(offsets) or not cutoffs:
            raise ValueError("WindowLevels needs one offset per cutoff, and at least one")
        if fallback not in ("nearest", "newest"):
            raise ValueError(f"fallback must be 'nearest' or 'newest', got {fallback!r}")
        order = np.argsort(pd.DatetimeIndex(cutoffs).asi8)
        self.cutoffs = [pd.Timestamp(cutoffs[i]) for i in order]
        self.offsets = [float(offsets[i]) for i in order]
        self.max_distance_days = max_distance_days
        self.fallback = fallback

    def offset_of(self, cutoff: pd.Timestamp) -> float:
        """The intercept of the known window at ``cutoff`` (KeyError when unknown)."""
        return self.offsets[self.cutoffs.index(pd.Timestamp(cutoff))]

    def choose(self, target: pd.Timestamp, *, exclude: pd.Timestamp | None = None) -> LevelChoice:
        """The intercept for a window starting at ``target`` whose outcomes are unknown.

        The known window closest in time of year wins, the most recent one on ties;
        ``exclude`` leaves one known window out (a held-out window choosing its level).
        Without a window within ``max_distance_days`` of the season it is still the one
        returned, with ``comparable=False`` (the run warns).
        """
        target = pd.Timestamp(target)
        known = [
            (cutoff, offset)
            for cutoff, offset in zip(self.cutoffs, self.offsets, strict=True)
            if exclude is None or cutoff != pd.Timestamp(exclude)
        ]
        if not known:
            raise ValueError(f"no known window left to choose a level for {target.date()}")
        distances = [season_distance(target, cutoff) for cutoff, _ in known]
        best = min(range(len(known)), key=lambda i: (distances[i], -known[i][0].value))
        if distances[best] <= self.max_distance_days:
            return LevelChoice(known[best][1], known[best][0], distances[best], True)
        if self.fallback == "newest":
            best = len(known) - 1
        return LevelChoice(known[best][1], known[best][0], distances[best], False)

    def backtest(self, day: pd.Timestamp, horizon_days: int) -> LevelBacktest:
        """The rule replayed on the known windows, in the situation of ``day``.

        Every known window is a target when the windows whose labels had ended by its
        cutoff (cutoff + ``horizon_days`` on or before it) exist and the rule, choosing
        among them, finds a same-season window exactly when it does for ``day`` (a
        same-season level is checked on same-season cases, a nearest-in-season fallback
        on fallbacks).
        Only data before ``day`` are read: the known windows' own levels.
        """
        situation = self.choose(pd.Timestamp(day)).comparable
        horizon = pd.Timedelta(days=horizon_days)
        rule, newest, mean = [], [], []
        for target, own in zip(self.cutoffs, self.offsets, strict=True):
            known = [i for i, c in enumerate(self.cutoffs) if c + horizon <= target]
            if not known:
                continue
            older = WindowLevels(
                [self.cutoffs[i] for i in known],
                [self.offsets[i] for i in known],
                self.max_distance_days,
                self.fallback,
            )
            choice = older.choose(target)
            if choice.comparable != situation:
                continue
            rule.append(abs(choice.offset - own))
            newest.append(abs(older.offsets[-1] - own))
            mean.append(abs(float(np.mean(older.offsets)) - own))
        errors = [float(np.mean(e)) if e else float("nan") for e in (rule, newest, mean)]
        return LevelBacktest(situation, len(rule), *errors)
