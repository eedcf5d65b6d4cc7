"""Reading the report's tables: the optional ones are read on a second thread, yet
errors come in the order a one-by-one read gives, and only the recent events are kept."""

from __future__ import annotations

import pandas as pd
import pytest

from fidelite.errors import DataContractError
from fidelite.reports import load_report_inputs
from fidelite.reports.inputs import EVENT_DAYS

from .conftest import AS_OF


def _events(customer_ids: pd.Series) -> pd.DataFrame:
    """One email open per customer every 20 days over the year before AS_OF."""
    days = pd.date_range(end=AS_OF, periods=19, freq="20D")
    return pd.DataFrame(
        [(c, d, "email", "open", None) for c in customer_ids for d in days],
        columns=["customer_id", "timestamp", "channel", "event_type", "campaign_id"],
    )


@pytest.fixture(scope="module")
def events_file(hand_made, tmp_path_factory):
    _, customers, _ = hand_made
    path = tmp_path_factory.mktemp("events") / "events.parquet"
    _events(customers["customer_id"]).to_parquet(path)
    return path


def test_events_are_the_recent_ones_with_the_columns_read(hand_made, events_file):
    transactions, customers, scores = hand_made
    inputs = load_report_inputs(transactions, events_file, customers, as_of=AS_OF, scores=scores)
    events = inputs.inputs.events
    since = pd.Timestamp(AS_OF) - pd.Timedelta(days=EVENT_DAYS)
    expected = _events(customers["customer_id"])
    assert len(events) == int((expected["timestamp"] >= since).sum())
    assert events["timestamp"].min() >= since
    assert inputs.latest_event == pd.Timestamp(AS_OF)
    assert inputs.scores is not None and len(inputs.scores) == len(scores)


def test_a_bad_optional_table_is_named(hand_made, tmp_path):
    transactions, customers, _ = hand_made
    bad = _events(customers["customer_id"]).drop(columns=["event_type"])
    path = tmp_path / "events.parquet"
    bad.to_parquet(path)
    with pytest.raises(DataContractError, match=r"events.parquet: missing required .*event_type"):
        load_report_inputs(transactions, path, customers, as_of=AS_OF)


def test_transactions_errors_come_first(hand_made, tmp_path):
    transactions, customers, _ = hand_made
    path = tmp_path / "events.parquet"
    _events(customers["customer_id"]).drop(columns=["event_type"]).to_parquet(path)
    broken = transactions.drop(columns=["amount"])
    with pytest.raises(DataContractError, match="amount"):
        load_report_inputs(broken, path, customers, as_of=AS_OF, scores=pd.DataFrame({"x": [1]}))
