"""Logging an uplift fit into the active MLflow run: metrics, evidence, curves."""

from __future__ import annotations

import json
import math

import mlflow

from fidelite.training.uplift.fit import UpliftFit

__all__ = ["log_uplift"]


def log_uplift(fit: UpliftFit) -> None:
    """Log ``fit`` into the active run.

    Metrics: every finite ``uplift_*`` metric (Qini per candidate, incremental net value
    per candidate and budget share with 95% intervals, ATE on purchase and spend with
    intervals, row counts). Params: the chosen learner and the window. Artifacts:
    ``uplift/evidence.csv`` (held-out comparison), ``uplift/policy.json`` (winner per
    budget share, skipped campaigns and why), ``uplift/curves_purchase.png`` and
    ``uplift/curves_spend.png`` (Qini and uplift curves).
    """
    from fidelite.training.uplift.plots import plot_curves

    model = fit.model
    metrics = {
        k: float(v) for k, v in fit.metrics.items() if isinstance(v, float) and math.isfinite(v)
    }
    mlflow.log_metrics(metrics)
    mlflow.log_params(
        {
            "uplift_learner": model.learner_name,
            "uplift_window_days": model.window_days,
            "uplift_channels": ",".join(model.channels),
            "uplift_value_basis": getattr(model, "value_basis", "response_spend"),
        }
    )
    if fit.gate_reason is not None:
        mlflow.set_tag("uplift_gate_reason", fit.gate_reason[:4000])
    mlflow.log_text(model.policy.evidence.to_csv(index=False), "uplift/evidence.csv")
    policy = {
        "winner_by_budget_share": {str(k): v for k, v in model.policy.winners.items()},
        "learner": model.policy.learner,
        "value_basis": getattr(model, "value_basis", "response_spend"),
        "reason_at_20pct": model.policy.choose(0.2).reason,
        "heldout": model.policy.heldout,
        "skipped_campaigns": fit.skipped,
    }
    mlflow.log_text(json.dumps(policy, indent=2), "uplift/policy.json")
    candidates = [c.removeprefix("score_") for c in fit.heldout if c.startswith("score_")]
    for outcome, name in (("purchased", "purchase"), ("net_spend", "spend")):
        figure = plot_curves(fit.heldout, candidates, outcome=outcome)
        mlflow.log_figure(figure, f"uplift/curves_{name}.png")
