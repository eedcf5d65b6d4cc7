"""CPU and wall time of the service's in-process scoring, ``FideliteModel.predict_arrays``.

``/predict`` scores feature rows through ``predict_arrays`` (columns in, score columns
out). This times, in one process and without HTTP, one customer and 10,000 rows:

* **per stage**, with the current code: input checks, BG/NBD + Gamma-Gamma baseline,
  encoding, the churn trees' compiled pass (their score and the reasons' contributions),
  spend, intervals, hazard (next purchase), reasons as JSON, score columns; next to them the
  LightGBM steps the compiled trees (``training.forest``) replaced (the churn leaf pass and
  the sparse contribution product, the spend booster, the dated customers' customer-bin
  rows through the hazard booster, the phrases and JSON lists built per row), so each
  stage's gain is read in one run;
* **totals**, ``predict_arrays`` with and without reasons, for the current code and,
  with ``--before REV``, for the code of git revision ``REV`` (its ``training``,
  ``features``, ``serving``, ``reports`` and ``fidelite`` packages extracted to a
  temporary directory and put first on ``PYTHONPATH`` in a child process; both time
  the same pickled model, alternately, so load changes hit both alike).

Protocol as ``benchmarks/serving_load.py``: demo data (``--customers`` customers, seed
5), ``train`` with the default configuration at as-of 2025-09-30 into a throw-away
MLflow store (``--campaigns``: with the demo's campaigns, so the uplift columns are
scored too), the purchasers' feature rows as the service holds them (floats, objects
with None for missing). One row: the first purchaser (per stage: the first purchaser with
a next-purchase day, so the hazard stages do their one row's work), median over
``--repeats`` batches of ``--calls`` calls; 10,000 rows: the first 2,000 purchasers tiled
with distinct ids (what serving_load.py posts), median of ``--repeats`` calls. CPU is
``time.process_time`` (all threads: the compiled trees split batches of 2,048+ rows
over two threads, LightGBM predicts batches of 256+ rows on every core), wall is
``perf_counter``. ``--model`` keeps the trained model in a pickle.

Usage::

    python benchmarks/predict_arrays_speed.py --model /tmp/pa-model.pkl --before e180f5b
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    code_at_revision,
    machine_description,
    markdown_table,
    print_table,
    serving_columns,
    trained_demo_model,
)

AS_OF = "2025-09-30"
BIG = 10_000


def inputs(model, features: pd.DataFrame) -> tuple[dict, dict, dict]:
    """Columns as serving_load.py sends them: its one purchaser (the first), the first
    purchaser who gets a next-purchase day (P(purchase within H) >= 1/2: the hazard is
    scored), 10,000 rows."""
    bought = features.loc[features["orders_total"] > 0]
    head = bought.head(2000)
    many = head.iloc[np.arange(BIG) % len(head)].copy()
    many.index = pd.Index([f"b{i}" for i in range(BIG)], name="customer_id")
    scored = model.predict_arrays(serving_columns(head), reasons=False)
    dated = int(np.flatnonzero(scored["churn_probability"] <= 0.5)[0])
    return (
        serving_columns(bought.iloc[[0]]),
        serving_columns(head.iloc[[dated]]),
        serving_columns(many),
    )


def _time(call: Callable[[], object], calls: int, repeats: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds per call over ``repeats`` batches of ``calls``."""
    call()  # warm caches (attribution tables, split boosters, parsed day)
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            call()
        cpu.append((time.process_time() - c0) / calls * 1e3)
        wall.append((time.perf_counter() - w0) / calls * 1e3)
    return statistics.median(cpu), statistics.median(wall)


def stage_calls(model, columns: dict, day: pd.Timestamp) -> list[tuple[str, Callable]]:
    """(name, call) of each stage of ``predict_arrays`` on purchasers, inputs precomputed;
    names starting with "old:" are the steps the current code no longer takes."""
    from fidelite.training.arrays import feature_columns
    from fidelite.training.baseline.model import RFM_COLUMNS
    from fidelite.training.model import REQUIRED_INPUT_COLUMNS
    from fidelite.training.reasons import top_reasons, top_reasons_json
    from fidelite.training.scoreframe import json_lists

    hurdle = model.purchasers
    ids, cols, n = feature_columns(columns, REQUIRED_INPUT_COLUMNS)
    rfm = [np.asarray(cols[c], dtype=float) for c in RFM_COLUMNS]
    augmented = {**cols, **model.baseline.predict_arrays(*rfm)}
    X = hurdle.encoder.transform_columns(augmented, n)
    attribution = model.attribution("purchasers")
    booster = attribution.booster_
    trees = attribution._num_iteration
    raw, contributions = attribution.score_and_contributions(X)
    leaves = booster.predict(X, pred_leaf=True, num_iteration=trees) + attribution.leaf_offsets_
    p_none = hurdle.churn.predict_mean(X, as_of=day, raw_score=raw)
    spend = hurdle.spend.predict(X, as_of=day)
    names = hurdle.encoder.feature_names_
    phrases = top_reasons(contributions, augmented, top_k=3, feature_names=names)
    base = {c: augmented[c] for c in model.baseline_columns}
    values = model._purchaser_values(base, X, day, raw)
    timing = hurdle.timing
    dated = (1.0 - p_none) >= 0.5
    spend_booster = hurdle.spend.estimator_.booster_
    return [
        ("input checks", lambda: feature_columns(columns, REQUIRED_INPUT_COLUMNS)),
        ("baseline (BG/NBD + GG)", lambda: model.baseline.predict_arrays(*rfm)),
        ("encode", lambda: hurdle.encoder.transform_columns(augmented, n)),
        ("churn score + contributions", lambda: attribution.score_and_contributions(X)),
        (
            "old: churn leaf pass (LightGBM pred_leaf)",
            lambda: booster.predict(X, pred_leaf=True, num_iteration=trees),
        ),
        ("old: contributions, sparse product", lambda: _sparse_contributions(attribution, leaves)),
        (
            "churn probability from the raw score",
            lambda: hurdle.churn.predict_mean(X, raw_score=raw),
        ),
        ("spend", lambda: hurdle.spend.predict(X, as_of=day)),
        (
            "old: spend trees (LightGBM)",
            lambda: spend_booster.predict(
                X, raw_score=True, num_iteration=hurdle.spend.best_iteration_
            ),
        ),
        ("intervals", lambda: hurdle.intervals.predict(p_none, spend)),
        ("hazard, dated rows", lambda: timing.next_purchase_days(X, 1.0 - p_none)),
        (
            "old: hazard, dated rows' customer-bin rows (LightGBM)",
            lambda: timing._cdf(X[dated]) if dated.any() else None,
        ),
        # What predict_arrays runs: each distinct phrase rendered and quoted once.
        (
            "reasons as JSON (top_reasons_json)",
            lambda: top_reasons_json(contributions, augmented, 3, names),
        ),
        (
            "old: reason phrases (top_reasons)",
            lambda: top_reasons(contributions, augmented, feature_names=names),
        ),
        ("old: reasons as JSON (json_lists)", lambda: json_lists(phrases)),
        ("score columns", _score_columns(model, ids, cols, values, day)),
    ]


def _score_columns(model, ids, cols, values, day) -> Callable[[], dict]:
    """``score_arrays`` of purchasers' model outputs: percentiles, dates, copied columns."""
    from fidelite.training.arrays import _objects
    from fidelite.training.scoreframe import CORE_COLUMNS, PASSTHROUGH_COLUMNS, score_arrays

    core = {col: values[col] for col in CORE_COLUMNS}
    status = np.full(len(ids), "ok", dtype=object)
    text = np.full(len(ids), "[]", dtype=object)
    return lambda: score_arrays(
        ids,
        {col: _objects(cols[col]) for col in PASSTHROUGH_COLUMNS if col in cols},
        status,
        core,
        text,
        day=day,
        horizon_days=model.horizon_days,
        churn_reference=model.churn_reference,
    )


def _sparse_contributions(attribution, leaves: np.ndarray) -> np.ndarray:
    from scipy import sparse

    n, n_trees = leaves.shape
    reached = sparse.csr_matrix(
        (np.ones(leaves.size), leaves.ravel(), np.arange(0, leaves.size + 1, n_trees)),
        shape=(n, attribution.leaf_contributions_.shape[0]),
    )
    return (reached @ attribution.leaf_contributions_).toarray()


def totals(model, one: dict, dated: dict, many: dict, day, args) -> dict[str, list[float]]:
    """CPU and wall ms per ``predict_arrays`` call: 1 row, 10,000 rows; reasons on/off;
    one row of a customer with a next-purchase day."""
    call = lambda: model.predict_arrays(dated, as_of=day)  # noqa: E731
    out = {
        "predict_arrays, 1 customer with a next-purchase day": [
            *_time(call, args.calls, args.repeats),
            float("nan"),
            float("nan"),
        ]
    }
    for reasons in (True, False):
        small = _time(
            lambda r=reasons: model.predict_arrays(one, as_of=day, reasons=r),
            args.calls,
            args.repeats,
        )
        large = _time(
            lambda r=reasons: model.predict_arrays(many, as_of=day, reasons=r), 1, args.repeats
        )
        out[f"predict_arrays{'' if reasons else ', no reasons'}"] = [*small, *large]
    return out


def _child_totals(path: Path, args) -> dict[str, list[float]]:
    """:func:`totals` measured by a child process importing the code under ``path``."""
    command = [sys.executable, __file__, "--model", str(args.model), "--child"]
    command += ["--calls", str(args.calls), "--repeats", str(args.repeats)]
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.splitlines()[-1])
    code = measured.pop("code")
    if not code.startswith(str(path)):  # the child must not time this checkout again
        raise RuntimeError(f"the child imported {code}, not the code under {path}")
    return measured


COLUMNS = ("1 row CPU ms", "1 row wall ms", f"{BIG:,} rows CPU ms", f"{BIG:,} rows wall ms")


def _rows(named: dict[str, list[float]], label: str = "") -> list[dict]:
    return [
        {"step": f"{name}{label}", **dict(zip(COLUMNS, v, strict=True))}
        for name, v in named.items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--campaigns", action="store_true", help="train with campaigns")
    parser.add_argument("--model", type=Path, default=None, help="pickle of the trained model")
    parser.add_argument("--before", default=None, help="git revision to time too")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    model, features = trained_demo_model(
        args.customers, seed=5, as_of=AS_OF, campaigns=args.campaigns, path=args.model
    )
    day = pd.Timestamp(model.train_end)
    one, dated, many = inputs(model, features)
    if args.child:
        import fidelite.training.arrays as code

        print(json.dumps({"code": code.__file__, **totals(model, one, dated, many, day, args)}))
        return
    if args.before and args.model is None:
        parser.error("--before needs --model (both code versions time the same pickled model)")
    load = os.getloadavg()
    stages = {
        name: [*_time(call1, args.calls, args.repeats), *_time(call_n, 1, args.repeats)]
        for (name, call1), (_, call_n) in zip(
            # One row: the customer with a next-purchase day, so that the hazard stages
            # time one row's work (the first purchaser has none: they would time nothing).
            stage_calls(model, dated, day),
            stage_calls(model, many, day),
            strict=True,
        )
    }
    rows = _rows(totals(model, one, dated, many, day, args), " (this code)")
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            path = code_at_revision(args.before, Path(tmp))
            rows += _rows(_child_totals(path, args), f" ({args.before})")
            rows += _rows(totals(model, one, dated, many, day, args), " (this code, again)")
    print(machine_description())
    print(
        f"load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
        f"model trained at {day.date()}, uplift {'yes' if model.uplift is not None else 'no'}"
    )
    for title, table in (
        ("per stage, purchasers (1 row: the one with a next-purchase day)", _rows(stages)),
        ("predict_arrays per call", rows),
    ):
        print_table(table, ["step", *COLUMNS], title=f"{title} (median)")
        if args.markdown:
            print(markdown_table(table, ["step", *COLUMNS]))


if __name__ == "__main__":
    main()
