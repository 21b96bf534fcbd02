#!/usr/bin/env bash
# Install what ror needs on Debian 12, only what is missing. Idempotent; safe to re-run.
#   scripts/setup.sh          build + run dependencies
#   scripts/setup.sh test     + test dependencies (cmocka, node packages)
#   scripts/setup.sh bench    + benchmark tools (wrk, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libutf8proc-dev zlib1g-dev libproj-dev proj-data libsodium-dev libcurl4-openssl-dev
      librhonabwy-dev nodejs npm)
case "${1:-}" in
  test) want+=(libcmocka-dev clang libclang-rt-14-dev chromium) ;;
  bench) want+=(libcmocka-dev wrk nginx-light time) ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node may come from elsewhere than Debian's package (as on the CI image): accept any node >= 20
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -ra missing <<< "${missing[*]:-}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# npm packages, pinned by their package-lock.json: the web interface's map (always: `make run`
# serves it), the API and browser test clients (test)
npm_ci() { (cd "$1" && { [ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; }); }
npm_ci web
if [ "${1:-}" = test ]; then
  npm_ci tests/blackbox
  npm_ci tests/browser
fi
