"""HTTP load test of the fidelite service against a bare BentoML + LightGBM service.

Builds everything in a temporary directory in the same run: demo data, a model trained
and promoted into a throw-away MLflow store, a scores snapshot, and a LightGBM booster of
similar size for the bare service (``constant_service.py``). Starts both with one worker
each on free ports of 127.0.0.1 (the same server-start helper the tests use) and drives
them closed-loop with a low-overhead client (``_load_client.py``: wrk, or an asyncio
fallback) at concurrency 1, 16 and 32, ``--seconds`` each:

- bare BentoML + LightGBM (sync and async endpoint; the faster is the reference),
- ``/customers/lookup`` with 1 id, ``/predict`` with 1 feature row,
- ``/predict`` with 1 customer's raw history (5 transactions, 44 events),
- ``/predict`` with 1 feature row again on a server with two worker processes,

then the 10,000-row cases (server time from the ``Server-Timing`` header, median of 5)
and the size of ``/metrics`` and the worker's memory after 5,000 unknown paths. Every
cell also records the server's CPU milliseconds per request (all its processes and
threads), which a shared machine inflates far less than latencies.

Usage::

    python benchmarks/serving_load.py                 # ~10 minutes on 2 cores
    python benchmarks/serving_load.py --seconds 10    # quicker, noisier
    # only the 10,000-row cases, this code against main's in the same run (requests
    # alternate between the two servers), keeping the trained model for the next run:
    python benchmarks/serving_load.py --cases big --before main --workdir /tmp/serving-bench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, code_at_revision, console, markdown_table, print_machine
from _load_client import run_load

from fidelite.serving.launch import fidelite_serve_command, free_port, running_server

AS_OF = "2025-09-30"
BIG = 10_000
CONCURRENCY = (1, 16, 32)
BARE_TREES, BARE_FEATURES = 330, 40
KEY = "bench-key"


def prepare(workdir: Path, n_customers: int) -> dict:
    """Train + promote, write the snapshot, pick payloads; train the bare booster."""
    import lightgbm as lgb

    from fidelite.features import build_features
    from fidelite.features.demo import generate_demo_data
    from fidelite.features.inputs import load_inputs
    from fidelite.serving.snapshot import write_snapshot_atomic
    from fidelite.training.config import TrainConfig
    from fidelite.training.score import score
    from fidelite.training.train import train

    tracking_uri = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    demo = generate_demo_data(n_customers, seed=5)
    inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of=AS_OF)
    train(inputs, TrainConfig(promote=True, tracking_uri=tracking_uri))
    scores = score(inputs, tracking_uri=tracking_uri)
    snapshot = write_snapshot_atomic(scores, workdir / "scores.parquet")
    features = build_features(inputs)
    buyers = features[features["orders_total"] > 0].reset_index()
    rows = json.loads(buyers.head(2000).to_json(orient="records"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, BARE_FEATURES))
    y = (X[:, 0] + rng.normal(size=len(X)) > 0).astype(int)
    names = [f"f{i}" for i in range(BARE_FEATURES)]
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1},
        lgb.Dataset(X, y, feature_name=names),
        num_boost_round=BARE_TREES,
    )
    booster.save_model(workdir / "bare.txt")
    return {
        "tracking_uri": tracking_uri,
        "snapshot": snapshot,
        "rows": rows,
        "ids": scores["customer_id"].tolist(),
        "history": history_payload(demo),
        "bare_body": {"features": dict(zip(names, X[0].tolist(), strict=True))},
    }


def history_payload(demo) -> dict:
    """One customer with 5 transactions and their first 44 events up to the as-of day."""
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    tx = demo.transactions[demo.transactions["timestamp"] < end]
    events = demo.events[demo.events["timestamp"] < end]
    counts, n_events = tx.groupby("customer_id").size(), events.groupby("customer_id").size()
    cid = next(c for c in counts[counts == 5].index if n_events.get(c, 0) >= 44)

    def records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
        frame = frame.loc[frame["customer_id"] == cid, columns].head(44)
        frame = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        return json.loads(frame.to_json(orient="records"))

    return {
        "as_of": AS_OF,
        "history": {
            "transactions": records(tx, ["customer_id", "order_id", "timestamp", "amount"]),
            "events": records(events, ["customer_id", "timestamp", "channel", "event_type"]),
        },
    }


def server_cpu_s(process) -> float:
    """CPU seconds used so far by the server's processes (every thread of each)."""
    tree = [psutil.Process(process.pid)]
    tree += tree[0].children(recursive=True)
    total = 0.0
    for proc in tree:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def drive(
    url: str, cases: list[tuple[str, str, dict]], auth: str, seconds: float, process
) -> list[dict]:
    """Each case at each concurrency; also the server's CPU milliseconds per request."""
    results = []
    for name, path, body in cases:
        payload = json.dumps(body).encode()
        for connections in CONCURRENCY:
            run_load(url + path, payload, auth, connections=connections, seconds=2)  # warm-up
            cpu = server_cpu_s(process)
            got = run_load(url + path, payload, auth, connections=connections, seconds=seconds)
            used = server_cpu_s(process) - cpu
            per_request = 1000 * used / max(got.requests, 1)
            results.append(
                {"endpoint": name, "c": connections, **vars(got), "server_cpu_ms": per_request}
            )
            console.print(results[-1])
    return results


def big_requests(url: str, data: dict, process, before: tuple | None = None) -> list[dict]:
    """Server and client time of 10,000-row predict and 10,000-id lookup (median of 5),
    and the server's CPU time per request (mean of the same 5). With ``before`` (url,
    process, label of another server), each request goes to both, alternately."""
    rows = [dict(data["rows"][i % len(data["rows"])], customer_id=f"b{i}") for i in range(BIG)]
    ids = [data["ids"][i % len(data["ids"])] for i in range(BIG)]
    cases = [
        ("/predict 10,000 feature rows", "/predict", {"as_of": AS_OF, "features": rows}),
        (
            "/predict 10,000 rows, no reasons",
            "/predict",
            {"as_of": AS_OF, "features": rows, "include_reasons": False},
        ),
        ("/customers/lookup 10,000 ids", "/customers/lookup", {"customer_ids": ids}),
    ]
    servers = [("", url, process)] + ([(f" ({before[2]})", *before[:2])] if before else [])
    auth = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    out = []
    with httpx.Client(timeout=300, headers=auth) as client:
        for name, path, body in cases:
            content = json.dumps(body).encode()
            times = {label: ([], [], 0.0) for label, _, _ in servers}
            for attempt in range(6):  # the first is a warm-up
                for label, base, proc in servers:
                    server, total, cpu = times[label]
                    used = server_cpu_s(proc)
                    started = time.perf_counter()
                    response = client.post(base + path, content=content)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text[:300]
                    if attempt:
                        total.append(elapsed)
                        server.append(float(response.headers["server-timing"].split("dur=")[1]))
                        cpu += server_cpu_s(proc) - used
                    times[label] = (server, total, cpu)
            for label, (server, total, cpu) in times.items():
                out.append(
                    {
                        "case": name + label,
                        "body_mb": round(len(content) / 1e6, 1),
                        "server_ms": float(np.median(server)),
                        "client_ms": float(np.median(total)),
                        "server_cpu_ms": 1000 * cpu / len(server),
                        "load_avg": os.getloadavg()[0],
                    }
                )
                console.print(out[-1])
    return out


def worker_rss_mib(process: psutil.Popen) -> float:
    workers = [
        p
        for p in psutil.Process(process.pid).children(recursive=True)
        if "worker.service" in " ".join(p.cmdline())
    ]
    return max((p.memory_info().rss for p in workers), default=0) / 2**20


def metrics_growth(url: str, process, n_paths: int = 5000) -> dict:
    with httpx.Client(base_url=url, timeout=30) as client:
        before, rss_before = len(client.get("/metrics").content), worker_rss_mib(process)
        for i in range(n_paths):
            client.get(f"/unknown/{i}-{os.getpid()}")
        started = time.perf_counter()
        after = len(client.get("/metrics").content)
        scrape_ms = (time.perf_counter() - started) * 1000
    return {
        "paths": n_paths,
        "metrics_kb_before": before / 1e3,
        "metrics_kb_after": after / 1e3,
        "scrape_ms": scrape_ms,
        "worker_rss_mib_before": rss_before,
        "worker_rss_mib_after": worker_rss_mib(process),
    }


def ratio_table(results: list[dict]) -> list[dict]:
    """One row per endpoint: rps / p50 at each concurrency and the share of bare at c=16."""
    by = {(r["endpoint"], r["c"]): r for r in results}
    bare = {
        c: max((by[(n, c)] for n in ("bare sync", "bare async")), key=lambda r: r["rps"])
        for c in CONCURRENCY
    }
    table = []
    for name in dict.fromkeys(r["endpoint"] for r in results):
        row = {"endpoint": name}
        for c in CONCURRENCY:
            r = by[(name, c)]
            row[f"c={c} rps / p50 ms"] = f"{r['rps']:.0f} / {r['p50_ms']:.1f}"
        row["share of bare at c=16"] = f"{by[(name, 16)]['rps'] / bare[16]['rps']:.0%}"
        row["p50 c=1 minus bare (ms)"] = f"{by[(name, 1)]['p50_ms'] - bare[1]['p50_ms']:+.1f}"
        row["server CPU ms/request at c=1 / c=16"] = (
            f"{by[(name, 1)]['server_cpu_ms']:.2f} / {by[(name, 16)]['server_cpu_ms']:.2f}"
        )
        row["client CPU % (max)"] = (
            f"{max(by[(name, c)]['client_cpu_pct'] for c in CONCURRENCY):.0f}"
        )
        row["errors"] = sum(by[(name, c)]["errors"] for c in CONCURRENCY)
        table.append(row)
    return table


def bare_cells(env: dict, data: dict, workdir: Path, seconds: float) -> list[dict]:
    """The bare BentoML + LightGBM service, sync and async endpoints."""
    port = free_port()
    bare_cmd = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "constant_service:Bare",
        "--working-dir",
        str(Path(__file__).resolve().parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with running_server(bare_cmd, env=env, port=port, log=workdir / "bare.log", cwd=REPO_ROOT) as (
        url,
        process,
    ):
        cases = [
            ("bare sync", "/predict", data["bare_body"]),
            ("bare async", "/predict_async", data["bare_body"]),
        ]
        return drive(url, cases, "", seconds, process)


def fidelite_cells(
    env: dict, data: dict, workdir: Path, seconds: float
) -> tuple[list[dict], list[dict], dict]:
    """fidelite with one worker: the load cells, the 10,000-row cases, /metrics growth."""
    port = free_port()
    command = fidelite_serve_command(port=port, snapshot=data["snapshot"])
    one_row = {"as_of": AS_OF, "features": data["rows"][:1]}
    cases = [
        ("/customers/lookup 1 id", "/customers/lookup", {"customer_ids": [data["ids"][0]]}),
        ("/predict 1 feature row", "/predict", one_row),
        ("/predict 1 customer history", "/predict", data["history"]),
    ]
    log = workdir / "fidelite.log"
    with running_server(command, env=env, port=port, log=log, cwd=REPO_ROOT) as (url, process):
        results = drive(url, cases, f"Bearer {KEY}", seconds, process)
        return results, big_requests(url, data, process), metrics_growth(url, process)


def two_worker_cells(env: dict, data: dict, workdir: Path, seconds: float) -> list[dict]:
    """BentoML's worker processes: the feature-row cell again with two workers (the
    targets are for one; the bare service keeps one)."""
    port = free_port()
    command = fidelite_serve_command(port=port, snapshot=data["snapshot"])
    env = {**env, "FIDELITE_WORKERS": "2"}
    log = workdir / "fidelite2.log"
    with running_server(command, env=env, port=port, log=log, cwd=REPO_ROOT) as (url, process):
        one_row = {"as_of": AS_OF, "features": data["rows"][:1]}
        cases = [("/predict 1 feature row, 2 workers", "/predict", one_row)]
        return drive(url, cases, f"Bearer {KEY}", seconds, process)


def prepared(workdir: Path, n_customers: int) -> dict:
    """:func:`prepare` once per ``workdir`` (the payloads are kept next to the model)."""
    saved = workdir / "payloads.pkl"
    if saved.exists():
        with saved.open("rb") as handle:
            return pickle.load(handle)
    console.print(f"training on {n_customers:,} demo customers...")
    data = prepare(workdir, n_customers)
    with saved.open("wb") as handle:
        pickle.dump(data, handle)
    return data


def big_cells(env: dict, data: dict, workdir: Path, before: str | None) -> list[dict]:
    """Only the 10,000-row cases; with ``before``, against that git revision's code too."""
    with contextlib.ExitStack() as stack:
        other = None
        if before is not None:
            code = code_at_revision(
                before, Path(stack.enter_context(tempfile.TemporaryDirectory()))
            )
            port = free_port()
            command = fidelite_serve_command(port=port, snapshot=data["snapshot"])
            old_env = {**env, "PYTHONPATH": str(code)}
            log = workdir / "fidelite-before.log"
            # not from the checkout: `python -m` puts the working directory first on
            # sys.path, and this checkout's fidelite/ would shadow the old code
            server = running_server(command, env=old_env, port=port, log=log, cwd=code)
            other = (*stack.enter_context(server), before)
        port = free_port()
        command = fidelite_serve_command(port=port, snapshot=data["snapshot"])
        server = running_server(command, env=env, port=port, log=workdir / "fidelite.log")
        url, process = stack.enter_context(server)
        return big_requests(url, data, process, other)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per load cell")
    parser.add_argument("--customers", type=int, default=20_000, help="demo customers")
    parser.add_argument(
        "--cases", choices=("all", "big"), default="all", help="big: only the 10,000-row cases"
    )
    parser.add_argument(
        "--before", default=None, help="with --cases big: git revision to measure too"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the trained model and payloads here"
    )
    args = parser.parse_args(argv)
    print_machine()
    console.print(f"load average at start: {os.getloadavg()}")
    with contextlib.ExitStack() as stack:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            workdir = args.workdir.resolve()
        else:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="fidelite-bench-"))
            )
        data = prepared(workdir, args.customers)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": data["tracking_uri"],
            "BENTOML_HOME": str(workdir / "bentoml"),
            "FIDELITE_API_KEYS": KEY,
            "FIDELITE_WORKERS": "1",
            "BENTOML_DO_NOT_TRACK": "true",
            "OMP_WAIT_POLICY": "PASSIVE",
            "OMP_NUM_THREADS": "1",
            "BARE_MODEL_PATH": str(workdir / "bare.txt"),
        }
        if args.cases == "big":
            big = big_cells(env, data, workdir, args.before)
            console.print(f"load average at end: {os.getloadavg()}")
            console.print(markdown_table(big, list(big[0]), precision=1))
            return 0
        results = bare_cells(env, data, workdir, args.seconds)
        served, big, metrics = fidelite_cells(env, data, workdir, args.seconds)
        results += served + two_worker_cells(env, data, workdir, args.seconds)
    console.print(f"load average at end: {os.getloadavg()}")
    console.print(markdown_table(ratio_table(results), list(ratio_table(results)[0])))
    console.print(markdown_table(big, list(big[0]), precision=1))
    console.print(markdown_table([metrics], list(metrics), precision=1))
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
