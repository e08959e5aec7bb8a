#!/usr/bin/env bash
# Builds one trainenv binary. The Dockerfile and `make build` both call this script, so CI's
# `make build` runs the same build commands as the images.
#
# usage: hack/build.sh TARGET OUTDIR
#   TARGET     manager | entrypoint | kubectl-trainenv   static, CGO_ENABLED=0
#              preflight | node-agent                    cgo: go-nvml loads libnvidia-ml at run time
#   MAX_GLIBC  when set (the Dockerfile sets 2.31, Ubuntu 20.04's), a cgo binary that needs a
#              newer glibc fails the build: the preflight must run inside users' CUDA images.
set -euo pipefail
target=$1; out=$2
cd "$(dirname "$0")/.."

case $target in
  manager)          pkg=./cmd;                  bin=manager;             cgo=0 ;;
  entrypoint)       pkg=./cmd/entrypoint;       bin=trainenv-entrypoint; cgo=0 ;;
  kubectl-trainenv) pkg=./cmd/kubectl-trainenv; bin=kubectl-trainenv;    cgo=0 ;;
  preflight)        pkg=./cmd/preflight;        bin=trainenv-preflight;  cgo=1 ;;
  node-agent)       pkg=./cmd/node-agent;       bin=node-agent;          cgo=1 ;;
  *) echo "build.sh: unknown target '$target'" >&2; exit 2 ;;
esac

mkdir -p "$out"
# go-nvml's header marks NVML calls trainenv never makes as deprecated; keep cgo quiet.
export CGO_CFLAGS=${CGO_CFLAGS:--O2 -g -Wno-deprecated-declarations}
# netgo/osusergo keep DNS and user lookups in Go, so a cgo binary asks libc for nothing but
# threads and dlopen (the preflight runs in users' images, whatever their NSS setup).
CGO_ENABLED=$cgo go build -tags netgo,osusergo -trimpath -ldflags "-s -w" -o "$out/$bin" "$pkg"

info=$(go version -m "$out/$bin")
if [ "$cgo" = 0 ]; then
  grep -q $'\tbuild\tCGO_ENABLED=0' <<<"$info" || { echo "build.sh: $bin is not static" >&2; exit 1; }
  # The manager and the in-pod tools copied into every pod never link NVML.
  if grep -q 'github.com/NVIDIA/go-nvml' <<<"$info"; then
    echo "build.sh: $bin links go-nvml; only the node agent and the preflight may" >&2; exit 1
  fi
  echo "built $out/$bin (static)"
else
  glibc=$(objdump -T "$out/$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  if [ -n "${MAX_GLIBC:-}" ] && [ "$(printf '%s\n%s\n' "$glibc" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
    echo "build.sh: $bin needs glibc $glibc, newer than MAX_GLIBC=$MAX_GLIBC" >&2; exit 1
  fi
  echo "built $out/$bin (cgo, needs glibc >= $glibc)"
fi
