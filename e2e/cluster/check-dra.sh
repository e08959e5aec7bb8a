#!/usr/bin/env bash
# Checks GPU allocation through Dynamic Resource Allocation with the real kube-scheduler on
# the local cluster: ResourceSlices mimicking NVIDIA's DRA driver for the GPU pools (H100 /
# A100 / T4, facts from their GPU Feature Discovery labels), a DeviceClass, and claims whose
# selectors trainenv compiles from images' CUDA requirements (13.0, 12.4, 11.4 on a T4, arch
# >= 9.0, a product; 13.1 and arch >= 10.0 that nothing satisfies). See e2e/dracheck.
#
# usage: check-dra.sh [STATE_DIR]     (STATE_DIR defaults to bin/dev; needs make dev)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=${1:-$root/bin/dev}
# shellcheck source=/dev/null
. "$state/env"
cd "$root"
go run ./e2e/dracheck
