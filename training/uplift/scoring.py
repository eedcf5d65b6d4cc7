"""The uplift score columns of customers, from a frame or from column arrays.

:meth:`UpliftModel.add_scores` appends them to a scores frame;
:func:`uplift_score_arrays` computes the same values from the feature and score column
arrays of :meth:`FideliteModel.predict_arrays` (the HTTP service's path), where building
frames for one customer costs far more than the models. Both end in
:func:`channel_scores`, so the channel choice has one definition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fidelite.features.contract import CONSENT_COLUMN
from fidelite.training.uplift.contact import contact_columns_by_channel
from fidelite.training.uplift.dataset import SCORE_INPUTS

if TYPE_CHECKING:
    from fidelite.training.uplift.model import UpliftModel

__all__ = ["UPLIFT_SCORE_COLUMNS", "channel_scores", "consent_columns", "uplift_score_arrays"]

#: Columns :meth:`UpliftModel.add_scores` appends to a scores frame.
UPLIFT_SCORE_COLUMNS: tuple[str, ...] = (
    "uplift_channel",
    "uplift_purchase",
    "response_value",
    "uplift_value",
    "uplift_by_channel",
)


def consent_columns(channels: tuple[str, ...]) -> list[str]:
    """The consent columns of the channels that need one (messaging channels)."""
    return [CONSENT_COLUMN[c] for c in channels if c in CONSENT_COLUMN]


def channel_scores(
    channels: tuple[str, ...],
    estimates: np.ndarray,
    value: np.ndarray,
    consent: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """:data:`UPLIFT_SCORE_COLUMNS` of scored rows.

    Parameters
    ----------
    channels : tuple of str
        The model's channels.
    estimates : ndarray, shape (n, len(channels))
        Estimated change in P(purchase) per channel.
    value : ndarray, shape (n,)
        What winning each customer back is worth, currency.
    consent : mapping of str -> ndarray of bool, shape (n,)
        Consent columns present in the scores (absent: no consent).

    Returns
    -------
    dict of str -> ndarray, shape (n,)
        The best consented channel (None without one) and its estimate (without one:
        the mean over the channels), the value, their product, and every channel's
        estimate as JSON.
    """
    n = len(value)
    allowed = np.zeros(estimates.shape, dtype=bool)
    for j, channel in enumerate(channels):
        column = CONSENT_COLUMN.get(channel)
        if column is not None and column in consent:
            allowed[:, j] = consent[column]
    has_channel = allowed.any(axis=1)
    if channels:
        best = np.where(allowed, estimates, -np.inf).argmax(axis=1)
        chosen = np.take_along_axis(estimates, best[:, None], axis=1)[:, 0]
        purchase = np.where(has_channel, chosen, estimates.mean(axis=1))
        names = np.asarray(channels, dtype=object)
        channel_names = np.where(has_channel, names[best], None).astype(object)
    else:
        purchase = np.full(n, np.nan)
        channel_names = np.full(n, None, dtype=object)
    by_channel = np.empty(n, dtype=object)
    by_channel[:] = _estimates_json(channels, estimates)
    return {
        "uplift_channel": channel_names,
        "uplift_purchase": purchase,
        "response_value": np.asarray(value, dtype=float),
        "uplift_value": purchase * value,
        "uplift_by_channel": by_channel,
    }


def _estimates_json(channels: tuple[str, ...], estimates: np.ndarray) -> list[str]:
    """Each row's ``{channel: estimate rounded to 6 decimals}`` as ``json.dumps`` writes it.

    A row of finite numbers is written by one ``str.format`` (``repr`` of a float is
    json's text for it): 10,000 rows in ~15 ms instead of ~90 ms through a dict and the
    encoder per row. Rows with NaN or infinities (json's ``NaN``/``Infinity``) go through
    the encoder.
    """
    encode = json.JSONEncoder().encode
    keys = [encode(c).replace("{", "{{").replace("}", "}}") for c in channels]
    template = "{{" + ", ".join(f"{key}: {{!r}}" for key in keys) + "}}"
    finite = np.isfinite(estimates).all(axis=1).tolist()
    rows = estimates.tolist()
    return [
        template.format(*[round(v, 6) for v in row])
        if ok
        else encode({c: round(float(v), 6) for c, v in zip(channels, row, strict=True)})
        for row, ok in zip(rows, finite, strict=True)
    ]


def _numbers(values: np.ndarray) -> np.ndarray:
    """A score column as float64 (as ``pd.to_numeric(errors="coerce")``)."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return values.astype(float)
    return pd.to_numeric(pd.Series(values, dtype=object, copy=False), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )


#: Element types whose missing values are exactly None and float NaN.
_PLAIN = frozenset({str, bool, np.bool_, int, float, type(None)})


def _flags(values: np.ndarray) -> np.ndarray:
    """A consent column as bool, missing as False (as ``fillna(False)``)."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return values
    items = values.tolist()
    if all(type(v) in _PLAIN for v in items):
        # pd.isna costs more than the whole column for the service's few-row requests
        return np.array([v is not None and v == v and bool(v) for v in items], dtype=bool)
    values = values.astype(object)
    out = np.zeros(len(values), dtype=bool)
    present = ~pd.isna(values)
    out[present] = values[present].astype(bool)
    return out


def _channel_matrices(
    model: UpliftModel,
    inputs: Mapping[str, np.ndarray],
    contacts: list[dict[str, np.ndarray]],
    m: int,
) -> list[np.ndarray]:
    """The model matrix at each channel's contact columns, each of shape (m, p).

    The inputs are encoded once; for the other channels only the contact columns are
    encoded again (by the same encoder) and replace the first channel's.
    """
    encoder = model.encoder
    if not contacts:
        return []
    first = encoder.transform_columns({**inputs, **contacts[0]}, m)
    names = encoder.feature_names_
    positions = [names.index(column) for column in contacts[0] if column in names]
    matrices = [first]
    for part in contacts[1:]:
        matrix = first.copy()
        matrix[:, positions] = encoder.transform_columns(part, m)[:, positions]
        matrices.append(matrix)
    return matrices


def uplift_score_arrays(
    model: UpliftModel,
    features: Mapping[str, np.ndarray],
    scores: Mapping[str, np.ndarray],
    n: int,
) -> dict[str, np.ndarray]:
    """:meth:`UpliftModel.add_scores`'s columns from column arrays (see
    :meth:`UpliftModel.score_arrays` for the parameters)."""
    status = scores.get("status")
    scored = np.ones(n, dtype=bool) if status is None else np.asarray(status) == "ok"
    out = {
        "uplift_channel": np.full(n, None, dtype=object),
        "uplift_purchase": np.full(n, np.nan),
        "response_value": np.full(n, np.nan),
        "uplift_value": np.full(n, np.nan),
        "uplift_by_channel": np.full(n, None, dtype=object),
    }
    m = int(scored.sum())
    if m == 0:
        return out

    def rows(values: np.ndarray) -> np.ndarray:
        return values if m == n else np.asarray(values)[scored]

    # The uplift inputs: features with the scores as ``score_*`` (as uplift_inputs).
    inputs = dict(features) if m == n else {name: rows(v) for name, v in features.items()}
    inputs.update({f"score_{c}": rows(_numbers(scores[c])) for c in SCORE_INPUTS if c in scores})
    encoder = model.encoder
    # every channel's inputs, then (only for the response-spend basis) no channel's
    contacts = contact_columns_by_channel(inputs, [*model.channels, None], m)
    matrices = _channel_matrices(model, inputs, contacts[:-1], m)
    value = model._value(
        inputs, m, lambda: encoder.transform_columns({**inputs, **contacts[-1]}, m)
    )
    consent = {
        column: _flags(rows(scores[column]))
        for column in consent_columns(model.channels)
        if column in scores
    }
    found = channel_scores(model.channels, model._effects(matrices, m), value, consent)
    if m == n:
        return found
    for name, values in found.items():
        out[name][scored] = values
    return out
