"""``fit_uplift``: learn from past campaigns which customers an offer changes.

1. Campaigns that can teach uplift at the as-of day are kept (both groups, complete
   response window; :func:`~fidelite.training.uplift.responses.split_campaigns` logs
   the others).
2. Each row gets the customer's features the day before the send and the churn/CLV
   scores at that day (:func:`~fidelite.training.uplift.dataset.build_uplift_rows`).
3. Held-out rows: each of the latest two campaigns in turn, scored by learners fitted on
   the campaigns sent before it (the next campaign is what the model will face), else
   a random 30% of the customers of the only campaign.
4. Every meta-learner is fitted on the earlier rows; on the held-out rows the learners,
   the value-at-risk ranking and the churn ranking are compared by incremental net
   value captured at each budget share, with bootstrap intervals, and by Qini.
5. The learner standing for the ``uplift`` policy is the ensemble of the three, unless
   one captures significantly more held-out value at the reference budget (paired
   bootstrap); it and the response-value model are refitted on all rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from fidelite.errors import InsufficientHistoryError
from fidelite.training.encoding import FeatureEncoder
from fidelite.training.uplift.dataset import FeatureSource, Scorer, UpliftRows, build_uplift_rows
from fidelite.training.uplift.evaluation import (
    Estimate,
    average_treatment_effect,
    bootstrap_counts,
    qini_coefficient,
    value_replicates,
)
from fidelite.training.uplift.learners import LEARNERS
from fidelite.training.uplift.model import CHANNEL_COLUMN, UpliftModel
from fidelite.training.uplift.policy import PolicyTable
from fidelite.training.uplift.responses import DEFAULT_RESPONSE_DAYS, split_campaigns

__all__ = ["UpliftConfig", "UpliftFit", "fit_uplift", "heldout_scores", "make_learner"]

logger = logging.getLogger(__name__)

#: Rankings compared with the learners, by the ``score_*`` input they sort on.
BASELINE_RANKINGS: dict[str, str] = {
    "value_at_risk": "score_value_at_risk",
    "churn_probability": "score_churn_probability",
}


@dataclass(frozen=True)
class UpliftConfig:
    """Settings of the uplift fit (all logged).

    Parameters
    ----------
    window_days : int
        Response window after a send, in days.
    learners : tuple of str
        Meta-learners compared (keys of ``LEARNERS``).
    budget_shares : tuple of float
        Shares of the held-out rows contacted at which the candidates are compared.
    reference_share : float
        Budget share that picks the learner standing for the ``uplift`` policy.
    n_boot : int
        Bootstrap replicates of the intervals.
    heldout_share : float
        Share of customers held out when only one campaign can teach uplift.
    heldout_campaigns : int
        Latest campaigns held out in turn (each scored by learners fitted on the
        campaigns before it) to compare the candidates on.
    learner_params : dict
        LightGBM settings passed to every learner.
    n_jobs, random_state : int
    """

    window_days: int = DEFAULT_RESPONSE_DAYS
    learners: tuple[str, ...] = tuple(LEARNERS)
    budget_shares: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    reference_share: float = 0.2
    n_boot: int = 200
    heldout_share: float = 0.3
    heldout_campaigns: int = 2
    learner_params: dict = field(default_factory=dict)
    n_jobs: int = 1
    random_state: int = 0


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
        Held-out rows with outcomes and every candidate's score (for curves/plots).
    skipped : dict of str to str
        Campaigns not used to learn uplift, with the reason.
    """

    model: UpliftModel
    metrics: dict[str, float]
    heldout: pd.DataFrame
    skipped: dict[str, str]


def _encoder(rows: UpliftRows) -> FeatureEncoder:
    scores = tuple(c for c in rows.features.columns if c.startswith("score_"))
    return FeatureEncoder(extra_inputs=scores, extra_categorical=(CHANNEL_COLUMN,))


def _matrix(encoder: FeatureEncoder, rows: UpliftRows) -> np.ndarray:
    return encoder.transform_array(rows.features.assign(**{CHANNEL_COLUMN: rows.rows["channel"]}))


def make_learner(name: str, encoder: FeatureEncoder, config: UpliftConfig):
    """An unfitted meta-learner for ``encoder``'s matrix (categorical and channel columns)."""
    names = encoder.feature_names_
    categorical = tuple(names.index(c) for c in encoder.categories_)
    return LEARNERS[name](
        **{
            "categorical": categorical,
            "channel_column": names.index(CHANNEL_COLUMN),
            "n_jobs": config.n_jobs,
            "random_state": config.random_state,
            **config.learner_params,
        }
    )


def _response_model(
    encoder: FeatureEncoder, rows: UpliftRows, config: UpliftConfig
) -> lgb.LGBMRegressor:
    """Net spend given a purchase, on rows that bought (either group, channel hidden)."""
    bought = rows.rows["purchased"].to_numpy()
    X = encoder.transform_array(rows.features.loc[bought].assign(**{CHANNEL_COLUMN: None}))
    names = encoder.feature_names_
    model = lgb.LGBMRegressor(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        n_jobs=config.n_jobs,
        random_state=config.random_state,
        verbose=-1,
    )
    categorical = [names.index(c) for c in encoder.categories_]
    return model.fit(
        X, rows.rows.loc[bought, "net_spend"].to_numpy(), categorical_feature=categorical
    )


def _folds(
    rows: UpliftRows, config: UpliftConfig
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """(training mask, held-out mask) pairs over the rows, and what is held out.

    With several campaigns, each of the latest ``heldout_campaigns`` campaigns is held
    out in turn and scored by learners fitted on the campaigns sent before it (what the
    model would have known then); one campaign's outcomes are too noisy to choose a
    policy on. With one campaign, a random share of its customers is held out.
    """
    campaigns = rows.rows.groupby("campaign_id")["send_day"].min().sort_values()
    if len(campaigns) >= 2:
        held = list(campaigns.index[-min(config.heldout_campaigns, len(campaigns) - 1) :])
        folds = []
        for campaign in held:
            mask = (rows.rows["campaign_id"] == campaign).to_numpy()
            before = (rows.rows["send_day"] < campaigns[campaign]).to_numpy()
            folds.append((before, mask))
        n_rows = sum(int(mask.sum()) for _, mask in folds)
        return folds, f"held-out campaigns {', '.join(held)}, {n_rows:,} rows"
    customers = rows.rows["customer_id"].unique()
    rng = np.random.default_rng(config.random_state)
    size = max(1, int(len(customers) * config.heldout_share))
    mask = rows.rows["customer_id"].isin(set(rng.choice(customers, size=size, replace=False)))
    mask = mask.to_numpy()
    return [(~mask, mask)], (
        f"{config.heldout_share:.0%} of the customers of the only campaign "
        f"{campaigns.index[0]}, {int(mask.sum()):,} rows"
    )


def heldout_scores(
    model_parts: dict[str, object], encoder: FeatureEncoder, rows: UpliftRows
) -> dict[str, np.ndarray]:
    """Expected incremental net value of each learner on ``rows`` at their own channel."""
    X = _matrix(encoder, rows)
    response, learners = model_parts["response"], model_parts["learners"]
    value = np.maximum(
        response.predict(encoder.transform_array(rows.features.assign(**{CHANNEL_COLUMN: None}))),
        0.0,
    )
    cost = rows.rows["offer_cost"].to_numpy(dtype=float)
    return {name: learner.predict(X) * value - cost for name, learner in learners.items()}


def _compare(heldout: UpliftRows, scores: dict[str, np.ndarray], config: UpliftConfig):
    """Evidence table, metrics and, per candidate, the value replicates at the reference share."""
    treated = heldout.rows["treated"].to_numpy()
    spend = heldout.rows["net_spend"].to_numpy(dtype=float)
    bought = heldout.rows["purchased"].to_numpy(dtype=float)
    cost = heldout.rows["offer_cost"].to_numpy(dtype=float)
    counts = bootstrap_counts(treated, config.n_boot, config.random_state)
    shares = tuple(sorted({*config.budget_shares, config.reference_share}))
    records, metrics, replicates = [], {}, {}
    tail = 2.5
    for name, score in scores.items():
        metrics[f"uplift_qini_{name}"] = qini_coefficient(score, treated, bought)
        metrics[f"uplift_qini_spend_{name}"] = qini_coefficient(score, treated, spend)
        values = value_replicates(score, treated, spend, shares, cost=cost, counts=counts)
        replicates[name] = values[config.reference_share]
        for share in config.budget_shares:
            low, high = np.nanpercentile(values[share][1:], [tail, 100 - tail])
            estimate = Estimate(float(values[share][0]), float(low), float(high))
            records.append(
                {
                    "candidate": name,
                    "budget_share": share,
                    "incremental_value": estimate.value,
                    "ci_low": estimate.low,
                    "ci_high": estimate.high,
                    "qini": metrics[f"uplift_qini_{name}"],
                }
            )
            metrics.update(estimate.as_dict(f"uplift_value_at_{round(share * 100)}_{name}"))
    return pd.DataFrame(records), metrics, replicates


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
    folds, held_text = _folds(rows, config)
    parts = []
    for train_mask, held_mask in folds:
        train, held = rows.subset(train_mask), rows.subset(held_mask)
        parts.append((held, _candidate_scores(train, held, config)))
    heldout = UpliftRows(
        pd.concat([held.features for held, _ in parts], ignore_index=True),
        pd.concat([held.rows for held, _ in parts], ignore_index=True),
    )
    scores = {name: np.concatenate([found[name] for _, found in parts]) for name in parts[0][1]}
    evidence, metrics, replicates = _compare(heldout, scores, config)
    chosen = _best_learner(replicates, config)
    evidence["policy"] = evidence["candidate"].map(
        lambda c: "uplift" if c == chosen else (c if c in BASELINE_RANKINGS else "candidate")
    )
    policy = PolicyTable(evidence=evidence, learner=chosen, heldout=held_text)
    metrics.update(_summary_metrics(heldout, train, policy, config))
    model = _final_model(rows, chosen, policy, config, as_of)
    table = heldout.rows.assign(**{f"score_{k}": v for k, v in scores.items()})
    return UpliftFit(model=model, metrics=metrics, heldout=table, skipped=split.skipped)


def _candidate_scores(
    train: UpliftRows, heldout: UpliftRows, config: UpliftConfig
) -> dict[str, np.ndarray]:
    """Each candidate's ranking score of the held-out rows, learners fitted on ``train``."""
    encoder = _encoder(train).fit(train.features.assign(**{CHANNEL_COLUMN: train.rows["channel"]}))
    X_train = _matrix(encoder, train)
    outcome = train.rows["purchased"].to_numpy(dtype=float)
    treated, propensity = train.rows["treated"].to_numpy(), train.rows["propensity"].to_numpy()
    # The ensemble is the mean of its members: scored from them, not fitted twice.
    members = ("t_learner", "x_learner", "dr_learner")
    derived = "ensemble" in config.learners and set(members) <= set(config.learners)
    learners = {
        name: make_learner(name, encoder, config).fit(X_train, treated, outcome, propensity)
        for name in config.learners
        if not (derived and name == "ensemble")
    }
    parts = {"learners": learners, "response": _response_model(encoder, train, config)}
    scores = heldout_scores(parts, encoder, heldout)
    if derived:
        scores["ensemble"] = np.mean([scores[name] for name in members], axis=0)
    for name, column in BASELINE_RANKINGS.items():
        if column in heldout.features:
            scores[name] = heldout.features[column].to_numpy(dtype=float)
    return scores


def _final_model(
    rows: UpliftRows, chosen: str, policy: PolicyTable, config: UpliftConfig, as_of: pd.Timestamp
) -> UpliftModel:
    """The chosen learner and the response-value model refitted on every learnable row."""
    encoder = _encoder(rows).fit(rows.features.assign(**{CHANNEL_COLUMN: rows.rows["channel"]}))
    learner = make_learner(chosen, encoder, config).fit(
        _matrix(encoder, rows),
        rows.rows["treated"].to_numpy(),
        rows.rows["purchased"].to_numpy(dtype=float),
        rows.rows["propensity"].to_numpy(),
    )
    return UpliftModel(
        encoder=encoder,
        learner=learner,
        response_model=_response_model(encoder, rows, config),
        channels=tuple(sorted(set(rows.rows.loc[rows.rows["treated"], "channel"].dropna()))),
        window_days=config.window_days,
        policy=policy,
        trained_until=as_of,
    )


def _best_learner(replicates: dict[str, np.ndarray], config: UpliftConfig) -> str:
    """The ensemble, unless one learner captures significantly more held-out value.

    On noisy campaign outcomes the learner with the best point estimate on one held-out
    campaign is often not the best on the next: a single learner replaces the (steadier)
    ensemble only when the 95% interval of its paired bootstrap gain over the ensemble,
    at the reference budget share, lies above zero. Without the ensemble among the
    candidates, the best point estimate wins.
    """
    learners = [name for name in config.learners if name in replicates]
    best = max(learners, key=lambda name: np.nan_to_num(replicates[name][0], nan=-np.inf))
    if "ensemble" not in learners or best == "ensemble":
        return best
    gain = replicates[best][1:] - replicates["ensemble"][1:]
    return best if np.nanpercentile(gain, 2.5) > 0 else "ensemble"


def _summary_metrics(
    heldout: UpliftRows, train: UpliftRows, policy: PolicyTable, config: UpliftConfig
) -> dict[str, float]:
    treated = heldout.rows["treated"].to_numpy()
    metrics = {
        **average_treatment_effect(treated, heldout.rows["purchased"].to_numpy(float)).as_dict(
            "uplift_ate_purchase"
        ),
        **average_treatment_effect(treated, heldout.rows["net_spend"].to_numpy(float)).as_dict(
            "uplift_ate_spend"
        ),
        "uplift_n_train_rows": float(len(train)),
        "uplift_n_heldout_rows": float(len(heldout)),
        "uplift_n_campaigns": float(
            len(set(train.rows["campaign_id"]) | set(heldout.rows["campaign_id"]))
        ),
        "uplift_window_days": float(config.window_days),
    }
    for share, winner in policy.winners.items():
        metrics[f"uplift_policy_at_{round(share * 100)}_is_uplift"] = float(winner == "uplift")
    return metrics
