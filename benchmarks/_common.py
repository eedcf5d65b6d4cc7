"""Shared helpers for the benchmark scripts: machine description, tables, timing, memory.

Every benchmark prints :func:`machine_description` above its table so that a number
copied into BENCHMARKS.md always travels with the hardware and library versions that
produced it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parent.parent

# Versions worth knowing when comparing numbers across machines or releases.
REPORTED_PACKAGES = (
    "fidelite",
    "pandas",
    "numpy",
    "scikit-learn",
    "lightgbm",
    "scipy",
    "mlflow",
    "bentoml",
    "lifetimes",
    "pymc-marketing",
    "pymc",
    "pytensor",
)

# Wide enough for the results tables even when stdout is a pipe (80 columns by default).
console = Console(width=max(Console().width, 160))


def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _total_memory_gib() -> float:
    """Physical memory in GiB (psutil when installed, else sysconf)."""
    try:
        import psutil

        return psutil.virtual_memory().total / 2**30
    except ImportError:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def package_versions(names: Sequence[str] = REPORTED_PACKAGES) -> dict[str, str]:
    """Installed version of each distribution in ``names``; absent ones are skipped."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine_description() -> str:
    """One line describing cores, memory, CPU, OS, Python and key package versions."""
    cores = os.cpu_count() or 0
    packages = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    return (
        f"{cores} cores ({_cpu_model()}), {_total_memory_gib():.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"{packages}"
    )


def print_machine() -> None:
    """Print the machine description (see :func:`machine_description`)."""
    console.print(f"[bold]Machine:[/bold] {machine_description()}", soft_wrap=True)


def _format_cell(value: Any, precision: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{precision}f}"
    return str(value)


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    title: str,
    precision: int = 3,
) -> None:
    """Render ``rows`` (one dict per row, keyed by ``columns``) as a rich table."""
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, justify="left" if col == columns[0] else "right")
    for row in rows:
        table.add_row(*(_format_cell(row.get(col), precision) for col in columns))
    console.print(table)


def markdown_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, precision: int = 3
) -> str:
    """The same table as GitHub-flavoured Markdown, ready to paste into BENCHMARKS.md."""
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"
    body = [
        "| " + " | ".join(_format_cell(row.get(col), precision) for col in columns) + " |"
        for row in rows
    ]
    return "\n".join([header, rule, *body])


@dataclass
class Stopwatch:
    """Wall-clock seconds accumulated over one or more ``with stopwatch.running():`` blocks."""

    seconds: float = 0.0

    @contextmanager
    def running(self) -> Iterator[Stopwatch]:
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds += time.perf_counter() - start


def peak_rss_mib() -> float:
    """Peak resident set size of *this* process so far, in MiB.

    ``ru_maxrss`` is a high-water mark, so it is only meaningful for a process that ran
    one workload: that is why memory comparisons run each tool in its own subprocess
    (:func:`run_json_subprocess`).
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def run_json_subprocess(args: Sequence[str], *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``python <args>`` and parse the JSON object printed on its last stdout line.

    Raises
    ------
    RuntimeError
        If the child fails, with its stderr tail, so a broken worker is never reported
        as a number.
    """
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {' '.join(args)} exited with {proc.returncode}:\n"
            f"{proc.stderr[-3000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"benchmark worker {' '.join(args)} printed nothing")
    return json.loads(lines[-1])


@dataclass
class Measured:
    """A command's wall seconds, the peak RSS of its whole process tree, its output."""

    seconds: float
    peak_tree_mib: float
    stdout: str
    stderr: str
    returncode: int


def run_measured(
    args: Sequence[str], *, env: dict[str, str] | None = None, interval: float = 0.25
) -> Measured:
    """Run ``args`` and sample the summed RSS of it and all its descendants.

    The sum over the tree (a Dask LocalCluster's workers are children of the command)
    is sampled every ``interval`` seconds; the peak is the largest sum seen.
    """
    import psutil

    start = time.perf_counter()
    with subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO_ROOT,
    ) as proc:
        parent = psutil.Process(proc.pid)
        peak = 0.0
        import threading

        output: dict[str, str] = {}
        reader = threading.Thread(
            target=lambda: output.update(zip(("out", "err"), proc.communicate(), strict=True))
        )
        reader.start()
        while reader.is_alive():
            total = 0
            try:
                for process in [parent, *parent.children(recursive=True)]:
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:
                        continue
            except psutil.Error:
                pass
            peak = max(peak, total / 2**20)
            reader.join(interval)
    return Measured(
        time.perf_counter() - start,
        peak,
        output.get("out", ""),
        output.get("err", ""),
        proc.returncode,
    )


def serving_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Columns as the HTTP service holds them: floats for numbers, objects (None) else."""
    columns = {"customer_id": frame.index.to_numpy(dtype=object)}
    for name in frame.columns:
        values = frame[name]
        if values.dtype.kind in "iuf":
            columns[name] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            columns[name] = values.to_numpy(dtype=object, na_value=None)
    return columns


def trained_demo_model(
    customers: int,
    *,
    seed: int,
    as_of: str,
    campaigns: bool,
    path: Path | None = None,
    **config: Any,
) -> tuple[Any, pd.DataFrame]:
    """(model, every customer's feature rows at ``as_of``) of a model trained and promoted
    on demo data in a throw-away MLflow store, or loaded from the pickle at ``path``
    (written there after training, so later runs time the same model)."""
    import pickle
    import tempfile

    if path is not None and path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    from fidelite.features.demo import generate_demo_data
    from fidelite.features.inputs import load_inputs
    from fidelite.training.config import TrainConfig
    from fidelite.training.train import train

    demo = generate_demo_data(customers, seed=seed)
    inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of=as_of)
    with tempfile.TemporaryDirectory() as store:
        settings = TrainConfig(promote=True, tracking_uri=f"sqlite:///{store}/mlflow.db", **config)
        result = train(inputs, settings, campaigns=demo.campaigns if campaigns else None)
    out = (result.model, result.model.build_features(inputs))
    if path is not None:
        with path.open("wb") as handle:
            pickle.dump(out, handle)
    return out


#: Top-level folders that make up the ``fidelite`` package (pyproject's package-dir).
PACKAGE_FOLDERS = ("fidelite", "features", "training", "serving", "reports")


def code_at_revision(revision: str, into: Path) -> Path:
    """The packages of git ``revision`` laid out as an importable ``fidelite`` under
    ``into``; put the returned folder first on ``PYTHONPATH`` to run that code (it wins
    over the editable install)."""
    import shutil
    import tarfile

    archive = into / "code.tar"
    with archive.open("wb") as handle:
        subprocess.run(
            ["git", "archive", revision, *PACKAGE_FOLDERS],
            cwd=REPO_ROOT,
            stdout=handle,
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    root = into / "path" / "fidelite"
    shutil.copytree(into / "tree" / "fidelite", root)
    for name in PACKAGE_FOLDERS[1:]:
        (root / name).symlink_to(into / "tree" / name)
    return into / "path"
