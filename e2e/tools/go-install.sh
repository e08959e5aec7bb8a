#!/usr/bin/env bash
# Installs a Go tool at a pinned version into BIN_DIR, through a cache outside the clone
# (keyed by name and version) so that fresh clones on the same machine do not rebuild it.
#
# usage: go-install.sh NAME PACKAGE VERSION BIN_DIR
set -euo pipefail
name=$1; pkg=$2; version=$3; bin_dir=$4
cache=${TRAINENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainenv}/$name-$version
if [ ! -x "$cache/$name" ]; then
  echo "installing $pkg@$version" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  GOBIN=$tmp CGO_ENABLED=${CGO_ENABLED:-0} go install "$pkg@$version"
  mv "$tmp/$(basename "${pkg%%/v[0-9]*}")" "$cache/$name" 2>/dev/null || mv "$tmp"/* "$cache/$name"
  rm -rf "$tmp"
fi
mkdir -p "$bin_dir"
install -m 0755 "$cache/$name" "$bin_dir/$name"
