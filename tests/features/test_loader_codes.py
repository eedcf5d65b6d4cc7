"""The loader's id codes: features and refund links are the same with and without them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features import Inputs, build_features, load_inputs
from fidelite.features.data import load_transactions, read_table
from fidelite.features.purchases import link_refunds

AS_OF = "2024-06-30"


def _transactions(seed: int = 3, n: int = 3000) -> pd.DataFrame:
    """Integer ids; partial, full, unattributed and cross-customer refunds; repeated
    order rows and repeated refund rows; rows after AS_OF."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, 250, size=n)
    order = np.arange(n) + 10_000
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 220, size=n), unit="D")
    amount = np.round(rng.lognormal(3, 0.6, size=n), 2)
    frame = pd.DataFrame(
        {"customer_id": customer, "order_id": order, "timestamp": day, "amount": amount}
    )
    refunds = frame.sample(300, random_state=seed).copy()
    refunds["amount"] = -np.round(refunds["amount"] * rng.choice([1.0, 0.5], size=300), 2)
    refunds["timestamp"] += pd.Timedelta(days=3)
    refunds.iloc[:20, 0] = (refunds.iloc[:20, 0] + 1) % 250  # another customer: unattributed
    refunds.iloc[20:30, 1] = 99  # no such order
    repeats = pd.concat([frame.iloc[:15], refunds.iloc[40:50]])  # exact repeats, dropped
    frame = pd.concat([frame, refunds, repeats], ignore_index=True)
    frame["channel"] = rng.choice(["web", "app", "store"], size=len(frame))
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _write(frame: pd.DataFrame, path, kind: str):
    if kind == "csv":
        frame.to_csv(path.with_suffix(".csv"), index=False)
        return path.with_suffix(".csv")
    frame.to_parquet(path.with_suffix(".parquet"), index=False)
    return path.with_suffix(".parquet")


@pytest.mark.parametrize("kind", ["parquet", "csv"])
@pytest.mark.parametrize("ids", ["integer", "string", "padded"])
@pytest.mark.parametrize("cut", [False, True])
def test_features_and_links_are_the_same_with_the_loaders_codes(tmp_path, kind, ids, cut):
    frame = _transactions()
    if ids != "integer":
        frame["customer_id"] = frame["customer_id"].astype(str)
        frame["order_id"] = frame["order_id"].astype(str)
    if ids == "padded":  # " 7" and "7" are one customer once trimmed
        frame.loc[::7, "customer_id"] = " " + frame.loc[::7, "customer_id"]
    path = _write(frame, tmp_path / "tx", kind)

    coded = load_inputs(path, as_of=AS_OF, cut=cut)
    plain = Inputs(load_transactions(path), as_of=AS_OF)
    plain = plain.cut() if cut else plain
    assert coded.transactions.attrs["duplicates_dropped"] == 25
    pd.testing.assert_frame_equal(coded.transactions, plain.transactions)
    assert "customer_ids" in coded._cache and "customer_ids" not in plain._cache

    expected = link_refunds(plain.transactions)
    for links in (coded.refund_links, plain.refund_links):
        np.testing.assert_array_equal(links.refund_rows, expected.refund_rows)
        np.testing.assert_array_equal(links.order_rows, expected.order_rows)
    assert 0 < len(expected.refund_rows) < 300

    for day in ("2024-03-31", AS_OF):
        pd.testing.assert_frame_equal(
            build_features(coded, as_of=day), build_features(plain, as_of=day)
        )


def test_integer_and_text_ids_give_the_same_features(tmp_path):
    frame = _transactions(seed=5)
    as_text = frame.assign(
        customer_id=frame["customer_id"].astype(str), order_id=frame["order_id"].astype(str)
    )
    by_int = build_features(load_inputs(_write(frame, tmp_path / "i", "parquet"), as_of=AS_OF))
    by_text = build_features(load_inputs(_write(as_text, tmp_path / "t", "parquet"), as_of=AS_OF))
    pd.testing.assert_frame_equal(by_int, by_text)


def test_parquet_text_labels_and_requested_columns_are_read_as_categories(tmp_path):
    # pandas 3 writes text as large_string; those columns must come back as categories.
    text = _transactions().astype({"customer_id": str, "order_id": str})
    frame = read_table(_write(text, tmp_path / "tx", "parquet"), categories=("customer_id",))
    assert isinstance(frame["channel"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["customer_id"].dtype, pd.CategoricalDtype)
    assert not isinstance(frame["order_id"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("dictionary", [["b", "a", "c"], ["b", "a", "b", None]])
def test_parquet_dictionaries_become_categories_with_the_same_values(dictionary):
    # Arrow writes distinct dictionaries (taken as they are); another writer's may
    # repeat a value or hold a null: merged by hashing, same values per row.
    import pyarrow as pa

    from fidelite.features._read import _categorical

    indices = pa.array([0, 1, 2, None, 1, 0, 2], type=pa.int32())
    column = pa.chunked_array([pa.DictionaryArray.from_arrays(indices, pa.array(dictionary))])
    got = _categorical(column)
    assert got.categories.is_unique
    expected = [None if i is None else dictionary[i] for i in indices.to_pylist()]
    assert [None if pd.isna(v) else v for v in got] == expected


@pytest.mark.parametrize("longest", [8, 12])
def test_text_ids_sort_in_arrow_byte_order(longest):
    # Ids of at most 8 bytes are sorted as integers of their bytes; longer ones, and
    # ids differing only by trailing NUL bytes, by Arrow: the same order either way.
    import pyarrow as pa
    import pyarrow.compute as pc

    from fidelite.features._text import sort_order

    rng = np.random.default_rng(longest)
    alphabet = np.array(list("ab0Z~ \x00é"))  # é is 2 bytes
    ids = {"".join(rng.choice(alphabet, rng.integers(0, longest // 2 + 1))) for _ in range(4000)}
    ids |= {"a", "a\x00", "b" * (longest // 2)}
    text = pa.array(list(ids), type=pa.large_string())
    for part in (text, text.slice(5), pa.chunked_array([text.slice(0, 9), text.slice(9)])):
        expected = part.take(pc.sort_indices(part)).to_pylist()
        assert part.take(pa.array(sort_order(part))).to_pylist() == expected
    no_nul = pa.array([i for i in ids if "\x00" not in i], type=pa.large_string())
    assert no_nul.take(pa.array(sort_order(no_nul))).to_pylist() == sorted(no_nul.to_pylist())
