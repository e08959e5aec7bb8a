#!/usr/bin/env bash
# The operator killed mid-way through a batch, on the real node: environments with
# workspaces are applied together, and as soon as the leader has created the first workspace
# claim its pod is deleted. The Deployment's next pod takes the lease and finishes the batch:
# every environment Ready on the real node, exactly one StatefulSet and one workspace claim
# each, and every claim the old leader created kept (same UID): nothing duplicated, no
# workspace lost.
#
# usage: KUBECONFIG=... check-leader.sh STATE_DIR
#   STATE_DIR/images/images.env names the reference image (install.sh pushed it).
#   env: TRAINENV_E2E_LEADER_BATCH=4 (environments; each takes one of the node's local volumes)
#        TRAINENV_E2E_LEADER_TIMEOUT=300 (seconds for the batch to become Ready)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
state=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
# shellcheck source=/dev/null
. "$state/images/images.env"
repo=${TRAINENV_PYTORCH_REPOSITORY:?no reference image in $state/images/images.env}
batch=${TRAINENV_E2E_LEADER_BATCH:-4}
timeout=${TRAINENV_E2E_LEADER_TIMEOUT:-300}
ns=leader-e2e system=trainenv-system lease=trainenv-manager.trainenv.io
fail() {
  echo "e2e leader: FAIL: $*" >&2
  kubectl -n "$ns" get trainingenvironments,statefulsets,pvc,pods -o wide >&2 2>/dev/null || true
  kubectl -n "$system" get pods -o wide >&2 2>/dev/null || true
  exit 1
}
ms() { echo $(($(date +%s%N) / 1000000)); }

holder() { kubectl -n "$system" get lease "$lease" -o jsonpath='{.spec.holderIdentity}'; }
old_holder=$(holder) || fail "no leader lease $system/$lease"
[ -n "$old_holder" ] || fail "the lease $system/$lease has no holder"

restricted_namespace "$ns" || fail "no default ServiceAccount in $ns"

start=$(ms)
for i in $(seq 0 $((batch - 1))); do
  cat <<EOF
---
apiVersion: trainenv.io/v1alpha1
kind: TrainingEnvironment
metadata: {name: batch-$i, namespace: $ns}
spec:
  image: $repo:dev
  jupyter: {enabled: true}
  workspace: {size: 1Gi, storageClassName: trainenv-local}
EOF
done | kubectl apply -f - >/dev/null

# Kill the leader as soon as it has started on the batch: its first workspace claim.
eventually 120 test -n "$(kubectl -n "$ns" get pvc -o name 2>/dev/null)" ||
  fail "the leader created no workspace claim for the batch"
kubectl -n "$system" delete pod "${old_holder%%_*}" --wait=false >/dev/null ||
  fail "cannot delete the leader's pod ${old_holder%%_*}"
killed=$(ms)
declare -A before=()
while read -r name uid; do [ -n "$name" ] && before[$name]=$uid; done \
  < <(kubectl -n "$ns" get pvc -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.uid}{"\n"}{end}')
echo "e2e leader: deleted the leader's pod ${old_holder%%_*} after ${#before[@]} of $batch workspace claims"

# The next leader finishes the batch.
deadline=$((SECONDS + timeout))
until [ "$(kubectl -n "$ns" get trainingenvironments -o jsonpath='{range .items[?(@.status.phase=="Running")]}x{end}')" = "$(printf 'x%.0s' $(seq "$batch"))" ]; do
  [ $SECONDS -lt $deadline ] || fail "the batch did not all reach Running within ${timeout}s of the leader's deletion"
  sleep 1
done
done_ms=$(ms)
new_holder=$(holder)
if [ -z "$new_holder" ] || [ "$new_holder" = "$old_holder" ]; then fail "the lease is still held by '$new_holder'"; fi
[ "${new_holder%%_*}" != "${old_holder%%_*}" ] || fail "the new leader runs in the deleted pod"

for i in $(seq 0 $((batch - 1))); do
  te=batch-$i
  sts=$(kubectl -n "$ns" get statefulsets -l "trainenv.io/environment=$te" -o name | wc -l)
  pvcs=$(kubectl -n "$ns" get pvc -l "trainenv.io/environment=$te" -o name | wc -l)
  [ "$sts" = 1 ] || fail "$te has $sts StatefulSets, want 1"
  [ "$pvcs" = 1 ] || fail "$te has $pvcs workspace claims, want 1"
  node=$(kubectl -n "$ns" get pod "$te-0" -o jsonpath='{.spec.nodeName}')
  [ "$node" = "$(cat "$state/node/node-name")" ] || fail "$te runs on '$node', not on the real node"
done
for name in "${!before[@]}"; do
  uid=$(kubectl -n "$ns" get pvc "$name" -o jsonpath='{.metadata.uid}' 2>/dev/null) ||
    fail "the workspace claim $name the old leader created is gone"
  [ "$uid" = "${before[$name]}" ] || fail "the workspace claim $name was re-created (uid ${before[$name]} -> $uid)"
done

# Give the local volumes back, as the other checks do.
release_volumes "$state" "$ns"
echo "e2e leader: 1 passed, 0 failed ($batch environments Running $(((done_ms - killed) / 1000)) s after the leader's pod was deleted, $(((done_ms - start) / 1000)) s after apply; leader ${old_holder%%_*} -> ${new_holder%%_*}; each with one StatefulSet and one workspace claim, the old leader's ${#before[@]} claims kept)"
