# trainenv — build, test and run. `make help` lists the targets.

# Versions of the tools the project builds itself (see e2e/tools). Change them here only.
KUBE_VERSION ?= v1.37.2
ETCD_VERSION ?= v3.6.5
KWOK_VERSION ?= v0.8.0
CONTROLLER_GEN_VERSION ?= v0.23.0
HELM_VERSION ?= v3.22.0

BIN := $(CURDIR)/bin
# envtest reads kube-apiserver and etcd from here (KUBEBUILDER_ASSETS).
ENVTEST_ASSETS := $(BIN)/k8s/$(KUBE_VERSION)
CONTROLLER_GEN := $(BIN)/controller-gen
HELM := $(BIN)/helm-$(HELM_VERSION)
IMG ?= trainenv/manager:dev

# The OLM bundle (make bundle). BUNDLE_DIGEST is the manager image's digest: the default is
# a placeholder so that the checked-in bundle is reproducible; a release sets the digest of
# the image it pushed (make bundle BUNDLE_DIGEST=sha256:...).
BUNDLE_VERSION ?= 0.1.0
BUNDLE_IMAGE ?= trainenv/manager
BUNDLE_DIGEST ?= sha256:0000000000000000000000000000000000000000000000000000000000000000
BUNDLE_CHANNELS ?= candidate
BUNDLE_DEFAULT_CHANNEL ?= candidate

# go-nvml's header marks NVML calls trainenv never makes as deprecated; keep cgo quiet.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests.
	$(CONTROLLER_GEN) rbac:roleName=trainenv-manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: helm-sync
helm-sync: manifests ## Copy the CRDs, RBAC rules, agent policy and alerts from config/ into the Helm chart.
	hack/helm-sync.sh

.PHONY: bundle
bundle: manifests ## Generate the OLM bundle (bundle/, bundle.Dockerfile) from config/.
	go run ./hack/bundlegen -version $(BUNDLE_VERSION) -image $(BUNDLE_IMAGE) -digest $(BUNDLE_DIGEST) \
	  -channels $(BUNDLE_CHANNELS) -default-channel $(BUNDLE_DEFAULT_CHANNEL)

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object paths="./..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: tidy
tidy: ## go mod tidy (the operator's module and the check modules under e2e/tools).
	go mod tidy
	cd e2e/tools/bundlecheck && go mod tidy
	cd e2e/tools/promcheck && go mod tidy

.PHONY: verify
verify: generate manifests helm-sync bundle fmt tidy vet ## Regenerate everything, then fail if the tree changed (stale generated code).
	@if [ -n "$$(git status --porcelain)" ]; then \
	  echo "make verify: the tree is dirty after regenerating; commit the result:"; \
	  git status --porcelain; git --no-pager diff --stat; exit 1; \
	fi

.PHONY: test
test: manifests generate envtest-assets helm ## Unit tests, controller and packaging tests against a real kube-apiserver and etcd.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" HELM="$(HELM)" TRAINENV_REQUIRE_TOOLS=1 \
	  go test ./... -count=1 -coverprofile cover.out
	$(MAKE) test-tools

# The checks that need heavy dependencies run in their own modules under e2e/tools, so that
# the operator's module stays lean: operator-framework's bundle validators, Prometheus'
# PromQL parser.
.PHONY: test-tools
test-tools: helm ## Validate the OLM bundle (operator-framework validators) and the alert rules (PromQL parser).
	cd e2e/tools/bundlecheck && go test ./... -count=1
	cd e2e/tools/promcheck && HELM="$(HELM)" go test ./... -count=1

##@ Local cluster (no Docker, no cluster of your own)

DEV_STATE := $(BIN)/dev
DEV_KUBECONFIG := $(DEV_STATE)/kubeconfig

.PHONY: dev
dev: manifests build dev-tools ## Local control plane + simulated GPU nodes + registry + the operator + samples.
	e2e/cluster/up.sh $(ENVTEST_ASSETS) $(DEV_STATE)
	KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/operator.sh $(BIN)/manager $(DEV_STATE)

.PHONY: e2e
e2e: ## make dev from scratch, check the sample runs its pinned digest, then tear it down.
	$(MAKE) dev-clean
	trap '$(MAKE) dev-clean' EXIT; $(MAKE) dev && KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-sample.sh

.PHONY: dev-down
dev-down: ## Stop the local cluster and the operator (state is kept).
	e2e/cluster/down.sh $(DEV_STATE)

.PHONY: dev-clean
dev-clean: ## Stop the local cluster and delete its state.
	e2e/cluster/down.sh $(DEV_STATE) --purge

.PHONY: dev-tools
dev-tools: envtest-assets $(ENVTEST_ASSETS)/kube-scheduler $(ENVTEST_ASSETS)/kwok registry-server ## Build or install what the local cluster runs.

$(ENVTEST_ASSETS)/kube-scheduler:
	e2e/tools/build-kube.sh $(KUBE_VERSION) $(ENVTEST_ASSETS) kube-scheduler kube-controller-manager

$(ENVTEST_ASSETS)/kwok:
	e2e/tools/build-kwok.sh $(KWOK_VERSION) $(ENVTEST_ASSETS)

.PHONY: registry-server
registry-server: ## Install the CNCF distribution registry (Debian package docker-registry) if missing.
	@command -v docker-registry >/dev/null || { \
	  echo "installing the docker-registry package (the CNCF distribution registry)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }

##@ Build

# What the images hold (see Dockerfile); the in-pod tools and the plugin once their commands exist.
BUILD_TARGETS := manager node-agent $(foreach t,entrypoint preflight kubectl-trainenv,$(if $(wildcard cmd/$(t)),$(t)))

.PHONY: build
build: generate ## Build the binaries with hack/build.sh, the script the Dockerfile runs.
	for t in $(BUILD_TARGETS); do hack/build.sh $$t $(BIN); done

.PHONY: run
run: manifests generate ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd --health-probe-bind-address=:8081 --metrics-bind-address=:8080

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig (policy-controller's too, unless it is there).
	kubectl apply --server-side -f config/crd/bases
	kubectl get crd clusterimagepolicies.policy.sigstore.dev >/dev/null 2>&1 || kubectl apply --server-side -k config/sigstore

.PHONY: deploy
deploy: manifests ## Install the operator with kustomize (config/default) into the cluster of the current kubeconfig.
	kubectl apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove what make deploy installed (the CRD and the environments too).
	kubectl delete --ignore-not-found -k config/default

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster of the current kubeconfig.
	kubectl delete --ignore-not-found -f config/crd/bases

##@ Tools (built from the Go module proxy, cached outside the clone by version)

.PHONY: helm
helm: $(HELM) ## Build helm (pinned by HELM_VERSION).

# The version is in the file name so that changing HELM_VERSION rebuilds it.
$(HELM):
	e2e/tools/go-install.sh helm-$(HELM_VERSION) helm.sh/helm/v3/cmd/helm $(HELM_VERSION) $(BIN)

$(CONTROLLER_GEN):
	e2e/tools/go-install.sh controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen $(CONTROLLER_GEN_VERSION) $(BIN)

.PHONY: envtest-assets
envtest-assets: $(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd ## Build kube-apiserver and etcd for envtest.

$(ENVTEST_ASSETS)/kube-apiserver:
	e2e/tools/build-kube.sh $(KUBE_VERSION) $(ENVTEST_ASSETS) kube-apiserver

$(ENVTEST_ASSETS)/etcd:
	e2e/tools/build-etcd.sh $(ETCD_VERSION) $(ENVTEST_ASSETS)
