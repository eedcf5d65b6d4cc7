"""Model quality where people act on the numbers: calibration, totals, intervals, dates.

Every model is trained at an as-of day ``D`` on the data up to ``D`` only, scores the
customers known at ``D``, and is judged on what they did in ``(D, D + H]`` (data the
models never saw; the demo data are generated to mid-2026 so every as-of has outcomes).

Tables:

1. **As-of dates across the year** (demo data, default 4 windows): churn ECE and Brier of
   the model and of BG/NBD, CLV Gini, Spearman and total ratio (model and baseline),
   coverage of ``[p10, p90]``, p10 > 0 where churn < 0.05, next-purchase MAE of the
   model against "last purchase + own mean gap" and "as-of + H/2" (on the buyers all
   three date), prospects' predicted vs observed first-purchase rate, and customers shown
   both surely alive (p_alive >= 0.999) and surely churning (churn >= 0.99).
2. **Window settings** at one as-of (3, 4, 6 windows H apart, 6 windows 30 days apart).
3. **CDNOW** (as-of 1997-12-31, H = 182, the benchmark's window protocol), the same
   columns, then the ranking table of ``benchmarks/cdnow.py`` (fidelite against
   lifetimes, pymc-marketing and a recency heuristic, scored on the same customers).
4. **Gate**: an identical retrain, and a retrain one horizon later.
5. **Level rule** per row: the same-season level rule replayed on the known windows
   (``WindowLevels.backtest``, logged as ``*_level_backtest_*``: windows replayed and mean
   error on the link scale, "untested" when none) next to how far the level used at D
   was from the one the outcomes needed (``miss``: the log-odds or log shift that would
   have matched the observed churn rate or the buyers' total spend; outcomes, so a
   measurement only) and whether the run warned.
6. **No same-season window** (CDNOW's protocol, H = 182 and 4 windows 28 days apart, at
   four as-of days in the demo business's first year): churn ECE and total ratio with the
   level of the window nearest in time of year (shipped) and with the newest window's.
7. **Targets** (issue 10): each target with the range measured above and whether it holds.

"level from" names the window whose season set the scored window's churn/spend level
(``*``: none is of the same season, so the window nearest in time of year, see
``training.levels``; the run warned). ``expected_next_purchase`` is the median day of the
next purchase given a purchase within H; "MAE uncond. median" is a diagnostic: the former
definition (the day P(purchase by t) itself reaches 1/2), on the same rows as "MAE next".

Usage::

    python benchmarks/model_quality.py [--customers 20000] [--seed 7]
        [--as-of 2025-03-31,2025-06-30,2025-09-30,2025-12-31,2026-03-31] [--skip-cdnow]
        [--skip-pymc] [--skip-windows] [--skip-gate] [--skip-first-year] [--n-jobs 1]
"""

from __future__ import annotations

import os

# A launcher: sleeping OpenMP waiters before anything loads LightGBM (see fidelite.cli).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, print_machine

from fidelite.features.demo import generate_demo_data
from fidelite.features.inputs import Inputs, load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.labels import make_labels
from fidelite.training.levels import LEVEL_ERROR_WARN, log_ratio, logit_shift
from fidelite.training.metrics import churn_metrics, clv_metrics, next_purchase_metrics
from fidelite.training.train import TrainResult, train

AS_OFS = ("2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31", "2026-03-31")
WINDOW_SETTINGS = {"3 x H": (3, None), "4 x H": (4, None), "6 x H": (6, None), "6 x 30d": (6, 30)}
QUALITY_COLUMNS = (
    "data",
    "ECE",
    "ECE BG/NBD",
    "Brier",
    "Brier BG/NBD",
    "Gini",
    "Spearman",
    "total ratio",
    "total BG/NBD",
    "coverage",
    "p10>0 (churn<.05)",
    "MAE next (d)",
    "MAE uncond. median (d)",
    "MAE rhythm (d)",
    "MAE H/2 (d)",
    "n dated",
    "prospects pred/obs",
    "alive & churning",
    "level from",
)
PEER_COLUMNS = (
    "model",
    "ROC-AUC (buy)",
    "PR-AUC (buy)",
    "Gini (spend)",
    "Spearman (spend)",
    "predicted / actual total",
)
PEER_METRICS = PEER_COLUMNS[1:5]
TARGET_COLUMNS = ("target", "measured", "met")
LEVEL_COLUMNS = (
    "data",
    "churn backtest",
    "churn miss at D",
    "spend backtest",
    "spend miss at D",
    "warned",
)


GATE_COLUMNS = ("run", "as-of", "promoted", "reason")
FIRST_YEAR_AS_OFS = ("2024-12-31", "2025-01-31", "2025-02-28", "2025-03-28")
FIRST_YEAR_COLUMNS = (
    "data",
    "level from",
    "newest window",
    "ECE",
    "ECE newest",
    "total ratio",
    "total newest",
)


def _progress(row: dict[str, Any]) -> None:
    """One finished row as a Markdown line (long runs show their results as they go)."""
    print(markdown_table([row], QUALITY_COLUMNS).splitlines()[-1], flush=True)


def _scored(
    result: TrainResult, data: Inputs, as_of: str, horizon: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scores at ``as_of`` joined with the outcomes over the ``horizon`` days after it
    (every scored customer), and the features they were scored from."""
    model = result.model
    known = load_inputs(data.transactions, data.events, data.customers, as_of=as_of)
    features = model.build_features(known)
    scores = model.predict(None, features, params={"as_of": as_of, "reasons": False})
    scores = scores.set_index("customer_id")
    labels = make_labels(
        data.transactions, as_of=as_of, horizon_days=horizon, customers_index=scores.index
    )
    joined = scores.join(labels).join(features[["ipt_mean_days", "days_since_last_purchase"]])
    return joined, features


def evaluate(result: TrainResult, data: Inputs, as_of: str, horizon: int) -> dict[str, Any]:
    """Scores at ``as_of`` judged on the ``horizon`` days after it."""
    model = result.model
    joined, features = _scored(result, data, as_of, horizon)
    ok = joined[joined["status"] == "ok"]
    baseline = model.baseline.predict(features.loc[ok.index])
    churn = churn_metrics(ok["churned"], ok["churn_probability"])
    base_churn = churn_metrics(ok["churned"], baseline["baseline_churn_probability"])
    clv = clv_metrics(ok["future_spend"], ok["predicted_clv"])
    base_clv = clv_metrics(ok["future_spend"], baseline["baseline_clv"])
    inside = (ok["future_spend"] >= ok["predicted_clv_p10"]) & (
        ok["future_spend"] <= ok["predicted_clv_p90"]
    )
    likely = ok["churn_probability"] < 0.05
    days = (ok["expected_next_purchase"] - pd.Timestamp(as_of)).dt.days
    timing = next_purchase_metrics(ok.assign(next_purchase_days=days), horizon)
    former = _unconditional_median_days(model, features.loc[ok.index], ok["churn_probability"])
    former_timing = next_purchase_metrics(
        ok.assign(next_purchase_days=np.where(days.isna(), np.nan, former)), horizon
    )
    prospects = joined[joined["status"] == "prospect"]
    return {
        "ECE": churn["expected_calibration_error"],
        "ECE BG/NBD": base_churn["expected_calibration_error"],
        "Brier": churn["brier"],
        "Brier BG/NBD": base_churn["brier"],
        "Gini": clv["normalized_gini"],
        "Spearman": clv["spearman"],
        "total ratio": clv["total_ratio"],
        "total BG/NBD": base_clv["total_ratio"],
        "coverage": float(inside.mean()),
        "p10>0 (churn<.05)": float((ok.loc[likely, "predicted_clv_p10"] > 0).mean())
        if likely.any()
        else float("nan"),
        "MAE next (d)": timing["mae_days"],
        "MAE uncond. median (d)": former_timing["mae_days"],
        "MAE rhythm (d)": timing["mae_rhythm_days"],
        "MAE H/2 (d)": timing["mae_constant_days"],
        "n dated": timing["n_compared"],
        "prospects pred/obs": _prospect_ratio(prospects),
        "alive & churning": float(
            ((ok["p_alive"] >= 0.999) & (ok["churn_probability"] >= 0.99)).mean()
        ),
        "level from": _level_sources(result, as_of),
        **_level_check(result, ok),
    }


def _level_check(result: TrainResult, ok: pd.DataFrame) -> dict[str, Any]:
    """The level rule's backtest (logged by the run) next to its miss at D (outcomes)."""
    metrics = result.metrics
    p = ok["churn_probability"].to_numpy(dtype=float).clip(1e-9, 1 - 1e-9)
    bought = ok["churned"].to_numpy() == 0
    misses = {
        "churn": logit_shift(np.log(p / (1 - p)), float(ok["churned"].mean())),
        "spend": log_ratio(
            np.log(ok["value_if_retained"].to_numpy(dtype=float)[bought].clip(1e-9)),
            ok["future_spend"].to_numpy(dtype=float)[bought],
        ),
    }
    row: dict[str, Any] = {}
    warned = []
    for name, miss in misses.items():
        n = int(metrics.get(f"{name}_level_backtest_windows", 0))
        error = metrics.get(f"{name}_level_backtest_error", float("nan"))
        row[f"{name} backtest"] = f"{error:.3f} ({n} w)" if n else "untested"
        row[f"{name} miss at D"] = f"{miss:+.3f}"
        # The run's warning (training.levels.LevelBacktest.note), from the same metrics.
        if not n or error > LEVEL_ERROR_WARN:
            warned.append(name)
    row["warned"] = ", ".join(warned) or "no"
    return row


def _level_sources(result: TrainResult, as_of: str) -> str:
    """Cutoff of the window whose level each model uses at ``as_of`` (churn/spend)."""
    hurdle = result.model.purchasers
    sources = []
    for model in (hurdle.churn, hurdle.spend):
        choice = model.level_for(as_of)
        sources.append(f"{choice.source.date()}{'' if choice.comparable else '*'}")
    return " / ".join(sources) if sources[0] != sources[1] else sources[0]


def _unconditional_median_days(model: Any, features: pd.DataFrame, churn: pd.Series) -> np.ndarray:
    """Days to where P(purchase by t) itself reaches 1/2, shape (n,); NaN where it never does.

    The definition ``expected_next_purchase`` had before the conditional median
    (:func:`~fidelite.training.timing.median_days`): P(purchase within H) times the
    hazard's timing given a purchase, which for P(purchase within H) just above 1/2 lies
    near H. A diagnostic, scored on the same rows.
    """
    hurdle = model.purchasers
    X = hurdle.encoder.transform_array(model._augment(features))
    cdf = hurdle.timing.purchase_cdf(X)
    shape = cdf / np.maximum(cdf[:, -1:], 1e-12)
    by_end = (1.0 - np.asarray(churn, dtype=float))[:, None] * shape
    edges = hurdle.timing.edges_
    # Interpolated on the bin ends as median_days does, on the unconditional curve.
    days = np.array([np.interp(0.5, np.r_[0.0, row], edges) for row in by_end])
    return np.where(by_end[:, -1] >= 0.5, np.clip(np.ceil(days), 1, edges[-1]), np.nan)


def _prospect_ratio(prospects: pd.DataFrame) -> str:
    if prospects.empty:
        return "n/a"
    predicted = (1 - prospects["churn_probability"]).mean()
    observed = (1 - prospects["churned"]).mean()
    return f"{predicted:.2f}/{observed:.2f}"


def _train(data: Inputs, as_of: str, config: TrainConfig) -> TrainResult:
    return train(load_inputs(data.transactions, data.events, data.customers, as_of=as_of), config)


def as_of_rows(data: Inputs, as_ofs: list[str], store: str, n_jobs: int) -> list[dict]:
    rows = []
    for as_of in as_ofs:
        config = TrainConfig(tracking_uri=store, register=False, n_jobs=n_jobs)
        result = _train(data, as_of, config)
        rows.append({"data": f"demo, as-of {as_of}", **evaluate(result, data, as_of, 90)})
        _progress(rows[-1])
    return rows


def window_rows(data: Inputs, as_of: str, store: str, n_jobs: int) -> list[dict]:
    rows = []
    for name, (n_windows, step) in WINDOW_SETTINGS.items():
        config = TrainConfig(
            n_windows=n_windows, step_days=step, tracking_uri=store, register=False, n_jobs=n_jobs
        )
        result = _train(data, as_of, config)
        row = {"data": f"demo {as_of}, {name}", **evaluate(result, data, as_of, 90)}
        rows.append(row)
        _progress(row)
    return rows


def first_year_rows(data: Inputs, store: str, n_jobs: int) -> list[dict]:
    """CDNOW's protocol on the demo data's first year: no window of the as-of day's season.

    H = 182 days and 4 windows 28 days apart (``benchmarks/cdnow.py``) at as-of days
    before the business is a year old, so the level comes from a window of another
    season (``training.levels``: the nearest in time of year). Each row also gives what
    the newest window's level (the rule before session 5) would have scored: a level is a
    constant on the link scale (log-odds, log), so those scores follow exactly from the
    shipped ones.
    """
    rows = []
    for as_of in FIRST_YEAR_AS_OFS:
        config = TrainConfig(
            horizon_days=182,
            n_windows=4,
            step_days=28,
            min_history_days=91,
            tracking_uri=store,
            register=False,
            n_jobs=n_jobs,
        )
        result = _train(data, as_of, config)
        joined, _ = _scored(result, data, as_of, 182)
        ok = joined[joined["status"] == "ok"]
        hurdle = result.model.purchasers
        churn, spend = hurdle.churn, hurdle.spend
        used = (churn.level_for(as_of), spend.level_for(as_of))
        p = ok["churn_probability"].to_numpy(dtype=float).clip(1e-12, 1 - 1e-12)
        logit = np.log(p / (1 - p)) - used[0].offset + churn.levels_.offsets[-1]
        p_newest = 1.0 / (1.0 + np.exp(-logit))
        value = ok["value_if_retained"].to_numpy(dtype=float)
        value_newest = value * np.exp(spend.levels_.offsets[-1] - used[1].offset)
        newest = churn_metrics(ok["churned"], p_newest)["expected_calibration_error"]
        total_newest = clv_metrics(ok["future_spend"], (1 - p_newest) * value_newest)
        row = {
            "data": f"demo, as-of {as_of}, H=182, 4 x 28d",
            "level from": _level_sources(result, as_of),
            "newest window": str(churn.levels_.cutoffs[-1].date()),
            "ECE": churn_metrics(ok["churned"], ok["churn_probability"])[
                "expected_calibration_error"
            ],
            "ECE newest": newest,
            "total ratio": clv_metrics(ok["future_spend"], ok["predicted_clv"])["total_ratio"],
            "total newest": total_newest["total_ratio"],
        }
        rows.append(row)
        print(markdown_table([row], FIRST_YEAR_COLUMNS).splitlines()[-1], flush=True)
    return rows


def cdnow_row(store: str, n_jobs: int) -> dict:
    import cdnow

    transactions = cdnow.load_cdnow()
    data = Inputs(transactions, pd.Timestamp("1998-06-30"))
    config = TrainConfig(
        horizon_days=cdnow.HORIZON_DAYS,
        tracking_uri=store,
        register=False,
        n_jobs=n_jobs,
        **cdnow.CDNOW_WINDOWS,
    )
    result = _train(data, cdnow.AS_OF, config)
    row = {
        "data": "CDNOW 1997-12-31, H=182",
        **evaluate(result, data, cdnow.AS_OF, cdnow.HORIZON_DAYS),
    }
    _progress(row)
    return row


def peer_rows(skip_pymc: bool) -> tuple[list[dict], list[str]]:
    """``benchmarks/cdnow.py``'s contenders on CDNOW (fidelite trained there once more)."""
    import cdnow

    return cdnow.run(skip_pymc=skip_pymc)


def _span(rows: list[dict], column: str) -> tuple[float, float]:
    values = [float(r[column]) for r in rows if r.get(column) == r.get(column)]
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def _target(name: str, rows: list[dict], column: str, low: float, high: float) -> dict:
    lo, hi = _span(rows, column)
    return {
        "target": name,
        "measured": f"{lo:.3f} .. {hi:.3f} ({len(rows)} rows)",
        "met": bool(rows) and low <= lo and hi <= high,
    }


def target_rows(
    demo: list[dict], windows: list[dict], cdnow: list[dict], peers: list[dict]
) -> list[dict]:
    """Each issue 10 target against the rows measured above."""
    rows = [
        _target("churn ECE <= 0.02, every demo as-of", demo, "ECE", 0.0, 0.02),
        _target("churn ECE <= 0.02, CDNOW", cdnow, "ECE", 0.0, 0.02),
        _target("CLV total within +/-10%, window settings", windows, "total ratio", 0.9, 1.1),
        _target("CLV total within +/-10%, every demo as-of", demo, "total ratio", 0.9, 1.1),
        _target(
            "p10-p90 coverage 78-82%, demo and CDNOW",
            demo + windows + cdnow,
            "coverage",
            0.78,
            0.82,
        ),
    ]
    for name, group in (("demo", demo + windows), ("CDNOW", cdnow)):
        if not group:  # not measured in this run (e.g. --skip-cdnow)
            continue
        margins = [min(r["MAE rhythm (d)"], r["MAE H/2 (d)"]) - r["MAE next (d)"] for r in group]
        rows.append(
            {
                "target": f"next-purchase MAE below both baselines, {name}",
                "measured": "margin " + " .. ".join(f"{m:.1f} d" for m in _ends(margins)),
                "met": bool(margins) and min(margins) > 0,
            }
        )
    if peers:
        ours = next(r for r in peers if r["model"].startswith("fidelite (LightGBM)"))
        others = [r for r in peers if r["model"].startswith(("lifetimes", "pymc-marketing"))]
        gaps = {m: ours[m] - max(r[m] for r in others if m in r) for m in PEER_METRICS if m in ours}
        rows.append(
            {
                "target": "CDNOW: ahead of lifetimes and pymc-marketing (4 metrics)",
                "measured": ", ".join(f"{m.split()[0]} {g:+.3f}" for m, g in gaps.items()),
                "met": len(gaps) == len(PEER_METRICS) and min(gaps.values()) > 0,
            }
        )
    return rows


def _ends(values: list[float]) -> list[float]:
    return [min(values), max(values)] if values else []


def gate_rows(data: Inputs, as_of: str, store: str, n_jobs: int) -> list[dict]:
    """Decisions of the gate: first model, identical retrain, retrain one horizon later."""
    later = str((pd.Timestamp(as_of) + pd.Timedelta(days=90)).date())
    config = TrainConfig(tracking_uri=store, promote=True, n_jobs=n_jobs, experiment="gate")
    rows = []
    for label, day in (
        ("first model", as_of),
        ("identical retrain", as_of),
        ("90 days later", later),
    ):
        result = _train(data, day, config)
        rows.append(
            {
                "run": label,
                "as-of": day,
                "promoted": result.gate.promoted,
                "reason": result.gate.reason,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default=",".join(AS_OFS))
    parser.add_argument("--windows-as-of", default="2025-09-30")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--skip-cdnow", action="store_true")
    parser.add_argument("--skip-pymc", action="store_true", help="CDNOW peers without pymc")
    parser.add_argument("--skip-windows", action="store_true")
    parser.add_argument("--skip-gate", action="store_true")
    parser.add_argument(
        "--skip-first-year", action="store_true", help="no CDNOW-protocol rows on the demo"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print_machine()
    _print_load("start")
    demo = generate_demo_data(args.customers, seed=args.seed, end="2026-06-30")
    data = Inputs(demo.transactions, pd.Timestamp("2026-06-30"), demo.events, demo.customers)
    tables: dict[str, tuple[list[dict], tuple[str, ...]]] = {}
    windows: list[dict] = []
    cdnow: list[dict] = []
    peers: list[dict] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fidelite-quality-") as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        demo_rows = as_of_rows(data, args.as_of.split(","), store, args.n_jobs)
        if not args.skip_windows:
            windows = window_rows(data, args.windows_as_of, store, args.n_jobs)
        first_year = [] if args.skip_first_year else first_year_rows(data, store, args.n_jobs)
        if not args.skip_cdnow:
            cdnow = [cdnow_row(store, args.n_jobs)]
            peers, notes = peer_rows(args.skip_pymc)
        tables["quality"] = (demo_rows + windows + cdnow, QUALITY_COLUMNS)
        tables["level rule: backtest on the known windows vs miss at D"] = (
            demo_rows + windows + cdnow,
            LEVEL_COLUMNS,
        )
        if first_year:
            name = "no same-season window: CDNOW's protocol on the demo's first year"
            tables[name] = (first_year, FIRST_YEAR_COLUMNS)
        if peers:
            tables["CDNOW against peers (benchmarks/cdnow.py)"] = (peers, PEER_COLUMNS)
        if not args.skip_gate:
            gate = gate_rows(data, args.windows_as_of, store, args.n_jobs)
            tables["gate"] = (gate, GATE_COLUMNS)
    tables["targets (issue 10)"] = (target_rows(demo_rows, windows, cdnow, peers), TARGET_COLUMNS)
    for name, (rows, columns) in tables.items():
        print(f"\nmodel quality: {name}\n")
        print(markdown_table(rows, columns))
    for note in notes:
        print(f"- {note}")
    _print_load("end")


def _print_load(when: str) -> None:
    """The machine is shared: its load average beside the numbers (1, 5, 15 minutes)."""
    print(f"load average at {when}: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
