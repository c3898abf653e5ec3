#!/usr/bin/env bash
# cli_test.sh KDAO_BINARY — end-to-end tests of the `kdao` command-line tool on a real SQLite
# database in a temporary directory: every command, exit statuses 0/1/2, the JSON shapes on
# stdout and stderr, auto-migration, paging, nested fields, configuration sources.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH_TO_KDAO" >&2
  exit 2
fi
KDAO=$(realpath "$1")
SRC_DIR=$(cd "$(dirname "$0")" && pwd)
command -v jq >/dev/null || { echo "cli_test.sh needs jq" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
# A PostgreSQL server to test against, when the caller exported one (`eval
# "$(scripts/postgres.sh env)"`): the role must be allowed to create databases.
PG_HOST=${KDAO_PG_HOST:-}
PG_PORT=${KDAO_PG_PORT:-5432}
PG_USER=${KDAO_PG_USER:-kong}
PG_PASSWORD=${KDAO_PG_PASSWORD:-}
# A Cassandra server likewise (`eval "$(scripts/cassandra.sh env)"`).
CASS_HOST=${KDAO_CASSANDRA_CONTACT_POINTS:-${KDAO_CASSANDRA_HOST:-}}
CASS_PORT=${KDAO_CASSANDRA_PORT:-9042}
# With KDAO_REQUIRE_ALL=1 a backend under test (KDAO_TEST_BACKENDS) without a server fails.
REQUIRE_ALL=${KDAO_REQUIRE_ALL:-0}
BACKENDS_UNDER_TEST=${KDAO_TEST_BACKENDS:-}
# The caller's KDAO_* settings must not leak into what is tested here.
while read -r var; do unset "$var"; done < <(env | sed -n 's/^\(KDAO_[A-Z0-9_]*\)=.*/\1/p')
# The keys, messages and docs table expected below are those of a build with every backend.
if ! "$KDAO" config --keys | grep -q '^| `database` | enum: `sqlite`, `postgres`, `cassandra` |'; then
  echo "cli_test.sh: this kdao is built without a backend; the test expects all three: skipped" >&2
  exit 77
fi

TESTS=0
FAILURES=0
OUT=""
ERR=""
RC=0

# run ARGS... — runs kdao; leaves stdout in $OUT, stderr in $ERR, the status in $RC.
# With CONF set, every command gets `-c $CONF` (the PostgreSQL and Cassandra parts).
CONF=""
run() {
  "$KDAO" ${CONF:+-c "$CONF"} "$@" >"$WORK/.out" 2>"$WORK/.err"
  RC=$?
  OUT=$(cat "$WORK/.out")
  ERR=$(cat "$WORK/.err")
  LAST="kdao ${CONF:+-c $CONF }$*"
}

fail() {
  FAILURES=$((FAILURES + 1))
  printf 'FAIL: %s\n  command: %s\n  status: %s\n  stdout: %s\n  stderr: %s\n' \
    "$1" "$LAST" "$RC" "$OUT" "$ERR" >&2
}

# expect_rc N DESCRIPTION
expect_rc() {
  TESTS=$((TESTS + 1))
  [ "$RC" -eq "$1" ] || fail "$2: expected exit status $1"
}

# expect_out JQ_FILTER DESCRIPTION — the filter must hold on stdout (jq -e).
expect_out() {
  TESTS=$((TESTS + 1))
  jq -e "$1" >/dev/null 2>&1 <<<"$OUT" || fail "$2: stdout fails '$1'"
}

# expect_err JQ_FILTER DESCRIPTION — the filter must hold on the LAST JSON document of stderr.
expect_err() {
  TESTS=$((TESTS + 1))
  jq -e -s "last | $1" >/dev/null 2>&1 <<<"$ERR" || fail "$2: stderr fails '$1'"
}

expect_not_found() {
  expect_rc 1 "$1"
  expect_err '. == {"message": "Not found"}' "$1"
}

expect_usage() {
  expect_rc 2 "$1"
  expect_err '.kind == "usage" and (.usage | type == "string")' "$1"
  [ -z "$2" ] || expect_err ".message | contains(\"$2\")" "$1"
}

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# ---- help, version, usage errors (no database needed) ----

run version
expect_rc 0 "version"
expect_out '.version | test("^[0-9]+\\.[0-9]+\\.[0-9]+$")' "version"

run --help
expect_rc 0 "--help"
TESTS=$((TESTS + 1))
grep -q '^usage: kdao' <<<"$OUT" || fail "--help prints the usage"

for cmd in migrations insert find list count update delete config serve version help; do
  run "$cmd" --help
  expect_rc 0 "$cmd --help"
  TESTS=$((TESTS + 1))
  grep -q "^usage: kdao $cmd" <<<"$OUT" || fail "$cmd --help prints its usage"
done
[ ! -e kdao.db ] || fail "help must not create the database"

run
expect_usage "no command" "missing command"
run frobnicate
expect_usage "unknown command" "unknown command 'frobnicate'"
run --bogus version
expect_usage "unknown global option" "unknown option '--bogus'"
run find apis --bogus
expect_usage "unknown command option" "unknown option '--bogus'"
run find
expect_usage "find without entity" "missing ENTITY"
run find apis
expect_usage "find without pk" "missing PK"
run list apis --size 0
expect_usage "list --size 0" "--size"
run list apis --size many
expect_usage "list --size many" "--size"
run migrations
expect_usage "migrations without subcommand" "missing subcommand"
run migrations sideways
expect_usage "migrations unknown subcommand" "unknown subcommand 'sideways'"
run migrations reset
expect_usage "reset without --yes" "--yes"
[ ! -e kdao.db ] || fail "usage errors must not create the database"

# ---- the seed example on a fresh directory: auto-migration ----

run insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com
expect_rc 0 "seed insert"
expect_out '.name == "mockbin" and .hosts == ["mockbin.com"]' "seed insert: stored fields"
expect_out '.upstream_url == "http://mockbin.com"' "seed insert: upstream_url"
expect_out ".id | test(\"$UUID_RE\")" "seed insert: generated uuid v4 id"
expect_out '.created_at | type == "number" and . > 1500000000000' "seed insert: created_at ms"
expect_out '.retries == 5 and .strip_uri == true' "seed insert: Kong's defaults"
expect_err '.note | test("migration")' "seed insert: auto-migration note on stderr"
TESTS=$((TESTS + 1))
[ -s kdao.db ] || fail "seed insert creates kdao.db"
API_ID=$(jq -r .id <<<"$OUT")

run insert apis name=mockbin hosts=other.com upstream_url=http://other.com
expect_rc 1 "duplicate name"
expect_err '.kind == "unique" and .db == "sqlite"' "duplicate name: unique error"
expect_err ".fields.name == \"already exists with value 'mockbin'\"" "duplicate name: Kong's message"
expect_err ".message == \"name=already exists with value 'mockbin'\"" "duplicate name: printable"
TESTS=$((TESTS + 1))
[ -z "$OUT" ] || fail "an error prints nothing on stdout"

run insert apis name=broken hosts=broken.com
expect_rc 1 "missing upstream_url"
expect_err '.kind == "schema" and .fields.upstream_url == "upstream_url is required"' \
  "missing upstream_url: schema error"

run insert apis name=nohosts upstream_url=http://x.com retries=lots
expect_rc 1 "retries not a number"
expect_err '.kind == "schema" and .fields.retries == "retries is not a number"' \
  "retries: Kong's type message"

run insert apis name
expect_usage "insert argument without =" "expected field=value"
run insert apis 'retries:={bad'
expect_usage "insert := with bad JSON" "invalid JSON"
run insert apis name=a name=b
expect_usage "insert repeated field" "second time"
run insert nope name=a
expect_usage "unknown entity" "unknown entity 'nope'"

# ---- find ----

run find apis "$API_ID"
expect_rc 0 "find by id"
expect_out ".id == \"$API_ID\" and .name == \"mockbin\"" "find by id: the row"
run find apis mockbin
expect_rc 0 "find by name"
expect_out ".id == \"$API_ID\"" "find by name: same row"
run find apis id="$API_ID"
expect_rc 0 "find by id=pair"
expect_out ".name == \"mockbin\"" "find by id=pair: the row"
run find apis 00000000-0000-4000-8000-000000000000
expect_not_found "find missing uuid"
run find apis nosuchname
expect_not_found "find missing name"
run find apis hosts=mockbin.com
expect_usage "find by non-key field" "not a primary-key field"

# ---- update ----

run update apis mockbin retries=3
expect_rc 0 "partial update"
expect_out '.retries == 3 and .upstream_url == "http://mockbin.com" and .name == "mockbin"' \
  "partial update keeps other fields"
run update apis "$API_ID" strip_uri:=false 'uris:=["/mock"]'
expect_rc 0 "update with := JSON values"
expect_out '.strip_uri == false and .uris == ["/mock"]' "update with :=: typed values"
run update apis mockbin
expect_usage "update without fields" "nothing to update"
run update apis ghost retries=1
expect_not_found "update missing row"
run update apis mockbin --full name=mockbin
expect_rc 1 "full update without required fields"
expect_err '.kind == "schema" and (.fields.upstream_url | tostring | contains("upstream_url is required"))' \
  "full update: required rules apply"
run update apis mockbin retries=9 --ttl=-1
expect_usage "update --ttl negative" "--ttl"

# ---- nested fields, composite keys ----

run insert plugins name=key-auth api_id="$API_ID" config.key_names=apikey,x-key
expect_rc 0 "plugin with dotted config"
expect_out '.config.key_names == ["apikey", "x-key"] and .config.hide_credentials == false' \
  "dotted config: coerced array and defaults"
PLUGIN_ID=$(jq -r .id <<<"$OUT")
run insert plugins name=key-auth api_id="$API_ID" config.key_names=other
expect_rc 1 "second key-auth on the same api"
expect_err '.kind == "unique"' "second key-auth: Kong's self_check (unique)"
run insert plugins name=key-auth config=x config.key_names=a
expect_usage "conflicting dotted fields" "conflicts"
run insert plugins name=acl 'config:={}' config.whitelist=a
expect_usage "dotted field into a whole JSON value" "conflicts"
run insert plugins name=acl config.whitelist=a 'config:={}'
expect_usage "whole JSON value after a dotted field" "second time"
run find plugins "$PLUGIN_ID"
expect_rc 0 "find plugin by id alone"
expect_out ".id == \"$PLUGIN_ID\" and .name == \"key-auth\"" "find plugin by id: the row"
run find plugins id="$PLUGIN_ID" name=key-auth
expect_rc 0 "find plugin by full primary key"
run find plugins id="$PLUGIN_ID" name=acl
expect_not_found "find plugin by wrong name"
run update plugins "$PLUGIN_ID" config.hide_credentials=true
expect_rc 0 "update nested config"
expect_out '.config.hide_credentials == true and .config.key_names == ["apikey", "x-key"]' \
  "update nested config: merged with the stored config"
run update plugins id="$PLUGIN_ID" name=key-auth enabled=false
expect_rc 0 "update by primary-key pairs"
expect_out '.enabled == false' "update by pairs: applied"

# ---- list, count, paging ----

for i in 1 2 3 4 5 6 7; do
  run insert consumers username="user$i" custom_id="c$i"
  expect_rc 0 "insert consumer $i"
done
run count consumers
expect_rc 0 "count"
expect_out '. == {"count": 7}' "count: all rows"
run count consumers username=user3
expect_out '. == {"count": 1}' "count with a filter"
run count consumers username=nobody
expect_out '. == {"count": 0}' "count with a filter matching nothing"
run list consumers custom_id=c5
expect_rc 0 "list with a filter"
expect_out '(.data | length) == 1 and .data[0].username == "user5" and (has("offset") | not)' \
  "list with a filter: one row, no offset"

SEEN=()
OFFSET=""
PAGES=0
while :; do
  if [ -z "$OFFSET" ]; then run list consumers --size 3; else run list consumers --size 3 --offset "$OFFSET"; fi
  expect_rc 0 "list page $((PAGES + 1))"
  PAGES=$((PAGES + 1))
  mapfile -t names < <(jq -r '.data[].username' <<<"$OUT")
  SEEN+=("${names[@]}")
  OFFSET=$(jq -r '.offset // empty' <<<"$OUT")
  [ -n "$OFFSET" ] && [ "$PAGES" -lt 10 ] || break
done
TESTS=$((TESTS + 1))
[ "$PAGES" -eq 3 ] || fail "7 rows by 3 make 3 pages, got $PAGES"
TESTS=$((TESTS + 1))
[ "$(printf '%s\n' "${SEEN[@]}" | sort -u | wc -l)" -eq 7 ] && [ "${#SEEN[@]}" -eq 7 ] ||
  fail "paging visits every row once: ${SEEN[*]}"
run list consumers --offset 'not-a-token!'
expect_rc 1 "malformed offset"
expect_err '.kind == "schema"' "malformed offset: schema error"

# ---- delete (with cascade) ----

run delete plugins "$PLUGIN_ID"
expect_rc 0 "delete plugin"
expect_out ".id == \"$PLUGIN_ID\"" "delete prints the deleted row"
run delete plugins "$PLUGIN_ID"
expect_not_found "delete it again"
run insert plugins name=key-auth api_id="$API_ID"
expect_rc 0 "re-add a plugin to the api"
run delete apis mockbin
expect_rc 0 "delete api by name"
expect_out '.name == "mockbin"' "delete api: the row"
run count plugins
expect_out '. == {"count": 0}' "delete api cascades to its plugins"
run find apis mockbin
expect_not_found "find deleted api"

# ---- ttl ----

run insert consumers username=ephemeral --ttl 1
expect_rc 0 "insert with --ttl"
sleep 2.2
run find consumers ephemeral
expect_not_found "expired row is gone"

# ---- migrations ----

run migrations list
expect_rc 0 "migrations list"
expect_out '(.core | length) > 0 and (.core | all(type == "string"))' "migrations list: core names"
run migrations reset --yes
expect_rc 0 "migrations reset --yes"
run migrations list
expect_rc 0 "migrations list after reset"
expect_out '. == {}' "migrations list after reset: empty"
run migrations up
expect_rc 0 "migrations up"
expect_out '(.ran.core | length) > 0' "migrations up: what ran"
run migrations up
expect_rc 0 "migrations up again"
expect_out '.ran == {}' "migrations up again: nothing to run"
run count apis
expect_out '. == {"count": 0}' "tables are empty after reset"
TESTS=$((TESTS + 1))
[ -z "$ERR" ] || fail "no note when nothing is pending"

# ---- configuration ----

run config
expect_rc 0 "config"
expect_out '.database == "sqlite" and .pg_port == 5432 and .pg_ssl == false' "config: typed defaults"
expect_out '.pg_password == null' "config: unset secret"

KDAO_PG_PASSWORD=hunter2 run config
expect_out '.pg_password == "******"' "config: secret from the environment is masked"
TESTS=$((TESTS + 1))
! grep -q hunter2 <<<"$OUT$ERR" || fail "config never prints a secret"

cat >kdao.conf <<'EOF'
# a kong.conf-style file
pg_port = 6543   # a comment
pg_user = ad\#min
sqlite_path = other.db
EOF
run -c kdao.conf config
expect_out '.pg_port == 6543 and .pg_user == "ad#min" and .sqlite_path == "other.db"' \
  "config from -c FILE"
KDAO_PG_PORT=7000 run config -c kdao.conf
expect_out '.pg_port == 7000' "environment overrides the file (-c after the command)"
run -c kdao.conf --plugins-dir /tmp/plugins config
expect_out '.plugins_dir == "/tmp/plugins"' "--plugins-dir"
run -c kdao.conf insert consumers username=elsewhere
expect_rc 0 "insert into the configured sqlite_path"
TESTS=$((TESTS + 1))
[ -s other.db ] || fail "sqlite_path from the file is used"

printf 'pg_port = 1\npg_hots = x\n' >bad.conf
run -c bad.conf config
expect_rc 1 "unknown key in file"
expect_err '.kind == "config" and (.message | contains("bad.conf:2")) and (.message | contains("pg_hots"))' \
  "unknown key: file, line and key"
KDAO_PG_SSL=yes run config
expect_rc 1 "bad boolean in the environment"
expect_err ".message | contains(\"pg_ssl is not a boolean: 'yes'\")" "bad boolean: message"
KDAO_CASSANDRA_LB_POLICY=DCAwareRoundRobin run config
expect_rc 1 "DCAware without a local data center"
expect_err ".message == \"must specify 'cassandra_local_datacenter' when DCAwareRoundRobin policy is in use\"" \
  "DCAware: Kong's message"
run -c missing.conf config
expect_rc 1 "missing config file"
expect_err '.kind == "io"' "missing config file: io error"

run config --keys
expect_rc 0 "config --keys"
TESTS=$((TESTS + 1))
grep -q '^| `database` | enum: `sqlite`, `postgres`, `cassandra` | `sqlite` | `KDAO_DATABASE` |' <<<"$OUT" ||
  fail "config --keys prints the Markdown table"
# docs/configuration.md pastes that table: it must not drift from the code.
DOC="$SRC_DIR/../../docs/configuration.md"
if [ -f "$DOC" ]; then
  TESTS=$((TESTS + 1))
  printf '%s\n' "$OUT" >keys.md
  [ "$(tail -n "$(wc -l <keys.md)" "$DOC")" = "$OUT" ] ||
    fail "docs/configuration.md ends with the output of 'kdao config --keys' (regenerate it)"
fi

# ---- PostgreSQL: never migrated behind the user's back ----

if [ -n "$PG_HOST" ] && command -v psql >/dev/null; then
  PG_DB="kdao_cli_test_$$"
  pg_admin() {
    PGPASSWORD="$PG_PASSWORD" psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
      -qAtc "$1" >/dev/null 2>&1
  }
  if pg_admin "CREATE DATABASE $PG_DB"; then
    trap 'pg_admin "DROP DATABASE IF EXISTS $PG_DB"; rm -rf "$WORK"' EXIT
    # Kong's keys in a kong.conf-style file, as a user would keep them (`-c pg.conf`).
    printf 'database = postgres\npg_host = %s\npg_port = %s\npg_user = %s\npg_password = %s\npg_database = %s\n' \
      "$PG_HOST" "$PG_PORT" "$PG_USER" "$PG_PASSWORD" "$PG_DB" >pg.conf
    CONF=pg.conf
    run count apis
    expect_rc 1 "postgres: pending migrations refused"
    expect_err ".kind == \"db\" and .db == \"postgres\" and .message == \"database needs migrations: run 'kdao migrations up'\"" \
      "postgres: the refusal says what to run"
    run migrations up
    expect_rc 0 "postgres: migrations up"
    expect_out '.ran.core | index("2015-01-12-175310_skeleton") != null' \
      "postgres: Kong's core migration names"
    run insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com
    expect_rc 0 "postgres: seed insert"
    expect_out ".id | test(\"$UUID_RE\")" "postgres: generated id"
    run insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com
    expect_rc 1 "postgres: duplicate name"
    expect_err ".kind == \"unique\" and .db == \"postgres\" and .fields.name == \"already exists with value 'mockbin'\"" \
      "postgres: unique error"
    run find apis mockbin
    expect_rc 0 "postgres: find by name"
    run migrations reset --yes
    expect_rc 0 "postgres: reset"
    expect_out ".reset.name == \"$PG_DB\"" "postgres: reset names the database"
  else
    echo "cli_test.sh: could not create a PostgreSQL database on $PG_HOST:$PG_PORT, skipping" >&2
  fi
else
  echo "cli_test.sh: no KDAO_PG_HOST (scripts/postgres.sh env) or psql: PostgreSQL part skipped" >&2
  if [ "$REQUIRE_ALL" = 1 ] && [[ " $BACKENDS_UNDER_TEST " == *" postgres "* ]]; then
    FAILURES=$((FAILURES + 1))
    echo "FAIL: KDAO_REQUIRE_ALL=1 but no PostgreSQL server" >&2
  fi
fi

# ---- Cassandra: the seed's example with `database = cassandra` ----

if [ -n "$CASS_HOST" ]; then
  KS="kdao_cli_test_$$"
  printf 'database = cassandra\ncassandra_contact_points = %s\ncassandra_port = %s\ncassandra_keyspace = %s\n' \
    "$CASS_HOST" "$CASS_PORT" "$KS" >cassandra.conf
  CONF=cassandra.conf
  run migrations up
  expect_rc 0 "cassandra: migrations up"
  expect_out '.ran.core | index("2015-01-12-175310_skeleton") != null' \
    "cassandra: Kong's core migration names"
  run insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com
  expect_rc 0 "cassandra: seed insert"
  expect_out "(.id | test(\"$UUID_RE\")) and .name == \"mockbin\"" "cassandra: stored API with its id"
  run insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com
  expect_rc 1 "cassandra: duplicate name"
  expect_err ".kind == \"unique\" and .db == \"cassandra\" and .fields.name == \"already exists with value 'mockbin'\"" \
    "cassandra: unique error"
  run find apis mockbin
  expect_rc 0 "cassandra: find by name"
  run migrations reset --yes
  expect_rc 0 "cassandra: reset"
  # The keyspace itself stays (as Kong leaves it); drop it so runs do not pile up.
  if command -v cqlsh >/dev/null; then cqlsh "$CASS_HOST" "$CASS_PORT" -e "DROP KEYSPACE $KS" >/dev/null 2>&1; fi
else
  echo "cli_test.sh: no KDAO_CASSANDRA_CONTACT_POINTS: Cassandra part skipped" >&2
  if [ "$REQUIRE_ALL" = 1 ] && [[ " $BACKENDS_UNDER_TEST " == *" cassandra "* ]]; then
    FAILURES=$((FAILURES + 1))
    echo "FAIL: KDAO_REQUIRE_ALL=1 but no Cassandra server" >&2
  fi
fi

echo "cli_test.sh: $TESTS checks, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
