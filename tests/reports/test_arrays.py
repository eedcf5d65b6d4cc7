"""Customer codes agree whatever the id column's type (the events arrive as categories)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fidelite.reports.arrays import customer_codes

UNIVERSE = pd.Index(pd.array(["A", "B", "C", "D"], dtype="str"), name="customer_id")
IDS = ["C", "A", "Z", None, "C", "D", "Z"]  # Z unknown, None missing
EXPECTED = np.array([2, 0, -1, -1, 2, 3, -1])


@pytest.mark.parametrize(
    "ids",
    [
        pd.Series(IDS, dtype=object),
        pd.Series(IDS, dtype="str"),
        pd.Series(pd.Categorical(IDS, categories=["Z", "D", "C", "A"])),
        pd.Series(pd.arrays.ArrowExtensionArray(pa.array(IDS, pa.large_string()))),
        pd.Series(pd.arrays.ArrowExtensionArray(pa.array(IDS, pa.string()))),
    ],
    ids=["object", "str", "category", "large_string", "string"],
)
def test_codes_are_positions_in_the_universe(ids):
    codes = customer_codes(ids, UNIVERSE)
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, EXPECTED)
