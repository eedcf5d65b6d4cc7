"""The candidate rankings of held-out campaign rows: every meta-learner, value at risk,
churn probability.

Learners are fitted on the rows of the campaigns sent before the held-out ones and rank
by expected incremental net value: ``tau(x) x value - offer cost``, with the value of a
won-back customer from :func:`~fidelite.training.uplift.valuation.customer_value`. The
baseline rankings sort on the churn/CLV model's own scores at the day before the send.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from fidelite.training.encoding import FeatureEncoder
from fidelite.training.uplift.config import UpliftConfig
from fidelite.training.uplift.contact import (
    CHANNEL_COLUMN,
    CONTACT_INPUTS,
    CONTACTED_ONLY,
    contact_frame,
)
from fidelite.training.uplift.dataset import UpliftRows
from fidelite.training.uplift.learners import ENSEMBLE_MEMBERS, LEARNERS
from fidelite.training.uplift.valuation import customer_value

__all__ = [
    "BASELINE_RANKINGS",
    "ENSEMBLE_MEMBERS",
    "HeldoutScores",
    "candidate_scores",
    "make_learner",
    "response_model",
    "uplift_encoder",
    "uplift_frame",
    "uplift_matrix",
]

#: Rankings compared with the learners, by the ``score_*`` input they sort on.
BASELINE_RANKINGS: dict[str, str] = {
    "value_at_risk": "score_value_at_risk",
    "churn_probability": "score_churn_probability",
}


def uplift_encoder(rows: UpliftRows) -> FeatureEncoder:
    """An unfitted encoder of the uplift inputs: features, ``score_*``, contact channel
    and the contact inputs (:mod:`~fidelite.training.uplift.contact`)."""
    scores = tuple(c for c in rows.features.columns if c.startswith("score_"))
    return FeatureEncoder(
        extra_inputs=(*scores, *CONTACT_INPUTS), extra_categorical=(CHANNEL_COLUMN,)
    )


def uplift_frame(rows: UpliftRows, channel: bool = True):
    """The rows' inputs at the channel each was sent on (``channel=False``: none)."""
    return contact_frame(rows.features, rows.rows["channel"].to_numpy() if channel else None)


def uplift_matrix(encoder: FeatureEncoder, rows: UpliftRows) -> np.ndarray:
    """The rows' matrix at the channel each was sent on, shape (n_rows, n_columns)."""
    return encoder.transform_array(uplift_frame(rows))


def make_learner(
    name: str,
    encoder: FeatureEncoder,
    config: UpliftConfig,
    members: tuple[str, ...] | None = None,
):
    """An unfitted meta-learner for ``encoder``'s matrix (categorical and channel columns);
    ``members``: the learners the ensemble averages (default: all of them)."""
    names = encoder.feature_names_
    categorical = tuple(names.index(c) for c in encoder.categories_)
    chosen = {"members": tuple(members)} if name == "ensemble" and members else {}
    return LEARNERS[name](
        **{
            "categorical": categorical,
            # The control model never sees what depends on the contact channel.
            "channel_column": tuple(names.index(c) for c in CONTACTED_ONLY if c in names),
            "n_jobs": config.n_jobs,
            "random_state": config.random_state,
            **config.learner_params,
            **chosen,
        }
    )


def response_model(
    encoder: FeatureEncoder, rows: UpliftRows, config: UpliftConfig
) -> lgb.LGBMRegressor:
    """Net spend in the window given a purchase, on rows that bought (channel hidden)."""
    bought = rows.rows["purchased"].to_numpy()
    X = encoder.transform_array(contact_frame(rows.features.loc[bought], None))
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


@dataclass
class HeldoutScores:
    """Candidate rankings of held-out rows and the value they are measured with.

    Attributes
    ----------
    scores : dict of str to ndarray, shape (n_rows,)
        Candidate -> ranking score (learners: expected incremental net value).
    value : ndarray, shape (n_rows,)
        What winning each customer back is worth (the valuation's common value).
    effects : dict of str to ndarray, shape (n_rows,)
        Learner -> estimated change in P(purchase) (the ensemble: mean of all members).
    """

    scores: dict[str, np.ndarray]
    value: np.ndarray
    effects: dict[str, np.ndarray]


def candidate_scores(
    train: UpliftRows, heldout: UpliftRows, config: UpliftConfig, basis: str
) -> HeldoutScores:
    """Each candidate's ranking of ``heldout``, learners fitted on ``train``.

    Parameters
    ----------
    train, heldout : UpliftRows
        Earlier campaigns' rows, and the rows to rank.
    config : UpliftConfig
    basis : {"value_if_retained", "response_spend"}
        Value basis (:func:`~fidelite.training.uplift.valuation.value_basis`).
    """
    encoder = uplift_encoder(train).fit(uplift_frame(train))
    X_train, X_held = uplift_matrix(encoder, train), uplift_matrix(encoder, heldout)
    outcome = train.rows["purchased"].to_numpy(dtype=float)
    treated, propensity = train.rows["treated"].to_numpy(), train.rows["propensity"].to_numpy()
    # The ensemble is the mean of its members: scored from them, not fitted twice.
    derived = "ensemble" in config.learners and set(ENSEMBLE_MEMBERS) <= set(config.learners)
    effects = {
        name: make_learner(name, encoder, config)
        .fit(X_train, treated, outcome, propensity)
        .predict(X_held)
        for name in config.learners
        if not (derived and name == "ensemble")
    }
    if derived:
        effects["ensemble"] = np.mean([effects[name] for name in ENSEMBLE_MEMBERS], axis=0)
    spend = response_model(encoder, train, config).predict(
        encoder.transform_array(uplift_frame(heldout, channel=False))
    )
    value = customer_value(heldout.features, basis, spend)
    cost = heldout.rows["offer_cost"].to_numpy(dtype=float)
    scores = {name: effect * value - cost for name, effect in effects.items()}
    for name, column in BASELINE_RANKINGS.items():
        if column in heldout.features:
            scores[name] = heldout.features[column].to_numpy(dtype=float)
    return HeldoutScores(scores=scores, value=value, effects=effects)
