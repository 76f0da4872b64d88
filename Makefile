# Every target installs what it needs into .venv by itself; CI runs `make test` verbatim.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench regen clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	-$(BIN)/sessionfix scan fixtures/demo --json demo-scan.json --html demo-report.html --rate 60
	@echo "JSON report written to demo-scan.json, HTML report to demo-report.html"
	$(BIN)/sessionfix align fixtures/demo --out demo-aligned
	@echo "Realigned stems written to demo-aligned/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests fixtures benchmarks
	$(BIN)/mypy src

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

regen: $(STAMP)
	$(BIN)/python fixtures/make_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-scan.json demo-report.html demo-aligned
