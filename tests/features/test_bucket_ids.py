"""The Dask path's id and input-partition helpers, without a cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fidelite.features._bucket_ids import id_codes, merge_ids, split_ids
from fidelite.features._partition_read import ParquetPart, parquet_parts
from fidelite.features.partitions import bucket_of


def _ids(n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(pd.array([f"c{i}" for i in rng.integers(0, n // 3, n)], dtype="str"))


def test_split_then_merge_gives_the_rows_ids_as_sorted_categories():
    ids = [_ids(400, 1), _ids(300, 2)]
    n_buckets = 5
    pieces: list[list[pd.Series]] = [[] for _ in range(n_buckets)]
    rows: list[list[str]] = [[] for _ in range(n_buckets)]
    for column in ids:
        codes, categories = id_codes(column)
        order, bounds, split = split_ids(codes, categories, n_buckets)
        expected_bucket = bucket_of(column, n_buckets)
        for k in range(n_buckets):
            taken = column.to_numpy()[order[bounds[k] : bounds[k + 1]]]
            assert (expected_bucket[order[bounds[k] : bounds[k + 1]]] == k).all()
            # Each piece holds exactly the ids of its rows, in file order.
            assert list(np.asarray(split[k], dtype=object)) == list(taken)
            assert set(split[k].categories) == set(taken)
            pieces[k].append(pd.Series(split[k]))
            rows[k].extend(taken)
    for k in range(n_buckets):
        merged = merge_ids(pieces[k])
        expected = pd.Series(rows[k], dtype="str").astype("category")
        assert list(merged.categories) == list(expected.cat.categories)
        np.testing.assert_array_equal(merged.codes, expected.cat.codes.to_numpy())


def test_ids_without_rows_are_left_out():
    codes = np.array([0, 0, 2])
    categories = pd.Index(["a", "b", "c"], dtype="str")
    _, _, split = split_ids(codes, categories, 3)
    assert sorted(c for piece in split for c in piece.categories) == ["a", "c"]


def test_parquet_parts_group_row_groups_and_read_contract_columns(tmp_path, monkeypatch):
    import fidelite.features._partition_read as reading

    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(1000)], "x": range(1000)})
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "a.parquet", row_group_size=100)
    pq.write_table(pa.Table.from_pandas(frame.iloc[:0]), tmp_path / "b.parquet")
    metadata = pq.ParquetFile(tmp_path / "a.parquet").metadata
    sizes = [metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups)]
    monkeypatch.setattr(reading, "ROW_GROUP_BYTES", 3 * max(sizes))
    parts = parquet_parts(tmp_path)
    runs = [p.row_groups for p in parts if p.path.endswith("a.parquet")]
    assert [g for run in runs for g in run] == list(range(10))  # every group, in order
    assert 1 < len(runs) < 10
    for run, following in zip(runs, runs[1:], strict=False):
        assert sum(sizes[g] for g in run) <= 3 * max(sizes)
        # A run ends only when the next group would not fit.
        assert sum(sizes[g] for g in run) + sizes[following[0]] > 3 * max(sizes)
    assert [p.row_groups for p in parts if p.path.endswith("b.parquet")] in ([()], [(0,)])
    read = pd.concat([p.read(["customer_id", "missing"]) for p in parts], ignore_index=True)
    assert list(read.columns) == ["customer_id"]
    assert read["customer_id"].tolist() == frame["customer_id"].tolist()
    assert parquet_parts("s3://bucket/x.parquet") is None
    assert parquet_parts(tmp_path / "absent.parquet") is None
    assert isinstance(parts[0], ParquetPart)


def test_dask_sizes_the_buckets_and_their_encoding():
    from dask.sizeof import sizeof

    from fidelite.features.demo import generate_demo_data
    from fidelite.features.inputs import load_inputs
    from fidelite.features.windows import WindowFeatures

    data = generate_demo_data(300, seed=3)
    inputs = load_inputs(data.transactions, data.events, data.customers, as_of="2025-06-30")
    tables = sum(
        int(frame.memory_usage(deep=True).sum())
        for frame in (inputs.transactions, inputs.events, inputs.customers)
    )
    assert sizeof(inputs) >= 0.5 * tables
    encoded = WindowFeatures(inputs)
    arrays = encoded._amount.nbytes + encoded._discount.nbytes
    assert sizeof(encoded) > 4 * arrays
