# The front door: `make run` and `make test` set up a fresh machine by themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint docs bench clean install postgres mermaid

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

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

# Refresh the site's own copy of mermaid (docs/js/, committed: the docs build needs no network).
MERMAID_VERSION ?= 11.17.2
mermaid:
	rm -rf build/mermaid && mkdir -p build/mermaid
	cd build/mermaid && npm install --silent --no-save mermaid@$(MERMAID_VERSION)
	cp build/mermaid/node_modules/mermaid/dist/mermaid.min.js docs/js/mermaid.min.js
	cp build/mermaid/node_modules/mermaid/LICENSE docs/js/mermaid.LICENSE

bench: $(VENV)/.bench
	@command -v wrk >/dev/null 2>&1 && command -v valgrind >/dev/null 2>&1 \
		|| apt-get install -y -qq wrk valgrind >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq wrk valgrind >/dev/null; }
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) site build *.egg-info
