#!/usr/bin/env bash
# bench/orient.sh — the orientation query (establishments of one category within RADIUS_KM of a
# point, nearest first, LIMIT 20, national FINESS set) side by side in one run on this machine:
# ror's GET /orientation versus PostgreSQL 15 + PostGIS (GiST), loaded from the same files.
#
#   1. orient/orient.py reads the 9 archives: establishments (id, category, name, position) for
#      PostgreSQL, and POINTS query points (seeded positions of establishments, jittered);
#   2. PostgreSQL: initdb in the temp dir, started on a free loopback port (as user postgres when
#      run as root), tables + \copy + indexes + ANALYZE;
#   3. ror: `ror import ndjson` of the same archives into a fresh store, an account `bench` (ARS
#      administrator) and its API key, `ror serve --rate-limit 0`; every request to ror carries
#      the key, so it reads with access profile 1 (sensitive units and available beds included);
#   4. the answers of both for the first CHECK points are compared;
#   5. PostGIS: pgbench -M prepared (req/s and client latency), then the same run with
#      log_min_duration_statement=0 (server time: bind + execute of each statement);
#      ror: wrk over the same points (req/s, client latency), then the same run collecting the
#      Server-Timing header of every response (server time);
#   6. prints a Markdown section; appends it to RESULTS when RESULTS is a path.
#
# Environment: DURATION (10s), WARMUP (2s), CONNECTIONS (16), PG_CONNECTIONS (pgbench clients;
#   default CONNECTIONS), THREADS (client threads, 2), POINTS (1000), CODE (355), RADIUS_KM (50),
#   LIMIT (20), CHECK (50 points compared), SEED (20210108), JITTER_KM (5), ROR_BIN
#   (build/release/src/ror), ROR_THREADS (ror serve --threads; default: ror's), SET
#   (../shared/data/finess/fhir-20210108), RESULTS ("-": print only; a path: also append there),
#   KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-16}
PG_CONNECTIONS=${PG_CONNECTIONS:-$CONNECTIONS}
THREADS=${THREADS:-2}
POINTS=${POINTS:-1000}
CODE=${CODE:-355}
RADIUS_KM=${RADIUS_KM:-50}
LIMIT=${LIMIT:-20}
CHECK=${CHECK:-50}
SEED=${SEED:-20210108}
JITTER_KM=${JITTER_KM:-5}
ROR_BIN=${ROR_BIN:-$root/build/release/src/ror}
ROR_THREADS=${ROR_THREADS:-}
SET=${SET:-$root/../shared/data/finess/fhir-20210108}
RESULTS=${RESULTS:--}
SYSTEM=http://finess.sante.gouv.fr/valuesets/CAT_ETAB
PG_BIN=/usr/lib/postgresql/15/bin
PG_PACKAGES=(postgresql-15 postgresql-15-postgis-3)

die() { echo "orient: $*" >&2; exit 1; }
log() { echo "orient: $*" >&2; }

secs() { # 10s / 2m / 1h / 10 -> seconds
  [[ $1 =~ ^([0-9]+)([smh]?)$ ]] || die "bad duration: $1 (e.g. 10s)"
  case ${BASH_REMATCH[2]} in
    m) echo $((BASH_REMATCH[1] * 60)) ;;
    h) echo $((BASH_REMATCH[1] * 3600)) ;;
    *) echo "${BASH_REMATCH[1]}" ;;
  esac
}
dur_s=$(secs "$DURATION")
warm_s=$(secs "$WARMUP")
for v in CONNECTIONS PG_CONNECTIONS THREADS POINTS LIMIT CHECK SEED; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be an integer"
done
[[ $RADIUS_KM =~ ^[0-9]+([.][0-9]+)?$ && $JITTER_KM =~ ^[0-9]+([.][0-9]+)?$ ]] ||
  die "RADIUS_KM and JITTER_KM must be numbers"
[[ $CODE =~ ^[A-Za-z0-9]+$ ]] || die "CODE must be a category code (letters, digits)"
((CHECK <= POINTS)) || CHECK=$POINTS
((dur_s > 0 && POINTS > 0 && CONNECTIONS >= THREADS && PG_CONNECTIONS >= THREADS && THREADS > 0)) ||
  die "bad settings"

# ---------------------------------------------------------------------------------------------
# Tools
missing=()
for p in "${PG_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]} (apt-get install them as root)"
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v wrk >/dev/null || die "wrk not found (scripts/setup.sh bench)"
for t in curl python3; do command -v "$t" >/dev/null || die "$t not found"; done
for t in initdb pg_ctl psql pgbench; do [[ -x $PG_BIN/$t ]] || die "$PG_BIN/$t missing"; done
[[ -x $ROR_BIN ]] || die "$ROR_BIN not built (make build, or ROR_BIN=...)"
archives=("$SET"/*.tar.gz)
[[ -f ${archives[0]} ]] || die "no archives in $SET"

pg_user=""
if [[ $(id -u) == 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the user postgres (postgresql-common)"
  pg_user=postgres
fi
as_pg() { if [[ -n $pg_user ]]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ror-orient.XXXXXX")
chmod 0711 "$tmp" # postgres (another user when run as root) reaches $tmp/pg, nothing else
ror_pid=""
pg_started=""

stop_pid() { # stop one process we started, by its own PID, SIGKILL after 5 s
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
stop_pg() {
  [[ -n $pg_started ]] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$tmp/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || {
    local pid # pg_ctl failed: the postmaster by its own PID (first line of its pid file)
    pid=$(head -1 "$tmp/pg/data/postmaster.pid" 2>/dev/null) || pid=""
    if [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]]; then
      kill -QUIT "$pid" 2>/dev/null || true
    fi
  }
  pg_started=""
}
cleanup() {
  stop_pid "$ror_pid"
  stop_pg
  if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a loopback TCP port nobody listens on (re-checked by the server's own bind)
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if command -v ss >/dev/null && ss -Htln "sport = :$port" | grep -q .; then continue; fi
    echo "$port"
    return
  done
}
pct_line() { # "count p50 p99" -> sets PCT_N PCT_50 PCT_99
  read -r PCT_N PCT_50 PCT_99 <<<"$1"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# 1. Files for PostgreSQL and the query points
log "reading ${#archives[@]} archives from $SET"
mkdir -p "$tmp/in"
counts=$(python3 "$here/orient/orient.py" load "${archives[@]}" --system "$SYSTEM" --out "$tmp/in" \
  --points "$POINTS" --seed "$SEED" --jitter-km "$JITTER_KM")
json_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
n_org=$(json_get "$counts" organizations)
n_loc=$(json_get "$counts" locations)
n_placed=$(json_get "$counts" placed)
log "$n_org Organization, $n_loc Location, $n_placed establishments with a position"

# ---------------------------------------------------------------------------------------------
# 2. PostgreSQL + PostGIS
mkdir -p "$tmp/pg"
[[ -z $pg_user ]] || chown "$pg_user" "$tmp/pg"
as_pg "$PG_BIN/initdb" -D "$tmp/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
  --no-sync >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
max_conn=$((PG_CONNECTIONS + 10 > 100 ? PG_CONNECTIONS + 10 : 100))
pg_port=""
for ((attempt = 0; attempt < 10; attempt++)); do
  port=$(free_port)
  # Settings: defaults but for the temp-dir paths, JIT off (an OLTP query; JIT would only add
  # compile time) and a log line prefix the duration parser reads.
  as_pg tee "$tmp/pg/data/conf.d.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp/pg'
max_connections = $max_conn
shared_buffers = 256MB
jit = off
log_line_prefix = '%p|'
log_min_duration_statement = -1
EOF
  grep -q "^include = 'conf.d.conf'" "$tmp/pg/data/postgresql.conf" ||
    echo "include = 'conf.d.conf'" | as_pg tee -a "$tmp/pg/data/postgresql.conf" >/dev/null
  pg_started=1
  if as_pg "$PG_BIN/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/server.log" -w -t 60 start \
    >"$tmp/pg_ctl.log" 2>&1; then
    pg_port=$port
    break
  fi
  stop_pg # in case it started after all (timeout)
done
if [[ -z $pg_port ]]; then
  cat "$tmp/pg_ctl.log" "$tmp/pg/server.log" >&2 2>/dev/null
  die "PostgreSQL did not start"
fi
pg_conn=(-h "$tmp/pg" -p "$pg_port" -U postgres)
psql_q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "${pg_conn[@]}" -d postgres "$@"; }
log "PostgreSQL on 127.0.0.1:$pg_port (socket in $tmp/pg); loading"
t0=$(date +%s.%N)
psql_q -f "$here/orient/schema.sql"
psql_q -c "\\copy etab (id, category, name, geog) FROM '$tmp/in/etab.tsv'"
psql_q -c "\\copy orient_point (idx, lat, lon) FROM '$tmp/in/points.tsv'"
psql_q -f "$here/orient/index.sql"
pg_load_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
pg_rows=$(psql_q -At -c "SELECT count(*) FROM etab")
pg_cat=$(psql_q -At -c "SELECT count(*) FROM etab WHERE category = '$CODE'")
pg_version=$(psql_q -At -c "SHOW server_version" | awk '{print $1}')
postgis_version=$(psql_q -At -c "SELECT postgis_lib_version()")
((pg_cat > 0)) || die "no establishment of category $CODE in the set"
log "PostGIS: $pg_rows rows ($pg_cat of category $CODE) loaded and indexed in ${pg_load_s} s"

# ---------------------------------------------------------------------------------------------
# 3. ror
log "ror import ndjson (about a minute)"
mkdir -p "$tmp/ror"
t0=$(date +%s.%N)
rc=0
"$ROR_BIN" import ndjson --data "$tmp/ror/data" --quiet --json "${archives[@]}" \
  >"$tmp/ror-import.out" 2>"$tmp/ror-import.err" || rc=$?
((rc == 0 || rc == 3)) || { cat "$tmp/ror-import.err" >&2; die "ror import failed ($rc)"; }
ror_import_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
ror_import=$(tail -1 "$tmp/ror-import.out")
ror_created=$(json_get "$ror_import" created 2>/dev/null) || ror_created="?"
ror_rejected=$(json_get "$ror_import" rejected 2>/dev/null) || ror_rejected=""

# The account before the server holds the data dir; ARS administrator: access profile 1, the
# full view, so the query is the same as before access control (nothing left out).
pw=$(head -c 18 /dev/urandom | base64)
"$ROR_BIN" user add bench --role ars-admin --data "$tmp/ror/data" --password-stdin <<<"$pw" \
  >"$tmp/ror-user.log" 2>&1 || { cat "$tmp/ror-user.log" >&2; die "ror user add failed"; }
KEY=$("$ROR_BIN" user key bench --data "$tmp/ror/data" 2>>"$tmp/ror-user.log" | tail -1)
[[ $KEY == ror_* ]] || { cat "$tmp/ror-user.log" >&2; die "ror user key printed no key"; }
AUTH="Authorization: Bearer $KEY"

# --rate-limit 0: wrk's load comes from one loopback address.
ror_args=(serve --data "$tmp/ror/data" --port 0 --rate-limit 0)
[[ -z $ROR_THREADS ]] || ror_args+=(--threads "$ROR_THREADS")
# A simple command sent to the background: $! is ror's own PID (no subshell).
"$ROR_BIN" "${ror_args[@]}" >"$tmp/ror.out" 2>"$tmp/ror.err" &
ror_pid=$!
for ((i = 0; i < 600; i++)); do
  grep -q 'listening on http://127.0.0.1:' "$tmp/ror.out" && break
  kill -0 "$ror_pid" 2>/dev/null || { cat "$tmp/ror.err" >&2; die "ror exited at start"; }
  sleep 0.05
done
ror_port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/ror.out" | grep -o '[0-9]*$') ||
  die "ror did not print its port within 30 s"
need_enc="$SYSTEM%7C$CODE"
ror_url() { # $1 lat, $2 lon
  local q="need=$need_enc&lat=$1&lon=$2&radius=$RADIUS_KM&limit=$LIMIT&widen=false"
  echo "http://127.0.0.1:$ror_port/orientation?$q"
}
read -r _ lat lon <"$tmp/in/points.tsv"
probe=$(curl -s -H "$AUTH" -o "$tmp/probe.json" -D "$tmp/probe.hdr" -w '%{http_code}' \
  "$(ror_url "$lat" "$lon")") || probe=000
[[ $probe == 200 ]] || die "ror answered $probe to GET /orientation (not in this build?)"
grep -qi '^server-timing: *orient;.*dur=' "$tmp/probe.hdr" ||
  log "warning: no 'Server-Timing: orient;dur=' header in ror's answer"
log "ror on port $ror_port (store imported in ${ror_import_s} s: $ror_created created)"

# ---------------------------------------------------------------------------------------------
# 4. Same answers?
radius_m=$(awk -v r="$RADIUS_KM" 'BEGIN { printf "%.3f", r * 1000 }')
psql_q -v code="$CODE" -v radius_m="$radius_m" -v lim="$LIMIT" -v check="$CHECK" \
  -v out="$tmp/pg-check.tsv" -v plan="$tmp/pg-plan.txt" -f "$here/orient/check.sql"
mkdir -p "$tmp/check"
i=0
while read -r idx lat lon && ((i < CHECK)); do
  i=$((i + 1))
  curl -sSf -H "$AUTH" -o "$tmp/check/ror-$idx.json" "$(ror_url "$lat" "$lon")" ||
    die "ror failed on point $idx ($lat, $lon)"
done <"$tmp/in/points.tsv"
cmp_json=$(python3 "$here/orient/orient.py" compare "$tmp/pg-check.tsv" "$tmp/check" "$CHECK")
cmp_line=$(python3 - "$cmp_json" <<'PY'
import json, sys
c = json.loads(sys.argv[1])
s = (f"{c['same']} of {c['points']} points identical (ids and order)"
     f", {c['tie_order_only']} equal up to ties, {c['differ']} differ"
     f"; totals differ on {c['total_differs']}"
     f"; largest distance difference {c['max_distance_diff_km'] * 1000:.3f} m")
for n in c["notes"]:
    s += f"\n  - {n}"
print(s)
PY
)
log "check: $cmp_line"
ror_body=$(cat "$tmp/check"/ror-*.json | wc -c)
ror_body=$((ror_body / CHECK))
pg_plan=$(grep -oE '(Index|Bitmap Index|Index Only|Seq) Scan( using [a-z_]+)? on [a-z_]+' \
  "$tmp/pg-plan.txt" | paste -sd';' - | sed 's/;/; /g')

# ---------------------------------------------------------------------------------------------
# 5a. PostGIS: pgbench
pgb_common=(-n -M prepared -c "$PG_CONNECTIONS" -j "$THREADS" -f "$here/orient/pgbench.sql"
  -D npoints="$POINTS" -D code="$CODE" -D radius_m="$radius_m" -D lim="$LIMIT")
pgbench_run() { # $1 name, $2 seconds, extra args... -> $tmp/pgbench-$1.txt
  local name=$1 s=$2
  shift 2
  "$PG_BIN/pgbench" "${pgb_common[@]}" -T "$s" "$@" "${pg_conn[@]}" postgres \
    >"$tmp/pgbench-$name.txt" 2>&1 || { cat "$tmp/pgbench-$name.txt" >&2; die "pgbench failed"; }
}
pgbench_tps() { awk '/^tps = .*without initial connection time/ {printf "%.0f", $3}' "$1"; }
pgbench_err() {
  awk '/^number of failed transactions:/ && $5 != "0" {print "failed: " $5}' "$1"
}
log "PostGIS: pgbench warm-up ${warm_s} s, then ${dur_s} s (rate), ${dur_s} s (server time)"
((warm_s == 0)) || pgbench_run warmup "$warm_s"
mkdir -p "$tmp/pgblog"
pgbench_run rate "$dur_s" -l --log-prefix="$tmp/pgblog/tx"
PG_RPS=$(pgbench_tps "$tmp/pgbench-rate.txt")
PG_ERR=$(pgbench_err "$tmp/pgbench-rate.txt")
[[ -n $PG_RPS ]] || { cat "$tmp/pgbench-rate.txt" >&2; die "could not parse pgbench output"; }
pct_line "$(python3 "$here/orient/orient.py" pgbenchlog "$tmp/pgblog"/tx*)"
PG_C50=$PCT_50 PG_C99=$PCT_99
log_off=$(stat -c %s "$tmp/pg/server.log")
PGOPTIONS="-c log_min_duration_statement=0 -c log_parameter_max_length=0" \
  pgbench_run timing "$dur_s"
PG_RPS_T=$(pgbench_tps "$tmp/pgbench-timing.txt")
tail -c +$((log_off + 1)) "$tmp/pg/server.log" >"$tmp/pg-timing.log"
pct_line "$(python3 "$here/orient/orient.py" pglog "$tmp/pg-timing.log" 10)"
PG_S50=$PCT_50 PG_S99=$PCT_99 PG_SN=$PCT_N
log "$(printf 'PostGIS %8s req/s  client p50 %s p99 %s  server p50 %s p99 %s ms (%s statements)' \
  "$PG_RPS" "$PG_C50" "$PG_C99" "$PG_S50" "$PG_S99" "$PG_SN")"
stop_pg # nothing of PostgreSQL runs during ror's measurement

# ---------------------------------------------------------------------------------------------
# 5b. ror: wrk
wrk_args=(-t"$THREADS" -c"$CONNECTIONS" -s "$here/orient/wrk.lua" "http://127.0.0.1:$ror_port"
  -- "$tmp/in/points.lua" "$need_enc" "$RADIUS_KM" "$LIMIT" "Bearer $KEY")
log "ror: wrk warm-up ${warm_s} s, then ${dur_s} s (rate), ${dur_s} s (server time)"
((warm_s == 0)) || wrk -d"${warm_s}s" "${wrk_args[@]}" >/dev/null
wrk -d"${dur_s}s" --latency "${wrk_args[@]}" >"$tmp/wrk-rate.txt"
ORIENT_WRK_TIMING=1 wrk -d"${dur_s}s" --latency "${wrk_args[@]}" >"$tmp/wrk-timing.txt"
wrk_ms() { # wrk latency "812.00us" / "1.20ms" / "2.00s" -> ms
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}
ROR_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$tmp/wrk-rate.txt")
[[ -n $ROR_RPS ]] || { cat "$tmp/wrk-rate.txt" >&2; die "could not parse wrk output"; }
ROR_C50=$(wrk_ms "$(awk '/^ +50% / {print $2}' "$tmp/wrk-rate.txt")")
ROR_C99=$(wrk_ms "$(awk '/^ +99% / {print $2}' "$tmp/wrk-rate.txt")")
ROR_ERR=$(grep -hE 'Non-2xx|Socket errors' "$tmp/wrk-rate.txt" "$tmp/wrk-timing.txt" |
  sed 's/^ *//' | paste -sd';' -) || ROR_ERR=""
ROR_RPS_T=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$tmp/wrk-timing.txt")
st=$(grep '^server-timing ' "$tmp/wrk-timing.txt") ||
  { cat "$tmp/wrk-timing.txt" >&2; die "no server-timing line"; }
kv() { grep -o "$1=[^ ]*" <<<"$st" | cut -d= -f2; }
ROR_S50=$(kv p50) ROR_S99=$(kv p99) ROR_SN=$(kv count)
ROR_MISS=$(kv missing) ROR_BAD=$(kv bad_status)
((ROR_MISS == 0)) || ROR_ERR="${ROR_ERR:+$ROR_ERR; }$ROR_MISS responses without Server-Timing"
((ROR_BAD == 0)) || ROR_ERR="${ROR_ERR:+$ROR_ERR; }$ROR_BAD non-200 (timing run)"
log "$(printf 'ror     %8s req/s  client p50 %s p99 %s  server p50 %s p99 %s ms (%s responses)' \
  "$ROR_RPS" "$ROR_C50" "$ROR_C99" "$ROR_S50" "$ROR_S99" "$ROR_SN")"

# ---------------------------------------------------------------------------------------------
# 6. Report
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
ratio=$(awk -v a="$ROR_RPS" -v b="$PG_RPS" \
  'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }')
goal_rate=$(awk -v r="$ratio" 'BEGIN { print (r + 0 >= 10 ? "met" : "NOT met") }')
goal_p99=$(awk -v p="$ROR_S99" 'BEGIN { print (p != "" && p + 0 <= 2 ? "met" : "NOT met") }')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null |
  awk '{print $2}' | paste -sd' ' -) || dirty=""
[[ -z $dirty ]] || commit="$commit (dirty: $dirty)"
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | xargs)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
wrk_version=$( (wrk --version 2>&1 || true) | awk 'NR == 1 {print $2}')
ror_threads_txt=${ROR_THREADS:-"default"}
pg_conn_note=""
((PG_CONNECTIONS == CONNECTIONS)) || pg_conn_note=" (PostgreSQL: $PG_CONNECTIONS)"

now=$(date -u '+%Y-%m-%d %H:%M UTC')
settings="DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS PG_CONNECTIONS=$PG_CONNECTIONS"
settings+=" THREADS=$THREADS POINTS=$POINTS CODE=$CODE RADIUS_KM=$RADIUS_KM LIMIT=$LIMIT"
settings+=" SEED=$SEED JITTER_KM=$JITTER_KM"
pg_name="PostgreSQL $pg_version + PostGIS $postgis_version"
pg_sql="category = \$code AND ST_DWithin(geog, point, $radius_m, false)"
pg_sql+=" ORDER BY ST_Distance(geog, point, false) LIMIT $LIMIT"
ror_q="need=$SYSTEM|$CODE&lat=…&lon=…&radius=$RADIUS_KM&limit=$LIMIT&widen=false"
row() { printf '| %s | %s | %s ms | %s ms | %s ms | %s ms | %s |\n' "$@"; }

section=$(
  cat <<EOF
## Orientation query: ror vs $pg_name — $now

- machine: $(nproc) CPU ($cpu), $mem RAM, kernel $(uname -r);
  **the clients (wrk, pgbench) run on the same $(nproc) cores as the servers**, loopback only;
  load average before/after: $load_before / $load_after
- ror commit: $commit (\`serve --threads $ror_threads_txt\`); wrk $wrk_version; pgbench $pg_version
- command: \`bench/orient.sh\` with $settings
- data: national FINESS FHIR set (${#archives[@]} archives): $n_org Organization, $n_loc Location,
  $n_placed establishments with a position, $pg_cat of category $CODE ($SYSTEM);
  ror import: $ror_created created${ror_rejected:+, $ror_rejected rejected} in ${ror_import_s} s;
  PostgreSQL load + indexes + ANALYZE: ${pg_load_s} s
- query: category $CODE within $RADIUS_KM km (great circle, sphere) of one of $POINTS fixed
  points (positions of seeded random establishments moved by up to $JITTER_KM km), nearest first,
  at most $LIMIT
  - ror: \`GET /orientation?$ror_q\`
  - PostGIS: \`$pg_sql\` (pgbench -M prepared; the point is read by primary key from the
    $POINTS-row point table in the same statement); indexes GiST (geog), B-tree (category),
    GiST (category, geog); plan: $pg_plan
- same answers (first $CHECK points): $cmp_line
- ror's JSON answer: $ror_body B on average (same points); every request to ror carries
  \`Authorization: Bearer ror_…\` (API key of an ARS administrator: access profile 1, sensitive
  units and available beds included); \`ror serve --rate-limit 0\`
- each system: warm-up $WARMUP, then two runs of $DURATION with $CONNECTIONS
  connections$pg_conn_note, $THREADS client threads: the first gives req/s and client latency,
  the second server time
  - ror server time: its \`Server-Timing: orient;dur=\` header, collected by the wrk script
    ($ROR_SN responses; that run: $ROR_RPS_T req/s)
  - PostGIS server time: \`log_min_duration_statement = 0\` durations, bind + execute of each
    statement, the first 10 statements of each connection left out (library load, custom plans);
    wall time in the backend, so it includes waiting for a CPU among $PG_CONNECTIONS backends
    ($PG_SN statements; that run: $PG_RPS_T req/s)

| system | req/s | client p50 | client p99 | server p50 | server p99 | errors |
|---|---|---|---|---|---|---|
$(row ror "$ROR_RPS" "$ROR_C50" "$ROR_C99" "$ROR_S50" "$ROR_S99" "${ROR_ERR:-none}")
$(row "$pg_name" "$PG_RPS" "$PG_C50" "$PG_C99" "$PG_S50" "$PG_S99" "${PG_ERR:-none}")

- **rate: ror / PostGIS = ${ratio}×** (goal ≥ 10×: $goal_rate)
- **ror server time p99 = $ROR_S99 ms** (goal ≤ 2 ms: $goal_p99)
EOF
)

echo
echo "$section"
if [[ $RESULTS != "-" ]]; then
  if [[ ! -s $RESULTS ]]; then
    printf '# ror benchmark results\n\nAppended by the bench/ scripts (see bench/README.md).\n' \
      >"$RESULTS"
  fi
  printf '\n%s\n' "$section" >>"$RESULTS"
  log "appended to $RESULTS"
fi
