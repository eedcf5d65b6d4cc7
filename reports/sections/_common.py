"""Helpers shared by the section modules."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fidelite.reports.base import CustomerBase
from fidelite.reports.layout import ALL_VIEW, SectionView

__all__ = ["masked_sum", "per_view", "safe_ratio", "weighted_share"]


def per_view(
    base: CustomerBase, compute: Callable[[np.ndarray], SectionView], *, filterable: bool = True
) -> dict[str, SectionView]:
    """``compute(mask)`` for every view of the base (only ``all`` when not filterable)."""
    if not filterable:
        return {ALL_VIEW: compute(base.views[ALL_VIEW][1])}
    return {key: compute(mask) for key, (_, mask) in base.views.items()}


def masked_sum(values: np.ndarray, mask: np.ndarray) -> float:
    """Sum of the finite ``values`` where ``mask`` holds."""
    selected = values[mask]
    return float(selected[np.isfinite(selected)].sum())


def safe_ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0."""
    return float(numerator / denominator) if denominator else float("nan")


def weighted_share(flags: np.ndarray, weights: np.ndarray, mask: np.ndarray) -> float:
    """Share of the (finite, positive-clipped) ``weights`` held by ``flags`` within ``mask``."""
    w = np.clip(np.nan_to_num(weights[mask]), 0, None)
    return safe_ratio(float(w[flags[mask]].sum()), float(w.sum()))
