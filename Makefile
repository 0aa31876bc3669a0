# Two entry points: `make run` (the app on :3000) and `make test` (every test). Both set up what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
BUN := $(TOOLS)/node_modules/.bin/bun
export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)
export REFLEX_USE_SYSTEM_BUN := 1
export REFLEX_TELEMETRY_ENABLED := false

.PHONY: setup run test bench screenshots clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(BUN):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error bun@1.4.4

setup: $(VENV)/.installed $(BUN)

run: setup
	$(BIN)/tollgate migrate
	$(BIN)/tollgate demo --if-missing
	$(BIN)/reflex run --env prod --single-port --frontend-port $${TOLLGATE_PORT:-3000} --backend-port $${TOLLGATE_PORT:-3000}

test: setup
	$(BIN)/pytest

screenshots: setup
	$(BIN)/pytest -q tests/browser -k screenshot

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .web .states
