"""The campaigns table: who was contacted or held out, when, and with what offer.

One row per customer contacted (``treatment``) or held out (``control``) in a campaign
(:data:`~fidelite.features.contract.CAMPAIGNS`). The loader validates it like the other
tables; what campaigns did is measured from the transactions
(:func:`fidelite.features.purchases.purchases_between` over the response window).
``fidelite winback --out`` writes this same format, so a campaign's file goes back in
with ``--campaigns`` the next time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features._columns import as_id, as_number, as_optional_text
from fidelite.features._source import SourceTable, drop_duplicates, fail, finish, require_columns
from fidelite.features._timestamps import as_timestamp
from fidelite.features.contract import CAMPAIGN_GROUP_ALIASES, CAMPAIGN_GROUPS, CAMPAIGNS
from fidelite.features.data import TableSource, source_table

__all__ = ["load_campaigns"]

_GROUP_OF = {alias: group for group, aliases in CAMPAIGN_GROUP_ALIASES.items() for alias in aliases}


def load_campaigns(
    source: TableSource, *, name: str = "campaigns", date_format: str | None = None
) -> pd.DataFrame:
    """Load, validate and normalise a campaigns table.

    Parameters are those of :func:`fidelite.features.data.load_transactions`; the
    table has the columns of ``contract.CAMPAIGNS``.

    Returns
    -------
    DataFrame, shape (n_rows - repeats, 7)
        ``customer_id``, ``campaign_id`` (str); ``sent_at`` (datetime64[ns] UTC);
        ``group`` ("treatment" or "control"; the aliases of
        ``contract.CAMPAIGN_GROUP_ALIASES`` are accepted in any case);
        ``channel`` (stripped lower-case str, missing (NaN) when not recorded);
        ``offer_cost`` (float64 currency >= 0, 0 when absent or blank); ``offer`` (str,
        missing when not recorded). A
        customer listed again in the same group of the same campaign is a repeat: the
        first row is kept, the count logged and stored in
        ``df.attrs["duplicates_dropped"]``. Campaigns without control rows are kept
        (for reporting; uplift cannot be learnt from them).

    Raises
    ------
    DataContractError
        Empty table, missing required column, missing ids, unparsable or missing
        ``sent_at``, ``group`` values outside the accepted spellings (every one listed),
        non-numeric, infinite or negative ``offer_cost``, a customer in both groups of
        one campaign.
    """
    table = source_table(source, name, date_format=date_format)
    require_columns(table, CAMPAIGNS.required)
    frame = table.frame
    result = finish(
        {
            "customer_id": as_id(table, "customer_id"),
            "campaign_id": as_id(table, "campaign_id"),
            "sent_at": as_timestamp(table, "sent_at", allow_missing=False),
            "group": _as_group(table),
            "channel": _as_optional_label(frame, "channel"),
            "offer_cost": _as_cost(table),
            "offer": as_optional_text(frame, "offer"),
        }
    )
    _refuse_both_groups(table, result)
    repeated = result.duplicated(["customer_id", "campaign_id", "group"], keep="first")
    return drop_duplicates(result, repeated.to_numpy(), table.label, "customer, campaign and group")


def _as_group(table: SourceTable) -> pd.Series:
    values = table.frame["group"]
    codes, uniques = pd.factorize(values)
    spelled = [str(u).strip().lower() for u in uniques]
    groups = np.array([_GROUP_OF.get(s) for s in spelled] + [None], dtype=object)
    mapped = groups[np.where(codes < 0, len(uniques), codes)]
    bad = pd.isna(mapped)
    if bad.any():
        unknown = sorted({str(v) for v in values[bad] if not pd.isna(v)})
        problem = (f"unknown group value(s) {unknown}" if unknown else "missing group") + (
            f"; expected {' or '.join(CAMPAIGN_GROUPS)} (accepted spellings: "
            + "; ".join(f"{g}: {', '.join(a)}" for g, a in CAMPAIGN_GROUP_ALIASES.items())
            + ")"
        )
        raise fail(table, "group", problem, bad, values)
    return pd.Series(mapped, index=values.index, dtype=object, name="group")


def _as_optional_label(frame: pd.DataFrame, column: str) -> pd.Series:
    """Stripped, lower-case names; missing where blank or absent."""
    if column not in frame.columns:
        return pd.Series(None, index=frame.index, dtype=object, name=column)
    values = frame[column]
    text = values.astype("str").str.strip().str.lower()
    keep = values.notna().to_numpy() & (text != "").to_numpy()
    return pd.Series(
        np.where(keep, text.to_numpy(dtype=object), None), index=frame.index, name=column
    )


def _as_cost(table: SourceTable) -> pd.Series:
    frame = table.frame
    if "offer_cost" not in frame.columns:
        return pd.Series(0.0, index=frame.index, name="offer_cost")
    cost = as_number(table, "offer_cost", allow_missing=True, fill=0.0)
    negative = (cost < 0).to_numpy()
    if negative.any():
        raise fail(table, "offer_cost", "negative cost", negative, frame["offer_cost"])
    return cost


def _refuse_both_groups(table: SourceTable, result: pd.DataFrame) -> None:
    """A customer cannot be both contacted and held out in one campaign."""
    groups = result.groupby(["campaign_id", "customer_id"], sort=False)["group"].transform(
        "nunique"
    )
    both = (groups > 1).to_numpy()
    if both.any():
        raise DataContractError(
            f"{table.label}: column 'group': {int(both.sum())} row(s) put a customer in "
            "both treatment and control of one campaign; e.g. "
            + ", ".join(
                f"row {p}: campaign {result['campaign_id'].iat[p]!r}, customer "
                f"{result['customer_id'].iat[p]!r}"
                for p in np.flatnonzero(both)[:5]
            ),
            field="group",
        )
