"""Figures, and scores evaluated against the outcomes that followed them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fidelite.errors import DataContractError
from fidelite.features.data import load_transactions
from fidelite.training.evaluation import evaluate_scores
from fidelite.training.plots import (
    plot_calibration,
    plot_clv_deciles,
    plot_cumulative_gain,
    plot_feature_importance,
    plot_roc,
    score_figures,
)


def _lines(fig: Figure) -> int:
    return sum(len(ax.lines) for ax in fig.axes)


def test_figures_render() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(int)
    curves = {"lightgbm": (y, p), "bgnbd": (y, rng.uniform(size=200))}
    for fig in (plot_roc(curves), plot_calibration(curves), plot_cumulative_gain(curves)):
        assert isinstance(fig, Figure)
        assert _lines(fig) >= 3  # two models plus the reference line
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
        fig.canvas.draw()
    spend = rng.gamma(2.0, 50.0, size=200)
    clv = plot_clv_deciles(spend, {"lightgbm": spend * 1.1, "bgnbd": rng.permutation(spend)})
    assert _lines(clv) == 4 and len(clv.axes[0].lines[0].get_xdata()) == 10
    importance = plot_feature_importance(
        pd.Series(rng.uniform(size=30), index=[f"f{i}" for i in range(30)]), top_n=5
    )
    assert len(importance.axes[0].patches) == 5
    assert importance.axes[0].get_title() == "Top 5 feature importances"


AS_OF = pd.Timestamp("2024-03-10")


def _scores_and_transactions() -> tuple[pd.DataFrame, pd.DataFrame]:
    history = [(c, "2024-02-01", 10.0) for c in ("a", "b", "c", "d")]
    window = [
        ("a", "2024-03-15", 50.0),  # stays, spends most
        ("b", "2024-04-09", 20.0),  # stays, on the last label day
        ("c", "2024-03-20", -5.0),  # a refund of an older order: churned, no spend
        ("d", "2024-04-10", 99.0),  # after the window: churned
    ]
    rows = history + window
    transactions = load_transactions(
        pd.DataFrame(
            {
                "customer_id": [c for c, _, _ in rows],
                "order_id": [f"o{i}" for i in range(len(rows))],
                "timestamp": pd.to_datetime([t for _, t, _ in rows], format="ISO8601"),
                "amount": [a for _, _, a in rows],
            }
        )
    )
    scores = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "as_of": [AS_OF.date()] * 6,
            "horizon_days": [30] * 6,
            "status": ["ok"] * 5 + ["insufficient_history"],
            "churn_probability": [0.1, 0.2, 0.7, 0.8, 0.9, np.nan],
            "p_alive": [0.9, 0.8, 0.3, 0.4, 0.2, np.nan],
            "predicted_clv": [40.0, 25.0, 5.0, 1.0, 0.0, np.nan],
        }
    )
    return scores, transactions


def test_evaluate_scores_end_to_end() -> None:
    scores, transactions = _scores_and_transactions()
    result = evaluate_scores(scores, transactions)
    assert result["as_of"] == "2024-03-10" and result["horizon_days"] == 30
    assert result["n_scored"] == 6 and result["n_evaluated"] == 5
    assert result["n_skipped_status"] == 1
    assert result["n_without_transactions"] == 1  # "e" never transacted
    joined = result["joined"]
    assert joined["churned"].to_dict() == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 1}
    assert joined.loc["c", "future_spend"] == 0.0  # refunds of earlier orders are not labels
    assert result["churn"]["roc_auc"] == 1.0
    assert result["churn"]["base_rate"] == pytest.approx(0.6)
    assert result["clv"]["total_actual"] == pytest.approx(70.0)
    assert result["clv"]["total_predicted"] == pytest.approx(71.0)
    figures = score_figures(result)
    assert set(figures) == {"roc", "calibration", "cumulative_gain", "clv_deciles"}
    assert _lines(figures["roc"]) == 3  # model, BG/NBD baseline, random


def test_evaluate_scores_needs_the_whole_horizon() -> None:
    scores, transactions = _scores_and_transactions()
    truncated = transactions[transactions["timestamp"] < "2024-04-01"]
    with pytest.raises(DataContractError, match="2024-03-21 to 2024-04-09"):
        evaluate_scores(scores, truncated)


def test_evaluate_scores_names_missing_columns_and_mixed_as_of() -> None:
    scores, transactions = _scores_and_transactions()
    with pytest.raises(DataContractError, match="predicted_clv"):
        evaluate_scores(scores.drop(columns="predicted_clv"), transactions)
    with pytest.raises(DataContractError, match="outside"):
        evaluate_scores(scores.assign(churn_probability=1.5), transactions)
    mixed = scores.assign(as_of=[AS_OF.date()] * 5 + [pd.Timestamp("2024-02-01").date()])
    with pytest.raises(DataContractError, match="'as_of' must hold exactly one value"):
        evaluate_scores(mixed, transactions)
