#!/usr/bin/env bash
# Measures, on the local cluster of make dev, `kubectl apply` of a CPU environment of the
# reference image with Jupyter → its Jupyter server answering with the token, on the real
# node with the image already there (make dev ran pytorch-cpu from it). Jupyter is reached
# the way connect reaches it: kubectl port-forward to the pod, /api/status with the token.
# Prints one line per run: apply → pod Running, → environment Ready, → Jupyter 200.
#
# usage: KUBECONFIG=... bench-jupyter.sh STATE_DIR [RUNS]     (RUNS defaults to 3)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 STATE_DIR [RUNS]" >&2; exit 2; }
state=$(cd "$1" && pwd)
runs=${2:-3}
# shellcheck source=/dev/null
. "$state/env"
te=bench-jupyter
work=$(mktemp -d)
pf=
cleanup() {
  [ -n "$pf" ] && kill "$pf" 2>/dev/null
  kubectl delete trainingenvironment "$te" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ms() { echo $(($(date +%s%N) / 1000000)); }
fail() { echo "bench-jupyter: $*" >&2; kubectl describe trainingenvironment "$te" >&2 || true; exit 1; }

for run in $(seq "$runs"); do
  kubectl delete trainingenvironment "$te" --ignore-not-found --wait=true >/dev/null
  # The pod of the last run outlives its environment for a moment.
  kubectl wait --for=delete "pod/$te-0" --timeout=120s >/dev/null 2>&1 || true
  start=$(ms)
  kubectl apply -f - >/dev/null <<EOF
apiVersion: trainenv.io/v1alpha1
kind: TrainingEnvironment
metadata: {name: $te}
spec:
  image: $TRAINENV_CLUSTER_REGISTRY/trainenv/pytorch:dev
  resources: {cpu: 500m, memory: 2Gi}
  shmSize: 256Mi
  jupyter: {enabled: true}
EOF
  deadline=$((SECONDS + 180))
  until [ "$(kubectl get pod "$te-0" -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ]; do
    [ $SECONDS -lt $deadline ] || fail "the pod is not Running after 180 s"
    sleep 0.1
  done
  running=$(($(ms) - start))
  token=$(kubectl get secret "$te-jupyter" -o 'jsonpath={.data.token}' | base64 -d)
  # kubectl port-forward exits when a connection to the pod fails (Jupyter not listening
  # yet): start it again until Jupyter answers.
  until [ -n "$pf" ] && kill -0 "$pf" 2>/dev/null && port=$(sed -nE 's/^Forwarding from 127\.0\.0\.1:([0-9]+) .*/\1/p' "$work/pf.log") &&
    [ -n "$port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Authorization: token $token" "http://127.0.0.1:$port/api/status")" = 200 ]; do
    [ $SECONDS -lt $deadline ] || fail "Jupyter did not answer 200 after 180 s: $(cat "$work/pf.log")"
    if [ -z "$pf" ] || ! kill -0 "$pf" 2>/dev/null; then
      : >"$work/pf.log"
      kubectl port-forward "pod/$te-0" :8888 >"$work/pf.log" 2>&1 &
      pf=$!
    fi
    sleep 0.05
  done
  jupyter=$(($(ms) - start))
  kubectl wait --for condition=Ready --timeout=60s "trainingenvironment/$te" >/dev/null || fail "not Ready"
  ready=$(($(ms) - start))
  kill "$pf" 2>/dev/null; pf=
  echo "bench-jupyter: run $run: apply → pod Running ${running} ms, → Jupyter 200 with the token ${jupyter} ms, → environment Ready (seen) ${ready} ms"
done
