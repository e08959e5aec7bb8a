#!/usr/bin/env bash
# Builds etcd from the Go module proxy through the wrapper module in e2e/tools/etcd
# (`go install go.etcd.io/etcd/server/v3@...` is refused: etcd's go.mod has replace lines).
# The binary is cached outside the clone, keyed by version, and copied into $BIN_DIR.
# If the build fails, Debian's etcd (package etcd-server, 3.4) is installed instead: it is
# older but serves kube-apiserver for local development.
#
# usage: build-etcd.sh VERSION BIN_DIR      e.g. build-etcd.sh v3.6.5 bin/k8s
set -euo pipefail
version=$1; bin_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
cache=${TRAINENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainenv}/etcd-$version

# build: called from an `if`, where set -e does not apply, hence the explicit `|| return`.
build() {
  local work
  work=$(mktemp -d)
  # Build a copy so that asking for another version never rewrites the checked-in go.mod.
  cp "$here/etcd/go.mod" "$here/etcd/go.sum" "$here/etcd/main.go" "$work/"
  if ! grep -q "go.etcd.io/etcd/server/v3 $version\$" "$work/go.mod"; then
    (cd "$work" && go get "go.etcd.io/etcd/server/v3@$version" && go mod tidy) || { rm -rf "$work"; return 1; }
  fi
  mkdir -p "$cache"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache/etcd.tmp" .) || { rm -rf "$work"; return 1; }
  rm -rf "$work"
  mv "$cache/etcd.tmp" "$cache/etcd"
}

if [ ! -x "$cache/etcd" ]; then
  echo "building etcd $version (first time only; cached in $cache)" >&2
  if ! build; then
    debian=$(command -v etcd || true)
    if [ -z "$debian" ]; then
      echo "error: etcd $version did not build and no etcd is on PATH (apt-get install etcd-server)" >&2
      exit 1
    fi
    echo "warning: etcd $version did not build; using $debian ($("$debian" --version | head -1))" >&2
    mkdir -p "$bin_dir"
    install -m 0755 "$debian" "$bin_dir/etcd"
    exit 0
  fi
fi

mkdir -p "$bin_dir"
install -m 0755 "$cache/etcd" "$bin_dir/etcd"
