#!/usr/bin/env bash
# Brings up a local development cluster on loopback only, without Docker or kubelets:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes and pods)
# and a plain-HTTP image registry holding a sample CUDA image. Then creates simulated GPU
# nodes labelled the way NVIDIA GPU feature discovery labels real ones.
#
# usage: up.sh BIN_DIR [STATE_DIR]     (STATE_DIR defaults to bin/dev)
#   BIN_DIR holds kube-apiserver, kube-scheduler, kube-controller-manager, etcd, kwok and
#   optionally kubectl and sampleimage (see e2e/tools/build-*.sh); otherwise PATH is used.
#   Running it again is safe: running components are left alone, certs and data are kept.
#
# env (all optional):
#   TRAINENV_ETCD_PORT=12379 TRAINENV_ETCD_PEER_PORT=12380 TRAINENV_APISERVER_PORT=16443
#   TRAINENV_KCM_PORT=16257 TRAINENV_SCHEDULER_PORT=16259 TRAINENV_KWOK_PORT=16247
#   TRAINENV_REGISTRY_PORT=5001
#   TRAINENV_SAMPLEIMAGE  command that pushes the sample images (default: BIN_DIR/sampleimage
#                         if present, else e2e/sampleimage built into STATE_DIR)
#   TRAINENV_UP_TIMEOUT=60  seconds to wait for each component
#   TRAINENV_DEV_HOOK     shell command run at the end, with KUBECONFIG etc. exported
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BIN_DIR [STATE_DIR]" >&2; exit 2; }
[ -d "$1" ] || { echo "error: BIN_DIR $1 does not exist; fill it with e2e/tools/build-*.sh" >&2; exit 1; }
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
bin_dir=$(cd "$1" && pwd)
mkdir -p "${2:-$root/bin/dev}"
state=$(cd "${2:-$root/bin/dev}" && pwd)

etcd_port=${TRAINENV_ETCD_PORT:-12379}
etcd_peer_port=${TRAINENV_ETCD_PEER_PORT:-12380}
api_port=${TRAINENV_APISERVER_PORT:-16443}
kcm_port=${TRAINENV_KCM_PORT:-16257}
sched_port=${TRAINENV_SCHEDULER_PORT:-16259}
kwok_port=${TRAINENV_KWOK_PORT:-16247}
registry_port=${TRAINENV_REGISTRY_PORT:-5001}
timeout=${TRAINENV_UP_TIMEOUT:-60}
registry=127.0.0.1:$registry_port
server=https://127.0.0.1:$api_port

pki=$state/pki logs=$state/logs pids=$state/pids
mkdir -p "$pki" "$logs" "$pids" "$state/etcd" "$state/registry"
chmod 700 "$pki" "$state/etcd"

start_time=$SECONDS
say() { printf '[%3ds] %s\n' $((SECONDS - start_time)) "$*" >&2; }
die() { echo "error: $*" >&2; echo "(whatever did start keeps running: e2e/cluster/down.sh $state)" >&2; exit 1; }

# tool NAME: BIN_DIR/NAME, else NAME on PATH.
tool() {
  if [ -x "$bin_dir/$1" ]; then echo "$bin_dir/$1"
  elif command -v "$1" >/dev/null; then command -v "$1"
  else die "$1 not found in $bin_dir or on PATH"
  fi
}
kubectl=$(tool kubectl)
kc() { "$kubectl" --kubeconfig "$state/kubeconfig" "$@"; }

# running NAME: the process in pids/NAME.pid is alive and ours (lib.sh).
running() { ours "$pids/$1.pid"; }

port_open() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch NAME PORT CMD...: starts CMD in its own session (so a Ctrl-C in the shell that ran
# `make dev` does not take the cluster down), logging to logs/NAME.log.
launch() {
  local name=$1 port=$2; shift 2
  if running "$name"; then say "$name already running (pid $(cat "$pids/$name.pid"))"; return; fi
  port_open "$port" && die "127.0.0.1:$port is in use by another process; $name needs it (see the port variables in $0)"
  say "starting $name"
  echo "=== $(date -u +%FT%TZ) $*" >>"$logs/$name.log"
  setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pids/$name.pid"
}

# wait_http NAME URL [CURL_ARGS...]: waits until URL answers 2xx, or fails with the log tail.
wait_http() {
  local name=$1 url=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
    if ! running "$name"; then
      tail -n 20 "$logs/$name.log" >&2
      die "$name exited; full log: $logs/$name.log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$logs/$name.log" >&2
      die "$name not ready at $url after ${timeout}s; full log: $logs/$name.log"
    fi
    sleep 0.5
  done
  say "$name ready"
}

# --- certificates -----------------------------------------------------------------------
# One CA signs the apiserver's serving cert and every client cert; the CA is also the
# root-ca-file that ends up in each namespace's kube-root-ca.crt. Kept across runs.
# cert NAME SUBJECT EXTENSIONS
cert() {
  [ -s "$pki/$1.crt" ] && return
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/$1.key" -subj "$2" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile <(printf '%s\n' "$3") -out "$pki/$1.crt" 2>/dev/null
  rm -f "$pki/$1.csr"
}
if [ ! -s "$pki/ca.crt" ]; then
  say "generating certificates in $pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=trainenv-dev-ca" 2>/dev/null
fi
# The service-account signing key is RSA: every token consumer understands RS256.
[ -s "$pki/sa.key" ] || openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
[ -s "$pki/sa.pub" ] || openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
cert apiserver "/CN=kube-apiserver" \
  "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
client="extendedKeyUsage=clientAuth"
cert admin "/O=system:masters/CN=trainenv-admin" "$client"
cert controller-manager "/CN=system:kube-controller-manager" "$client"
cert scheduler "/CN=system:kube-scheduler" "$client"
cert kwok "/CN=kwok" "$client"
# Not system:masters, so that the manager meets RBAC and API priority and fairness the
# way it does in a real cluster; bind its ClusterRole to User "trainenv-manager".
cert manager "/CN=trainenv-manager" "$client"
# The API server's identity towards kubelets (logs, exec, port-forward on the real node).
cert kubelet-client "/CN=kube-apiserver-kubelet-client" "$client"

# kubeconfig NAME FILE: a kubeconfig for client cert NAME.
kubeconfig() {
  cat >"$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: trainenv-dev
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$pki/$1.crt")
    client-key-data: $(base64 -w0 "$pki/$1.key")
contexts:
- name: trainenv-dev
  context: {cluster: trainenv-dev, user: $1}
current-context: trainenv-dev
EOF
  chmod 600 "$2"
}
# Rewritten every run: cheap, and picks up a changed apiserver port.
kubeconfig admin "$state/kubeconfig"
kubeconfig manager "$state/manager.kubeconfig"
for c in controller-manager scheduler kwok; do kubeconfig "$c" "$pki/$c.kubeconfig"; done

# --- etcd and registry ------------------------------------------------------------------
etcd=$(tool etcd)
etcd_flags=()
# Losing the last writes of a throwaway dev cluster on a crash is fine; fsync on every
# write is what makes etcd slow on small disks. Debian's etcd 3.4 lacks the flag. (Not
# `etcd --help | grep -q`: under pipefail, grep exiting at the first match can kill etcd
# with SIGPIPE and fail the pipeline.)
grep -q -- --unsafe-no-fsync <<<"$("$etcd" --help 2>&1)" && etcd_flags+=(--unsafe-no-fsync)
launch etcd "$etcd_port" "$etcd" --name trainenv-dev --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "trainenv-dev=http://127.0.0.1:$etcd_peer_port" "${etcd_flags[@]}"

cat >"$state/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $state/registry}, delete: {enabled: true}}
http: {addr: "$registry"}
log: {level: warn}
EOF
launch registry "$registry_port" "$(tool docker-registry)" serve "$state/registry.yml"

wait_http etcd "http://127.0.0.1:$etcd_port/health"

# --- control plane ----------------------------------------------------------------------
launch kube-apiserver "$api_port" "$(tool kube-apiserver)" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --endpoint-reconciler-type none \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --authorization-mode RBAC,Node \
  --kubelet-preferred-address-types InternalIP \
  --kubelet-client-certificate "$pki/kubelet-client.crt" --kubelet-client-key "$pki/kubelet-client.key" \
  --enable-admission-plugins NodeRestriction \
  --profiling=false
# PodSecurity, ServiceAccount, NamespaceLifecycle, ResourceQuota, ... are on by default.
# Not ExtendedResourceToleration: the GPU nodes below are tainted nvidia.com/gpu:NoSchedule as
# GPU pools are in GKE, EKS and AKS, and trainenv gives its GPU pods the toleration itself
# (that plugin is not on everywhere and ignores DRA claims), which this cluster then proves.
wait_http kube-apiserver "$server/readyz" --cacert "$pki/ca.crt"

# kwok writes node, pod and volume status; give it a dedicated, RBAC-bound identity.
# Its volume stages provision a PV for every claim of the default class below (nothing is
# written to disk), as kwok's kustomize/stage/volume/fast/storage-class.yaml sets it up.
kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kwok}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kwok}]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: kwok-volume
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kwok.x-k8s.io/volume
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF

# Only the controllers a training operator leans on. No node-lifecycle-controller: it
# would evict pods whenever kwok's heartbeat runs late, and kwok nodes need no IPAM.
controllers=namespace-controller,serviceaccount-controller,serviceaccount-token-controller
controllers+=,garbage-collector-controller,root-ca-certificate-publisher-controller
controllers+=,clusterrole-aggregation-controller,statefulset-controller,replicaset-controller
controllers+=,deployment-controller,daemonset-controller,job-controller,cronjob-controller,disruption-controller
controllers+=,ttl-after-finished-controller,resourcequota-controller
controllers+=,pod-garbage-collector-controller,endpointslice-controller
# Without these the pvc-protection/pv-protection finalizers never come off deleted volumes.
controllers+=,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller
# Dynamic Resource Allocation: creates a pod's ResourceClaims from its templates.
controllers+=,resourceclaim-controller
# Binds the real node's local PersistentVolumes to their claims (see node.sh).
controllers+=,persistentvolume-binder-controller
# No --authentication/authorization-kubeconfig for it and the scheduler: /healthz needs none,
# and delegated authn would complain forever about the front-proxy CA this cluster lacks.
launch kube-controller-manager "$kcm_port" "$(tool kube-controller-manager)" \
  --kubeconfig "$pki/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
  --controllers "$controllers" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --use-service-account-credentials

launch kube-scheduler "$sched_port" "$(tool kube-scheduler)" \
  --kubeconfig "$pki/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false

stages=()
for f in "$root"/e2e/cluster/kwok-stages/*.yaml; do stages+=(--config "$f"); done
# kwok also plays the nodes' kubelet for port-forward: nodes get InternalIP 127.0.0.1 and
# kwok's port as their kubelet port (the API server reaches them by InternalIP), and
# PortForward objects point a fake pod's ports at local addresses.
kc apply --server-side -f "$root/e2e/cluster/kwok-crds" >/dev/null
kc wait --for condition=Established --timeout=60s crd/portforwards.kwok.x-k8s.io >/dev/null
launch kwok "$kwok_port" "$(tool kwok)" \
  --kubeconfig "$pki/kwok.kubeconfig" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-ip 127.0.0.1 --node-port "$kwok_port" --enable-crds PortForward \
  --server-address "127.0.0.1:$kwok_port" "${stages[@]}"

wait_http kube-controller-manager "https://127.0.0.1:$kcm_port/healthz" -k
wait_http kube-scheduler "https://127.0.0.1:$sched_port/healthz" -k
wait_http kwok "http://127.0.0.1:$kwok_port/healthz"
wait_http registry "http://$registry/v2/"

# --- simulated nodes --------------------------------------------------------------------
# GPU pools only: the real node (node.sh) is the cluster's CPU node, untainted, so CPU
# environments and trainenv itself really run; GPU environments tolerate the GPU taint.
# node NAME POOL INSTANCE CPU MEMORY [GPUS PRODUCT GPU_MEM_MIB DRIVER CUDA COMPUTE FAMILY]
# prints a Node that kwok manages; GPU labels follow NVIDIA GPU feature discovery.
node() {
  local name=$1 pool=$2 instance=$3 cpu=$4 mem=$5 gpus=${6:-0}
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node.kubernetes.io/instance-type: $instance
    dev.trainenv.io/pool: $pool
    type: kwok
EOF
  if [ "$gpus" -gt 0 ]; then
    local product=$7 gpumem=$8 driver=$9 cuda=${10} compute=${11} family=${12}
    local d c cc
    IFS=. read -r -a d <<<"$driver"
    IFS=. read -r -a c <<<"$cuda"
    IFS=. read -r -a cc <<<"$compute"
    cat <<EOF
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: $product
    nvidia.com/gpu.count: "$gpus"
    nvidia.com/gpu.memory: "$gpumem"
    nvidia.com/gpu.family: $family
    nvidia.com/gpu.compute.major: "${cc[0]}"
    nvidia.com/gpu.compute.minor: "${cc[1]}"
    nvidia.com/cuda.driver-version.major: "${d[0]}"
    nvidia.com/cuda.driver-version.minor: "${d[1]}"
    nvidia.com/cuda.driver-version.revision: "${d[2]}"
    nvidia.com/cuda.driver-version.full: "$driver"
    nvidia.com/cuda.runtime-version.major: "${c[0]}"
    nvidia.com/cuda.runtime-version.minor: "${c[1]}"
    nvidia.com/cuda.runtime-version.full: "$cuda"
spec:
  taints:
  - {key: nvidia.com/gpu, value: present, effect: NoSchedule}
EOF
  fi
  cat <<EOF
status:
  capacity: &res
    cpu: "$cpu"
    memory: $mem
    pods: "110"
    ephemeral-storage: 1Ti
EOF
  [ "$gpus" -gt 0 ] && echo "    nvidia.com/gpu: \"$gpus\""
  echo "  allocatable: *res"
}
{
  node gpu-a100-0 a100 p4de.24xlarge 96 1152Gi 8 NVIDIA-A100-SXM4-80GB 81920 550.54.15 12.4 8.0 ampere
  node gpu-a100-1 a100 p4de.24xlarge 96 1152Gi 8 NVIDIA-A100-SXM4-80GB 81920 550.54.15 12.4 8.0 ampere
  node gpu-t4-0 t4 g4dn.12xlarge 48 192Gi 4 Tesla-T4 15360 470.256.02 11.4 7.5 turing
  node gpu-h100-0 h100 p5.48xlarge 192 2048Gi 8 NVIDIA-H100-80GB-HBM3 81920 580.65.06 13.0 9.0 hopper
} >"$state/nodes.yaml"
# Status is only taken from the create request; apply leaves existing nodes' status alone.
kc apply -f "$state/nodes.yaml" >/dev/null
kc wait --for=condition=Ready node -l type=kwok --timeout="${timeout}s" >/dev/null ||
  die "kwok did not mark the nodes Ready; see $logs/kwok.log"
# TaintNodesByCondition put not-ready on them at creation, and without a kubelet or the
# node-lifecycle-controller nothing takes it off.
not_ready=$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.metadata.name} {.spec.taints[*].key}{"\n"}{end}' |
  awk '/node.kubernetes.io\/not-ready/ {print $1}')
for n in $not_ready; do
  kc taint nodes "$n" node.kubernetes.io/not-ready:NoSchedule- >/dev/null
done
say "nodes Ready"
# One real node (kubelet + containerd) beside the simulated ones.
[ "${TRAINENV_REAL_NODE:-1}" = 0 ] || "$root/e2e/cluster/node.sh" "$bin_dir" "$state" || die "the real node did not join"

# Pods can be created in a namespace only once its default ServiceAccount exists.
eventually "$timeout" kc get serviceaccount default -n default ||
  die "no default ServiceAccount; see $logs/kube-controller-manager.log"

# --- sample images ----------------------------------------------------------------------
repo=trainenv/pytorch-cuda
# in_registry REF: the registry holds manifest REF (a tag or digest) of the repository. A
# 404 is an answer, not an error: no -S, so that curl prints nothing for it.
in_registry() {
  curl -fs -o /dev/null -I -H 'Accept: application/vnd.oci.image.index.v1+json' "http://$registry/v2/$repo/manifests/$1"
}
# push ARGS...: pushes a sample image (e2e/sampleimage), built once per run if need be.
push() {
  if [ -z "${push_cmd:-}" ]; then
    if [ -n "${TRAINENV_SAMPLEIMAGE:-}" ]; then push_cmd=$TRAINENV_SAMPLEIMAGE
    elif [ -x "$bin_dir/sampleimage" ]; then push_cmd=$bin_dir/sampleimage
    else
      go -C "$root" build -o "$state/sampleimage" ./e2e/sampleimage || die "building e2e/sampleimage failed"
      push_cmd=$state/sampleimage
    fi
  fi
  "$push_cmd" --registry "$registry" --repo "$repo" "$@" >>"$logs/sampleimage.log" 2>&1 ||
    { tail -n 20 "$logs/sampleimage.log" >&2; die "pushing a sample image failed: $*"; }
}
digest=$(cat "$state/sample-image.digest" 2>/dev/null || true)
if [ -z "$digest" ] || ! in_registry "$digest"; then
  say "pushing sample image"
  push --tag 12.4,latest --digest-file "$state/sample-image.digest"
  digest=$(cat "$state/sample-image.digest")
fi
# Pods reach the registry on the real node's bridge address (node.sh), not on loopback: what
# runs in the cluster is named by that address. Without the real node, loopback it is.
cluster_registry=$registry
[ -s "$state/node/cluster-registry" ] && [ "${TRAINENV_REAL_NODE:-1}" != 0 ] && cluster_registry=$(cat "$state/node/cluster-registry")
image=$cluster_registry/$repo@$digest
# Images of other CUDA versions, tagged MAJOR.MINOR, for e2e/cluster/check-pools.sh: one for
# each pool (H100: CUDA 13.0, T4: 11.4) and two that need more than a pool has (12.8 on an
# A100, 13.1 anywhere).
for v in 13.0.0 11.4.3 12.8.1 13.1.0; do
  in_registry "${v%.*}" && continue
  say "pushing sample image CUDA $v"
  push --cuda "$v" --tag "${v%.*}"
done

# Sourced by the Makefile and by people: everything needed to talk to this cluster.
{
  printf 'export %s=%q\n' KUBECONFIG "$state/kubeconfig" TRAINENV_DEV_STATE "$state" \
    TRAINENV_DEV_MANAGER_KUBECONFIG "$state/manager.kubeconfig" \
    TRAINENV_DEV_REGISTRY "$registry" TRAINENV_CLUSTER_REGISTRY "$cluster_registry" \
    TRAINENV_CLUSTER_CA "$pki/ca.crt" TRAINENV_SAMPLE_IMAGE "$image"
} >"$state/env"

if [ -n "${TRAINENV_DEV_HOOK:-}" ]; then
  say "running TRAINENV_DEV_HOOK"
  # shellcheck source=/dev/null
  (. "$state/env"; bash -c "$TRAINENV_DEV_HOOK")
fi

say "dev cluster up"
cat <<EOF

  export KUBECONFIG=$state/kubeconfig      # or: source $state/env
  kubectl get nodes -L nvidia.com/gpu.product,nvidia.com/cuda.runtime-version.full

  apiserver  $server   (admin: $state/kubeconfig, non-admin manager identity: $state/manager.kubeconfig)
  registry   http://$registry (in the cluster: https://$cluster_registry, CA $pki/ca.crt)
  sample image: $image
  logs       $logs/
  stop       make dev-down   (or: e2e/cluster/down.sh $state [--purge])
EOF
