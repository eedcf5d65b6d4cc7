"""The pre-encoded /predict body is exactly the PredictResponse pydantic would produce."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fidelite.serving.schemas import CustomerScore, ModelRef, PredictResponse
from fidelite.serving.scoring import parse_reasons, predict_response_json, score_records


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "as_of": pd.to_datetime(["2025-09-30"] * 3),
            "horizon_days": [90, 90, 90],
            "status": ["ok", "ok", "insufficient_history"],
            "churn_probability": [0.2, 0.9, np.nan],
            "p_alive": [0.8, 0.1, np.nan],
            "expected_purchases": [1.5, 0.1, np.nan],
            "predicted_clv": [120.0, 5.0, np.nan],
            "predicted_clv_p10": [10.0, 0.0, np.nan],
            "predicted_clv_p90": [300.0, 20.0, np.nan],
            "expected_next_purchase": pd.to_datetime(["2025-11-29", None, None]),
            "lifecycle_stage": ["active", "lapsed", "prospect"],
            "churn_percentile": [20.0, 95.5, np.nan],
            "risk_band": ["low", "critical", None],
            "value_at_risk": [24.0, 4.5, np.nan],
            "reasons": [
                json.dumps(["no order for 94 days, 3.1x their usual gap", "ünïcode"]),
                json.dumps(["spend down 60% vs the prior 90 days"]),
                json.dumps(["no purchase yet: not enough history to score"]),
            ],
            "best_channel": ["web", None, "email"],
            "channel_preference": ["web,email", None, "email"],
            "email_opt_in": [True, False, True],
            "sms_opt_in": [True, True, False],
            "push_opt_in": [False, True, True],
        }
    )


def test_fast_body_equals_pydantic_response() -> None:
    scores = _scores()
    ref = ModelRef(name="fidelite", version="3", alias="champion")
    body = predict_response_json(ref, scores)
    expected = PredictResponse(
        model=ref, n_customers=3, n_insufficient_history=1, scores=score_records(scores)
    )
    assert json.loads(body) == json.loads(expected.model_dump_json())
    parsed = PredictResponse.model_validate_json(body)
    assert parsed.scores[1].expected_next_purchase is None
    assert parsed.scores[2].churn_probability is None and parsed.scores[2].risk_band is None
    assert parsed.scores[0].reasons[1] == "ünïcode"
    assert b"NaN" not in body


def test_parse_reasons_handles_mixed_storage() -> None:
    mixed = pd.Series(['["a", "b"]', ["c"], None, "", float("nan")])
    assert parse_reasons(mixed).tolist() == [["a", "b"], ["c"], [], [], []]
    same_length = pd.Series(['["a", "b"]', '["c", "d"]'], index=[5, 7])
    parsed = parse_reasons(same_length)
    assert parsed.tolist() == [["a", "b"], ["c", "d"]] and parsed.index.tolist() == [5, 7]
    assert isinstance(score_records(_scores())[0], CustomerScore)


def test_no_engagement_channels_are_null_not_empty_strings() -> None:
    scores = _scores()
    scores["best_channel"] = ["web", "", "  "]
    scores["channel_preference"] = ["web,email", "", None]
    ref = ModelRef(name="fidelite", version="3", alias=None)
    body = json.loads(predict_response_json(ref, scores))
    assert [s["best_channel"] for s in body["scores"]] == ["web", None, None]
    assert [s["channel_preference"] for s in body["scores"]] == ["web,email", None, None]
    records = score_records(scores)
    assert [r.best_channel for r in records] == ["web", None, None]
    assert records[1].channel_preference is None
    # The scores frame itself keeps its strings.
    assert scores["best_channel"].tolist() == ["web", "", "  "]
