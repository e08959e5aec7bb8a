#!/usr/bin/env bash
# Checks CUDA-aware placement on the local cluster's three GPU pools (up.sh: H100 with driver
# 580 / CUDA 13.0, A100 with 550 / CUDA 12.4, T4 with 470 / CUDA 11.4): environments of
# images built for different CUDA versions each land in a pool whose driver can run them,
# pass the GPU preflight, or report NoCompatibleNode naming what the cluster has, with no pod.
#
# usage: check-pools.sh [STATE_DIR]     (STATE_DIR defaults to bin/dev; needs make dev)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=${1:-$root/bin/dev}
# shellcheck source=/dev/null
. "$state/env"
repo=$TRAINENV_CLUSTER_REGISTRY/trainenv/pytorch-cuda
envs=(pool-cuda13 pool-cuda114-t4 pool-cuda128-a100 pool-cuda131)
passed=0
cleanup() { kubectl delete trainingenvironment "${envs[@]}" --ignore-not-found --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT
fail() { echo "e2e pools: $1: $2" >&2; kubectl describe trainingenvironment "$1" >&2; exit 1; }

# environment NAME TAG [PRODUCT]: one GPU of any product, or of PRODUCT.
environment() {
  cat <<YAML
---
apiVersion: trainenv.io/v1alpha1
kind: TrainingEnvironment
metadata: {name: $1}
spec:
  image: $repo:$2
  gpu:
    count: 1
$([ -n "${3:-}" ] && echo "    products: [$3]")
YAML
}
{
  environment pool-cuda13 13.0
  environment pool-cuda114-t4 11.4 Tesla-T4
  environment pool-cuda128-a100 12.8 NVIDIA-A100-SXM4-80GB
  environment pool-cuda131 13.1
} | kubectl apply -f - >/dev/null

jp() { kubectl get trainingenvironment "$1" -o jsonpath="$2"; }

# runs_on NAME NODE_PREFIX: Ready, on a node of that pool, after a passing preflight.
runs_on() {
  kubectl wait --for condition=Ready --timeout=60s "trainingenvironment/$1" >/dev/null || fail "$1" "not Ready"
  local node preflight
  node=$(jp "$1" '{.status.nodeName}')
  [[ $node == "$2"* ]] || fail "$1" "landed on '$node', want a $2* node"
  [ "$(kubectl get pod "$1-0" -o jsonpath='{.spec.nodeName}')" = "$node" ] || fail "$1" "status.nodeName is not the pod's node"
  preflight=$(jp "$1" '{.status.preflight.passed}')
  [ "$preflight" = true ] || fail "$1" "status.preflight.passed is '$preflight'"
  echo "e2e pools: $1 runs on $node"
  passed=$((passed + 1))
}

# refused NAME TEXT...: Compatible=False NoCompatibleNode, the message naming each TEXT, no pod.
refused() {
  local name=$1 msg; shift
  kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Compatible")].reason}'=NoCompatibleNode \
    --timeout=60s "trainingenvironment/$name" >/dev/null || fail "$name" "Compatible is not NoCompatibleNode"
  msg=$(jp "$name" '{.status.conditions[?(@.type=="Compatible")].message}')
  for want in "$@"; do
    [[ $msg == *"$want"* ]] || fail "$name" "the message does not name '$want': $msg"
  done
  ! kubectl get pod "$name-0" >/dev/null 2>&1 || fail "$name" "a pod exists although nothing can run it"
  echo "e2e pools: $name refused: $msg"
  passed=$((passed + 1))
}

runs_on pool-cuda13 gpu-h100-
runs_on pool-cuda114-t4 gpu-t4-
refused pool-cuda128-a100 '"cuda>=12.8"' '(CUDA 12.4)'
refused pool-cuda131 '"cuda>=13.1"' '(CUDA 13.0)' '(CUDA 12.4)' '(CUDA 11.4)'
echo "e2e pools: $passed passed, 0 failed"
