"""Which backtest rows train the models, which are held out, which only set levels.

The shipped models never see their held-out window: they are fitted on the training
windows, early-stopped on the held-out window, and their calibrators, intervals and
validation metrics come from what they predicted there. The held-out window is the
newest, and only training windows whose label period ends by its cutoff are used (a
gap: no training label period overlaps the validation label period).

When the windows overlap so much that no training window ends before the held-out one
(a short history with ``step_days`` < H, e.g. CDNOW), a time gap is impossible: a
random share of the customers is held out instead, with every row of theirs, and the
plan says so (``mode == "customers"``, logged as a warning).

Level-only windows (the comparable windows of :mod:`~fidelite.training.levels`) are
predicted by the fitted models only to learn their intercept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["HOLDOUT", "LEVEL", "TRAIN", "UNUSED", "HeldOut", "RowRoles", "window_array"]

TRAIN, HOLDOUT, LEVEL, UNUSED = 0, 1, 2, -1


def window_array(window: object, n_rows: int) -> np.ndarray:
    """Each row's window cutoff as ``datetime64[ns]``, shape (n_rows,)."""
    values = pd.to_datetime(np.asarray(window)).to_numpy(dtype="datetime64[ns]")
    if values.shape != (n_rows,):
        raise ValueError(f"window must have one cutoff per row ({n_rows}), got {values.shape}")
    return values


@dataclass(frozen=True)
class RowRoles:
    """The role of every stacked row.

    Attributes
    ----------
    role : ndarray of int8, shape (n_rows,)
        :data:`TRAIN`, :data:`HOLDOUT`, :data:`LEVEL` or :data:`UNUSED`.
    holdout_cutoff : Timestamp or None
        Cutoff of the held-out window (None: nothing held out).
    mode : {"time", "customers", "none"}
        How the held-out rows are separated from the training rows.
    """

    role: np.ndarray
    holdout_cutoff: pd.Timestamp | None
    mode: str

    @property
    def train(self) -> np.ndarray:
        return self.role == TRAIN

    @property
    def held(self) -> np.ndarray:
        return self.role == HOLDOUT

    def subset(self, rows: np.ndarray) -> RowRoles:
        """The same roles for a subset of the rows (boolean mask)."""
        return RowRoles(self.role[rows], self.holdout_cutoff, self.mode)

    @classmethod
    def assign(
        cls,
        window: np.ndarray,
        customer: np.ndarray,
        *,
        train_cutoffs: list[pd.Timestamp],
        holdout_cutoff: pd.Timestamp | None,
        level_cutoffs: list[pd.Timestamp],
        mode: str,
        holdout_share: float = 0.25,
        seed: int = 0,
    ) -> RowRoles:
        """Roles from the window plan (``training.windows.WindowPlan``).

        In "customers" mode a seeded random ``holdout_share`` of the customers present in
        the held-out window are held out: their rows there are HOLDOUT, their rows in other
        windows UNUSED (their labels overlap), everyone else's rows TRAIN.
        """
        window = np.asarray(window, dtype="datetime64[ns]")
        role = np.full(len(window), UNUSED, dtype=np.int8)
        for cutoff in level_cutoffs:
            role[window == np.datetime64(cutoff)] = LEVEL
        for cutoff in train_cutoffs:
            role[window == np.datetime64(cutoff)] = TRAIN
        if holdout_cutoff is None:
            return cls(role, None, "none")
        in_holdout = window == np.datetime64(holdout_cutoff)
        if mode == "time":
            role[in_holdout] = HOLDOUT
            return cls(role, pd.Timestamp(holdout_cutoff), mode)
        ids = pd.Index(np.asarray(customer, dtype=object)[in_holdout]).unique().sort_values()
        chosen = np.random.default_rng(seed).random(len(ids)) < holdout_share
        held_ids = set(ids[chosen])
        is_held = np.fromiter((c in held_ids for c in customer), bool, len(customer))
        trainable = role == TRAIN
        role[trainable & is_held] = UNUSED
        role[in_holdout & is_held] = HOLDOUT
        return cls(role, pd.Timestamp(holdout_cutoff), mode)


@dataclass(frozen=True)
class HeldOut:
    """A model's predictions on its held-out rows, next to the outcomes.

    Attributes
    ----------
    index : Index
        Customer ids of the held-out rows, length n.
    cutoff : Timestamp
        The held-out window's cutoff day.
    actual : ndarray, shape (n,)
        Observed outcome (0/1 churn, or net spend in currency units).
    predicted : ndarray, shape (n,)
        What the shipped model predicted, with the level it chose for that window.
    """

    index: pd.Index
    cutoff: pd.Timestamp
    actual: np.ndarray
    predicted: np.ndarray
