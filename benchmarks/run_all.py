"""Run every benchmark in ``benchmarks/`` one after the other (``make bench``).

Each benchmark runs in its own Python process (clean peak-memory numbers, no state
shared between them) and prints the machine description above its own table.
Benchmarks written by other issues are run when their script exists and skipped with a
message otherwise. A failing benchmark does not stop the others; the exit code is 1 if
any failed.

Usage::

    python benchmarks/run_all.py            # defaults sized to finish in a few minutes
    python benchmarks/run_all.py --large    # passes --large to every benchmark
    python benchmarks/run_all.py --only cdnow features_vs_lifetimes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, console

BENCHMARK_DIR = Path(__file__).resolve().parent

# (script stem, extra arguments for the default run). Scripts keep their own
# default sizes, chosen to finish in well under a minute each. Order: self-contained
# first, the HTTP load test last.
BENCHMARKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cdnow", ()),
    ("features_vs_lifetimes", ()),
    ("features_speed", ()),
    ("training_speed", ()),
    ("uplift", ()),
    ("serving_load", ()),
)


def supports_large(script: Path) -> bool:
    """Whether a benchmark script defines a ``--large`` option (CDNOW, a fixed data set,
    does not); checked on the source so that no benchmark has to be imported."""
    return '"--large"' in script.read_text()


def run_benchmark(stem: str, args: list[str]) -> tuple[str, float]:
    """Run ``benchmarks/<stem>.py`` with ``args``, streaming its output.

    Returns
    -------
    (status, seconds)
        status is "ok", "failed (exit N)" or "missing".
    """
    script = BENCHMARK_DIR / f"{stem}.py"
    if not script.exists():
        return "missing", 0.0
    console.rule(f"[bold]{stem}[/bold] {' '.join(args)}")
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, str(script), *args], cwd=REPO_ROOT, check=False)
    seconds = time.perf_counter() - start
    status = "ok" if completed.returncode == 0 else f"failed (exit {completed.returncode})"
    return status, seconds


def main(argv: list[str] | None = None) -> int:
    names = [stem for stem, _ in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="pass --large to every benchmark")
    parser.add_argument("--only", nargs="+", choices=names, help="run only these benchmarks")
    args = parser.parse_args(argv)

    summary = []
    for stem, default_args in BENCHMARKS:
        if args.only and stem not in args.only:
            continue
        script = BENCHMARK_DIR / f"{stem}.py"
        large = args.large and script.exists() and supports_large(script)
        extra = [*default_args, *(["--large"] if large else [])]
        status, seconds = run_benchmark(stem, extra)
        summary.append((stem, status, seconds))

    console.rule("[bold]summary[/bold]")
    for stem, status, seconds in summary:
        detail = "script not found, skipped" if status == "missing" else f"{seconds:.1f} s"
        console.print(f"{stem:<24} {status:<18} {detail}")
    return 1 if any(status.startswith("failed") for _, status, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
