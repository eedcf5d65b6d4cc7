"""Reading a campaigns table (``contract.CAMPAIGNS``) for the uplift code and commands.

Also what a planned campaign writes back: :func:`campaigns_table` (both groups of a
win-back plan) and :func:`holdout_draw` (the reproducible control-group draw). The reader
is a stand-in until ``fidelite.features`` ships its ``load_campaigns`` (then it
forwards to it). Validation follows the other tables: a clear
:class:`~fidelite.errors.DataContractError` naming the file, the column and rows.

``group`` is normalised to ``treatment`` or ``control``; accepted aliases (any case):
:data:`GROUP_ALIASES`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features.contract import CAMPAIGNS
from fidelite.features.data import read_table

if TYPE_CHECKING:
    from fidelite.training.winback import WinbackPlan

__all__ = ["GROUP_ALIASES", "campaigns_table", "holdout_draw", "load_campaigns_table"]

#: Spellings of each group accepted in the ``group`` column (compared lower-cased).
GROUP_ALIASES: dict[str, tuple[str, ...]] = {
    "treatment": ("treatment", "treated", "test", "target", "contacted", "contact", "sent", "1"),
    "control": (
        "control",
        "holdout",
        "hold_out",
        "hold-out",
        "held_out",
        "ctrl",
        "not_contacted",
        "0",
    ),
}
_GROUP = {alias: name for name, aliases in GROUP_ALIASES.items() for alias in aliases}


def _fail(label: str, column: str, problem: str, bad: np.ndarray, values: pd.Series):
    rows = np.flatnonzero(bad)
    sample = ", ".join(f"row {r}: {column}={values.iloc[r]!r}" for r in rows[:5])
    return DataContractError(
        f"{label}: column '{column}': {problem} in {len(rows)} row(s); e.g. {sample}",
        field=column,
    )


def load_campaigns_table(
    source: str | Path | pd.DataFrame, *, name: str = "campaigns"
) -> pd.DataFrame:
    """Load, validate and normalise a campaigns table.

    Returns
    -------
    DataFrame, shape (n_rows, 7)
        ``customer_id``, ``campaign_id`` (str), ``sent_at`` (datetime64[ns], UTC),
        ``group`` ("treatment"/"control"), ``channel`` (lower-case str or None),
        ``offer_cost`` (float64 >= 0, 0 when absent), ``offer`` (str or None).

    Raises
    ------
    DataContractError
        Empty table, missing required column, missing ids, unparsable or missing
        ``sent_at``, unknown ``group`` value, non-numeric or negative ``offer_cost``.
    """
    label = name if isinstance(source, pd.DataFrame) else str(source)
    frame = source if isinstance(source, pd.DataFrame) else read_table(source)
    if frame.empty:
        raise DataContractError(f"{label}: table is empty (no rows)")
    missing = [c for c in CAMPAIGNS.required if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"{label}: missing required column(s) {missing}; found {list(map(str, frame.columns))}"
        )
    frame = frame.reset_index(drop=True)
    out = {}
    for column in ("customer_id", "campaign_id"):
        text = frame[column].astype("str").str.strip()
        bad = frame[column].isna().to_numpy() | (text == "").to_numpy()
        if bad.any():
            raise _fail(label, column, "missing identifier", bad, frame[column])
        out[column] = text.to_numpy(dtype=object)
    sent = frame["sent_at"]
    if pd.api.types.is_numeric_dtype(sent):
        raise _fail(label, "sent_at", "expected ISO-8601 text", sent.notna().to_numpy(), sent)
    if isinstance(sent.dtype, pd.DatetimeTZDtype):
        parsed = sent.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(sent):
        parsed = sent
    else:
        parsed = pd.to_datetime(sent, utc=True, errors="coerce", format="ISO8601")
        parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise _fail(label, "sent_at", "missing or unparsable timestamp", bad, sent)
    out["sent_at"] = parsed.astype("datetime64[ns]").to_numpy()
    group = frame["group"].astype("str").str.strip().str.lower().map(_GROUP)
    bad = group.isna().to_numpy()
    if bad.any():
        raise _fail(
            label,
            "group",
            "expected treatment or control (or an alias such as holdout)",
            bad,
            frame["group"],
        )
    out["group"] = group.to_numpy(dtype=object)
    channel = frame.get("channel", pd.Series(None, index=frame.index, dtype=object))
    channel = channel.astype("str").str.strip().str.lower().where(channel.notna())
    out["channel"] = channel.to_numpy(dtype=object)
    cost = frame.get("offer_cost", pd.Series(0.0, index=frame.index))
    numbers = pd.to_numeric(cost, errors="coerce")
    bad = (numbers.isna() & cost.notna()).to_numpy() | (numbers < 0).to_numpy()
    bad |= np.isinf(numbers.to_numpy(dtype=float))
    if bad.any():
        raise _fail(label, "offer_cost", "expected a finite number >= 0", bad, cost)
    out["offer_cost"] = numbers.fillna(0.0).to_numpy(dtype=float)
    offer = frame.get("offer", pd.Series(None, index=frame.index, dtype=object))
    out["offer"] = offer.astype("str").where(offer.notna()).to_numpy(dtype=object)
    return pd.DataFrame(out, columns=list(CAMPAIGNS.names))


def holdout_draw(campaign_id: str, customer_ids: pd.Series) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by (campaign id, customer id)."""
    salt = campaign_id.encode()
    return np.array(
        [
            int.from_bytes(hashlib.sha256(salt + b"\x00" + str(c).encode()).digest()[:8], "big")
            / 2.0**64
            for c in customer_ids
        ]
    )


def campaigns_table(
    plan: WinbackPlan, *, sent_at: pd.Timestamp, offer: str | None = None
) -> pd.DataFrame:
    """Both groups of a plan in the campaigns-table format (``contract.CAMPAIGNS``).

    The file a CRM sends from is the file ``fidelite train --campaigns`` learns from
    afterwards: contacts are ``treatment`` rows, the held-out customers ``control``
    rows (with the channel they would have been sent on).
    """
    both = pd.concat([plan.selected, plan.holdout], ignore_index=True)
    return pd.DataFrame(
        {
            "customer_id": both["customer_id"].astype(str).to_numpy(),
            "campaign_id": plan.campaign_id,
            "sent_at": pd.Timestamp(sent_at),
            "group": both["group"].to_numpy(),
            "channel": both["channel"].to_numpy(dtype=object),
            "offer_cost": plan.offer_cost,
            "offer": offer,
        }
    )
