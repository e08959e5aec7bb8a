#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler, kube-controller-manager and the kubelet from the Go
# module proxy (setup-envtest's bucket and release downloads are not reachable everywhere).
# A throwaway module requires k8s.io/kubernetes and replaces every staging module with the
# matching v0.x release, as the kubernetes go.mod itself points them at ./staging.
# The kubelet needs k8s.io/cri-streaming too. sample-cli-plugin and sample-controller are
# left out: no component imports them, the kubernetes go.mod only replaces (never requires)
# them, and the module proxy refuses them at v0.37.2.
# Binaries are cached outside the clone, keyed by version, and copied into $BIN_DIR.
#
# usage: build-kube.sh VERSION BIN_DIR COMPONENT...
set -euo pipefail
version=$1; bin_dir=$2; shift 2
components=("$@")
cache=${TRAINENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainenv}/kube-$version
staging=${version/#v1./v0.}
major=$(echo "$version" | sed -E 's/^v([0-9]+)\..*/\1/')
minor=$(echo "$version" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')

missing=()
for c in "${components[@]}"; do
  [ -x "$cache/$c" ] || missing+=("$c")
done

if [ ${#missing[@]} -gt 0 ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  modules="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
    cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
    cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice
    externaljwt kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl
    kubelet metrics mount-utils pod-security-admission sample-apiserver streaming"
  {
    echo "module kubebuild"
    echo "go 1.25"
    echo "require k8s.io/kubernetes $version"
    for m in $modules; do echo "replace k8s.io/$m => k8s.io/$m $staging"; done
  } >"$work/go.mod"
  # Import every component to build, so that tidy records all their dependencies (the
  # controller-manager needs many the apiserver does not).
  {
    echo 'package main'
    for c in "${missing[@]}"; do echo "import _ \"k8s.io/kubernetes/cmd/$c/app\""; done
    echo 'func main() {}'
  } >"$work/main.go"
  (cd "$work" && go mod tidy >/dev/null)
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  mkdir -p "$cache"
  for c in "${missing[@]}"; do
    echo "building $c $version (first time only; cached in $cache)" >&2
    (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$cache/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$cache/$c.tmp" "$cache/$c"
  done
fi

mkdir -p "$bin_dir"
for c in "${components[@]}"; do
  install -m 0755 "$cache/$c" "$bin_dir/$c"
done
