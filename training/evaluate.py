"""Evaluation metrics and figures for churn probabilities and CLV predictions.

Pure functions: they take arrays and return numbers or matplotlib figures, and
never touch MLflow or the filesystem (``fidelite evaluate`` and ``training.train``
decide where results go). Figures use the non-interactive Agg backend so they
render on headless servers and in tests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats
from sklearn import metrics as skm

from fidelite.features.data import DataContractError, as_of_bounds, load_transactions
from fidelite.training.labels import make_labels

logger = logging.getLogger(__name__)

__all__ = [
    "REQUIRED_SCORE_COLUMNS",
    "churn_metrics",
    "clv_metrics",
    "evaluate_scores",
    "normalized_gini",
    "plot_calibration",
    "plot_clv_deciles",
    "plot_cumulative_gain",
    "plot_feature_importance",
    "plot_roc",
    "score_figures",
]

REQUIRED_SCORE_COLUMNS = (
    "customer_id",
    "as_of",
    "horizon_days",
    "churn_probability",
    "predicted_clv",
)
TOP_SHARE = 0.10
N_CALIBRATION_BINS = 10


# --------------------------------------------------------------------------- helpers
def _as_float_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype="float64").ravel()
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{name} has {bad.size} missing or infinite values, "
            f"e.g. at positions {bad[:5].tolist()}"
        )
    return array


def _check_same_length(first: np.ndarray, second: np.ndarray, names: str) -> None:
    if first.shape != second.shape:
        raise ValueError(f"{names} have different lengths: {first.size} vs {second.size}")
    if first.size == 0:
        raise ValueError(f"{names} are empty")


def _binary_outcomes(y_true: Any, p_churn: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _as_float_array(y_true, "y_true")
    p = _as_float_array(p_churn, "p_churn")
    _check_same_length(y, p, "y_true and p_churn")
    not_binary = np.flatnonzero((y != 0) & (y != 1))
    if not_binary.size:
        raise ValueError(f"y_true must be 0/1, got {y[not_binary[:5]].tolist()}")
    out_of_range = np.flatnonzero((p < 0) | (p > 1))
    if out_of_range.size:
        raise ValueError(f"p_churn must lie in [0, 1], got {p[out_of_range[:5]].tolist()}")
    return y.astype(int), p


def _top_count(n: int, share: float = TOP_SHARE) -> int:
    """Number of rows in the top ``share`` (at least one)."""
    return max(1, math.ceil(n * share))


def _descending_order(scores: np.ndarray) -> np.ndarray:
    # A stable sort keeps ties in input order so results are reproducible.
    return np.argsort(-scores, kind="stable")


def _safe_ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator != 0 else float("nan")


def expected_calibration_error(
    y: np.ndarray, p: np.ndarray, n_bins: int = N_CALIBRATION_BINS
) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by bin size.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Observed 0/1 outcomes.
    p : ndarray, shape (n,)
        Predicted probabilities in [0, 1].
    n_bins : int
        Number of equal-width probability bins on [0, 1].
    """
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    return float(np.abs(sum_y - sum_p).sum() / len(y))


def _gini(actual: np.ndarray, order_by: np.ndarray) -> float:
    ordered = actual[_descending_order(order_by)]
    n = len(ordered)
    total = ordered.sum()
    if total == 0:
        return float("nan")
    cumulative_share = np.cumsum(ordered) / total
    return float(cumulative_share.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: Any, predicted: Any) -> float:
    """Gini of ``actual`` ordered by ``predicted`` over the Gini of the perfect order.

    1 for a perfect ranking, 0 for a random one, -1 for the reversed ranking;
    NaN when ``actual`` sums to zero or is constant.
    """
    a = _as_float_array(actual, "actual")
    p = _as_float_array(predicted, "predicted")
    _check_same_length(a, p, "actual and predicted")
    return _safe_ratio(_gini(a, p), _gini(a, a))


# --------------------------------------------------------------------------- metrics
def churn_metrics(y_true: Any, p_churn: Any) -> dict[str, float]:
    """Discrimination, calibration and targeting metrics of churn probabilities.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        1 when the customer churned, else 0.
    p_churn : array-like, shape (n,)
        Predicted churn probability in [0, 1].

    Returns
    -------
    dict
        ``roc_auc``, ``pr_auc`` (average precision), ``brier``, ``log_loss``,
        ``top_decile_lift`` (churn rate in the 10% highest-risk / base rate),
        ``top_decile_capture`` (share of all churners found in that 10%),
        ``expected_calibration_error`` (10 equal-width bins), ``base_rate``.
        Ranking metrics are NaN when ``y_true`` has a single class.
    """
    y, p = _binary_outcomes(y_true, p_churn)
    both_classes = 0 < y.sum() < len(y)
    top = _descending_order(p)[: _top_count(len(y))]
    base_rate = float(y.mean())
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both_classes else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both_classes else float("nan"),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "top_decile_lift": _safe_ratio(y[top].mean(), base_rate),
        "top_decile_capture": _safe_ratio(y[top].sum(), y.sum()),
        "expected_calibration_error": expected_calibration_error(y, p),
        "base_rate": base_rate,
    }


def clv_metrics(actual: Any, predicted: Any) -> dict[str, float]:
    """Ranking, error and aggregate metrics of predicted customer value.

    Parameters
    ----------
    actual : array-like, shape (n,)
        Observed net spend over the horizon, currency units (may be negative).
    predicted : array-like, shape (n,)
        Predicted spend over the same horizon, currency units.

    Returns
    -------
    dict
        ``normalized_gini``, ``spearman``, ``mae``, ``rmse`` (currency units),
        ``total_predicted``, ``total_actual``, ``total_ratio``
        (total predicted / total actual), ``top_decile_capture`` (share of actual
        spend from the 10% customers with the highest prediction).
    """
    a = _as_float_array(actual, "actual")
    p = _as_float_array(predicted, "predicted")
    _check_same_length(a, p, "actual and predicted")
    top = _descending_order(p)[: _top_count(len(a))]
    constant = np.ptp(a) == 0 or np.ptp(p) == 0
    spearman = float("nan") if constant else float(stats.spearmanr(a, p).statistic)
    return {
        "normalized_gini": normalized_gini(a, p),
        "spearman": spearman,
        "mae": float(skm.mean_absolute_error(a, p)),
        "rmse": float(np.sqrt(skm.mean_squared_error(a, p))),
        "total_predicted": float(p.sum()),
        "total_actual": float(a.sum()),
        "total_ratio": _safe_ratio(p.sum(), a.sum()),
        "top_decile_capture": _safe_ratio(a[top].sum(), a.sum()),
    }


# --------------------------------------------------------------------------- figures
Curves = Mapping[str, tuple[Any, Any]]


def _new_axes(title: str, xlabel: str, ylabel: str, figsize=(6.0, 5.0)) -> tuple[Figure, Any]:
    # Figure() rather than plt.figure(): no global pyplot state, nothing to close.
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def plot_roc(curves: Curves) -> Figure:
    """ROC curves, one per model.

    Parameters
    ----------
    curves : mapping of name -> (y_true, p_churn)
        Arrays of shape (n,) per model; models may be scored on different rows.
    """
    fig, ax = _new_axes("Churn ROC curve", "False positive rate (%)", "True positive rate (%)")
    for name, (y_true, p_churn) in curves.items():
        y, p = _binary_outcomes(y_true, p_churn)
        fpr, tpr, _ = skm.roc_curve(y, p)
        auc = skm.auc(fpr, tpr)
        ax.plot(100 * fpr, 100 * tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 100], [0, 100], linestyle="--", color="grey", label="random")
    ax.legend(loc="lower right")
    return fig


def plot_calibration(curves: Curves, n_bins: int = N_CALIBRATION_BINS) -> Figure:
    """Reliability diagram: observed churn rate against mean predicted probability.

    Parameters
    ----------
    curves : mapping of name -> (y_true, p_churn)
        Arrays of shape (n,) per model.
    n_bins : int
        Number of quantile bins of predicted probability.
    """
    fig, ax = _new_axes(
        "Churn calibration", "Mean predicted churn probability (%)", "Observed churn rate (%)"
    )
    for name, (y_true, p_churn) in curves.items():
        y, p = _binary_outcomes(y_true, p_churn)
        observed, predicted = _calibration_points(y, p, n_bins)
        ax.plot(100 * predicted, 100 * observed, marker="o", label=name)
    ax.plot([0, 100], [0, 100], linestyle="--", color="grey", label="perfectly calibrated")
    ax.legend(loc="upper left")
    return fig


def _calibration_points(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    # Quantile bins keep every point backed by a similar number of customers.
    bins = pd.qcut(pd.Series(p).rank(method="first"), q=min(n_bins, len(p)), labels=False)
    grouped = pd.DataFrame({"y": y, "p": p, "bin": bins}).groupby("bin")
    return grouped["y"].mean().to_numpy(), grouped["p"].mean().to_numpy()


def _gain_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of customers targeted (x) vs share of churners caught (y), both in [0, 1]."""
    ordered = y[_descending_order(p)]
    targeted = np.arange(0, len(y) + 1) / len(y)
    caught = np.concatenate([[0.0], np.cumsum(ordered)]) / max(ordered.sum(), 1)
    return targeted, caught


def plot_cumulative_gain(curves: Curves) -> Figure:
    """Cumulative gain (left) and lift (right) of targeting the highest-risk customers.

    Parameters
    ----------
    curves : mapping of name -> (y_true, p_churn)
        Arrays of shape (n,) per model.
    """
    fig = Figure(figsize=(11.0, 5.0), layout="constrained")
    gain_ax, lift_ax = fig.subplots(1, 2)
    fig.suptitle("Churn cumulative gain and lift")
    gain_ax.set_title("Cumulative gain")
    gain_ax.set_xlabel("Customers targeted, highest risk first (%)")
    gain_ax.set_ylabel("Churners captured (%)")
    lift_ax.set_title("Lift")
    lift_ax.set_xlabel("Customers targeted, highest risk first (%)")
    lift_ax.set_ylabel("Lift over random targeting (x)")
    for name, (y_true, p_churn) in curves.items():
        y, p = _binary_outcomes(y_true, p_churn)
        targeted, caught = _gain_curve(y, p)
        gain_ax.plot(100 * targeted, 100 * caught, label=name)
        lift_ax.plot(100 * targeted[1:], caught[1:] / targeted[1:], label=name)
    gain_ax.plot([0, 100], [0, 100], linestyle="--", color="grey", label="random")
    lift_ax.axhline(1.0, linestyle="--", color="grey", label="random")
    gain_ax.legend(loc="lower right")
    lift_ax.legend(loc="upper right")
    for ax in (gain_ax, lift_ax):
        ax.grid(alpha=0.3)
    return fig


def plot_clv_deciles(actual: Any, predicted_by_model: Mapping[str, Any]) -> Figure:
    """Mean predicted and mean actual spend per decile of each model's prediction.

    Parameters
    ----------
    actual : array-like, shape (n,)
        Observed spend over the horizon, currency units.
    predicted_by_model : mapping of name -> array-like, shape (n,)
        Predicted spend per model for the same customers, currency units.
    """
    a = _as_float_array(actual, "actual")
    fig, ax = _new_axes(
        "CLV by predicted decile",
        "Decile of predicted CLV (1 = lowest)",
        "Mean spend per customer (currency units)",
    )
    for name, predicted in predicted_by_model.items():
        p = _as_float_array(predicted, f"predicted[{name!r}]")
        _check_same_length(a, p, f"actual and predicted[{name!r}]")
        means = _decile_means(a, p)
        line = ax.plot(
            means.index, means["predicted"], marker="o", linestyle="--", label=f"{name}: predicted"
        )[0]
        ax.plot(
            means.index,
            means["actual"],
            marker="s",
            color=line.get_color(),
            label=f"{name}: actual",
        )
    ax.legend(loc="upper left")
    return fig


def _decile_means(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    # Ranking first makes qcut robust to the many tied zero predictions of CLV models.
    n_bins = min(10, len(predicted))
    deciles = pd.qcut(pd.Series(predicted).rank(method="first"), q=n_bins, labels=False) + 1
    frame = pd.DataFrame({"actual": actual, "predicted": predicted, "decile": deciles})
    return frame.groupby("decile")[["actual", "predicted"]].mean()


def plot_feature_importance(importances: pd.Series, top_n: int = 20) -> Figure:
    """Horizontal bar chart of the ``top_n`` largest feature importances.

    Parameters
    ----------
    importances : Series, shape (n_features,)
        Importance per feature name (e.g. LightGBM total gain).
    top_n : int
        Number of features to show.
    """
    if importances.empty:
        raise ValueError("importances is empty: nothing to plot")
    top = importances.astype(float).sort_values(ascending=False).head(top_n)[::-1]
    fig, ax = _new_axes(
        f"Top {len(top)} feature importances",
        "Importance (model units, e.g. total gain)",
        "Feature",
        figsize=(7.0, max(3.0, 0.3 * len(top) + 1.0)),
    )
    ax.barh(top.index.astype(str), top.to_numpy())
    return fig


# --------------------------------------------------------------------------- scores
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


def evaluate_scores(scores: pd.DataFrame, transactions: pd.DataFrame | str) -> dict[str, Any]:
    """Compare a scores frame with what actually happened after its ``as_of``.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, k)
        The scores frame of ARCHITECTURE.md (written by ``fidelite score``):
        needs ``customer_id``, ``as_of``, ``horizon_days``, ``churn_probability``
        and ``predicted_clv``; rows whose ``status`` is not "ok" are skipped.
    transactions : DataFrame or path
        Transactions covering at least the ``horizon_days`` days after ``as_of``.

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
    day, _ = as_of_bounds(_single_value(frame, "as_of"))
    horizon = int(_single_value(frame, "horizon_days"))
    tx = load_transactions(transactions)
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


def score_figures(result: Mapping[str, Any]) -> dict[str, Figure]:
    """Figures for an :func:`evaluate_scores` result, keyed by file stem.

    The BG/NBD baseline (``1 - p_alive``) is drawn next to the churn model when the
    scores carry ``p_alive``, so both rankings share one chart.
    """
    joined: pd.DataFrame = result["joined"]
    curves: dict[str, tuple[Any, Any]] = {"model": (joined["churned"], joined["churn_probability"])}
    if "p_alive" in joined.columns and joined["p_alive"].notna().all():
        curves["BG/NBD (1 - p_alive)"] = (joined["churned"], 1.0 - joined["p_alive"])
    return {
        "roc": plot_roc(curves),
        "calibration": plot_calibration(curves),
        "cumulative_gain": plot_cumulative_gain(curves),
        "clv_deciles": plot_clv_deciles(joined["future_spend"], {"model": joined["predicted_clv"]}),
    }
