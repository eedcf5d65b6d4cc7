# fidelite: two commands do everything from a clean clone with Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
DATA   := data/demo
ASOF   ?= 2025-12-31
HORIZON ?= 90
CUSTOMERS ?= 20000
PORT   ?= 3000

.PHONY: install install-bench run demo-data features train score serve test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

install-bench: install
	$(BIN)/pip install -e ".[dev,bench]"

demo-data: install
	$(BIN)/fidelite demo-data --customers $(CUSTOMERS) --out $(DATA) --seed 7

features: demo-data
	$(BIN)/fidelite features --transactions $(DATA)/transactions.parquet \
		--events $(DATA)/events.parquet --customers $(DATA)/customers.parquet \
		--as-of $(ASOF) --out $(DATA)/features.parquet

run: features
	@echo "(training and serving land with the training/serving issues)"

test: install
	$(BIN)/python -m pytest

bench: install-bench
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) data build *.egg-info
