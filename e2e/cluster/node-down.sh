#!/usr/bin/env bash
# Stops the real node that node.sh started and undoes every change it made to the machine:
# the node's pods and their network namespaces, the kubelet, containerd and its shims, the
# mounts under STATE_DIR/node, the bridge, the iptables rules, the sysctls and the kubelet's
# cgroups. Safe to run again, and when node.sh never ran (it does nothing then).
#
# usage: node-down.sh STATE_DIR    (down.sh calls it before it stops the control plane)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
[ -d "$1/node" ] || exit 0
state=$(cd "$1" && pwd)
dir=$state/node pids=$state/pids
sock=$dir/containerd/containerd.sock

alive() {
  local stat
  stat=$(ps -o stat= -p "$1") && [[ $stat != Z* ]]
}
# ours NAME: the process of pids/NAME.pid is alive and not a recycled pid (as in down.sh).
ours() {
  local f=$pids/$1.pid stat etimes
  [ -s "$f" ] || return 1
  read -r stat etimes < <(ps -o stat=,etimes= -p "$(cat "$f")") || return 1
  [[ $stat != Z* ]] && (($(date +%s) - etimes <= $(stat -c %Y "$f") + 1))
}
# stop PID: SIGTERM, up to 10 s, then SIGKILL.
stop() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do alive "$1" || return 0; sleep 0.2; done
  kill -9 "$1" 2>/dev/null || true
}
ctr_() { ctr --address "$sock" -n k8s.io "$@"; }

# 1. Let the kubelet tear its pods down through the CRI (that runs the CNI DEL of each
# sandbox) while the API server still answers: force-delete the node's pods, wait until
# containerd runs no task. A NoExecute taint first, so that the controllers of what runs
# there (trainenv's Deployment and DaemonSet, environments' StatefulSets) place no new pod on
# the node meanwhile (node.sh removes it when the node comes back).
node_name=$(cat "$dir/node-name" 2>/dev/null || true)
if [ -n "$node_name" ] && ours kubelet && ours containerd &&
  kubectl --kubeconfig "$state/kubeconfig" --request-timeout=5s get node "$node_name" >/dev/null 2>&1; then
  kubectl --kubeconfig "$state/kubeconfig" taint nodes "$node_name" dev.trainenv.io/down=true:NoExecute --overwrite >/dev/null 2>&1 || true
  kubectl --kubeconfig "$state/kubeconfig" delete pods --all-namespaces --field-selector "spec.nodeName=$node_name" \
    --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 150); do
    [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && break
    sleep 0.2
  done
fi

# 2. The kubelet, then whatever containers are left (the API server may have been down).
if ours kubelet; then stop "$(cat "$pids/kubelet.pid")"; echo "stopped kubelet"; fi
rm -f "$pids/kubelet.pid"
if ours containerd; then
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for _ in $(seq 50); do
    [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && break
    sleep 0.2
  done
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ tasks delete "$id" >/dev/null 2>&1 || true
    # No CNI DEL ran for these sandboxes: drop the plugins' cached results for them.
    rm -f /var/lib/cni/results/*-"$id"-*
  done
  stop "$(cat "$pids/containerd.pid")"
  echo "stopped containerd"
fi
rm -f "$pids/containerd.pid"
# The shims outlive containerd; each one names this containerd's socket on its command line.
for pid in $(pgrep -f -- "-address $sock( |$)" || true); do stop "$pid"; done

# 3. Mounts under the node's dir (rootfs overlays, volumes, shm, the pods' network
# namespaces: node.sh keeps them in containerd's state dir), deepest first, so that
# down.sh --purge deletes only files of this cluster.
awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "could not unmount $m" >&2
done

# 4. Network: the iptables rules node.sh added, the bridge, the sysctls it changed.
if [ -s "$dir/iptables.rules" ]; then
  while read -r table chain spec; do
    # shellcheck disable=SC2086 # spec is a rule node.sh wrote, one word per argument
    while iptables -t "$table" -C "$chain" $spec 2>/dev/null; do iptables -t "$table" -D "$chain" $spec; done
  done <"$dir/iptables.rules"
  rm -f "$dir/iptables.rules"
  echo "removed the node's iptables rules"
fi
if [ -s "$dir/bridge" ]; then
  bridge=$(cat "$dir/bridge")
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link delete "$bridge"
    echo "removed bridge $bridge"
  fi
  rm -f "$dir/bridge"
fi
if [ -s "$dir/sysctl.saved" ]; then
  while IFS= read -r kv; do sysctl -q -w "$kv"; done <"$dir/sysctl.saved"
  rm -f "$dir/sysctl.saved"
  echo "restored sysctls"
fi

# 5. What the kubelet and the CNI plugins keep outside STATE_DIR: the pods' cgroups (only
# empty ones can be removed; deepest first), the log symlinks into this node's pod logs, and
# the CNI result cache of this network.
cgroup_root=$(cat "$dir/cgroup-root" 2>/dev/null || echo kubepods)
for h in /sys/fs/cgroup/*/"$cgroup_root"; do
  if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
done
if [ -d /var/log/containers ]; then
  find /var/log/containers -maxdepth 1 -lname "$dir/*" -delete
  if [ -e "$dir/var-log-containers.created" ]; then rmdir /var/log/containers 2>/dev/null || true; fi
fi
rm -f /var/lib/cni/results/trainenv-dev-*
true
