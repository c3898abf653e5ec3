#!/usr/bin/env bash
# `make test`: builds kdao twice (normal, and with ASan+UBSan), starts throw-away PostgreSQL
# and Cassandra servers, runs every CTest suite against them in both builds, and stops the
# servers whatever happens. KDAO_REQUIRE_ALL=1 makes a suite that finds no server fail
# instead of skipping, so a green run means every backend was really exercised.
#
# Knobs: KDAO_TEST_BACKENDS (default "sqlite postgres cassandra"), KDAO_TEST_ASAN (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BACKENDS="${KDAO_TEST_BACKENDS:-sqlite postgres cassandra}"
ASAN="${KDAO_TEST_ASAN:-1}"
has() { [[ " $BACKENDS " == *" $1 "* ]]; }
[ -f src/backends/cassandra.c ] || BACKENDS="${BACKENDS/cassandra/}"

# Servers that were already running (a developer's) are used and left running; the ones
# this script starts, it stops.
PG_OURS=0; CASS_OURS=0
has postgres && ! bash scripts/postgres.sh status >/dev/null 2>&1 && PG_OURS=1
has cassandra && ! bash scripts/cassandra.sh status 2>/dev/null | grep -q running && CASS_OURS=1
cleanup() {
  set +e
  [ "$PG_OURS" = 1 ] && bash scripts/postgres.sh stop >/dev/null 2>&1
  [ "$CASS_OURS" = 1 ] && bash scripts/cassandra.sh stop >/dev/null 2>&1
}
trap cleanup EXIT

t0=$(date +%s)
# Cassandra takes the longest to come up: start it first, build while it boots.
if has cassandra; then
  bash scripts/cassandra.sh start > /tmp/kdao-cassandra-start.log 2>&1 &
  CASS_PID=$!
fi
if has postgres; then
  eval "$(bash scripts/postgres.sh start)"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
if [ "$ASAN" = 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKDAO_SANITIZE=ON >/dev/null
  cmake --build build-asan -j2
fi

if has cassandra; then
  if ! wait "$CASS_PID"; then
    tail -40 /tmp/kdao-cassandra-start.log >&2
    echo "test.sh: Cassandra did not start" >&2
    exit 1
  fi
  eval "$(bash scripts/cassandra.sh env)"
  export KDAO_CASSANDRA_CONTACT_POINTS="$KDAO_CASSANDRA_HOST"
  export KDAO_CASSANDRA_KEYSPACE="${KDAO_CASSANDRA_KEYSPACE:-kdao_test}"
fi
export KDAO_REQUIRE_ALL=1
export KDAO_TEST_BACKENDS="$BACKENDS"

# Tests of backends not under test are excluded by name (integration_postgres, lua_cassandra...).
exclude=""
for b in sqlite postgres cassandra; do
  has "$b" || exclude="${exclude:+$exclude|}_$b\$"
done
ctest_args=(--output-on-failure --timeout 900)
[ -n "$exclude" ] && ctest_args+=(-E "$exclude")

echo "== tests (build/) on: $BACKENDS" >&2
ctest --test-dir build "${ctest_args[@]}"
if [ "$ASAN" = 1 ]; then
  echo "== tests under ASan+UBSan (build-asan/)" >&2
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --test-dir build-asan "${ctest_args[@]}"
fi
echo "test.sh: all suites passed in $(( $(date +%s) - t0 ))s" >&2
