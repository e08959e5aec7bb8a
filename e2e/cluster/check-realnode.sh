#!/usr/bin/env bash
# Checks the real node of the local cluster (node.sh): a hardened pod (Pod Security
# "restricted" namespace, uid 1000, read-only root, all capabilities dropped, seccomp
# RuntimeDefault, no service-account token) goes Running on it, the kernel inside the
# container confirms each of those settings, and `kubectl logs`, `exec` and `port-forward`
# reach it through the API server and the kubelet. Prints pod create→Running and the
# kubelet's and containerd's memory.
#
# usage: KUBECONFIG=... check-realnode.sh STATE_DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
state=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=/dev/null
. "$state/env"
node=$(cat "$state/node/node-name")
ns=trainenv-realnode-check pod=probe
fail() {
  echo "e2e realnode: $*" >&2
  kubectl -n "$ns" describe pod "$pod" >&2 2>/dev/null || true
  exit 1
}
ms() { echo $(($(date +%s%N) / 1000000)); }

# A real kubelet and containerd, not one of kwok's simulated nodes.
info=$(kubectl get node "$node" -o jsonpath='{.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion} {.metadata.annotations.kwok\.x-k8s\.io/node}')
[[ $info =~ ^v[0-9.]+\ containerd://[^\ ]+\ ?$ ]] || fail "node $node is not a real kubelet with containerd: '$info'"

# The probe image: a static binary alone (e2e/podprobe), pushed to the loopback registry.
bin=$state/node/bin
mkdir -p "$bin"
CGO_ENABLED=0 go -C "$root" build -trimpath -ldflags=-s -o "$bin/podprobe" ./e2e/podprobe
go -C "$root" build -o "$bin/binimage" ./e2e/binimage
image=$("$bin/binimage" --binary "$bin/podprobe" --user 1000:1000 --image "$TRAINENV_DEV_REGISTRY/trainenv/podprobe:dev")

kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
EOF
# Pods can be created in a namespace only once its default ServiceAccount exists; the pod
# mounts the cluster CA the controller-manager publishes.
deadline=$((SECONDS + 30))
until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1 &&
  kubectl -n "$ns" get configmap kube-root-ca.crt >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail "no default ServiceAccount or kube-root-ca.crt in $ns"
  sleep 0.2
done

# PSA must refuse a pod that is not restricted, here one that may run as root.
refused=$(kubectl -n "$ns" run psa-refused --image "$image" --restart=Never --dry-run=server 2>&1) &&
  fail "namespace $ns admitted a pod that is not Pod Security restricted"
grep -q 'violates PodSecurity "restricted' <<<"$refused" || fail "unexpected answer to a non-restricted pod: $refused"

kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: workspace}
spec:
  storageClassName: trainenv-local
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOF

# start_pod: creates the probe pod and waits until it is Running, then Ready; sets
# running_ms and ready_ms (from the create request).
start_pod() {
  local start
  start=$(ms)
  kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
spec:
  nodeSelector: {kubernetes.io/hostname: $node}
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: probe
    image: $image
    args: [serve, --addr, ":8080"]
    ports: [{containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts:
    - {name: cluster-ca, mountPath: /ca, readOnly: true}
    - {name: workspace, mountPath: /workspace}
    resources:
      requests: {cpu: 10m, memory: 16Mi}
      limits: {memory: 64Mi}
  volumes:
  - name: cluster-ca
    configMap: {name: kube-root-ca.crt}
  - name: workspace
    persistentVolumeClaim: {claimName: workspace}
EOF
  local deadline=$((SECONDS + 120))
  until [ "$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.phase}')" = Running ]; do
    [ $SECONDS -lt $deadline ] || fail "pod not Running on $node after 120 s"
    sleep 0.05
  done
  running_ms=$(($(ms) - start))
  kubectl -n "$ns" wait --for=condition=Ready --timeout=60s "pod/$pod" >/dev/null || fail "pod not Ready"
  ready_ms=$(($(ms) - start))
}
start_pod
first_running_ms=$running_ms first_ready_ms=$ready_ms
[ "$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.spec.nodeName}')" = "$node" ] || fail "pod not on $node"
image_id=$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].imageID}')
[[ $image_id == *"${image#*@}" ]] || fail "the kubelet reports image '$image_id', want the pushed ${image#*@}"

# kubectl logs: the API server reaches the kubelet (its client certificate, webhook authz).
deadline=$((SECONDS + 10))
until kubectl -n "$ns" logs "$pod" | grep -q "listening on :8080 as uid 1000"; do
  [ $SECONDS -lt $deadline ] || fail "kubectl logs: $(kubectl -n "$ns" logs "$pod" 2>&1)"
  sleep 0.2
done

# kubectl exec: what the kernel applied to the container.
who=$(kubectl -n "$ns" exec "$pod" -- /podprobe whoami) || fail "kubectl exec failed"
want() { grep -qx "$1" <<<"$who" || fail "in the container: want $1, got: $(tr '\n' ' ' <<<"$who")"; }
want uid=1000
want gid=1000
want CapEff=0000000000000000
want CapPrm=0000000000000000
want CapBnd=0000000000000000
want NoNewPrivs=1
want Seccomp=2
want rootfs=read-only
kubectl -n "$ns" exec "$pod" -- /podprobe whoami-missing >/dev/null 2>&1 && fail "exec of a failing command reported success"
if kubectl -n "$ns" exec "$pod" -- cat /var/run/secrets/kubernetes.io/serviceaccount/token >/dev/null 2>&1; then
  fail "a service-account token is mounted"
fi

# The API server from inside the pod, the way in-cluster clients find it: the kubernetes
# Service's address (node.sh DNATs it to the API server on loopback), verified with the
# cluster CA. Anonymous requests may read /version.
api=$(kubectl -n "$ns" exec "$pod" -- /podprobe fetch --ca /ca/ca.crt https://10.96.0.1:443/version) ||
  fail "the pod cannot reach the API server at 10.96.0.1:443"
grep -q '"gitVersion"' <<<"$api" || fail "10.96.0.1:443/version answered: $api"

# kubectl port-forward: kubelet → containerd's stream server → the pod's network namespace.
pf_log=$(mktemp)
kubectl -n "$ns" port-forward "pod/$pod" :8080 >"$pf_log" 2>&1 &
pf=$!
trap 'kill $pf 2>/dev/null || true; rm -f "$pf_log"' EXIT
deadline=$((SECONDS + 15))
until port=$(sed -nE 's/^Forwarding from 127\.0\.0\.1:([0-9]+) .*/\1/p' "$pf_log") && [ -n "$port" ]; do
  [ $SECONDS -lt $deadline ] || fail "kubectl port-forward: $(cat "$pf_log")"
  sleep 0.1
done
body=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/") || fail "nothing answered through port-forward: $(cat "$pf_log")"
[ "$body" = "podprobe ok" ] || fail "port-forward answered '$body'"
kill $pf 2>/dev/null || true

# The workspace: a local PersistentVolume the uid-1000 user can write (the kubelet applied
# fsGroup), whose file survives the pod's deletion.
kubectl -n "$ns" exec "$pod" -- /podprobe put /workspace/kept "written by $pod" || fail "uid 1000 cannot write its workspace"
kubectl -n "$ns" delete pod "$pod" --wait=true >/dev/null
start_pod
kept=$(kubectl -n "$ns" exec "$pod" -- /podprobe get /workspace/kept) || fail "the workspace file is gone after the pod was recreated"
[ "$kept" = "written by $pod" ] || fail "the workspace file holds '$kept'"

rss() { awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$(cat "$state/pids/$1.pid")/status"; }
echo "e2e realnode: 1 passed, 0 failed (hardened pod on $node: create→Running ${first_running_ms} ms, →Ready ${first_ready_ms} ms; again with the image on the node: ${running_ms} ms, ${ready_ms} ms; RSS kubelet $(rss kubelet) MiB, containerd $(rss containerd) MiB)"

# Give the volume back to the pool, as a local volume provisioner would: delete the claim,
# wipe the directory, make the PersistentVolume Available again.
pv=$(kubectl -n "$ns" get pvc workspace -o jsonpath='{.spec.volumeName}')
kubectl delete namespace "$ns" --wait=true >/dev/null
path=$(kubectl get pv "$pv" -o jsonpath='{.spec.local.path}')
[[ $path == "$state/node/volumes/"* ]] && find "$path" -mindepth 1 -delete
kubectl patch pv "$pv" --type json -p '[{"op": "remove", "path": "/spec/claimRef"}]' >/dev/null
