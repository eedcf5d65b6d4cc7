"""Dask features equal single-machine features, row for row, on a real LocalCluster."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from fidelite.features import build_features, load_inputs
from fidelite.features.data import DataContractError
from fidelite.features.demo import generate_demo_data
from fidelite.features.distributed import (
    BUCKET_COLUMN,
    build_features_dask,
    compute_features,
    dask_client,
    features_from_partitions,
    partition_by_customer,
)
from tests.features.helpers import features_at

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2, threads_per_worker=1) as client:
        yield client


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Demo data plus the awkward cases a per-partition computation could get wrong."""
    data = generate_demo_data(500, seed=11)
    tx, ev, cu = data.transactions.copy(), data.events.copy(), data.customers.copy()
    # A channel only a single customer ever used: its column must exist for everyone.
    tx["channel"] = tx["channel"].astype(str)
    tx.loc[tx.index[7], "channel"] = "kiosk"
    ev["channel"] = ev["channel"].astype(str)
    ev.loc[ev.index[11], "channel"] = "whatsapp"
    # A repeated export row far from the original (another input partition).
    tx = pd.concat([tx, tx.iloc[[3]]], ignore_index=True)
    return tx, ev, cu


def assert_same_features(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("as_of", ["2024-09-30", AS_OF])
def test_dask_features_equal_single_machine(client, tables, as_of):
    tx, ev, cu = tables
    expected = features_at(tx, ev, cu, as_of=as_of)
    got = build_features_dask(
        dd.from_pandas(tx, npartitions=3, sort=False),
        dd.from_pandas(ev, npartitions=4, sort=False),
        dd.from_pandas(cu, npartitions=2, sort=False),
        as_of=as_of,
        npartitions=5,
    )
    assert isinstance(got, dd.DataFrame)
    assert_same_features(compute_features(got), expected)
    assert {"order_share_kiosk", "eng_whatsapp_events_30d"} <= set(expected.columns)
    # RFM quintiles are population-wide: a per-partition ranking would differ.
    assert expected["rfm_segment"].nunique() > 3


def test_dask_features_from_partitioned_parquet(client, tables, tmp_path):
    tx, ev, cu = tables
    for name, frame, parts in (("tx", tx, 3), ("ev", ev, 3), ("cu", cu, 2)):
        dd.from_pandas(frame, npartitions=parts, sort=False).to_parquet(tmp_path / name)
    got = build_features_dask(
        str(tmp_path / "tx"), str(tmp_path / "ev"), str(tmp_path / "cu"), as_of=AS_OF, npartitions=4
    )
    assert_same_features(compute_features(got), features_at(tx, ev, cu, as_of=AS_OF))


def test_transactions_only_and_more_partitions_than_customers(client, tables):
    tx = tables[0]
    few = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:6])]
    got = build_features_dask(few, as_of=AS_OF, npartitions=16)
    assert_same_features(compute_features(got), features_at(few, as_of=AS_OF))


def test_future_rows_never_reach_the_dask_features(client, tables):
    tx, ev, cu = tables
    before = compute_features(build_features_dask(tx, ev, cu, as_of=AS_OF, npartitions=4))
    day_after = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    known = tx["customer_id"].iloc[0]
    future_tx = pd.DataFrame(
        {
            "customer_id": [known, "brand-new"],
            "order_id": ["future-1", "future-2"],
            "timestamp": [day_after, day_after + pd.Timedelta(days=30)],
            "amount": [1e6, 5.0],
            "channel": ["drone", "web"],
        }
    )
    future_ev = pd.DataFrame(
        {
            "customer_id": [known],
            "timestamp": [day_after + pd.Timedelta(hours=1)],
            "channel": ["carrier_pigeon"],
            "event_type": ["click"],
        }
    )
    future_cu = pd.DataFrame({"customer_id": ["signs-up-later"], "signup_at": [day_after]})
    after = compute_features(
        build_features_dask(
            pd.concat([tx, future_tx], ignore_index=True),
            pd.concat([ev, future_ev], ignore_index=True),
            pd.concat([cu, future_cu], ignore_index=True),
            as_of=AS_OF,
            npartitions=4,
        )
    )
    assert_same_features(after, before)
    assert not any("drone" in c or "carrier_pigeon" in c for c in after.columns)


def test_partitions_hold_whole_customer_histories(client, tables):
    tx, ev, cu = tables
    parts = partition_by_customer(tx, ev, cu, as_of=AS_OF, npartitions=4).persist()
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    owners: dict[str, int] = {}
    for table in (parts.transactions, parts.events, parts.customers):
        for k in range(parts.npartitions):
            part = table.get_partition(k).compute()
            assert (part.index == k).all(), "bucket k must land in partition k"
            if "timestamp" in part.columns:
                assert (part["timestamp"] < end).all()
            for customer in part["customer_id"].unique():
                assert owners.setdefault(customer, k) == k
    assert parts.transactions.index.name == BUCKET_COLUMN
    # The same partitions serve any earlier as-of day, but not a later one.
    earlier = compute_features(features_from_partitions(parts, as_of="2025-01-31"))
    assert_same_features(earlier, features_at(tx, ev, cu, as_of="2025-01-31"))
    with pytest.raises(ValueError, match="after the partitions' cut"):
        features_from_partitions(parts, as_of="2025-07-01")


def test_bad_partition_names_table_partition_and_column(client, tables):
    tx = tables[0].copy()
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[tx.index[-2], "amount"] = "twelve"
    with pytest.raises(
        DataContractError, match=r"transactions \(partition \d+\).*'amount'.*twelve"
    ):
        compute_features(
            build_features_dask(
                dd.from_pandas(tx, npartitions=2, sort=False), as_of=AS_OF, npartitions=2
            )
        )


def test_buckets_are_stable_across_dtypes():
    from fidelite.features.partitions import _with_bucket

    ids = pd.Series(["a", "b", "123"])
    as_str = _with_bucket(pd.DataFrame({"customer_id": ids.astype("str")}), 7)[BUCKET_COLUMN]
    as_obj = _with_bucket(pd.DataFrame({"customer_id": ids.astype(object)}), 7)[BUCKET_COLUMN]
    np.testing.assert_array_equal(as_str, as_obj)


def test_dask_features_read_the_consent_history_point_in_time(client, tables):
    tx, ev, cu = tables
    rng = np.random.default_rng(0)
    n = 300
    history = pd.DataFrame(
        {
            "customer_id": rng.choice(cu["customer_id"].to_numpy(), n),
            "channel": rng.choice(["email", "sms", "push"], n),
            "opted_in": rng.random(n) < 0.6,
            "changed_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        }
    )
    expected = build_features(load_inputs(tx, ev, cu, as_of=AS_OF, consent_history=history))
    assert expected["consented_email"].notna().sum() > 20
    got = build_features_dask(tx, ev, cu, as_of=AS_OF, npartitions=3, consent_history=history)
    assert_same_features(compute_features(got), expected)
