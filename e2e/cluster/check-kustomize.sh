#!/usr/bin/env bash
# Proves the kustomize install path on the local cluster of make dev: the Helm release is
# uninstalled (its CRD and every environment stay: the chart keeps them), then
# `kubectl apply -k` of config/with-sigstore (config/default plus policy-controller's CRDs)
# with the manager image set, as config/manager/kustomization.yaml says, to the digest
# make dev built and signed; the manager becomes Ready on the real node under kustomize's
# RBAC and takes the leader Lease. Finally the kustomize objects are deleted, all but the
# CRDs and namespaces (make dev installs trainenv with Helm again).
#
# usage: KUBECONFIG=... check-kustomize.sh STATE_DIR BIN_DIR    (BIN_DIR holds helm-v*)
#   env: HELM overrides the helm binary.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 STATE_DIR BIN_DIR" >&2; exit 2; }
state=$(cd "$1" && pwd)
bin=$(cd "$2" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
# shellcheck source=/dev/null
. "$state/images/images.env"
helm=${HELM:-$(find "$bin" -maxdepth 1 -name 'helm-v*' -type f | sort | tail -n 1)}
ns=trainenv-system
node=$(cat "$state/node/node-name")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "e2e kustomize: FAIL: $*" >&2
  kubectl -n "$ns" get pods -o wide >&2 || true
  kubectl -n "$ns" describe deployment trainenv-controller-manager >&2 || true
  exit 1
}

remove_helm_release "$helm" "$ns" 2>"$work/why" || fail "$(cat "$work/why")"

# A copy of config/, the image set where config/manager's replacement also copies it into
# TRAINENV_TOOLS_IMAGE (no kustomize CLI needed: the images stanza is rewritten).
cp -r "$root/config" "$work/config"
sed -i -e "s#^  newName: trainenv/manager\$#  newName: $TRAINENV_MANAGER_REPOSITORY#" \
  -e "s#^  newTag: dev\$#  digest: $TRAINENV_MANAGER_DIGEST#" "$work/config/manager/kustomization.yaml"
kubectl kustomize "$work/config/with-sigstore" >"$work/install.yaml"
grep -q "image: $TRAINENV_MANAGER_IMAGE\$" "$work/install.yaml" || fail "the rendered Deployment does not run $TRAINENV_MANAGER_IMAGE"
# The CRDs are still there from the Helm release: take them over.
kubectl apply --server-side --force-conflicts -f "$work/install.yaml" >/dev/null || fail "kubectl apply"

pod=$(manager_leads "$ns" "$node" "$TRAINENV_MANAGER_IMAGE" 2>"$work/why") || fail "$(cat "$work/why")"
echo "e2e kustomize: ok: kubectl apply -k config/with-sigstore with the built digest: manager $pod Ready on $node, leader"

# Remove what kustomize installed, but the CRDs (the environments) and the namespaces.
kubectl kustomize "$work/config/with-sigstore" |
  awk 'BEGIN {RS = "\n---\n"; ORS = "\n---\n"} !/(^|\n)kind: (CustomResourceDefinition|Namespace)\n/' >"$work/remove.yaml"
kubectl delete --ignore-not-found --wait=true -f "$work/remove.yaml" >/dev/null || fail "removing the kustomize install"
echo "e2e kustomize: 1 passed, 0 failed (make dev installs trainenv with Helm again)"
