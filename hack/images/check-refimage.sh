#!/usr/bin/env bash
# Checks the reference PyTorch image `make refimage` pushed, as pulled from the registry:
#   - its signature, SPDX SBOM and SLSA provenance verify with the cosign CLI and the dev key;
#   - unpacked and run in a chroot as uid 1000 (the pod's user): torch imports on the CPU,
#     the user of uid 1000 is jovyan, no SSH host key is baked in, root's password is locked;
#   - its sshd, run as uid 1000, lets jovyan in with a key and runs python3 -c 'import torch',
#     and refuses root;
#   - its Jupyter server answers /api/status with the token (200) and refuses it without (403),
#     lists the python3 kernel and starts one.
# The real-node e2e runs the image in a pod; this is the quick check of the image alone.
#
# usage: hack/images/check-refimage.sh IMAGES_STATE COSIGN     (as root: chroot, mounts)
set -euo pipefail
state=$1; cosign=$2
cd "$(dirname "$0")/../.."
# shellcheck disable=SC1091
. "$state/images.env"
ref=${TRAINENV_PYTORCH_IMAGE:?no reference image in $state/images.env: run make refimage}
pub=$TRAINENV_SIGNING_PUBLIC_KEY
fail() { echo "check-refimage: FAIL: $*" >&2; exit 1; }
ok() { echo "check-refimage: ok: $*"; }

flags=(--insecure-ignore-tlog=true)
case $ref in 127.*|localhost*) flags+=(--allow-insecure-registry) ;; esac
export COSIGN_PASSWORD='' TUF_ROOT="$state/tuf"
"$cosign" verify --key "$pub" "${flags[@]}" "$ref" >/dev/null 2>&1 || fail "cosign verify $ref"
for t in spdxjson slsaprovenance; do
  "$cosign" verify-attestation --key "$pub" --type "$t" "${flags[@]}" "$ref" >/dev/null 2>&1 || fail "cosign verify-attestation --type $t $ref"
done
ok "signature, SBOM and provenance verify with $pub"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
root=$work/rootfs
go run ./hack/images -unpack "$ref" -into "$root"

[ "$(chroot "$root" getent passwd 1000 | cut -d: -f1)" = jovyan ] || fail "uid 1000 is not jovyan"
compgen -G "$root/etc/ssh/ssh_host_*" >/dev/null && fail "SSH host keys are baked into the image"
case $(chroot "$root" getent shadow root | cut -d: -f2) in '!'*|'*'*) ;; *) fail "root has a usable password" ;; esac
ok "uid 1000 is jovyan, no host keys, root's password locked"

# The image's programs see /dev and /proc through mounts private to them. Each step execs
# the next, so a program started in the background has the pid $! names (cleanup kills it).
# shellcheck disable=SC2016 # expanded by the inner shell
in_image=(unshare --mount --propagation private sh -c
  'mount --rbind /dev "$0/dev" && mount -t proc proc "$0/proc" && exec chroot --userspec=1000:1000 "$0" env HOME=/home/jovyan "$@"' "$root")

out=$("${in_image[@]}" python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available()); print(torch.ones(2, 2).sum().item())')
if ! grep -q ' False' <<<"$out" || ! grep -q '^4.0$' <<<"$out"; then fail "torch: $out"; fi
ok "torch $(head -1 <<<"$out") computes on the CPU as uid 1000"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# sshd as uid 1000, as trainenv's entrypoint runs it (its own config, key only).
mkdir -p "$root/tmp/check"
ssh-keygen -q -t ed25519 -N '' -f "$root/tmp/check/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/user_key"
cp "$work/user_key.pub" "$root/tmp/check/authorized_keys"
port=$(free_port)
cat > "$root/tmp/check/sshd_config" <<EOF
Include /etc/ssh/sshd_config.d/*.conf
ListenAddress 127.0.0.1
Port $port
HostKey /tmp/check/host_key
AuthorizedKeysFile /tmp/check/authorized_keys
PidFile /tmp/check/sshd.pid
UsePAM no
StrictModes no
EOF
chown -R 1000:1000 "$root/tmp/check"
"${in_image[@]}" /usr/sbin/sshd -D -e -f /tmp/check/sshd_config 2>"$work/sshd.log" &
pids+=($!)
wait_port "$port" || fail "sshd did not listen: $(cat "$work/sshd.log")"
ssh_opts=(-i "$work/user_key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
out=$(ssh "${ssh_opts[@]}" jovyan@127.0.0.1 "python3 -c 'import torch; print(torch.__version__)'") || fail "ssh as jovyan: $(cat "$work/sshd.log")"
ok "ssh jovyan@ with a key runs torch $out"
ssh "${ssh_opts[@]}" root@127.0.0.1 true 2>/dev/null && fail "ssh root@ was let in"
ok "ssh root@ refused"

# Jupyter, as trainenv's entrypoint starts it (jupyter-server, a token).
port=$(free_port); token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
"${in_image[@]}" jupyter-server --ServerApp.ip=127.0.0.1 --ServerApp.port="$port" --ServerApp.token="$token" \
  --ServerApp.open_browser=False --ServerApp.root_dir=/tmp 2>"$work/jupyter.log" &
pids+=($!)
wait_port "$port" || fail "jupyter-server did not listen: $(cat "$work/jupyter.log")"
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(status "http://127.0.0.1:$port/api/status?token=$token")" = 200 ] || fail "/api/status with the token"
[ "$(status "http://127.0.0.1:$port/api/status")" = 403 ] || fail "/api/status without a token is not refused"
curl -sf "http://127.0.0.1:$port/api/kernelspecs?token=$token" | grep -q '"python3"' || fail "no python3 kernel spec"
[ "$(status -X POST -d '{"name":"python3"}' "http://127.0.0.1:$port/api/kernels?token=$token")" = 201 ] || fail "starting a kernel: $(cat "$work/jupyter.log")"
ok "Jupyter answers with the token (200), refuses without (403), starts the python3 kernel"
echo "check-refimage: $ref passed"
