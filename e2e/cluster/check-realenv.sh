#!/usr/bin/env bash
# End to end on the real node of the local cluster (make dev): a TrainingEnvironment of the
# reference PyTorch image (images/pytorch) with Jupyter, SSH and a workspace, in a namespace
# enforcing Pod Security "restricted", checked through the paths a user takes (kubectl
# apply, the kubectl-trainenv plugin, ssh, the Jupyter API, headless chromium). The checks
# are e2e/tools/realenv (a Go module of its own: chromedp stays out of the operator's);
# this script finds the image and the tools and runs it. It cleans up what it creates.
#
# usage: KUBECONFIG=... check-realenv.sh STATE_DIR
#   env (optional):
#     TRAINENV_REALENV_IMAGE  the reference image (default: the repository hack/images pushed,
#                             from images.env in $TRAINENV_IMAGES_STATE, STATE_DIR/images or
#                             bin/images, at tag $TRAINENV_REALENV_TAG, default dev)
#     TRAINENV_REALENV_ARGS   more flags for e2e/tools/realenv (e.g. --idle 2m --keep)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
state=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=/dev/null
. "$state/env"
fail() { echo "e2e realenv: $*" >&2; exit 1; }

image=${TRAINENV_REALENV_IMAGE:-}
if [ -z "$image" ]; then
  for f in "${TRAINENV_IMAGES_STATE:-/nonexistent}/images.env" "$state/images/images.env" "$root/bin/images/images.env"; do
    [ -s "$f" ] || continue
    repo=$(sed -n 's/^TRAINENV_PYTORCH_REPOSITORY=//p' "$f")
    [ -n "$repo" ] && { image=$repo:${TRAINENV_REALENV_TAG:-dev}; break; }
  done
fi
[ -n "$image" ] || fail "no reference image: set TRAINENV_REALENV_IMAGE, or build it with make refimage"

for t in ssh ssh-keygen; do command -v "$t" >/dev/null || fail "$t is missing: make access-tools installs it"; done
chromium=$(command -v chromium || true)
[ -n "$chromium" ] || fail "chromium is missing: make chromium installs it"
[ -x "$root/bin/kubectl-trainenv" ] || fail "no bin/kubectl-trainenv: make build builds it"

go -C "$root/e2e/tools/realenv" build -o "$root/bin/realenv" .
# shellcheck disable=SC2086 # TRAINENV_REALENV_ARGS is a list of flags
"$root/bin/realenv" --kubeconfig "$KUBECONFIG" --state "$state" --image "$image" \
  --kubectl "$(command -v kubectl)" --plugin "$root/bin/kubectl-trainenv" --chromium "$chromium" \
  --artifacts "$state/artifacts/realenv" ${TRAINENV_REALENV_ARGS:-}
