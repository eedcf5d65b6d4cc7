"""Phrases rendered once per distinct value (with its context), not once per customer.

The reasons of 10,000 customers are ~30,000 phrases, but the features behind them take
few distinct values (whole days, counts, shares rounded by the data): rendering each
distinct value once and indexing the result gives the same strings for a fraction of the
formatting. Values are told apart by their bits (``-0.0`` and ``0.0`` print differently),
and a template that reads another column (the usual gap, ...) through its context is
rendered per distinct (value, context values) instead.

Templates must render each value from that value and the same row's context values only
(every template of :mod:`fidelite.training.phrases` is such an element-wise list).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from fidelite.training.phrases import Context, Parts, Template

__all__ = ["DEDUPE_MIN_ROWS", "Coded", "expand", "render_unique", "texts_unique"]

#: Distinct phrases and, per row, the position of its phrase among them.
Coded = tuple[list[str], np.ndarray]

#: Fewer values than this are rendered one by one (a one-customer request's reasons).
DEDUPE_MIN_ROWS = 16
#: Columns each template asked its context for (learnt at its first rendering).
_CONTEXT_COLUMNS: dict[Callable, tuple[str, ...]] = {}


def expand(coded: Coded) -> list[str]:
    """The per-row phrases of a :data:`Coded`, list of length m."""
    phrases, inverse = coded
    return [phrases[i] for i in inverse.tolist()]


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def render_unique(render: Template, parts: Parts, numbers: np.ndarray, context: Context) -> Coded:
    """``render(parts, numbers, context)`` as :data:`Coded`, rendering each distinct
    (value, context values) once.

    Parameters
    ----------
    numbers : ndarray of float, shape (m,)
        Values to phrase (no NaN).
    context : callable
        As for the template: column -> float array of shape (m,).
    """
    if len(numbers) < DEDUPE_MIN_ROWS:  # few rows: the sorting would cost more than it saves
        phrases = render(parts, numbers, context)
        return list(phrases), np.arange(len(phrases))
    columns = _CONTEXT_COLUMNS.get(render, ())
    for _ in range(2):
        keys = [_bits(numbers), *(_bits(context(col)) for col in columns)]
        if len(keys) == 1:  # hashing the bits: no sort (np.unique's was most of the cost)
            inverse, distinct = pd.factorize(keys[0])
            first = np.empty(len(distinct), np.int64)
            first[inverse[::-1]] = np.arange(len(inverse) - 1, -1, -1)
        else:
            stacked = np.column_stack(keys)
            _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
        asked: list[str] = []

        def picked(col: str, first: np.ndarray = first, asked: list[str] = asked) -> np.ndarray:
            asked.append(col)
            return np.asarray(context(col))[first]

        phrases = render(parts, numbers[first], picked)
        if set(asked) <= set(columns):
            return list(phrases), inverse.reshape(-1)
        # The template read a column the keys did not hold: key on it too, once.
        columns = _CONTEXT_COLUMNS[render] = tuple(dict.fromkeys([*columns, *asked]))
    phrases = render(parts, numbers, context)  # pragma: no cover - columns keep changing
    return list(phrases), np.arange(len(phrases))


def texts_unique(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct values of a text column and each row's position among them, when every
    value is a ``str`` or None (else None: other objects are phrased row by row, as
    values equal as keys, e.g. ``1`` and ``1.0``, may read differently).
    """
    index: dict[object, int] = {}
    inverse = []
    for value in raw.tolist():
        if value is not None and type(value) is not str:
            return None
        inverse.append(index.setdefault(value, len(index)))
    distinct = np.empty(len(index), dtype=object)
    distinct[:] = list(index)
    return distinct, np.asarray(inverse, dtype=np.int64)
