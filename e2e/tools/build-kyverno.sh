#!/usr/bin/env bash
# Builds the Kyverno CLI (kubectl-kyverno) from the Go module proxy through the wrapper
# module in e2e/tools/kyverno (`go install github.com/kyverno/kyverno/...@VERSION` is
# refused: Kyverno's go.mod has a replace line, which the wrapper repeats). About 6 minutes
# and 400 MB the first time; the binary is cached outside the clone, keyed by version, and
# copied into $BIN_DIR as kyverno.
#
# usage: build-kyverno.sh VERSION BIN_DIR      e.g. build-kyverno.sh v1.19.1 bin
set -euo pipefail
version=$1; bin_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
cache=${TRAINENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainenv}/kyverno-$version
pkg=github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno

if [ ! -x "$cache/kyverno" ]; then
  echo "building the Kyverno CLI $version (first time only; cached in $cache)" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Build a copy, so that asking for another version never rewrites the checked-in go.mod
  # (another version may need other replace lines: see its go.mod).
  cp "$here/kyverno/go.mod" "$here/kyverno/go.sum" "$work/"
  if ! grep -q "github.com/kyverno/kyverno $version\$" "$work/go.mod"; then
    (cd "$work" && go get "github.com/kyverno/kyverno@$version" && go mod tidy)
  fi
  mkdir -p "$cache"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache/kyverno.tmp" "$pkg")
  mv "$cache/kyverno.tmp" "$cache/kyverno"
fi
mkdir -p "$bin_dir"
install -m 0755 "$cache/kyverno" "$bin_dir/kyverno"
