#!/usr/bin/env bash
# `make bench`: every benchmark, each measuring kdao against the raw driver (or the C API)
# in the same run, so the ratios hold whatever the machine's speed. Starts the servers it
# needs (and stops the ones it started). Output: stdout and build/bench-results.txt.
#
#   scripts/bench.sh [sqlite] [postgres] [lua] [http] [cassandra]     (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${*:-sqlite postgres lua http cassandra}"
want() { [[ " $WHICH " == *" $1 "* ]]; }
OUT=build/bench-results.txt
mkdir -p build
: > "$OUT"
log() { echo "$@" | tee -a "$OUT"; }

PG_OURS=0; CASS_OURS=0
cleanup() {
  set +e
  [ "$PG_OURS" = 1 ] && bash scripts/postgres.sh stop >/dev/null 2>&1
  [ "$CASS_OURS" = 1 ] && bash scripts/cassandra.sh stop >/dev/null 2>&1
}
trap cleanup EXIT
if want postgres || want lua || want http; then
  bash scripts/postgres.sh status >/dev/null 2>&1 || PG_OURS=1
  eval "$(bash scripts/postgres.sh start)" >/dev/null
fi

targets=(kdao_cli bench_sqlite bench_pg)
[ -f lua/CMakeLists.txt ] && targets+=(kdao_lua kdao_bench_lua)
cmake --build build -j2 --target "${targets[@]}" >/dev/null 2>&1 || cmake --build build -j2 >/dev/null

log "# kdao benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -m)"
if want sqlite; then
  log "## SQLite: kdao vs raw sqlite3 (build/bench/bench_sqlite 20000)"
  ./build/bench/bench_sqlite 20000 2>&1 | tee -a "$OUT"
  log "## SQLite: 100 000 apis paged through the CLI (bench/cli_paging.sh)"
  bash bench/cli_paging.sh build/kdao 100000 2>&1 | tee -a "$OUT"
fi
if want postgres; then
  log "## PostgreSQL: kdao vs raw libpq (build/tests/postgres/bench_pg)"
  ./build/tests/postgres/bench_pg 2>&1 | tee -a "$OUT"
fi
if want lua; then
  log "## Lua binding vs C API (luajit bench/lua_bench.lua sqlite postgres)"
  KDAO_LUA_CPATH=build/lua luajit bench/lua_bench.lua sqlite postgres 2>&1 | tee -a "$OUT"
fi
if want http; then
  log "## Admin API under wrk (bench/http_load.sh), SQLite"
  bash bench/http_load.sh build/kdao 2>&1 | tee -a "$OUT"
  log "## Admin API under wrk (bench/http_load.sh), PostgreSQL"
  KDAO_DATABASE=postgres bash bench/http_load.sh build/kdao 2>&1 | tee -a "$OUT"
fi
if want cassandra && [ -f scripts/bench-cassandra.sh ]; then
  bash scripts/cassandra.sh status 2>/dev/null | grep -q running || CASS_OURS=1
  bash scripts/cassandra.sh start >/dev/null
  log "## Cassandra: kdao vs the DataStax Python driver (scripts/bench-cassandra.sh)"
  bash scripts/bench-cassandra.sh 2>&1 | tee -a "$OUT"
fi
log "# results in $OUT"
