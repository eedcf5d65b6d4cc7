"""Documented thresholds and windows used by :func:`fidelite.features.build_features`.

:class:`FeatureParams` travels with a trained model (:meth:`FeatureParams.to_dict` /
:meth:`FeatureParams.from_dict`), so that scoring rebuilds features exactly as training
built them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fidelite.features.contract import ENGAGEMENT_EVENT_TYPES, NON_ENGAGEMENT_EVENT_TYPES

__all__ = ["FeatureParams"]


@dataclass(frozen=True)
class FeatureParams:
    """Windows and thresholds of the point-in-time feature builder (all in days).

    Parameters
    ----------
    windows : tuple of int, default (30, 90, 180, 365)
        Trailing windows for ``orders_{w}d`` / ``spend_{w}d``. Window ``w`` covers the
        ``w`` calendar days ending on (and including) ``as_of``.
    engagement_windows : tuple of int, default (30, 90)
        Trailing windows for ``eng_{channel}_events_{w}d``.
    engagement_share_days : int, default 365
        Engagements older than this are ignored by ``eng_{c}_share``, ``best_channel``
        and ``channel_preference`` (stale engagement says little about today).
    trend_days : int, default 90
        ``spend_trend`` compares gross spend in the last ``trend_days`` with the
        ``trend_days`` before them.
    velocity_days : int, default 90
        ``velocity_90_vs_prior`` compares the order rate in the last ``velocity_days``
        with the rate over the rest of the customer's purchase tenure.
    velocity_min_prior_days : int, default 30
        Velocity is NaN when the earlier part of the tenure is shorter than this.
    new_days : int, default 30
        Lifecycle ``new``: first purchase day within the last ``new_days`` days.
    at_risk_overdue_ratio : float, default 1.5
        Lifecycle ``at_risk``: days since last purchase > ratio x own mean gap.
    at_risk_days : int, default 90
        Lifecycle ``at_risk`` when the rhythm is unknown (fewer than 2 purchase days):
        days since last purchase > ``at_risk_days``.
    lapsed_days : int, default 180
        Lifecycle ``lapsed``: no purchase in the last ``lapsed_days`` days.
    reactivated_days : int, default 30
        Lifecycle ``reactivated``: a purchase in the last ``reactivated_days`` days that
        ended a gap longer than ``lapsed_days``.
    engagement_event_types : tuple of str
        Event types counted as engagement (default: the contract's
        ``ENGAGEMENT_EVENT_TYPES``); together with the contract's
        ``NON_ENGAGEMENT_EVENT_TYPES`` they form the known vocabulary. Other types are
        ignored (logged once per build).
    """

    windows: tuple[int, ...] = (30, 90, 180, 365)
    engagement_windows: tuple[int, ...] = (30, 90)
    engagement_share_days: int = 365
    trend_days: int = 90
    velocity_days: int = 90
    velocity_min_prior_days: int = 30
    new_days: int = 30
    at_risk_overdue_ratio: float = 1.5
    at_risk_days: int = 90
    lapsed_days: int = 180
    reactivated_days: int = 30
    engagement_event_types: tuple[str, ...] = ENGAGEMENT_EVENT_TYPES

    def __post_init__(self) -> None:
        for name in ("windows", "engagement_windows", "engagement_event_types"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        day_fields = {
            "windows": self.windows,
            "engagement_windows": self.engagement_windows,
        }
        for name, values in day_fields.items():
            if not values or any(int(v) <= 0 for v in values):
                raise ValueError(f"FeatureParams.{name} must be positive day counts, got {values}")
        for name in (
            "engagement_share_days",
            "trend_days",
            "velocity_days",
            "new_days",
            "at_risk_days",
            "lapsed_days",
            "reactivated_days",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"FeatureParams.{name} must be > 0, got {getattr(self, name)}")
        if self.at_risk_overdue_ratio <= 0:
            raise ValueError(
                f"FeatureParams.at_risk_overdue_ratio must be > 0, got {self.at_risk_overdue_ratio}"
            )
        overlap = set(self.engagement_event_types) & set(NON_ENGAGEMENT_EVENT_TYPES)
        if overlap:
            raise ValueError(
                "FeatureParams.engagement_event_types must not list send-side or negative "
                f"event types, got {sorted(overlap)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: every field, tuples as lists (inverse of :meth:`from_dict`)."""
        return {
            f.name: list(value) if isinstance(value, tuple) else value
            for f in dataclasses.fields(self)
            for value in [getattr(self, f.name)]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureParams:
        """Parameters from :meth:`to_dict` output; missing fields take their defaults.

        Raises
        ------
        ValueError
            On a field this version does not know (the model was trained with
            parameters this code cannot honour), or on invalid values.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"FeatureParams: unknown field(s) {unknown}; known {sorted(known)}")
        values = {}
        for name, value in data.items():
            if isinstance(getattr(cls(), name), tuple):
                value = tuple(int(v) if name.endswith("windows") else str(v) for v in value)
            values[name] = value
        return cls(**values)
