#!/usr/bin/env bash
# Proves the OLM bundle's install on the local cluster of make dev, as OLM would deploy it
# (without OLM itself: see e2e/olmcsv for what OLM adds that this cannot show): the Helm
# release is uninstalled, the bundle's CRD and its other manifests (metrics Service,
# metrics-reader ClusterRole) are applied, then the ClusterServiceVersion's install strategy
# (its ServiceAccount, permissions, clusterPermissions and Deployment, the manager image set
# to the digest make dev built and signed); the manager becomes Ready on the real node under
# the CSV's permissions and takes the leader Lease. Finally those objects are deleted, but the
# CRD (make dev installs trainenv with Helm again).
#
# usage: KUBECONFIG=... check-olm.sh STATE_DIR BIN_DIR    (BIN_DIR holds helm-v*)
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
  echo "e2e olm: FAIL: $*" >&2
  kubectl -n "$ns" get pods -o wide >&2 || true
  kubectl -n "$ns" describe deployment trainenv-controller-manager >&2 || true
  exit 1
}

remove_helm_release "$helm" "$ns" 2>"$work/why" || fail "$(cat "$work/why")"

manifests=$root/bundle/manifests
csv=$(find "$manifests" -name '*.clusterserviceversion.yaml' | head -n 1)
go -C "$root" run ./e2e/olmcsv -csv "$csv" -namespace "$ns" -image "$TRAINENV_MANAGER_IMAGE" >"$work/strategy.yaml" ||
  fail "rendering the CSV's install strategy"
# The bundle's other manifests, as OLM applies them: CRDs cluster-wide, the rest in the
# install namespace.
: >"$work/extras.yaml"
for f in "$manifests"/*.yaml; do
  [ "$f" = "$csv" ] && continue
  if grep -q '^kind: CustomResourceDefinition' "$f"; then
    kubectl apply --server-side --force-conflicts -f "$f" >/dev/null || fail "applying $f"
  else
    { echo "---"; cat "$f"; } >>"$work/extras.yaml"
  fi
done
kubectl -n "$ns" apply --server-side --force-conflicts -f "$work/extras.yaml" >/dev/null || fail "applying the bundle's manifests"
kubectl apply --server-side --force-conflicts -f "$work/strategy.yaml" >/dev/null || fail "applying the install strategy"

pod=$(manager_leads "$ns" "$node" "$TRAINENV_MANAGER_IMAGE" 2>"$work/why") || fail "$(cat "$work/why")"
echo "e2e olm: ok: the CSV's install strategy with the built digest: manager $pod Ready on $node under the CSV's permissions, leader"

kubectl delete --ignore-not-found --wait=true -f "$work/strategy.yaml" >/dev/null || fail "removing the install strategy"
kubectl -n "$ns" delete --ignore-not-found --wait=true -f "$work/extras.yaml" >/dev/null 2>&1 || fail "removing the bundle's manifests"
echo "e2e olm: 1 passed, 0 failed (make dev installs trainenv with Helm again)"
