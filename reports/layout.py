"""What a report is made of: numbers, readings and chart specifications per view.

A *view* is a subset of the customer base (everyone, one acquisition channel, one RFM
segment); the page lets the reader switch views, so every filterable section is
computed once per view. Charts are Plotly figure specifications (plain dicts of
``data`` and ``layout``), built from aggregates only: a chart never holds one mark per
customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ALL_VIEW", "Figure", "Number", "Section", "SectionView", "View"]

#: Key of the view holding every customer.
ALL_VIEW = "all"

Tone = Literal["good", "bad", "neutral"]
#: A Plotly figure specification: ``{"data": [...traces], "layout": {...}}``.
Figure = dict[str, Any]


@dataclass(frozen=True)
class View:
    """A subset of the customers known at D.

    Attributes
    ----------
    key : str
        Stable identifier used by the page (``all``, ``acq:referral``, ``rfm:champions``).
    label : str
        What the filter menu shows.
    group : str
        Menu group (``Acquisition channel``, ``RFM segment``); empty for ``all``.
    """

    key: str
    label: str
    group: str = ""


@dataclass(frozen=True)
class Number:
    """One headline number of a section.

    Attributes
    ----------
    label : str
    value : str
        Already formatted (units included).
    delta : str, optional
        Change against the comparison date(s), formatted.
    tone : {"good", "bad", "neutral"}
        Colour of the delta: whether the change is good news.
    hint : str
        Definition shown on hover.
    """

    label: str
    value: str
    delta: str = ""
    tone: Tone = "neutral"
    hint: str = ""


@dataclass
class SectionView:
    """A section's content for one view: numbers, a one-line reading, charts."""

    numbers: list[Number]
    reading: str
    figures: list[Figure]
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    """One report section.

    Attributes
    ----------
    key : str
        Anchor and identifier (``kpis``, ``lifecycle``...).
    title : str
    question : str
        The question the section answers, shown under the title.
    views : dict of str -> SectionView
        Content per view key; always holds :data:`ALL_VIEW`. A section computed for
        ``all`` only ignores the filter (the page says so).
    definitions : str
        How the numbers are defined (shown folded under the section).
    """

    key: str
    title: str
    question: str
    views: dict[str, SectionView]
    definitions: str = ""

    @property
    def filterable(self) -> bool:
        """Whether the section follows the page's customer filter."""
        return len(self.views) > 1

    @property
    def n_figures(self) -> int:
        """Charts drawn for the ``all`` view."""
        return len(self.views[ALL_VIEW].figures)
