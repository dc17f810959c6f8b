# dynoline developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: k8s-bin setup test test-fast test-integration lint typecheck demo bench crds clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## every tier: lint, types, unit + store, then the real-control-plane integration tier
test: setup lint typecheck k8s-bin
	$(BIN)/pytest -m "not integration" -q
	$(BIN)/pytest -m integration -q

## kube-apiserver, kube-controller-manager, kubectl, etcd from the Go module proxy (cached in .build/)
k8s-bin:
	bash tests/k8s-tools/build.sh

test-fast: setup
	$(BIN)/pytest -m "not integration and not slow" -q

test-integration: setup k8s-bin
	$(BIN)/pytest -m integration -q

lint: setup
	$(BIN)/ruff check workloads controllers tests
	$(BIN)/ruff format --check workloads controllers tests

typecheck: setup
	$(BIN)/mypy

demo: setup
	$(BIN)/dynoline demo

bench: setup
	$(BIN)/dynoline bench ingest $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench stream $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench query $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .dynoline
