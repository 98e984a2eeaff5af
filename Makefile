# The few commands people type. Each one sets up what it needs on a fresh machine
# (Python 3.11+, Node 20+ with npm), so `make demo` and `make test` are all a new user runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CDK := node_modules/.bin/cdk
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: setup demo test bench mutation synth deploy clean

setup: $(STAMP) $(CDK)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(CDK): package.json
	npm install --no-audit --no-fund --silent
	touch $(CDK)

demo: setup ## the main job: the outage story, locally when no AWS account is configured
	$(BIN)/breaker demo

test: setup ## lint, types, and the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lambdas infra sfn_breaker bench/outage bench/reference_design bench/scale
	$(BIN)/pytest

bench: setup ## on demand: the outage benchmark, four strategies on the emulator (about 5 minutes); writes bench-output/
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench.outage

mutation: setup ## on demand, not in CI: deliberate bugs in the workflow and the rules, each must fail a test
	$(BIN)/pip install --quiet -e ".[dev,mutation]"
	$(BIN)/python -m tests.mutation_check --mutmut

synth: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(CDK) synth --quiet

deploy: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(CDK) deploy

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
