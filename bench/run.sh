#!/usr/bin/env bash
# bench/run.sh — ror versus nginx serving the same bytes, on loopback, in one run.
#
#   1. start ror on a fresh data dir (demo seed) and POST $ORGS realistic ROR Organizations (~2 KB);
#      every request to ror (and, for the same request bytes, to nginx) carries the API key of an
#      account `bench` (ARS administrator, access profile 1) created on the data dir beforehand;
#   2. fetch the exact bodies of a read by id and of a 20-entry search, write them to a docroot;
#   3. start nginx (foreground, generated config, free loopback port) serving those two files;
#   4. wrk: ror read by id (for each of $ROR_THREADS), nginx same body, ror search, nginx same body;
#   5. print a Markdown table and append a dated section to bench/RESULTS.md.
#
# Environment: DURATION (10s), CONNECTIONS (64), THREADS (wrk threads, 2), WARMUP (2s),
#   ROR_THREADS ("2 4 8": --threads values tried for read by id; the best one runs the search),
#   WRITE_THREADS (32: --threads for the durable-create run),
#   ORGS (500), ROR_BIN (build/release/src/ror), RESULTS (bench/RESULTS.md; "-" = do not append),
#   KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
ROR_THREADS=${ROR_THREADS:-"2 4 8"}
WRITE_THREADS=${WRITE_THREADS:-32}
ORGS=${ORGS:-500}
ROR_BIN=${ROR_BIN:-$root/build/release/src/ror}
RESULTS=${RESULTS:-$here/RESULTS.md}
SEED=$root/data/demo/demo-region.json

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for t in wrk nginx curl; do command -v "$t" >/dev/null || die "$t not found (scripts/setup.sh bench)"; done
[[ -x $ROR_BIN ]] || die "$ROR_BIN not built (make build)"
[[ $DURATION =~ ^[0-9]+[smh]?$ ]] || die "DURATION must look like 10s"
[[ $CONNECTIONS =~ ^[0-9]+$ && $THREADS =~ ^[0-9]+$ && $ORGS =~ ^[0-9]+$ ]] || die "bad numeric setting"
((ORGS >= 40)) || die "ORGS must be >= 40 (half the names start with Centre; the search needs 20)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ror-bench.XXXXXX")
ror_pid=""
nginx_pid=""

stop_pid() { # stop one process we started, by its own PID, SIGKILL after 5 s
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$ror_pid"
  stop_pid "$nginx_pid"
  if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# ror
ror_port="" running_threads=""
start_ror() { # $1 = --threads
  local i
  : >"$tmp/ror.out"
  # A simple command sent to the background: $! is ror's own PID (no subshell).
  # --rate-limit 0: the load comes from one loopback address.
  "$ROR_BIN" serve --data "$tmp/data" --port 0 --seed "$SEED" --threads "$1" --rate-limit 0 \
    >"$tmp/ror.out" 2>>"$tmp/ror.err" &
  ror_pid=$!
  for ((i = 0; i < 200; i++)); do
    if grep -q 'listening on http://127.0.0.1:' "$tmp/ror.out"; then break; fi
    kill -0 "$ror_pid" 2>/dev/null || { cat "$tmp/ror.err" >&2; die "ror exited at start"; }
    sleep 0.05
  done
  ror_port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/ror.out" | grep -o '[0-9]*$') ||
    die "ror did not print its port within 10 s"
  running_threads=$1
}
stop_ror() { stop_pid "$ror_pid"; ror_pid=""; running_threads=""; }

# A realistic ROR Organization (structure of data/demo, ~2 KB), varied per index.
kinds=("Centre hospitalier" "Centre hospitalier universitaire" "Clinique" "Centre de santé"
  "EHPAD" "Centre médico-psychologique" "Hôpital local" "Centre de rééducation")
cities=("Paris:75012:75112" "Lyon:69003:69383" "Marseille:13005:13205" "Lille:59000:59350"
  "Toulouse:31000:31555" "Nantes:44000:44109" "Saint-Étienne:42000:42218" "Créteil:94000:94028"
  "Besançon:25000:25056" "Rouen:76000:76540" "Évry-Courcouronnes:91000:91228" "Nîmes:30000:30189")
streets=("rue de la République" "avenue Jean Jaurès" "boulevard Pasteur" "place de l'Hôtel de Ville"
  "chemin des Vignes" "rue Victor Hugo" "allée des Tilleuls")
org_body() { # $1 = index
  local i=$1 kind city cp insee street finess n
  kind=${kinds[i % ${#kinds[@]}]}
  IFS=: read -r city cp insee <<<"${cities[i % ${#cities[@]}]}"
  street=${streets[i % ${#streets[@]}]}
  n=$((1 + i % 180))
  finess=$(printf '%02d%07d' "$((10 + i % 85))" "$((1000 + i * 37))")
  cat <<EOF
{"resourceType":"Organization","meta":{"profile":["https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-organization"],"tag":[{"system":"https://mos.esante.gouv.fr/NOS/TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM","code":"11","display":"Ile-de-france"}]},"extension":[{"url":"https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-meta-creation-date","valueDateTime":"2024-06-01T09:00:00+02:00"}],"identifier":[{"use":"official","type":{"coding":[{"system":"https://mos.esante.gouv.fr/NOS/TRE_G07-TypeIdentifiantStructure/FHIR/TRE-G07-TypeIdentifiantStructure","code":"40","display":"Identifiant national de structure"}]},"system":"urn:oid:1.2.250.1.71.4.2.2","value":"1$finess"},{"use":"official","type":{"coding":[{"system":"https://mos.esante.gouv.fr/NOS/TRE_G07-TypeIdentifiantStructure/FHIR/TRE-G07-TypeIdentifiantStructure","code":"1","display":"FINESS"}]},"system":"https://finess.esante.gouv.fr","value":"$finess"}],"active":true,"type":[{"coding":[{"system":"https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement","code":"$((101 + i % 300))","display":"$kind"}]},{"coding":[{"system":"https://mos.esante.gouv.fr/NOS/TRE_R72-FinessStatutJuridique/FHIR/TRE-R72-FinessStatutJuridique","code":"$((10 + i % 60))"}]}],"name":"$kind de $city n° $i","alias":["$kind $city $n"],"telecom":[{"system":"phone","value":"01 $(printf '%02d %02d %02d %02d' $((i % 100)) $((i * 7 % 100)) $((i * 13 % 100)) $((i * 17 % 100)))","use":"work"},{"system":"email","value":"accueil.$i@etablissement-$i.example.fr","use":"work"}],"address":[{"extension":[{"url":"https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code","valueCoding":{"system":"https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM","code":"$insee","display":"$city"}}],"use":"work","type":"both","line":["$n $street"],"_line":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber","valueString":"$n"},{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetNameBase","valueString":"$street"}]}],"city":"$city","postalCode":"$cp","country":"FR"}]}
EOF
}

# Writes (and the full view of reads) need credentials: an account `bench` (ARS administrator)
# and an API key, made on the data dir before the first start (the restarts keep it).
make_key() { # $1 = data dir -> sets KEY
  local pw
  pw=$(head -c 18 /dev/urandom | base64)
  "$ROR_BIN" user add bench --role ars-admin --data "$1" --password-stdin <<<"$pw" \
    >"$tmp/user.log" 2>&1 || { cat "$tmp/user.log" >&2; die "ror user add failed"; }
  KEY=$("$ROR_BIN" user key bench --data "$1" 2>>"$tmp/user.log" | tail -1)
  [[ $KEY == ror_* ]] || { cat "$tmp/user.log" >&2; die "ror user key printed no key"; }
}
acurl() { curl -H "$AUTH" "$@"; } # curl with the key

# ---------------------------------------------------------------------------------------------
# wrk
# run_wrk NAME URL -> sets W_RPS W_P50 W_P99 W_ERR, keeps the raw output in $tmp/wrk-NAME.txt
# nginx gets the same Authorization header (ignored there), so both parse the same request.
run_wrk() {
  local name=$1 url=$2 out=$tmp/wrk-$1.txt
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "$AUTH" "$url" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$AUTH" "$url" >"$out"
  W_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  W_P50=$(awk '/^ +50% / {print $2}' "$out")
  W_P99=$(awk '/^ +99% / {print $2}' "$out")
  W_ERR=$(grep -E 'Non-2xx|Socket errors' "$out" | sed 's/^ *//' | paste -sd';' -) || W_ERR=""
  [[ -n $W_RPS ]] || { cat "$out" >&2; die "could not parse wrk output for $name"; }
  log "$(printf '%-24s %9s req/s  p50 %-9s p99 %-9s %s' "$name" "$W_RPS" "$W_P50" "$W_P99" "$W_ERR")"
}

# Keep-alive check: two requests in one curl; report whether the connection was reused.
keepalive() { # $1 url -> "yes" / "NO (...)"
  local v
  v=$(acurl -sv -o /dev/null -o /dev/null "$1" "$1" 2>&1) || true
  if grep -q 'Re-using existing connection' <<<"$v" && ! grep -qi '^< Connection: close' <<<"$v"; then
    echo yes
  else
    echo "NO ($(grep -iE '^< (Connection|HTTP)' <<<"$v" | tr -d '\r' | paste -sd' ' -))"
  fi
}

# ---------------------------------------------------------------------------------------------
# 1. ror + data
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$tmp/data" "$tmp/www/fhir/Organization" "$tmp/bodies"
first_threads=${ROR_THREADS%% *}
make_key "$tmp/data"
AUTH="Authorization: Bearer $KEY"
start_ror "$first_threads"
base="http://127.0.0.1:$ror_port/fhir"
log "ror on port $ror_port; POSTing $ORGS Organizations"
pick=$((ORGS / 2))
read_id=""
for ((i = 1; i <= ORGS; i++)); do
  org_body "$i" >"$tmp/bodies/org.json"
  loc=$(acurl -sS -o /dev/null -w '%{http_code} %header{location}' -X POST \
    -H 'Content-Type: application/fhir+json' --data-binary "@$tmp/bodies/org.json" "$base/Organization")
  [[ $loc == 201\ * ]] || die "POST Organization #$i answered: $loc"
  if ((i == pick)); then
    read_id=$(sed -E 's#.*/Organization/([^/]+)/_history/.*#\1#' <<<"${loc#201 }")
  fi
done
[[ -n $read_id ]] || die "could not learn the id of Organization #$pick"
body_size_posted=$(wc -c <"$tmp/bodies/org.json")

read_path="/fhir/Organization/$read_id"
search_query="name=centre&_count=20"
search_path="/fhir/Organization?$search_query"

# 2. exact bodies -> docroot
acurl -sSf -o "$tmp/www/fhir/Organization/$read_id" "http://127.0.0.1:$ror_port$read_path"
acurl -sSf -o "$tmp/www/search.json" "http://127.0.0.1:$ror_port$search_path"
read_size=$(wc -c <"$tmp/www/fhir/Organization/$read_id")
search_size=$(wc -c <"$tmp/www/search.json")
search_entries=$(grep -o '"fullUrl"' "$tmp/www/search.json" | wc -l)
search_total=$(grep -o '"total":[0-9]*' "$tmp/www/search.json" | head -1 | cut -d: -f2)
((search_entries == 20)) || die "search $search_path returned $search_entries entries, not 20"
ror_hdr_read=$(acurl -s -o /dev/null -w '%{size_header}' "http://127.0.0.1:$ror_port$read_path")
ror_hdr_search=$(acurl -s -o /dev/null -w '%{size_header}' "http://127.0.0.1:$ror_port$search_path")
ror_keepalive=$(keepalive "http://127.0.0.1:$ror_port$read_path")
log "read body $read_size B, search body $search_size B ($search_entries entries of $search_total); ror keep-alive: $ror_keepalive"

# 3. nginx
nginx_port=""
for ((attempt = 0; attempt < 10; attempt++)); do
  port=$((20000 + RANDOM % 40000))
  if command -v ss >/dev/null && ss -Htln "sport = :$port" | grep -q .; then continue; fi
  user_line=""
  [[ $(id -u) == 0 ]] && user_line="user root;"
  cat >"$tmp/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush off;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  open_file_cache max=100 inactive=60s;
  open_file_cache_valid 60s;
  types { }
  default_type application/fhir+json;
  client_body_temp_path $tmp/nginx-body;
  proxy_temp_path $tmp/nginx-proxy;
  fastcgi_temp_path $tmp/nginx-fastcgi;
  uwsgi_temp_path $tmp/nginx-uwsgi;
  scgi_temp_path $tmp/nginx-scgi;
  server {
    listen 127.0.0.1:$port;
    root $tmp/www;
    location = /fhir/Organization { try_files /search.json =404; }
    location / { try_files \$uri =404; }
  }
}
EOF
  nginx -p "$tmp" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
  nginx_pid=$!
  for ((i = 0; i < 100; i++)); do
    if acurl -s -o /dev/null "http://127.0.0.1:$port/fhir/Organization/$read_id"; then nginx_port=$port; break; fi
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n $nginx_port ]] && break
  stop_pid "$nginx_pid"; nginx_pid=""
done
[[ -n $nginx_port ]] || { cat "$tmp/nginx-error.log" "$tmp/nginx.out" >&2 2>/dev/null; die "nginx did not start"; }
cmp -s <(acurl -s "http://127.0.0.1:$nginx_port$read_path") "$tmp/www/fhir/Organization/$read_id" ||
  die "nginx does not serve the read body"
cmp -s <(acurl -s "http://127.0.0.1:$nginx_port$search_path") "$tmp/www/search.json" ||
  die "nginx does not serve the search body"
ngx_hdr_read=$(acurl -s -o /dev/null -w '%{size_header}' "http://127.0.0.1:$nginx_port$read_path")
ngx_hdr_search=$(acurl -s -o /dev/null -w '%{size_header}' "http://127.0.0.1:$nginx_port$search_path")
nginx_keepalive=$(keepalive "http://127.0.0.1:$nginx_port$read_path")
log "nginx on port $nginx_port; keep-alive: $nginx_keepalive"

# 4. wrk
declare -A RPS P50 P99 ERR
record() { RPS[$1]=$W_RPS; P50[$1]=$W_P50; P99[$1]=$W_P99; ERR[$1]=$W_ERR; }

best_threads="" best_rps=0
for t in $ROR_THREADS; do
  if [[ $t != "$running_threads" ]]; then stop_ror; start_ror "$t"; fi
  run_wrk "ror-read-t$t" "http://127.0.0.1:$ror_port$read_path"; record "ror-read-t$t"
  if ((W_RPS > best_rps)); then best_rps=$W_RPS; best_threads=$t; fi
done
if [[ $best_threads != "$running_threads" ]]; then stop_ror; start_ror "$best_threads"; fi
run_wrk "nginx-read" "http://127.0.0.1:$nginx_port$read_path"; record nginx-read
run_wrk "ror-search-t$best_threads" "http://127.0.0.1:$ror_port$search_path"; record ror-search
run_wrk "nginx-search" "http://127.0.0.1:$nginx_port$search_path"; record nginx-search

# Durable creates (informational: each 201 is sent after the group commit's fsync). Writers
# wait for their commit on an HTTP worker thread, so this run uses $WRITE_THREADS threads.
stop_ror; start_ror "$WRITE_THREADS"
{
  echo 'wrk.method = "POST"'
  echo 'wrk.headers["Content-Type"] = "application/fhir+json"'
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$KEY"
  printf 'wrk.body = [==[%s]==]\n' "$(cat "$tmp/bodies/org.json")"
} >"$tmp/post.lua"
out=$tmp/wrk-post.txt
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$tmp/post.lua" \
  "http://127.0.0.1:$ror_port/fhir/Organization" >"$out"
W_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
W_P50=$(awk '/^ +50% / {print $2}' "$out")
W_P99=$(awk '/^ +99% / {print $2}' "$out")
W_ERR=$(grep -E 'Non-2xx|Socket errors' "$out" | sed 's/^ *//' | paste -sd';' -) || W_ERR=""
[[ -n $W_RPS ]] || { cat "$out" >&2; die "could not parse wrk output for the creates"; }
log "$(printf '%-24s %9s req/s  p50 %-9s p99 %-9s %s' ror-create "$W_RPS" "$W_P50" "$W_P99" "$W_ERR")"
record ror-create

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "n/a" }'; }
read_ratio=$(ratio "${RPS[ror-read-t$best_threads]}" "${RPS[nginx-read]}")
search_ratio=$(ratio "${RPS[ror-search]}" "${RPS[nginx-search]}")

# 5. report
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit (dirty: $(git -C "$root" status --porcelain --untracked-files=no | awk '{print $2}' | paste -sd' ' -))"
fi
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
wrk_cmd="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H 'Authorization: Bearer …' URL"
wrk_cmd+=" (after a $WARMUP warm-up)"

row() { # label key server-threads body
  printf '| %s | %s | %s | %s | %s | %s |%s\n' "$1" "$3" "$4" "${RPS[$2]}" "${P50[$2]}" "${P99[$2]}" \
    "${ERR[$2]:+ ${ERR[$2]}}"
}
table=$(
  echo "| run | server threads | body (B) | req/s | p50 | p99 |"
  echo "|---|---|---|---|---|---|"
  for t in $ROR_THREADS; do row "ror read by id" "ror-read-t$t" "$t" "$read_size"; done
  row "nginx static, same body" nginx-read "auto ($(nproc))" "$read_size"
  row "ror search (20 entries)" ror-search "$best_threads" "$search_size"
  row "nginx static, same body" nginx-search "auto ($(nproc))" "$search_size"
  row "ror durable create (POST, 201 after fsync)" ror-create "$WRITE_THREADS" "$body_size_posted"
)

section=$(
  cat <<EOF
## $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(nproc) CPU ($cpu), $mem RAM, kernel $(uname -r); client and servers on the same cores, loopback;
  load average before/after: $load_before / $load_after (other work on the machine skews the figures)
- ror commit: $commit; nginx $(nginx -v 2>&1 | sed 's#.*/##'); $(wrk --version 2>&1 | head -1 | awk '{print "wrk " $2}')
- command: \`bench/run.sh\` with DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS ROR_THREADS="$ROR_THREADS" ORGS=$ORGS
- each run: \`$wrk_cmd\`
- data: demo seed + $ORGS POSTed Organizations (~${body_size_posted} B posted each)
- read by id: \`GET $read_path\`, body $read_size B (response headers: ror $ror_hdr_read B, nginx $ngx_hdr_read B)
- search: \`GET /fhir/Organization?$search_query\`, $search_entries entries of total $search_total, body $search_size B (headers: ror $ror_hdr_search B, nginx $ngx_hdr_search B)
- keep-alive: ror $ror_keepalive, nginx $nginx_keepalive
- every request (to both servers) carries \`Authorization: Bearer ror_…\` (API key of an ARS
  administrator: access profile 1); ror runs with \`--rate-limit 0\`

$table

- **read by id: ror (--threads $best_threads) / nginx = $read_ratio** (goal ≥ 70 %)
- **search 20: ror / nginx = $search_ratio**
EOF
)

echo
echo "$section"
if [[ $RESULTS != "-" ]]; then
  if [[ ! -s $RESULTS ]]; then
    printf '# ror benchmark results\n\nAppended by `bench/run.sh` (see bench/README.md). Newest last.\n' >"$RESULTS"
  fi
  printf '\n%s\n' "$section" >>"$RESULTS"
  log "appended to $RESULTS"
fi
