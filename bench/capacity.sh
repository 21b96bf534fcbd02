#!/usr/bin/env bash
# bench/capacity.sh — load test of the bed-availability module (issue 5), on loopback, bounded:
#
#   A. updates alone: durable `POST /capacity/Location/{id}` (one indicator each, acknowledged
#      only after the group commit is on disk) over CONNS connections, as fast as the server
#      answers (or at RATE/s): updates/s, acknowledgement latency p50/p99, server CPU per update
#      by thread (writer, HTTP workers, orientation updater...);
#   B. the same load with SUBS (200) SSE subscribers of GET /capacity/stream, each receiving
#      every event: delivery latency (receive time − the event's `at`, the version's commit
#      time) p50/p99/max, gaps/duplicates, and each subscriber's events compared with the
#      history feed;
#   C. the same with SUBS subscribers filtered by département (?departement=, 20 of them, so
#      each receives 1/20 of the events);
#   D. HOLD (1,000) subscribers held during a light load (HOLD_RATE/s for HOLD_DURATION): all
#      connected, none dropped, each received every event (compared with the history);
#   E. SIGKILL of the server mid-load (after KILL_AFTER), restart on the same data directory,
#      and the proof that every acknowledged update is in the history (bench/capacity/verify.mjs
#      acks: acknowledged vs found, values, versions, chains, current state).
# Units: UNITS (2,000) generated RORLocations with two indicators each (bench/capacity/units.mjs),
# imported with `ror import ndjson` once; every phase starts from a copy of that store.
# Credentials: an account `bench` (ARS administrator) and its API key are made on that store
# once, so every copy has them; every request of every client (curl, capload, subs.mjs,
# verify.mjs) carries `Authorization: Bearer <key>`; the server runs with --rate-limit 0.
# Prints a Markdown section; appends it to RESULTS when RESULTS is a path.
#
# Environment: DURATION (20s, phases A-C), WARMUP (2s, not measured), CONNS (64), RATE (0: as
#   fast as acknowledged), INDICATORS (1 or 2 per update), UNITS (2000), SUBS (200), HOLD (1000),
#   HOLD_RATE (100), HOLD_DURATION (10s), KILL_AFTER (DURATION/2; the load would run DURATION),
#   PHASES ("A B C D E"), ROR_BIN (build/release/src/ror), ROR_THREADS (serve --threads; default
#   ror's), PROFILE (phases among A B C whose server is recorded with perf during the load and
#   summarised by bench/capacity/perfsum.py; 1 means A), RESULTS ("-": print only; a path: also
#   append there), KEEP_TMP=1 keeps the temporary directory (stores, logs, JSON outputs).
# Needs: cc, node (20+), curl; perf and python3 for PROFILE. Exit status 1 when a check fails (a
# gap, a missing acknowledged update, a dropped subscriber), 0 otherwise, whatever the figures.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
lib=$here/capacity

DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-64}
RATE=${RATE:-0}
INDICATORS=${INDICATORS:-1}
UNITS=${UNITS:-2000}
SUBS=${SUBS:-200}
HOLD=${HOLD:-1000}
HOLD_RATE=${HOLD_RATE:-100}
HOLD_DURATION=${HOLD_DURATION:-10s}
KILL_AFTER=${KILL_AFTER:-}
PHASES=${PHASES:-A B C D E}
ROR_BIN=${ROR_BIN:-$root/build/release/src/ror}
ROR_THREADS=${ROR_THREADS:-}
PROFILE=${PROFILE:-}
if [[ $PROFILE == 1 ]]; then PROFILE=A; elif [[ $PROFILE == 0 ]]; then PROFILE=""; fi
RESULTS=${RESULTS:--}

die() { echo "capacity: $*" >&2; exit 2; }
log() { echo "capacity: $*" >&2; }

secs() { # 10s / 2m / 10 -> seconds
  [[ $1 =~ ^([0-9]+)([sm]?)$ ]] || die "bad duration: $1 (e.g. 20s)"
  if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
dur_s=$(secs "$DURATION")
warm_s=$(secs "$WARMUP")
hold_s=$(secs "$HOLD_DURATION")
kill_s=$(secs "${KILL_AFTER:-$((dur_s / 2))s}")
for v in CONNS RATE INDICATORS UNITS SUBS HOLD HOLD_RATE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be an integer"
done
((dur_s > warm_s && dur_s <= 600 && hold_s > 0 && hold_s <= 600)) || die "bad DURATION/WARMUP/HOLD_DURATION"
((kill_s > 0 && kill_s < dur_s)) || die "KILL_AFTER must be within DURATION"
((UNITS >= CONNS && CONNS > 0 && UNITS <= 999999)) || die "need CONNS <= UNITS <= 999999"
((INDICATORS == 1 || INDICATORS == 2)) || die "INDICATORS is 1 or 2"
for p in $PHASES; do [[ $p =~ ^[ABCDE]$ ]] || die "PHASES: letters among A B C D E"; done
for t in cc node curl; do command -v "$t" >/dev/null || die "$t not found"; done
[[ -x $ROR_BIN ]] || die "$ROR_BIN not built (make build, or ROR_BIN=...)"
if [[ -n $PROFILE ]]; then
  command -v perf >/dev/null || die "PROFILE needs perf"
  command -v python3 >/dev/null || die "PROFILE needs python3"
fi

# File descriptors: HOLD subscribers + CONNS on each side (the server inherits the limit).
need_fd=$((HOLD + CONNS + 256))
if (($(ulimit -n) < need_fd)); then
  ulimit -n "$need_fd" 2>/dev/null || ulimit -n "$(ulimit -Hn)" ||
    die "ulimit -n $need_fd refused (hard limit $(ulimit -Hn))"
fi
fd_limit=$(ulimit -n)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ror-capacity.XXXXXX")
ror_pid="" subs_pid="" load_pid="" perf_pid="" # ours, stopped by PID on exit

stop_pid() { # stop one process we started, by its own PID, SIGKILL after 5 s
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$load_pid"
  stop_pid "$subs_pid"
  stop_pid "$perf_pid"
  stop_pid "$ror_pid"
  if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Setup: the load generator, the units, the store they are imported into.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cc -O2 -Wall -o "$tmp/capload" "$lib/capload.c" || die "cannot build capload"
node "$lib/units.mjs" "$UNITS" "$tmp/units.ndjson"
mkdir -p "$tmp/base"
t0=$(date +%s.%N)
"$ROR_BIN" import ndjson --data "$tmp/base" "$tmp/units.ndjson" >"$tmp/import.log" 2>&1 ||
  { tail -5 "$tmp/import.log" >&2; die "import failed"; }
import_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
grep -q " 0 rejetées" "$tmp/import.log" || { tail -3 "$tmp/import.log" >&2; die "units rejected"; }
log "imported $UNITS units in ${import_s}s"
# The capacity views and writes need credentials: an ARS administrator may read and set every
# unit's indicators. Made before any server holds the store; every phase's copy has it.
pw=$(head -c 18 /dev/urandom | base64)
"$ROR_BIN" user add bench --role ars-admin --data "$tmp/base" --password-stdin <<<"$pw" \
  >"$tmp/user.log" 2>&1 || { cat "$tmp/user.log" >&2; die "ror user add failed"; }
KEY=$("$ROR_BIN" user key bench --data "$tmp/base" 2>>"$tmp/user.log" | tail -1)
[[ $KEY == ror_* ]] || { cat "$tmp/user.log" >&2; die "ror user key printed no key"; }
AUTH="Bearer $KEY" # the Authorization value, for every client

port=""
serve_n=0
start_ror() { # start_ror DATA_DIR: serve it on a free port (sets ror_pid, port)
  local data=$1 i log
  local args=(serve --data "$data" --port 0 --rate-limit 0) # the load: one loopback address
  [[ -n $ROR_THREADS ]] && args+=(--threads "$ROR_THREADS")
  log=$tmp/serve.$((++serve_n)).log
  : >"$log" # exists before the first grep below (the child opens it after the fork)
  "$ROR_BIN" "${args[@]}" >"$log" 2>&1 &
  ror_pid=$!
  port=""
  for ((i = 0; i < 300; i++)); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | sed 's/.*://') || true
    if [[ -n $port ]] && curl -s -H "Authorization: $AUTH" -o /dev/null \
      "http://127.0.0.1:$port/capacity/events?_count=1"; then
      break
    fi
    port=""
    kill -0 "$ror_pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $port ]] || { tail -20 "$log" >&2; die "ror did not start"; }
}
fresh_store() { # fresh_store NAME: a copy of the imported store
  rm -rf "${tmp:?}/$1"
  cp -a "$tmp/base" "$tmp/$1"
}
last_event_id() { # the newest event id in the history
  node -e '
    const origin = `http://127.0.0.1:${process.argv[1]}`;
    const headers = { Authorization: process.argv[2] };
    (async () => { let a = 0;
      for (;;) { const r = await (await fetch(`${origin}/capacity/events?after=${a}&_count=1000`,
          { headers })).json();
        if (r.events.length) a = r.events[r.events.length - 1].id;
        if (r.events.length < 1000) { console.log(a); return; } } })();' "$port" "$AUTH"
}
cpu_snapshot() { # per thread name of the server: utime+stime ticks ("name ticks" lines)
  local f
  for f in /proc/"$ror_pid"/task/*/stat; do
    sed -E 's/^[0-9]+ \(([^)]*)\) /\1 /' "$f" 2>/dev/null | awk '{print $1, $13 + $14}'
  done | awk '{t[$1] += $2} END {for (k in t) print k, t[k]}' | sort
}
rss_kib() { awk '/^VmRSS/ {print $2}' /proc/"$ror_pid"/status; }
fd_count() { find /proc/"$ror_pid"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

start_subs() { # start_subs COUNT FILTER AFTER NAME -> subs_pid; waits until all answered
  local n=$1 filter=$2 after=$3 name=$4 i
  rm -f "$tmp/$name.ready"
  node "$lib/subs.mjs" --port "$port" --count "$n" --after "$after" --filter "$filter" \
    --ready "$tmp/$name.ready" --targets "$tmp/$name.targets" --max-seconds 600 --auth "$AUTH" \
    >"$tmp/$name.json" 2>"$tmp/$name.err" &
  subs_pid=$!
  for ((i = 0; i < 600; i++)); do
    [[ -s $tmp/$name.ready ]] && break
    kill -0 "$subs_pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -s $tmp/$name.ready ]] || { cat "$tmp/$name.err" >&2; die "subscribers did not connect"; }
  log "$name: $(cat "$tmp/$name.ready")"
}
stop_subs() { # stop_subs NAME AFTER: the report, once every subscriber has the history's last
  local i    # event of its filter (subs.mjs drains, 60 s max)
  node "$lib/verify.mjs" targets --port "$port" --after "$2" --auth "$AUTH" >"$tmp/$1.targets"
  kill -TERM "$subs_pid" 2>/dev/null || true
  for ((i = 0; i < 700; i++)); do kill -0 "$subs_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$subs_pid" 2>/dev/null || true
  subs_pid=""
  [[ -s $tmp/$1.json ]] || { cat "$tmp/$1.err" >&2; die "no report from the subscribers"; }
  # the subscribers against the history (the result is judged by report.mjs)
  node "$lib/verify.mjs" subs --port "$port" --after "$2" --subs "$tmp/$1.json" --auth "$AUTH" \
    >"$tmp/${1%.subs}.verify.json" || true
}
run_load() { # run_load NAME SECONDS RATE [extra capload args] -> $tmp/NAME.load.json
  local name=$1 secs=$2 rate=$3
  shift 3
  "$tmp/capload" --port "$port" --units "$UNITS" --conns "$CONNS" --duration "$secs" \
    --warmup "$warm_s" --rate "$rate" --indicators "$INDICATORS" --auth "$AUTH" "$@" \
    >"$tmp/$name.load.json"
}
stop_ror() { stop_pid "$ror_pid"; ror_pid=""; }

# ---------------------------------------------------------------------------------------------
# Phases: each leaves its JSON files in $tmp for bench/capacity/report.mjs.
phase_load() { # phase_load NAME SUBS FILTER (A, B, C)
  local name=$1 nsubs=$2 filter=$3 base_id
  fresh_store "$name"
  start_ror "$tmp/$name"
  base_id=$(last_event_id)
  if ((nsubs > 0)); then start_subs "$nsubs" "$filter" "$base_id" "$name.subs"; fi
  cpu_snapshot >"$tmp/$name.cpu0"
  if [[ " $PROFILE " == *" $name "* ]]; then
    perf record -q --call-graph dwarf,16384 -F 199 -p "$ror_pid" -o "$tmp/$name.perf.data" \
      -- sleep $((dur_s - warm_s - 1)) >/dev/null 2>&1 &
    perf_pid=$!
  fi
  run_load "$name" "$dur_s" "$RATE"
  cpu_snapshot >"$tmp/$name.cpu1"
  [[ -z $perf_pid ]] || wait "$perf_pid" || true
  perf_pid=""
  log "$name: $(node -p 'const d = require(process.argv[1]);
    `${Math.round(d.rate)} updates/s, ack p50 ${d.lat_us.p50} µs, p99 ${d.lat_us.p99} µs`' \
    "$tmp/$name.load.json")"
  ((nsubs == 0)) || stop_subs "$name.subs" "$base_id"
  stop_ror
  if [[ -s $tmp/$name.perf.data ]]; then
    perf script -i "$tmp/$name.perf.data" 2>/dev/null | python3 "$lib/perfsum.py" \
      >"$tmp/$name.profile.txt" 2>&1 || true
  fi
}

phase_hold() { # D: HOLD subscribers during a light load
  local base_id rss0 rss1 fds
  fresh_store D
  start_ror "$tmp/D"
  base_id=$(last_event_id)
  rss0=$(rss_kib)
  start_subs "$HOLD" none "$base_id" D.subs
  fds=$(fd_count)
  cpu_snapshot >"$tmp/D.cpu0"
  run_load D "$hold_s" "$HOLD_RATE"
  cpu_snapshot >"$tmp/D.cpu1"
  rss1=$(rss_kib)
  stop_subs D.subs "$base_id"
  echo "{\"rssKiB0\":$rss0,\"rssKiB1\":$rss1,\"fds\":$fds}" >"$tmp/D.server.json"
  stop_ror
}

phase_kill() { # E: SIGKILL mid-load, restart, every acknowledged update in the history
  local base_id t0 restart_ms
  fresh_store E
  start_ror "$tmp/E"
  base_id=$(last_event_id)
  "$tmp/capload" --port "$port" --units "$UNITS" --conns "$CONNS" --duration "$dur_s" \
    --warmup 0 --rate "$RATE" --indicators "$INDICATORS" --auth "$AUTH" --log "$tmp/E.acks.log" \
    --stop-on-refused >"$tmp/E.load.json" &
  load_pid=$!
  sleep "$kill_s"
  kill -KILL "$ror_pid"
  wait "$ror_pid" 2>/dev/null || true
  ror_pid=""
  wait "$load_pid" || die "capload failed in phase E"
  load_pid=""
  t0=$(date +%s%3N)
  start_ror "$tmp/E"
  restart_ms=$(($(date +%s%3N) - t0))
  echo "{\"killAfterS\":$kill_s,\"restartMs\":$restart_ms}" >"$tmp/E.server.json"
  node "$lib/verify.mjs" acks --port "$port" --after "$base_id" --log "$tmp/E.acks.log" \
    --units "$UNITS" --auth "$AUTH" >"$tmp/E.verify.json" || true
  stop_ror
}

for p in $PHASES; do
  case $p in
    A) phase_load A 0 none ;;
    B) phase_load B "$SUBS" none ;;
    C) phase_load C "$SUBS" departement ;;
    D) phase_hold ;;
    E) phase_kill ;;
  esac
done

# ---------------------------------------------------------------------------------------------
# Report
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit (dirty: $(git -C "$root" status --porcelain --untracked-files=no | awk '{print $2}' | paste -sd' ' -))"
fi
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
settings="DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS RATE=$RATE INDICATORS=$INDICATORS"
settings+=" UNITS=$UNITS SUBS=$SUBS HOLD=$HOLD HOLD_RATE=$HOLD_RATE HOLD_DURATION=$HOLD_DURATION"
settings+=" KILL_AFTER=${kill_s}s PHASES=\"$PHASES\""
meta=(date="$(date -u '+%Y-%m-%d %H:%M UTC')" machine="$(nproc) CPU ($cpu), $mem RAM, kernel $(uname -r)"
  loadBefore="$load_before" loadAfter="$(cut -d' ' -f1-3 /proc/loadavg)" commit="$commit"
  threads="${ROR_THREADS:-default}" settings="$settings"
  binary="$ROR_BIN, built $(date -u -r "$ROR_BIN" '+%Y-%m-%d %H:%M UTC')" units="$UNITS" importS="$import_s"
  indicators="$INDICATORS" conns="$CONNS" rate="$RATE" subs="$SUBS" hold="$HOLD"
  holdRate="$HOLD_RATE" warmupS="$warm_s" clkTck="$(getconf CLK_TCK)" fdLimit="$fd_limit")
node -e '
  const m = { node: process.version };
  for (const kv of process.argv.slice(1)) {
    const i = kv.indexOf("=");
    const [k, v] = [kv.slice(0, i), kv.slice(i + 1)];
    m[k] = /^(units|indicators|conns|subs|hold|holdRate|warmupS|clkTck|fdLimit)$/.test(k) ? Number(v) : v;
  }
  console.log(JSON.stringify(m));' "${meta[@]}" >"$tmp/meta.json"
status=0
section=$(node "$lib/report.mjs" "$tmp") || status=1
echo
echo "$section"
if [[ $RESULTS != "-" ]]; then
  if [[ ! -s $RESULTS ]]; then
    printf '# ror benchmark results\n\nAppended by the bench/ scripts (see bench/README.md). Newest last.\n' >"$RESULTS"
  fi
  printf '\n%s\n' "$section" >>"$RESULTS"
  log "appended to $RESULTS"
fi
exit "$status"
