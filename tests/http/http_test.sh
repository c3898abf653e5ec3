#!/usr/bin/env bash
# The admin API over real HTTP: starts `kdao serve` on a free port over a fresh database,
# drives every route with curl, checks statuses and bodies with jq, stops the server.
#
#   http_test.sh KDAO_BINARY sqlite|postgres
#
# PostgreSQL comes from KDAO_PG_HOST/PORT/USER/DATABASE/PASSWORD; without them the test
# is skipped (exit 77) unless KDAO_REQUIRE_ALL=1. It works in a database of its own
# (<given database>_http_test) when psql can create one, else resets the given database.
set -uo pipefail

KDAO=${1:?usage: http_test.sh KDAO_BINARY sqlite|postgres}
BACKEND=${2:?usage: http_test.sh KDAO_BINARY sqlite|postgres}
KDAO=$(cd "$(dirname "$KDAO")" && pwd)/$(basename "$KDAO")
HERE=$(cd "$(dirname "$0")" && pwd)

skip() {
  echo "http_test: $*" >&2
  [ "${KDAO_REQUIRE_ALL:-0}" = 1 ] && exit 1
  exit 77
}

command -v curl >/dev/null || skip "curl not found"
command -v jq >/dev/null || skip "jq not found"
"$KDAO" serve --help >/dev/null 2>&1 || skip "this kdao has no admin API"

TMP=$(mktemp -d /tmp/kdao-http-test.XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
# Writes to a connection the server closed (the tests provoke it) must fail, not kill us.
trap '' PIPE
cd "$TMP"

# Every KDAO_* variable of the caller stays, the backend's are set here.
export KDAO_DATABASE=$BACKEND
case "$BACKEND" in
sqlite)
  export KDAO_SQLITE_PATH="$TMP/kdao.db"
  ;;
postgres)
  [ -n "${KDAO_PG_HOST:-}" ] || skip "KDAO_PG_HOST is not set: no PostgreSQL to test against"
  if command -v psql >/dev/null; then
    export PGPASSWORD="${KDAO_PG_PASSWORD:-}" PGOPTIONS="-c client_min_messages=warning"
    pg=(psql -q -v ON_ERROR_STOP=1 -h "$KDAO_PG_HOST" -p "${KDAO_PG_PORT:-5432}"
      -U "${KDAO_PG_USER:-kong}" -d "${KDAO_PG_DATABASE:-kong}")
    # Named after the given database, so that runs against different databases of one
    # server (parallel checkouts) do not drop each other's.
    own_db=kdao_http_test
    [[ "${KDAO_PG_DATABASE:-}" =~ ^[a-z0-9_]{1,40}$ ]] && own_db=${KDAO_PG_DATABASE}_http_test
    "${pg[@]}" -c "DROP DATABASE IF EXISTS $own_db" -c "CREATE DATABASE $own_db" \
      >/dev/null && export KDAO_PG_DATABASE=$own_db
  fi
  "$KDAO" migrations reset --yes >/dev/null || exit 1
  "$KDAO" migrations up >/dev/null || exit 1
  ;;
*)
  echo "http_test: unknown backend '$BACKEND'" >&2
  exit 2
  ;;
esac

# Small limits, so that the limit tests need little traffic.
export KDAO_ADMIN_MAX_BODY=65536

# start_server LOG: starts `kdao serve` on a free port, stderr to LOG; sets SERVER_PID, BASE.
start_server() {
  local log=$1
  "$KDAO" serve --listen 127.0.0.1:0 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    BASE=$(sed -n 's/^kdao admin API listening on \(http:[^ ]*\)$/\1/p' "$log")
    [ -n "$BASE" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "http_test: kdao serve did not start:" >&2
  cat "$log" >&2
  exit 1
}
start_server "$TMP/serve.err"

PASSED=0
FAILED=0
STATUS=""
BODY=""
HEADERS=""

# req METHOD PATH [curl arguments...]: sets STATUS, BODY and HEADERS.
req() {
  local method=$1 path=$2
  : >"$TMP/curl.err"
  shift 2
  local out
  out=$(curl -sS --max-time 10 -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' \
    -X "$method" "$BASE$path" "$@" 2>"$TMP/curl.err")
  STATUS=$out
  BODY=$(cat "$TMP/body")
  HEADERS=$(cat "$TMP/headers")
}

ok() {
  PASSED=$((PASSED + 1))
}

ko() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $*" >&2
  echo "      status $STATUS, body: ${BODY:0:600}" >&2
  [ -s "$TMP/curl.err" ] && echo "      curl: $(cat "$TMP/curl.err")" >&2
}

# expect NAME STATUS [JQ_CONDITION...]: the last request answered STATUS and every jq
# condition holds on its body.
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

json() { req "$1" "$2" -H 'Content-Type: application/json' --data-binary "$3"; }
val() { jq -r "$1" <<<"$BODY"; }

# ---- node ----------------------------------------------------------------------------------
req GET /
expect "GET /" 200 '.tagline == "Welcome to kdao"' '.version | type == "string"' \
  '.plugins.available_on_server["key-auth"] == true' '.plugins.enabled_in_cluster == []' \
  '.configuration.database == "'"$BACKEND"'"' '.configuration.pg_password != "kong"'
grep -qi '^Content-Type: application/json; charset=utf-8' <<<"$HEADERS" && ok ||
  ko "JSON content type on responses"
grep -qi '^Server: kdao/' <<<"$HEADERS" && ok || ko "Server header"

# ---- routing errors ------------------------------------------------------------------------
req GET /nowhere
expect "unknown route" 404 '. == {"message": "Not found"}'
req GET /apis/a/b/c/d/e/f/g/h/i
expect "too deep a route" 404 '. == {"message": "Not found"}'
req DELETE /apis
expect "DELETE on a collection" 405 '. == {"message": "Method not allowed"}'
req PUT /apis/x -H 'Content-Type: application/json' --data-binary '{}'
expect "PUT on an element" 405 '. == {"message": "Method not allowed"}'
req HEAD /apis -I
[ "$STATUS" = 405 ] && ok || ko "HEAD answered 405"
req POST /apis -H 'Content-Type:'
expect "POST without Content-Type" 415 '.message | test("Unsupported Content-Type")'
req POST /apis -H 'Content-Type: text/plain' --data-binary 'name=x'
expect "POST text/plain" 415 '.message | test("Unsupported Content-Type")'
json POST /apis '{"name": '
expect "malformed JSON" 400 '. == {"message": "Cannot parse JSON body"}'
json POST /apis '[1, 2]'
expect "JSON that is not an object" 400 '. == {"message": "Cannot parse JSON body"}'

# ---- apis ----------------------------------------------------------------------------------
req POST /apis -d name=mockbin -d hosts=mockbin.com -d upstream_url=http://mockbin.com
expect "POST /apis (form)" 201 '.name == "mockbin"' '.hosts == ["mockbin.com"]' \
  '.upstream_url == "http://mockbin.com"' '.id | test("^[0-9a-f-]{36}$")' \
  '.created_at | type == "number"' '.retries == 5' '.strip_uri == true'
API_ID=$(val .id)
req POST /apis -d name=mockbin -d hosts=mockbin.com -d upstream_url=http://mockbin.com
expect "second identical POST" 409 '. == {"name": "already exists with value '"'mockbin'"'"}'

json POST /apis '{"name": "json-api", "uris": ["/json", "/j"], "upstream_url": "https://example.com", "retries": 3}'
expect "POST /apis (JSON)" 201 '.uris == ["/json", "/j"]' '.retries == 3'
req POST /apis -F name=multipart-api -F methods=GET,POST -F upstream_url=http://example.com
expect "POST /apis (multipart)" 201 '.name == "multipart-api"' '.methods == ["GET", "POST"]'
req POST /apis -d name=bracket-api -d 'hosts[]=a.com' -d 'hosts[]=b.com' -d upstream_url=http://x.com
expect "POST /apis (hosts[] form arrays)" 201 '.hosts == ["a.com", "b.com"]'
req POST '/apis?name=query-api' -d hosts=q.com -d upstream_url=http://q.com
expect "POST with query parameters" 201 '.name == "query-api"'

req POST /apis -d name=bad -d hosts=bad.com
expect "POST /apis without upstream_url" 400 '. == {"upstream_url": "upstream_url is required"}'
req POST /apis -d name=bad2 -d hosts=x.com -d upstream_url=ftp://x.com -d retries=abc
expect "POST /apis two field errors" 400 '.retries == "retries is not a number"' \
  '.upstream_url | type == "string"'
req POST /apis -d name=bad3 -d upstream_url=http://x.com -d unknown=1
expect "POST /apis unknown field" 400 '.unknown == "unknown is an unknown field"'

req GET /apis
expect "GET /apis" 200 '.total == 5' '.data | length == 5' 'has("next") | not' 'has("offset") | not'
req GET /apis/
expect "trailing slash" 200 '.total == 5'
req GET '/apis?size=2'
expect "GET /apis?size=2" 200 '.data | length == 2' '.total == 5' '.offset | type == "string"' \
  '.next | startswith("'"$BASE"'/apis?offset=")' '.next | test("size=2")'
NEXT=$(val .next)
TOKEN=$(val .offset)
SEEN=$(val '[.data[].id] | join(",")')
req GET "${NEXT#"$BASE"}"
expect "following next" 200 '.data | length == 2' ".data | map(.id) | all(. as \$i | \"$SEEN\" | contains(\$i) | not)"
NEXT=$(val .next)
req GET "${NEXT#"$BASE"}"
expect "last page" 200 '.data | length == 1' 'has("next") | not'
req GET '/apis?size=0'
expect "size 0" 400 '.message | test("size")'
req GET '/apis?size=abc'
expect "size not a number (Kong: 100)" 200 '.data | length == 5'
req GET '/apis?offset=garbage!'
expect "malformed offset" 400 '.offset == "invalid offset"'
# one character changed in the middle of a genuine token
MID=$((${#TOKEN} / 2))
SWAP=A
[ "${TOKEN:$MID:1}" = A ] && SWAP=B
req GET "/apis?size=2&offset=${TOKEN:0:$MID}$SWAP${TOKEN:$((MID + 1))}"
expect "tampered offset" 400 '.offset == "invalid offset"'
req GET "/apis?size=2&name=mockbin&offset=$TOKEN"
expect "another filter's offset" 400 '.offset == "invalid offset"'
req GET '/apis?name=mockbin'
expect "filter" 200 '.total == 1' '.data[0].name == "mockbin"'
req GET '/apis?name=json-api&size=1'
expect "filter with size" 200 '.total == 1' '.data[0].name == "json-api"'
req GET '/apis?foo=bar'
expect "unknown filter field" 400 '. == {"foo": "unknown field"}'

req GET /apis/mockbin
expect "GET /apis/{name}" 200 '.id == "'"$API_ID"'"'
req GET "/apis/$API_ID"
expect "GET /apis/{id}" 200 '.name == "mockbin"'
req GET /apis/nope
expect "GET /apis/{unknown}" 404 '. == {"message": "Not found"}'
req GET /apis/00000000-0000-4000-8000-000000000000
expect "GET /apis/{unknown uuid}" 404 '. == {"message": "Not found"}'

req PATCH /apis/mockbin -d retries=7 -d 'uris=/mock'
expect "PATCH /apis/{name}" 200 '.retries == 7' '.uris == ["/mock"]' '.hosts == ["mockbin.com"]'
json PATCH "/apis/$API_ID" '{"strip_uri": false}'
expect "PATCH /apis/{id} JSON" 200 '.strip_uri == false' '.retries == 7'
json PATCH /apis/mockbin '{}'
expect "PATCH with an empty body" 400 '. == {"message": "empty body"}'
req PATCH /apis/mockbin -d retries=many
expect "PATCH invalid" 400 '. == {"retries": "retries is not a number"}'
req PATCH /apis/json-api -d name=mockbin
expect "PATCH to a taken name" 409 '.name | test("already exists")'
req PATCH /apis/nope -d retries=1
expect "PATCH unknown" 404 '. == {"message": "Not found"}'

req PUT /apis -d name=put-api -d hosts=put.com -d upstream_url=http://put.com
expect "PUT /apis without id creates" 201 '.name == "put-api"'
PUT_ID=$(val .id)
PUT_CREATED=$(val .created_at)
req PUT /apis -d id="$PUT_ID" -d name=put-api -d uris=/put -d upstream_url=http://put2.com \
  -d created_at="$PUT_CREATED"
expect "PUT /apis with id and created_at replaces" 200 '.upstream_url == "http://put2.com"' '.uris == ["/put"]' \
  'has("hosts") | not'
req PUT /apis -d id=11111111-1111-4111-8111-111111111111 -d name=put-new -d hosts=new.com \
  -d upstream_url=http://new.com
expect "PUT /apis with an unknown id creates" 201 '.id == "11111111-1111-4111-8111-111111111111"'
req PUT /apis -d id=11111111-1111-4111-8111-111111111111 -d name=put-new -d hosts=new2.com \
  -d upstream_url=http://new.com
expect "PUT /apis without created_at keeps it" 200 '.hosts == ["new2.com"]' \
  '.created_at | type == "number"'
req PUT /apis -d id=11111111-1111-4111-8111-111111111111 -d name=put-new
# Kong's full update reported a missing required field twice; kdao once.
expect "PUT /apis replacing with an invalid entity" 400 \
  '.upstream_url == "upstream_url is required"'

# ---- plugins -------------------------------------------------------------------------------
req POST /apis/mockbin/plugins -d name=key-auth -d config.key_names=apikey,token
expect "POST /apis/{api}/plugins" 201 '.api_id == "'"$API_ID"'"' \
  '.config.key_names == ["apikey", "token"]' '.config.hide_credentials == false' '.enabled == true'
PLUGIN_ID=$(val .id)
req POST /apis/mockbin/plugins -d name=key-auth
expect "second key-auth on the API" 409 '.name | test("already exists")'
req POST /apis/mockbin/plugins -d name=no-such-plugin
expect "unknown plugin name" 400 '. == {"config": "Plugin \"no-such-plugin\" not found"}'
req POST /apis/nope/plugins -d name=key-auth
expect "plugins of an unknown API" 404 '. == {"message": "Not found"}'
req GET /apis/mockbin/plugins
expect "GET /apis/{api}/plugins" 200 '.total == 1' '.data[0].id == "'"$PLUGIN_ID"'"'
req GET "/apis/json-api/plugins"
expect "GET plugins of another API" 200 '.total == 0' '.data == []'
req GET "/apis/mockbin/plugins/$PLUGIN_ID"
expect "GET /apis/{api}/plugins/{id}" 200 '.name == "key-auth"'
req GET "/apis/json-api/plugins/$PLUGIN_ID"
expect "plugin under the wrong API" 404 '. == {"message": "Not found"}'
req GET /apis/mockbin/plugins/not-a-uuid
expect "plugin id not a UUID" 400 '.id | test("not a valid uuid")'
req PATCH "/apis/mockbin/plugins/$PLUGIN_ID" -d config.hide_credentials=true
expect "PATCH plugin config merges" 200 '.config.hide_credentials == true' \
  '.config.key_names == ["apikey", "token"]'
req GET "/plugins/$PLUGIN_ID"
expect "GET /plugins/{id}" 200 '.config.hide_credentials == true'
req GET /plugins
expect "GET /plugins" 200 '.total == 1'
req GET '/plugins?name=key-auth'
expect "GET /plugins filtered" 200 '.total == 1'
req POST /plugins -d name=basic-auth -d api_id="$API_ID"
expect "POST /plugins" 201 '.name == "basic-auth"' '.config.hide_credentials == false'
BASIC_PLUGIN=$(val .id)
req POST /plugins -d name=acl -d api_id=00000000-0000-4000-8000-000000000000 -d config.whitelist=a
expect "POST /plugins with an unknown api_id" 404 '.api_id | test("does not exist")'
req PATCH "/plugins/$BASIC_PLUGIN" -d enabled=false
expect "PATCH /plugins/{id}" 200 '.enabled == false'
req GET /plugins/enabled
expect "GET /plugins/enabled" 200 '.enabled_plugins | index("key-auth") != null' \
  '.enabled_plugins | index("acl") != null'
req GET /plugins/schema/key-auth
expect "GET /plugins/schema/{name}" 200 '.fields | type == "object"'
req GET /plugins/schema/nope
expect "GET /plugins/schema/{unknown}" 404 '. == {"message": "No plugin named '"'nope'"'"}'
req GET /
expect "enabled_in_cluster" 200 '.plugins.enabled_in_cluster | sort == ["basic-auth", "key-auth"]'
req DELETE "/plugins/$BASIC_PLUGIN"
expect "DELETE /plugins/{id}" 204
req DELETE "/plugins/$BASIC_PLUGIN"
expect "DELETE /plugins/{id} again" 404 '. == {"message": "Not found"}'
req DELETE "/apis/mockbin/plugins/$PLUGIN_ID"
expect "DELETE /apis/{api}/plugins/{id}" 204
req GET "/apis/mockbin/plugins/$PLUGIN_ID"
expect "deleted plugin" 404
req PUT /apis/mockbin/plugins -d name=key-auth
expect "PUT /apis/{api}/plugins creates" 201 '.api_id == "'"$API_ID"'"'

# ---- consumers and credentials -------------------------------------------------------------
req POST /consumers -d username=bob -d custom_id=b-1
expect "POST /consumers" 201 '.username == "bob"' '.custom_id == "b-1"'
BOB=$(val .id)
req POST /consumers -d username=bob
expect "duplicate username" 409 '. == {"username": "already exists with value '"'bob'"'"}'
json POST /consumers '{}'
expect "consumer without username nor custom_id" 400 \
  '.username == "At least a '"'custom_id'"' or a '"'username'"' must be specified"'
req POST /consumers -d 'username=a b/c'
expect "username with a slash" 201 '.username == "a b/c"'
req GET /consumers/a%20b%2Fc
expect "GET /consumers/{percent-encoded username}" 200 '.username == "a b/c"'
req GET /consumers/bob
expect "GET /consumers/{username}" 200 '.id == "'"$BOB"'"'
req GET "/consumers/$BOB"
expect "GET /consumers/{id}" 200 '.username == "bob"'
req GET /consumers
expect "GET /consumers" 200 '.total == 2'
req PATCH /consumers/bob -d custom_id=b-2
expect "PATCH /consumers/{username}" 200 '.custom_id == "b-2"' '.username == "bob"'
req PUT /consumers -d username=carol
expect "PUT /consumers creates" 201 '.username == "carol"'

req POST /consumers/bob/plugins -d name=key-auth
expect "plugin that refuses consumers" 400 \
  '. == {"message": "No consumer can be configured for that plugin"}'
req GET /consumers/bob/plugins
expect "GET /consumers/{c}/plugins" 200 '.total == 0' '.data == []'

req POST /consumers/bob/key-auth -d key=secret-key
expect "POST key-auth credential" 201 '.key == "secret-key"' '.consumer_id == "'"$BOB"'"'
KEY_ID=$(val .id)
req POST /consumers/bob/key-auth -H 'Content-Type: application/json' --data-binary '{}'
expect "generated key" 201 '.key | length > 0'
req POST /consumers/carol/key-auth -d key=secret-key
expect "duplicate key" 409 '.key | test("already exists")'
req GET /consumers/bob/key-auth
expect "GET key-auth credentials" 200 '.total == 2'
req GET /consumers/carol/key-auth
expect "credentials are per consumer" 200 '.total == 0'
req GET /consumers/bob/key-auth/secret-key
expect "GET credential by key" 200 '.id == "'"$KEY_ID"'"'
req GET "/consumers/bob/key-auth/$KEY_ID"
expect "GET credential by id" 200 '.key == "secret-key"'
req GET /consumers/carol/key-auth/secret-key
expect "credential of another consumer" 404
req PATCH /consumers/bob/key-auth/secret-key -d key=new-key
expect "PATCH credential" 200 '.key == "new-key"'
req DELETE /consumers/bob/key-auth/new-key
expect "DELETE credential" 204
req GET /consumers/nobody/key-auth
expect "credentials of an unknown consumer" 404 '. == {"message": "Not found"}'

req POST /consumers/bob/basic-auth -d username=bob-login -d password=pw
expect "POST basic-auth credential" 201 '.username == "bob-login"' '.consumer_id == "'"$BOB"'"'
req GET /consumers/bob/basic-auth/bob-login
expect "GET basic-auth by username" 200 '.consumer_id == "'"$BOB"'"'
req GET /consumers/bob/basic-auth
expect "GET basic-auth credentials" 200 '.total == 1'
req DELETE /consumers/bob/basic-auth/bob-login
expect "DELETE basic-auth credential" 204

req POST /consumers/bob/acls -d group=admins
expect "POST acl" 201 '.group == "admins"' '.consumer_id == "'"$BOB"'"'
req POST /consumers/bob/acls -d group=users
expect "POST second acl" 201
req GET /consumers/bob/acls
expect "GET acls" 200 '.total == 2'
req GET /consumers/bob/acls/admins
expect "GET acl by group" 200 '.group == "admins"'
req PATCH /consumers/bob/acls/admins -d group=owners
expect "PATCH acl" 200 '.group == "owners"'
req DELETE /consumers/bob/acls/owners
expect "DELETE acl" 204
req GET /consumers/bob/acls
expect "acls after delete" 200 '.total == 1'

req DELETE /consumers/bob
expect "DELETE /consumers/{username}" 204
req GET /consumers/bob
expect "deleted consumer" 404

# ---- upstreams and targets -----------------------------------------------------------------
req POST /upstreams -d name=backend.svc
expect "POST /upstreams" 201 '.name == "backend.svc"' '.slots == 100' '.orderlist | length == 100'
UPSTREAM=$(val .id)
req POST /upstreams -d name=backend.svc
expect "duplicate upstream" 409 '.name | test("already exists")'
req POST /upstreams -d name=bad.svc -d slots=1
expect "upstream with too few slots" 400 '.message | type == "string"'
req GET /upstreams/backend.svc
expect "GET /upstreams/{name}" 200 '.id == "'"$UPSTREAM"'"'
req PATCH /upstreams/backend.svc -d slots=20
expect "PATCH slots alone (Kong: the stored orderlist)" 400 \
  '. == {"message": "size mismatch between '"'slots'"' and '"'orderlist'"'"}'
req PATCH /upstreams/backend.svc -d name=backend2.svc
expect "PATCH /upstreams/{name}" 200 '.name == "backend2.svc"' '.slots == 100'
req PATCH "/upstreams/$UPSTREAM" -d name=backend.svc
expect "PATCH /upstreams/{id}" 200 '.name == "backend.svc"'
req POST /upstreams/backend.svc/targets -d target=10.0.0.1:80
expect "POST target" 201 '.target == "10.0.0.1:80"' '.upstream_id == "'"$UPSTREAM"'"' '.weight == 100'
req POST /upstreams/backend.svc/targets -d target=10.0.0.2:80 -d weight=50
expect "POST second target" 201 '.weight == 50'
req POST "/upstreams/$UPSTREAM/targets" -d target=10.0.0.3
expect "POST target without port" 201 '.target == "10.0.0.3:8000"'
req POST /upstreams/backend.svc/targets -d target=10.0.0.4:80 -d weight=-1
expect "POST target bad weight" 400
req GET /upstreams/backend.svc/targets
expect "GET targets" 200 '.total == 3'
req GET /upstreams/backend.svc/targets/active
expect "GET active targets" 200 '.total == 3' '.data | length == 3'
req DELETE /upstreams/backend.svc/targets/10.0.0.1:80
expect "DELETE target" 204
req GET /upstreams/backend.svc/targets/active
expect "active after delete" 200 '.total == 2' '[.data[].target] | index("10.0.0.1:80") == null'
req DELETE /upstreams/backend.svc/targets/10.9.9.9:80
expect "DELETE unknown target" 404
req GET /upstreams/backend.svc/targets/10.0.0.2:80
expect "GET on a target element" 405
req DELETE /upstreams/backend.svc
expect "DELETE upstream" 204
req GET "/upstreams/$UPSTREAM/targets"
expect "targets of a deleted upstream" 404

# ---- certificates and SNIs -----------------------------------------------------------------
req POST /certificates -d cert=CERT-PEM -d key=KEY-PEM -d snis=a.example.com,b.example.com
expect "POST /certificates with snis" 201 '.snis == ["a.example.com", "b.example.com"]' \
  '.cert == "CERT-PEM"'
CERT=$(val .id)
req POST /certificates -d cert=C2 -d key=K2 -d snis=b.example.com
expect "SNI already used" 409 '. == {"message": "entry already exists with name b.example.com"}'
req POST /certificates -d cert=C2 -d key=K2 -d snis=c.example.com,c.example.com
expect "SNI requested twice" 409 '. == {"message": "duplicate requested sni name c.example.com"}'
req POST /certificates -d cert=C3
expect "certificate without key" 400 '.key == "key is required"'
req GET /certificates
expect "GET /certificates" 200 '.total == 1' '.data[0].snis | sort == ["a.example.com", "b.example.com"]'
req GET /certificates/a.example.com
expect "GET /certificates/{sni}" 200 '.id == "'"$CERT"'"' '.snis | length == 2'
req GET "/certificates/$CERT"
expect "GET /certificates/{id}" 200 '.key == "KEY-PEM"'
req GET /certificates/unknown.example.com
expect "GET /certificates/{unknown sni}" 404
req PATCH /certificates/a.example.com -d cert=CERT2
expect "PATCH /certificates/{sni}" 200 '.cert == "CERT2"'
req GET /snis
expect "GET /snis" 200 '.total == 2'
req GET /snis/a.example.com
expect "GET /snis/{name}" 200 '.ssl_certificate_id == "'"$CERT"'"'
req POST /snis -d name=c.example.com -d ssl_certificate_id="$CERT"
expect "POST /snis" 201 '.name == "c.example.com"'
req POST /snis -d name=d.example.com -d ssl_certificate_id=00000000-0000-4000-8000-000000000000
expect "POST /snis unknown certificate" 404 '.ssl_certificate_id | test("does not exist")'
req DELETE /snis/c.example.com
expect "DELETE /snis/{name}" 204
req DELETE /certificates/a.example.com
expect "DELETE /certificates/{sni}" 204
req GET /snis
expect "SNIs go with their certificate" 200 '.total == 0'

# ---- deletes and cascades ------------------------------------------------------------------
req DELETE /apis/mockbin
expect "DELETE /apis/{name}" 204
[ -z "$BODY" ] && ok || ko "204 has no body"
req DELETE /apis/mockbin
expect "DELETE /apis/{name} again" 404 '. == {"message": "Not found"}'
req GET '/plugins?api_id='"$API_ID"
expect "plugins go with their API" 200 '.total == 0'

# ---- input integrity -----------------------------------------------------------------------
# Every request value becomes a JSON string, UTF-8 without NUL: anything else is a 400 that
# says why, and nothing reaches the database.
req GET /consumers
CONSUMERS=$(val .total)
req POST /consumers -d 'username=%FF%FEab'
expect "form value not UTF-8" 400 '.message | test("form body.*not valid UTF-8")'
req POST /consumers --data-binary $'username=\xff\xfe'
expect "raw form value not UTF-8" 400 '.message | test("not valid UTF-8")'
req POST /consumers -d '%FF=x'
expect "form key not UTF-8" 400 '.message | test("not valid UTF-8")'
printf 'username=ab\0cd' >"$TMP/nul-form"
req POST /consumers -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$TMP/nul-form"
expect "raw NUL in a form body (no truncation)" 400 '.message | test("form body.*NUL")'
req POST /consumers -d 'username=x%00y'
expect "%00 in a form value" 400 '.message | test("NUL")'
printf '\xff\xfeab' >"$TMP/bad-utf8"
req POST /consumers -F 'username=<'"$TMP/bad-utf8"
expect "multipart value not UTF-8" 400 '.message | test("multipart body.*not valid UTF-8")'
printf 'ab\0cd' >"$TMP/nul-part"
req POST /consumers -F 'username=<'"$TMP/nul-part"
expect "NUL in a multipart value" 400 '.message | test("multipart")'
# A long multipart value arrives in pieces that may split a UTF-8 sequence.
head -c 30000 /dev/zero | tr '\0' a >"$TMP/long-part"
printf '\xc3\xa9' >>"$TMP/long-part"
head -c 30000 /dev/zero | tr '\0' b >>"$TMP/long-part"
# (an acl group: not an indexed value, so 60 KB is within kdao's value limits)
req POST /consumers -d username=long-multipart
expect "consumer for a long multipart value" 201
req POST /consumers/long-multipart/acls -F 'group=<'"$TMP/long-part"
expect "long multipart value with UTF-8" 201 '.group | length == 60001'
req POST /consumers -F 'custom_id=<'"$TMP/long-part" -F username=long-key
expect "60 KB unique value: over the indexed-value limit" 400 \
  '.custom_id == "custom_id must be at most 2048 bytes (an indexed value)"'
req DELETE /consumers/long-multipart
expect "DELETE long-multipart" 204
req POST /consumers -H 'Content-Type: application/json' --data-binary $'{"username": "\xff"}'
expect "JSON body not UTF-8" 400 '.message | type == "string"'
req GET /consumers
expect "nothing was written" 200 ".total == $CONSUMERS"
req GET '/consumers?username=%FF'
expect "query value not UTF-8" 400 '.message | test("query string.*not valid UTF-8")'
req GET '/consumers?%FE%FF=1'
expect "query key not UTF-8" 400 '.message | test("query string")'
req GET '/consumers?username=a%00b'
expect "NUL in a query value" 400 '.message | test("query string.*NUL")'
req POST '/consumers?username=%FF' -d custom_id=x
expect "query value not UTF-8 on a write" 400 '.message | test("query string")'
for method in GET PATCH DELETE; do
  req "$method" /apis/%FF%FE -d retries=1
  expect "$method on a path segment not UTF-8" 400 '.message | test("URI path.*not valid UTF-8")'
  req "$method" /consumers/a%00b -d custom_id=1
  expect "$method on a path segment with NUL" 400 '.message | test("URI path.*NUL")'
done
req POST /consumers/%C3/acls -d group=x
expect "parent segment not UTF-8" 400 '.message | test("URI path")'
req GET '/apis?size=1' -H $'Host: h\xff\xfe'
expect "Host header not UTF-8 (next link)" 200 '.next | startswith("'"$BASE"'/apis?")'
req GET /consumers
expect "the API still answers" 200 ".total == $CONSUMERS"
grep -q 'out of memory' "$TMP/serve.err" && { STATUS=log BODY=$(cat "$TMP/serve.err"); ko "no 'out of memory' logged"; } || ok

# Two lengths for one body: 400, and the connection closes (what follows cannot be framed).
raw_request() { # raw_request TEXT: sends TEXT on a new connection, sets BODY to the answer
  exec 9<>/dev/tcp/127.0.0.1/"${BASE##*:}"
  printf '%b' "$1" >&9
  BODY=$(timeout 5 cat <&9 | tr -d '\r')
  exec 9>&-
  STATUS=$(head -n1 <<<"$BODY")
}
raw_request 'POST /consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\nContent-Length: 5\r\n\r\nusername=zzz'
grep -q '^HTTP/1.1 400' <<<"$BODY" && grep -qi '^Connection: close' <<<"$BODY" &&
  grep -q '^{"message":"Conflicting Content-Length headers"}$' <<<"$BODY" && ok ||
  ko "conflicting Content-Length headers"
raw_request 'POST /consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
grep -q '^HTTP/1.1 400' <<<"$BODY" && ok || ko "Content-Length with Transfer-Encoding"
req GET /consumers/zzz
expect "no consumer from an ambiguous body" 404

# ---- limits and robustness -----------------------------------------------------------------
head -c 70000 /dev/zero | tr '\0' a >"$TMP/big"
req POST /consumers -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$TMP/big"
expect "body over admin_max_body" 413 '.message | test("too large")'
req POST /consumers -H 'Content-Type: application/x-www-form-urlencoded' \
  -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big"
case "$STATUS" in 413 | 000) ok ;; *) ko "chunked body over the limit is refused" ;; esac
req GET / -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' b)"
expect "oversized headers are refused" 431 '. == {"message": "Request header fields too large"}'
req GET "/consumers?$(head -c 100000 /dev/zero | tr '\0' a)=1"
expect "100 KB query string: JSON 414" 414 '. == {"message": "URI too long"}'

# A NUL byte in the head would cut the line short (MHD reads lines as C strings): refused at
# once, whole, in JSON.
for head in '\0\r\n\r\n' 'GET /apis/a\0b HTTP/1.1\r\nHost: x\r\n\r\n' \
  'GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n' 'GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n'; do
  t0=$(date +%s%N)
  raw_request "$head"
  t1=$(date +%s%N)
  grep -q '^HTTP/1.1 400' <<<"$BODY" && grep -q '^{"message":"Bad request: NUL byte' <<<"$BODY" &&
    [ $(((t1 - t0) / 1000000)) -lt 1000 ] && ok || ko "NUL byte in the head ($head) answered at once"
done
raw_request 'POST /consumers HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\nabc'
grep -q '^{"message":"Bad request: invalid Content-Length"}$' <<<"$BODY" && ok ||
  ko "Content-Length that is not a number"

# 300 idle connections from one address cost that address its share, not the others theirs.
if command -v python3 >/dev/null; then
  FLOOD=$(python3 "$HERE/idle_flood.py" "${BASE##*:}" 127.0.0.2 300)
  BODY=$FLOOD STATUS=flood
  jq -e '.opened == 300 and .status == 200 and .seconds < 1' <<<"$FLOOD" >/dev/null && ok ||
    ko "a normal request answers within 1 s while 300 idle connections are held"
  jq -e '.answers["503"] >= 250' <<<"$FLOOD" >/dev/null && ok ||
    ko "connections over the per-client limit are refused at once with 503"
else
  echo "http_test: python3 not found, idle-connection flood not tested" >&2
fi

# A client that sends half a request and stalls must not hold up the others.
exec 7<>/dev/tcp/127.0.0.1/"${BASE##*:}"
printf 'POST /consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user' >&7
t0=$(date +%s%N)
req GET /consumers
t1=$(date +%s%N)
expect "served while another client stalls" 200
[ $(((t1 - t0) / 1000000)) -lt 2000 ] && ok || ko "a stalled client delayed others"
exec 7>&-

# A malformed request line gets an error, and the server stays up.
exec 8<>/dev/tcp/127.0.0.1/"${BASE##*:}"
printf 'NONSENSE\r\n\r\n' >&8
timeout 5 head -c 12 <&8 >"$TMP/raw" || true
exec 8>&-
# MHD answers 400 or just closes; either way nothing may come back as a success.
grep -q '^HTTP/1.1 2' "$TMP/raw" && { STATUS=raw BODY=$(cat "$TMP/raw"); ko "malformed request"; } || ok
req GET /
expect "still serving" 200

# Keep-alive: several requests on one connection.
STATUS=$(curl -sS -o /dev/null -o /dev/null -w '%{http_code}%{num_connects}\n' "$BASE/apis" \
  "$BASE/consumers" | tr '\n' ' ')
[ "$STATUS" = "2001 2000 " ] && ok || ko "keep-alive reuses the connection"

# Connections beyond admin_max_connections are refused at once with a 503; the idle ones
# that hold the slots are answered 408 and closed once admin_header_timeout (5 s) passes.
MAIN_PID=$SERVER_PID MAIN_BASE=$BASE
KDAO_ADMIN_MAX_CONNECTIONS=2 KDAO_ADMIN_TIMEOUT=2 start_server "$TMP/serve2.err"
exec 5<>/dev/tcp/127.0.0.1/"${BASE##*:}" 6<>/dev/tcp/127.0.0.1/"${BASE##*:}"
t0=$(date +%s%N)
req GET / --max-time 2
t1=$(date +%s%N)
expect "a connection over admin_max_connections gets a 503" 503 '.message | test("Too many connections")'
[ $(((t1 - t0) / 1000000)) -lt 1000 ] && ok || ko "the 503 comes at once"
IDLE=$(timeout 8 cat <&5 | tr -d '\r')
t2=$(date +%s%N)
exec 5>&- 6>&-
grep -q '^HTTP/1.1 408' <<<"$IDLE" && grep -q '^{"message":"Request timeout"}$' <<<"$IDLE" && ok ||
  { BODY=$IDLE; ko "an idle connection is answered 408"; }
[ $(((t2 - t0) / 1000000)) -lt 7000 ] && ok || ko "the head must come within the header timeout"
req GET /
expect "served again once idle connections are closed" 200
# A body sent a byte at a time must still come whole within admin_timeout (2 s here), or
# the connection closes (MHD cannot answer in the middle of a body).
SLOW_BODY='{"username":"slow"}'
exec 5<>/dev/tcp/127.0.0.1/"${BASE##*:}"
printf 'POST /consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' \
  ${#SLOW_BODY} >&5
for ((i = 0; i < ${#SLOW_BODY}; i++)); do
  sleep 0.15
  printf '%s' "${SLOW_BODY:i:1}" >&5 2>/dev/null
done
SLOW=$(timeout 3 cat <&5 | tr -d '\r')
exec 5>&-
[ -z "$SLOW" ] && ok || { BODY=$SLOW; ko "a body trickling past admin_timeout is cut off"; }
req GET /consumers/slow
expect "nothing created from a body that came too slowly" 404
kill -TERM "$SERVER_PID" && wait "$SERVER_PID"
SERVER_PID=$MAIN_PID BASE=$MAIN_BASE

# ---- start-up errors: JSON on stderr like every error of the CLI -----------------------------
# serve_error NAME KIND EXIT ARGS...: `kdao serve ARGS` fails with EXIT and one JSON error.
serve_error() {
  local name=$1 kind=$2 code=$3
  shift 3
  timeout 10 "$KDAO" serve "$@" >/dev/null 2>"$TMP/start.err"
  STATUS=$? BODY=$(cat "$TMP/start.err")
  [ "$STATUS" = "$code" ] && jq -e --arg k "$kind" '.kind == $k and (.message | type == "string")' \
    <<<"$BODY" >/dev/null && ok || ko "$name"
}
serve_error "port in use" io 1 --listen "127.0.0.1:${MAIN_BASE##*:}"
serve_error "address not local" io 1 --listen 192.0.2.1:0 --insecure
serve_error "host that does not resolve" config 1 --listen no-such-host.invalid:0
serve_error "malformed listen address" usage 2 --listen 8001
serve_error "unknown option" usage 2 --bogus

# ---- stop ----------------------------------------------------------------------------------
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
SERVER_PID=""
[ "$rc" = 0 ] && ok || { STATUS=$rc BODY=$(cat "$TMP/serve.err"); ko "SIGTERM stops the server with 0"; }
# Under ASan/UBSan the server's own report (leaks at exit included) lands in its stderr.
if grep -q 'Sanitizer\|runtime error' "$TMP"/serve*.err; then
  STATUS=$rc BODY=""
  ko "sanitizer report from kdao serve"
  cat "$TMP"/serve*.err >&2
else
  ok
fi

echo "http_$BACKEND: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
