"""Which raw-history requests may share one feature build: the merge key.

:class:`~fidelite.serving.merging.HistoryMerger` builds requests with equal keys
together. The key holds everything that makes a build depend on more than a customer's
own rows (the day, the tables' columns, the channel vocabulary), and is None for
requests built alone: large ones, and those whose ids the loader would rewrite.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from fidelite.features import ChannelVocabulary
from fidelite.features._arrays import safe_name
from fidelite.serving.history import PreparedHistory

__all__ = ["ID_COLUMNS", "MAX_MERGED_CUSTOMERS", "MAX_MERGED_ROWS", "merge_key"]

#: Most customers built in one merged call (larger requests are built alone).
MAX_MERGED_CUSTOMERS = 256
#: Requests with more history rows than this are built alone (their build is not
#: dominated by fixed costs).
MAX_MERGED_ROWS = 5_000
#: Id columns that get a per-request prefix in a merged build.
ID_COLUMNS = ("customer_id", "order_id")


def _printable_ends(value: str) -> bool:
    # no definition of whitespace (Python's, Arrow's) includes printable ASCII
    return bool(value) and " " < value[0] < "\x7f" and " " < value[-1] < "\x7f"


def _normal_ids(values: Sequence[str]) -> bool:
    """Whether ids are already what the loader makes of them (trimmed, not empty).

    Ids that start and end with printable ASCII (nearly all) are decided in Python;
    anything else goes through Arrow's trim, the loader's own.
    """
    if all(map(_printable_ends, values)):
        return True
    text = pa.array(values, type=pa.large_string())
    trimmed = pc.utf8_trim_whitespace(text)
    return bool(pc.all(pc.equal(text, trimmed)).as_py()) and bool(
        pc.min(pc.utf8_length(trimmed)).as_py()
    )


def _rows(tables: PreparedHistory) -> int:
    return sum(
        len(next(iter(table.values())))
        for table in (tables.transactions, tables.events, tables.customers)
        if table
    )


def merge_key(tables: PreparedHistory, channels: ChannelVocabulary) -> Hashable | None:
    """Requests with equal keys can share one build; None: this one is built alone.

    The key holds the day, the columns each table has, and the transaction channels the
    model has no column for (cleaned as the loaders clean them).
    """
    if tables.n_customers > MAX_MERGED_CUSTOMERS or _rows(tables) > MAX_MERGED_ROWS:
        return None
    shape = []
    for table in (tables.transactions, tables.events, tables.customers):
        if table is None:
            shape.append(None)
            continue
        shape.append(tuple(table))
        if not all(_normal_ids(table[name]) for name in ID_COLUMNS if name in table):
            return None
    # each distinct label cleaned once (a history repeats a few channels many times)
    if tables.events is not None and not {
        safe_name(v) for v in set(tables.events["channel"])
    } <= set(channels.event_channels):
        return None
    raw = tables.transactions.get("channel", [None])
    extra = frozenset(safe_name(v) for v in set(raw)) - set(channels.order_channels)
    return tables.as_of, tuple(shape), extra
