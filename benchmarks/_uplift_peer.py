"""The peer in benchmarks/uplift.py: causalml's X-learner on fidelite's inputs, and a
paired bootstrap interval of a Qini difference."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from fidelite.training.uplift.candidates import uplift_frame
from fidelite.training.uplift.evaluation import qini_coefficient


def peer_scores(fit, train_rows, heldout_rows, value: np.ndarray, cost: np.ndarray, seed: int):
    """causalml's X-learner on fidelite's matrix, LightGBM settings and value model."""
    from causalml.inference.meta import BaseXClassifier

    model = fit.model
    encoder = model.encoder
    params = {
        "n_estimators": 150,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 100,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "n_jobs": 1,
        "verbose": -1,
        "random_state": seed,
    }
    peer = BaseXClassifier(
        outcome_learner=lgb.LGBMClassifier(**params), effect_learner=lgb.LGBMRegressor(**params)
    )

    def matrix(rows):
        return encoder.transform_array(uplift_frame(rows))

    treated = train_rows.rows["treated"].to_numpy().astype(int)
    propensity = train_rows.rows["propensity"].to_numpy()
    peer.fit(
        matrix(train_rows),
        treated,
        train_rows.rows["purchased"].to_numpy().astype(int),
        p=propensity,
    )
    held_p = heldout_rows.rows["propensity"].to_numpy()
    tau = np.ravel(peer.predict(matrix(heldout_rows), p=held_p))
    return tau, tau * value - cost


def qini_difference(ours, theirs, treated, bought, n_boot: int = 200) -> tuple[float, float]:
    """95% interval of Qini(ours) - Qini(theirs), rows resampled within each group."""
    rng = np.random.default_rng(1)
    groups = [np.flatnonzero(treated), np.flatnonzero(~treated)]
    out = []
    for _ in range(n_boot):
        rows = np.concatenate([rng.choice(g, size=len(g)) for g in groups])
        out.append(
            qini_coefficient(ours[rows], treated[rows], bought[rows])
            - qini_coefficient(theirs[rows], treated[rows], bought[rows])
        )
    low, high = np.percentile(out, [2.5, 97.5])
    return float(low), float(high)
