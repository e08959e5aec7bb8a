#!/bin/sh
# Finishes the reference PyTorch image's root file system after its packages are installed.
# The Dockerfile runs it with ROOT=/ and the Docker-free builder (hack/images) as mmdebstrap's
# customize hook with ROOT the new root file system: one script, so the two cannot drift.
#
# usage: setup.sh ROOT
set -eu
root=${1:?usage: setup.sh ROOT}
in_root() { chroot "$root" "$@"; }

# The environment's user: uid 1000, the uid trainenv runs the pod as; sshd logs in only users
# it can look up. Its password is "*": no password can match, key login works (a "!" locked
# account is refused by an sshd that can read /etc/shadow).
in_root useradd --uid 1000 --user-group --create-home --shell /bin/bash jovyan
in_root usermod --password '*' jovyan
# No root login: no password can match root's, and sshd refuses root whatever the keys.
in_root usermod --password '!*' root
mkdir -p "$root/etc/ssh/sshd_config.d"
cat > "$root/etc/ssh/sshd_config.d/10-trainenv-reference.conf" <<'CONF'
# trainenv's entrypoint runs sshd with its own configuration; this one holds for anything
# else that starts the image's sshd.
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
CONF

# openssh-server's install script generated host keys: every container of the image would
# share them. trainenv's entrypoint uses per-environment keys kept by the operator.
rm -f "$root"/etc/ssh/ssh_host_*

# The workspace mount point (trainenv mounts the environment's volume here).
install -d -o 1000 -g 1000 -m 0755 "$root/workspace"

# Nothing that differs between two builds of the same packages, nothing a container should share.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/cache/ldconfig/aux-cache "$root"/var/log/apt/* "$root"/var/log/dpkg.log \
  "$root"/var/log/alternatives.log "$root"/var/lib/dpkg/*-old
: > "$root/etc/machine-id"
find "$root/tmp" "$root/var/tmp" -mindepth 1 -delete
