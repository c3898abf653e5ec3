#!/usr/bin/env bash
# The admin API's security and operations over real HTTP(S): admin_auth (token and Basic),
# the HTTPS listener, the refusal to serve an unauthenticated plain listener off loopback,
# GET /status, request ids and the access log — and that no secret shows anywhere.
#
#   adminsec_test.sh KDAO_BINARY sqlite|postgres
#
# PostgreSQL comes from KDAO_PG_*; without them the test is skipped (77) unless
# KDAO_REQUIRE_ALL=1. It works in a database of its own (<given database>_adminsec_test),
# which it drops at the end — and once in the middle, to see GET /status answer 503.
set -uo pipefail

KDAO=${1:?usage: adminsec_test.sh KDAO_BINARY sqlite|postgres}
BACKEND=${2:?usage: adminsec_test.sh KDAO_BINARY sqlite|postgres}
KDAO=$(cd "$(dirname "$KDAO")" && pwd)/$(basename "$KDAO")

skip() {
  echo "adminsec_test: $*" >&2
  [ "${KDAO_REQUIRE_ALL:-0}" = 1 ] && exit 1
  exit 77
}

for tool in curl jq openssl; do command -v $tool >/dev/null || skip "$tool not found"; done
"$KDAO" serve --help >/dev/null 2>&1 || skip "this kdao has no admin API"

TMP=$(mktemp -d /tmp/kdao-adminsec-test.XXXXXX)
SERVER_PID=""
OWN_DB=""
stop_server() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}
cleanup() {
  stop_server
  [ -n "$OWN_DB" ] && "${pg[@]}" -c "DROP DATABASE IF EXISTS $OWN_DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"

# Secrets of this run: none may appear in any output.
TOKEN="tok-$RANDOM$RANDOM-secret"
PASSWORD="pw-$RANDOM$RANDOM-secret"

export KDAO_DATABASE=$BACKEND
for v in ADMIN_AUTH ADMIN_LISTEN ADMIN_LISTEN_SSL ADMIN_SSL_CERT ADMIN_SSL_CERT_KEY ADMIN_ACCESS_LOG; do
  unset "KDAO_$v"
done
case "$BACKEND" in
sqlite)
  export KDAO_SQLITE_PATH="$TMP/kdao.db"
  ;;
postgres)
  [ -n "${KDAO_PG_HOST:-}" ] || skip "KDAO_PG_HOST is not set: no PostgreSQL to test against"
  command -v psql >/dev/null || skip "psql not found"
  export PGPASSWORD="${KDAO_PG_PASSWORD:-}" PGOPTIONS="-c client_min_messages=warning"
  pg=(psql -q -v ON_ERROR_STOP=1 -h "$KDAO_PG_HOST" -p "${KDAO_PG_PORT:-5432}"
    -U "${KDAO_PG_USER:-kong}" -d "${KDAO_PG_DATABASE:-kong}")
  OWN_DB=kdao_adminsec_test
  [[ "${KDAO_PG_DATABASE:-}" =~ ^[a-z0-9_]{1,40}$ ]] && OWN_DB=${KDAO_PG_DATABASE}_adminsec_test
  "${pg[@]}" -c "DROP DATABASE IF EXISTS $OWN_DB WITH (FORCE)" -c "CREATE DATABASE $OWN_DB" \
    >/dev/null || exit 1
  export KDAO_PG_DATABASE=$OWN_DB
  "$KDAO" migrations up >/dev/null || exit 1
  ;;
*)
  echo "adminsec_test: unknown backend '$BACKEND'" >&2
  exit 2
  ;;
esac

openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1 ||
  skip "openssl cannot make a self-signed certificate"

PASSED=0
FAILED=0
STATUS=""
BODY=""
HEADERS=""
ok() { PASSED=$((PASSED + 1)); }
ko() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $*" >&2
  echo "      status $STATUS, body: ${BODY:0:600}" >&2
}

# start_server LOG [ARGS...]: `kdao serve ARGS` with stderr to LOG; sets SERVER_PID, BASE
# (plain listener) and SBASE (HTTPS listener), empty for a listener not configured.
start_server() {
  local log=$1
  shift
  "$KDAO" serve "$@" 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q '^kdao admin API listening' "$log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  sleep 0.1 # the second listener's line follows the first
  BASE=$(sed -n 's/^kdao admin API listening on \(http:[^ ]*\)$/\1/p' "$log")
  SBASE=$(sed -n 's/^kdao admin API listening on \(https:[^ ]*\)$/\1/p' "$log")
  if [ -z "$BASE$SBASE" ]; then
    echo "adminsec_test: kdao serve did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
}

# req METHOD URL [curl arguments...]: sets STATUS, BODY and HEADERS; counts in REQUESTS.
REQUESTS=0
req() {
  local method=$1 url=$2
  shift 2
  REQUESTS=$((REQUESTS + 1))
  STATUS=$(curl -sS --max-time 10 --cacert "$TMP/cert.pem" -D "$TMP/headers" -o "$TMP/body" \
    -w '%{http_code}' -X "$method" "$url" "$@" 2>"$TMP/curl.err")
  BODY=$(cat "$TMP/body" 2>/dev/null)
  HEADERS=$(tr -d '\r' <"$TMP/headers" 2>/dev/null)
}

# expect NAME STATUS [JQ_CONDITION...]
expect() {
  local name=$1 status=$2
  shift 2
  if [ "$STATUS" != "$status" ]; then
    ko "$name: expected status $status"
    return
  fi
  local cond
  for cond in "$@"; do
    if ! jq -e "$cond" >/dev/null 2>&1 <<<"$BODY"; then
      ko "$name: $cond"
      return
    fi
  done
  ok
}

header() { sed -n "s/^$1: //Ip" <<<"$HEADERS" | head -n1; }

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
  local name=$1
  shift
  if "$@"; then ok; else ko "$name"; fi
}

# ---- the secret in the configuration is masked -------------------------------------------
KDAO_ADMIN_AUTH="token:$TOKEN" "$KDAO" config >"$TMP/config.out" 2>&1
BODY=$(cat "$TMP/config.out") STATUS=config
check "kdao config masks admin_auth" jq -e '.admin_auth == "******"' "$TMP/config.out" >/dev/null
check "kdao config does not print the token" bash -c "! grep -qF -- '$TOKEN' '$TMP/config.out'"
KDAO_ADMIN_AUTH="bogus-$TOKEN" "$KDAO" config >"$TMP/config.out" 2>&1
STATUS=$? BODY=$(cat "$TMP/config.out")
check "a malformed admin_auth is refused" jq -e '.kind == "config" and (.message | test("admin_auth"))' \
  "$TMP/config.out" >/dev/null
check "... without quoting it" bash -c "! grep -qF -- '$TOKEN' '$TMP/config.out'"

# ---- token authentication, HTTPS, request ids, access log --------------------------------
export KDAO_ADMIN_AUTH="token:$TOKEN" KDAO_ADMIN_ACCESS_LOG="$TMP/access.log"
export KDAO_ADMIN_LISTEN_SSL=127.0.0.1:0 KDAO_ADMIN_SSL_CERT="$TMP/cert.pem"
export KDAO_ADMIN_SSL_CERT_KEY="$TMP/key.pem"
start_server "$TMP/serve.err" --listen 127.0.0.1:0
REQUESTS=0
AUTH=(-H "Authorization: Bearer $TOKEN")

req GET "$BASE/apis"
expect "no credentials: 401" 401 '. == {"message": "Unauthorized"}'
check "401 names the scheme" test "$(header WWW-Authenticate)" = 'Bearer realm="kdao admin API"'
req GET "$BASE/apis" -H "Authorization: Bearer wrong-$TOKEN"
expect "wrong token: 401" 401 '.message == "Unauthorized"'
req GET "$BASE/apis" -H "Authorization: Bearer ${TOKEN:0:${#TOKEN}-1}"
expect "token prefix: 401" 401
req GET "$BASE/apis" -u "admin:$TOKEN"
expect "token sent as Basic: 401" 401
req POST "$BASE/consumers" -d username=intruder
expect "write without credentials: 401" 401
req GET "$BASE/apis" "${AUTH[@]}"
expect "right token: 200" 200 '.data == []'
req GET "$BASE/apis" -H "authorization: bearer  $TOKEN"
expect "scheme and header name in any case" 200
req GET "$BASE/consumers/intruder" "${AUTH[@]}"
expect "nothing was written by the refused request" 404

# Request ids: generated (128 bits in hex), or the client's when sane.
req GET "$BASE/apis" "${AUTH[@]}"
ID1=$(header X-Request-Id)
req GET "$BASE/apis" "${AUTH[@]}"
ID2=$(header X-Request-Id)
check "a generated request id" bash -c "[[ '$ID1' =~ ^[0-9a-f]{32}$ && '$ID2' =~ ^[0-9a-f]{32}$ && '$ID1' != '$ID2' ]]"
req GET "$BASE/apis" "${AUTH[@]}" -H 'X-Request-Id: trace-42.a_b:c'
check "a sane incoming id is kept" test "$(header X-Request-Id)" = trace-42.a_b:c
req GET "$BASE/apis" "${AUTH[@]}" -H 'X-Request-Id: evil"id with spaces'
check "an unsafe incoming id is replaced" bash -c "[[ '$(header X-Request-Id)' =~ ^[0-9a-f]{32}$ ]]"
req GET "$BASE/apis" -H 'X-Request-Id: unauthorised-1'
check "a 401 carries the request id" test "$(header X-Request-Id)" = unauthorised-1

# GET /status: Kong's shape with kdao's database part.
req GET "$BASE/status" "${AUTH[@]}"
expect "GET /status" 200 \
  '.server | keys == ["connections_accepted", "connections_active", "connections_handled", "connections_reading", "connections_waiting", "connections_writing", "total_requests"]' \
  '[.server[]] | all(type == "number" and . >= 0)' \
  '.server.connections_writing >= 1 and .server.connections_active >= 1' \
  '.server.total_requests >= 14 and .server.connections_handled <= .server.connections_accepted' \
  '.database == {"reachable": true, "migrations_pending": 0}'
TOTAL=$(jq .server.total_requests <<<"$BODY")
req GET "$BASE/status" "${AUTH[@]}"
expect "total_requests counts" 200 ".server.total_requests == $((TOTAL + 1))"
req GET "$BASE/status"
expect "GET /status needs the credentials too" 401

# HTTPS: the same API, through its own gate.
req GET "$SBASE/status" "${AUTH[@]}"
expect "HTTPS round trip, verified against the test's CA" 200 '.database.reachable == true'
req POST "$SBASE/consumers" "${AUTH[@]}" -d username=tls-user
expect "HTTPS write" 201 '.username == "tls-user"'
req POST "$SBASE/consumers" "${AUTH[@]}" -d username=tls-user2
req GET "$SBASE/consumers?size=1" "${AUTH[@]}"
expect "next links over HTTPS say https" 200 '.next | startswith("'"$SBASE"'/consumers?")'
req GET "$SBASE/consumers"
expect "HTTPS without credentials: 401" 401
STATUS=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://${SBASE#https://}/status" 2>/dev/null)
check "plain HTTP on the HTTPS port is not served" test "$STATUS" != 200
req GET "$SBASE/status" "${AUTH[@]}"
expect "HTTPS still serving after a plain-text client" 200

# Configuration shown at GET / masks the secret.
req GET "$BASE/" "${AUTH[@]}"
expect "GET / masks admin_auth" 200 '.configuration.admin_auth == "******"'
check "GET / does not show the token" bash -c "! grep -qF -- '$TOKEN' '$TMP/body'"

# Access log: one line per request, query strings left out.
req GET "$BASE/apis?name=query-$PASSWORD" "${AUTH[@]}" -H 'X-Request-Id: logged-1'
sleep 0.2
LINE=$(grep ' logged-1 ' "$TMP/access.log")
BODY=$LINE STATUS=log
LOG_LINE='^[0-9-]{10}T[0-9:.]{12}Z 127\.0\.0\.1 logged-1 "GET /apis" 200 [0-9]+ [0-9]+\.[0-9]{3}$'
check "access log line: time, client, id, request, status, bytes, ms" grep -Eq "$LOG_LINE" \
  <<<"$LINE"
check "the access log has no query string" bash -c "! grep -qF -- 'query-$PASSWORD' '$TMP/access.log'"
check "401s are logged" grep -q ' unauthorised-1 "GET /apis" 401 ' "$TMP/access.log"
check "HTTPS requests are logged" grep -q '"POST /consumers" 201 ' "$TMP/access.log"
LINES=$(wc -l <"$TMP/access.log")
check "one line per request" test "$LINES" = "$REQUESTS"

stop_server
check "no secret in the access log" bash -c "! grep -qF -- '$TOKEN' '$TMP/access.log'"
check "no secret on stderr" bash -c "! grep -qF -- '$TOKEN' '$TMP/serve.err'"
check "the access log is off by default" bash -c "! grep -q '\"GET' '$TMP/serve.err'"

# ---- Basic authentication, access log on stderr --------------------------------------------
unset KDAO_ADMIN_LISTEN_SSL KDAO_ADMIN_SSL_CERT KDAO_ADMIN_SSL_CERT_KEY
export KDAO_ADMIN_AUTH="basic:admin:$PASSWORD" KDAO_ADMIN_ACCESS_LOG=stderr
start_server "$TMP/basic.err" --listen 127.0.0.1:0
req GET "$BASE/apis"
expect "Basic: no credentials" 401
check "401 asks for Basic" bash -c "[[ '$(header WWW-Authenticate)' == 'Basic realm=\"kdao admin API\"'* ]]"
req GET "$BASE/apis" -u "admin:$PASSWORD"
expect "Basic: right user and password" 200
req GET "$BASE/apis" -u "admin:wrong-$PASSWORD"
expect "Basic: wrong password" 401
req GET "$BASE/apis" -u "root:$PASSWORD"
expect "Basic: wrong user" 401
req GET "$BASE/apis" -H "Authorization: Bearer admin:$PASSWORD"
expect "Basic credentials as a bearer token" 401
req GET "$BASE/apis" -H 'Authorization: Basic !!!!'
expect "malformed base64" 401
stop_server
check "access log on stderr" grep -q '"GET /apis" 200 ' "$TMP/basic.err"
check "no password on stderr" bash -c "! grep -qF -- '$PASSWORD' '$TMP/basic.err'"
check "no Authorization header on stderr" bash -c "! grep -qi 'authorization\|YWRtaW46' '$TMP/basic.err'"

# ---- exposure: a plain listener off loopback needs credentials -----------------------------
unset KDAO_ADMIN_AUTH KDAO_ADMIN_ACCESS_LOG
# serve_error NAME KIND PATTERN ARGS...: `kdao serve ARGS` exits 1 with one JSON error.
serve_error() {
  local name=$1 kind=$2 pattern=$3
  shift 3
  timeout 10 "$KDAO" serve "$@" >/dev/null 2>"$TMP/start.err"
  STATUS=$? BODY=$(cat "$TMP/start.err")
  [ "$STATUS" = 1 ] && jq -e --arg k "$kind" --arg p "$pattern" '.kind == $k and (.message | test($p))' \
    <<<"$BODY" >/dev/null && ok || ko "$name"
}
serve_error "0.0.0.0 without admin_auth is refused" config 'admin_auth.*--insecure' --listen 0.0.0.0:0
KDAO_ADMIN_LISTEN=0.0.0.0:0 serve_error "... from admin_listen too" config 'not a loopback' 
KDAO_ADMIN_LISTEN=off serve_error "nothing to listen on" config 'nothing to listen on'
KDAO_ADMIN_LISTEN=off KDAO_ADMIN_LISTEN_SSL=127.0.0.1:0 serve_error "HTTPS needs a certificate" \
  config 'admin_ssl_cert'
KDAO_ADMIN_LISTEN=off KDAO_ADMIN_LISTEN_SSL=127.0.0.1:0 KDAO_ADMIN_SSL_CERT="$TMP/none.pem" \
  KDAO_ADMIN_SSL_CERT_KEY="$TMP/key.pem" serve_error "missing certificate file" io 'none.pem'
KDAO_ADMIN_LISTEN=off KDAO_ADMIN_LISTEN_SSL=127.0.0.1:0 KDAO_ADMIN_SSL_CERT="$TMP/key.pem" \
  KDAO_ADMIN_SSL_CERT_KEY="$TMP/cert.pem" serve_error "certificate and key swapped" config \
  'admin_ssl_cert'

start_server "$TMP/insecure.err" --listen 0.0.0.0:0 --insecure
BASE=http://127.0.0.1:${BASE##*:}
req GET "$BASE/status"
expect "--insecure serves 0.0.0.0 without credentials" 200
check "--insecure warns" grep -q 'warning: .*anyone' "$TMP/insecure.err"
stop_server
KDAO_ADMIN_AUTH="token:$TOKEN" start_server "$TMP/auth0.err" --listen 0.0.0.0:0
BASE=http://127.0.0.1:${BASE##*:}
req GET "$BASE/status" "${AUTH[@]}"
expect "0.0.0.0 with admin_auth is served" 200
stop_server
KDAO_ADMIN_LISTEN=off KDAO_ADMIN_LISTEN_SSL=0.0.0.0:0 KDAO_ADMIN_SSL_CERT="$TMP/cert.pem" \
  KDAO_ADMIN_SSL_CERT_KEY="$TMP/key.pem" start_server "$TMP/tlsonly.err"
check "HTTPS only: no plain listener" test -z "$BASE"
req GET "https://127.0.0.1:${SBASE##*:}/status"
expect "HTTPS only on 0.0.0.0 is served" 200
stop_server

# ---- an unreachable database: GET /status answers 503 --------------------------------------
if [ "$BACKEND" = postgres ]; then
  start_server "$TMP/down.err" --listen 127.0.0.1:0
  req GET "$BASE/status"
  expect "database up" 200 '.database.reachable == true'
  "${pg[@]}" -c "DROP DATABASE $OWN_DB WITH (FORCE)" >/dev/null
  OWN_DB=""
  req GET "$BASE/status" -H 'X-Request-Id: down-1'
  expect "database gone: 503" 503 '.database == {"reachable": false}' '.server.total_requests >= 2'
  sleep 0.2
  check "the failure is logged with the request id" grep -q '^kdao serve: GET /status: request down-1: ' \
    "$TMP/down.err"
  stop_server
fi

# Under ASan/UBSan the servers' own reports (leaks at exit included) land in their stderr.
if grep -q 'Sanitizer\|runtime error' "$TMP"/*.err; then
  STATUS=sanitizer BODY=""
  ko "sanitizer report from kdao serve"
  cat "$TMP"/*.err >&2
else
  ok
fi

echo "adminsec_$BACKEND: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
