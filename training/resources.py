"""What a training run cost: seconds per step and peak memory, logged to its MLflow run.

Metrics (all logged once the run's model is logged, so every step is known):

* ``time_<step>_s``: wall seconds per kind of step (``encode``, ``window``,
  ``features``, ``fit``, ``champion``, ``log``; windows summed);
* ``time_total_s``: their sum;
* ``peak_rss_mib``: the training process's peak resident memory so far (MiB), and on a
  Dask cluster ``peak_rss_workers_mib``: the sum of the workers' peaks.
"""

from __future__ import annotations

import logging
import resource
import sys
from collections.abc import Mapping

__all__ = ["log_resources", "peak_rss_mib", "worker_peak_rss_mib"]

logger = logging.getLogger(__name__)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # macOS: bytes


def worker_peak_rss_mib() -> float | None:
    """Summed peak RSS of the current Dask client's workers (None without a client)."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return None
    return float(sum(client.run(peak_rss_mib).values()))


def log_resources(
    tracking_uri: str, run_id: str, seconds: Mapping[str, float], *, dask: bool = False
) -> dict[str, float]:
    """Log per-step seconds and peak memory to the run; returns what was logged."""
    from mlflow.entities import Metric

    from fidelite.training.tracking import mlflow_client

    metrics = {f"time_{name}_s": float(value) for name, value in seconds.items()}
    metrics["time_total_s"] = float(sum(seconds.values()))
    metrics["peak_rss_mib"] = peak_rss_mib()
    workers = worker_peak_rss_mib() if dask else None
    if workers is not None:
        metrics["peak_rss_workers_mib"] = workers
    import time

    now = int(time.time() * 1000)
    client = mlflow_client(tracking_uri)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
    logger.info(
        "peak memory %.0f MiB%s; %s",
        metrics["peak_rss_mib"],
        "" if workers is None else f" (+ workers {workers:.0f} MiB)",
        ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()),
    )
    return metrics
