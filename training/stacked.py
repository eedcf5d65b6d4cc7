"""Backtest windows held once: one stacked frame per population, windows as slices of it.

The models train on the windows' rows stacked (:func:`~fidelite.training.windows.stack`).
Holding the windows *and* their stack would keep every training row twice through the
fit (about 1 GB of float32 at a million customers); :class:`StackedWindows` stacks the
windows once, as soon as they are built, releases the per-window frames, and hands out
each :class:`~fidelite.training.windows.Window` as row slices of the stack (views, no
copy). ``fit_models`` takes either form and fits the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from fidelite.training.windows import Stacked, Window, stack

__all__ = ["StackedWindows", "stacked_rows"]


def _bounds(sizes: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])


class StackedWindows(Sequence[Window]):
    """Windows (oldest first) stored as two :class:`~fidelite.training.windows.Stacked`.

    Parameters
    ----------
    windows : list of Window
        Emptied while stacking: each population's frames are released once stacked,
        so the list's windows are never held next to a full copy of their rows.

    Attributes
    ----------
    purchasers, prospects : Stacked
        Every window's purchasers (prospects) stacked in window order.
    cutoffs : list of Timestamp
    """

    def __init__(self, windows: list[Window]) -> None:
        self.cutoffs = [w.cutoff for w in windows]
        self._buyer_bounds = _bounds([len(w.features) for w in windows])
        self._prospect_bounds = _bounds([len(w.prospects) for w in windows])
        if not windows:  # a baseline-only run on too short a history
            nothing = Stacked(pd.DataFrame(), pd.DataFrame(), np.empty(0, "datetime64[ns]"))
            self.purchasers = self.prospects = nothing
            return
        self.purchasers = stack(windows)
        empty = pd.DataFrame()
        windows[:] = [replace(w, features=empty, labels=empty) for w in windows]
        self.prospects = stack(windows, prospects=True)
        windows.clear()

    def __len__(self) -> int:
        return len(self.cutoffs)

    def __getitem__(self, i: int) -> Window:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        a, b = self._buyer_bounds[i], self._buyer_bounds[i + 1]
        c, d = self._prospect_bounds[i], self._prospect_bounds[i + 1]
        return Window(
            self.cutoffs[i],
            self.purchasers.features.iloc[a:b],
            self.purchasers.labels.iloc[a:b],
            self.prospects.features.iloc[c:d],
            self.prospects.labels.iloc[c:d],
        )

    def __iter__(self) -> Iterator[Window]:
        return (self[i] for i in range(len(self)))


def stacked_rows(windows: Sequence[Window], *, prospects: bool = False) -> Stacked:
    """``stack(windows)``, without a copy when the windows are already stacked."""
    if isinstance(windows, StackedWindows):
        return windows.prospects if prospects else windows.purchasers
    return stack(windows, prospects=prospects)
