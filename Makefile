# dynoline developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: k8s-bin setup test test-fast test-integration lint typecheck demo bench crds clean e2e-kind e2e-local \
	cluster-up cluster-down cluster-status

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

bench: setup k8s-bin
	$(BIN)/dynoline bench ingest $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench stream $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench query $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench sentinel $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench operator

## e2e tier (tests/e2e, docs/e2e.md): the chart's operator on a real cluster; never part of `make test`
E2E_CLUSTER      ?= dynoline-e2e
E2E_IMAGE_REPO   ?= dynoline
E2E_IMAGE_TAG    ?= e2e
E2E_RELEASE      ?= dynoline
E2E_OPERATOR_NS  ?= dynoline-system
E2E_PYTEST_ARGS  ?=

## kind: create the cluster if absent, build the image, load it into the node, then e2e-local
e2e-kind:
	kind get clusters 2>/dev/null | grep -qx '$(E2E_CLUSTER)' || kind create cluster --name '$(E2E_CLUSTER)' --wait 180s
	kind export kubeconfig --name '$(E2E_CLUSTER)'
	DOCKER_BUILDKIT=1 docker build -t '$(E2E_IMAGE_REPO):$(E2E_IMAGE_TAG)' .
	kind load docker-image '$(E2E_IMAGE_REPO):$(E2E_IMAGE_TAG)' --name '$(E2E_CLUSTER)'
	$(MAKE) e2e-local

## the current kubeconfig's cluster, which must already see $(E2E_IMAGE_REPO):$(E2E_IMAGE_TAG)
e2e-local: setup
	@kubectl get --raw /readyz >/dev/null || { echo "e2e-local: no cluster reachable from the current kubeconfig (context: $$(kubectl config current-context 2>/dev/null || echo none))" >&2; exit 1; }
	helm upgrade --install '$(E2E_RELEASE)' charts/dynoline --namespace '$(E2E_OPERATOR_NS)' --create-namespace \
		--set image.repository='$(E2E_IMAGE_REPO)' --set image.tag='$(E2E_IMAGE_TAG)' --set image.pullPolicy=IfNotPresent \
		--set operator.resyncSeconds=30 --set operator.storeTtlSeconds=10 --set operator.verbose=true \
		--wait --timeout 10m
	kubectl apply --server-side --force-conflicts -f charts/dynoline/crds/
	kubectl apply -f tests/e2e/manifests/postgres.yaml
	kubectl --namespace dynoline-e2e-db rollout status deploy/telemetry-db --timeout=10m
	DYNOLINE_E2E=1 $(BIN)/pytest tests/e2e -v -rs $(E2E_PYTEST_ARGS)

## a single-node cluster of real components as local processes (tests/cluster, docs/e2e.md); needs root
cluster-up:
	bash tests/cluster/cluster.sh up

cluster-down:
	bash tests/cluster/cluster.sh down

cluster-status:
	bash tests/cluster/cluster.sh status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .dynoline
