#!/usr/bin/env bash
# Builds golangci-lint with the Kubernetes API linter (sigs.k8s.io/kube-api-linter) compiled
# in as a module plugin: the binary `golangci-lint custom` would build, but from the Go
# module proxy alone (`custom` clones golangci-lint's git repository). The wrapper module in
# e2e/tools/golangci-lint names kube-api-linter's own command (golangci-lint's main plus the
# plugin's import) as a tool and pins golangci-lint's version. The binary is cached outside
# the clone, keyed by both versions, and copied into BIN_DIR as golangci-lint.
#
# usage: build-golangci-lint.sh GOLANGCI_LINT_VERSION KUBE_API_LINTER_VERSION BIN_DIR
set -euo pipefail
version=$1; kal_version=$2; bin_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
cache=${TRAINENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainenv}/golangci-lint-$version-kal-${kal_version##*-}
pkg=sigs.k8s.io/kube-api-linter/cmd/golangci-lint-kube-api-linter

if [ ! -x "$cache/golangci-lint" ]; then
  echo "building golangci-lint $version with kube-api-linter $kal_version (first time only; cached in $cache)" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Build a copy, so that asking for other versions never rewrites the checked-in go.mod.
  cp "$here/golangci-lint/go.mod" "$here/golangci-lint/go.sum" "$work/"
  if ! grep -q "github.com/golangci/golangci-lint/v2 $version\( \|\$\)" "$work/go.mod" ||
    ! grep -q "sigs.k8s.io/kube-api-linter $kal_version\( \|\$\)" "$work/go.mod"; then
    (cd "$work" && go get "github.com/golangci/golangci-lint/v2@$version" "sigs.k8s.io/kube-api-linter@$kal_version" && go mod tidy)
  fi
  mkdir -p "$cache"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$cache/golangci-lint.tmp" "$pkg")
  mv "$cache/golangci-lint.tmp" "$cache/golangci-lint"
fi
mkdir -p "$bin_dir"
install -m 0755 "$cache/golangci-lint" "$bin_dir/golangci-lint"
