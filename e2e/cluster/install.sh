#!/usr/bin/env bash
# Installs trainenv into the local cluster the way a platform team installs it, then applies
# the samples that show the product:
#   1. builds trainenv's images (manager, node agent, in-pod tools) and the reference PyTorch
#      image with hack/images, pushes them to the cluster's registry, and signs and attests
#      them with this cluster's dev key (STATE_DIR/images/cosign.key, made on first use);
#      signs the sample CUDA images up.sh pushed with the same key, but not the "unsigned" one;
#   2. helm upgrade --install charts/trainenv by digest: the manager on the real node under
#      the chart's RBAC (its ServiceAccount, no admin credentials), leader election, HTTPS
#      metrics, no --allow-unmatched-images; the node agent DaemonSet on the real node too;
#   3. a ClusterImagePolicy trusting the dev key for the cluster registry's trainenv images;
#   4. the samples: a CPU environment of the reference image with Jupyter and SSH on the real
#      node, a GPU environment placed on a simulated pool by its CUDA requirement, and an
#      unsigned image that is refused.
# Running it again is quick: images already pushed and signed are left alone, helm upgrades.
#
# usage: KUBECONFIG=... install.sh BIN_DIR STATE_DIR
#   BIN_DIR holds make build's binaries, cosign and helm (HELM overrides the helm binary).
#   env (optional): TRAINENV_INSTALL_TIMEOUT=300 seconds for each wait.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BIN_DIR STATE_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "$1" && pwd)
state=$(cd "$2" && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
# up.sh wrote the cluster's addresses there (KUBECONFIG, TRAINENV_CLUSTER_REGISTRY, ...).
# shellcheck source=/dev/null
. "$state/env"
logs=$state/logs
timeout=${TRAINENV_INSTALL_TIMEOUT:-300}
helm=${HELM:-$(find "$bin" -maxdepth 1 -name 'helm-v*' -type f | sort | tail -n 1)}
[ -x "$helm" ] || { echo "error: no helm in $bin (make helm)" >&2; exit 1; }
ns=trainenv-system
registry=$TRAINENV_CLUSTER_REGISTRY
[ "${TRAINENV_REAL_NODE:-1}" != 0 ] ||
  { echo "error: trainenv runs as pods on the real node; without it (TRAINENV_REAL_NODE=0) run the operator with make run" >&2; exit 1; }
start_time=$SECONDS
say() { printf '[%3ds] install: %s\n' $((SECONDS - start_time)) "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# hack/images and cosign reach the cluster registry by its in-cluster name over TLS, so the
# signatures name the images exactly as the environments do; they trust the cluster CA.
cluster_tls() { SSL_CERT_FILE=$TRAINENV_CLUSTER_CA "$@"; }

# --- 1. images --------------------------------------------------------------------------
say "building, pushing and signing trainenv's images and the reference image (log: $logs/images.log)"
go -C "$root" build -o "$state/bin/hack-images" ./hack/images
images=$state/images
if ! (cd "$root" && cluster_tls "$state/bin/hack-images" -registry "$registry" -bin "$bin" -state "$images" \
  -cosign "$bin/cosign" -images manager,node-agent,tools,pytorch) >"$logs/images.log" 2>&1; then
  tail -n 20 "$logs/images.log" >&2
  die "hack/images failed; full log: $logs/images.log"
fi
grep '^images: .*pushed' "$logs/images.log" | sed 's/^images: /  /' >&2
# shellcheck source=/dev/null
. "$images/images.env"

# cosign CMD ARGS...: the dev key (empty password), cosign's cache in the state directory.
cosign() {
  (cd "$images" && COSIGN_PASSWORD='' TUF_ROOT=$images/tuf cluster_tls "$bin/cosign" "$@")
}
# digest TAG: the digest of trainenv/pytorch-cuda:TAG (an image index), from the registry.
digest() {
  curl -fsI -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$TRAINENV_DEV_REGISTRY/v2/trainenv/pytorch-cuda/manifests/$1" |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}
for tag in 12.4 13.0 11.4 12.8 13.1; do
  ref=$registry/trainenv/pytorch-cuda@$(digest "$tag")
  [[ $ref == *@sha256:* ]] || die "no sample image trainenv/pytorch-cuda:$tag in the registry (up.sh pushes them)"
  cosign verify --key cosign.pub --insecure-ignore-tlog=true "$ref" >/dev/null 2>&1 && continue
  say "signing the sample image trainenv/pytorch-cuda:$tag"
  # --recursive: the index and each platform's manifest, the digest trainenv pins and verifies.
  cosign sign --key cosign.key --tlog-upload=false --recursive --yes "$ref" >>"$logs/images.log" 2>&1 ||
    die "signing $ref failed; see $logs/images.log"
done
# The refused sample: an image no key signed (another CUDA patch release, so another digest).
if [ -z "$(digest unsigned)" ]; then
  say "pushing the unsigned sample image"
  sampleimage=$state/sampleimage
  [ -x "$sampleimage" ] || go -C "$root" build -o "$sampleimage" ./e2e/sampleimage
  "$sampleimage" --registry "$TRAINENV_DEV_REGISTRY" --repo trainenv/pytorch-cuda --tag unsigned --cuda 12.4.0 \
    >>"$logs/sampleimage.log" 2>&1 || die "pushing the unsigned sample failed; see $logs/sampleimage.log"
fi

# --- 2. trainenv, with the Helm chart ------------------------------------------------------
restricted_namespace "$ns" || die "no default ServiceAccount in $ns"
say "helm upgrade --install trainenv (manager $TRAINENV_MANAGER_DIGEST)"
# Only what a development cluster needs differs from the chart's defaults (dev-values.yaml:
# the node agent on the CPU node, the cluster CA for the registry); the images go by digest.
if ! "$helm" upgrade --install trainenv "$root/charts/trainenv" -n "$ns" --wait --timeout "${timeout}s" \
  -f "$root/e2e/cluster/dev-values.yaml" \
  --set "image.repository=$TRAINENV_MANAGER_REPOSITORY,image.digest=$TRAINENV_MANAGER_DIGEST" \
  --set "toolsImage.repository=$TRAINENV_TOOLS_REPOSITORY,toolsImage.digest=$TRAINENV_TOOLS_DIGEST" \
  --set "nodeAgent.image.repository=$TRAINENV_NODE_AGENT_REPOSITORY,nodeAgent.image.digest=$TRAINENV_NODE_AGENT_DIGEST" \
  >"$logs/helm.log" 2>&1; then
  cat "$logs/helm.log" >&2
  kubectl -n "$ns" get pods -o wide >&2 || true
  kubectl -n "$ns" describe pods >&2 || true
  die "helm did not install trainenv"
fi
kubectl -n "$ns" rollout status daemonset/trainenv-node-agent --timeout="${timeout}s" >/dev/null ||
  die "the node agent DaemonSet did not roll out"

# --- 3. the policy ------------------------------------------------------------------------
# Every image of the cluster registry's trainenv/ must be signed by this cluster's dev key.
# A key authority without ctlog: checked against the key alone, offline.
kubectl apply -f - >/dev/null <<EOF
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: trainenv-dev-key
spec:
  images:
  - glob: $registry/trainenv/**
  authorities:
  - name: dev-key
    key:
      hashAlgorithm: sha256
      data: |
$(sed 's/^/        /' "$images/cosign.pub")
EOF

# --- 4. the samples -----------------------------------------------------------------------
# The developer's SSH key for the CPU sample, kept with the cluster.
mkdir -p "$state/ssh"
[ -s "$state/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C trainenv-dev -f "$state/ssh/id_ed25519"
kubectl create secret generic pytorch-cpu-ssh --from-file=authorized_keys="$state/ssh/id_ed25519.pub" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
sed "s#REGISTRY/#$registry/#" "$root/e2e/cluster/samples.yaml" | kubectl apply -f - >/dev/null

say "waiting for the samples"
# wait_ready NAME: until Ready; a Failed phase (the user must act) ends the wait at once.
wait_ready() {
  local deadline=$((SECONDS + timeout)) phase
  until [ "$(kubectl get trainingenvironment "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; do
    phase=$(kubectl get trainingenvironment "$1" -o jsonpath='{.status.phase}')
    if [ "$phase" = Failed ] || [ $SECONDS -ge $deadline ]; then
      kubectl describe "trainingenvironment/$1" >&2
      die "$1 did not become Ready (phase '$phase')"
    fi
    sleep 1
  done
}
wait_ready pytorch-sample
wait_ready pytorch-cpu
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Verified")].reason}'=NoSignature \
  --timeout=60s trainingenvironment/unsigned >/dev/null ||
  { kubectl describe trainingenvironment/unsigned >&2; die "the unsigned sample was not refused with NoSignature"; }
say "installed"

# show PATH: PATH, as $PWD/... when it lies in this checkout (make dev runs from its root).
show() { case $1 in "$root"/*) echo "\$PWD/${1#"$root"/}" ;; *) echo "$1" ;; esac; }
cat <<EOF

What runs (trainenv installed by Helm from signed images, by digest):
$(kubectl -n "$ns" get pods -o wide | sed 's/^/  /')

$(kubectl get trainingenvironments -o wide | sed 's/^/  /')

  unsigned is refused: $(kubectl get trainingenvironment unsigned -o jsonpath='{.status.conditions[?(@.type=="Verified")].message}')

Connect to the CPU environment (Jupyter and SSH run for real on the node $(kubectl get pod pytorch-cpu-0 -o jsonpath='{.spec.nodeName}')):
  export KUBECONFIG=$(show "$KUBECONFIG") PATH=$(show "$bin"):\$PATH
  kubectl trainenv connect pytorch-cpu                 # prints the Jupyter URL; Ctrl-C stops it
  kubectl trainenv ssh-config pytorch-cpu --user jovyan >$(show "$state/ssh/config")
  ssh -F $(show "$state/ssh/config") -i $(show "$state/ssh/id_ed25519") pytorch-cpu python3 -c "'import torch; print(torch.__version__)'"

  kubectl describe trainenv unsigned                   # why an unsigned image never runs
  kubectl -n $ns logs deploy/trainenv-controller-manager   # the operator
Stop it with: make dev-down   (make dev-clean also deletes its state)
EOF
