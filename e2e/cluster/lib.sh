# shellcheck shell=bash
# Shell functions for the local-cluster scripts (bash; source it). Processes are tracked by
# pid files; waiting polls with a deadline instead of sleeping a fixed time.

# alive PID: the process exists and has not exited. An exited process stays a zombie until
# its parent reaps it, so ask ps rather than `kill -0`.
alive() {
  local stat
  stat=$(ps -o stat= -p "$1") && [[ $stat != Z* ]]
}

# exited PID: the opposite of alive.
exited() { ! alive "$1"; }

# ours FILE: the process in pid FILE is alive and started before FILE was written, so it is
# not an unrelated process that got the same pid after a reboot.
ours() {
  local stat etimes
  [ -s "$1" ] || return 1
  read -r stat etimes < <(ps -o stat=,etimes= -p "$(cat "$1")") || return 1
  [[ $stat != Z* ]] && (($(date +%s) - etimes <= $(stat -c %Y "$1") + 1))
}

# eventually SECONDS CMD...: runs CMD (output discarded) every half second until it
# succeeds; fails once SECONDS have passed.
eventually() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# stop NAME FILE: if the process in pid FILE is ours, sends it TERM, gives it 10 s to exit
# cleanly (etcd flushes), then kills it. Fails if there was nothing to stop.
stop() {
  local pid
  ours "$2" || return 1
  pid=$(cat "$2")
  kill "$pid" 2>/dev/null || return 1
  eventually 10 exited "$pid" && return
  echo "$1 (pid $pid) did not stop; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}

# restricted_namespace NS: creates NS enforcing Pod Security "restricted", as the docs ask of
# every environment namespace, and waits for its default ServiceAccount (pods need it).
restricted_namespace() {
  kubectl apply -f - >/dev/null <<NS
apiVersion: v1
kind: Namespace
metadata:
  name: $1
  labels: {pod-security.kubernetes.io/enforce: restricted}
NS
  eventually 60 kubectl -n "$1" get serviceaccount default
}

# release_volumes STATE_DIR NS: deletes NS and gives the real node's local volumes its claims
# held back (reclaim policy Retain): the directories wiped, the PersistentVolumes Available.
release_volumes() {
  local pv path pvs
  pvs=$(kubectl -n "$2" get pvc -o jsonpath='{range .items[*]}{.spec.volumeName}{"\n"}{end}')
  kubectl delete namespace "$2" --wait=true >/dev/null
  for pv in $pvs; do
    path=$(kubectl get pv "$pv" -o jsonpath='{.spec.local.path}')
    if [[ $path == "$1/node/volumes/"* ]]; then find "$path" -mindepth 1 -delete; fi
    kubectl patch pv "$pv" --type json -p '[{"op": "remove", "path": "/spec/claimRef"}]' >/dev/null
  done
}

# remove_helm_release HELM NS: uninstalls the release trainenv from NS (the chart keeps its
# CRD, so the environments stay) and waits until no manager pod is left.
remove_helm_release() {
  if "$1" -n "$2" status trainenv >/dev/null 2>&1; then
    "$1" -n "$2" uninstall trainenv --wait >/dev/null || { echo "helm uninstall failed" >&2; return 1; }
  fi
  eventually 120 bash -c "! kubectl -n $2 get pods -l app.kubernetes.io/component=manager -o name | grep -q ." ||
    { echo "the previous manager pod is still there" >&2; return 1; }
}

# manager_leads NS NODE IMAGE: the manager Deployment in NS rolls out, its pod runs IMAGE on
# NODE and takes the leader Lease. Prints the pod's name; on failure says why on stderr.
manager_leads() {
  local pod at ran
  kubectl -n "$1" rollout status deployment/trainenv-controller-manager --timeout=180s >/dev/null ||
    { echo "the manager did not become Ready" >&2; return 1; }
  pod=$(kubectl -n "$1" get pods -l app.kubernetes.io/component=manager -o jsonpath='{.items[0].metadata.name}')
  [ -n "$pod" ] || { echo "no manager pod" >&2; return 1; }
  at=$(kubectl -n "$1" get pod "$pod" -o jsonpath='{.spec.nodeName}')
  [ "$at" = "$2" ] || { echo "the manager runs on '$at', want $2" >&2; return 1; }
  ran=$(kubectl -n "$1" get pod "$pod" -o jsonpath='{.spec.containers[?(@.name=="manager")].image}')
  [ "$ran" = "$3" ] || { echo "the manager runs $ran, want $3" >&2; return 1; }
  eventually 60 bash -c "kubectl -n $1 get lease trainenv-manager.trainenv.io -o jsonpath='{.spec.holderIdentity}' | grep -q '^${pod}_'" ||
    { echo "the manager $pod did not take the leader Lease" >&2; return 1; }
  echo "$pod"
}
