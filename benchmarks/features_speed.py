"""Speed and peak memory of loading + building point-in-time features.

Synthesises ``--transactions`` rows and ``--events`` rows for ``--customers``
customers directly in numpy (string ids, datetimes, categorical-looking channels),
then times the loaders' validation/normalisation and :func:`build_features`
separately. Peak memory is the process's max RSS (``resource.getrusage``), so run
one size per process.

Usage::

    python benchmarks/features_speed.py --transactions 5000000 --events 20000000 \
        --customers 500000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_mib, print_machine, print_table

from fidelite.features import Inputs, build_features, load_events, load_transactions

START = np.datetime64("2023-01-01T00:00:00", "s")
SPAN_SECONDS = 730 * 86_400
AS_OF = "2024-12-31"


def synthesise(n_tx: int, n_events: int, n_customers: int, seed: int = 0):
    """Raw transactions and events tables with string ids and datetime timestamps."""
    rng = np.random.default_rng(seed)
    ids = pd.array([f"c{i:07d}" for i in range(n_customers)], dtype="str")
    # Zipf-like activity: a few heavy customers, a long tail of occasional ones.
    weights = 1.0 / np.arange(1, n_customers + 1) ** 0.6
    weights /= weights.sum()

    def timestamps(n: int) -> np.ndarray:
        seconds = rng.integers(0, SPAN_SECONDS, n)
        return (START + seconds.astype("timedelta64[s]")).astype("datetime64[ns]")

    tx_customers = rng.choice(n_customers, n_tx, p=weights)
    amount = np.round(rng.gamma(2.0, 25.0, n_tx), 2)
    amount[rng.random(n_tx) < 0.05] *= -1
    transactions = pd.DataFrame(
        {
            "customer_id": ids.take(tx_customers),
            "order_id": pd.array(np.char.add("o", np.arange(n_tx).astype("U10")), dtype="str"),
            "timestamp": timestamps(n_tx),
            "amount": amount,
            "channel": pd.Categorical.from_codes(rng.integers(0, 3, n_tx), ["app", "store", "web"]),
            "discount": np.where(rng.random(n_tx) < 0.2, 5.0, 0.0),
        }
    )
    event_types = [
        "sent",
        "delivered",
        "open",
        "click",
        "visit",
        "session",
        "bounce",
        "unsubscribe",
    ]
    events = pd.DataFrame(
        {
            "customer_id": ids.take(rng.choice(n_customers, n_events, p=weights)),
            "timestamp": timestamps(n_events),
            "channel": pd.Categorical.from_codes(
                rng.integers(0, 6, n_events), ["app", "email", "push", "sms", "store", "web"]
            ),
            "event_type": pd.Categorical.from_codes(
                rng.choice(
                    len(event_types), n_events, p=[0.35, 0.3, 0.15, 0.05, 0.08, 0.05, 0.015, 0.005]
                ),
                event_types,
            ),
        }
    )
    return transactions, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=4_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print_machine()
    t0 = time.perf_counter()
    raw_tx, raw_events = synthesise(args.transactions, args.events, args.customers, args.seed)
    synth_s = time.perf_counter() - t0

    t0, c0 = time.perf_counter(), time.process_time()
    transactions = load_transactions(raw_tx)
    events = load_events(raw_events)
    load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    del raw_tx, raw_events

    # The loaders ran once above; build_features takes the validated Inputs as they are.
    t0, c0 = time.perf_counter(), time.process_time()
    features = build_features(Inputs(transactions, AS_OF, events))
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0

    # CPU seconds next to wall seconds expose a machine shared with other jobs.
    rows = [
        {"stage": "synthesise (not counted)", "wall s": synth_s},
        {"stage": "load + normalise raw tables", "wall s": load_s, "cpu s": load_cpu},
        {"stage": "build_features", "wall s": build_s, "cpu s": build_cpu},
        {
            "stage": "total load + features",
            "wall s": load_s + build_s,
            "cpu s": load_cpu + build_cpu,
        },
    ]
    print_table(
        rows,
        ["stage", "wall s", "cpu s"],
        title=(
            f"features: {args.transactions:,} transactions, {args.events:,} events, "
            f"{args.customers:,} customers -> {features.shape[0]:,} x "
            f"{features.shape[1]} features"
        ),
        precision=2,
    )
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
