"""Win-back targeting on a held-out demo campaign: who should get the offer?

Protocol (demo data, whose campaigns have known true effects):

* the **held-out campaign** is the demo's last quarterly win-back campaign; everything
  is trained at as-of = the day before it was sent, so no model sees its outcomes;
* fidelite trains its churn/CLV model at that as-of, then ``fit_uplift`` learns from
  the earlier campaigns (picking a meta-learner and a policy on the one before);
* each ranking orders the held-out campaign's rows (both groups), with features and
  scores as of the day before the send, and the channel each row was sent on;
* **true incremental net value** at a budget: sum over the top share of rows of the
  true expected incremental net spend in the window minus the offer cost (from the
  demo's hidden truth); **measured**: the same from treatment vs control outcomes,
  with a 95% bootstrap interval; **Qini**: on observed purchases (1 = perfect), of each
  model's incremental-purchase estimate; **spearman_true**: rank correlation of that
  estimate with the true incremental purchase probability (far less noisy than a Qini
  on one campaign's outcomes).

The Qini of one fit moves by about +-0.01 with the LightGBM seed, so the learners and the
peer are also refitted with seeds 0, 1, 2 and their mean and range are printed.

Contenders: fidelite's ranking (the policy fidelite picks at a 20% budget), value at
risk, churn probability, random, the true-effect oracle, and causalml's X-learner on
the same feature matrix, outcome and LightGBM settings, converted to value with
fidelite's response-value model (so only the effect estimate differs).

Usage::

    python benchmarks/uplift.py                 # 20,000 customers, seed 7
    python benchmarks/uplift.py --customers 50000 --markdown
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd
from _common import markdown_table, print_machine, print_table

from fidelite.features import Inputs, build_features
from fidelite.features.demo import DemoData, generate_demo_data
from fidelite.features.inputs import load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.train import train
from fidelite.training.uplift import UpliftConfig, UpliftFit, fit_uplift
from fidelite.training.uplift.dataset import UpliftRows, build_uplift_rows
from fidelite.training.uplift.evaluation import (
    bootstrap_counts,
    incremental_value,
    qini_coefficient,
)
from fidelite.training.uplift.fit import make_learner
from fidelite.training.uplift.model import CHANNEL_COLUMN

SHARES = (0.1, 0.2, 0.3)
PEER = "causalml X-learner (peer)"
SEEDS = (0, 1, 2)
MEMBERS = ("t_learner", "x_learner", "dr_learner")
COLUMNS = (
    "ranking",
    "qini",
    "spearman_true",
    *(f"true_value_{round(s * 100)}pct" for s in SHARES),
    "measured_value_20pct",
    "measured_ci_20pct",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--markdown", action="store_true", help="also print Markdown")
    return parser.parse_args(argv)


def _peer_scores(fit, train_rows, heldout_rows, value: np.ndarray, cost: np.ndarray, seed: int):
    """causalml's X-learner on fidelite's matrix, LightGBM settings and value model."""
    import lightgbm as lgb
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
        return encoder.transform_array(
            rows.features.assign(**{CHANNEL_COLUMN: rows.rows["channel"]})
        )

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


def _qini_difference(ours, theirs, treated, bought, n_boot: int = 200) -> tuple[float, float]:
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


@dataclass
class World:
    """The demo, its held-out campaign and what was trained before it."""

    data: DemoData
    last: str
    as_of: pd.Timestamp
    fit: UpliftFit
    score: object
    train_rows: UpliftRows
    held: UpliftRows


def _world(args: argparse.Namespace) -> World:
    """Demo data, churn/CLV model and uplift fit at the day before the last campaign."""
    data = generate_demo_data(args.customers, seed=args.seed)
    campaigns = data.campaigns
    last = campaigns.groupby("campaign_id")["sent_at"].min().sort_values().index[-1]
    send = campaigns.loc[campaigns["campaign_id"] == last, "sent_at"].min().floor("D")
    as_of = send - pd.Timedelta(days=1)
    end = as_of + pd.Timedelta(days=1)
    tx = data.transactions.loc[data.transactions["timestamp"] < end]
    ev = data.events.loc[data.events["timestamp"] < end]
    with tempfile.TemporaryDirectory() as store:
        config = TrainConfig(
            register=False, n_jobs=args.n_jobs, tracking_uri=f"sqlite:///{store}/mlflow.db"
        )
        churn_model = train(load_inputs(tx, ev, data.customers, as_of=as_of), config).model
    history = Inputs(tx, as_of, ev, data.customers)

    def build(day):
        return build_features(history, as_of=day)

    def score(features, day):
        params = {"as_of": str(day.date()), "reasons": False}
        return churn_model.predict(None, features, params=params)

    fit = fit_uplift(
        campaigns,
        tx,
        as_of=as_of,
        build=build,
        score=score,
        config=UpliftConfig(n_jobs=args.n_jobs),
    )
    window = fit.model.window_days
    # Every fidelite learner and the peer learn from the rows the shipped model learnt from.
    train_rows = build_uplift_rows(
        campaigns.loc[~campaigns["campaign_id"].isin(fit.skipped)],
        tx,
        build=build,
        score=score,
        window_days=window,
        until=end,
    )
    # The held-out campaign's outcomes come from all the data; its features stay point in
    # time (as of the day before each send) whatever the data hold.
    data_end = data.transactions["timestamp"].max().floor("D") + pd.Timedelta(days=1)
    everything = Inputs(data.transactions, data_end, data.events, data.customers)
    held = build_uplift_rows(
        campaigns.loc[campaigns["campaign_id"] == last],
        data.transactions,
        build=lambda day: build_features(everything, as_of=day),
        score=score,
        window_days=window,
        until=data_end,
    )
    return World(data, last, as_of, fit, score, train_rows, held)


def _truth(world: World) -> tuple[np.ndarray, np.ndarray]:
    """True incremental P(purchase) and net value (spend - cost) of the held-out rows."""
    truth = world.data.campaign_truth.set_index(["campaign_id", "customer_id"])
    rows = world.held.rows
    keys = list(zip(rows["campaign_id"], rows["customer_id"], strict=True))
    cost = rows["offer_cost"].to_numpy(dtype=float)
    return (
        truth.loc[keys, "true_uplift_purchase"].to_numpy(),
        truth.loc[keys, "true_uplift_spend"].to_numpy() - cost,
    )


def _rankings(world: World, true_purchase, true_net, n_jobs: int):
    """(Qini score, value score) per ranking, and the learners/peer per LightGBM seed.

    Uplift models are judged on their incremental-purchase estimate for the Qini and
    rank by expected incremental net value.
    """
    fit, held = world.fit, world.held
    cost = held.rows["offer_cost"].to_numpy(dtype=float)
    uplift = fit.model.predict(held.features, held.rows["channel"].to_numpy())
    value = uplift["response_value"].to_numpy()
    choice = fit.model.choose_policy(0.2)
    var = held.features["score_value_at_risk"].to_numpy(dtype=float)
    churn = held.features["score_churn_probability"].to_numpy(dtype=float)
    shipped = (uplift["uplift_purchase"].to_numpy(), uplift["uplift_value"].to_numpy() - cost)
    baselines = {"value_at_risk": (var, var), "churn_probability": (churn, churn)}
    label = fit.model.learner_name if choice.policy == "uplift" else choice.policy
    rankings = {
        f"fidelite ({label})": shipped if choice.policy == "uplift" else baselines[choice.policy],
        **baselines,
        "random": (np.random.default_rng(0).random(len(true_net)),) * 2,
        "oracle (true effect)": (true_purchase, true_net),
    }
    by_seed = {seed: _seeded(world, value, cost, seed, n_jobs) for seed in SEEDS}
    rankings.update(by_seed[SEEDS[0]])
    return rankings, by_seed, choice


def _seeded(world: World, value, cost, seed: int, n_jobs: int) -> dict[str, tuple]:
    """fidelite's learners, their ensemble and the peer, fitted with one LightGBM seed."""
    fit, train_rows, held = world.fit, world.train_rows, world.held

    def matrix(rows: UpliftRows) -> np.ndarray:
        frame = rows.features.assign(**{CHANNEL_COLUMN: rows.rows["channel"]})
        return fit.model.encoder.transform_array(frame)

    X_train, X_held = matrix(train_rows), matrix(held)
    found = {}
    for name in MEMBERS:
        learner = make_learner(
            name, fit.model.encoder, UpliftConfig(n_jobs=n_jobs, random_state=seed)
        ).fit(
            X_train,
            train_rows.rows["treated"].to_numpy(),
            train_rows.rows["purchased"].to_numpy(dtype=float),
            train_rows.rows["propensity"].to_numpy(),
        )
        tau = learner.predict(X_held)
        found[f"fidelite {name}"] = (tau, tau * value - cost)
    members = [found[f"fidelite {m}"] for m in MEMBERS]
    found["fidelite ensemble"] = tuple(np.mean([m[i] for m in members], axis=0) for i in (0, 1))
    try:
        found[PEER] = _peer_scores(fit, train_rows, held, value, cost, seed)
    except ImportError:
        print("causalml not installed (pip install -e '.[bench]'): peer row skipped")
    return found


def _top_value(true_net: np.ndarray, score: np.ndarray, share: float) -> float:
    n = len(true_net)
    order = np.lexsort((np.random.default_rng(0).random(n), -np.nan_to_num(score, nan=-np.inf)))
    return float(true_net[order[: int(np.ceil(share * n))]].sum())


def _table(world: World, rankings, true_purchase, true_net) -> list[dict]:
    rows_ = world.held.rows
    treated = rows_["treated"].to_numpy()
    bought = rows_["purchased"].to_numpy(dtype=float)
    spend = rows_["net_spend"].to_numpy(dtype=float)
    cost = rows_["offer_cost"].to_numpy(dtype=float)
    counts = bootstrap_counts(treated, 300, seed=0)
    rows = []
    for name, (qini_score, value_score) in rankings.items():
        row = {
            "ranking": name,
            "qini": qini_coefficient(qini_score, treated, bought),
            "spearman_true": pd.Series(qini_score).corr(pd.Series(true_purchase), "spearman"),
        }
        for share in SHARES:
            row[f"true_value_{round(share * 100)}pct"] = _top_value(true_net, value_score, share)
        measured = incremental_value(value_score, treated, spend, (0.2,), cost=cost, counts=counts)
        row["measured_value_20pct"] = measured[0.2].value
        row["measured_ci_20pct"] = f"[{measured[0.2].low:,.0f}, {measured[0.2].high:,.0f}]"
        rows.append(row)
    return rows


def _seed_table(world: World, by_seed, true_net) -> list[dict]:
    treated = world.held.rows["treated"].to_numpy()
    bought = world.held.rows["purchased"].to_numpy(dtype=float)
    out = []
    for name in ("fidelite ensemble", "fidelite x_learner", PEER):
        if name not in by_seed[SEEDS[0]]:
            continue
        qinis = [qini_coefficient(by_seed[k][name][0], treated, bought) for k in SEEDS]
        values = [_top_value(true_net, by_seed[k][name][1], 0.2) for k in SEEDS]
        out.append(
            {
                "ranking": name,
                "qini_mean": float(np.mean(qinis)),
                "qini_range": f"[{min(qinis):.3f}, {max(qinis):.3f}]",
                "true_value_20pct_mean": float(np.mean(values)),
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print_machine()
    clock = time.perf_counter()
    world = _world(args)
    true_purchase, true_net = _truth(world)
    rankings, by_seed, choice = _rankings(world, true_purchase, true_net, args.n_jobs)
    rows = _table(world, rankings, true_purchase, true_net)
    treated = world.held.rows["treated"].to_numpy()
    title = (
        f"Held-out campaign {world.last} ({len(treated):,} rows, {int((~treated).sum()):,} "
        f"control), {args.customers:,} demo customers, seed {args.seed}; trained at as-of "
        f"{world.as_of.date()}"
    )
    print_table(rows, COLUMNS, title=title)
    by = {r["ranking"]: r for r in rows}
    ours = rows[0]["true_value_20pct"]
    print(
        f"at 20%: fidelite / value at risk = {ours / by['value_at_risk']['true_value_20pct']:.2f}x "
        f"(target >= 1.5), fidelite / oracle = "
        f"{ours / by['oracle (true effect)']['true_value_20pct']:.0%} (target >= 60%)"
    )
    if PEER in by:
        bought = world.held.rows["purchased"].to_numpy(dtype=float)
        low, high = _qini_difference(
            rankings[rows[0]["ranking"]][0], rankings[PEER][0], treated, bought
        )
        print(
            f"Qini fidelite {rows[0]['qini']:.3f} vs peer {by[PEER]['qini']:.3f} (target >=); "
            f"difference 95% bootstrap CI [{low:+.3f}, {high:+.3f}]"
        )
    seed_rows = _seed_table(world, by_seed, true_net)
    seed_columns = ("ranking", "qini_mean", "qini_range", "true_value_20pct_mean")
    print_table(seed_rows, seed_columns, title=f"LightGBM seeds {SEEDS}: mean and range")
    print(f"policy at 20%: {choice.policy} - {choice.reason}")
    print(f"total {time.perf_counter() - clock:.0f} s")
    if args.markdown:
        print(markdown_table(rows, COLUMNS))
        print()
        print(markdown_table(seed_rows, seed_columns))


if __name__ == "__main__":
    main()
