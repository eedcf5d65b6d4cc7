"""Scores against what happened next: ``fidelite evaluate``.

:func:`evaluate_scores` joins a scores frame (written by ``fidelite score``) with the
outcomes observed over its horizon and computes the :mod:`~fidelite.training.metrics`.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features.days import parse_day
from fidelite.training.labels import make_labels
from fidelite.training.metrics import churn_metrics, clv_metrics

logger = logging.getLogger(__name__)

__all__ = ["REQUIRED_SCORE_COLUMNS", "evaluate_scores"]

REQUIRED_SCORE_COLUMNS = (
    "customer_id",
    "as_of",
    "horizon_days",
    "churn_probability",
    "predicted_clv",
)


def _scores_contract_error(message: str, rows: pd.DataFrame | None = None) -> DataContractError:
    sample = "" if rows is None or rows.empty else f"; sample rows:\n{rows.head(5).to_string()}"
    return DataContractError(f"scores: {message}{sample}")


def _validate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    frame = scores.reset_index() if "customer_id" not in scores.columns else scores.copy()
    missing = [column for column in REQUIRED_SCORE_COLUMNS if column not in frame.columns]
    if missing:
        raise _scores_contract_error(
            f"missing required column(s) {missing}; present: {list(frame.columns)}"
        )
    if frame.empty:
        raise _scores_contract_error("the scores frame is empty")
    frame["customer_id"] = frame["customer_id"].astype(str)
    duplicated = frame[frame["customer_id"].duplicated(keep=False)]
    if not duplicated.empty:
        raise _scores_contract_error("column 'customer_id' has duplicates", duplicated)
    return frame


def _single_value(frame: pd.DataFrame, column: str) -> Any:
    values = frame[column].dropna().unique()
    if len(values) != 1:
        raise _scores_contract_error(
            f"column {column!r} must hold exactly one value, found {list(values[:5])}",
            frame[["customer_id", column]].drop_duplicates(column),
        )
    return values[0]


def _check_horizon_covered(transactions: pd.DataFrame, day: pd.Timestamp, horizon: int) -> None:
    """The data must reach the last label day; silent trailing days mean not yet observed."""
    last_label_day = day + pd.Timedelta(days=horizon)
    last_seen_day = transactions["timestamp"].max().floor("D")
    if last_seen_day < last_label_day:
        first_missing = max(last_seen_day + pd.Timedelta(days=1), day + pd.Timedelta(days=1))
        n_missing = (last_label_day - first_missing).days + 1
        raise DataContractError(
            f"transactions: column 'timestamp' does not cover the {horizon}-day horizon after "
            f"as_of {day.date()}: the label window runs to {last_label_day.date()} but the "
            f"latest transaction is on {last_seen_day.date()}; missing dates "
            f"{first_missing.date()} to {last_label_day.date()} ({n_missing} days)"
        )


def _scored_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows with usable scores, and how many rows the status column excluded."""
    usable = frame
    if "status" in frame.columns:
        usable = frame[frame["status"].astype(str) == "ok"]
    bad = usable[usable[["churn_probability", "predicted_clv"]].isna().any(axis=1)]
    if not bad.empty:
        raise _scores_contract_error(
            f"{len(bad)} scored rows have missing 'churn_probability' or 'predicted_clv'",
            bad[["customer_id", "churn_probability", "predicted_clv"]],
        )
    if usable.empty:
        raise _scores_contract_error("no rows with status 'ok' to evaluate", frame)
    probability = pd.to_numeric(usable["churn_probability"], errors="coerce")
    out_of_range = usable[~probability.between(0.0, 1.0)]
    if not out_of_range.empty:
        raise _scores_contract_error(
            f"column 'churn_probability' has {len(out_of_range)} values outside [0, 1]",
            out_of_range[["customer_id", "churn_probability"]],
        )
    return usable, len(frame) - len(usable)


def evaluate_scores(scores: pd.DataFrame, transactions: pd.DataFrame) -> dict[str, Any]:
    """Compare a scores frame with what actually happened after its ``as_of``.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, k)
        The scores frame of ARCHITECTURE.md (written by ``fidelite score``):
        needs ``customer_id``, ``as_of``, ``horizon_days``, ``churn_probability``
        and ``predicted_clv``; rows whose ``status`` is not "ok" are skipped.
    transactions : DataFrame
        Normalised transactions (``load_transactions``) covering at least the
        ``horizon_days`` days after ``as_of``.

    Returns
    -------
    dict
        ``as_of`` (ISO date), ``horizon_days``, ``n_scored``, ``n_evaluated``,
        ``n_skipped_status`` (status not "ok"), ``n_without_transactions``
        (evaluated customers with no transaction at all up to the end of the
        horizon; counted as churned with zero spend), ``churn``
        (:func:`churn_metrics`), ``clv`` (:func:`clv_metrics`) and ``joined``
        (DataFrame indexed by customer_id: the scores next to the labels, for plots).

    Raises
    ------
    DataContractError
        Missing columns, several as-of dates or horizons, or transactions not
        covering the horizon.
    """
    frame = _validate_scores(scores)
    day = parse_day(_single_value(frame, "as_of"), name="scores: as_of")
    horizon = int(_single_value(frame, "horizon_days"))
    tx = transactions
    _check_horizon_covered(tx, day, horizon)

    usable, n_skipped = _scored_rows(frame)
    usable = usable.set_index("customer_id")
    labels = make_labels(tx, as_of=day, horizon_days=horizon, customers_index=usable.index)
    joined = usable.join(labels, how="inner")

    horizon_end = day + pd.Timedelta(days=horizon + 1)
    ever_seen = tx.loc[tx["timestamp"] < horizon_end, "customer_id"].unique()
    n_without = int((~joined.index.isin(ever_seen)).sum())
    if n_without:
        logger.warning(
            "%d of %d scored customers have no transaction up to %s; they count as churned "
            "with zero spend",
            n_without,
            len(joined),
            (horizon_end - pd.Timedelta(days=1)).date(),
        )
    return {
        "as_of": day.date().isoformat(),
        "horizon_days": horizon,
        "n_scored": len(frame),
        "n_evaluated": len(joined),
        "n_skipped_status": n_skipped,
        "n_without_transactions": n_without,
        "churn": churn_metrics(joined["churned"], joined["churn_probability"]),
        "clv": clv_metrics(joined["future_spend"], joined["predicted_clv"]),
        "joined": joined,
    }
