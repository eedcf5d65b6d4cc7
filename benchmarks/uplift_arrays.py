"""CPU per ``predict_arrays`` call of a model trained with campaigns, in-process.

The HTTP service scores ``/predict`` through ``FideliteModel.predict_arrays`` (feature
columns in, score columns out). A model trained with ``--campaigns`` (what ``make run``
serves) also computes the uplift columns; this measures what they add, on one customer
and on 10,000 rows, by timing in one process:

* ``without uplift``: the same model with its uplift component removed (what a model
  trained without campaigns costs);
* ``with uplift``: ``predict_arrays`` as the service calls it;
* ``with uplift, frame API``: the scores of ``without uplift`` plus the uplift
  component's frame API (``UpliftModel.add_scores`` on frames built from the arrays),
  which is how ``predict_arrays`` computed the uplift columns before the array path.

Protocol: demo data (``--customers`` customers, seed 7, with campaigns), ``train`` with
the campaigns at as-of 2025-12-31 into a throw-away MLflow store (3 windows, one
thread), then the feature rows as the service holds them (floats, objects with None).
One customer: a purchaser (``status`` ok, so the uplift columns are computed), median
over ``--repeats`` batches of ``--calls`` calls; 10,000 rows: the purchasers tiled with
distinct ids, median of 3 calls. CPU is ``time.process_time`` (all threads), wall is
``perf_counter``. ``--model`` keeps the trained model in a pickle so the same model can
be timed by another checkout of the code (before/after a change).

Usage::

    python benchmarks/uplift_arrays.py --model /tmp/uplift-model.pkl
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    machine_description,
    markdown_table,
    print_table,
    serving_columns,
    trained_demo_model,
)

AS_OF = "2025-12-31"


def _frame_api(model, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``predict_arrays`` whose uplift columns come from the uplift frame API (the code
    ``training/arrays.py`` ran before the array path)."""
    uplift, model.uplift = model.uplift, None
    try:
        scores = model.predict_arrays(columns, as_of=AS_OF)
    finally:
        model.uplift = uplift
    cols = {k: np.asarray(v) for k, v in columns.items() if k != "customer_id"}
    ids = pd.Index([str(v) for v in columns["customer_id"]], name="customer_id", dtype=object)
    features = pd.DataFrame(cols, index=ids)
    frame = pd.DataFrame(
        {
            name: pd.Series(values, dtype=object, copy=False) if values.dtype == object else values
            for name, values in scores.items()
        }
    )
    out = uplift.add_scores(features, frame)
    return {name: out[name].to_numpy() for name in out.columns}


def _time(call: Callable[[], object], calls: int, repeats: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds per call over ``repeats`` batches of ``calls``."""
    call()  # warm caches (encoder lookups, parsed day)
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            call()
        cpu.append((time.process_time() - c0) / calls * 1e3)
        wall.append((time.perf_counter() - w0) / calls * 1e3)
    return statistics.median(cpu), statistics.median(wall)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--model", type=Path, default=None, help="pickle of the trained model")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    model, features = trained_demo_model(
        args.customers,
        seed=7,
        as_of=AS_OF,
        campaigns=True,
        path=args.model,
        n_windows=3,
        n_jobs=1,
    )
    bought = features.loc[features["orders_total"] > 0]
    assert model.uplift is not None, "the model was trained without campaigns"
    one = serving_columns(bought.iloc[[0]])
    tiles = -(-args.rows // len(bought))
    many = pd.concat([bought] * tiles).iloc[: args.rows]
    many.index = pd.Index([f"{i}-{k}" for k, i in enumerate(many.index)], name="customer_id")
    batch = serving_columns(many)

    plain = _without_uplift(model)
    cases = {
        "without uplift": lambda cols: plain.predict_arrays(cols, as_of=AS_OF),
        "with uplift (predict_arrays)": lambda cols: model.predict_arrays(cols, as_of=AS_OF),
        "with uplift, frame API": lambda cols: _frame_api(model, cols),
    }
    rows = []
    load = os.getloadavg()
    for name, run in cases.items():
        cpu1, wall1 = _time(lambda run=run: run(one), args.calls, args.repeats)
        cpu_n, wall_n = _time(lambda run=run: run(batch), 1, 3)
        rows.append(
            {
                "path": name,
                "1 row CPU ms": cpu1,
                "1 row wall ms": wall1,
                f"{args.rows:,} rows CPU ms": cpu_n,
                f"{args.rows:,} rows wall ms": wall_n,
            }
        )
    print(machine_description())
    print(
        f"load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
        f"uplift learner {model.uplift.learner_name}, channels {model.uplift.channels}"
    )
    columns = list(rows[0])
    print_table(rows, columns, title="predict_arrays per call (median)")
    if args.markdown:
        print(markdown_table(rows, columns))


def _without_uplift(model):
    import copy

    plain = copy.copy(model)
    plain.uplift = None
    return plain


if __name__ == "__main__":
    main()
