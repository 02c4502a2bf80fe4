# The front door: `make run` and `make test` set up a fresh machine by themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint docs bench clean install postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `exec`: the shell hands its place to `framework`, so a Ctrl+C that the service handles (exit 0)
# ends `make run` cleanly instead of killing the shell (`make: *** Interrupt`).
run: $(STAMP)
	cd examples && exec $(abspath $(BIN))/framework run orders.app:App

lint: $(STAMP)
	$(BIN)/ruff check framework tests bench
	$(BIN)/ruff format --check framework tests bench
	$(BIN)/mypy

test: $(STAMP) lint docs
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) site build *.egg-info
