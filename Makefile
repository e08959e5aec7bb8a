# trainenv — build, test and run. `make help` lists the targets.

# Versions of the tools the project builds itself (see e2e/tools). Change them here only.
KUBE_VERSION ?= v1.37.2
ETCD_VERSION ?= v3.6.5
KWOK_VERSION ?= v0.8.0
CONTROLLER_GEN_VERSION ?= v0.23.0
COSIGN_VERSION ?= v2.6.5
# cosign v3 signs in the sigstore bundle format by default; both formats exist in the wild,
# so the integration tests sign with both CLIs.
COSIGN3_VERSION ?= v3.1.3
HELM_VERSION ?= v3.22.0
KYVERNO_VERSION ?= v1.19.1
GOLANGCI_LINT_VERSION ?= v2.15.0
# sigs.k8s.io/kube-api-linter has no releases yet: a pseudo-version (its main branch).
KUBE_API_LINTER_VERSION ?= v0.0.0-20260716143926-092fe0c72997

BIN := $(CURDIR)/bin
# envtest reads kube-apiserver and etcd from here (KUBEBUILDER_ASSETS).
ENVTEST_ASSETS := $(BIN)/k8s/$(KUBE_VERSION)
CONTROLLER_GEN := $(BIN)/controller-gen
COSIGN := $(BIN)/cosign
COSIGN3 := $(BIN)/cosign3
GOLANGCI_LINT := $(BIN)/golangci-lint
# Integration tests drive real clients; make test passes their paths and turns them on
# (without TRAINENV_INTEGRATION they skip; with it, a missing tool fails them).
INTEGRATION_ENV = TRAINENV_INTEGRATION=1 COSIGN="$(COSIGN)" COSIGN3="$(COSIGN3)" DOCKER_REGISTRY="$$(command -v docker-registry)"
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

.PHONY: docs
docs: manifests ## Generate docs/api.md, the API reference, from the CRDs (hack/apidocs).
	go run ./hack/apidocs -crds config/crd/bases -out docs/api.md

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object paths="./..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet (the scale benchmark too, behind its build tag).
	go vet ./...
	go vet -tags scalebench ./e2e/scale/

.PHONY: tidy
tidy: ## go mod tidy (the operator's module and the check modules under e2e/tools).
	go mod tidy
	cd e2e/tools/bundlecheck && go mod tidy
	cd e2e/tools/promcheck && go mod tidy
	cd e2e/tools/realenv && go mod tidy

.PHONY: verify
verify: generate manifests helm-sync bundle docs fmt tidy vet lint ## Regenerate everything, then fail if the tree changed (stale generated code).
	@if [ -n "$$(git status --porcelain)" ]; then \
	  echo "make verify: the tree is dirty after regenerating; commit the result:"; \
	  git status --porcelain; git --no-pager diff --stat; exit 1; \
	fi

.PHONY: test
test: manifests generate envtest-assets integration-tools access-tools python3 helm ## Unit, controller (real kube-apiserver and etcd), integration (real cosign, registry, sshd, ssh, ssh-audit, Jupyter) and packaging tests.
	$(INTEGRATION_ENV) KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" HELM="$(HELM)" TRAINENV_REQUIRE_TOOLS=1 \
	  go test ./... -count=1 -coverprofile cover.out
	$(MAKE) test-tools

.PHONY: bench
bench: integration-tools ## Verification benchmarks: trainenv cold and cached (legacy signatures and bundles), and the cosign v2 and v3 CLIs, on the real registry.
	$(INTEGRATION_ENV) go test ./internal/trust/policy/ -run '^$$' -bench . -count 1

# The scale benchmark: its own local cluster (ports apart from make dev's, state in
# bin/scale), not part of make test or CI. SCALE_ARGS override its flags, e.g.
# make bench-scale SCALE_ARGS="--nodes 100 --envs 500 --restart-envs 1000".
SCALE_ARGS ?=

.PHONY: bench-scale
bench-scale: manifests build dev-tools ## Scale benchmark: 1,000 simulated GPU nodes, 5,000 TrainingEnvironments vs as many bare pods, steady state, restart with 10,000 (docs/benchmarks.md).
	go run -tags scalebench ./e2e/scale --root $(CURDIR) --bin $(ENVTEST_ASSETS) --state $(BIN)/scale --manager $(BIN)/manager $(SCALE_ARGS)

# Every parser of outside input, each fuzzed for FUZZ_TIME (make fuzz FUZZ_TIME=2m for a
# longer run). The seed corpora also run in make test, as ordinary tests.
# The test binary runs with GOMAXPROCS=1 (hence one fuzzing worker): Go 1.26's fuzzing
# coordinator can wake on the -fuzztime deadline before its workers' context is cancelled
# and then fails the run with a bare "context deadline exceeded" and no crasher
# (golang/go#75804, fixed in Go 1.27); with one P that wake-up cannot overtake the
# cancellation. Drop the -exec once the toolchain is Go 1.27.
FUZZ_TIME ?= 10s
FUZZ_TARGETS := \
	./internal/registry:FuzzParseReference \
	./internal/cuda:FuzzParse \
	./internal/cuda:FuzzImageEnv \
	./internal/compat:FuzzNodeLabels \
	./internal/compat:FuzzDeviceSelectors \
	./internal/access:FuzzParseAuthorizedKeys \
	./internal/trust/policy:FuzzPolicyGlob

.PHONY: fuzz
fuzz: ## Fuzz image references, NVIDIA_REQUIRE_CUDA, image env, node labels, DRA device selectors, authorized_keys and policy globs (FUZZ_TIME each).
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZ_TIME)"; \
	  hack/fuzz.sh $${t%%:*} $${t#*:} $(FUZZ_TIME) || exit 1; \
	done

.PHONY: kyverno-policies
kyverno-policies: ## Print Kyverno ImageValidatingPolicies mirroring the current cluster's ClusterImagePolicies.
	@go run ./cmd/kyverno-policies

# The checks that need heavy dependencies run in their own modules under e2e/tools, so that
# the operator's module stays lean: operator-framework's bundle validators, Prometheus'
# PromQL parser.
.PHONY: test-tools
test-tools: helm ## Validate the OLM bundle (operator-framework validators) and the alert rules (PromQL parser).
	cd e2e/tools/bundlecheck && go test ./... -count=1
	cd e2e/tools/promcheck && HELM="$(HELM)" go test ./... -count=1

##@ Lint

.PHONY: lint
lint: lint-go lint-shell ## Run every linter; make verify runs this too.

# golangci-lint reads .golangci.yml (the linters, and why each exclusion is there); the
# Kubernetes API linter runs inside it, on api/. The check modules under e2e/tools are
# modules of their own: linted from their directories with the same file.
.PHONY: lint-go
lint-go: golangci-lint ## golangci-lint on the Go code, with the Kubernetes API linter on api/ (.golangci.yml).
	$(GOLANGCI_LINT) run ./...
	cd e2e/tools/bundlecheck && $(GOLANGCI_LINT) run ./...
	cd e2e/tools/promcheck && $(GOLANGCI_LINT) run ./...
	cd e2e/tools/realenv && $(GOLANGCI_LINT) run ./...

# Every shell script: the tracked *.sh files and the files whose #! line names a shell.
.PHONY: lint-shell
lint-shell: shellcheck ## shellcheck every shell script (settings in .shellcheckrc).
	@scripts=$$(git ls-files -z | xargs -0 awk 'FNR == 1 { if (FILENAME ~ /\.sh$$/ || /^#!.*[\/ ](ba|da|k)?sh( |$$)/) print FILENAME; nextfile }'); \
	echo "shellcheck $$(shellcheck --version | awk '/^version:/ {print $$2}'): $$(wc -w <<<"$$scripts") scripts"; \
	shellcheck $$scripts

##@ Local cluster (no Docker, no cluster of your own)

DEV_STATE := $(BIN)/dev
DEV_KUBECONFIG := $(DEV_STATE)/kubeconfig

.PHONY: dev
dev: manifests build dev-tools cosign helm mmdebstrap ## Local control plane, a real node, simulated GPU pools, a registry; trainenv's signed images installed with Helm; the samples.
	e2e/cluster/up.sh $(ENVTEST_ASSETS) $(DEV_STATE)
	KUBECONFIG=$(DEV_KUBECONFIG) HELM=$(HELM) e2e/cluster/install.sh $(BIN) $(DEV_STATE)

.PHONY: e2e
e2e: ## make dev from scratch; check trainenv installed by Helm and the signed samples (and the refused unsigned one), CUDA placement on three GPU pools, DRA allocation by the real scheduler, ssh/connect through the plugin, a hardened pod, a real environment (Jupyter, SSH, browser, workspace), bad images and the leader killed mid-batch on the real node, the kustomize and OLM installs; tear it down.
	$(MAKE) dev-clean
	trap '$(MAKE) dev-clean' EXIT; $(MAKE) dev access-tools chromium && KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-sample.sh $(DEV_STATE) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-pools.sh $(DEV_STATE) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-dra.sh $(DEV_STATE) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-access.sh $(DEV_STATE) $(ENVTEST_ASSETS) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-realnode.sh $(DEV_STATE) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-realenv.sh $(DEV_STATE) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-badinput.sh $(DEV_STATE) $(DEV_STATE)/images && \
	  KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-leader.sh $(DEV_STATE) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) HELM=$(HELM) e2e/cluster/check-kustomize.sh $(DEV_STATE) $(BIN) && \
	  KUBECONFIG=$(DEV_KUBECONFIG) HELM=$(HELM) e2e/cluster/check-olm.sh $(DEV_STATE) $(BIN)

.PHONY: dev-check-realnode
dev-check-realnode: ## On the running local cluster: a hardened pod runs on the real node; logs, exec, port-forward and its workspace work.
	KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-realnode.sh $(DEV_STATE)

.PHONY: dev-check-realenv
dev-check-realenv: build access-tools chromium ## On the running local cluster: the reference image's environment on the real node, through kubectl, the plugin, ssh, the Jupyter API and headless chromium (e2e/tools/realenv).
	KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-realenv.sh $(DEV_STATE)

.PHONY: dev-check-badinput
dev-check-badinput: build ## On the running local cluster: images without sshd, without a uid-1000 user, for another CPU, and a digest the node cannot pull each end in a condition that names the problem.
	KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-badinput.sh $(DEV_STATE) $(DEV_STATE)/images

.PHONY: dev-check-leader
dev-check-leader: ## On the running local cluster: the manager's pod deleted mid-way through a batch; the next leader finishes it with no duplicate and no lost workspace.
	KUBECONFIG=$(DEV_KUBECONFIG) e2e/cluster/check-leader.sh $(DEV_STATE)

.PHONY: dev-check-kustomize
dev-check-kustomize: ## On the running local cluster: replace the Helm install with kubectl apply -k config/with-sigstore at the built digest; the manager becomes Ready on the real node (make dev installs Helm's again).
	KUBECONFIG=$(DEV_KUBECONFIG) HELM=$(HELM) e2e/cluster/check-kustomize.sh $(DEV_STATE) $(BIN)

.PHONY: dev-check-olm
dev-check-olm: ## On the running local cluster: replace the Helm install with the OLM bundle's CSV deployed as OLM would (e2e/olmcsv) at the built digest; the manager becomes Ready on the real node.
	KUBECONFIG=$(DEV_KUBECONFIG) HELM=$(HELM) e2e/cluster/check-olm.sh $(DEV_STATE) $(BIN)

.PHONY: dev-down
dev-down: ## Stop the local cluster and the operator (state is kept).
	e2e/cluster/down.sh $(DEV_STATE)

.PHONY: dev-clean
dev-clean: ## Stop the local cluster and delete its state.
	e2e/cluster/down.sh $(DEV_STATE) --purge

.PHONY: dev-tools
dev-tools: envtest-assets $(ENVTEST_ASSETS)/kube-scheduler $(ENVTEST_ASSETS)/kwok registry-server node-tools ## Build or install what the local cluster runs.

$(ENVTEST_ASSETS)/kube-scheduler:
	e2e/tools/build-kube.sh $(KUBE_VERSION) $(ENVTEST_ASSETS) kube-scheduler kube-controller-manager

.PHONY: node-tools
node-tools: $(ENVTEST_ASSETS)/kubelet node-packages ## Build the kubelet and install containerd, runc and the CNI plugins (the real node of make dev).

$(ENVTEST_ASSETS)/kubelet:
	e2e/tools/build-kube.sh $(KUBE_VERSION) $(ENVTEST_ASSETS) kubelet

# Debian's packages; containerd 1.6 and runc 1.1 were checked with the kubelet above.
# iptables: node.sh's two rules (the FORWARD drop and the API server DNAT).
NODE_PACKAGES := containerd runc containernetworking-plugins iptables

.PHONY: node-packages
node-packages: ## Install containerd, runc and the CNI plugins (Debian packages) if missing.
	@missing=""; \
	for p in $(NODE_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || { \
	  echo "installing the Debian packages$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }

$(ENVTEST_ASSETS)/kwok:
	e2e/tools/build-kwok.sh $(KWOK_VERSION) $(ENVTEST_ASSETS)

.PHONY: registry-server
registry-server: ## Install the CNCF distribution registry (Debian package docker-registry) if missing.
	@command -v docker-registry >/dev/null || { \
	  echo "installing the docker-registry package (the CNCF distribution registry)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }

# The programs the access tests run for real (the images trainenv runs provide the same).
ACCESS_PACKAGES := openssh-server openssh-client ssh-audit jupyter-server

.PHONY: access-tools
access-tools: ## Install sshd, ssh, ssh-audit and the Jupyter server (Debian packages) if missing.
	@missing=""; \
	for p in $(ACCESS_PACKAGES); do grep -q "ok installed" <<<"$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || { \
	  echo "installing the Debian packages$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }

.PHONY: shellcheck
shellcheck: ## Install shellcheck (Debian package) if missing.
	@command -v shellcheck >/dev/null || { \
	  echo "installing the shellcheck package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }

.PHONY: chromium
chromium: ## Install chromium (Debian package) if missing: the real-node e2e opens Jupyter in it, headless (chromedp).
	@command -v chromium >/dev/null || { \
	  echo "installing the chromium package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

.PHONY: mmdebstrap
mmdebstrap: ## Install mmdebstrap (Debian package) if missing: it builds the reference image's root file system.
	@command -v mmdebstrap >/dev/null || { \
	  echo "installing the mmdebstrap package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }

.PHONY: python3
python3: ## Install python3 (Debian package) if missing: the preflight's torch check script is tested with it.
	@command -v python3 >/dev/null || { \
	  echo "installing the python3 package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null; }

##@ Build

# What the images hold (see Dockerfile); the in-pod tools and the plugin once their commands exist.
BUILD_TARGETS := manager node-agent entrypoint preflight kubectl-trainenv

.PHONY: build
build: generate ## Build the binaries with hack/build.sh, the script the Dockerfile runs.
	for t in $(BUILD_TARGETS); do hack/build.sh $$t $(BIN); done

# trainenv's images, built without Docker by hack/images from make build's binaries, pushed
# to IMAGES_REGISTRY, signed and attested (SPDX SBOM, SLSA provenance) with the cosign key
# pair in IMAGES_STATE (generated on first use). The digests go to IMAGES_STATE/images.env
# (shell) and images.json. A registry other than 127.0.0.1/localhost is reached over HTTPS
# with the credentials of ~/.docker/config.json.
IMAGES_REGISTRY ?= 127.0.0.1:5001
IMAGES_STATE ?= $(BIN)/images
IMAGES_ARGS ?=
HACK_IMAGES = go run ./hack/images -registry $(IMAGES_REGISTRY) -bin $(BIN) -state $(IMAGES_STATE) -cosign $(COSIGN) $(IMAGES_ARGS)

.PHONY: images
images: build cosign ## Build the manager, node-agent and tools images without Docker; push, sign and attest them (IMAGES_REGISTRY, IMAGES_STATE).
	$(HACK_IMAGES) -images manager,node-agent,tools

.PHONY: refimage
refimage: cosign mmdebstrap ## Build the reference PyTorch image (images/pytorch) without Docker: mmdebstrap as root, cached by recipe; push, sign and attest it.
	$(HACK_IMAGES) -images pytorch

.PHONY: refimage-check
refimage-check: cosign ## Check the pushed reference image: signature and attestations, then torch, sshd and Jupyter run from it as uid 1000 (root: chroot).
	hack/images/check-refimage.sh $(IMAGES_STATE) $(COSIGN)

.PHONY: run
run: manifests generate ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd --health-probe-bind-address=:8081 --metrics-bind-address=:8080 --metrics-secure=false

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

.PHONY: kyverno
kyverno: ## Build the Kyverno CLI ($(KYVERNO_VERSION)) into bin/ through e2e/tools/kyverno (about 6 minutes once; cached by version).
	e2e/tools/build-kyverno.sh $(KYVERNO_VERSION) $(BIN)

# Not part of make test: the Kyverno CLI takes minutes to build on a fresh machine.
.PHONY: kyverno-check
kyverno-check: kyverno integration-tools envtest-assets ## Kyverno's own CLI evaluates the generated ImageValidatingPolicy on a trainenv pod: the cosign-signed digest passes, an unsigned or foreign-signed digest and a tag fail.
	$(INTEGRATION_ENV) KYVERNO="$(BIN)/kyverno" KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" \
	  go test ./internal/trust/kyverno/ -run TestKyvernoCLI -count=1 -v

.PHONY: golangci-lint
golangci-lint: ## Build golangci-lint ($(GOLANGCI_LINT_VERSION)) with the Kubernetes API linter into bin/ (minutes once; cached by version).
	e2e/tools/build-golangci-lint.sh $(GOLANGCI_LINT_VERSION) $(KUBE_API_LINTER_VERSION) $(BIN)

.PHONY: integration-tools
integration-tools: cosign cosign3 registry-server ## The real clients that integration tests drive.

.PHONY: cosign
cosign: ## Install the cosign CLI ($(COSIGN_VERSION)) into bin/.
	e2e/tools/go-install.sh cosign github.com/sigstore/cosign/v2/cmd/cosign $(COSIGN_VERSION) $(BIN)

.PHONY: cosign3
cosign3: ## Install the cosign v3 CLI ($(COSIGN3_VERSION)) into bin/cosign3.
	e2e/tools/go-install.sh cosign3 github.com/sigstore/cosign/v3/cmd/cosign $(COSIGN3_VERSION) $(BIN)

.PHONY: envtest-assets
envtest-assets: $(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd ## Build kube-apiserver and etcd for envtest.

$(ENVTEST_ASSETS)/kube-apiserver:
	e2e/tools/build-kube.sh $(KUBE_VERSION) $(ENVTEST_ASSETS) kube-apiserver

$(ENVTEST_ASSETS)/etcd:
	e2e/tools/build-etcd.sh $(ETCD_VERSION) $(ENVTEST_ASSETS)
