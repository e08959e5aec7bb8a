#!/usr/bin/env bash
# End to end through the kubectl plugin on the local cluster (make dev): an environment
# with Jupyter and SSH in a namespace enforcing Pod Security "restricted"; kwok serves its
# pod's port-forward and sends port 2222 to a real sshd on loopback that uses the host
# keys the operator generated. Checks:
#   - ssh through `kubectl trainenv ssh-proxy` (ssh-config's Host block) logs in, verifying
#     the host key from status.access (a wrong known key is refused);
#   - `kubectl trainenv connect` prints the Jupyter URL with the token of the Secret and
#     forwards both ports; it keeps working when sshd restarts, when kwok (the port-forward
#     server) restarts, and when the pod is replaced: it reconnects by itself.
# Jupyter itself is tested elsewhere: here the registry's HTTP API stands in for it.
#
# usage: KUBECONFIG=... check-access.sh STATE_DIR BIN_DIR
#   env: TRAINENV_E2E_SSHD_PORT=32222 TRAINENV_E2E_CONNECT_PORT=32223 (local ports),
#        TRAINENV_E2E_JUPYTER_PORT=32288
set -euo pipefail
state=$1 bin_dir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
# shellcheck source=/dev/null
. "$state/env"
export PATH="$root/bin:$PATH"
ns=access-e2e te=notebook
sshd_port=${TRAINENV_E2E_SSHD_PORT:-32222}
connect_ssh=${TRAINENV_E2E_CONNECT_PORT:-32223}
connect_jupyter=${TRAINENV_E2E_JUPYTER_PORT:-32288}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
fail() {
  echo "e2e access: FAIL: $*" >&2
  [ -f "$work/connect.log" ] && { echo "--- connect log" >&2; cat "$work/connect.log" >&2; }
  [ -f "$work/sshd.log" ] && { echo "--- sshd log" >&2; tail -n 20 "$work/sshd.log" >&2; }
  kubectl -n "$ns" describe trainingenvironment "$te" >&2 || true
  exit 1
}
ok() { passed=$((passed + 1)); echo "e2e access: ok: $*"; }

# --- the environment --------------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C e2e -f "$work/id_ed25519"
restricted_namespace "$ns" || fail "no default ServiceAccount in $ns"
kubectl -n "$ns" create secret generic "$te-keys" --from-file=authorized_keys="$work/id_ed25519.pub" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: trainenv.io/v1alpha1
kind: TrainingEnvironment
metadata: {name: $te, namespace: $ns}
spec:
  image: $TRAINENV_SAMPLE_IMAGE
  gpu: {count: 1}
  jupyter: {enabled: true}
  ssh:
    enabled: true
    authorizedKeysSecretRef: {name: $te-keys}
EOF
kubectl -n "$ns" wait --for condition=Ready --timeout=120s "trainingenvironment/$te" >/dev/null ||
  fail "the environment did not become Ready"
ok "environment with Jupyter and SSH is Ready; its pod was admitted under Pod Security restricted"

# --- a real sshd with the operator's host keys ------------------------------------------
secret=$te-ssh-host-keys
for k in ssh_host_ed25519_key ssh_host_ecdsa_key ssh_host_rsa_key; do
  kubectl -n "$ns" get secret "$secret" -o "jsonpath={.data.$k}" | base64 -d >"$work/$k"
  chmod 600 "$work/$k"
done
kubectl -n "$ns" get secret "$te-keys" -o 'jsonpath={.data.authorized_keys}' | base64 -d >"$work/authorized_keys"
user=$(id -un)
cat >"$work/sshd_config" <<EOF
ListenAddress 127.0.0.1:$sshd_port
HostKey $work/ssh_host_ed25519_key
HostKey $work/ssh_host_ecdsa_key
HostKey $work/ssh_host_rsa_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
AllowUsers $user
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
EOF
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
sshd=$(command -v sshd || echo /usr/sbin/sshd)
start_sshd() {
  "$sshd" -D -e -f "$work/sshd_config" >>"$work/sshd.log" 2>&1 &
  sshd_pid=$!
  pids+=("$sshd_pid")
  eventually 10 bash -c ": </dev/tcp/127.0.0.1/$sshd_port" || fail "sshd did not start"
}
start_sshd
# The registry stands in for Jupyter (an HTTP server on loopback).
kubectl apply -f - >/dev/null <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: PortForward
metadata: {name: $te-0, namespace: $ns}
spec:
  forwards:
  - ports: [2222]
    target: {address: 127.0.0.1, port: $sshd_port}
  - ports: [8888]
    target: {address: 127.0.0.1, port: ${TRAINENV_DEV_REGISTRY##*:}}
EOF

# --- ssh through ssh-proxy, host key checked --------------------------------------------
kubectl-trainenv ssh-config "$te" -n "$ns" --user "$user" --kubectl "$(command -v kubectl)" \
  --known-hosts-file "$work/known_hosts" >"$work/ssh_config"
ssh_opts=(-F "$work/ssh_config" -i "$work/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20)
# kwok picks up the new PortForward asynchronously.
eventually 30 ssh "${ssh_opts[@]}" "$te" true || fail "ssh $te through ssh-proxy did not log in; $(ssh "${ssh_opts[@]}" "$te" true 2>&1 | tail -3)"
out=$(ssh "${ssh_opts[@]}" "$te" echo hello from the environment)
[ "$out" = "hello from the environment" ] || fail "ssh ran the command but printed '$out'"
grep -q "Accepted publickey for $user" "$work/sshd.log" || fail "sshd did not log the key login"
ok "ssh $te through kubectl trainenv ssh-proxy logs in with the host key from status.access"

ssh-keygen -q -t ed25519 -N '' -f "$work/impostor"
echo "trainenv.$ns.$te $(cut -d' ' -f1,2 "$work/impostor.pub")" >"$work/wrong_known_hosts"
if err=$(ssh "${ssh_opts[@]}" -o UserKnownHostsFile="$work/wrong_known_hosts" "$te" true 2>&1); then
  fail "ssh logged in although the known host key was wrong"
fi
[[ $err == *"Host key verification failed"* ]] || fail "unexpected error with a wrong host key: $err"
ok "a wrong known host key is refused (StrictHostKeyChecking yes)"

# --- connect: forwards that stay up -----------------------------------------------------
kubectl-trainenv connect "$te" -n "$ns" --ssh-port "$connect_ssh" --jupyter-port "$connect_jupyter" \
  >"$work/connect.out" 2>"$work/connect.log" &
pids+=($!)
eventually 30 grep -q '^SSH:' "$work/connect.out" || fail "connect printed no addresses"
token=$(kubectl -n "$ns" get secret "$te-jupyter" -o 'jsonpath={.data.token}' | base64 -d)
[ ${#token} -ge 43 ] || fail "generated Jupyter token is ${#token} characters, want at least 43 (32 random bytes)"
grep -qF "Jupyter: http://127.0.0.1:$connect_jupyter/?token=$token" "$work/connect.out" ||
  fail "connect did not print the Jupyter URL with the token: $(cat "$work/connect.out")"
ok "connect prints the Jupyter URL with the token read from the Secret"

via_connect=(ssh -i "$work/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=30
  -o HostKeyAlias="trainenv.$ns.$te" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
  -p "$connect_ssh" "$user@127.0.0.1")
check_connect() {
  local what=$1
  eventually 60 "${via_connect[@]}" true || fail "ssh through connect failed $what"
  eventually 30 curl -fsS -o /dev/null "http://127.0.0.1:$connect_jupyter/v2/" || fail "HTTP through connect failed $what"
  ok "ssh and HTTP through connect $what"
}
check_connect "at first"
connected() { grep -c '^connected to pod' "$work/connect.log" || true; }

kill "$sshd_pid"; wait "$sshd_pid" 2>/dev/null || true
start_sshd
check_connect "after sshd restarted"

reconnected() { [ "$(connected)" -gt "$before" ]; }
replaced() {
  local now
  now=$(kubectl -n "$ns" get pod "$te-0" -o jsonpath='{.metadata.uid}/{.status.phase}' 2>/dev/null) &&
    [ "${now%/*}" != "$uid" ] && [ "${now#*/}" = Running ]
}

before=$(connected)
kwok_pid=$(cat "$state/pids/kwok.pid")
kill "$kwok_pid"
eventually 30 exited "$kwok_pid" || fail "kwok did not stop"
"$root/e2e/cluster/up.sh" "$bin_dir" "$state" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "restarting kwok"; }
back=$(date +%s%N)
eventually 60 reconnected || fail "connect did not reconnect after the port-forward server restarted"
echo "e2e access: connect reconnected $((($(date +%s%N) - back) / 1000000)) ms after kwok was serving again"
grep -q '^lost the connection to pod' "$work/connect.log" || fail "connect did not notice the drop"
check_connect "after the port-forward server (kwok) restarted and connect reconnected"

before=$(connected)
uid=$(kubectl -n "$ns" get pod "$te-0" -o jsonpath='{.metadata.uid}')
kubectl -n "$ns" delete pod "$te-0" --wait=false >/dev/null
eventually 90 replaced || fail "the pod was not replaced"
back=$(date +%s%N)
eventually 60 reconnected || fail "connect did not reconnect to the replaced pod"
echo "e2e access: connect reconnected $((($(date +%s%N) - back) / 1000000)) ms after the new pod was Running"
check_connect "after the pod was replaced"

echo "e2e access: what connect logged:"
sed 's/^/  /' "$work/connect.log"
echo "e2e access: $passed passed, 0 failed"
