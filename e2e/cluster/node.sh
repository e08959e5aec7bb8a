#!/usr/bin/env bash
# Joins one real node to the local cluster that up.sh started: containerd (Debian's package,
# with runc) and a kubelet, beside kwok's simulated GPU nodes. Pods on it really run.
#
# usage: node.sh BIN_DIR STATE_DIR   (as root; up.sh calls it unless TRAINENV_REAL_NODE=0)
#   BIN_DIR holds the kubelet (e2e/tools/build-kube.sh ... kubelet), else PATH is used.
#   Running it again is safe: running components are left alone.
#
# Everything lives under STATE_DIR/node (containerd's root, state and socket, runc's root, the
# kubelet's root dir, pod logs, CNI config and IP allocations), except what the kernel keeps
# globally: the bridge, two iptables rules, the bridge's route_localnet and cgroups. node-down.sh
# removes or restores each of those; down.sh calls it.
#
# The node is the cluster's CPU node and carries no taint: trainenv's manager and node agent
# and every CPU environment run there for real, while the simulated GPU pools are tainted
# nvidia.com/gpu:NoSchedule, so only pods that ask for GPUs land on them.
#
# env (all optional, besides up.sh's TRAINENV_APISERVER_PORT and TRAINENV_REGISTRY_PORT):
#   TRAINENV_NODE_NAME=dev-node-0
#   TRAINENV_KUBELET_PORT=10250 (on the bridge's address) TRAINENV_KUBELET_HEALTHZ_PORT=10248 (127.0.0.1)
#   TRAINENV_BRIDGE=trainenv0 TRAINENV_POD_CIDR=198.18.0.0/24   (inside 198.18.0.0/15)
#   TRAINENV_UP_TIMEOUT=60
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BIN_DIR STATE_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
bin_dir=$(cd "$1" && pwd)
state=$(cd "$2" && pwd)
[ "$(id -u)" = 0 ] || {
  echo "error: the real node (containerd, kubelet, a bridge) needs root; run as root or set TRAINENV_REAL_NODE=0" >&2
  exit 1
}

node_name=${TRAINENV_NODE_NAME:-dev-node-0}
api_port=${TRAINENV_APISERVER_PORT:-16443}
registry=127.0.0.1:${TRAINENV_REGISTRY_PORT:-5001}
kubelet_port=${TRAINENV_KUBELET_PORT:-10250}
healthz_port=${TRAINENV_KUBELET_HEALTHZ_PORT:-10248}
bridge=${TRAINENV_BRIDGE:-trainenv0}
pod_cidr=${TRAINENV_POD_CIDR:-198.18.0.0/24}
timeout=${TRAINENV_UP_TIMEOUT:-60}
server=https://127.0.0.1:$api_port

# The bridge's own address is the node's InternalIP: the kubelet refuses a loopback node IP,
# and the API server reaches the kubelet there (a local address: nothing leaves the machine).
[[ $pod_cidr =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)/([0-9]+)$ ]] ||
  { echo "error: TRAINENV_POD_CIDR=$pod_cidr is not an IPv4 network" >&2; exit 1; }
prefix=${BASH_REMATCH[5]}
net=$(((BASH_REMATCH[1] << 24 | BASH_REMATCH[2] << 16 | BASH_REMATCH[3] << 8 | BASH_REMATCH[4]) & ~((1 << (32 - prefix)) - 1) & 0xffffffff))
((prefix >= 15 && prefix <= 30 && (net & 0xfffe0000) == 0xc6120000)) ||
  { echo "error: TRAINENV_POD_CIDR=$pod_cidr is not inside 198.18.0.0/15 (reserved for benchmarking)" >&2; exit 1; }
g=$((net + 1))
gateway=$((g >> 24 & 255)).$((g >> 16 & 255)).$((g >> 8 & 255)).$((g & 255))

pki=$state/pki logs=$state/logs pids=$state/pids dir=$state/node
ctrd=$dir/containerd
sock=$ctrd/containerd.sock
mkdir -p "$logs" "$pids" "$ctrd/root" "$ctrd/state" "$ctrd/certs.d/$registry" "$dir/runc" \
  "$dir/cni/net.d" "$dir/cni/ipam" "$dir/kubelet" "$dir/pod-logs" "$dir/bin"
chmod 700 "$dir"
echo "$node_name" >"$dir/node-name"
# The node's pods live under a cgroup of their own (the kubelet's cgroupRoot), so that two local
# clusters on one machine never meet: a kubelet removes any pod cgroup it does not know.
cgroup_root=trainenv-$bridge
echo "$cgroup_root" >"$dir/cgroup-root"
while read -r _ mnt fstype _; do
  case $fstype in cgroup | cgroup2) ;; *) continue ;; esac
  mkdir -p "$mnt/$cgroup_root"
  # cgroup v1 cpuset: a new cgroup starts with no CPUs and no memory nodes; take the parent's.
  for f in cpuset.cpus cpuset.mems; do
    if [ -f "$mnt/$f" ] && [ -z "$(cat "$mnt/$cgroup_root/$f")" ]; then cat "$mnt/$f" >"$mnt/$cgroup_root/$f"; fi
  done
done </proc/mounts
# The kubelet links every container's log into /var/log/containers (not configurable);
# node-down.sh removes the links, and the directory if this script saw it missing.
[ -e "$dir/var-log-containers.created" ] || [ -d /var/log/containers ] || : >"$dir/var-log-containers.created"

start_time=$SECONDS
say() { printf '[%3ds] node: %s\n' $((SECONDS - start_time)) "$*" >&2; }
die() { echo "error: $*" >&2; echo "(stop it with: e2e/cluster/down.sh $state)" >&2; exit 1; }
tool() {
  if [ -x "$bin_dir/$1" ]; then echo "$bin_dir/$1"
  elif command -v "$1" >/dev/null; then command -v "$1"
  else die "$1 not found in $bin_dir or on PATH"
  fi
}
kubectl=$(tool kubectl)
kc() { "$kubectl" --kubeconfig "$state/kubeconfig" "$@"; }
for t in containerd runc ctr iptables; do command -v "$t" >/dev/null ||
  die "$t is missing: make node-packages installs containerd, runc, iptables and the CNI plugins"; done
cni_bin=/usr/lib/cni
[ -x "$cni_bin/bridge" ] || die "no CNI plugins in $cni_bin: make node-packages installs them"

# running NAME: as in up.sh, the process of pids/NAME.pid is alive and not a recycled pid.
running() {
  local f=$pids/$1.pid stat etimes
  [ -s "$f" ] || return 1
  read -r stat etimes < <(ps -o stat=,etimes= -p "$(cat "$f")") || return 1
  [[ $stat != Z* ]] && (($(date +%s) - etimes <= $(stat -c %Y "$f") + 1))
}
launch() {
  local name=$1; shift
  if running "$name"; then say "$name already running (pid $(cat "$pids/$name.pid"))"; return; fi
  say "starting $name"
  echo "=== $(date -u +%FT%TZ) $*" >>"$logs/$name.log"
  setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pids/$name.pid"
}
# wait_for NAME WHAT CMD...: polls CMD until it succeeds, failing with NAME's log tail.
wait_for() {
  local name=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    running "$name" || { tail -n 20 "$logs/$name.log" >&2; die "$name exited; full log: $logs/$name.log"; }
    [ $SECONDS -lt $deadline ] || { tail -n 20 "$logs/$name.log" >&2; die "$what after ${timeout}s; full log: $logs/$name.log"; }
    sleep 0.2
  done
}

# --- certificates -----------------------------------------------------------------------
# The kubelet's client certificate puts it in system:nodes, so the Node authorizer and the
# NodeRestriction admission plugin confine it to its own node and pods. Its serving
# certificate is signed by the cluster CA for its InternalIP.
cert() {
  [ -s "$pki/$1.crt" ] && return
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/$1.key" -subj "$2" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile <(printf '%s\n' "$3") -out "$pki/$1.crt" 2>/dev/null
  rm -f "$pki/$1.csr"
}
[ -s "$pki/ca.key" ] || die "no cluster CA in $pki: run up.sh first"
cert "node-$node_name" "/O=system:nodes/CN=system:node:$node_name" "extendedKeyUsage=clientAuth"
cert "kubelet-serving-$node_name" "/CN=$node_name" \
  "subjectAltName=IP:$gateway,DNS:$node_name
extendedKeyUsage=serverAuth"
cat >"$dir/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: trainenv-dev
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: system:node:$node_name
  user: {client-certificate: "$pki/node-$node_name.crt", client-key: "$pki/node-$node_name.key"}
contexts:
- name: trainenv-dev
  context: {cluster: trainenv-dev, user: "system:node:$node_name"}
current-context: trainenv-dev
EOF
chmod 600 "$dir/kubelet.kubeconfig"

# --- pod network ------------------------------------------------------------------------
# A bridge between this machine and the pods' network namespaces, nothing more: addresses
# from 198.18.0.0/15 (reserved for benchmarking), no masquerade, no default route in the
# pods (their only route off the bridge is to the service range, below), and a FORWARD rule
# that drops anything from the bridge to another interface, so no pod traffic can leave
# the machine even if something turns ip_forward on.
#
# Why pods reach the API server by DNAT: there is no kube-proxy, so the `kubernetes`
# Service's ClusterIP (10.96.0.1, in the API server's certificate) routes nowhere. The
# in-cluster config every client library uses (KUBERNETES_SERVICE_HOST=10.96.0.1, port 443,
# the service-account CA) should work unchanged in the pods, and the API server should stay
# bound to loopback rather than to an address other machines could reach. One DNAT rule on
# the bridge sends 10.96.0.1:443 to 127.0.0.1:API_PORT; route_localnet on the bridge lets the
# kernel route to (and answer from) a loopback address for packets from it.
# Remember each setting this script changes, once, so node-down.sh can put it back.
[ -s "$dir/sysctl.saved" ] || echo "net.ipv4.ip_forward=$(sysctl -n net.ipv4.ip_forward)" >"$dir/sysctl.saved"
echo "$bridge" >"$dir/bridge"
if ! ip link show "$bridge" >/dev/null 2>&1; then
  ip link add "$bridge" type bridge
fi
ip addr replace "$gateway/$prefix" dev "$bridge"
ip link set "$bridge" up
sysctl -q -w "net.ipv4.conf.$bridge.route_localnet=1"
# rule TABLE CHAIN SPEC...: adds the rule unless it is there; node-down.sh deletes the same.
rule() {
  local table=$1 chain=$2; shift 2
  iptables -t "$table" -C "$chain" "$@" 2>/dev/null || iptables -t "$table" -I "$chain" "$@"
}
rule filter FORWARD -i "$bridge" ! -o "$bridge" -j DROP
rule nat PREROUTING -i "$bridge" -d 10.96.0.1/32 -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$api_port"
printf '%s\n' "filter FORWARD -i $bridge ! -o $bridge -j DROP" \
  "nat PREROUTING -i $bridge -d 10.96.0.1/32 -p tcp --dport 443 -j DNAT --to-destination 127.0.0.1:$api_port" \
  >"$dir/iptables.rules"

# isGateway stays false: the address is on the bridge already (above), and the bridge
# plugin would otherwise turn on net.ipv4.ip_forward, which nothing here needs (the DNAT
# target is local). The pods' only route is the service range, through the bridge.
cat >"$dir/cni/net.d/10-trainenv.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "trainenv-dev",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$gateway"}]],
        "routes": [{"dst": "10.96.0.0/16", "gw": "$gateway"}]
      }
    }
  ]
}
EOF

# --- the registry as the cluster sees it ---------------------------------------------------
# Pods cannot use the registry on 127.0.0.1: that is their own loopback. A second registry
# process serves the same storage on the bridge's address, over TLS with a certificate the
# cluster CA signed (the CA every pod finds in the kube-root-ca.crt ConfigMap). Images that
# run in the cluster are named by this address (up.sh writes it to the env file as
# TRAINENV_CLUSTER_REGISTRY): the manager resolves and verifies them from its pod, and
# containerd pulls them, under one name. Nothing listens on another interface, and no DNAT is
# needed: the address is the host's own.
cluster_registry=$gateway:${registry#*:}
cert "registry-$node_name" "/CN=trainenv-registry" "subjectAltName=IP:$gateway
extendedKeyUsage=serverAuth"
cat >"$state/registry-node.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $state/registry}, delete: {enabled: true}}
http:
  addr: "$cluster_registry"
  tls: {certificate: "$pki/registry-$node_name.crt", key: "$pki/registry-$node_name.key"}
log: {level: warn}
EOF
launch registry-node "$(tool docker-registry)" serve "$state/registry-node.yml"
wait_for registry-node "the registry did not answer on https://$cluster_registry" \
  curl -fsS --cacert "$pki/ca.crt" "https://$cluster_registry/v2/"
echo "$cluster_registry" >"$dir/cluster-registry"
mkdir -p "$ctrd/certs.d/$cluster_registry"
cat >"$ctrd/certs.d/$cluster_registry/hosts.toml" <<EOF
server = "https://$cluster_registry"
[host."https://$cluster_registry"]
  capabilities = ["pull", "resolve"]
  ca = "$pki/ca.crt"
EOF

# --- containerd -------------------------------------------------------------------------
# The sandbox ("pause") image: built here from e2e/pause, since no registry outside this
# machine can be reached. containerd pulls it from the loopback registry like any image.
pause_image=$registry/trainenv/pause:3.10
if ! curl -fs -o /dev/null -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$registry/v2/trainenv/pause/manifests/3.10"; then
  say "building and pushing the pause image"
  CGO_ENABLED=0 go -C "$root" build -trimpath -ldflags=-s -o "$dir/bin/pause" ./e2e/pause
  go -C "$root" build -o "$dir/bin/binimage" ./e2e/binimage
  "$dir/bin/binimage" --binary "$dir/bin/pause" --image "$pause_image" >/dev/null
fi

# The loopback registry speaks plain HTTP.
cat >"$ctrd/certs.d/$registry/hosts.toml" <<EOF
server = "http://$registry"
[host."http://$registry"]
  capabilities = ["pull", "resolve"]
EOF

# restrict_oom_score_adj: root lacks CAP_SYS_RESOURCE on some VMs; without it runc fails
# every sandbox ("can't get final child's PID from pipe") when the kubelet asks for a
# negative oom_score_adj. runc, not crun: crun refuses hybrid cgroup v1 hosts.
cat >"$ctrd/config.toml" <<EOF
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctrd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  # Pod network namespaces under the state dir too, not in /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$dir/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$ctrd/certs.d"
EOF
launch containerd containerd --config "$ctrd/config.toml"
wait_for containerd "containerd did not answer on $sock" ctr --address "$sock" version

# --- kubelet ----------------------------------------------------------------------------
cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $gateway
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
containerRuntimeEndpoint: unix://$sock
# cgroup v1 hosts are refused by 1.35+ kubelets unless asked; no systemd here.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup_root
failSwapOn: false
# No kube-proxy, and the bridge above sets up the only rules this node needs.
makeIPTablesUtilChains: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$pki/kubelet-serving-$node_name.crt"
tlsPrivateKeyFile: "$pki/kubelet-serving-$node_name.key"
enforceNodeAllocatable: [pods]
# A development machine's disk and memory are shared: evict only when nearly out.
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, nodefs.inodesFree: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 95
resolvConf: /etc/resolv.conf
podLogsDir: "$dir/pod-logs"
volumePluginDir: "$dir/kubelet/volume-plugins"
serializeImagePulls: false
maxPods: 30
EOF
kc apply -f - >/dev/null <<EOF
# The API server calls the kubelet (logs, exec, port-forward) as this user; up.sh made its
# client certificate.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: trainenv-dev-apiserver-kubelet}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
EOF
launch kubelet "$(tool kubelet)" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
  --root-dir "$dir/kubelet" --hostname-override "$node_name" --node-ip "$gateway" \
  --node-labels "dev.trainenv.io/pool=real,type=real"
wait_for kubelet "the kubelet's healthz did not answer" curl -fsS "http://127.0.0.1:$healthz_port/healthz"
wait_for kubelet "node $node_name did not register" kc get node "$node_name"
wait_for kubelet "node $node_name did not become Ready" \
  kc wait --for=condition=Ready --timeout=2s "node/$node_name"
# The TaintNodesByCondition admission put not-ready on it at registration; without the
# node-lifecycle-controller (see up.sh) nothing else takes it off.
# A node registered by an older node.sh carries dev.trainenv.io/real-node; node-down.sh
# leaves dev.trainenv.io/down on it. The node is untainted now.
for t in node.kubernetes.io/not-ready dev.trainenv.io/real-node dev.trainenv.io/down; do
  if kc get node "$node_name" -o jsonpath='{.spec.taints[*].key}' | grep -qw "$t"; then
    kc taint nodes "$node_name" "$t-" >/dev/null
  fi
done
say "$node_name Ready"

# --- volumes ----------------------------------------------------------------------------
# Workspaces on this node are static local PersistentVolumes (class trainenv-local), not
# kube-controller-manager's hostPath provisioner: the kubelet applies the pod's fsGroup to
# local volumes, so the environment's uid-1000 user can write its workspace as it would on
# a cloud disk. hostPath volumes are never chowned; they would need an init container
# running as root with CHOWN, which Pod Security "restricted" (the environments' namespaces)
# refuses. The price: a fixed pool of directories under STATE_DIR/node/volumes, their size
# not enforced, and Retain (a released volume keeps its data and is not reused).
volumes=${TRAINENV_NODE_VOLUMES:-8}
{
  cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: trainenv-local}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
  for i in $(seq 0 $((volumes - 1))); do
    mkdir -p "$dir/volumes/ws-$i"
    cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $node_name-ws-$i
  labels: {dev.trainenv.io/node: $node_name}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: trainenv-local
  volumeMode: Filesystem
  local: {path: "$dir/volumes/ws-$i"}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$node_name]}]
EOF
  done
} | kc apply -f - >/dev/null
say "$volumes local volumes in StorageClass trainenv-local"
