"""Probabilistic baseline models: CDNOW parity, small data, held-out comparison, speed.

Tables (recorded in BENCHMARKS.md, "Baseline models"):

1. **CDNOW parity**: estimates and standard errors of BG/NBD, MBG/NBD, Pareto/NBD and
   Gamma-Gamma (penalizer 0) on the CDNOW 1/10 summary, beside lifetimes 0.11.3.
2. **Small data**: 300-customer files fitted with no penalty (the old default) and
   with ``penalizer="auto"``: unconverged fits, the largest ``r``, fits whose
   predictions are not finite, and the log-likelihood per customer on a large
   population from the same process (held-out customers).
3. **Held-out comparison** of the purchase models (2-fold, customers never fitted
   on): log-likelihood per customer and calibration of P(no purchase in H) on the
   later window (Brier, ECE over 10 equal-count bins, mean predicted - observed),
   the predicted / actual total of purchase days in the window, plus one-time
   buyers: observed P(buy), predicted P(buy), mean P(alive).
4. **Penalty study** (``--penalty-study``, ~10 min): held-out log-likelihood regret of
   constant penalties and ``c / n`` rules over subsample sizes 20..12,000.
5. **Fit speed**: 100k simulated customers, fidelite vs lifetimes in the same run.

Data: CDNOW (``CDNOW_sample.txt`` and ``CDNOW_master.txt`` from the lifetimes wheel,
calibration to 1997-09-30, outcomes in the next 273 days) and the demo generator
(5,000 customers, seed 1000, as-of 2024-12-31 / 2025-06-30 / 2025-09-30, H = 90 days;
300-customer files with seeds 0-9).

Usage::

    python benchmarks/baseline_models.py [--markdown] [--penalty-study]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Stopwatch, markdown_table, print_machine, print_table
from cdnow import load_cdnow

from fidelite.features import Inputs, build_features
from fidelite.features.demo import generate_demo_data
from fidelite.training.baseline import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    PurchaseModel,
)
from fidelite.training.baseline.simulate import simulate_beta_geometric
from fidelite.training.labels import make_labels

REPO = Path(__file__).resolve().parent.parent
CDNOW_SUMMARY = REPO / "tests/training/baseline/data/cdnow_sample_summary.csv"
PURCHASE = {"BG/NBD": BetaGeoModel, "MBG/NBD": ModifiedBetaGeoModel, "Pareto/NBD": ParetoNBDModel}
DEMO_AS_OFS = ("2024-12-31", "2025-06-30", "2025-09-30")
REGULAR = {"r": 100.0, "alpha": 6000.0, "a": 1.0, "b": 6.0}  # near-homogeneous buyers, days


def rfm(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(frame[c].to_numpy(float) for c in ("frequency", "recency", "T"))


def labelled_rfm(transactions: pd.DataFrame, as_of: str, horizon: int) -> pd.DataFrame:
    """RFM columns at ``as_of`` and ``churned`` over the next ``horizon`` days, purchasers only."""
    features = build_features(Inputs(transactions, as_of))
    labels = make_labels(
        transactions, as_of=as_of, horizon_days=horizon, customers_index=features.index
    )
    frame = features[["frequency", "recency", "T", "monetary_value"]].join(
        labels[["churned", "future_purchases"]]
    )
    return frame[frame["T"].notna()]


def datasets() -> dict[str, tuple[pd.DataFrame, int]]:
    """Held-out comparison sets: name -> (labelled RFM frame, horizon in days)."""
    sample = resources.files("lifetimes.datasets") / "CDNOW_sample.txt"
    out = {
        "CDNOW 1/10 sample": (labelled_rfm(load_cdnow(Path(str(sample))), "1997-09-30", 273), 273),
        "CDNOW master": (labelled_rfm(load_cdnow(), "1997-09-30", 273), 273),
    }
    demo = generate_demo_data(5000, seed=1000).transactions
    for as_of in DEMO_AS_OFS:
        out[f"demo 5k {as_of}"] = (labelled_rfm(demo, as_of, 90), 90)
    return out


# ----------------------------------------------------------------------- 1. parity
def parity_rows() -> list[dict]:
    cdnow = pd.read_csv(CDNOW_SUMMARY, comment="#")
    fitters = _lifetimes_fitters()
    rows = []
    for name, cls in PURCHASE.items():
        ours = cls(penalizer=0).fit(*rfm(cdnow))
        theirs = fitters.get(name)
        rows += _parity(name, ours, theirs(rfm(cdnow)) if theirs else None)
    ours = GammaGammaModel(penalizer=0).fit(cdnow["frequency"], cdnow["monetary_value"])
    rows += _parity("Gamma-Gamma", ours, fitters["Gamma-Gamma"](cdnow) if fitters else None)
    return rows


def _lifetimes_fitters() -> dict[str, Callable]:
    try:
        import lifetimes
    except ImportError:
        return {}
    repeat = lambda d: d[d["frequency"] > 0]  # noqa: E731
    return {
        "BG/NBD": lambda a: lifetimes.BetaGeoFitter().fit(*a),
        "MBG/NBD": lambda a: lifetimes.ModifiedBetaGeoFitter().fit(*a),
        "Pareto/NBD": lambda a: lifetimes.ParetoNBDFitter().fit(*a),
        "Gamma-Gamma": lambda d: lifetimes.GammaGammaFitter().fit(
            repeat(d)["frequency"], repeat(d)["monetary_value"]
        ),
    }


def _parity(model: str, ours, theirs) -> list[dict]:
    table = ours.summary()
    rows = []
    for name in table.index:
        row = {
            "model": model,
            "param": name,
            "fidelite coef": table.loc[name, "coef"],
            "fidelite se": table.loc[name, "se(coef)"],
            "fidelite LL": ours.log_likelihood_,
        }
        if theirs is not None:
            row["lifetimes coef"] = float(theirs.params_[name])
            if getattr(theirs, "_hessian_", None) is not None:
                row["lifetimes se"] = float(theirs.summary.loc[name, "se(coef)"])
        rows.append(row)
    return rows


# ------------------------------------------------------------------ 2. small data
def small_data_cases() -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(case, 300-customer file, large held-out population from the same process)."""
    for seed in range(20):
        small = simulate_beta_geometric(300, REGULAR, age_range=(1, 730), horizon=90, seed=seed)
        big = simulate_beta_geometric(
            3000, REGULAR, age_range=(1, 730), horizon=90, seed=1000 + seed
        )
        yield "regular buyers (sim)", small, big
    master = labelled_rfm(load_cdnow(), "1997-09-30", 273)
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(len(master))
        yield "CDNOW 300 subsample", master.iloc[order[:300]], master.iloc[order[300:]]
    big = {
        a: labelled_rfm(generate_demo_data(5000, seed=1000).transactions, a, 90)
        for a in DEMO_AS_OFS
    }
    for seed in range(10):
        demo = generate_demo_data(300, seed=seed).transactions
        for as_of in DEMO_AS_OFS:
            yield "demo 300 files", labelled_rfm(demo, as_of, 90), big[as_of]


def small_data_rows() -> list[dict]:
    stats: dict[tuple, list] = {}
    for case, small, big in small_data_cases():
        for name in ("BG/NBD", "MBG/NBD"):
            for penalizer in (0.0, "auto"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = PURCHASE[name](penalizer=penalizer).fit(*rfm(small))
                    predictions = model.expected_purchases(90.0, *rfm(small))
                stats.setdefault((case, name, str(penalizer)), []).append(
                    (
                        not model.converged_,
                        model.params_["r"],
                        not np.all(np.isfinite(predictions)),
                        model.log_likelihood(*rfm(big)).mean(),
                    )
                )
    rows = []
    for (case, name, penalizer), values in stats.items():
        a = np.array(values, dtype=float)
        rows.append(
            {
                "data": case,
                "model": name,
                "penalizer": penalizer,
                "fits": len(a),
                "not converged": int(a[:, 0].sum()),
                "max r": a[:, 1].max(),
                "non-finite": int(a[:, 2].sum()),
                "held-out LL": a[:, 3].mean(),
            }
        )
    return rows


# ------------------------------------------------------------- 3. held-out models
def calibration(p_silent: np.ndarray, churned: np.ndarray) -> dict[str, float]:
    bins = np.array_split(np.argsort(p_silent), 10)
    ece = sum(len(b) * abs(p_silent[b].mean() - churned[b].mean()) for b in bins) / len(churned)
    return {
        "Brier": float(np.mean((p_silent - churned) ** 2)),
        "ECE": float(ece),
        "bias": float(p_silent.mean() - churned.mean()),
    }


def heldout_rows(sets: dict[str, tuple[pd.DataFrame, int]]) -> list[dict]:
    rows = []
    for data_name, (frame, horizon) in sets.items():
        fold = np.random.default_rng(0).random(len(frame)) < 0.5
        churned = frame["churned"].to_numpy(float)
        one_time = frame["frequency"].to_numpy() == 0
        # One-time buyers silent for over a year where the data reach that far.
        long_silent = one_time & (frame["T"].to_numpy() > 365)
        focus = long_silent if long_silent.sum() >= 50 else one_time
        for name, cls in PURCHASE.items():
            ll, alive, silent, purchases = (np.empty(len(frame)) for _ in range(4))
            for train in (fold, ~fold):
                model: PurchaseModel = cls().fit(*rfm(frame[train]))
                test = rfm(frame[~train])
                ll[~train] = model.log_likelihood(*test)
                alive[~train] = model.p_alive(*test)
                silent[~train] = model.prob_no_purchase(float(horizon), *test)
                purchases[~train] = model.expected_purchases(float(horizon), *test)
            rows.append(
                {
                    "data": data_name,
                    "model": name,
                    "held-out LL": ll.mean(),
                    **calibration(silent, churned),
                    "purchases pred/actual": purchases.sum() / frame["future_purchases"].sum(),
                    "one-time group": "silent >1y" if focus is long_silent else "all",
                    "obs P(buy)": 1 - churned[focus].mean(),
                    "pred P(buy)": 1 - silent[focus].mean(),
                    "mean P(alive)": alive[focus].mean(),
                    "P(alive)>=0.99": float((alive[one_time] >= 0.99).mean()),
                }
            )
    return rows


# ---------------------------------------------------------------- 4. penalty study
RULES: dict[str, Callable[[int], float]] = {
    "0": lambda n: 0.0,
    "1e-4": lambda n: 1e-4,
    "3e-4": lambda n: 3e-4,
    "1e-3": lambda n: 1e-3,
    "0.03/n": lambda n: 0.03 / n,
    "0.1/n": lambda n: 0.1 / n,
    "0.3/n": lambda n: 0.3 / n,
}


def penalty_rows(sets: dict[str, tuple[pd.DataFrame, int]]) -> list[dict]:
    """Held-out LL regret (best rule's mean LL per customer minus the rule's) per setting."""
    pools = {"CDNOW": sets["CDNOW master"][0], "demo": sets["demo 5k 2025-06-30"][0]}
    rows = []
    for pool_name, pool in pools.items():
        repeat = pool[(pool["frequency"] > 0) & (pool["monetary_value"] > 0)]
        for n in (30, 100, 300, 1000, len(pool) // 2):
            rows.append(_regret(f"MBG/NBD {pool_name} n={n}", pool, n, _purchase_ll))
        for n in (20, 50, 150, 500, len(repeat) // 2):
            rows.append(_regret(f"Gamma-Gamma {pool_name} n={n}", repeat, n, _spend_ll))
    return rows


def _purchase_ll(penalizer: float, fit: pd.DataFrame, test: pd.DataFrame) -> tuple[float, bool]:
    model = ModifiedBetaGeoModel(penalizer=penalizer).fit(*rfm(fit))
    return model.log_likelihood(*rfm(test)).mean(), model.converged_


def _spend_ll(penalizer: float, fit: pd.DataFrame, test: pd.DataFrame) -> tuple[float, bool]:
    model = GammaGammaModel(penalizer=penalizer).fit(fit["frequency"], fit["monetary_value"])
    return np.nanmean(
        model.log_likelihood(test["frequency"], test["monetary_value"])
    ), model.converged_


def _regret(setting: str, pool: pd.DataFrame, n: int, score: Callable) -> dict:
    reps = 12 if n < len(pool) // 3 else 2
    results = {rule: [] for rule in RULES}
    unconverged = 0
    for seed in range(reps):
        order = np.random.default_rng(seed).permutation(len(pool))
        fit, test = pool.iloc[order[:n]], pool.iloc[order[n:]]
        for rule, penalty in RULES.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ll, converged = score(penalty(n), fit, test)
            results[rule].append(ll)
            unconverged += rule == "0" and not converged
    means = {rule: float(np.mean(v)) for rule, v in results.items()}
    best = max(means.values())
    return {
        "setting": setting,
        **{r: best - m for r, m in means.items()},
        "unconverged (0)": unconverged,
    }


# ----------------------------------------------------------------------- 5. speed
def speed_rows() -> list[dict]:
    params = {"r": 0.6, "alpha": 25.0, "a": 0.9, "b": 2.5}
    sim = simulate_beta_geometric(
        100_000, params, age_range=(1, 730), horizon=90, seed=1, first_purchase_dropout=True
    )
    data = rfm(sim)
    contenders: dict[str, Callable] = {n: (lambda c=c: c().fit(*data)) for n, c in PURCHASE.items()}
    try:
        import lifetimes

        contenders["lifetimes BG/NBD"] = lambda: lifetimes.BetaGeoFitter().fit(*data)
        contenders["lifetimes MBG/NBD"] = lambda: lifetimes.ModifiedBetaGeoFitter().fit(*data)
    except ImportError:
        pass
    rows = []
    for name, fit in contenders.items():
        seconds = []
        for _ in range(1 if "Pareto" in name else 3):
            watch = Stopwatch()
            with watch.running(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit()
            seconds.append(watch.seconds)
        rows.append({"fit": name, "customers": len(sim), "seconds (best)": min(seconds)})
    reference = next(r["seconds (best)"] for r in rows if r["fit"] == "BG/NBD")
    for row in rows:
        row["x BG/NBD"] = row["seconds (best)"] / reference
    return rows


def show(rows: list[dict], title: str, markdown: bool, precision: int = 4) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    print_table(rows, columns, title=title, precision=precision)
    if markdown:
        print(markdown_table(rows, columns, precision=precision) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    parser.add_argument("--penalty-study", action="store_true", help="run the ~10 min study")
    args = parser.parse_args()
    print_machine()
    show(parity_rows(), "CDNOW 1/10 sample, penalizer 0 (weeks)", args.markdown)
    show(small_data_rows(), "300-customer files: no penalty vs auto", args.markdown)
    sets = datasets()
    show(heldout_rows(sets), "Held-out comparison (2-fold, default penalty)", args.markdown)
    if args.penalty_study:
        show(penalty_rows(sets), "Penalty rules: held-out LL regret per customer", args.markdown)
    show(speed_rows(), "Fit speed, 100k simulated customers", args.markdown, precision=3)


if __name__ == "__main__":
    main()
