"""Refund links: which order each refund row is attributed to.

The definitions (a refund is attributed to the order of the same customer with the
same ``order_id``) are those of :mod:`fidelite.features.purchases`, which re-exports
:class:`RefundLinks` and :func:`link_refunds`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features._arrays import is_in, keys_in

__all__ = ["RefundLinks", "link_refunds"]


@dataclass(frozen=True)
class RefundLinks:
    """Refund rows and the order rows they are attributed to (positions in one frame).

    Attributes
    ----------
    refund_rows, order_rows : ndarray of int64, shape (n_links,)
        ``refund_rows[i]`` refunds the order at ``order_rows[i]`` (same customer, same
        ``order_id``). Row positions count from 0 in the transactions frame the links
        were computed on. Unattributed refunds are absent.
    """

    refund_rows: np.ndarray
    order_rows: np.ndarray

    @classmethod
    def empty(cls) -> RefundLinks:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64))

    def refund_of(self, visible: np.ndarray) -> np.ndarray:
        """For the rows kept by ``visible``, the kept position of each refund's order.

        Parameters
        ----------
        visible : ndarray of bool, shape (n_rows,)
            Rows kept (e.g. ``timestamp < end``).

        Returns
        -------
        ndarray of int64, shape (visible.sum(),)
            Position (among the kept rows) of the order a kept refund is attributed to;
            -1 for orders, unattributed refunds and refunds whose order is not kept.
        """
        hidden = np.flatnonzero(~visible)
        out = np.full(visible.size - hidden.size, -1, dtype=np.int64)
        both = visible[self.refund_rows] & visible[self.order_rows]
        refunds, orders = self.refund_rows[both], self.order_rows[both]
        # A kept row's position is its row number less the hidden rows before it (few:
        # the rows after the cut-off), not a running count over every row.
        out[refunds - np.searchsorted(hidden, refunds)] = orders - np.searchsorted(hidden, orders)
        return out


def link_refunds(
    transactions: pd.DataFrame, *, keys: tuple[np.ndarray, np.ndarray] | None = None
) -> RefundLinks:
    """Attribute each refund to its order: same customer and same ``order_id``.

    Parameters
    ----------
    transactions : DataFrame, shape (n_rows, ...)
        Normalised transactions (``customer_id``, ``order_id``, ``amount``).
    keys : (ndarray, ndarray), optional
        Customer codes (int64) and order id keys (uint64, equal ids share a key), shape
        (n_rows,) each, when known (``Inputs.refund_links`` passes the loader's).

    Returns
    -------
    RefundLinks
        Positions of attributed refunds and of their orders. When several orders share
        the customer and id (the loader drops such repeats) the first one is used.
    """
    amount = transactions["amount"].to_numpy(dtype=np.float64)
    refund_rows = np.flatnonzero(amount < 0)
    if refund_rows.size == 0:
        return RefundLinks.empty()
    order_id = transactions["order_id"]
    # Only the orders sharing an id with a refund go on to the exact (customer, id) match.
    if keys is None:
        refund_ids = pd.unique(order_id.iloc[refund_rows].to_numpy(dtype=object)).astype(str)
        shares_id = is_in(order_id, refund_ids)
    else:
        shares_id = keys_in(keys[1], keys[1][refund_rows])
    order_rows = np.flatnonzero((amount > 0) & shares_id)
    rows = np.concatenate([order_rows, refund_rows])
    if keys is None:
        customer_ids = transactions["customer_id"].iloc[rows].to_numpy(dtype=object)
        customer_code = pd.factorize(customer_ids)[0].astype(np.int64)
    else:
        customer_code = keys[0][rows]
    order_code, order_uniques = pd.factorize(order_id.iloc[rows].to_numpy(dtype=object))
    key = customer_code * len(order_uniques) + order_code
    order_keys, refund_keys = key[: order_rows.size], key[order_rows.size :]
    unique_keys, first = np.unique(order_keys, return_index=True)
    if unique_keys.size == 0:
        return RefundLinks.empty()
    slot = np.minimum(np.searchsorted(unique_keys, refund_keys), unique_keys.size - 1)
    found = unique_keys[slot] == refund_keys
    return RefundLinks(refund_rows[found], order_rows[first[slot[found]]])
