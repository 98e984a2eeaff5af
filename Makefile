# The few commands people type. Each one sets up what it needs on a fresh machine
# (Python 3.11+, Node 22+ with npm), so `make demo` and `make test` are all a new user runs.
# The CDK CLI and the AWS SDK for JavaScript support Node ^22 and ^24; with an older node,
# `make setup` says so and installs Node 22 from the npm registry (the `node` package) into
# node_modules/node/bin, which every target that runs the CDK puts first on PATH (demo, test,
# bench, mutation, synth, deploy): the CDK in Python runs on Node.js too, through jsii.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CDK := node_modules/.bin/cdk
NODE_MIN := 22
NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
NODE_BIN := $(CURDIR)/node_modules/node/bin
WITH_NODE := PATH="$(NODE_BIN):$(CURDIR)/$(BIN):$$PATH"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup demo test docs dist bench mutation synth deploy clean

setup: $(STAMP) $(CDK)

$(STAMP): pyproject.toml sfn_breaker/__init__.py  # __init__ holds the version the metadata is built with
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(CDK): package.json
	npm install --no-audit --no-fund --silent
	@if [ "$(NODE_MAJOR)" -lt $(NODE_MIN) ]; then \
	  echo "node $$(node --version 2>/dev/null || echo missing) is older than the CDK supports (^22, ^24): using Node $(NODE_MIN) from npm for the CDK CLI; install Node $(NODE_MIN)+ (https://nodejs.org) to use your own."; \
	  npm install --no-save --no-audit --no-fund --silent node@$(NODE_MIN); \
	fi
	touch $(CDK)

demo: setup ## the main job: the outage story, locally when no AWS account is configured
	$(WITH_NODE) $(BIN)/breaker demo

test: setup ## lint, types, the documentation's strict build, and the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lambdas infra sfn_breaker bench/outage bench/reference_design bench/scale
	$(MAKE) --no-print-directory docs
	$(WITH_NODE) $(BIN)/pytest -n 2

# Never with --quiet: MkDocs then raises its logger to ERROR, strict mode counts no warning, and a
# broken link builds with exit code 0 (tests/test_docs.py checks that a warning fails this target).
docs: setup ## the documentation site into site/; strict: a broken link or a page missing from nav fails
	$(BIN)/mkdocs build --strict

dist: setup ## the sdist, and the wheel built from it, into dist/; checked as the package index will show them
	rm -rf dist sfn_breaker.egg-info  # a stale egg-info would carry an old file list into the sdist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -c "import sys, zipfile; (w,) = sys.argv[1:]; \
	  assert 'sfn_breaker/statemachine/circuit_breaker.asl.json' in zipfile.ZipFile(w).namelist(), 'no workflow in ' + w" dist/*.whl
	$(BIN)/python -c "import sys, tarfile; (s,) = sys.argv[1:]; names = tarfile.open(s).getnames(); \
	  assert any(n.endswith('/CHANGELOG.md') for n in names), 'no CHANGELOG.md in ' + s" dist/*.tar.gz
	$(BIN)/twine check --strict dist/*

bench: setup ## on demand: the outage benchmark, four strategies on the emulator (about 5 minutes); writes bench-output/
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(WITH_NODE) $(BIN)/python -m bench.outage

mutation: setup ## on demand, not in CI: deliberate bugs in the workflow and the rules, each must fail a test
	$(BIN)/pip install --quiet -e ".[dev,mutation]"
	$(WITH_NODE) $(BIN)/python -m tests.mutation_check --mutmut

synth: setup
	$(WITH_NODE) $(CDK) synth --quiet

deploy: setup
	$(WITH_NODE) $(CDK) deploy

clean:
	rm -rf $(VENV) node_modules cdk.out site dist .pytest_cache .mypy_cache .ruff_cache
