#!/usr/bin/env bash
# Checks what `make dev` promises: the sample TrainingEnvironment is Running, its status
# holds the pinned digest, and its pod runs exactly that repository@sha256 digest; the
# manager's metrics count it (operator.sh serves them over plain HTTP on loopback).
set -euo pipefail
te=pytorch-sample
phase=$(kubectl get trainingenvironment "$te" -o jsonpath='{.status.phase}')
resolved=$(kubectl get trainingenvironment "$te" -o jsonpath='{.status.image.resolved}')
image=$(kubectl get pod "$te-0" -o jsonpath='{.spec.containers[0].image}')
node=$(kubectl get pod "$te-0" -o jsonpath='{.spec.nodeName}')
verified=$(kubectl get trainingenvironment "$te" -o jsonpath='{.status.conditions[?(@.type=="Verified")].reason}')
fail() { echo "e2e: $*" >&2; kubectl describe trainingenvironment "$te" >&2; exit 1; }
[ "$phase" = Running ] || fail "phase is '$phase', want Running"
[[ "$resolved" =~ @sha256:[0-9a-f]{64}$ ]] || fail "status.image.resolved '$resolved' is not pinned by digest"
[ "$image" = "$resolved" ] || fail "the pod runs '$image', not the pinned '$resolved'"
[ "$verified" = UnmatchedAllowed ] || fail "Verified reason is '$verified', want UnmatchedAllowed (the dev operator allows unmatched images, visibly)"
[[ "$node" == gpu-a100-* || "$node" == gpu-h100-* ]] || fail "the pod landed on '$node', not on a node whose driver supports CUDA 12.4 (A100 or H100)"
metrics=$(curl -fsS "http://127.0.0.1:${TRAINENV_METRICS_PORT:-18080}/metrics") || fail "the manager serves no metrics"
running=$(awk '$1 == "trainenv_environments{phase=\"Running\"}" {print $2}' <<<"$metrics")
[ "${running:-0}" -ge 1 ] 2>/dev/null || fail "trainenv_environments{phase=\"Running\"} is '$running', want at least 1"
grep -q '^trainenv_verifications_total{reason="UnmatchedAllowed",result="verified"} ' <<<"$metrics" ||
  fail "no verification of the sample is counted"
echo "e2e: 1 passed, 0 failed (sample runs $image on $node; $running running in the metrics)"
