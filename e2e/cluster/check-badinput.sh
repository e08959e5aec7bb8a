#!/usr/bin/env bash
# Bad input on the real node gets a clear answer, and nothing is lost. On the local cluster
# (up.sh, node.sh, the operator installed, the reference PyTorch image in the registry:
# make refimage), environments with SSH and Jupyter on images derived from the reference
# image (e2e/badimage: one appended layer each, signed with the dev key like the original)
# each end in a WorkloadReady reason that names the problem, phase Failed, a Warning event:
#   - no sshd (a whiteout of /usr/sbin/sshd)               → ImageMissingSSHD
#   - no uid-1000 user (/etc/passwd without jovyan)        → ImageMissingUser
#   - sshd built for another CPU than the node's          → ImagePlatformMismatch
#   - a pinned digest the node cannot pull (its manifest deleted from the registry after
#     the operator resolved and verified it, the environment still suspended)
#                                                          → ImagePullFailed
# The entrypoint's findings come from the real entrypoint in a real container, the pull
# error from the real kubelet and containerd. Each pod runs on the real node (its workspace
# is a local volume there). Then the environment without sshd gets the good image: it
# becomes Ready with the same workspace claim.
#
# usage: KUBECONFIG=... check-badinput.sh STATE_DIR [IMAGES_STATE]
#   IMAGES_STATE (default STATE_DIR; the Makefile's IMAGES_STATE) holds images.env (TRAINENV_PYTORCH_IMAGE,
#   TRAINENV_SIGNING_PUBLIC_KEY) and, beside that public key, cosign.key.
#   env: TRAINENV_E2E_BADINPUT_TIMEOUT=300 (seconds per wait)
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: $0 STATE_DIR [IMAGES_STATE]" >&2; exit 2; fi
state=$(cd "$1" && pwd)
images_state=$(cd "${2:-$1}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
# shellcheck source=/dev/null
. "$state/env"
# shellcheck source=/dev/null
. "$images_state/images.env"
export PATH="$root/bin:$PATH"
ref=${TRAINENV_PYTORCH_IMAGE:?no reference image in $images_state/images.env: run make refimage}
repo=${TRAINENV_PYTORCH_REPOSITORY:-${ref%@*}}
key=$(dirname "${TRAINENV_SIGNING_PUBLIC_KEY:?no signing key in $images_state/images.env}")/cosign.key
node=$(cat "$state/node/node-name")
timeout=${TRAINENV_E2E_BADINPUT_TIMEOUT:-300}
ns=badinput-e2e
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
fail() {
  echo "e2e badinput: FAIL: $*" >&2
  kubectl -n "$ns" get trainingenvironments,pods -o wide >&2 2>/dev/null || true
  [ -n "${te:-}" ] && kubectl -n "$ns" describe trainingenvironment "$te" >&2 2>/dev/null
  [ -n "${te:-}" ] && kubectl -n "$ns" describe pod "$te-0" >&2 2>/dev/null
  exit 1
}
ok() { passed=$((passed + 1)); echo "e2e badinput: ok: $*"; }
[ -s "$key" ] || fail "no private signing key $key beside $TRAINENV_SIGNING_PUBLIC_KEY"

# --- the bad images ---------------------------------------------------------------------
bin=$state/node/bin
mkdir -p "$bin"
go -C "$root" build -o "$bin/badimage" ./e2e/badimage
export COSIGN_PASSWORD='' TUF_ROOT="$images_state/tuf"
# The cluster registry serves TLS with a certificate of the cluster CA (node.sh): badimage and
# cosign reach it by the address the environments name, as install.sh does.
if [ -n "${TRAINENV_CLUSTER_CA:-}" ]; then export SSL_CERT_FILE=$TRAINENV_CLUSTER_CA; fi
registry_flags=()
case $ref in 127.*|localhost*) registry_flags+=(--allow-insecure-registry) ;; esac
cosign_flags=(--tlog-upload=false --yes "${registry_flags[@]}")
# Attestations the reference image carries (SBOM, provenance) are attached to each derived
# image too, so that a policy requiring them judges the derived images like the original.
cosign download attestation "${registry_flags[@]}" "$ref" >"$work/attestations" 2>/dev/null || : >"$work/attestations"
# derive TAG ARGS...: pushes the reference image with ARGS applied as REPOSITORY:TAG, signs
# and attests it as the original is, and prints REPOSITORY@DIGEST.
derive() {
  local tag=$1 image type uri
  shift
  image=$("$bin/badimage" derive --from "$ref" --to "$repo:$tag" "$@") || fail "deriving $repo:$tag"
  cosign sign --key "$key" "${cosign_flags[@]}" "$image" >>"$work/cosign.log" 2>&1 || fail "cosign sign $image: $(tail -3 "$work/cosign.log")"
  for type in spdxjson=https://spdx.dev/Document slsaprovenance=https://slsa.dev/provenance/v0.2; do
    uri=${type#*=} type=${type%%=*}
    "$bin/badimage" predicate --type "$uri" <"$work/attestations" >"$work/$type.json" 2>/dev/null || continue
    cosign attest --key "$key" --type "$type" --predicate "$work/$type.json" "${cosign_flags[@]}" "$image" >>"$work/cosign.log" 2>&1 ||
      fail "cosign attest --type $type $image: $(tail -3 "$work/cosign.log")"
  done
  echo "$image"
}
run_id=$(date +%s)
no_sshd=$(derive badinput-no-sshd --without /usr/sbin/sshd --note "no sshd")
no_user=$(derive badinput-no-user --without-uid 1000 --note "no uid 1000")
foreign=$(derive badinput-foreign --foreign /usr/sbin/sshd --note "sshd for another CPU")
# A digest of its own each run: its manifest is deleted below.
gone=$(derive "badinput-gone-$run_id" --note "deleted after verification $run_id")
ok "derived and signed: $no_sshd, $no_user, $foreign, $gone"

# --- the environments -------------------------------------------------------------------
kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
restricted_namespace "$ns" || fail "no default ServiceAccount in $ns"
ssh-keygen -q -t ed25519 -N '' -C e2e -f "$work/id_ed25519"
kubectl -n "$ns" create secret generic keys --from-file=authorized_keys="$work/id_ed25519.pub" >/dev/null

# environment NAME IMAGE [SUSPEND]: SSH and Jupyter on a CPU, the workspace a local volume
# of the real node (which places the pod there).
environment() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: trainenv.io/v1alpha1
kind: TrainingEnvironment
metadata: {name: $1, namespace: $ns}
spec:
  image: $2
  suspend: ${3:-false}
  jupyter: {enabled: true}
  ssh:
    enabled: true
    authorizedKeysSecretRef: {name: keys}
  workspace: {size: 1Gi, storageClassName: trainenv-local}
EOF
}
environment no-sshd "$no_sshd"
environment no-user "$no_user"
environment foreign "$foreign"
environment gone "$gone" true

field() { kubectl -n "$ns" get trainingenvironment "$1" -o jsonpath="$2" 2>/dev/null; }
cond() { field "$1" "{.status.conditions[?(@.type==\"$2\")].$3}"; }

# The pinned digest of "gone" loses its manifest once the operator resolved and verified it
# (Ready True, reason Suspended: every check passed); then the environment resumes.
te=gone
deadline=$((SECONDS + timeout))
until [ "$(cond gone Ready reason)" = Suspended ] && [ "$(cond gone Ready status)" = True ]; do
  [ $SECONDS -lt $deadline ] || fail "gone: not resolved and verified while suspended after ${timeout}s (Ready: $(cond gone Ready reason): $(cond gone Ready message))"
  sleep 1
done
[ "$(field gone '{.status.image.resolved}')" = "$gone" ] || fail "gone pinned $(field gone '{.status.image.resolved}'), want $gone"
registry=${gone%%/*} path=${gone#*/}
scheme=http curl_ca=()
if [ -n "${TRAINENV_CLUSTER_CA:-}" ] && [ "$registry" = "${TRAINENV_CLUSTER_REGISTRY:-}" ]; then scheme=https curl_ca=(--cacert "$TRAINENV_CLUSTER_CA"); fi
curl -fsS "${curl_ca[@]}" -X DELETE "$scheme://$registry/v2/${path%@*}/manifests/${gone#*@}" >/dev/null || fail "deleting the manifest of $gone"
kubectl -n "$ns" patch trainingenvironment gone --type merge -p '{"spec":{"suspend":false}}' >/dev/null

warned() { [ -n "$(kubectl -n "$ns" get events --field-selector "involvedObject.name=$1,reason=$2,type=Warning" -o name)" ]; }

# expect NAME REASON TEXT: WorkloadReady (and Ready) False with REASON and TEXT in its
# message, phase Failed, a Warning event of REASON, the pod on the real node.
expect() {
  local reason=$2 text=$3 deadline=$((SECONDS + timeout)) got msg
  te=$1
  until got=$(cond "$te" WorkloadReady reason) && [ "$got" = "$reason" ]; do
    [ $SECONDS -lt $deadline ] || fail "$te: WorkloadReady is '$got' after ${timeout}s, want $reason: $(cond "$te" WorkloadReady message)"
    sleep 1
  done
  msg=$(cond "$te" WorkloadReady message)
  [[ $msg == *"$text"* ]] || fail "$te: the WorkloadReady message lacks '$text': $msg"
  [ "$(cond "$te" Ready reason)" = "$reason" ] || fail "$te: Ready's reason is $(cond "$te" Ready reason), want $reason"
  [ "$(field "$te" '{.status.phase}')" = Failed ] || fail "$te: phase $(field "$te" '{.status.phase}'), want Failed"
  [ "$(kubectl -n "$ns" get pod "$te-0" -o jsonpath='{.spec.nodeName}')" = "$node" ] || fail "$te: the pod is not on the real node $node"
  eventually 30 warned "$te" "$reason" || fail "$te: no Warning event $reason"
  ok "$te: $reason: $msg"
}
expect no-sshd ImageMissingSSHD "SSH is enabled but the image has no sshd (looked for /usr/sbin/sshd, /usr/local/sbin/sshd, /sbin/sshd)"
expect no-user ImageMissingUser "the image has no user with uid 1000 in /etc/passwd"
expect foreign ImagePlatformMismatch "/usr/sbin/sshd is built for linux/"
# The first container to pull the image fails (main, or a preflight init container).
expect gone ImagePullFailed "of pod gone-0 ($gone): "

# --- nothing lost: the good image, the same workspace -----------------------------------
te=no-sshd
claim=$(kubectl -n "$ns" get pvc -l "trainenv.io/environment=no-sshd" -o jsonpath='{.items[0].metadata.uid}')
[ -n "$claim" ] || fail "no-sshd: no workspace claim"
kubectl -n "$ns" patch trainingenvironment no-sshd --type merge -p "{\"spec\":{\"image\":\"$ref\"}}" >/dev/null
kubectl -n "$ns" wait --for condition=Ready --timeout="${timeout}s" trainingenvironment/no-sshd >/dev/null ||
  fail "no-sshd did not become Ready with the reference image"
[ "$(kubectl -n "$ns" get pvc -l "trainenv.io/environment=no-sshd" -o jsonpath='{.items[0].metadata.uid}')" = "$claim" ] ||
  fail "no-sshd: the workspace claim changed"
ok "no-sshd with the reference image is Ready on the same workspace claim"

# Give the local volumes back, as check-realnode.sh does: delete the claims, wipe the
# directories, make the PersistentVolumes Available again.
release_volumes "$state" "$ns"
echo "e2e badinput: $passed passed, 0 failed"
