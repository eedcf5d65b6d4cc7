"""The scores frame: the columns every prediction carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScoreDtype = Literal["str", "date", "int", "float", "bool", "list[str]"]


@dataclass(frozen=True)
class ScoreColumn:
    """One column of the scores frame.

    Attributes
    ----------
    name : str
    dtype : {"str", "date", "int", "float", "bool", "list[str]"}
        ``list[str]`` is stored as a JSON list in files and returned as a list by the API.
    nullable : bool
        Whether the value may be missing (null in JSON, NaN/NaT/None in the frame).
    description : str
        Meaning and unit; shown in the OpenAPI schema and the README.
    """

    name: str
    dtype: ScoreDtype
    nullable: bool
    description: str


#: The scores frame, in column order (written by ``fidelite score``, returned by
#: ``FideliteModel.predict`` and by the service).
SCORE_COLUMNS: tuple[ScoreColumn, ...] = (
    ScoreColumn("customer_id", "str", False, "Customer identifier."),
    ScoreColumn("as_of", "date", False, "Day the features were built at (D)."),
    ScoreColumn("horizon_days", "int", False, "Prediction horizon H in days."),
    ScoreColumn(
        "status",
        "str",
        False,
        "ok: a purchaser, scored from their purchase history; prospect: no purchase yet "
        "(signed up, or only refunded or zero-value orders), scored by the first-purchase "
        "model; insufficient_history: no purchase yet and no first-purchase model (too "
        "few prospects in the training data), so the predictions are missing.",
    ),
    ScoreColumn(
        "churn_probability",
        "float",
        True,
        "P(no purchase in the days (D, D + H]); calibrated for the season of that window. "
        "1 - churn_probability is P(at least one purchase), for a prospect P(first purchase).",
    ),
    ScoreColumn(
        "p_alive",
        "float",
        True,
        "P(the customer has not left for good): the MBG/NBD baseline's P(alive) (which "
        "falls with silence, one-time buyers included) scaled by the ratio of the model's "
        "to the baseline's P(purchase within H), at most 1; never below 1 - "
        "churn_probability. Missing for prospects.",
    ),
    ScoreColumn(
        "expected_purchases",
        "float",
        True,
        "Expected purchase days in (D, D + H], consistent with churn_probability.",
    ),
    ScoreColumn(
        "predicted_clv",
        "float",
        True,
        "Expected net spend in (D, D + H] (currency): (1 - churn_probability) x value_if_retained.",
    ),
    ScoreColumn(
        "predicted_clv_p10",
        "float",
        True,
        "Lower end of an 80% interval of the spend in (D, D + H], calibrated on held-out "
        "data (0 when no purchase is about as likely as the lower tail).",
    ),
    ScoreColumn(
        "predicted_clv_p90", "float", True, "Upper end of the same 80% interval (currency)."
    ),
    ScoreColumn(
        "value_if_retained",
        "float",
        True,
        "Expected net spend in (D, D + H] if the customer stays, i.e. given at least one "
        "purchase in it (currency).",
    ),
    ScoreColumn(
        "expected_next_purchase",
        "date",
        True,
        "Median date of the next purchase given a purchase within the horizon: the day "
        "P(a purchase by then | one within H) reaches 1/2. Missing when a purchase within "
        "the horizon is less likely than not (churn_probability > 0.5; P(purchase within "
        "H) is 1 - churn_probability).",
    ),
    ScoreColumn(
        "lifecycle_stage", "str", True, "prospect, new, active, at_risk, lapsed or reactivated."
    ),
    ScoreColumn(
        "churn_percentile",
        "float",
        True,
        "Percentile (0-100) of the churn probability among held-out purchasers.",
    ),
    ScoreColumn("risk_band", "str", True, "low (< 0.25), medium, high or critical (>= 0.75)."),
    ScoreColumn(
        "value_at_risk",
        "float",
        True,
        "churn_probability x value_if_retained: the spend expected if the customer stays, "
        "weighted by the risk they do not (currency).",
    ),
    ScoreColumn("reasons", "list[str]", False, "Top drivers of the churn risk, strongest first."),
    ScoreColumn("best_channel", "str", True, "Channel with the most engagement."),
    ScoreColumn(
        "channel_preference", "str", True, "Channels ordered by engagement, comma-separated."
    ),
    ScoreColumn("email_opt_in", "bool", True, "Current email consent."),
    ScoreColumn("sms_opt_in", "bool", True, "Current SMS consent."),
    ScoreColumn("push_opt_in", "bool", True, "Current push consent."),
    # Uplift (null unless the model was trained with campaign history: train --campaigns).
    ScoreColumn(
        "uplift_channel",
        "str",
        True,
        "Consented messaging channel with the highest estimated uplift (null: none).",
    ),
    ScoreColumn(
        "uplift_purchase",
        "float",
        True,
        "Change in P(purchase within the response window) if contacted on uplift_channel "
        "(negative: the contact drives the customer away).",
    ),
    ScoreColumn(
        "response_value",
        "float",
        True,
        "What winning the customer back is worth (currency): value_if_retained when the "
        "uplift model was trained with it, else (older models) the expected net spend in "
        "the response window given a purchase.",
    ),
    ScoreColumn(
        "uplift_value",
        "float",
        True,
        "uplift_purchase x response_value: expected incremental net value of a contact "
        "(currency, before the offer's cost).",
    ),
    ScoreColumn(
        "uplift_by_channel",
        "str",
        True,
        'JSON object: uplift_purchase per channel with campaign history, e.g. {"email": 0.04}.',
    ),
)


def score_column_names() -> tuple[str, ...]:
    """Names of :data:`SCORE_COLUMNS`, in order."""
    return tuple(c.name for c in SCORE_COLUMNS)
