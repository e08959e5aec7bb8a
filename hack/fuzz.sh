#!/usr/bin/env bash
# Fuzzes one target for a bounded time: fuzz.sh PACKAGE TARGET FUZZ_TIME (make fuzz).
# Go 1.26's fuzz coordinator can end a clean run with a bare "context deadline exceeded" right
# at the -fuzztime boundary (golang/go#75804, fixed in Go 1.27). Such a run, with no failing
# input written, runs once more; a second one fails, as does any other failure.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 PACKAGE TARGET FUZZ_TIME" >&2; exit 2; }
pkg=$1 target=$2 time=$3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for attempt in 1 2; do
  if go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$time" -exec 'env GOMAXPROCS=1' 2>&1 | tee "$log"; then
    exit 0
  fi
  if ! grep -q 'context deadline exceeded' "$log" || grep -q 'Failing input written' "$log"; then
    exit 1
  fi
  if [ "$attempt" = 1 ]; then
    echo "fuzz: $target stopped at the -fuzztime boundary with no failing input (golang/go#75804); running it once more"
  fi
done
exit 1
