"""Speed, memory and page size of the customer-base report at scale.

Times each step of ``fidelite report`` (reading the tables, features at D, every
section, rendering) in wall-clock and CPU seconds, and, as a peer in the same process
and on the same data, the product's own ``build_features`` at D with events (what
``fidelite features`` does). The ratio report / feature build travels better between
machines (and busy hours on a shared one) than the raw seconds. Peak memory is the
process's max RSS: run one size per process.

Usage::

    fidelite demo-data --customers 1000000 --out /tmp/demo1m     # once (~4 min)
    python benchmarks/report_speed.py --data /tmp/demo1m --as-of 2025-12-31
    python benchmarks/report_speed.py --customers 20000           # generates its own data
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_mib, print_machine, print_table

from fidelite.features import build_features
from fidelite.features.demo import generate_demo_data, write_demo_data
from fidelite.features.inputs import load_inputs
from fidelite.reports import ReportConfig, build_report, load_report_inputs
from fidelite.reports.page import render_html


class _Clock:
    """Wall and CPU seconds per named step."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, step: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.rows.append({"step": step, "wall s": wall - self._wall, "cpu s": cpu - self._cpu})
        self._wall, self._cpu = wall, cpu


def _tables(data: Path) -> dict[str, Path | None]:
    tables = {t: data / f"{t}.parquet" for t in ("transactions", "events", "customers")}
    campaigns = data / "campaigns.parquet"
    tables["campaigns"] = campaigns if campaigns.exists() else None
    return tables


def run(data: Path, as_of: str, peer: bool, campaigns: bool = True) -> None:
    tables = _tables(data) if campaigns else {**_tables(data), "campaigns": None}
    cpu_started = time.process_time()
    clock = _Clock()
    inputs = load_report_inputs(
        tables["transactions"],
        tables["events"],
        tables["customers"],
        as_of=as_of,
        campaigns=tables["campaigns"],
    )
    clock.lap("read tables (events: last 90 days; optional tables on a 2nd thread)")
    steps = []
    report = build_report(inputs, ReportConfig(), progress=steps.append)
    total = sum(report.timings.values())
    for name, seconds in report.timings.items():
        clock.rows.append(
            {"step": f"  {name}", "wall s": seconds, "cpu s": report.cpu_timings.get(name)}
        )
    clock._wall, clock._cpu = time.perf_counter(), time.process_time()
    clock.rows.append(
        {
            "step": "build report (sum of the above)",
            "wall s": total,
            "cpu s": sum(report.cpu_timings.values()),
        }
    )
    html = render_html(report)
    clock.lap("render HTML")
    report_wall = (
        sum(
            r["wall s"]
            for r in clock.rows
            if not str(r["step"]).startswith(" ") and r["step"] != "build report (sum of the above)"
        )
        + total
    )
    rss = peak_rss_mib()
    n_customers = len(inputs.inputs.customers) if inputs.inputs.customers is not None else None
    report_cpu = time.process_time() - cpu_started
    clock.rows.append({"step": "REPORT TOTAL", "wall s": report_wall, "cpu s": report_cpu})
    if peer:
        start, cpu_start = time.perf_counter(), time.process_time()
        build_features(
            load_inputs(tables["transactions"], tables["events"], tables["customers"], as_of=as_of)
        )
        peer_wall, peer_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        clock.rows.append(
            {
                "step": "peer: load_inputs + build_features at D (all events)",
                "wall s": peer_wall,
                "cpu s": peer_cpu,
            }
        )
        clock.rows.append(
            {
                "step": "ratio report / peer",
                "wall s": report_wall / peer_wall,
                "cpu s": report_cpu / peer_cpu,
            }
        )
    print_machine()
    print(f"load average at the end: {os.getloadavg()} (2 cores shared with other work)")
    print_table(
        clock.rows,
        ["step", "wall s", "cpu s"],
        title=f"fidelite report: {n_customers:,} customers, as of {as_of}",
        precision=2,
    )
    print(
        f"HTML: {len(html.encode()) / 1e6:.2f} MB ({len(report.sections)} sections, "
        f"{len(report.views)} customer views); peak RSS of the report: {rss:,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="Directory written by `fidelite demo-data`.")
    parser.add_argument(
        "--customers",
        type=int,
        default=20_000,
        help="Demo customers to generate when --data is not given.",
    )
    parser.add_argument("--as-of", default="2025-12-31")
    parser.add_argument("--no-peer", action="store_true", help="Skip the build_features peer.")
    parser.add_argument(
        "--no-campaigns", action="store_true", help="Leave the campaigns table out."
    )
    args = parser.parse_args()
    if args.data is not None:
        run(args.data, args.as_of, not args.no_peer, not args.no_campaigns)
        return
    with tempfile.TemporaryDirectory() as tmp:
        write_demo_data(generate_demo_data(args.customers, seed=7), tmp)
        run(Path(tmp), args.as_of, not args.no_peer, not args.no_campaigns)


if __name__ == "__main__":
    main()
