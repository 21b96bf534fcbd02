#!/usr/bin/env bash
# bench/import.sh — `ror import ndjson` of the national FINESS set (9 archives, 89,992
# establishments, 179,975 resources) into a fresh store, then the same again (idempotent pass).
# Reports resources/s and peak RSS (GNU time) of each pass; appends a dated section to RESULTS.md.
#
# Environment: ROR_BIN (build/release/src/ror), SET (../shared/data/finess/fhir-20210108),
#   THREADS (import --threads; default: CPUs), RESULTS (bench/RESULTS.md; "-" = do not append).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
ROR_BIN=${ROR_BIN:-$root/build/release/src/ror}
SET=${SET:-$root/../shared/data/finess/fhir-20210108}
RESULTS=${RESULTS:-$here/RESULTS.md}
THREADS=${THREADS:-0}
[[ -x $ROR_BIN ]] || { echo "bench: $ROR_BIN not built (make build)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench: GNU time missing (apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ror-bench-import.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

pass() { # $1: label
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$ROR_BIN" import ndjson --data "$tmp/data" --quiet \
    --json --threads "$THREADS" "$SET"/*.tar.gz >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  read -r wall rss <"$tmp/time"
  python3 - "$1" "$tmp/out" "$wall" "$rss" <<'PY'
import json, sys
label, out, wall, rss = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
s = json.loads(open(out).read().strip().splitlines()[-1])
print(f"| {label} | {s['read']:,} | {s['created']:,} | {s['unchanged']:,} | {s['seconds']:.1f} s "
      f"| {s['read']/s['seconds']:,.0f} | {wall:.1f} s | {rss/1024:,.0f} MiB |")
PY
}

{
  echo "| pass | resources read | created | unchanged | import time | resources/s | wall (process) | peak RSS |"
  echo "|---|---|---|---|---|---|---|---|"
  pass "first import (empty store)"
  pass "same files again"
} | tee "$tmp/table"
size=$(du -m "$tmp/data/ror.db" | cut -f1)
echo "store size after import: ${size} MiB"
if [[ $RESULTS != - ]]; then
  {
    echo
    echo "## Import of the national FINESS FHIR set — $(date -u +%Y-%m-%d) on $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    echo "Command: \`bench/import.sh\` (\`ror import ndjson --threads $THREADS\` of the 9 archives of"
    echo "\`../shared/data/finess/fhir-20210108\`, one transaction, durable commit). Store: ${size} MiB."
    echo
    cat "$tmp/table"
  } >>"$RESULTS"
fi
