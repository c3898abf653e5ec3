#!/usr/bin/env bash
# Load run of the admin API with wrk, on loopback, bounded in time:
#   1. GET /apis/{id}      — a read by primary key through the whole HTTP + DAO path
#   2. POST /consumers     — an insert per request, each with a unique username
# Prints requests/s and the 99th-percentile latency of each.
#
#   bench/http_load.sh [KDAO_BINARY]      (default: build/kdao)
#
# Knobs: DURATION (10s), THREADS (2), CONNECTIONS (32). The backend is whatever KDAO_*
# says (KDAO_DATABASE=postgres with KDAO_PG_*), SQLite in a temp file by default.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KDAO=${1:-$ROOT/build/kdao}
KDAO=$(cd "$(dirname "$KDAO")" && pwd)/$(basename "$KDAO")
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}

command -v wrk >/dev/null || { echo "http_load: wrk not found (apt-get install wrk)" >&2; exit 1; }
"$KDAO" serve --help >/dev/null 2>&1 || { echo "http_load: $KDAO has no admin API" >&2; exit 1; }

TMP=$(mktemp -d /tmp/kdao-http-load.XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"

export KDAO_DATABASE=${KDAO_DATABASE:-sqlite}
export KDAO_SQLITE_PATH=${KDAO_SQLITE_PATH:-$TMP/kdao.db}
if [ "$KDAO_DATABASE" != sqlite ]; then
  "$KDAO" migrations up >/dev/null
fi

"$KDAO" serve --listen 127.0.0.1:0 2>"$TMP/serve.err" &
SERVER_PID=$!
BASE=""
for _ in $(seq 100); do
  BASE=$(sed -n 's/^kdao admin API listening on \(http:[^ ]*\)$/\1/p' "$TMP/serve.err")
  [ -n "$BASE" ] && break
  sleep 0.1
done
[ -n "$BASE" ] || { cat "$TMP/serve.err" >&2; exit 1; }

name="bench-$(date +%s)-$$"
API_ID=$(curl -sS -X POST "$BASE/apis" -d name="$name" -d hosts="$name.com" \
  -d upstream_url=http://example.com | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')
[ -n "$API_ID" ] || { echo "http_load: could not create the API" >&2; exit 1; }

# Unique usernames: run prefix, wrk thread number, per-thread counter.
cat >"$TMP/post_consumers.lua" <<EOF
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
function request()
  n = n + 1
  return wrk.format("POST", "/consumers",
    {["Content-Type"] = "application/x-www-form-urlencoded"},
    "username=$name-" .. tid .. "-" .. n)
end
EOF

# run NAME wrk-args...: runs wrk, keeps its report, prints one summary line.
run() {
  local label=$1
  shift
  timeout 120 wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" >"$TMP/wrk.out"
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk.out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print}' "$TMP/wrk.out")
  printf '%-22s %12s req/s   p99 %8s   %s\n' "$label" "$rps" "$p99" "${errors:+errors: $errors}"
}

echo "kdao admin API, $KDAO_DATABASE, wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $BASE"
run "GET /apis/{id}" "$BASE/apis/$API_ID"
run "POST /consumers" -s "$TMP/post_consumers.lua" "$BASE/consumers"
total=$(curl -sS "$BASE/consumers?size=1" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
echo "consumers stored: $total"
