"""`fidelite report`: one self-contained HTML page, clear errors on bad input."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from fidelite.cli import app
from fidelite.errors import DataContractError
from tests.reports.conftest import AS_OF, _hand_made

runner = CliRunner()


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-cli")
    transactions, customers, scores = _hand_made()
    paths = {
        "transactions": root / "transactions.csv",
        "customers": root / "customers.csv",
        "scores": root / "scores.parquet",
    }
    transactions.assign(
        timestamp=transactions["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    ).to_csv(paths["transactions"], index=False)
    customers.assign(signup_at=customers["signup_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(
        paths["customers"], index=False
    )
    scores.to_parquet(paths["scores"])
    return paths


def _args(tables, out, **extra):
    args = [
        "report",
        "--transactions",
        str(tables["transactions"]),
        "--customers",
        str(tables["customers"]),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
    ]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def test_writes_one_self_contained_page(tables, tmp_path):
    out = tmp_path / "nested" / "report.html"
    result = runner.invoke(app, _args(tables, out, scores=tables["scores"], margin=0.4))
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert out.stat().st_size < 10_000_000
    assert html.count("* plotly.js v") == 1  # the library is inlined, once
    # nothing is fetched at view time: no external scripts, styles, images or fonts
    markup = re.sub(r"<script>.*?</script>", "<script></script>", html, flags=re.S)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)
    assert "<script src" not in markup and "<link" not in markup and "@import" not in markup
    for section in ("kpis", "lifecycle", "acquisition", "cohorts", "value", "health"):
        assert f'id="{section}"' in html
    assert 'id="campaigns"' not in html  # no campaigns table, no section
    assert "margin (0.4)" in html
    assert "wrote" in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"as_of": "30/06/2025"}, "--as-of"),
        ({"transactions": "missing.csv"}, "missing.csv"),
        ({"scores": "bad_scores"}, "missing required column"),
        ({"margin": "1.5"}, "margin"),
    ],
)
def test_bad_input_is_named(tables, tmp_path, change, message):
    paths = dict(tables)
    extra = {}
    if change.get("scores") == "bad_scores":
        bad = tmp_path / "scores.csv"
        bad.write_text("customer_id,predicted_clv\nK001,3.0\n")
        extra["scores"] = bad
    if "transactions" in change:
        paths["transactions"] = tmp_path / change["transactions"]
    if "margin" in change:
        extra["margin"] = change["margin"]
    args = _args(paths, tmp_path / "r.html", **extra)
    if "as_of" in change:
        args[args.index(AS_OF)] = change["as_of"]
    result = runner.invoke(app, args)
    assert result.exit_code in (DataContractError.exit_code, 2), result.output
    assert message in result.output
    assert not (tmp_path / "r.html").exists()
