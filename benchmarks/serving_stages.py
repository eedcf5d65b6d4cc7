"""Per-stage cost of a 10,000-row ``/predict`` in-process: the general path and the large-
body path of the HTTP side, alternately in the same process, and the model call.

Stages (what the worker does between the complete body and the response):

- general path: pydantic validates the body into one dict per row (BentoML does this on
  the event loop), then :func:`fidelite.serving.handlers.request_batch` checks the rows
  into columns;
- large-body path: :func:`fidelite.serving.handlers.read_body` (the compiled scanner
  straight into columns, the same checks), and its second tier alone (the typed msgspec
  decode, for bodies the scanner does not take) -- the batches are compared bit for bit;
- the model: :func:`fidelite.serving.scoring.model_scores` with one and two threads;
- the response: one dict per customer through ``pydantic_core.to_json`` (the old
  encoding) and :func:`fidelite.serving.handlers.predict_json` (column by column: one
  encoded table per column, rows assembled from byte spans by compiled loops, see
  :mod:`fidelite.serving.json_columns`) -- the bodies are compared byte for byte.

The payload is serving_load.py's: the first 2,000 purchasers' feature rows tiled to
10,000 distinct ids (25 MB). CPU = ``process_time`` (all threads), median of
``--repeats``.

Usage::

    python benchmarks/serving_stages.py --model /tmp/pa-model.pkl   # trains on first use
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic_core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import console, markdown_table, print_machine, trained_demo_model

os.environ.setdefault("FIDELITE_AUTH", "off")  # the service module reads settings at import

AS_OF = "2025-09-30"
BIG = 10_000


def _time(work: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        started_cpu, started = time.process_time(), time.perf_counter()
        result = work()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return 1000 * statistics.median(cpu), 1000 * statistics.median(wall), result


def _same_batch(left: Any, right: Any) -> None:
    assert left.ids == right.ids and list(left.numbers) == list(right.numbers)
    for name, values in left.numbers.items():
        assert values.tobytes() == right.numbers[name].tobytes(), name
    for name, values in left.others.items():
        assert values.tolist() == right.others[name].tolist(), name


def stages(model: Any, features: pd.DataFrame, *, reasons: bool, repeats: int) -> list[dict]:
    from fidelite.serving import bulk_rows, handlers, heap, service
    from fidelite.serving.models import ServedModel
    from fidelite.serving.responses import score_dicts
    from fidelite.serving.scoring import model_scores

    served = ServedModel(model, {"version": "1", "name": "fidelite", "alias": "champion"})
    buyers = features[features["orders_total"] > 0].reset_index()
    rows = json.loads(buyers.head(2000).to_json(orient="records"))
    big = [dict(rows[i % len(rows)], customer_id=f"b{i}") for i in range(BIG)]
    body = json.dumps({"as_of": AS_OF, "features": big, "include_reasons": reasons}).encode()
    validate, settings = service._validate_predict, service.SETTINGS
    heap.tune()
    heap.settle()
    out = []

    def step(name: str, work: Callable[[], Any], times: int = repeats) -> Any:
        cpu, wall, result = _time(work, times)
        out.append({"step": name, "CPU ms": cpu, "wall ms": wall, "load": os.getloadavg()[0]})
        console.print(out[-1])
        return result

    request = step("old: body -> dict per row (pydantic)", lambda: validate(body))
    old = step("old: row checks", lambda: handlers.request_batch(request, settings, served))
    _, batch = step(
        "new: body -> checked columns", lambda: handlers.read_body(body, validate, settings)
    )
    _same_batch(batch, old)
    layout = bulk_rows._layout(bulk_rows.first_row_columns(body))
    required, limit = handlers._required_columns(), settings.max_batch
    second = step(
        "new, second tier: msgspec -> checked columns",
        lambda: bulk_rows._decoded(body, layout, required=required, max_rows=limit),
    )
    _same_batch(second.batch, old)
    day = pd.Timestamp(AS_OF)
    model_scores(model, batch, day, reasons=reasons, threads=1)  # warm-up (compiled trees)
    for threads in (2, 1):
        columns = step(
            f"model_scores, {threads} thread(s)",
            lambda t=threads: model_scores(model, batch, day, reasons=reasons, threads=t),
            max(1, repeats // 2),
        )
    ref = handlers.model_ref(served)

    def old_body() -> bytes:
        status = columns["status"]
        return pydantic_core.to_json(
            {
                "model": ref.model_dump(),
                "n_customers": BIG,
                "n_insufficient_history": int(sum(1 for value in status if value != "ok")),
                "scores": score_dicts(columns, BIG),
            }
        )

    before = step("old: response, dict per customer", old_body)
    after = step(
        "new: response, column by column", lambda: handlers.predict_json(served, columns, BIG)
    )
    assert before == after, "the response bodies differ"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="pickle of the trained model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-reasons", action="store_true")
    args = parser.parse_args(argv)
    print_machine()
    model, features = trained_demo_model(
        20_000, seed=5, as_of=AS_OF, campaigns=False, path=args.model
    )
    table = stages(model, features, reasons=not args.no_reasons, repeats=args.repeats)
    console.print(markdown_table(table, list(table[0]), precision=1))


if __name__ == "__main__":
    main()
