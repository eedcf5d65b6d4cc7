"""Metric values on tiny arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.training.metrics import churn_metrics, clv_metrics, normalized_gini

# 20 customers, 4 churners; the model ranks churners first.
Y_20 = np.array([1, 1, 1, 1] + [0] * 16)
P_PERFECT = np.linspace(0.95, 0.05, 20)


def test_perfect_churn_ranking() -> None:
    result = churn_metrics(Y_20, P_PERFECT)
    assert result["roc_auc"] == 1.0
    assert result["pr_auc"] == pytest.approx(1.0)
    assert result["base_rate"] == pytest.approx(0.2)
    # top 10% = 2 customers, both churners: 2 of 4 churners, rate 1.0 vs base 0.2
    assert result["top_decile_capture"] == pytest.approx(0.5)
    assert result["top_decile_lift"] == pytest.approx(5.0)


def test_reversed_churn_ranking_and_probability_scores() -> None:
    result = churn_metrics(Y_20, P_PERFECT[::-1])
    assert result["roc_auc"] == 0.0
    assert result["top_decile_capture"] == 0.0 and result["top_decile_lift"] == 0.0
    y, p = np.array([1, 0]), np.array([0.8, 0.4])
    small = churn_metrics(y, p)
    assert small["brier"] == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert small["log_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_expected_calibration_error_known_value() -> None:
    # bin [0.2, 0.3): p=0.25 twice, observed rate 0.5 -> |0.5-0.25| = 0.25, weight 2/4
    # bin [0.9, 1.0]: p=1.0 twice, observed rate 1 -> 0, weight 2/4
    result = churn_metrics([0, 1, 1, 1], [0.25, 0.25, 1.0, 1.0])
    assert result["expected_calibration_error"] == pytest.approx(0.125)


def test_single_class_gives_nan_ranking_metrics() -> None:
    result = churn_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(result["roc_auc"]) and np.isnan(result["top_decile_lift"])
    assert result["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)


def test_churn_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="p_churn must lie in"):
        churn_metrics([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match="y_true must be 0/1"):
        churn_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="different lengths"):
        churn_metrics([0, 1, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match="missing or infinite"):
        churn_metrics([0, 1], [np.nan, 0.5])


def test_gini_perfect_reversed_and_clv_arithmetic() -> None:
    actual = np.arange(1.0, 21.0)  # 1..20, total 210
    assert normalized_gini(actual, actual * 3) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) == pytest.approx(-1.0)
    result = clv_metrics(actual, actual + 1.0)
    assert result["normalized_gini"] == pytest.approx(1.0)
    assert result["spearman"] == pytest.approx(1.0)
    assert result["mae"] == pytest.approx(1.0) and result["rmse"] == pytest.approx(1.0)
    assert result["total_actual"] == 210.0 and result["total_predicted"] == 230.0
    assert result["total_ratio"] == pytest.approx(230 / 210)
    # top 10% by prediction = the customers who spent 20 and 19
    assert result["top_decile_capture"] == pytest.approx(39 / 210)
    reversed_result = clv_metrics(actual, -actual)
    assert reversed_result["spearman"] == pytest.approx(-1.0)
    assert reversed_result["top_decile_capture"] == pytest.approx(3 / 210)


def test_gini_of_zero_spend_is_nan() -> None:
    assert np.isnan(normalized_gini([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]))
