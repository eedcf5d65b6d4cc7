"""How the win-back policy is chosen: measurement noise and decision rules over demo draws.

fidelite picks the ranking policy (uplift model, value at risk, churn probability) by
the incremental value each captured on held-out campaigns. This script checks that
choice on independent demo draws, where the true effect of every row is known:

* per draw, the churn/CLV model is trained the day before the last campaign and every
  campaign row gets its features and scores the day before its send (point in time);
* rolling origin: every campaign from the third on is ranked by learners fitted on the
  campaigns sent before it (fidelite's ``candidate_scores``; uplift = the ensemble);
* each **decision** targets one campaign ``j`` from the fourth on: the rules see the
  held-out evidence of the campaigns before ``j`` (what ``fit_uplift`` would have seen)
  and are scored by the true incremental net value (30-day spend - offer cost) that
  their pick captures on ``j`` at a 20% budget.

Rules: ``spend argmax`` (the largest measured net spend, fidelite before), ``value
argmax`` (the largest incremental purchases x common value, covariate-adjusted:
fidelite now, ``PolicyTable``), ``value-at-risk unless beaten`` (uplift only when its
paired 95% interval over value at risk lies above zero) and ``uplift unless beaten``
(the reverse). ``--placebo`` shuffles the treatment labels the learners see (within
each campaign), so the uplift model has nothing to learn: a rule must not lose value
then.

Usage::

    python benchmarks/uplift_policy.py --seeds 7,8,9,10,11
    python benchmarks/uplift_policy.py --seeds 7,8,9 --placebo
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd
from _common import markdown_table, print_machine, print_table

from fidelite.features import Inputs, build_features
from fidelite.features.demo import generate_demo_data
from fidelite.features.inputs import load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.train import train
from fidelite.training.uplift import UpliftConfig
from fidelite.training.uplift.candidates import candidate_scores
from fidelite.training.uplift.dataset import UpliftRows, build_uplift_rows
from fidelite.training.uplift.evaluation import bootstrap_counts, value_replicates
from fidelite.training.uplift.policy import PolicyTable, pick_winners
from fidelite.training.uplift.valuation import compare_rankings, value_basis

SHARE = 0.2
POLICY_OF = {"ensemble": "uplift", "value_at_risk": "value_at_risk"}
POLICY_OF["churn_probability"] = "churn_probability"
RULES = (
    "spend argmax",
    "value argmax",
    "value-at-risk unless beaten",
    "value-at-risk unless beaten (90%)",
    "uplift unless beaten",
)
MODES = ("learners", "placebo")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seeds", default="7,8,9,10,11")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="learners (real labels) and/or placebo (treatment labels shuffled), comma-separated",
    )
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--cache", type=Path, help="folder keeping each draw's campaign rows (pickled) for reuse"
    )
    return parser.parse_args(argv)


def campaign_rows(customers: int, seed: int) -> UpliftRows:
    """Every campaign's rows with point-in-time features, scores, outcomes and truth."""
    data = generate_demo_data(customers, seed=seed)
    sends = data.campaigns.groupby("campaign_id")["sent_at"].min().sort_values()
    as_of = sends.iloc[-1].floor("D") - pd.Timedelta(days=1)
    cut = Inputs(data.transactions, as_of, data.events, data.customers).cut()
    with tempfile.TemporaryDirectory() as store:
        config = TrainConfig(register=False, tracking_uri=f"sqlite:///{store}/mlflow.db")
        inputs = load_inputs(cut.transactions, cut.events, cut.customers, as_of=as_of)
        model = train(inputs, config).model
    end = data.transactions["timestamp"].max().floor("D") + pd.Timedelta(days=1)
    everything = Inputs(data.transactions, end, data.events, data.customers)

    def score(features, day):
        params = {"as_of": str(day.date()), "reasons": False}
        return model.predict(None, features, params=params)

    rows = build_uplift_rows(
        data.campaigns,
        data.transactions,
        build=lambda day: build_features(everything, as_of=day),
        score=score,
        window_days=30,
        until=end,
    )
    truth = data.campaign_truth.set_index(["campaign_id", "customer_id"])
    keys = list(zip(rows.rows["campaign_id"], rows.rows["customer_id"], strict=True))
    rows.rows["true_net"] = truth.loc[keys, "true_uplift_spend"].to_numpy() - rows.rows[
        "offer_cost"
    ].to_numpy(dtype=float)
    rows.rows["true_purchase"] = truth.loc[keys, "true_uplift_purchase"].to_numpy()
    return rows


def _shuffled(rows: UpliftRows, seed: int) -> UpliftRows:
    treated = rows.rows["treated"].to_numpy().copy()
    rng = np.random.default_rng(seed)
    for campaign in rows.rows["campaign_id"].unique():
        where = np.flatnonzero((rows.rows["campaign_id"] == campaign).to_numpy())
        treated[where] = rng.permutation(treated[where])
    return UpliftRows(rows.features, rows.rows.assign(treated=treated))


def rolling_folds(rows: UpliftRows, placebo: bool, seed: int) -> list[tuple[UpliftRows, dict]]:
    """(held-out campaign rows, candidate scores) for every campaign from the third on."""
    sends = rows.rows.groupby("campaign_id")["send_day"].min().sort_values()
    basis, config, out = value_basis(rows.features), UpliftConfig(), []
    for campaign in sends.index[2:]:
        train_rows = rows.subset((rows.rows["send_day"] < sends[campaign]).to_numpy())
        held = rows.subset((rows.rows["campaign_id"] == campaign).to_numpy())
        if placebo:
            train_rows = _shuffled(train_rows, seed)
        found = candidate_scores(train_rows, held, config, basis)
        scores = {name: found.scores[name] for name in POLICY_OF}
        out.append((held, {"scores": scores, "value": found.value}))
    return out


def _pooled(folds: list) -> tuple[pd.DataFrame, pd.DataFrame, dict, np.ndarray]:
    rows = pd.concat([held.rows for held, _ in folds], ignore_index=True)
    features = pd.concat([held.features for held, _ in folds], ignore_index=True)
    scores = {n: np.concatenate([f["scores"][n] for _, f in folds]) for n in POLICY_OF}
    return rows, features, scores, np.concatenate([f["value"] for _, f in folds])


def _measure(folds: list, *, adjusted: bool = True):
    rows, features, scores, value = _pooled(folds)
    churn = features["score_churn_probability"].to_numpy(dtype=float) if adjusted else None
    return compare_rankings(
        scores, rows, value=value, churn=churn, shares=(SHARE,), n_boot=300, seed=0
    )


def _gain_bound(rep: dict, challenger: str, tail: float) -> float:
    """Lower ``tail`` percentile of the paired gain of ``challenger`` over value at risk."""
    return float(np.nanpercentile(rep[challenger][1:] - rep["value_at_risk"][1:], tail))


def decide(comparison) -> dict[str, str]:
    """Each rule's policy from the held-out evidence."""
    evidence = comparison.evidence.assign(policy=comparison.evidence["candidate"].map(POLICY_OF))
    by_spend = evidence.assign(incremental_value=evidence["measured_spend"])
    rep = {name: comparison.replicates[name][SHARE] for name in POLICY_OF}
    beaten = [
        name
        for name in ("value_at_risk", "churn_probability")
        if np.nanpercentile(rep[name][1:] - rep["ensemble"][1:], 2.5) > 0
    ]
    return {
        "spend argmax": PolicyTable(by_spend, "ensemble", "").winners[SHARE],
        "value argmax": pick_winners(evidence)[SHARE],
        "value-at-risk unless beaten": pick_winners(evidence, comparison.replicates)[SHARE],
        "value-at-risk unless beaten (90%)": "uplift"
        if _gain_bound(rep, "ensemble", 10.0) > 0
        else "value_at_risk",
        "uplift unless beaten": POLICY_OF[beaten[0]] if beaten else "uplift",
    }


def true_value(held: UpliftRows, score: np.ndarray) -> float:
    n = len(score)
    order = np.lexsort((np.random.default_rng(0).random(n), -np.nan_to_num(score, nan=-np.inf)))
    return float(held.rows["true_net"].to_numpy()[order[: int(np.ceil(SHARE * n))]].sum())


def _single_campaign(seed: int, held: UpliftRows, found: dict) -> dict:
    """How one campaign's measurements separate uplift from value at risk.

    Per measurement: ``z`` = the measured (uplift - value at risk) over the standard
    deviation of its paired bootstrap replicates, and whether its sign matches the truth.
    """
    true_gap = true_value(held, found["scores"]["ensemble"]) - true_value(
        held, found["scores"]["value_at_risk"]
    )
    row = {"seed": seed, "campaign": held.rows["campaign_id"].iloc[0], "true_gap": true_gap}
    rows = held.rows
    treated, cost = rows["treated"].to_numpy(), rows["offer_cost"].to_numpy(dtype=float)
    counts = bootstrap_counts(treated, 300, 0)
    spend = {
        name: value_replicates(
            found["scores"][name],
            treated,
            rows["net_spend"].to_numpy(float),
            (SHARE,),
            cost=cost,
            counts=counts,
        )[SHARE]
        for name in ("ensemble", "value_at_risk")
    }
    measured = {"spend": spend}
    for label, adjusted in (("value", False), ("adjusted", True)):
        replicates = _measure([(held, found)], adjusted=adjusted).replicates
        measured[label] = {n: replicates[n][SHARE] for n in ("ensemble", "value_at_risk")}
    for label, reps in measured.items():
        gap = reps["ensemble"] - reps["value_at_risk"]
        row[f"{label}_z"] = gap[0] / np.nanstd(gap[1:])
        row[f"{label}_right"] = float(np.sign(gap[0]) == np.sign(true_gap))
    return row


def draw(args: argparse.Namespace, seed: int) -> tuple[list[dict], list[dict]]:
    """One noise row per held-out campaign and one decision row per target and rule.

    The campaign rows are built once; each mode fits its own rolling-origin learners.
    """
    cached = args.cache / f"rows_{args.customers}_{seed}.pkl" if args.cache else None
    if cached is not None and cached.exists():
        rows = pd.read_pickle(cached)
    else:
        rows = campaign_rows(args.customers, seed)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            pd.to_pickle(rows, cached)
    noise, decisions = [], []
    for mode in args.modes.split(","):
        folds = rolling_folds(rows, mode == "placebo", seed)
        if mode == "learners":
            noise += [_single_campaign(seed, held, found) for held, found in folds]
        for j in range(1, len(folds)):
            held, found = folds[j]
            truth = {POLICY_OF[n]: true_value(held, found["scores"][n]) for n in POLICY_OF}
            for rule, policy in decide(_measure(folds[:j])).items():
                decisions.append(
                    {"mode": mode, "seed": seed, "evidence": j, "rule": rule, "policy": policy}
                    | truth
                    | {"captured": truth[policy], "last": j == len(folds) - 1}
                )
    return noise, decisions


def summarise(decisions: pd.DataFrame) -> list[dict]:
    """Per rule: how often it picked uplift, and the true value its picks captured.

    ``final_picked_uplift``: the decisions made on every earlier held-out campaign (the
    evidence ``fit_uplift`` has when it picks the policy for the demo's last campaign).
    """
    best = decisions.groupby(["seed", "evidence"])[["uplift", "value_at_risk"]].first()
    out = []
    for rule in RULES:
        rows = decisions.loc[decisions["rule"] == rule]
        final = rows.loc[rows["last"]]
        out.append(
            {
                "rule": rule,
                "decisions": len(rows),
                "picked_uplift": f"{(rows['policy'] == 'uplift').mean():.0%}",
                "final_picked_uplift": f"{(final['policy'] == 'uplift').mean():.0%}",
                "true_value_captured": rows["captured"].sum(),
                "vs_always_uplift": rows["captured"].sum() / best["uplift"].sum(),
                "vs_always_value_at_risk": rows["captured"].sum() / best["value_at_risk"].sum(),
            }
        )
    return out


def _by_evidence(decisions: pd.DataFrame, rule: str) -> list[dict]:
    """How often ``rule`` picked uplift, by the number of held-out campaigns it saw."""
    rows = decisions.loc[decisions["rule"] == rule]
    return [
        {
            "evidence_campaigns": int(j),
            "decisions": len(group),
            "picked_uplift": f"{(group['policy'] == 'uplift').mean():.0%}",
            "uplift_truly_better": f"{(group['uplift'] > group['value_at_risk']).mean():.0%}",
        }
        for j, group in rows.groupby("evidence")
    ]


def _noise_table(single: pd.DataFrame) -> tuple[list[dict], tuple]:
    """Print and return how well one campaign's measurements separate the two rankings."""
    rows = [
        {
            "measurement": label,
            "campaigns": len(single),
            "mean_z_uplift_minus_var": single[f"{label}_z"].mean(),
            "right_sign": f"{single[f'{label}_right'].mean():.0%}",
        }
        for label in ("spend", "value", "adjusted")
    ]
    title = (
        "One held-out campaign at 20%: uplift - value at risk in standard deviations, "
        f"and how often its sign is right (true gap > 0 in {(single['true_gap'] > 0).mean():.0%})"
    )
    print_table(rows, tuple(rows[0]), title=title)
    return rows, tuple(rows[0])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print_machine()
    clock = time.perf_counter()
    noise, decisions = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        found = draw(args, seed)
        noise += found[0]
        decisions += found[1]
        print(f"draw {seed} done ({time.perf_counter() - clock:.0f} s)", flush=True)
    tables = []
    if noise:
        tables.append(_noise_table(pd.DataFrame(noise)))
    frame = pd.DataFrame(decisions)
    for mode, group in frame.groupby("mode", sort=False):
        summary = summarise(group)
        kind = "placebo learners (shuffled labels)" if mode == "placebo" else "learners"
        title = f"Policy decisions at 20%, {kind}, seeds {args.seeds}"
        print_table(summary, tuple(summary[0]), title=title)
        evidence = _by_evidence(group, "value-at-risk unless beaten")
        print_table(evidence, tuple(evidence[0]), title=f"{kind}: fidelite's rule by evidence")
        tables += [(summary, tuple(summary[0])), (evidence, tuple(evidence[0]))]
    print(f"total {time.perf_counter() - clock:.0f} s")
    if args.markdown:
        for rows, columns in tables:
            print(markdown_table(rows, columns))
            print()


if __name__ == "__main__":
    main()
