# dynoline developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: k8s-bin test-tools setup test test-fast test-integration lint typecheck demo bench crds clean e2e-kind e2e-local \
	e2e-run images cluster-up cluster-down cluster-status

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the editable install's notice about same-named folders would print before make demo's header
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## every tier: lint, types, unit + store + chart (helm lint/template/schema, promtool), then the
## real-control-plane integration tier (with the chart's server-side dry-run and RBAC). A missing helm or
## promtool is a failure here (DYNOLINE_REQUIRE_TOOLS=1), never a skip.
test: setup lint typecheck k8s-bin test-tools
	DYNOLINE_REQUIRE_TOOLS=1 $(BIN)/pytest -m "not integration" -q
	DYNOLINE_REQUIRE_TOOLS=1 $(BIN)/pytest -m integration -q

## kube-apiserver, kube-controller-manager, kubectl, etcd from the Go module proxy (cached in .build/)
k8s-bin:
	bash tests/k8s-tools/build.sh

## helm (built from its Go module, cached in .build/helm/), promtool and the Pushgateway (Debian packages)
test-tools:
	bash tests/chart/tools.sh

test-fast: setup test-tools
	DYNOLINE_REQUIRE_TOOLS=1 $(BIN)/pytest -m "not integration and not slow" -q

test-integration: setup k8s-bin test-tools
	DYNOLINE_REQUIRE_TOOLS=1 $(BIN)/pytest -m integration -q

lint: setup
	$(BIN)/ruff check workloads controllers tests
	$(BIN)/ruff format --check workloads controllers tests

typecheck: setup
	$(BIN)/mypy
	$(BIN)/mypy tests  # the same strict settings: a helper called with its arguments swapped fails here

## the CRDs (crds/, and the chart's copy in charts/dynoline/files/crds/) and the chart's RBAC rules, from the models
crds: setup
	$(BIN)/dynoline crds

demo: setup
	$(BIN)/dynoline demo

bench: setup k8s-bin
	$(BIN)/dynoline bench ingest $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench stream $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench query $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/dynoline bench sentinel $(if $(BENCH_DATABASE_URL),--database-url '$(BENCH_DATABASE_URL)')
	$(BIN)/python -m tests.envtest.bench_operator

## e2e tier (tests/e2e, docs/e2e.md): the chart's operator on a real cluster; never part of `make test`
E2E_CLUSTER      ?= dynoline-e2e
E2E_IMAGE_REPO   ?= dynoline
E2E_IMAGE_TAG    ?= e2e
E2E_RELEASE      ?= dynoline
E2E_OPERATOR_NS  ?= dynoline-system
E2E_PYTEST_ARGS  ?=

## kind: create the cluster if absent, build the image, load it into the node, then e2e-run (helm from PATH)
e2e-kind:
	kind get clusters 2>/dev/null | grep -qx '$(E2E_CLUSTER)' || kind create cluster --name '$(E2E_CLUSTER)' --wait 180s
	kind export kubeconfig --name '$(E2E_CLUSTER)'
	DOCKER_BUILDKIT=1 docker build -t '$(E2E_IMAGE_REPO):$(E2E_IMAGE_TAG)' .
	kind load docker-image '$(E2E_IMAGE_REPO):$(E2E_IMAGE_TAG)' --name '$(E2E_CLUSTER)'
	$(MAKE) e2e-run E2E_HELM="$$(command -v helm)"

## this machine, no Docker engine or registry: cluster-up, images, e2e-run, cluster-down (also on failure)
e2e-local: setup
	bash tests/cluster/e2e-local.sh

## e2e-run: the current kubeconfig's cluster, which must already see $(E2E_IMAGE_REPO):$(E2E_IMAGE_TAG). The suite
## installs the chart itself (helm from .build/, built from tests/k8s-tools/helm) and uninstalls it last. On the
## local cluster (KUBECONFIG = .build/cluster/kubeconfig) Prometheus, Alertmanager and a Pushgateway run on
## the host for the run (tests/e2e/monitoring), and are stopped whatever the outcome.
HELM_VERSION         := $(shell awk '$$1 == "require" && $$2 == "helm.sh/helm/v3" {print $$3}' tests/k8s-tools/helm/go.mod)
K8S_VERSION          := $(shell awk '$$1 == "require" && $$2 == "k8s.io/kubernetes" {print $$3}' tests/k8s-tools/go.mod)
E2E_HELM_BUILT       := $(CURDIR)/.build/helm/$(HELM_VERSION)/helm
E2E_HELM             ?= $(E2E_HELM_BUILT)
E2E_K8S_BIN          ?= $(CURDIR)/.build/k8s/$(K8S_VERSION)
E2E_LOCAL_KUBECONFIG := $(CURDIR)/.build/cluster/kubeconfig
E2E_LOCAL            ?= $(if $(and $(KUBECONFIG),$(filter $(E2E_LOCAL_KUBECONFIG),$(abspath $(KUBECONFIG)))),1,0)
E2E_MONITORING       ?= $(E2E_LOCAL)
E2E_MONITORING_DIR   ?= $(CURDIR)/.build/e2e/monitoring
E2E_PUSHGATEWAY_ADDR ?= 10.203.0.1:9091
E2E_POSTGRES_IMAGE   ?= $(if $(filter 1,$(E2E_LOCAL)),dynoline-e2e-postgres:15,postgres:17)
E2E_MONITORING_CMD    = $(BIN)/python -m tests.e2e.monitoring --workdir '$(E2E_MONITORING_DIR)' --helm '$(E2E_HELM)' \
	--release '$(E2E_RELEASE)' --namespace '$(E2E_OPERATOR_NS)' --pushgateway '$(E2E_PUSHGATEWAY_ADDR)'

e2e-run: setup
	@PATH='$(E2E_K8S_BIN)':"$$PATH" kubectl get --raw /readyz >/dev/null || { echo "e2e-run: no cluster reachable from the current kubeconfig (context: $$(PATH='$(E2E_K8S_BIN)':"$$PATH" kubectl config current-context 2>/dev/null || echo none))" >&2; exit 1; }
	$(if $(filter $(E2E_HELM_BUILT),$(E2E_HELM)),bash tests/k8s-tools/build.sh helm >/dev/null)
	@set -e; export PATH='$(E2E_K8S_BIN)':"$$PATH"; \
	if [ '$(E2E_MONITORING)' = 1 ]; then \
		trap "$(E2E_MONITORING_CMD) stop" EXIT; trap 'exit 130' INT TERM; \
		$(E2E_MONITORING_CMD) start; \
		export DYNOLINE_E2E_PROMETHEUS_URL=http://127.0.0.1:9090 DYNOLINE_E2E_ALERTMANAGER_URL=http://127.0.0.1:9093 \
			DYNOLINE_E2E_PUSHGATEWAY='http://$(E2E_PUSHGATEWAY_ADDR)'; \
	fi; \
	DYNOLINE_E2E=1 DYNOLINE_E2E_HELM='$(E2E_HELM)' DYNOLINE_E2E_IMAGE='$(E2E_IMAGE_REPO):$(E2E_IMAGE_TAG)' \
	DYNOLINE_E2E_RELEASE='$(E2E_RELEASE)' DYNOLINE_E2E_OPERATOR_NAMESPACE='$(E2E_OPERATOR_NS)' \
	DYNOLINE_E2E_POSTGRES_IMAGE='$(E2E_POSTGRES_IMAGE)' \
		$(BIN)/pytest tests/e2e -v -rs $(E2E_PYTEST_ARGS)

## a single-node cluster of real components as local processes (tests/cluster, docs/e2e.md); needs root
## images: built without Docker or a registry (tests/cluster/images.sh), imported into its containerd
images:
	bash tests/cluster/images.sh --import

cluster-up:
	bash tests/cluster/cluster.sh up

cluster-down:
	bash tests/cluster/cluster.sh down

cluster-status:
	bash tests/cluster/cluster.sh status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .dynoline
