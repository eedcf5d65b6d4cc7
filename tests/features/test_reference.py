"""The vectorised feature families against a plain pandas reference on random histories.

The builder works on integer codes with sort-once reductions and one bincount per
quantity (:mod:`fidelite.features.rfm`, :mod:`~fidelite.features.purchases`,
:mod:`~fidelite.features.rhythm`); here every column is recomputed the obvious way,
with ``groupby`` over the definitions of :mod:`fidelite.features.purchases`, on random
histories with same-day purchases, partial and full refunds, unattributed refunds,
zero-value rows, discounts, several channels and rows after the as-of day. Values
must agree to 1e-9 and NaN must sit in the same places.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features import FeatureParams
from fidelite.features._arrays import stable_key_order
from fidelite.features.segments import quintile_score
from tests.features.helpers import features_at

AS_OF = pd.Timestamp("2024-06-30")
PARAMS = FeatureParams()


def random_history(seed: int, n_customers: int = 120, n_orders: int = 1500) -> pd.DataFrame:
    """Orders over 18 months (some after AS_OF) and refunds of some of them."""
    rng = np.random.default_rng(seed)
    # Few distinct days per customer so that same-day purchases are common.
    start = pd.Timestamp("2023-01-01").value
    span = (AS_OF + pd.Timedelta(days=20)).value - start
    stamps = start + rng.integers(0, span, n_orders)
    orders = pd.DataFrame(
        {
            "customer_id": rng.integers(0, n_customers, n_orders).astype(str),
            "order_id": [f"o{i}" for i in range(n_orders)],
            "timestamp": pd.to_datetime(stamps),
            "amount": np.round(rng.lognormal(3, 1, n_orders), 2),
            "channel": rng.choice(["web", "app", "store", "Phone "], n_orders),
            "discount": np.where(rng.random(n_orders) < 0.3, 2.5, 0.0),
        }
    )
    orders.loc[rng.random(n_orders) < 0.03, "amount"] = 0.0
    refunded = orders.sample(frac=0.15, random_state=seed)
    share = rng.choice([1.0, 0.5, 0.25], len(refunded))
    refunds = refunded.assign(
        amount=-np.round(refunded["amount"] * share, 2),
        timestamp=refunded["timestamp"] + pd.to_timedelta(rng.integers(0, 40, len(refunded)), "D"),
        discount=0.0,
    )
    stray = refunds.head(10).assign(order_id=[f"x{i}" for i in range(10)])  # unattributed
    return pd.concat([orders, refunds, stray], ignore_index=True).sample(
        frac=1.0, random_state=seed
    )


def balance(recent: pd.Series, earlier: pd.Series) -> pd.Series:
    total = recent + earlier
    return ((recent - earlier) / total).where(total != 0)


def reference(tx: pd.DataFrame) -> pd.DataFrame:
    """Every transaction-derived column, the obvious way (one customer at a time)."""
    end = AS_OF + pd.Timedelta(days=1)
    tx = tx[tx["timestamp"] < end].copy()
    tx["day"] = tx["timestamp"].dt.floor("D")
    tx["ago"] = (AS_OF - tx["day"]).dt.days
    refunds = tx[tx["amount"] < 0]
    refunded = refunds.groupby(["customer_id", "order_id"])["amount"].sum()
    key = pd.MultiIndex.from_frame(tx[["customer_id", "order_id"]])
    is_order = tx["amount"] > 0
    tx["net"] = np.where(is_order, tx["amount"] + refunded.reindex(key).fillna(0.0).to_numpy(), 0)
    tx["purchase"] = is_order & (tx["net"] > 0)
    buys = tx[tx["purchase"]]
    by = tx.groupby("customer_id")
    out = pd.DataFrame(index=pd.Index(sorted(tx["customer_id"].unique()), name="customer_id"))

    day_spend = buys.groupby(["customer_id", "day"])["net"].sum().reset_index()
    per_day = day_spend.groupby("customer_id")
    first, last = per_day["day"].min(), per_day["day"].max()
    n_days = per_day.size().reindex(out.index).fillna(0)
    first_spend = per_day["net"].first()
    out["frequency"] = np.maximum(n_days - 1, 0)
    out["recency"] = (last - first).dt.days
    out["T"] = (AS_OF - first).dt.days
    repeat = (per_day["net"].sum() - first_spend).reindex(out.index)
    out["monetary_value"] = (repeat / out["frequency"]).where(out["frequency"] > 0, 0.0)

    def total(frame: pd.DataFrame, column: str | None = None) -> pd.Series:
        grouped = frame.groupby("customer_id")
        sums = grouped.size() if column is None else grouped[column].sum()
        return sums.reindex(out.index).fillna(0).astype(float)

    purchases = total(buys)
    out["days_since_last_purchase"] = (AS_OF - last).dt.days
    out["orders_total"] = purchases
    out["spend_total"] = by["amount"].sum()
    for w in PARAMS.windows:
        out[f"orders_{w}d"] = total(buys[buys["ago"] < w])
        out[f"spend_{w}d"] = total(tx[is_order & (tx["ago"] < w)], "net")
    out["avg_order_value"] = (total(buys, "net") / purchases).where(purchases > 0)
    t = PARAMS.trend_days
    out["spend_trend"] = balance(
        total(buys[buys["ago"] < t], "net"),
        total(buys[(buys["ago"] >= t) & (buys["ago"] < 2 * t)], "net"),
    )
    gross = total(tx[is_order], "amount")
    out["refund_share"] = (-total(refunds, "amount") / gross).where(gross > 0)
    discount = total(tx[is_order], "discount")
    out["discount_share"] = (discount / (gross + discount)).where(gross + discount > 0)
    out["tenure_days"] = (AS_OF - by["day"].min()).dt.days
    v = PARAMS.velocity_days
    earlier_days = (AS_OF - pd.Timedelta(days=v - 1) - first).dt.days.reindex(out.index)
    earlier_rate = total(buys[buys["ago"] >= v]) / earlier_days
    out["velocity_90_vs_prior"] = balance(
        total(buys[buys["ago"] < v]) / v,
        earlier_rate.where(earlier_days >= PARAMS.velocity_min_prior_days),
    )
    channel = buys["channel"].str.strip().str.lower()
    for name in sorted(channel.unique()):
        out[f"order_share_{name}"] = (total(buys[channel == name]) / purchases).where(purchases > 0)

    gaps = day_spend.assign(gap=per_day["day"].diff().dt.days).dropna(subset=["gap"])
    by_gap = gaps.groupby("customer_id")["gap"]
    out["ipt_mean_days"] = by_gap.mean()
    out["ipt_std_days"] = by_gap.std(ddof=1)
    out["overdue_ratio"] = out["days_since_last_purchase"] / out["ipt_mean_days"]
    out["longest_gap_days"] = by_gap.max()
    recent = gaps[(AS_OF - gaps["day"]).dt.days < PARAMS.reactivated_days]
    out["return_gap_days"] = recent.groupby("customer_id")["gap"].max()
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transaction_families_match_a_pandas_reference(seed):
    tx = random_history(seed)
    got = features_at(tx, as_of=AS_OF.date().isoformat())
    expected = reference(tx)
    assert got.index.equals(expected.index.astype(got.index.dtype))
    for column in expected.columns:
        want = expected[column].to_numpy(dtype=np.float64)
        have = got[column].to_numpy(dtype=np.float64)
        np.testing.assert_array_equal(np.isnan(have), np.isnan(want), err_msg=column)
        np.testing.assert_allclose(have, want, rtol=1e-9, atol=1e-9, err_msg=column)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rfm_segment_scores_match_pandas_rank(seed):
    tx = random_history(seed)
    got = features_at(tx, as_of=AS_OF.date().isoformat())
    buyers = got[got["T"].notna()]

    def score(values: pd.Series) -> pd.Series:
        ranks = values.rank(method="min")
        return np.ceil(5.0 * ranks / ranks.notna().sum())

    r = score(-buyers["days_since_last_purchase"])
    f, m = score(buyers["frequency"]), score(buyers["spend_total"])
    expected = np.select(
        [
            (r >= 4) & (f >= 4) & (m >= 4),
            (r >= 3) & (f >= 4),
            r >= 4,
            r == 3,
            (r <= 2) & (f >= 3),
            r == 2,
        ],
        ["champions", "loyal", "potential", "need_attention", "at_risk", "hibernating"],
        default="lost",
    )
    assert (buyers["rfm_segment"].to_numpy() == expected).all()
    assert (got.loc[got["T"].isna(), "rfm_segment"] == "prospect").all()


@pytest.mark.parametrize(
    "values",
    [
        [3.0, 1.0, np.nan, 3.0, 2.0, 1.0, -0.0, 0.0],  # whole numbers: counted
        [0.5, -2.25, 0.5, np.nan, 1e9, 7.1],  # fractions: searched
        [1.0, 2.0, 1e12],  # whole but spread out: searched
        [np.nan, np.nan],
        [],
    ],
)
def test_quintile_score_is_pandas_min_rank(values):
    series = pd.Series(values, dtype=np.float64)
    ranks = series.rank(method="min")
    expected = np.ceil(5.0 * ranks / max(ranks.notna().sum(), 1)).to_numpy()
    np.testing.assert_array_equal(quintile_score(series), expected)


@pytest.mark.parametrize("high", [50, 2**40, 2**62])  # packed, packed, argsort fallback
def test_stable_key_order_is_a_stable_argsort(high):
    keys = np.random.default_rng(3).integers(0, high, 5000)
    keys[::7] = keys[0]  # ties must keep their row order
    order, ordered = stable_key_order(keys)
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    np.testing.assert_array_equal(ordered, np.sort(keys))
