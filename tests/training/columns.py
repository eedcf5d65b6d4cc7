"""Feature columns in the forms ``FideliteModel.predict_arrays`` is given them."""

from __future__ import annotations

import numpy as np
import pandas as pd


def serving_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Columns as the HTTP service holds them: floats for numbers, objects (None) else."""
    columns = {"customer_id": frame.index.to_numpy(dtype=object)}
    for name in frame.columns:
        values = frame[name]
        if values.dtype.kind in "iuf":
            columns[name] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            columns[name] = values.to_numpy(dtype=object, na_value=None)
    return columns


def typed_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The frame's own column arrays (ints, bools, pandas strings)."""
    return {"customer_id": frame.index.to_numpy()} | {c: frame[c].to_numpy() for c in frame}
