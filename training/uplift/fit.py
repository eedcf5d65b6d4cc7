"""``fit_uplift``: learn from past campaigns which customers an offer changes.

1. Campaigns that can teach uplift at the as-of day are kept (both groups, complete
   response window; :func:`~fidelite.training.uplift.responses.split_campaigns` logs
   the others).
2. Each row gets the customer's features the day before the send and the churn/CLV
   scores at that day (:func:`~fidelite.training.uplift.dataset.build_uplift_rows`).
3. Held-out rows, rolling origin: every campaign with at least
   ``min_training_campaigns`` campaigns before it is scored by learners fitted on the
   campaigns sent before it (what the model would have known then); with a single
   campaign, a random 30% of its customers.
4. On the held-out rows the learners, the value-at-risk ranking and the churn ranking
   are measured at each budget share by incremental purchases valued at a common
   customer value (:mod:`~fidelite.training.uplift.valuation`: low variance, paired
   bootstrap intervals), beside the raw measured spend and the Qini.
5. The ensemble averages the members whose mean ranked the held-out campaigns best
   (mean Qini per campaign; :mod:`~fidelite.training.uplift.members`), so a member that
   drags this world's ranking down is left out.
6. The learner standing for the ``uplift`` policy is the ensemble, unless
   one captures significantly more held-out value at the reference budget (paired
   bootstrap); the policy per budget share is value at risk unless another policy
   captured clearly more held-out value (paired bootstrap interval of the gain above
   zero; :class:`~fidelite.training.uplift.policy.PolicyTable`). The learner and the
   response-value model are refitted on all rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.errors import InsufficientHistoryError
from fidelite.training.uplift.candidates import (
    HeldoutScores,
    candidate_scores,
    make_learner,
    response_model,
    uplift_encoder,
    uplift_frame,
    uplift_matrix,
)
from fidelite.training.uplift.config import UpliftConfig
from fidelite.training.uplift.dataset import FeatureSource, Scorer, UpliftRows, build_uplift_rows
from fidelite.training.uplift.evaluation import average_treatment_effect
from fidelite.training.uplift.learners import ENSEMBLE_MEMBERS
from fidelite.training.uplift.members import MemberChoice, choose_members
from fidelite.training.uplift.model import UpliftModel
from fidelite.training.uplift.policy import PolicyTable
from fidelite.training.uplift.responses import split_campaigns
from fidelite.training.uplift.valuation import compare_rankings, value_basis

__all__ = ["UpliftConfig", "UpliftFit", "fit_uplift", "make_learner"]

logger = logging.getLogger(__name__)


@dataclass
class UpliftFit:
    """What :func:`fit_uplift` produced.

    Attributes
    ----------
    model : UpliftModel
        Refitted on all learnable rows.
    metrics : dict of str to float
        ``uplift_*`` metrics on the held-out rows (Qini per candidate, incremental
        value per candidate and share with intervals, ATE with intervals, row counts).
    heldout : DataFrame
        Held-out rows with outcomes, ``customer_value`` and every candidate's score
        (``score_<candidate>``, for curves/plots).
    skipped : dict of str to str
        Campaigns not used to learn uplift, with the reason.
    gate_reason : str or None
        The promotion gate's uplift check against the champion, when it ran
        (:func:`fidelite.training.uplift.gate.uplift_gate`; logged as a run tag).
    """

    model: UpliftModel
    metrics: dict[str, float]
    heldout: pd.DataFrame
    skipped: dict[str, str]
    gate_reason: str | None = None


def _folds(
    rows: UpliftRows, config: UpliftConfig
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """(training mask, held-out mask) pairs over the rows, and what is held out.

    With several campaigns, every campaign with at least ``min_training_campaigns``
    campaigns before it (at most the latest ``heldout_campaigns``) is held out in turn
    and scored by learners fitted on the campaigns sent before it; one campaign's
    outcomes are too noisy to choose a policy on. With one campaign, a random share of
    its customers is held out.
    """
    campaigns = rows.rows.groupby("campaign_id")["send_day"].min().sort_values()
    if len(campaigns) >= 2:
        held = list(campaigns.index[min(config.min_training_campaigns, len(campaigns) - 1) :])
        if config.heldout_campaigns is not None:
            held = held[-config.heldout_campaigns :]
        folds = []
        for campaign in held:
            mask = (rows.rows["campaign_id"] == campaign).to_numpy()
            before = (rows.rows["send_day"] < campaigns[campaign]).to_numpy()
            folds.append((before, mask))
        n_rows = sum(int(mask.sum()) for _, mask in folds)
        return folds, (
            f"{len(held)} held-out campaign{'s' * (len(held) > 1)} ({', '.join(held)}), "
            f"{n_rows:,} rows, each ranked by learners fitted on the campaigns before it"
        )
    customers = rows.rows["customer_id"].unique()
    rng = np.random.default_rng(config.random_state)
    size = max(1, int(len(customers) * config.heldout_share))
    mask = rows.rows["customer_id"].isin(set(rng.choice(customers, size=size, replace=False)))
    mask = mask.to_numpy()
    return [(~mask, mask)], (
        f"{config.heldout_share:.0%} of the customers of the only campaign "
        f"{campaigns.index[0]}, {int(mask.sum()):,} rows"
    )


def fit_uplift(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    build: FeatureSource,
    score: Scorer,
    config: UpliftConfig | None = None,
) -> UpliftFit:
    """Fit, compare and refit the uplift models (steps in the module docstring).

    Parameters
    ----------
    campaigns : DataFrame
        Normalised campaigns table (any rows; unusable campaigns are skipped, logged).
    transactions : DataFrame
        Normalised transactions up to ``as_of``.
    as_of : Timestamp
        Training day D: only sends whose response window ends by D are used.
    build : callable
        ``build(day)``: point-in-time features at ``day``.
    score : callable
        ``score(features, day)``: churn/CLV scores frame of those feature rows.
    config : UpliftConfig, optional

    Raises
    ------
    InsufficientHistoryError
        When no campaign has both groups and a complete response window by ``as_of``.
    """
    config = config or UpliftConfig()
    split = split_campaigns(campaigns, as_of=as_of, window_days=config.window_days)
    if split.learnable.empty:
        raise InsufficientHistoryError(
            "campaigns: no campaign can teach uplift at as-of "
            f"{as_of.date()} (each needs treatment and control rows and a response window "
            f"of {config.window_days} days over by then): "
            + "; ".join(f"{k}: {v}" for k, v in split.skipped.items())
        )
    rows = build_uplift_rows(
        split.learnable,
        transactions,
        build=build,
        score=score,
        window_days=config.window_days,
        until=as_of + pd.Timedelta(days=1),
    )
    basis = value_basis(rows.features)
    folds, held_text = _folds(rows, config)
    parts: list[tuple[UpliftRows, HeldoutScores]] = []
    for train_mask, held_mask in folds:
        train, held = rows.subset(train_mask), rows.subset(held_mask)
        parts.append((held, candidate_scores(train, held, config, basis)))
    heldout = UpliftRows(
        pd.concat([held.features for held, _ in parts], ignore_index=True),
        pd.concat([held.rows for held, _ in parts], ignore_index=True),
    )
    names = parts[0][1].scores
    scores = {name: np.concatenate([found.scores[name] for _, found in parts]) for name in names}
    value = np.concatenate([found.value for _, found in parts])
    members = _members(heldout, parts, scores, value, config)
    policy, metrics = _policy(heldout, scores, value, basis, held_text, config)
    metrics.update(_summary_metrics(heldout, rows, folds, policy))
    if members is not None:
        metrics.update(members.metrics)
        logger.info("uplift: %s", members.reason)
    chosen = None if members is None else members.members
    model = _final_model(rows, policy, basis, config, as_of, chosen)
    table = heldout.rows.assign(
        customer_value=value, **{f"score_{k}": v for k, v in scores.items()}
    )
    return UpliftFit(model=model, metrics=metrics, heldout=table, skipped=split.skipped)


def _members(
    heldout: UpliftRows,
    parts: list[tuple[UpliftRows, HeldoutScores]],
    scores: dict[str, np.ndarray],
    value: np.ndarray,
    config: UpliftConfig,
) -> MemberChoice | None:
    """The ensemble's members (:mod:`~fidelite.training.uplift.members`, or
    ``config.ensemble_members``); the ensemble's held-out score becomes that of their
    mean. None without an ensemble of all three members among the candidates."""
    if "ensemble" not in scores or not all(m in parts[0][1].effects for m in ENSEMBLE_MEMBERS):
        return None
    effects = {
        m: np.concatenate([found.effects[m] for _, found in parts]) for m in ENSEMBLE_MEMBERS
    }
    choice = choose_members(effects, heldout.rows)
    if config.ensemble_members is not None:  # fixed by the caller; the evidence is kept
        fixed = tuple(m for m in ENSEMBLE_MEMBERS if m in config.ensemble_members)
        choice = MemberChoice(fixed, choice.qini)
    effect = np.mean([effects[m] for m in choice.members], axis=0)
    scores["ensemble"] = effect * value - heldout.rows["offer_cost"].to_numpy(dtype=float)
    return choice


def _policy(
    heldout: UpliftRows,
    scores: dict[str, np.ndarray],
    value: np.ndarray,
    basis: str,
    held_text: str,
    config: UpliftConfig,
) -> tuple[PolicyTable, dict[str, float]]:
    """Measure every candidate, pick the learner, then the policy per budget share."""
    churn = heldout.features.get("score_churn_probability")
    comparison = compare_rankings(
        scores,
        heldout.rows,
        value=value,
        churn=None if churn is None else churn.to_numpy(dtype=float),
        shares=tuple(sorted({*config.budget_shares, config.reference_share})),
        n_boot=config.n_boot,
        seed=config.random_state,
    )
    chosen = _best_learner(comparison.replicates, config)
    policy = PolicyTable.from_comparison(
        comparison,
        learner=chosen,
        heldout=held_text,
        value_basis=basis,
        confidence=config.policy_confidence,
    )
    return policy, comparison.metrics


def _final_model(
    rows: UpliftRows,
    policy: PolicyTable,
    basis: str,
    config: UpliftConfig,
    as_of: pd.Timestamp,
    members: tuple[str, ...] | None,
) -> UpliftModel:
    """The chosen learner (an ensemble: of ``members``) and the response-value model
    refitted on every learnable row."""
    encoder = uplift_encoder(rows).fit(uplift_frame(rows))
    learner = make_learner(policy.learner, encoder, config, members).fit(
        uplift_matrix(encoder, rows),
        rows.rows["treated"].to_numpy(),
        rows.rows["purchased"].to_numpy(dtype=float),
        rows.rows["propensity"].to_numpy(),
    )
    return UpliftModel(
        encoder=encoder,
        learner=learner,
        response_model=response_model(encoder, rows, config),
        channels=tuple(sorted(set(rows.rows.loc[rows.rows["treated"], "channel"].dropna()))),
        window_days=config.window_days,
        policy=policy,
        trained_until=as_of,
        value_basis=basis,
    )


def _best_learner(replicates: dict[str, dict[float, np.ndarray]], config: UpliftConfig) -> str:
    """The ensemble, unless one learner captures significantly more held-out value.

    On noisy campaign outcomes the learner with the best point estimate on held-out
    campaigns is often not the best on the next: a single learner replaces the
    (steadier) ensemble only when the 95% interval of its paired bootstrap gain over
    the ensemble, at the reference budget share, lies above zero. Without the ensemble
    among the candidates, the best point estimate wins.
    """
    share = config.reference_share
    learners = [name for name in config.learners if name in replicates]
    best = max(learners, key=lambda name: np.nan_to_num(replicates[name][share][0], nan=-np.inf))
    if "ensemble" not in learners or best == "ensemble":
        return best
    gain = replicates[best][share][1:] - replicates["ensemble"][share][1:]
    return best if np.nanpercentile(gain, 2.5) > 0 else "ensemble"


def _summary_metrics(
    heldout: UpliftRows, rows: UpliftRows, folds: list, policy: PolicyTable
) -> dict[str, float]:
    treated = heldout.rows["treated"].to_numpy()
    metrics = {
        **average_treatment_effect(treated, heldout.rows["purchased"].to_numpy(float)).as_dict(
            "uplift_ate_purchase"
        ),
        **average_treatment_effect(treated, heldout.rows["net_spend"].to_numpy(float)).as_dict(
            "uplift_ate_spend"
        ),
        "uplift_n_rows": float(len(rows)),
        "uplift_n_heldout_rows": float(len(heldout)),
        "uplift_n_heldout_campaigns": float(heldout.rows["campaign_id"].nunique()),
        "uplift_n_folds": float(len(folds)),
        "uplift_n_campaigns": float(rows.rows["campaign_id"].nunique()),
    }
    for share, winner in policy.winners.items():
        metrics[f"uplift_policy_at_{round(share * 100)}_is_uplift"] = float(winner == "uplift")
    return metrics
