"""The champion, compared with a new model on a window neither has trained on.

The challenger's held-out window ``(c, c + H]`` is after its training data. It is after
the champion's data too when the champion's as-of day ``D0 <= c``: the champion is then
re-scored on the held-out rows. When the champion held out that very window (a retrain
at the same as-of and horizon), neither model trained on it and their held-out metrics,
computed the same way, are compared as logged. Otherwise the champion has seen the
outcomes of that window and no fair comparison exists: the gate will require ``--force``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from fidelite.training.fitting import validation_metrics
from fidelite.training.registry import CHAMPION, GATE_METRICS, alias_version, load_model
from fidelite.training.tracking import mlflow_client

__all__ = ["ChampionComparison", "champion_comparison"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionComparison:
    """What the run logs for the gate.

    Attributes
    ----------
    metrics : dict
        ``champion_version`` and ``champion_<gate metric>`` (empty without a champion).
    fair : bool
        Whether the comparison is on a window after both models' data.
    basis : str
        How the champion's numbers were obtained (or why there are none).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    fair: bool = False
    basis: str = "no champion"


def champion_comparison(
    model_name: str,
    tracking_uri: str,
    *,
    holdout_cutoff: pd.Timestamp,
    horizon_days: int,
    held_out: pd.DataFrame,
    held_out_metrics: dict[str, float],
) -> ChampionComparison:
    """Compare the current champion with a challenger on the challenger's held-out window.

    Parameters
    ----------
    holdout_cutoff : Timestamp
        The challenger's held-out cutoff ``c``.
    held_out : DataFrame
        The held-out purchasers' features (indexed by customer_id) with their outcomes
        (``churned``, ``future_spend``) for re-scoring the champion.
    held_out_metrics : dict
        The challenger's own validation metrics.
    """
    client = mlflow_client(tracking_uri)
    version = alias_version(client, model_name, CHAMPION)
    if version is None:
        return ChampionComparison()
    run = client.get_run(client.get_model_version(model_name, version).run_id)
    params, logged = run.data.params, run.data.metrics
    champion_as_of = pd.Timestamp(params.get("as_of", "2200-01-01"))
    same_window = params.get("holdout_cutoff") == str(holdout_cutoff.date()) and params.get(
        "horizon_days"
    ) == str(horizon_days)
    base = {"champion_version": float(version)}
    if same_window:
        numbers = {f"champion_{m}": logged.get(m, float("nan")) for m in GATE_METRICS}
        basis = f"both held out the window after {holdout_cutoff.date()} (metrics as logged)"
        return ChampionComparison({**base, **numbers}, True, basis)
    if champion_as_of > holdout_cutoff:
        basis = (
            f"no labelled window after both models' data: champion version {version} was "
            f"trained on data up to {champion_as_of.date()}, after the challenger's held-out "
            f"cutoff {holdout_cutoff.date()}"
        )
        return ChampionComparison(base, False, basis)
    try:
        champion = load_model(f"models:/{model_name}/{version}", tracking_uri=tracking_uri)
        features = held_out.drop(columns=["churned", "future_spend"])
        scores = champion.predict(
            None, features, params={"as_of": str(holdout_cutoff.date()), "reasons": False}
        )
    # Unpickling an old champion can fail in many ways (renamed classes, changed
    # attributes); none of them may block training its replacement.
    except Exception as exc:
        logger.warning("could not score champion version %s: %s", version, exc)
        return ChampionComparison(
            base, False, f"champion version {version} could not be scored: {exc}"
        )
    numbers = validation_metrics(
        held_out,
        scores["churn_probability"].to_numpy(),
        scores["predicted_clv"].to_numpy(),
        "champion_",
    )
    basis = (
        f"champion re-scored on the challenger's held-out window after {holdout_cutoff.date()} "
        f"(its data ended {champion_as_of.date()})"
    )
    return ChampionComparison({**base, **numbers}, True, basis)
