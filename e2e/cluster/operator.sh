#!/usr/bin/env bash
# Installs trainenv into the local cluster and runs the operator against it, then applies
# the samples and waits until the sample environment is pinned and running.
#
# usage: KUBECONFIG=... operator.sh MANAGER_BINARY STATE_DIR
# env (optional): TRAINENV_METRICS_PORT=18080 TRAINENV_PROBE_PORT=18081 (the manager's, on
# 127.0.0.1), so that two clusters can run side by side with up.sh's port variables.
set -euo pipefail
manager=$1; state=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
pids=$state/pids logs=$state/logs
mkdir -p "$pids" "$logs"
metrics_port=${TRAINENV_METRICS_PORT:-18080}
probe_port=${TRAINENV_PROBE_PORT:-18081}
# up.sh wrote the registry address (TRAINENV_DEV_REGISTRY) there.
# shellcheck source=/dev/null
. "$state/env"

kubectl apply --server-side -f "$root/config/crd/bases" >/dev/null
# The local cluster runs no sigstore policy-controller: install its policy CRDs.
kubectl apply --server-side -k "$root/config/sigstore" >/dev/null
kubectl wait --for condition=Established --timeout=60s crd/trainingenvironments.trainenv.io \
  crd/clusterimagepolicies.policy.sigstore.dev crd/trustroots.policy.sigstore.dev >/dev/null

# (Re)start the manager so that a rebuilt binary takes effect.
stop manager "$pids/manager.pid" || true
# The sample image is not signed and no ClusterImagePolicy covers it: for this development
# cluster only, let it run unverified (status shows Verified=Unknown, UnmatchedAllowed).
# Plain HTTP metrics on loopback: a development cluster has no Prometheus to authorize.
nohup "$manager" --metrics-bind-address="127.0.0.1:$metrics_port" --metrics-secure=false \
  --health-probe-bind-address="127.0.0.1:$probe_port" \
  --allow-unmatched-images \
  >"$logs/manager.log" 2>&1 &
echo $! >"$pids/manager.pid"
eventually 60 curl -fsS --max-time 2 "http://127.0.0.1:$probe_port/readyz" ||
  { echo "the manager did not become ready; see $logs/manager.log" >&2; exit 1; }

# The samples name the default registry port; point them at this cluster's registry.
kubectl kustomize "$root/config/samples" | sed "s#127.0.0.1:5001/#$TRAINENV_DEV_REGISTRY/#" | kubectl apply -f - >/dev/null
echo "waiting for the sample TrainingEnvironment to run its pinned digest..." >&2
if ! kubectl wait --for condition=Ready --timeout=120s trainingenvironment/pytorch-sample >/dev/null; then
  kubectl describe trainingenvironment/pytorch-sample >&2
  exit 1
fi

kubectl get trainingenvironments
echo
echo "The sample pod runs: $(kubectl get pod pytorch-sample-0 -o jsonpath='{.spec.containers[0].image}')"
cat <<MSG

The local cluster is up:
  export KUBECONFIG=$KUBECONFIG
  kubectl get trainenv,pods,nodes
  kubectl describe trainenv pytorch-sample
Operator log: $logs/manager.log
Stop it with: make dev-down   (make dev-clean also deletes its state)
MSG
