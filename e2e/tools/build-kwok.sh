#!/usr/bin/env bash
# Installs kwok (fake nodes and pods for a control plane without kubelets) from the Go
# module proxy. The binary is cached outside the clone, keyed by version, and copied into
# $BIN_DIR. The stage configs kwok needs are vendored in e2e/cluster/kwok-stages.
#
# usage: build-kwok.sh VERSION BIN_DIR      e.g. build-kwok.sh v0.8.0 bin/k8s
set -euo pipefail
version=$1; bin_dir=$2
cache=${TRAINENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainenv}/kwok-$version

if [ ! -x "$cache/kwok" ]; then
  echo "building kwok $version (first time only; cached in $cache)" >&2
  mkdir -p "$cache"
  # GOBIN is a private temp dir so a half-written binary never lands in the cache.
  gobin=$(mktemp -d)
  GOBIN=$gobin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$version"
  mv "$gobin/kwok" "$cache/kwok"
  rm -rf "$gobin"
fi

mkdir -p "$bin_dir"
install -m 0755 "$cache/kwok" "$bin_dir/kwok"
