#!/usr/bin/env bash
# Checks what `make dev` promises (e2e/cluster/install.sh):
#   - trainenv runs as Helm installed it: the manager pod on the real node, from the signed
#     image by digest, under its own ServiceAccount (the chart's RBAC, no admin credentials),
#     with leader election (it holds the Lease) and without --allow-unmatched-images; it
#     reached the API server from its pod (10.96.0.1:443, node.sh's DNAT);
#   - the node agent runs on the real node, not crash-looping, and says there is no GPU;
#   - the GPU sample is Running on a simulated pool whose driver supports CUDA 12.4, its pod
#     runs exactly the pinned digest, verified against the dev key (reason Verified);
#   - the CPU sample of the reference image runs on the real node: the kubelet reports the
#     pinned digest as the container's image;
#   - the unsigned sample is refused with NoSignature and has no pod;
#   - the manager's HTTPS metrics, read through kubectl port-forward with the token of a
#     ServiceAccount bound to the chart's metrics-reader ClusterRole (and refused without it),
#     count the running environments and the verifications.
#
# usage: KUBECONFIG=... check-sample.sh STATE_DIR
#   env: TRAINENV_METRICS_PORT=18080 (the local end of the metrics port-forward)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
state=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
# shellcheck source=/dev/null
. "$state/env"
# shellcheck source=/dev/null
. "$state/images/images.env"
ns=trainenv-system
node=$(cat "$state/node/node-name")
passed=0
work=$(mktemp -d)
pf=
cleanup() {
  [ -n "$pf" ] && kill "$pf" 2>/dev/null
  kubectl -n "$ns" delete serviceaccount metrics-check --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete clusterrolebinding trainenv-metrics-check --ignore-not-found >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "e2e sample: FAIL: $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); echo "e2e sample: ok: $*"; }
te() { kubectl get trainingenvironment "$1" -o jsonpath="$2"; }

# --- trainenv itself ----------------------------------------------------------------------
mpod=$(kubectl -n "$ns" get pods -l app.kubernetes.io/component=manager -o jsonpath='{.items[0].metadata.name}')
[ -n "$mpod" ] || fail "no manager pod in $ns"
jm() { kubectl -n "$ns" get pod "$mpod" -o jsonpath="$1"; }
[ "$(jm '{.spec.nodeName}')" = "$node" ] || fail "the manager runs on '$(jm '{.spec.nodeName}')', want the real node $node"
[ "$(jm '{.status.containerStatuses[0].ready}')" = true ] || fail "the manager is not Ready"
[ "$(jm '{.spec.containers[0].image}')" = "$TRAINENV_MANAGER_IMAGE" ] ||
  fail "the manager runs '$(jm '{.spec.containers[0].image}')', want the signed $TRAINENV_MANAGER_IMAGE"
[[ $(jm '{.status.containerStatuses[0].imageID}') == *"$TRAINENV_MANAGER_DIGEST" ]] ||
  fail "the kubelet reports image '$(jm '{.status.containerStatuses[0].imageID}')'"
[ "$(jm '{.spec.serviceAccountName}')" = trainenv-controller-manager ] || fail "the manager's ServiceAccount is '$(jm '{.spec.serviceAccountName}')'"
args=$(jm '{.spec.containers[0].args}')
[[ $args == *--leader-elect* ]] || fail "the manager runs without --leader-elect: $args"
[[ $args != *allow-unmatched* ]] || fail "the manager runs with --allow-unmatched-images: $args"
holder=$(kubectl -n "$ns" get lease trainenv-manager.trainenv.io -o jsonpath='{.spec.holderIdentity}')
[[ $holder == "$mpod"_* ]] || fail "the leader Lease is held by '$holder', not by $mpod"
ok "the manager ($TRAINENV_MANAGER_IMAGE) runs on $node as ServiceAccount trainenv-controller-manager, holds the leader Lease (so it reached the API server at 10.96.0.1:443), no --allow-unmatched-images"

apod=$(kubectl -n "$ns" get pods -l app.kubernetes.io/component=node-agent --field-selector "spec.nodeName=$node" -o jsonpath='{.items[0].metadata.name}')
[ -n "$apod" ] || fail "no node agent pod on $node"
ja() { kubectl -n "$ns" get pod "$apod" -o jsonpath="$1"; }
[ "$(ja '{.status.phase}')" = Running ] || fail "the node agent is '$(ja '{.status.phase}')'"
[ "$(ja '{.status.containerStatuses[0].restartCount}')" = 0 ] || fail "the node agent restarted $(ja '{.status.containerStatuses[0].restartCount}') times"
eventually 60 bash -c "kubectl get events -A --field-selector involvedObject.name=$node,reason=NVMLUnavailable -o name | grep -q ." ||
  fail "no NVMLUnavailable event on $node"
note=$(kubectl get events -A --field-selector "involvedObject.name=$node,reason=NVMLUnavailable" -o jsonpath='{.items[0].note}{.items[0].message}')
[ -z "$(kubectl get node "$node" -o jsonpath='{.metadata.labels.nvidia\.com/gpu\.product}{.metadata.labels.trainenv\.io/cuda\.driver-supports}')" ] ||
  fail "the node agent published GPU facts on a node without a GPU"
ok "the node agent runs on $node without restarting and says: $note"

# --- the samples --------------------------------------------------------------------------
sample=pytorch-sample
[ "$(te $sample '{.status.phase}')" = Running ] || fail "$sample is '$(te $sample '{.status.phase}')', want Running"
resolved=$(te $sample '{.status.image.resolved}')
[[ $resolved =~ @sha256:[0-9a-f]{64}$ ]] || fail "$sample: status.image.resolved '$resolved' is not pinned by digest"
image=$(kubectl get pod "$sample-0" -o jsonpath='{.spec.containers[0].image}')
[ "$image" = "$resolved" ] || fail "$sample: the pod runs '$image', not the pinned '$resolved'"
verified=$(te $sample '{.status.conditions[?(@.type=="Verified")].reason}')
[ "$verified" = Verified ] || fail "$sample: Verified reason is '$verified', want Verified (signed by the dev key)"
gnode=$(kubectl get pod "$sample-0" -o jsonpath='{.spec.nodeName}')
[[ $gnode == gpu-a100-* || $gnode == gpu-h100-* ]] || fail "$sample landed on '$gnode', not on a node whose driver supports CUDA 12.4 (A100 or H100)"
ok "$sample runs $image on $gnode, verified against the dev key"

cpu=pytorch-cpu
[ "$(te $cpu '{.status.phase}')" = Running ] || fail "$cpu is '$(te $cpu '{.status.phase}')', want Running"
[ "$(te $cpu '{.status.conditions[?(@.type=="Verified")].reason}')" = Verified ] || fail "$cpu is not Verified"
resolved=$(te $cpu '{.status.image.resolved}')
[ "${resolved#*@}" = "$TRAINENV_PYTORCH_DIGEST" ] || fail "$cpu pinned '$resolved', want the reference image $TRAINENV_PYTORCH_DIGEST"
[ "$(kubectl get pod "$cpu-0" -o jsonpath='{.spec.nodeName}')" = "$node" ] || fail "$cpu does not run on the real node $node"
image_id=$(kubectl get pod "$cpu-0" -o jsonpath='{.status.containerStatuses[?(@.name=="environment")].imageID}{.status.containerStatuses[0].imageID}')
[[ $image_id == *"${resolved#*@}"* ]] || fail "$cpu: the kubelet reports image '$image_id', want ${resolved#*@}"
ok "$cpu runs the reference image ${resolved#*@} on the real node $node (the kubelet's image ID)"

reason=$(te unsigned '{.status.conditions[?(@.type=="Verified")].reason}')
[ "$reason" = NoSignature ] || fail "unsigned: Verified reason '$reason', want NoSignature"
[ "$(te unsigned '{.status.conditions[?(@.type=="Verified")].status}')" = False ] || fail "unsigned: Verified is not False"
! kubectl get pod unsigned-0 >/dev/null 2>&1 || fail "the unsigned image has a pod"
kubectl describe trainingenvironment unsigned | grep -q NoSignature || fail "kubectl describe does not show NoSignature"
ok "unsigned is refused: $(te unsigned '{.status.conditions[?(@.type=="Verified")].message}')"

# --- metrics, HTTPS, authorized -----------------------------------------------------------
kubectl -n "$ns" create serviceaccount metrics-check --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create clusterrolebinding trainenv-metrics-check --clusterrole trainenv-metrics-reader \
  --serviceaccount "$ns:metrics-check" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
token=$(kubectl -n "$ns" create token metrics-check --duration 10m)
port=${TRAINENV_METRICS_PORT:-18080}
kubectl -n "$ns" port-forward svc/trainenv-controller-manager-metrics "$port:8443" >"$work/pf.log" 2>&1 &
pf=$!
eventually 30 grep -q '^Forwarding from' "$work/pf.log" || fail "kubectl port-forward: $(cat "$work/pf.log")"
url=https://127.0.0.1:$port/metrics
code=$(curl -ksS -o /dev/null -w '%{http_code}' "$url") || fail "the metrics endpoint did not answer over HTTPS"
[ "$code" = 401 ] || [ "$code" = 403 ] || fail "metrics without a token answered $code, want 401 or 403"
# Metrics are authorized per request (TokenReview, SubjectAccessReview): a fresh binding may
# take a moment to be seen.
eventually 30 curl -kfsS -o "$work/metrics" -H "Authorization: Bearer $token" "$url" || fail "metrics with the reader's token: $(curl -ksS -H "Authorization: Bearer $token" "$url" 2>&1 | head -3)"
running=$(awk '$1 == "trainenv_environments{phase=\"Running\"}" {print $2}' "$work/metrics")
[ "${running:-0}" -ge 2 ] 2>/dev/null || fail "trainenv_environments{phase=\"Running\"} is '$running', want at least 2"
grep -q '^trainenv_verifications_total{reason="Verified",result="verified"} ' "$work/metrics" || fail "no verification counted"
grep -q '^trainenv_verifications_total{reason="NoSignature",result="failed"} ' "$work/metrics" ||
  fail "the refusal is not counted: $(grep '^trainenv_verifications_total' "$work/metrics")"
ok "the manager's HTTPS metrics refuse an anonymous caller ($code) and count $running running environments and the verifications for the metrics-reader's token"
echo "e2e sample: $passed passed, 0 failed"
