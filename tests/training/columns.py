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


def assert_matches_two_pass_reference(model, sample: pd.DataFrame, as_of: str) -> None:
    """``predict_arrays`` of purchasers equals their scores computed the way ``predict``
    did before the one-pass path: the churn booster's own score, the reasons from a second
    (``contributions``) pass, the hazard evaluated for every row."""
    from fidelite.training.scoreframe import json_lists, next_purchase_dates
    from fidelite.training.timing import median_days

    got = model.predict_arrays(serving_columns(sample), as_of=as_of)
    rows = (sample["orders_total"] > 0).to_numpy()
    augmented = model._augment(sample.loc[rows])
    hurdle = model.purchasers
    X = hurdle.encoder.transform_array(augmented)
    p_none = hurdle.churn.churn_probability(X, as_of=as_of)
    cdf = hurdle.timing.purchase_cdf(X)
    assert len(cdf) == rows.sum() > 20  # large enough for the sparse contributions path
    days = median_days(1.0 - p_none, cdf, hurdle.timing.edges_)
    assert np.isnan(days).any() and not np.isnan(days).all()  # both kinds of rows
    np.testing.assert_allclose(got["churn_probability"][rows], p_none, rtol=1e-12, atol=0)
    dates = next_purchase_dates(days, pd.Timestamp(as_of))
    np.testing.assert_array_equal(got["expected_next_purchase"][rows], dates)
    reasons = json_lists(model._reasons("purchasers", augmented, X))
    assert got["reasons"][rows].tolist() == reasons.tolist()
    for one in np.flatnonzero(rows)[:3]:  # single rows: the dense contributions path
        alone = model.predict_arrays(serving_columns(sample.iloc[[one]]), as_of=as_of)
        assert alone["reasons"].tolist() == got["reasons"][[one]].tolist()
        assert alone["churn_probability"][0] == got["churn_probability"][one]
