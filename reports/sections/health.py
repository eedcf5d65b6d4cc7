"""Section 8: calibration, gain and CLV deciles, the champion's record, data freshness."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.reports import charts
from fidelite.reports import formats as fmt
from fidelite.reports.base import CustomerBase
from fidelite.reports.health import (
    CHAMPION_METRICS,
    LabelledPredictions,
    champion_record,
    labelled_predictions,
)
from fidelite.reports.layout import ALL_VIEW, Number, Section, SectionView

__all__ = ["build", "calibration_points", "decile_means", "gain_curve"]

N_BINS = 10
#: Data older than this many days before D is called stale.
STALE_DAYS = 7


def calibration_points(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Mean predicted probability and observed rate in quantile bins of the prediction."""
    order = np.argsort(p, kind="stable")
    bins = np.empty(p.size, dtype=np.int64)
    bins[order] = np.arange(p.size) * min(n_bins, p.size) // p.size
    frame = pd.DataFrame({"p": p, "y": y, "bin": bins}).groupby("bin")
    return frame.agg(predicted=("p", "mean"), observed=("y", "mean"), customers=("y", "size"))


def gain_curve(
    y: np.ndarray, score: np.ndarray, points: int = 101
) -> tuple[np.ndarray, np.ndarray]:
    """Share targeted (highest score first) against share of positives caught, both in [0, 1]."""
    ordered = y[np.argsort(-score, kind="stable")]
    caught = np.concatenate([[0.0], np.cumsum(ordered)]) / max(ordered.sum(), 1)
    targeted = np.linspace(0, 1, points)
    return targeted, caught[np.round(targeted * y.size).astype(int)]


def decile_means(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Mean predicted and actual value per decile of the prediction (1 = lowest)."""
    order = np.argsort(predicted, kind="stable")
    decile = np.empty(predicted.size, dtype=np.int64)
    decile[order] = np.arange(predicted.size) * min(10, predicted.size) // predicted.size + 1
    frame = pd.DataFrame({"actual": actual, "predicted": predicted, "decile": decile})
    return frame.groupby("decile")[["predicted", "actual"]].mean()


def _charts(labelled: LabelledPredictions) -> list[dict]:
    f = labelled.frame
    y, p = f["churned"].to_numpy(), f["churn_probability"].to_numpy()
    cal = calibration_points(y, p)
    calibration = charts.figure(
        [
            charts.line(
                100 * cal["predicted"],
                100 * cal["observed"],
                "Model",
                customdata=cal["customers"].tolist(),
                hover="predicted %{x:.1f}%, observed %{y:.1f}% (%{customdata:,} customers)"
                "<extra></extra>",
            ),
            charts.line(
                [0, 100],
                [0, 100],
                "Perfect calibration",
                colour="#7f7f7f",
                dash="dash",
                mode="lines",
                hoverinfo="skip",
            ),
        ],
        title="Churn calibration",
        x_title="Predicted churn probability (%)",
        y_title="Observed churn rate (%)",
    )
    traces = []
    scores = {"Model": p}
    if "p_alive" in f and f["p_alive"].notna().all():
        scores["BG/NBD (1 - p_alive)"] = 1 - f["p_alive"].to_numpy()
    for name, score in scores.items():
        x, caught = gain_curve(y, score)
        traces.append(
            charts.line(
                100 * x,
                100 * caught,
                name,
                mode="lines",
                hover=name + ": top %{x:.0f}% catch %{y:.1f}% of churners<extra></extra>",
            )
        )
    traces.append(
        charts.line(
            [0, 100],
            [0, 100],
            "Random",
            colour="#7f7f7f",
            dash="dash",
            mode="lines",
            hoverinfo="skip",
        )
    )
    gain = charts.figure(
        traces,
        title="Churn gain: churners caught by targeting the riskiest",
        x_title="Customers targeted (%)",
        y_title="Churners caught (%)",
    )
    deciles = decile_means(f["future_spend"].to_numpy(), f["predicted_clv"].to_numpy())
    clv = charts.figure(
        [
            charts.bar(deciles.index.tolist(), deciles["predicted"], "Predicted", colour="#9cc3e6"),
            charts.bar(deciles.index.tolist(), deciles["actual"], "Actual", colour="#3b6fb6"),
        ],
        title="CLV by predicted decile",
        x_title="Decile of predicted CLV (1 = lowest)",
        y_title="Mean net spend per customer",
        barmode="group",
    )
    return [calibration, gain, clv]


def _freshness(base: CustomerBase) -> tuple[Number, str]:
    inputs, d = base.inputs, base.as_of
    parts, stale = [], False
    for name, latest in (
        ("transaction", inputs.latest_transaction),
        ("event", inputs.latest_event),
    ):
        if latest is None:
            continue
        lag = (d + pd.Timedelta(days=1) - latest) / pd.Timedelta(days=1)
        when = latest.strftime("%Y-%m-%d %H:%M")
        if lag < 0:
            parts.append(f"latest {name} {when} (after D: read up to D only)")
        else:
            parts.append(f"latest {name} {when} ({lag:.0f} days before the end of D)")
            stale |= lag > STALE_DAYS
    if base.inputs.scores is not None:
        scored = pd.Timestamp(base.inputs.scores["as_of"].iloc[0]).date()
        parts.append(f"scores as of {scored}")
    line = "; ".join(parts)
    number = Number(
        "Data freshness", "stale" if stale else "fresh", line, "bad" if stale else "good"
    )
    return number, line


def _metric_numbers(labelled: LabelledPredictions) -> list[Number]:
    from fidelite.training.metrics import churn_metrics, clv_metrics

    f = labelled.frame
    churn = churn_metrics(f["churned"], f["churn_probability"])
    clv = clv_metrics(f["future_spend"], f["predicted_clv"])
    return [
        Number(
            "Churn ROC-AUC",
            f"{churn['roc_auc']:.3f}",
            f"ECE {churn['expected_calibration_error']:.3f}",
        ),
        Number(
            "CLV Gini",
            f"{clv['normalized_gini']:.3f}",
            f"total ratio {clv['total_ratio']:.2f}",
            hint="predicted total / actual total over the window",
        ),
    ]


def build(base: CustomerBase) -> Section:
    """Model health for all customers (this section ignores the filter)."""
    labelled, source = labelled_predictions(base)
    tracking_uri = base.config.tracking_uri
    if tracking_uri is None and base.config.model_uri is not None:
        from fidelite.training.tracking import resolve_tracking_uri

        tracking_uri = resolve_tracking_uri(None)  # where the model is loaded from
    record, record_note = champion_record(tracking_uri, base.config.model_name)
    freshness, fresh_line = _freshness(base)
    numbers, figures, notes = [freshness], [], []
    if labelled is not None and len(labelled.frame):
        numbers += _metric_numbers(labelled)
        figures = _charts(labelled)
        notes.append(f"Charts: {source} ({fmt.count(len(labelled.frame))} customers).")
    else:
        notes.append(f"No calibration or gain charts: {source}.")
    if record is not None:
        metrics = " · ".join(f"{CHAMPION_METRICS[k]} {v:.3f}" for k, v in record.metrics.items())
        numbers.append(
            Number(
                "Champion",
                f"version {record.version}",
                f"trained as of {record.trained_as_of}",
                hint=f"registered {record.registered}, run {record.run_id}",
            )
        )
        notes.append(f"Champion validation: {metrics or 'no metrics logged'}.")
        if labelled is not None and record.trained_as_of > str(labelled.as_of.date()):
            notes.append(
                f"The champion was trained on data up to {record.trained_as_of}, after "
                f"{labelled.as_of.date()}: it has seen these outcomes, so the charts flatter "
                "its ranking (calibration is still telling)."
            )
    else:
        notes.append(f"Champion: {record_note}.")
    reading = f"Data: {fresh_line}."
    if labelled is not None and len(labelled.frame):
        f = labelled.frame
        reading += (
            f" On {labelled.as_of.date()}'s predictions, {fmt.pct(f['churn_probability'].mean())} "
            f"churn was expected and {fmt.pct(f['churned'].mean())} happened; predicted spend "
            f"totalled {fmt.pct(f['predicted_clv'].sum() / f['future_spend'].sum(), 0)} of actual."
        )
    view = SectionView(numbers, reading, figures, notes)
    return Section(
        "health",
        "Model health",
        "Can the numbers above be trusted: calibration, ranking, the champion and data freshness.",
        {ALL_VIEW: view},
        "Calibration: customers binned by predicted churn probability (10 equal-size bins), "
        "mean prediction against the observed churn rate. Gain: share of the churners found "
        "when targeting the highest-risk customers first. CLV deciles: mean predicted and "
        "actual net spend per decile of predicted CLV. ECE: expected calibration error "
        "(10 equal-width bins). All on customers scored 'ok' whose outcome window ended by D.",
    )
