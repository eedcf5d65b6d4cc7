"""HTTP load test of the fidelite service against a bare BentoML baseline.

Sets up everything in a temporary directory: demo data, a model trained and promoted
into a throw-away MLflow store, a scores snapshot, then ``fidelite serve`` and the
constant service of ``constant_service.py`` on free ports of 127.0.0.1. Drives them with
``httpx.AsyncClient`` at concurrency 1, 8 and 32, each scenario bounded by a request
count and a time budget, and prints latency p50/p99 and requests/second for

- ``/predict`` with one customer (feature rows),
- ``/predict`` with 10,000 feature rows in one request,
- the constant endpoint (BentoML's own floor).

Usage::

    python benchmarks/serving_load.py            # ~2-4 minutes on 2 cores
    python benchmarks/serving_load.py --large    # more requests per scenario
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, console, markdown_table, print_machine, print_table

AS_OF = "2025-09-30"
BIG_BATCH = 10_000
CONCURRENCY = (1, 8, 32)
STARTUP_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Run a server process in its own session; yield its base URL once /readyz is 200."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO_ROOT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM the server; after ``grace_s`` (e.g. still draining 10k-row requests)
    SIGKILL it and every process it started (BentoML workers run in their own session)."""
    tree = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in tree:
        if child.is_running():
            child.kill()


def prepare(workdir: Path, n_customers: int) -> tuple[str, Path, list[dict]]:
    """Train + promote a model, write a snapshot; return tracking URI, snapshot, rows."""
    from fidelite.features import build_features
    from fidelite.features.demo import generate_demo_data
    from fidelite.features.inputs import load_inputs
    from fidelite.training.config import TrainConfig
    from fidelite.training.score import score
    from fidelite.training.train import train

    tracking_uri = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    demo = generate_demo_data(n_customers, seed=5)
    inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of=AS_OF)
    train(inputs, TrainConfig(promote=True, tracking_uri=tracking_uri))
    snapshot = workdir / "scores.parquet"
    score(inputs, tracking_uri=tracking_uri).to_parquet(snapshot, index=False)
    features = build_features(inputs)
    purchasers = features[features["orders_total"] > 0].reset_index()
    return tracking_uri, snapshot, json.loads(purchasers.to_json(orient="records"))


async def drive(
    url: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> dict:
    """Send ``body`` to ``url+path`` from ``concurrency`` workers; latency stats."""
    latencies: list[float] = []
    failures = 0
    issued = 0
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=300, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal issued, failures
            while issued < max_requests and time.perf_counter() - started < max_seconds:
                issued += 1
                sent = time.perf_counter()
                response = await client.post(path, content=body)
                latencies.append(time.perf_counter() - sent)
                failures += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    lat = np.asarray(latencies) * 1000
    return {
        "requests": len(lat),
        "errors": failures,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "req_per_s": len(lat) / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="more requests per scenario")
    parser.add_argument("--customers", type=int, default=2000, help="demo customers to train on")
    args = parser.parse_args(argv)
    # 10k-row requests take seconds each: at most `big_requests` are ever in flight, so
    # "concurrency 32" for that scenario really means min(32, big_requests) clients.
    small_requests, big_requests, budget_s = (2000, 32, 120.0) if args.large else (400, 8, 30.0)
    print_machine()

    with tempfile.TemporaryDirectory(prefix="fidelite-bench-") as tmp:
        workdir = Path(tmp)
        console.print(f"training on {args.customers:,} demo customers...")
        tracking_uri, snapshot, rows = prepare(workdir, args.customers)
        key = "bench-key"
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "BENTOML_HOME": str(workdir / "bentoml"),
            "FIDELITE_API_KEYS": key,
            "BENTOML_DO_NOT_TRACK": "true",
        }
        headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
        single = json.dumps({"as_of": AS_OF, "features": rows[:1]}).encode()
        big_rows = [dict(rows[i % len(rows)], customer_id=f"b{i}") for i in range(BIG_BATCH)]
        big = json.dumps({"as_of": AS_OF, "features": big_rows}).encode()
        constant = json.dumps({"customer_id": "c1"}).encode()
        console.print(f"10k-row request body: {len(big) / 1e6:.1f} MB")

        fidelite_cmd = [
            sys.executable,
            "-m",
            "fidelite.cli",
            "serve",
            "--port",
            "{port}",
            "--snapshot",
            str(snapshot),
        ]
        constant_cmd = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "constant_service:Constant",
            "--working-dir",
            str(Path(__file__).resolve().parent),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ]
        scenarios = [
            (
                "fidelite",
                fidelite_cmd,
                [
                    ("predict 1 customer", "/predict", single, small_requests),
                    ("predict 10k rows", "/predict", big, big_requests),
                ],
            ),
            (
                "constant",
                constant_cmd,
                [("bentoml constant", "/constant", constant, small_requests)],
            ),
        ]
        results = []
        for name, template, cases in scenarios:
            port = free_port()
            command = [part.replace("{port}", str(port)) for part in template]
            with server(command, env, port, workdir / f"{name}.log") as url:
                for label, path, body, max_requests in cases:
                    for concurrency in CONCURRENCY:
                        stats = asyncio.run(
                            drive(
                                url,
                                path,
                                body,
                                headers,
                                concurrency=concurrency,
                                max_requests=max_requests,
                                max_seconds=budget_s,
                            )
                        )
                        results.append({"scenario": label, "concurrency": concurrency, **stats})
                        console.print(results[-1])
    columns = ["scenario", "concurrency", "requests", "errors", "p50_ms", "p99_ms", "req_per_s"]
    print_table(results, columns, title="fidelite serving load (127.0.0.1)", precision=1)
    console.print(markdown_table(results, columns, precision=1))
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
