"""Feature rows from a ``/predict`` request, validated against the contract, as columns.

Every column must belong to a feature family of :mod:`fidelite.features.contract`; the
family gives its type and allowed range. Values are checked strictly: numbers must be
JSON numbers (no booleans, no numeric strings, nothing non-finite), text columns JSON
strings, flags JSON booleans; ``null`` means missing. Cross-field rules the models rely
on (``recency <= T``, no recency without a repeat purchase, ``frequency <= orders_total``)
are checked too, so a row that passes can always be scored.

Small batches are checked row by row (cheapest for one-customer requests); large ones in
bulk when every row has the same columns (one type check and one numpy conversion for
the whole table; large bodies are decoded straight into such columns by
:mod:`fidelite.serving.bulk_rows`), column by column otherwise, which also names
whatever the bulk check refused. All give the same answers.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fidelite.features.contract import FeatureFamily, feature_family
from fidelite.serving.errors import PayloadTooLargeError, RequestError

ID_COLUMN = "customer_id"
MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 256
#: No feature is meaningful beyond this magnitude (money, counts, days): larger values
#: are client bugs, and overflow the BG/NBD arithmetic.
MAX_MAGNITUDE = 1e12
#: Days since the first purchase cannot exceed the supported calendar (1700..2200).
MAX_DAYS = 200_000.0
RFM_COLUMNS = ("frequency", "recency", "T")
#: Row-by-row checking below this many rows, column-wise numpy above.
ROWWISE_MAX_ROWS = 32
_SAMPLES = 5
_NUMERIC, _TEXT, _FLAG = "number", "text", "flag"


@dataclass(frozen=True)
class ColumnRule:
    """How one feature column is checked (derived from its contract family)."""

    kind: str
    low: float
    high: float


@functools.cache
def column_rule(column: str) -> ColumnRule | None:
    """The rule of a feature column, None for a column outside the contract."""
    family: FeatureFamily | None = feature_family(column)
    if family is None:
        return None
    if family.dtype in ("float", "int"):
        low = -MAX_MAGNITUDE if family.low is None else float(family.low)
        high = MAX_MAGNITUDE if family.high is None else float(family.high)
        if column in RFM_COLUMNS:
            high = min(high, MAX_DAYS)
        return ColumnRule(_NUMERIC, low, high)
    return ColumnRule(_FLAG if family.dtype == "bool" else _TEXT, -math.inf, math.inf)


@dataclass(frozen=True)
class FeatureBatch:
    """Validated feature rows.

    Attributes
    ----------
    ids : list of str, length n
        Customer ids in request order (unique).
    numbers : dict of str to ndarray
        Numeric columns as float64 arrays of shape (n,), NaN where missing.
    others : dict of str to ndarray
        Text and flag columns as object arrays of shape (n,), None where missing.
    """

    ids: list[str]
    numbers: dict[str, np.ndarray]
    others: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> np.ndarray | None:
        values = self.numbers.get(name)
        return values if values is not None else self.others.get(name)


def _fail(column: str, message: str, ids: Sequence[str] = ()) -> RequestError:
    where = f" (customers {list(ids)[:_SAMPLES]})" if ids else ""
    return RequestError(f"features.{column}: {message}{where}", field=f"features.{column}")


def _check_id(value: object, position: int) -> str:
    if not isinstance(value, str):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise RequestError(
            f"features.customer_id: must be a string in row {position}, got {got}",
            field="features.customer_id",
        )
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise RequestError(
            f"features.customer_id: must have 1 to {MAX_ID_LENGTH} characters "
            f"(row {position} has {len(value)})",
            field="features.customer_id",
        )
    return value


def _rule(column: str) -> ColumnRule:
    rule = column_rule(column) if isinstance(column, str) else None
    if rule is None:
        shown = column[:60] if isinstance(column, str) else column
        raise _fail(str(shown), "not a feature column of the contract (see `fidelite features`)")
    return rule


def _check_value(column: str, rule: ColumnRule, value: Any, cid: str) -> None:
    kind = type(value)
    if rule.kind == _NUMERIC:
        if kind is not float and kind is not int:
            raise _fail(column, f"must be a number or null, got a {kind.__name__}", [cid])
        if not rule.low <= value <= rule.high:
            shown = "non-finite" if not math.isfinite(value) else f"{value:g}"
            raise _fail(column, f"must be in [{rule.low:g}, {rule.high:g}], got {shown}", [cid])
    elif rule.kind == _TEXT:
        if kind is not str:
            raise _fail(column, f"must be a string or null, got a {kind.__name__}", [cid])
        if len(value) > MAX_TEXT_LENGTH:
            raise _fail(column, f"longer than {MAX_TEXT_LENGTH} characters", [cid])
    elif kind is not bool:
        raise _fail(column, f"must be true, false or null, got a {kind.__name__}", [cid])


def _rowwise(rows: Sequence[dict[str, Any]], ids: list[str]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    n = len(rows)
    for position, row in enumerate(rows):
        cid = ids[position]
        for column, value in row.items():
            if column == ID_COLUMN:
                continue
            rule = _rule(column)
            if value is not None:
                _check_value(column, rule, value, cid)
            values = columns.get(column)
            if values is None:
                values = columns[column] = [None] * n
            values[position] = value
    return columns


def _columnwise(rows: Sequence[dict[str, Any]], ids: list[str]) -> dict[str, list[Any]]:
    names: set[str] = set()
    for row in rows:
        names.update(row)
    names.discard(ID_COLUMN)
    columns = {}
    for column in sorted(names, key=str):
        rule = _rule(column)
        values = [row.get(column) for row in rows]
        kinds = set(map(type, values)) - {type(None)}
        allowed = {_NUMERIC: {float, int}, _TEXT: {str}, _FLAG: {bool}}[rule.kind]
        texts = [v for v in values if type(v) is str] if rule.kind == _TEXT else []
        if not kinds <= allowed or any(len(v) > MAX_TEXT_LENGTH for v in texts):
            # the row-wise check names the first offending customer
            for position, value in enumerate(values):
                if value is not None:
                    _check_value(column, rule, value, ids[position])
        columns[column] = values
    return columns


def _uniform(rows: Sequence[dict[str, Any]], ids: list[str]) -> FeatureBatch | None:
    """Large batches whose rows all have the same columns, typed in bulk (value ranges
    are left to the caller).

    The common case of a CRM export: every value of every numeric column goes through
    one type check and one numpy conversion for the whole table, instead of one Python
    step per column per row. Returns None whenever anything is unusual (rows with
    different columns, a column outside the contract, a value of the wrong type, a NaN
    literal, a long text): the column-by-column path then finds and names it.
    """
    first = rows[0]
    if set(map(len, rows)) != {len(first)}:
        return None
    names = sorted((name for name in first if name != ID_COLUMN), key=str)
    rules = [column_rule(name) if isinstance(name, str) else None for name in names]
    if any(rule is None for rule in rules):
        return None
    numeric = [n for n, r in zip(names, rules, strict=True) if r.kind == _NUMERIC]
    if len(numeric) < 2:
        return None
    try:
        table = list(map(operator.itemgetter(*numeric), rows))
        values = itertools.chain.from_iterable(table)
        if not set(map(type, values)) <= {float, int, type(None)}:
            return None
        matrix = np.array(table, dtype=np.float64).T.copy()
        others = _uniform_others(rows, names, rules)
    except (KeyError, OverflowError, ValueError, TypeError):
        return None
    if others is None:
        return None
    nones = operator.countOf(itertools.chain.from_iterable(table), None)
    if int(np.isnan(matrix).sum()) != nones:
        return None  # a NaN literal: named by the column-by-column path
    # ranges are checked by the caller, after the required columns (as the other paths)
    return FeatureBatch(ids=ids, numbers=dict(zip(numeric, matrix, strict=True)), others=others)


def _uniform_others(
    rows: Sequence[dict[str, Any]], names: list[str], rules: list[ColumnRule | None]
) -> dict[str, np.ndarray] | None:
    """Text and flag columns of :func:`_uniform`, or None if one needs a closer look."""
    others = {}
    for name, rule in zip(names, rules, strict=True):
        assert rule is not None
        if rule.kind == _NUMERIC:
            continue
        values = [row[name] for row in rows]
        kinds = set(map(type, values)) - {type(None)}
        if not kinds <= ({str} if rule.kind == _TEXT else {bool}):
            return None
        if rule.kind == _TEXT and any(len(v) > MAX_TEXT_LENGTH for v in values if v is not None):
            return None
        array = np.empty(len(values), dtype=object)
        array[:] = values
        others[name] = array
    return others


def _numbers(columns: dict[str, list[Any]], ids: list[str]) -> dict[str, np.ndarray]:
    """Numeric columns as float64 arrays (one numpy conversion for all of them)."""
    names = [c for c in columns if column_rule(c).kind == _NUMERIC]
    if not names:
        return {}
    lists = [columns[c] for c in names]
    if len(ids) <= ROWWISE_MAX_ROWS:
        matrix = np.array(lists, dtype=np.float64).reshape(len(names), len(ids))
    else:  # one conversion per column is faster for long columns
        matrix = np.vstack([np.array(values, dtype=np.float64) for values in lists])
    missing = np.isnan(matrix)
    n_missing = int(missing.sum())
    if n_missing and n_missing != sum(values.count(None) for values in lists):
        for name, values, holes in zip(names, lists, missing, strict=True):
            bad = [ids[i] for i in np.flatnonzero(holes) if values[i] is not None]
            if bad:
                raise _fail(name, "NaN is not a value: send null for a missing value", bad)
    return _in_range(names, matrix, ids)


def _in_range(names: list[str], matrix: np.ndarray, ids: list[str]) -> dict[str, np.ndarray]:
    """Numeric columns (rows of ``matrix``, NaN = missing) checked against their ranges."""
    missing = np.isnan(matrix)
    rules = [column_rule(c) for c in names]
    low = np.array([r.low for r in rules])[:, None]
    high = np.array([r.high for r in rules])[:, None]
    with np.errstate(invalid="ignore"):
        outside = ~missing & ((matrix < low) | (matrix > high))
    if outside.any():
        row = int(np.flatnonzero(outside.any(axis=1))[0])
        rule, values = rules[row], matrix[row]
        first = int(np.flatnonzero(outside[row])[0])
        shown = "non-finite" if not np.isfinite(values[first]) else f"{values[first]:g}"
        raise _fail(
            names[row],
            f"must be in [{rule.low:g}, {rule.high:g}], got {shown}",
            [ids[i] for i in np.flatnonzero(outside[row])],
        )
    return dict(zip(names, matrix, strict=True))


def _is_none(values: np.ndarray) -> np.ndarray:
    """Where an object column holds None, shape (n,)."""
    return np.fromiter((v is None for v in values.tolist()), dtype=bool, count=len(values))


def _check_consistency(numbers: dict[str, np.ndarray], ids: list[str]) -> None:
    """Rules between columns that the purchase models assume."""
    frequency, recency, age = (numbers.get(c) for c in RFM_COLUMNS)
    orders = numbers.get("orders_total")
    if recency is not None and age is not None:
        bad = recency > age * (1 + 1e-12) + 1e-9
        if bad.any():
            raise _fail("recency", "must not exceed T", [ids[i] for i in np.flatnonzero(bad)])
    if frequency is not None and recency is not None:
        bad = (frequency == 0) & (recency > 0)
        if bad.any():
            message = "must be 0 when frequency is 0 (no repeat purchase)"
            raise _fail("recency", message, [ids[i] for i in np.flatnonzero(bad)])
    if frequency is not None and orders is not None:
        bad = frequency > orders
        if bad.any():
            message = "repeat purchase days cannot exceed orders_total"
            raise _fail("frequency", message, [ids[i] for i in np.flatnonzero(bad)])
    if orders is not None:
        buyers = np.nan_to_num(orders) > 0
        for column in (*RFM_COLUMNS, "monetary_value"):
            values = numbers.get(column)
            if values is not None and (buyers & np.isnan(values)).any():
                missing = np.flatnonzero(buyers & np.isnan(values))
                raise _fail(column, "required for customers with orders", [ids[i] for i in missing])


def feature_batch(
    rows: Sequence[dict[str, Any]], *, required: Sequence[str], max_rows: int
) -> FeatureBatch:
    """Validate feature rows and return them column-wise.

    ``rows``: one object per customer (``customer_id`` and feature columns); ``required``:
    columns every row must carry (the model's required inputs); ``max_rows``: largest
    accepted batch (``FIDELITE_MAX_BATCH``).

    Raises
    ------
    RequestError
        Naming the column (``features.<column>``) and up to five customers.
    PayloadTooLargeError
        More than ``max_rows`` rows.
    """
    if len(rows) > max_rows:
        raise PayloadTooLargeError(
            f"features: {len(rows)} rows exceed the limit of {max_rows} per request "
            "(FIDELITE_MAX_BATCH)",
            field="features",
        )
    if not rows:
        raise RequestError("features: give at least one row", field="features")
    ids = [_check_id(row.get(ID_COLUMN), i) for i, row in enumerate(rows)]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        repeated = [cid for cid in ids if cid in seen or seen.add(cid)]
        raise RequestError(
            f"features.customer_id: duplicate ids {repeated[:_SAMPLES]}",
            field="features.customer_id",
        )
    uniform = _uniform(rows, ids) if len(rows) > ROWWISE_MAX_ROWS else None
    if uniform is not None:
        names = list(uniform.numbers)
        matrix = np.vstack([uniform.numbers[n] for n in names])
        return bulk_checks(ids, names, matrix, uniform.others, required)
    checker = _rowwise if len(rows) <= ROWWISE_MAX_ROWS else _columnwise
    columns = checker(rows, ids)
    absent = [column for column in required if column not in columns]
    if absent:
        raise _fail(absent[0], f"required column missing (all required: {list(required)})")
    for column in required:
        holes = [ids[i] for i, v in enumerate(columns[column]) if v is None]
        if column not in RFM_COLUMNS and column != "monetary_value" and holes:
            raise _fail(column, "required, got null", holes)
    numbers = _numbers(columns, ids)
    others: dict[str, np.ndarray] = {}
    for column, values in columns.items():
        if column not in numbers:
            array = np.empty(len(values), dtype=object)
            array[:] = values
            others[column] = array
    _check_consistency(numbers, ids)
    return FeatureBatch(ids=ids, numbers=numbers, others=others)


def bulk_checks(
    ids: list[str],
    numeric: Sequence[str],
    matrix: np.ndarray,
    others: dict[str, np.ndarray],
    required: Sequence[str],
) -> FeatureBatch:
    """Required columns, ranges and rules between columns of typed columns (``matrix``:
    numeric columns as rows, NaN = missing; ``others``: text and flag columns)."""
    _check_required(FeatureBatch(ids, dict(zip(numeric, matrix, strict=True)), others), required)
    numbers = _in_range(list(numeric), matrix, ids)
    _check_consistency(numbers, ids)
    return FeatureBatch(ids=ids, numbers=numbers, others=others)


def _check_required(batch: FeatureBatch, required: Sequence[str]) -> None:
    """The required-column checks of :func:`feature_batch` on a checked batch (NaN or
    None = missing), in the same order and with the same messages."""
    absent = [column for column in required if batch.column(column) is None]
    if absent:
        raise _fail(absent[0], f"required column missing (all required: {list(required)})")
    for column in required:
        if column in RFM_COLUMNS or column == "monetary_value":
            continue
        values = batch.column(column)
        assert values is not None
        holes = np.isnan(values) if column in batch.numbers else _is_none(values)
        if holes.any():
            raise _fail(column, "required, got null", [batch.ids[i] for i in np.flatnonzero(holes)])
