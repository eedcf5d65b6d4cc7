"""Figures for churn and CLV evaluations: the only module of training that uses matplotlib.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``): no pyplot
state, no backend selection, nothing to close; ``Figure.savefig`` and
``mlflow.log_figure`` render them. Nothing on the serving path imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm

from fidelite.training.metrics import (
    N_CALIBRATION_BINS,
    as_float_array,
    binary_outcomes,
    check_same_length,
    descending_order,
)

__all__ = [
    "plot_calibration",
    "plot_clv_deciles",
    "plot_cumulative_gain",
    "plot_feature_importance",
    "plot_roc",
    "score_figures",
    "validation_figures",
]

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
        y, p = binary_outcomes(y_true, p_churn)
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
        y, p = binary_outcomes(y_true, p_churn)
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
    ordered = y[descending_order(p)]
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
        y, p = binary_outcomes(y_true, p_churn)
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
    a = as_float_array(actual, "actual")
    fig, ax = _new_axes(
        "CLV by predicted decile",
        "Decile of predicted CLV (1 = lowest)",
        "Mean spend per customer (currency units)",
    )
    for name, predicted in predicted_by_model.items():
        p = as_float_array(predicted, f"predicted[{name!r}]")
        check_same_length(a, p, f"actual and predicted[{name!r}]")
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


def validation_figures(
    churned: np.ndarray,
    spend: np.ndarray,
    churn_by_model: Mapping[str, np.ndarray],
    clv_by_model: Mapping[str, np.ndarray],
    importance: pd.Series | None = None,
) -> dict[str, Figure]:
    """The training run's figures on the held-out window, keyed by artifact path.

    Parameters
    ----------
    churned, spend : ndarray, shape (n,)
        Held-out outcomes: 0/1 churn and net spend (currency units).
    churn_by_model, clv_by_model : mapping of name -> ndarray, shape (n,)
        Churn probabilities and predicted spend per model (e.g. LightGBM and BG/NBD).
    importance : Series, optional
        Feature importance of the churn model.
    """
    curves = {name: (churned, p) for name, p in churn_by_model.items()}
    figures = {
        "figures/roc.png": plot_roc(curves),
        "figures/calibration.png": plot_calibration(curves),
        "figures/cumulative_gain.png": plot_cumulative_gain(curves),
        "figures/clv_deciles.png": plot_clv_deciles(spend, clv_by_model),
    }
    if importance is not None:
        figures["figures/feature_importance.png"] = plot_feature_importance(importance)
    return figures
