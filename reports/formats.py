"""Number formatting for readers: counts, money, shares and changes."""

from __future__ import annotations

import math

__all__ = ["change", "count", "days", "money", "pct", "points", "ratio"]


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def count(value: float | None) -> str:
    """``12,345``; "n/a" when unknown."""
    return "n/a" if _missing(value) else f"{value:,.0f}"


def money(value: float | None, digits: int | None = None) -> str:
    """``12,345`` (large) or ``45.20`` (small) currency units; "n/a" when unknown."""
    if _missing(value):
        return "n/a"
    if digits is None:
        digits = 0 if abs(value) >= 1000 else 2
    return f"{value:,.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    """A share in [0, 1] as ``12.3%``."""
    return "n/a" if _missing(value) else f"{100 * value:.{digits}f}%"


def points(value: float | None, digits: int = 1) -> str:
    """A difference of shares as signed percentage points: ``+1.2 pp``."""
    return "n/a" if _missing(value) else f"{100 * value:+.{digits}f} pp"


def ratio(value: float | None, digits: int = 1) -> str:
    """``3.2x``."""
    return "n/a" if _missing(value) else f"{value:.{digits}f}x"


def days(value: float | None) -> str:
    """``12 days``."""
    return "n/a" if _missing(value) else f"{value:,.0f} days"


def change(now: float | None, before: float | None, *, share: bool = False) -> str:
    """Change from ``before`` to ``now``: percentage points for shares, else relative %."""
    if _missing(now) or _missing(before):
        return ""
    if share:
        return points(now - before)
    if before == 0:
        return ""
    return f"{100 * (now - before) / abs(before):+.1f}%"
