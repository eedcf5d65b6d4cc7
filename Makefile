# fidelite: two commands do everything from a clean clone with Python 3.11.
#   make run   - venv, install, demo data, train + register champion, score, serve
#   make test  - venv, install, the whole test suite
PYTHON    ?= python3.11
VENV      := .venv
BIN       := $(VENV)/bin
DATA      := data/demo
SCORES    := data/scores.parquet
# `fidelite score` writes the report beside the scores (reports.publish.report_path_for).
SERVED_REPORT := $(basename $(SCORES)).report.html
REPORT    := data/report.html
ASOF      ?= 2025-12-31
HORIZON   ?= 90
CUSTOMERS ?= 20000
SEED      ?= 7
PORT      ?= 3000
TABLES    := --transactions $(DATA)/transactions.parquet --events $(DATA)/events.parquet \
             --customers $(DATA)/customers.parquet

.PHONY: install install-bench run demo-data features train score report serve browser test test-fast lint format bench bench-large clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install -e ".[dev,bench]"
	touch $@

install-bench: $(VENV)/.installed-bench

# The stamp names the size and seed, so `make run CUSTOMERS=...` regenerates the data
# instead of silently reusing an earlier demo set.
DEMO_STAMP := $(DATA)/.customers-$(CUSTOMERS)-seed-$(SEED)

$(DEMO_STAMP): | $(VENV)/.installed
	rm -rf $(DATA)
	$(BIN)/fidelite demo-data --customers $(CUSTOMERS) --out $(DATA) --seed $(SEED)
	touch $@

demo-data: $(DEMO_STAMP)

features: demo-data
	$(BIN)/fidelite features $(TABLES) --as-of $(ASOF) --out data/features.parquet

# --campaigns: past win-back campaigns (with control groups) train the uplift component
# that /winback and `fidelite winback` rank by.
train: demo-data
	$(BIN)/fidelite train $(TABLES) --campaigns $(DATA)/campaigns.parquet \
		--as-of $(ASOF) --horizon-days $(HORIZON) --promote

# Also renders the customer-base report once, beside the scores ($(SERVED_REPORT): the page
# GET /report serves), and logs it to the champion's MLflow run.
score: demo-data
	$(BIN)/fidelite score $(TABLES) --campaigns $(DATA)/campaigns.parquet --as-of $(ASOF) \
		--out $(SCORES)

# The customer-base report on its own (self-contained HTML), e.g. after changing options;
# the champion is scored on D - H for the calibration and gain charts. `make run` does not
# render it again: `make score` did, and $(REPORT) links to that page.
report: demo-data
	$(BIN)/fidelite report $(TABLES) --campaigns $(DATA)/campaigns.parquet --scores $(SCORES) \
		--as-of $(ASOF) --model-uri models:/fidelite@champion --out $(REPORT)

# Local demo without API keys; set FIDELITE_API_KEYS (and drop FIDELITE_AUTH=off) elsewhere.
serve: install
	FIDELITE_AUTH=$${FIDELITE_AUTH:-off} $(BIN)/fidelite serve --port $(PORT) --snapshot $(SCORES)

run: install
	$(MAKE) demo-data train score
	ln -sfn $(notdir $(SERVED_REPORT)) $(REPORT)
	$(MAKE) serve

# The report tests drive Debian's Chromium (never a browser downloaded at run time).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM)"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

browser: $(CHROMIUM)

test: install browser
	$(BIN)/python -m pytest

# The quick loop: everything except the tests marked slow (servers, clusters, browsers).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-bench
	$(BIN)/python benchmarks/run_all.py

bench-large: install-bench
	$(BIN)/python benchmarks/run_all.py --large

clean:
	rm -rf $(VENV) data build *.egg-info
