"""Which stacked rows a model holds out, and what it predicted for them.

Training rows are stacked backtest windows; ``window`` gives each row's cutoff day.
The newest window is held out: the models choose their tree counts on it and fit
their calibrators and intervals to what they predicted there (:class:`HeldOut`),
which is also what the validation metrics are computed from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["HeldOut", "held_out_rows", "window_array"]


def window_array(window: object, n_rows: int) -> np.ndarray:
    """Each row's window cutoff as ``datetime64[ns]``, shape (n_rows,)."""
    values = pd.to_datetime(np.asarray(window)).to_numpy(dtype="datetime64[ns]")
    if values.shape != (n_rows,):
        raise ValueError(f"window must have one cutoff per row ({n_rows}), got {values.shape}")
    return values


def held_out_rows(window: np.ndarray | None) -> np.ndarray | None:
    """Boolean mask of the newest window's rows, shape (n,); None with fewer than 2 windows."""
    if window is None or len(np.unique(window)) < 2:
        return None
    return window == window.max()


@dataclass(frozen=True)
class HeldOut:
    """A model's predictions on its held-out window, next to the outcomes.

    Attributes
    ----------
    index : Index
        Customer ids of the held-out rows, length n.
    cutoff : Timestamp
        The held-out window's cutoff day.
    actual : ndarray, shape (n,)
        Observed outcome (0/1 churn, or net spend in currency units).
    predicted : ndarray, shape (n,)
        What the model that chose the tree count predicted, before calibration.
    """

    index: pd.Index
    cutoff: pd.Timestamp
    actual: np.ndarray
    predicted: np.ndarray
