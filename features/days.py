"""Calendar days: the one strict parser every front end uses for ``as_of``-like values."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError

__all__ = ["ONE_DAY", "parse_day"]

ONE_DAY = pd.Timedelta(days=1)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Days representable as datetime64[ns] with room for a horizon after them.
_FIRST_DAY = pd.Timestamp("1700-01-01")
_LAST_DAY = pd.Timestamp("2200-12-31")


def parse_day(value: object, *, name: str = "as_of") -> pd.Timestamp:
    """A calendar day, strictly parsed.

    Parameters
    ----------
    value : str, date, datetime, Timestamp or numpy datetime64
        Text must be ``YYYY-MM-DD`` (no other order is guessed: ``01/02/2025`` is
        refused). A time of day is floored to the day; tz-aware values are first
        converted to UTC.
    name : str
        Name of the argument, used in error messages (``as_of``, ``--as-of``...).

    Returns
    -------
    Timestamp
        Tz-naive midnight, nanosecond unit.

    Raises
    ------
    DataContractError
        Missing value, other text formats, impossible dates, or days outside
        1700-01-01 .. 2200-12-31.
    """
    if isinstance(value, str):
        text = value.strip()
        if not _ISO_DAY.fullmatch(text):
            raise DataContractError(
                f"{name}: expected a day as YYYY-MM-DD, got {value!r}", field=name
            )
        try:
            stamp = pd.Timestamp(dt.date.fromisoformat(text))
        except ValueError as exc:
            raise DataContractError(f"{name}: {value!r} is not a calendar day", field=name) from exc
    elif isinstance(value, dt.datetime | dt.date | np.datetime64):
        stamp = pd.Timestamp(value)
    else:
        raise DataContractError(
            f"{name}: expected a day as YYYY-MM-DD, got {type(value).__name__} {value!r}",
            field=name,
        )
    if pd.isna(stamp):
        raise DataContractError(f"{name}: missing day", field=name)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    day = stamp.floor("D")
    if not _FIRST_DAY <= day <= _LAST_DAY:
        raise DataContractError(
            f"{name}: {day.date()} is outside the supported days "
            f"{_FIRST_DAY.date()} .. {_LAST_DAY.date()}",
            field=name,
        )
    return day.as_unit("ns")
