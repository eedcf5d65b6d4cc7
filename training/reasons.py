"""Reasons: the churn model's top contributions for a customer, in words.

:func:`top_reasons` picks each row's ``top_k`` positive contributions (the drivers
raising churn risk; rows without any get their largest drivers either way) and phrases
them with :func:`describe_many`. Phrases are rendered per feature over all rows that
selected it, so the Python work is proportional to ``n_rows x top_k``, not to the
number of features. The templates live in :mod:`fidelite.training.phrases`, keyed by
the contract's feature families; a column outside them is shown as its name in words
and its value.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fidelite.features.contract import feature_family
from fidelite.training.forest import run_rows
from fidelite.training.forest_kernels import compiled
from fidelite.training.phrase_dedupe import Coded, expand, render_unique, texts_unique
from fidelite.training.phrases import (
    NUMERIC_PHRASES,
    TEXT_PHRASES,
    Context,
    Parts,
    Template,
    words,
)

__all__ = ["describe", "describe_many", "top_reasons", "top_reasons_json"]

Row = Mapping[str, object]


def _fmt(value: object) -> str:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        x = math.nan
    if math.isnan(x):
        return "unknown" if value is None or isinstance(value, float) else str(value)
    return f"{x:,.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.2f}"


@functools.cache
def _lookup(column: str) -> tuple[str, str, Parts]:
    """(kind, key, parts) of a column: kind is "numeric", "text", "flag" or "generic".

    The key is the column itself for training's ``baseline_*`` columns and the contract
    family's name otherwise; ``parts`` holds the channel and window named in the column
    (read with the family's own column template).
    """
    if column in NUMERIC_PHRASES:
        return "numeric", column, Parts()
    family = feature_family(column)
    if family is None:
        return "generic", column, Parts()
    pattern = re.escape(family.template)
    pattern = pattern.replace(r"\{window\}", r"(?P<window>\d+)")
    pattern = pattern.replace(r"\{channel\}", r"(?P<channel>[0-9a-z_]+?)")
    found = re.fullmatch(pattern, column)
    groups = found.groupdict() if found else {}
    parts = Parts(words(groups.get("channel") or ""), groups.get("window") or "")
    if family.dtype == "bool":
        return "flag", family.name, parts
    if family.name in TEXT_PHRASES:
        return "text", family.name, parts
    if family.name in NUMERIC_PHRASES:
        return "numeric", family.name, parts
    return "generic", column, parts


def _as_float(values: np.ndarray) -> np.ndarray:
    """Numbers as float64; text, None and other non-numbers become NaN."""
    if values.dtype.kind in "biuf":
        return values.astype(float)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )


def _describe_text(key: str, raw: np.ndarray) -> Coded:
    template, missing = TEXT_PHRASES[key]
    distinct = texts_unique(raw)
    values, inverse = (raw, np.arange(len(raw))) if distinct is None else distinct
    texts = pd.Series(values, dtype=object).fillna("").astype(str).str.strip()
    # Identifier-like values read as words; a preference list gets ", " separators.
    spoken = texts.str.replace("_", " ", regex=False).str.replace(",", ", ", regex=False)
    phrases = [
        template.format(v=w) if t else missing
        for t, w in zip(texts.tolist(), spoken.tolist(), strict=True)
    ]
    return phrases, inverse


def _describe_generic(feature: str, raw: np.ndarray) -> list[str]:
    """Last resort for a feature without a template: its name in words and its value."""
    label = words(feature)
    return [f"{label}: {_fmt(v)}" for v in raw.tolist()]


def describe_many(
    feature: str, values: Sequence[object] | np.ndarray, context: Context
) -> list[str]:
    """Readable phrases for one feature's values over several customers.

    Parameters
    ----------
    feature : str
        Column name in the features frame (or a baseline column).
    values : array-like, shape (m,)
        The customers' values for it; NaN/None get the family's "missing" phrase.
    context : callable
        ``context(column)`` returns the same customers' values of another column as
        a float array of shape (m,), all-NaN when absent (e.g. the usual gap).

    Returns
    -------
    list of str, length m
    """
    raw = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    return expand(_describe_coded(feature, raw, context))


def _describe_coded(feature: str, raw: np.ndarray, context: Context) -> Coded:
    """:func:`describe_many` as distinct phrases and each row's position among them."""
    kind, key, parts = _lookup(feature)
    if kind == "text":
        return _describe_text(key, raw)
    if kind == "flag":
        phrases = [
            f"{'opted in to' if bool(v) else 'not opted in to'} {parts.channel}"
            for v in raw.tolist()
        ]
        return phrases, np.arange(len(phrases))
    if kind == "generic":
        phrases = _describe_generic(feature, raw)
        return phrases, np.arange(len(phrases))
    render, missing_phrase = NUMERIC_PHRASES[key]
    return _render_numeric(
        render, missing_phrase.format(channel=parts.channel), parts, raw, context
    )


def _render_numeric(
    render: Template, missing_phrase: str, parts: Parts, raw: np.ndarray, context: Context
) -> Coded:
    numbers = _as_float(raw)
    missing = np.isnan(numbers)
    inverse = np.zeros(len(numbers), np.int64)  # missing rows: the missing phrase, first
    if missing.all():
        return [missing_phrase], inverse
    present = np.flatnonzero(~missing)
    phrases, codes = render_unique(
        render, parts, numbers[present], lambda col: context(col)[present]
    )
    inverse[present] = codes + 1
    return [missing_phrase, *phrases], inverse


def describe(feature: str, value: object, row: Row) -> str:
    """Readable phrase for one feature value of one customer.

    Parameters
    ----------
    feature : str
        Column name in the features frame.
    value : object
        The customer's value for it.
    row : mapping
        The customer's other feature values (for context such as the usual gap).
    """

    def context(column):
        return _as_float(np.asarray([row.get(column)], dtype=object))

    return describe_many(feature, np.asarray([value], dtype=object), context)[0]


def top_reasons(
    contributions: pd.DataFrame | np.ndarray,
    features: pd.DataFrame | Mapping[str, np.ndarray],
    top_k: int = 3,
    feature_names: Sequence[str] | None = None,
) -> list[list[str]]:
    """Phrases for the ``top_k`` features pushing each customer towards churn.

    Parameters
    ----------
    contributions : DataFrame or ndarray, shape (n, n_features)
        Per-feature contributions to the churn log-odds (for a model boosted from
        the BG/NBD baseline: to its departure from the baseline log-odds).
    features : DataFrame, shape (n, m), or mapping of str -> ndarray of shape (n,)
        The customers' raw feature values, same row order (a mapping of column arrays
        is the frame-free path of ``FideliteModel.predict_arrays``).
    top_k : int
        Reasons per customer. Only positive contributions (raising churn risk)
        are used; a customer with none gets the ``top_k`` largest contributions
        by absolute value instead, whose phrases state facts without implying a
        direction. Exact zeros are never reasons.
    feature_names : sequence of str, optional
        Column names of an ndarray ``contributions``.

    Returns
    -------
    list of list of str, length n
        Most important first.
    """
    table, counts = _phrase_table(contributions, features, top_k, feature_names, quoted=False)
    return [row[:count] for row, count in zip(table.tolist(), counts, strict=False)]


def top_reasons_json(
    contributions: np.ndarray,
    features: Mapping[str, np.ndarray],
    top_k: int = 3,
    feature_names: Sequence[str] | None = None,
) -> np.ndarray:
    """``scoreframe.json_lists(top_reasons(...))``, the same strings, shape (n,) object.

    Each distinct phrase is rendered and JSON-quoted once, and each row's list joined
    from the quoted phrases (no per-row list of phrases, no quoting per row).
    """
    table, counts = _phrase_table(contributions, features, top_k, feature_names, quoted=True)
    out = np.empty(len(counts), dtype=object)
    out[:] = _json_rows(table, counts)
    return out


def _json_rows(table: np.ndarray, counts: list[int]) -> list[str]:
    """Each row's first ``counts[i]`` quoted phrases of ``table`` (n, k) as a JSON list."""
    if table.shape[1] != 3:
        return ["[" + ", ".join(r[:c]) + "]" for r, c in zip(table.tolist(), counts, strict=True)]
    # The service's three reasons: one f-string per row, a third of a list and a join.
    columns = [table[:, j].tolist() for j in range(3)]
    out = [f"[{a}, {b}, {c}]" for a, b, c in zip(*columns, strict=True)]
    for i in np.flatnonzero(np.asarray(counts) < 3).tolist():  # rows with fewer reasons
        out[i] = "[" + ", ".join(column[i] for column in columns[: counts[i]]) + "]"
    return out


def _phrase_table(
    contributions: pd.DataFrame | np.ndarray,
    features: pd.DataFrame | Mapping[str, np.ndarray],
    top_k: int,
    feature_names: Sequence[str] | None,
    quoted: bool,
) -> tuple[np.ndarray, list[int]]:
    """Each row's reasons (JSON-quoted when ``quoted``), shape (n, k) object, and how
    many of each row's ``k`` count (the rest are None)."""
    if isinstance(contributions, pd.DataFrame):
        feature_names = [str(c) for c in contributions.columns]
        contributions = contributions.to_numpy(dtype=float)
    values = np.asarray(contributions, dtype=float)
    names = list(feature_names or [])
    n, n_features = values.shape
    k = min(top_k, n_features)
    if n == 0 or k <= 0:
        return np.empty((n, 0), dtype=object), [0] * n
    top, keep = (_top_numpy if n < _COMPILED_MIN_ROWS else _top_compiled)(values, k)
    table = np.empty((n, k), dtype=object)
    row_idx, slot_idx = np.nonzero(keep)
    chosen = top[row_idx, slot_idx]
    context = _FrameContext(features, n)
    # One rendering call per distinct feature, over all rows that picked it.
    # int16 sorts by radix (a tenth of int64's merge sort on 30,000 picks)
    small = chosen.astype(np.int16) if n_features < 2**15 else chosen
    by_feature = np.argsort(small, kind="stable")
    ordered = chosen[by_feature]
    cuts = (np.flatnonzero(ordered[1:] != ordered[:-1]) + 1).tolist()
    for start, stop in zip([0, *cuts], [*cuts, len(ordered)], strict=True):
        group = by_feature[start:stop]
        if len(group) == 0:
            continue
        feature = names[int(ordered[start])]
        rows = row_idx[group]
        phrases, inverse = _describe_coded(
            feature, context.raw(feature, rows), lambda col, rows=rows: context.numeric(col, rows)
        )
        distinct = np.empty(len(phrases), dtype=object)
        distinct[:] = [_quote(p) for p in phrases] if quoted else phrases
        table[rows, slot_idx[group]] = distinct[inverse]
    return table, keep.sum(axis=1).tolist()


#: The JSON encoder's string escaper, as ``scoreframe.json_lists`` uses it.
_quote = json.encoder.encode_basestring_ascii


def _top_numpy(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` highest-ranked features (n, k) and which of them count (> 0).

    The rank is the contribution (NaN lowest), or its magnitude in rows without a
    positive one; most important first.
    """
    n, n_features = values.shape
    values = np.where(np.isnan(values), -np.inf, values)
    # Rank by contribution; rows with no risk-raising driver rank by magnitude.
    has_positive = (values > 0).any(axis=1, keepdims=True)
    values = np.where(has_positive, values, np.abs(np.where(np.isinf(values), 0.0, values)))
    # argpartition finds the k largest in O(n_features); only those k get sorted.
    top = (
        np.argpartition(-values, k - 1, axis=1)[:, :k]
        if k < n_features
        else (np.broadcast_to(np.arange(n_features), (n, n_features)))
    )
    # Row-wise gathers by fancy indexing (take_along_axis costs more for a few rows).
    each_row = np.arange(n)[:, None]
    top_values = values[each_row, top]
    order = np.argsort(-top_values, axis=1, kind="stable")
    return top[each_row, order], top_values[each_row, order] > 0


def _top_compiled(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_top_numpy` in one compiled pass over the rows (argpartition's per-row cost
    was ~2 us, 20 ms for 10,000 rows). Same picks; of exactly equal contributions the
    first feature comes first (argpartition leaves such ties in no defined order)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    top, counts = np.zeros((len(values), k), np.int64), np.zeros(len(values), np.int64)
    run_rows(_top_positive, len(values), values, k, top, counts)  # two threads from 2,048
    return top, np.arange(k)[None, :] < counts[:, None]


@compiled
def _top_positive(start, stop, values, k, top, counts):
    """Rows ``start .. stop`` of :func:`_top_compiled`: ``top[i]`` the picks, ``counts[i]``
    how many count."""
    n_features = values.shape[1]
    best = np.empty(k, np.float64)
    for i in range(start, stop):
        positive = False
        for j in range(n_features):
            if values[i, j] > 0:
                positive = True
                break
        count = 0
        for j in range(n_features):
            v = values[i, j]
            rank = v if positive else (0.0 if np.isnan(v) or np.isinf(v) else abs(v))
            if not rank > 0 or (count == k and not rank > best[k - 1]):
                continue
            slot = count if count < k else k - 1
            while slot > 0 and rank > best[slot - 1]:
                best[slot], top[i, slot] = best[slot - 1], top[i, slot - 1]
                slot -= 1
            best[slot], top[i, slot] = rank, j
            count = min(count + 1, k)
        counts[i] = count


def compile_top_reasons() -> None:
    """Compile :func:`_top_compiled`'s loop now (see ``training.arrays.warm_up``)."""
    _top_compiled(np.zeros((1, 2)), 1)


#: Rows from which the top reasons are picked by the compiled loop.
_COMPILED_MIN_ROWS = 64


class _FrameContext:
    """Column access into a features frame (or mapping of arrays), converting each once."""

    def __init__(self, frame: pd.DataFrame | Mapping[str, np.ndarray], n: int) -> None:
        self.frame = frame
        self.n = n
        self._numeric: dict[str, np.ndarray] = {}

    def _column(self, column: str) -> np.ndarray | None:
        frame = self.frame
        if isinstance(frame, pd.DataFrame):
            return frame[column].to_numpy() if column in frame.columns else None
        values = frame.get(column)
        return None if values is None else np.asarray(values)

    def raw(self, column: str, rows: np.ndarray) -> np.ndarray:
        values = self._column(column)
        if values is None:
            return np.full(len(rows), None, dtype=object)
        return values[rows]

    def numeric(self, column: str, rows: np.ndarray) -> np.ndarray:
        if column not in self._numeric:
            values = self._column(column)
            self._numeric[column] = np.full(self.n, np.nan) if values is None else _as_float(values)
        return self._numeric[column][rows]
