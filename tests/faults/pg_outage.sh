#!/usr/bin/env bash
# PostgreSQL restarted, then down for 5 s, under admin-API load: `kdao serve` keeps running;
# while the server is away every answer is a 503 with a JSON message (never a 500, never a
# request hanging past curl's bound), and once it is back requests succeed again without
# restarting kdao. Every row the API acknowledged (201) is found at the end. Last, the
# database made read-only (default_transaction_read_only, as on a standby): writes are 503
# with their own message, reads still work.
#
#   pg_outage.sh KDAO_BINARY POSTGRES_SH
#
# It runs a PostgreSQL server of its own (scripts/postgres.sh with a free port and a state
# file in its temporary directory) and stops it at the end: the shared server of the other
# tests is never touched. Skips (77) without PostgreSQL's binaries, curl, jq or the admin API,
# unless KDAO_REQUIRE_ALL=1.
set -uo pipefail

KDAO=${1:?usage: pg_outage.sh KDAO_BINARY POSTGRES_SH}
PG_SH=${2:?usage: pg_outage.sh KDAO_BINARY POSTGRES_SH}
KDAO=$(cd "$(dirname "$KDAO")" && pwd)/$(basename "$KDAO")
PG_SH=$(cd "$(dirname "$PG_SH")" && pwd)/$(basename "$PG_SH")

skip() {
  echo "pg_outage: $*" >&2
  [ "${KDAO_REQUIRE_ALL:-0}" = 1 ] && exit 1
  exit 77
}

command -v curl >/dev/null || skip "curl not found"
command -v jq >/dev/null || skip "jq not found"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip "no PostgreSQL server binaries"
"$KDAO" serve --help >/dev/null 2>&1 || skip "this kdao has no admin API"

TMP=$(mktemp -d /tmp/kdao-pg-outage.XXXXXX)
SERVER_PID=""
LOAD_PID=""
export KDAO_PG_STATE="$TMP/pg.state" KDAO_PG_ENV_FILE="$TMP/pg.env"
# From /: the script runs the server's tools as `postgres`, who cannot enter $TMP.
pg() { (cd / && bash "$PG_SH" "$@"); }
cleanup() {
  [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  pg stop >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"

FAILED=0
ko() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $*" >&2
}

# A port nothing listens on, away from the shared server's 55432.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 50); do
  PORT=$((55100 + RANDOM % 300))
  port_free "$PORT" && break
done
export KDAO_PG_TEST_PORT=$PORT
pg start >/dev/null || { echo "pg_outage: could not start PostgreSQL on port $PORT" >&2; exit 1; }
# shellcheck disable=SC1091
source "$KDAO_PG_ENV_FILE"
export KDAO_DATABASE=postgres
"$KDAO" migrations up >/dev/null || exit 1

"$KDAO" serve --listen 127.0.0.1:0 2>"$TMP/serve.err" &
SERVER_PID=$!
BASE=""
for _ in $(seq 100); do
  BASE=$(sed -n 's/^kdao admin API listening on \(http:[^ ]*\)$/\1/p' "$TMP/serve.err")
  [ -n "$BASE" ] && break
  sleep 0.1
done
[ -n "$BASE" ] || { echo "pg_outage: kdao serve did not start:" >&2; cat "$TMP/serve.err" >&2; exit 1; }

now() { echo "${EPOCHREALTIME/./}"; } # microseconds

# load LOG: until $TMP/stop exists, alternately creates a consumer and reads the list; one
# line per request: start, end (µs), method, status, body. A curl that gets no answer
# within 5 s (or none at all) shows as status 000.
load() {
  local log=$1 i=0 t0 status
  : >"$log"
  while [ ! -e "$TMP/stop" ]; do
    i=$((i + 1))
    t0=$(now)
    if ((i % 2)); then
      status=$(curl -s --max-time 5 -o "$TMP/load.body" -w '%{http_code}' \
        -X POST "$BASE/consumers" -d "username=load-$log_tag-$i")
      echo "$t0 $(now) POST $status $(tr -d '\n' <"$TMP/load.body")" >>"$log"
    else
      status=$(curl -s --max-time 5 -o "$TMP/load.body" -w '%{http_code}' "$BASE/consumers?size=2")
      echo "$t0 $(now) GET $status $(tr -d '\n' <"$TMP/load.body")" >>"$log"
    fi
  done
}

start_load() {
  rm -f "$TMP/stop"
  log_tag=$1
  load "$TMP/$1.log" &
  LOAD_PID=$!
}

stop_load() {
  touch "$TMP/stop"
  wait "$LOAD_PID"
  LOAD_PID=""
}

# check_log NAME LOG DOWN BACK UP: from DOWN to BACK (µs) the server was known to be away
# (0 0: never), at UP it accepted connections again. Every answer is 2xx or a 503 with the
# JSON message; between DOWN and BACK every one is a 503; every request started after UP
# succeeds.
check_log() {
  local name=$1 log=$2 down=$3 back=$4 up=$5
  local total bad down_bad after after_bad n503 bodies
  total=$(wc -l <"$log")
  bad=$(awk '$4 != 200 && $4 != 201 && $4 != 503' "$log")
  [ -z "$bad" ] || ko "$name: answers other than 200/201/503: $(head -3 <<<"$bad")"
  n503=$(awk '$4 == 503' "$log" | wc -l)
  bodies=$(awk '$4 == 503 { $1 = $2 = $3 = $4 = ""; print }' "$log")
  if [ -n "$bodies" ] &&
    ! jq -e -s 'all(.[]; .message == "The database is unavailable")' >/dev/null 2>&1 <<<"$bodies"; then
    ko "$name: a 503 without the JSON message: $(head -3 <<<"$bodies")"
  fi
  if [ "$down" != 0 ]; then
    down_bad=$(awk -v d="$down" -v b="$back" '$1 > d && $2 < b && $4 != 503' "$log")
    [ -z "$down_bad" ] || ko "$name: answers while the server was down: $(head -3 <<<"$down_bad")"
    [ "$(awk -v d="$down" -v b="$back" '$1 > d && $2 < b' "$log" | wc -l)" -ge 3 ] ||
      ko "$name: fewer than 3 requests while the server was down"
  fi
  after=$(awk -v u="$up" '$1 > u' "$log" | wc -l)
  after_bad=$(awk -v u="$up" '$1 > u && $4 != 200 && $4 != 201' "$log")
  [ "$after" -ge 5 ] || ko "$name: only $after requests after the server came back"
  [ -z "$after_bad" ] || ko "$name: failures after the server came back: $(head -3 <<<"$after_bad")"
  echo "pg_outage: $name: $total requests, $n503 answered 503, $after after recovery" >&2
}

# ---- a restart (fast shutdown: every connection is terminated) ----
start_load restart
sleep 1
pg restart || ko "postgres.sh restart failed"
up=$(now)
sleep 2
stop_load
check_log restart "$TMP/restart.log" 0 0 "$up"

# ---- 5 s with no server ----
start_load outage
sleep 1
pg halt || ko "postgres.sh halt failed"
down=$(now)
# The command-line tool says what is wrong, with the portable code.
"$KDAO" find consumers username=nobody 2>"$TMP/cli.err" >/dev/null
rc=$?
[ "$rc" = 1 ] || ko "kdao find with the server down: exit $rc, expected 1"
jq -e --arg where "127.0.0.1:$PORT" \
  '.kind == "db" and .code == "unavailable" and (.message | contains($where))' \
  "$TMP/cli.err" >/dev/null 2>&1 || ko "kdao find with the server down said: $(cat "$TMP/cli.err")"
sleep 5
back=$(now)
pg start >/dev/null || ko "postgres.sh start failed"
up=$(now)
sleep 2
stop_load
check_log outage "$TMP/outage.log" "$down" "$back" "$up"

kill -0 "$SERVER_PID" 2>/dev/null || ko "kdao serve did not survive"

# Every acknowledged creation is stored (usernames are unique: a write applied twice would
# have shown as a 409 above).
for id in $(awk '$3 == "POST" && $4 == 201 { $1 = $2 = $3 = $4 = ""; print }' \
  "$TMP/restart.log" "$TMP/outage.log" | jq -r .id); do
  status=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$BASE/consumers/$id")
  [ "$status" = 200 ] || ko "acknowledged consumer $id: GET answered $status"
done
acked=$(awk '$3 == "POST" && $4 == 201' "$TMP/restart.log" "$TMP/outage.log" | wc -l)
echo "pg_outage: $acked acknowledged creations checked" >&2

# ---- a read-only database (what a standby answers): writes 503, reads still work ----
if command -v psql >/dev/null; then
  PGPASSWORD=$KDAO_PG_PASSWORD psql -q -h "$KDAO_PG_HOST" -p "$KDAO_PG_PORT" -U "$KDAO_PG_USER"     -d postgres -c "ALTER DATABASE $KDAO_PG_DATABASE SET default_transaction_read_only = on" ||
    ko "could not make the database read-only"
  pg restart || ko "postgres.sh restart failed" # the setting applies to new sessions
  status=$(curl -s --max-time 5 -o "$TMP/body" -w '%{http_code}' -X POST "$BASE/consumers"     -d username=read-only)
  [ "$status" = 503 ] &&
    jq -e '.message == "The database is read-only: writes are refused"' "$TMP/body" >/dev/null ||
    ko "insert into a read-only database: $status $(cat "$TMP/body")"
  status=$(curl -s --max-time 5 -o "$TMP/body" -w '%{http_code}' "$BASE/consumers?size=1")
  [ "$status" = 200 ] || ko "read from a read-only database: $status $(cat "$TMP/body")"
fi

if [ "$FAILED" != 0 ]; then
  echo "pg_outage: $FAILED failure(s); kdao serve's log:" >&2
  tail -20 "$TMP/serve.err" >&2
  exit 1
fi
echo "pg_outage: ok" >&2
