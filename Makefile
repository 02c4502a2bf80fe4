# The front door: `make run` and `make test` set up a fresh machine by themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-lowest lint docs bench clean install postgres mermaid

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
	$(BIN)/ruff check framework tests bench examples
	$(BIN)/ruff format --check framework tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: $(STAMP) $(CHECKOV_STAMP) lint docs
	$(BIN)/python -m pytest -q --durations=15

# checkov, the security lint of the template's manifests (tests/test_template_k8s.py), in an
# environment of its own: beside the dev extra it would hold back packaging, pytest and
# python-dateutil. Its requirement is pyproject.toml's `k8s-lint` extra.
CHECKOV       ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
K8S_LINT       = $(shell $(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["k8s-lint"])')

$(CHECKOV_STAMP): pyproject.toml
	rm -rf $(CHECKOV)
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet '$(K8S_LINT)'
	touch $@

# The same suite at the lowest versions pyproject.toml's ranges admit: every range is a promise.
# uv resolves the project with its dev extra, each direct dependency at its floor (their own
# dependencies at the newest that fit), into $(LOWEST)/requirements.txt, and installs that beside
# the venv's own pip (tests build a wheel with it).
# uv asks the registry pip asks. An index that pip is pointed to instead (PIP_INDEX_URL, or
# index-url in pip's configuration) is read at run time and handed to uv. pip's extra local indexes
# are not: each holds one release of a package, and uv, which takes a package's versions from the
# first index that has it, would see only that release.
LOWEST       ?= .venv-lowest
LOWEST_BIN   := $(LOWEST)/bin
LOWEST_STAMP := $(LOWEST)/.installed
UV_INDEX      = $(or $(PIP_INDEX_URL),$(shell $(BIN)/python -m pip config get global.index-url 2>/dev/null))
UV_PIP        = $(BIN)/uv pip $(1) --quiet --python $(LOWEST_BIN)/python $(if $(UV_INDEX),--index-url $(UV_INDEX))

$(LOWEST_STAMP): pyproject.toml $(STAMP)
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(call UV_PIP,compile) --resolution lowest-direct --extra dev pyproject.toml -o $(LOWEST)/requirements.txt
	$(call UV_PIP,install) -r $(LOWEST)/requirements.txt
	$(call UV_PIP,install) --no-deps -e .
	touch $@

# FRAMEWORK_TEST_LOWEST: tests that install the framework into a fresh environment (where pip
# resolves the newest versions) leave it to `make test`.
test-lowest: $(LOWEST_STAMP)
	FRAMEWORK_TEST_LOWEST=1 $(LOWEST_BIN)/python -m pytest -q --durations=15

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
	rm -rf $(VENV) $(LOWEST) $(CHECKOV) site build *.egg-info
