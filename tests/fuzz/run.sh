#!/usr/bin/env bash
# Run every libFuzzer target for a bounded time. Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
# Corpora: tests/fuzz/corpus/<target>/ (seeds, read-only) + a scratch copy that grows.
set -euo pipefail
build=${1:?build dir}; secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/artifacts"
status=0
for t in json search fhirpath rpps finess jwt visibility; do
  work=$(mktemp -d)
  cp -r "$here/corpus/$t/." "$work/" 2>/dev/null || true
  echo "== fuzz_$t for ${secs}s"
  if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
       -artifact_prefix="$here/artifacts/$t-" "$work" 2>&1 | tail -12; then
    status=1
  fi
  rm -rf "$work"
done
exit $status
