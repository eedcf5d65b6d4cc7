"""The predict part of the hostile request matrix (P: feature rows, H: raw history),
built from the live server's demo data and run by :mod:`test_hostile_requests`."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass

from tests.serving.conftest import AS_OF, MAX_BATCH, LiveServer


@dataclass
class Case:
    id: str
    method: str
    path: str
    body: Callable[[LiveServer], object] | None = None  # dict/list -> JSON; bytes -> raw
    headers: dict[str, str] | None = None
    ok: tuple[int, ...] = ()  # accepted 2xx statuses (empty: must be 4xx)
    needle: str | None = None  # text the error must contain


def demo_row(s: LiveServer, **change: object) -> dict:
    return dict(s.rows(s.scored_ids(1))[0], **change)


def features_body(*rows: object, as_of: object = AS_OF) -> Callable[[LiveServer], object]:
    def build(s: LiveServer) -> dict:
        built = [row(s) if callable(row) else row for row in rows]
        return {"as_of": as_of, "features": built}

    return build


def _history(s: LiveServer, n_customers: int = 1) -> dict:
    ids = s.scored_ids(n_customers)
    tx = s.demo.transactions
    tx = tx[tx["customer_id"].isin(ids) & (tx["timestamp"] < "2025-10-01")]
    ev = s.demo.events
    ev = ev[ev["customer_id"].isin(ids) & (ev["timestamp"] < "2025-10-01")].head(44)

    def records(frame, columns):
        frame = frame[columns].assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        return json.loads(frame.to_json(orient="records"))

    return {
        "transactions": records(tx, ["customer_id", "order_id", "timestamp", "amount"]),
        "events": records(ev, ["customer_id", "timestamp", "channel", "event_type"]),
    }


def _hist(change: Callable[[dict], None] | None = None, as_of: object = AS_OF, n: int = 1):
    def build(s: LiveServer) -> dict:
        history = copy.deepcopy(_history(s, n))
        if change is not None:
            change(history)
        return {"as_of": as_of, "history": history}

    return build


def _tx(**change: object) -> Callable[[dict], None]:
    def apply(history: dict) -> None:
        history["transactions"][0].update(change)

    return apply


def _drop_tx(key: str) -> Callable[[dict], None]:
    return lambda h: h["transactions"][0].pop(key)


def const_body(value: object) -> Callable[[LiveServer], object]:
    return lambda s: value


def _many_rows(n: int) -> Callable[[LiveServer], object]:
    return lambda s: {
        "as_of": AS_OF,
        "features": [demo_row(s, customer_id=f"x{i}") for i in range(n)],
    }


def _many_customers_history(n: int) -> Callable[[LiveServer], object]:
    def build(s: LiveServer) -> dict:
        tx = [
            {"customer_id": f"c{i}", "order_id": f"o{i}", "timestamp": "2025-01-02", "amount": 5}
            for i in range(n)
        ]
        return {"as_of": AS_OF, "history": {"transactions": tx}}

    return build


def winback_body(**params: object) -> Callable[[LiveServer], object]:
    return const_body(params)


def raw_body(text: str) -> Callable[[LiveServer], object]:
    return lambda s: text.encode()


HOSTILE_ID = "<script>alert(1)</script>\u202e\u0000' OR 1=1 --/../../etc/passwd"
PREDICT_CASES: list[Case] = [
    Case(
        "P01", "POST", "/predict", raw_body('{"as_of": "2025-09-30", "features": ['), needle="json"
    ),
    Case("P02", "POST", "/predict", raw_body("")),
    Case("P03", "POST", "/predict", const_body([1, 2])),
    Case("P04", "POST", "/predict", raw_body("null")),
    Case("P05", "POST", "/predict", lambda s: {"features": [demo_row(s)]}, needle="as_of"),
    Case("P06", "POST", "/predict", lambda s: {"as_of": 20250930, "features": [demo_row(s)]}),
    Case("P07", "POST", "/predict", features_body(demo_row, as_of="2025-13-45"), needle="as_of"),
    Case("P08", "POST", "/predict", features_body(demo_row, as_of="9999-12-31"), needle="as_of"),
    Case("P09", "POST", "/predict", lambda s: {**features_body(demo_row)(s), **_hist()(s)}),
    Case("P10", "POST", "/predict", const_body({"as_of": AS_OF})),
    Case("P11", "POST", "/predict", const_body({"as_of": AS_OF, "features": []})),
    Case(
        "P12",
        "POST",
        "/predict",
        features_body(lambda s: {k: v for k, v in demo_row(s).items() if k != "customer_id"}),
    ),
    Case("P13", "POST", "/predict", features_body({"customer_id": "only"}), needle="orders_total"),
    Case(
        "P14",
        "POST",
        "/predict",
        lambda s: json.dumps(
            features_body(lambda s: demo_row(s, frequency=float("nan")))(s)
        ).encode(),
        needle="frequency",
    ),
    Case(
        "P15",
        "POST",
        "/predict",
        lambda s: json.dumps(
            features_body(lambda s: demo_row(s, recency=float("inf")))(s)
        ).encode(),
        needle="recency",
    ),
    Case(
        "P16",
        "POST",
        "/predict",
        lambda s: (
            json.dumps(features_body(demo_row)(s))
            .replace('"monetary_value": ', '"monetary_value": 1e400, "x_": ', 1)
            .encode()
        ),
    ),
    Case("P17", "POST", "/predict", features_body(lambda s: demo_row(s, frequency=1e308, T=1e308))),
    Case(
        "P18",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, frequency=-1)),
        needle="frequency",
    ),
    Case(
        "P19",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, recency="lots")),
        needle="recency",
    ),
    Case("P20", "POST", "/predict", features_body(lambda s: demo_row(s, T={"a": 1})), needle="T"),
    Case("P21", "POST", "/predict", features_body(demo_row, demo_row), needle="duplicate"),
    Case(
        "P22",
        "POST",
        "/predict",
        lambda s: {**features_body(demo_row)(s), "colour": "red"},
        needle="colour",
    ),
    Case(
        "P23", "POST", "/predict", lambda s: {**features_body(demo_row)(s), "include_reasons": "no"}
    ),
    Case("P24", "POST", "/predict", _many_rows(MAX_BATCH + 1), needle="FIDELITE_MAX_BATCH"),
    Case(
        "P25",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, customer_id="x" * 1_000_000)),
        needle="customer_id",
    ),
    Case("P26", "POST", "/predict", features_body(lambda s: demo_row(s, customer_id=None))),
    Case(
        "P27",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, customer_id=True)),
        needle="customer_id",
    ),
    Case(
        "P28",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, customer_id=HOSTILE_ID)),
        ok=(200,),
    ),
    Case(
        "P29",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, recency=True)),
        needle="recency",
    ),
    Case(
        "P30",
        "POST",
        "/predict",
        features_body(lambda s: {**demo_row(s), **{f"u{i}": 1 for i in range(5000)}}),
    ),
    Case(
        "P31",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, best_channel=7)),
        needle="best_channel",
    ),
    Case(
        "P32",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, frequency=9, orders_total=2)),
        needle="frequency",
    ),
    Case("P33", "POST", "/predict", features_body(lambda s: demo_row(s, T=-5)), needle="T"),
    Case(
        "P34",
        "POST",
        "/predict",
        features_body(lambda s: demo_row(s, customer_id=1), lambda s: demo_row(s, customer_id="1")),
    ),
    Case("H01", "POST", "/predict", _hist(lambda h: h.update(transactions=[]))),
    Case("H02", "POST", "/predict", _hist(_drop_tx("amount")), needle="amount"),
    Case("H03", "POST", "/predict", _hist(_tx(amount="59.9")), needle="amount"),
    Case(
        "H04",
        "POST",
        "/predict",
        lambda s: json.dumps(_hist(_tx(amount=float("nan")))(s)).encode(),
        needle="amount",
    ),
    Case(
        "H05",
        "POST",
        "/predict",
        lambda s: (
            json.dumps(_hist(_tx(amount=0.5))(s))
            .replace('"amount": 0.5', '"amount": -1e999', 1)
            .encode()
        ),
        needle="amount",
    ),
    Case("H06", "POST", "/predict", _hist(_tx(amount=1e300)), needle="amount"),
    Case("H07", "POST", "/predict", _hist(_tx(timestamp="yesterday")), needle="timestamp"),
    Case(
        "H08", "POST", "/predict", _hist(_tx(timestamp="2025-11-02T00:00:00")), needle="timestamp"
    ),
    Case("H09", "POST", "/predict", _hist(as_of="2001-01-01"), needle="timestamp"),
    Case(
        "H10", "POST", "/predict", _hist(_tx(timestamp="1500-01-01T00:00:00")), needle="timestamp"
    ),
    Case("H11", "POST", "/predict", _hist(as_of="0001-01-01"), needle="as_of"),
    Case("H12", "POST", "/predict", _hist(as_of="9999-12-31"), needle="as_of"),
    Case("H13", "POST", "/predict", _hist(as_of="2262-04-11"), needle="as_of"),
    Case(
        "H14",
        "POST",
        "/predict",
        _hist(
            lambda h: h["transactions"].extend(
                [dict(h["transactions"][0]), dict(h["transactions"][0], amount=-10.0)]
            )
        ),
        ok=(200,),
    ),
    Case("H15", "POST", "/predict", _hist(_tx(customer_id="")), needle="customer_id"),
    Case("H16", "POST", "/predict", _hist(_tx(customer_id="c" * 257)), needle="customer_id"),
    Case("H17", "POST", "/predict", _hist(_tx(discount=-5)), needle="discount"),
    Case("H18", "POST", "/predict", _hist(_tx(colour="red")), needle="colour"),
    Case(
        "H19",
        "POST",
        "/predict",
        _hist(lambda h: h["events"][0].update(timestamp="2026-01-01T00:00:00")),
        needle="timestamp",
    ),
    Case(
        "H20",
        "POST",
        "/predict",
        _hist(
            lambda h: h.update(
                customers=[
                    {
                        "customer_id": h["transactions"][0]["customer_id"],
                        "signup_at": "2026-01-01T00:00:00",
                    }
                ]
            )
        ),
        needle="signup_at",
    ),
    Case(
        "H21",
        "POST",
        "/predict",
        _hist(
            lambda h: h["events"][0].update(
                channel="<img src=x>\u0000", event_type="'; drop table--"
            )
        ),
        ok=(200,),
    ),
    Case(
        "H22",
        "POST",
        "/predict",
        _many_customers_history(MAX_BATCH + 1),
        needle="FIDELITE_MAX_BATCH",
    ),
    Case(
        "H23",
        "POST",
        "/predict",
        _hist(_tx(timestamp="2025-09-30T23:30:00-05:00")),
        needle="timestamp",
    ),
    Case(
        "H24",
        "POST",
        "/predict",
        _hist(
            lambda h: h.update(
                customers=[
                    {"customer_id": h["transactions"][0]["customer_id"], "email_opt_in": "maybe"}
                ]
            )
        ),
        needle="email_opt_in",
    ),
    Case(
        "H25",
        "POST",
        "/predict",
        _hist(lambda h: h.update(customers=[{"customer_id": "nobody-yet"}])),
        ok=(200,),
    ),
    Case("H26", "POST", "/predict", _hist(_tx(order_id=None)), needle="order_id"),
    Case("H27", "POST", "/predict", _hist(_tx(timestamp=1735689600)), needle="timestamp"),
    Case(
        "H28",
        "POST",
        "/predict",
        const_body(
            {
                "as_of": AS_OF,
                "history": {
                    "transactions": [
                        {
                            "customer_id": "z",
                            "order_id": "o",
                            "timestamp": "2025-05-01",
                            "amount": 0,
                        }
                    ]
                },
            }
        ),
        ok=(200,),
    ),
    Case(
        "H29",
        "POST",
        "/predict",
        const_body(
            {
                "as_of": AS_OF,
                "history": {
                    "transactions": [
                        {
                            "customer_id": "r",
                            "order_id": "o",
                            "timestamp": "2025-05-01",
                            "amount": -20,
                        }
                    ]
                },
            }
        ),
        ok=(200,),
    ),
]
