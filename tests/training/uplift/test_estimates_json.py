"""The per-channel estimates' JSON text is exactly ``json.dumps`` of the rounded dict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fidelite.training.uplift.scoring import _estimates_json


@pytest.mark.parametrize(
    "channels", [("email", "push", "sms"), ('we"ird{x}}', "b\\c", "é"), ("app",), ()]
)
def test_estimates_json_is_the_encoders_text(channels: tuple[str, ...]) -> None:
    rng = np.random.default_rng(len(channels))
    estimates = (
        rng.normal(0, 0.05, (500, len(channels))) * rng.choice([1e-9, 1, 1e21], 500)[:, None]
    )
    if channels:
        estimates[3, 0], estimates[4, -1], estimates[5, 0] = np.nan, np.inf, -0.0
        estimates[6, 0], estimates[7, 0] = 5e-7, -5e-7  # round half cases at 6 decimals
    encode = json.JSONEncoder().encode
    expected = [
        encode({c: round(float(v), 6) for c, v in zip(channels, row, strict=True)})
        for row in estimates.tolist()
    ]
    assert _estimates_json(channels, estimates) == expected
