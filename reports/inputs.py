"""What a report reads: the tables at D, optional scores and campaigns, and its settings."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features.contract import EVENTS, score_column_names
from fidelite.features.data import load_events, read_table
from fidelite.features.days import parse_day
from fidelite.features.inputs import Inputs, TableSource, load_inputs
from fidelite.features.params import FeatureParams

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "ReportConfig",
    "ReportInputs",
    "load_report_inputs",
    "normalise_scores",
]

logger = logging.getLogger(__name__)

DEFAULT_HORIZON_DAYS = 90
#: Acquisition channels counted as referral (advocacy) when none are named.
DEFAULT_REFERRAL_MARKERS = ("referr", "advoca", "friend")
#: Acquisition channels counted as paid when none are named.
DEFAULT_PAID_MARKERS = ("paid", "affiliate", "cpc", "ads", "display", "sponsor")
_SCORES_REQUIRED = ("customer_id", "as_of", "horizon_days")
#: The report reads the events of this many days before D (engagement and velocity).
EVENT_DAYS = 90


@dataclass(frozen=True)
class ReportConfig:
    """Settings of one report.

    Parameters
    ----------
    horizon_days : int, optional
        H for churn and CLV; default: the scores' ``horizon_days``, else 90.
    params : FeatureParams
        Windows and lifecycle thresholds (the product's documented defaults).
    margin : float
        Share of net spend kept as profit, applied to value in CLV:CAC and payback
        (1.0 = value is revenue).
    response_days : int
        Campaign response window after each send, in days.
    referral_channels, paid_channels : tuple of str, optional
        Acquisition channels counted as referral and as paid; default: channel names
        containing one of :data:`DEFAULT_REFERRAL_MARKERS` / :data:`DEFAULT_PAID_MARKERS`.
    tracking_uri : str, optional
        MLflow tracking URI: when given, the model-health section reads the champion's
        version and validation metrics from the registry.
    model_name : str
        Registered model name.
    model_uri : str, optional
        A model to score the latest labelled window with (D - H), for calibration and
        gain charts when the scores cannot be checked against outcomes.
    title : str
        Page title.
    """

    horizon_days: int | None = None
    params: FeatureParams = field(default_factory=FeatureParams)
    margin: float = 1.0
    response_days: int = 30
    referral_channels: tuple[str, ...] | None = None
    paid_channels: tuple[str, ...] | None = None
    tracking_uri: str | None = None
    model_name: str = "fidelite"
    model_uri: str | None = None
    title: str = "Customer base report"

    def __post_init__(self) -> None:
        if not 0 < self.margin <= 1:
            raise DataContractError(f"margin: expected a share in (0, 1], got {self.margin}")
        if self.response_days <= 0:
            raise DataContractError(
                f"response_days: expected a positive number of days, got {self.response_days}"
            )
        if self.horizon_days is not None and self.horizon_days <= 0:
            raise DataContractError(f"horizon_days: expected > 0, got {self.horizon_days}")

    def is_referral(self, channel: str) -> bool:
        """Whether an acquisition channel counts as referral (advocacy)."""
        if self.referral_channels is not None:
            return channel in self.referral_channels
        return any(marker in channel for marker in DEFAULT_REFERRAL_MARKERS)

    def is_paid(self, channel: str) -> bool:
        """Whether an acquisition channel counts as paid media."""
        if self.paid_channels is not None:
            return channel in self.paid_channels
        return not self.is_referral(channel) and any(m in channel for m in DEFAULT_PAID_MARKERS)


@dataclass(frozen=True)
class ReportInputs:
    """Validated tables cut at D, with what the data looked like before the cut.

    Attributes
    ----------
    inputs : Inputs
        Transactions, events and customers up to D (nothing later is read).
    scores : DataFrame, optional
        A scores frame (``fidelite score``), ``customer_id`` as str.
    campaigns : DataFrame, optional
        Normalised campaigns table (``contract.CAMPAIGNS``).
    latest_transaction, latest_event : Timestamp, optional
        Latest timestamps in the tables as given, before the cut (data freshness).
    events_source : path or DataFrame, optional
        The events as given: ``inputs.events`` holds only the last :data:`EVENT_DAYS`
        days, and scoring a model needs the whole history.
    """

    inputs: Inputs
    scores: pd.DataFrame | None = None
    campaigns: pd.DataFrame | None = None
    latest_transaction: pd.Timestamp | None = None
    latest_event: pd.Timestamp | None = None
    events_source: TableSource | None = None
    date_format: str | None = None

    @property
    def as_of(self) -> pd.Timestamp:
        """Day D."""
        return self.inputs.as_of

    def horizon(self, config: ReportConfig) -> int:
        """H: the configured one, else the scores', else 90 days."""
        if config.horizon_days is not None:
            return int(config.horizon_days)
        if self.scores is not None and self.scores["horizon_days"].notna().any():
            return int(self.scores["horizon_days"].dropna().iloc[0])
        return DEFAULT_HORIZON_DAYS


def normalise_scores(scores: pd.DataFrame, *, name: str = "scores") -> pd.DataFrame:
    """Check and normalise a scores frame (columns of ``contract.SCORE_COLUMNS``).

    Only ``customer_id``, ``as_of`` and ``horizon_days`` are required; any other score
    column may be absent (older or newer models) and the sections that need it say so.

    Raises
    ------
    DataContractError
        Missing required columns, an empty frame, duplicated customers or several
        as-of days.
    """
    frame = scores.reset_index() if "customer_id" not in scores.columns else scores.copy()
    missing = [c for c in _SCORES_REQUIRED if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"{name}: missing required column(s) {missing}; expected the scores frame "
            f"written by `fidelite score` (columns {list(score_column_names())[:6]}...)"
        )
    if frame.empty:
        raise DataContractError(f"{name}: the scores frame is empty")
    frame["customer_id"] = frame["customer_id"].astype(str)
    duplicated = frame["customer_id"].duplicated()
    if duplicated.any():
        sample = frame.loc[duplicated, "customer_id"].head(5).tolist()
        raise DataContractError(f"{name}: column 'customer_id' has duplicates, e.g. {sample}")
    days = pd.to_datetime(frame["as_of"], errors="coerce").dt.floor("D").dropna().unique()
    if len(days) != 1:
        raise DataContractError(
            f"{name}: column 'as_of' must hold exactly one day, found {list(days[:5])}"
        )
    frame["as_of"] = days[0]
    return frame.set_index(pd.Index(frame["customer_id"], name="customer_id"))


def _recent_rows(source: TableSource, since: pd.Timestamp) -> pd.DataFrame:
    """Event rows from ``since`` on; Parquet files are filtered while reading.

    The report looks at recent engagement only, and the events table is usually the
    largest input by far (50 rows per customer in the demo), so older rows are never
    read from Parquet, nor columns the report does not use (only the required ones).
    Other sources, or Parquet without those columns, are read whole and filtered after
    validation (whose errors then name what is missing).
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = Path(source)
        frame = None
        if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
            try:
                frame = pd.read_parquet(
                    path, columns=list(EVENTS.required), filters=[("timestamp", ">=", since)]
                )
            except Exception:  # no such columns, or no timestamps: validate everything
                logger.debug("events: no timestamp filter pushdown for %s", path)
        if frame is None:
            frame = read_table(path)
    stamps = frame["timestamp"] if "timestamp" in frame.columns else None
    if stamps is not None and pd.api.types.is_datetime64_any_dtype(stamps):
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        frame = frame.loc[(stamps >= since).to_numpy()]
    return frame


def _name(source: object, default: str) -> str:
    return default if isinstance(source, pd.DataFrame) else str(source)


def _latest(frame: pd.DataFrame | None, column: str) -> pd.Timestamp | None:
    if frame is None or frame.empty:
        return None
    value = frame[column].max()
    return None if pd.isna(value) else pd.Timestamp(value)


def _transactions(
    transactions: TableSource,
    customers: TableSource | None,
    day: pd.Timestamp,
    date_format: str | None,
) -> Inputs:
    """Transactions and customers, validated; refused when nothing happened by D."""
    loaded = load_inputs(transactions, None, customers, as_of=day, date_format=date_format)
    if not (loaded.transactions["timestamp"] < loaded.end).any():
        first = loaded.transactions["timestamp"].min()
        raise DataContractError(
            f"transactions: no transaction on or before the report day {day.date()} "
            f"(the first is on {first.date()})",
            field="transactions.timestamp",
        )
    return loaded


def _recent_events(
    events: TableSource, day: pd.Timestamp, date_format: str | None
) -> pd.DataFrame | None:
    """The validated events of the :data:`EVENT_DAYS` days before D (None when none)."""
    since = day - pd.Timedelta(days=EVENT_DAYS)
    rows = _recent_rows(events, since)
    if not len(rows):
        return None
    recent = load_events(rows, name=_name(events, "events"), date_format=date_format)
    return recent.loc[(recent["timestamp"] >= since).to_numpy()]


def _scores(scores: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(scores, pd.DataFrame):
        return normalise_scores(scores, name="scores")
    return normalise_scores(read_table(scores), name=str(scores))


def _campaigns(campaigns: TableSource, date_format: str | None) -> pd.DataFrame:
    from fidelite.training.uplift.campaigns import load_campaigns_table

    return load_campaigns_table(campaigns, date_format=date_format)


def load_report_inputs(
    transactions: TableSource,
    events: TableSource | None = None,
    customers: TableSource | None = None,
    *,
    as_of: object,
    scores: str | Path | pd.DataFrame | None = None,
    campaigns: TableSource | None = None,
    date_format: str | None = None,
) -> ReportInputs:
    """Validate the report's tables once and cut them at D.

    Parameters
    ----------
    transactions, events, customers : path or DataFrame
        As for every other command (``fidelite.features.inputs.load_inputs``).
    as_of : day
        Day D of the report (``YYYY-MM-DD``).
    scores : path or DataFrame, optional
        Scores frame written by ``fidelite score``.
    campaigns : path or DataFrame, optional
        Campaigns table (``contract.CAMPAIGNS``).
    date_format : str, optional
        strftime layout of text timestamps (ISO 8601 otherwise, see the loaders).

    Raises
    ------
    DataContractError
        Naming the table, column and rows at fault.
    """
    day = parse_day(as_of, name="--as-of")
    # The optional tables are read on a second thread while this one loads the
    # transactions: Parquet decoding and much of the validation release the GIL, so on
    # two cores the reads overlap. Errors are raised in the same order as read one by one.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-read")
    try:
        pending = {
            "events": (_recent_events, events, day, date_format),
            "scores": (_scores, scores),
            "campaigns": (_campaigns, campaigns, date_format),
        }
        futures = {
            name: None if task[1] is None else pool.submit(*task) for name, task in pending.items()
        }
        loaded = _transactions(transactions, customers, day, date_format)
        read = {name: None if f is None else f.result() for name, f in futures.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    recent_events = read["events"]
    return ReportInputs(
        inputs=replace(loaded, events=recent_events).cut(),
        scores=read["scores"],
        campaigns=read["campaigns"],
        latest_transaction=_latest(loaded.transactions, "timestamp"),
        latest_event=_latest(recent_events, "timestamp"),
        events_source=events,
        date_format=date_format,
    )
