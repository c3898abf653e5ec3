#!/bin/sh
# Runs the Lua specs (busted under LuaJIT) against one backend:
#
#   tests/lua/run.sh sqlite|postgres|cassandra [busted args...]
#
# KDAO_LUA_CPATH names the directory holding kdao.so (CTest sets it; default: build/lua);
# KDAO_LUA_INTERP the interpreter it was built for (default: luajit).
# PostgreSQL and Cassandra read the C suite's settings (KDAO_PG_HOST, KDAO_PG_PORT,
# KDAO_PG_USER, KDAO_PG_DATABASE, KDAO_PG_PASSWORD; KDAO_CASSANDRA_HOST or
# KDAO_CASSANDRA_CONTACT_POINTS, KDAO_CASSANDRA_PORT). Without them the run is skipped
# (exit 77) unless KDAO_REQUIRE_ALL=1.
set -eu

backend=${1:-sqlite}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
cpath=${KDAO_LUA_CPATH:-$src/build/lua}

skip() {
  if [ "${KDAO_REQUIRE_ALL:-0}" = 1 ]; then
    echo "lua_$backend: $1 (KDAO_REQUIRE_ALL=1: failing)" >&2
    exit 1
  fi
  echo "lua_$backend: $1: skipped"
  exit 77
}

case $backend in
sqlite) ;;
postgres) [ -n "${KDAO_PG_HOST:-}" ] || skip "KDAO_PG_HOST is not set" ;;
cassandra)
  if [ -z "${KDAO_CASSANDRA_CONTACT_POINTS:-}" ]; then
    [ -n "${KDAO_CASSANDRA_HOST:-}" ] || skip "KDAO_CASSANDRA_HOST is not set"
    KDAO_CASSANDRA_CONTACT_POINTS=$KDAO_CASSANDRA_HOST
    export KDAO_CASSANDRA_CONTACT_POINTS
  fi
  ;;
*) echo "usage: $0 sqlite|postgres|cassandra [busted args]" >&2; exit 2 ;;
esac

interp=${KDAO_LUA_INTERP:-luajit}
command -v "$interp" >/dev/null || skip "$interp is not installed"
busted=$(command -v busted) || skip "busted is not installed"
[ -f "$cpath/kdao.so" ] || { echo "kdao.so not found in $cpath" >&2; exit 1; }

# A sanitizer build (-DKDAO_SANITIZE=ON) links kdao.so with ASan/UBSan, whose runtimes must
# be loaded before the interpreter starts.
sanitizers=$(ldd "$cpath/kdao.so" 2>/dev/null | awk '/lib(asan|ubsan)\.so/ {print $3}' | tr '\n' ' ')
preload=${LD_PRELOAD:-}
[ -n "$sanitizers" ] && preload="$sanitizers$preload"
# Leak checking stays with the C suites, which run the same library under LeakSanitizer:
# inside the LuaJIT interpreter LSan's exit-time tracer crashed intermittently (signal 11
# while stopping the world), failing runs whose every spec had passed. Memory errors are
# still caught here (ASan/UBSan stay on).
if [ -n "$sanitizers" ]; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# PostgreSQL: a schema of our own in the configured database, so that the C suite sharing
# the server is not disturbed (libpq takes the search_path from PGOPTIONS).
if [ "$backend" = postgres ] && command -v psql >/dev/null; then
  schema=kdao_lua_spec
  if PGPASSWORD=${KDAO_PG_PASSWORD:-} psql -qAt -h "$KDAO_PG_HOST" -p "${KDAO_PG_PORT:-5432}" \
      -U "${KDAO_PG_USER:-kong}" -d "${KDAO_PG_DATABASE:-kong}" \
      -c "CREATE SCHEMA IF NOT EXISTS $schema" >/dev/null 2>&1; then
    export PGOPTIONS="-c search_path=$schema"
  fi
fi

export KDAO_TEST_BACKEND=$backend
export KDAO_TEST_TMPDIR=$work
# The Kong compatibility modules, the helpers and the test plugin come from the tree.
export LUA_PATH="$src/lua/?.lua;$src/lua/?/init.lua;$here/?.lua;$here/fixtures/?.lua;$src/bench/?.lua;;"
export LUA_CPATH="$cpath/?.so;;"

cd "$here"
# busted's script names `lua` (5.2 on Debian); kdao.so is built for LuaJIT (or 5.1).
# (the sanitizer runtimes are preloaded into the interpreter only, not into every tool)
env ${preload:+LD_PRELOAD="$preload"} "$interp" "$busted" --pattern=_spec "$@" .
