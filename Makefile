# Every target installs what it needs into .venv by itself; CI runs `make test` verbatim.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
# stamps: sessionfix itself (what `make demo` needs); and with the test and lint tools
RUN := $(VENV)/.installed
DEV := $(VENV)/.installed-dev

.PHONY: demo test lint bench regen clean models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(RUN): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $(RUN)

$(DEV): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test]'
	touch $(RUN) $(DEV)

# The demo session has findings (exit 1): that is the point of the demo, not a failure.
demo: $(RUN)
	@$(BIN)/sessionfix scan fixtures/demo --json demo-scan.json --html demo-report.html --rate 60 --currency EUR; \
	  test $$? -le 1
	@echo "JSON report written to demo-scan.json, HTML report to demo-report.html"
	@$(BIN)/sessionfix align fixtures/demo --out demo-aligned --force; test $$? -le 1
	@echo "Realigned stems written to demo-aligned/; run '$(BIN)/sessionfix --help' (or 'source $(BIN)/activate') for more"

test: $(DEV)
	$(BIN)/python -m pytest -q

lint: $(DEV)
	$(BIN)/ruff check src tests fixtures benchmarks models
	$(BIN)/mypy src

bench: $(DEV)
	$(BIN)/python benchmarks/bench.py

regen: $(DEV)
	$(BIN)/python fixtures/make_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info build \
	  demo-scan.json demo-report.html demo-aligned

# Retrain models/roles-v1.npz from renders anyone can make (see models/roles-v1.md). EVAL_PYTHON must
# have the renderers' needs (../shared/eval/setup.sh); KIT_GIT is a local git copy of
# github.com/sfzinstruments/DrumGizmo.MuldjordKit (three render_real.py sessions are made from it);
# REAL may name more render_real.py renders to add.
EVAL_PYTHON ?= /tmp/sessionfix-eval-venv/bin/python
models: $(RUN)
	@test -n "$(KIT_GIT)" || { echo "make models needs KIT_GIT=DIR, a git copy of the MuldjordKit (see models/roles-v1.md)"; exit 2; }
	$(BIN)/python models/train_roles.py --eval-python $(EVAL_PYTHON) --kit-git $(KIT_GIT) $(if $(REAL),--real $(REAL),)
