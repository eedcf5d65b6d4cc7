"""Closed-loop HTTP load for the serving benchmark, with a low-overhead client.

``wrk`` (Debian package ``wrk``) is used when it is on PATH: a C client that costs a few
percent of a core at these rates. Without it, a lean asyncio client (raw keep-alive
HTTP/1.1 on sockets, no HTTP library) does the same job at a higher but measured cost.
Either way the client's own CPU time is reported, so a run where the client competes
with the server for the 2 cores shows it.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

_WRK_SCRIPT = """
wrk.method = "POST"
local f = io.open(os.getenv("WRK_BODY"), "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class LoadResult:
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    client_cpu_pct: float
    client: str


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(match[1]) * _UNITS[match[2]] if match else float("nan")


def run_wrk(url: str, body: bytes, auth: str, *, connections: int, seconds: float) -> LoadResult:
    """``wrk -t1 -c<connections>`` POSTing ``body`` for ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        script, payload = Path(tmp, "post.lua"), Path(tmp, "body.json")
        script.write_text(_WRK_SCRIPT)
        payload.write_bytes(body)
        env = dict(os.environ, WRK_BODY=str(payload), WRK_AUTH=auth)
        cpu = _children_cpu()
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ]
        output = subprocess.run(command, env=env, capture_output=True, text=True).stdout
        cpu = _children_cpu() - cpu
    requests = int(re.search(r"(\d+) requests in", output)[1])
    errors = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in m.groups())
    latency = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", output, re.M))
    return LoadResult(
        requests=requests,
        errors=errors,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        p50_ms=_ms(latency.get("50", "nan")),
        p99_ms=_ms(latency.get("99", "nan")),
        client_cpu_pct=100 * cpu / seconds,
        client="wrk",
    )


async def _worker(host: str, port: int, request: bytes, deadline: float, out: list) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            out.append(time.perf_counter() - sent)
            errors += status >= 300
    finally:
        writer.close()
    return errors


def run_lean(url: str, body: bytes, auth: str, *, connections: int, seconds: float) -> LoadResult:
    """The asyncio fallback client (keep-alive, one request in flight per connection)."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        + (f"Authorization: {auth}\r\n" if auth else "")
        + "\r\n"
    ).encode()
    latencies: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()

    async def main() -> list[int]:
        deadline = time.perf_counter() + seconds
        return await asyncio.gather(
            *(
                _worker(parts.hostname, parts.port, head + body, deadline, latencies)
                for _ in range(connections)
            )
        )

    errors = sum(asyncio.run(main()))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    lat = np.asarray(latencies) * 1000
    return LoadResult(
        len(lat),
        errors,
        len(lat) / elapsed,
        float(np.percentile(lat, 50)),
        float(np.percentile(lat, 99)),
        100 * cpu / elapsed,
        "asyncio",
    )


def run_load(url: str, body: bytes, auth: str, *, connections: int, seconds: float) -> LoadResult:
    """Closed-loop load with wrk when installed, else the asyncio client."""
    runner = run_wrk if shutil.which("wrk") else run_lean
    return runner(url, body, auth, connections=connections, seconds=seconds)
