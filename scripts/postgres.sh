#!/usr/bin/env bash
# Start and stop a throw-away PostgreSQL server for kdao's tests.
#
#   scripts/postgres.sh start     install PostgreSQL if needed, initdb, start, create role/db
#   scripts/postgres.sh stop      stop the server and delete its data directory
#   scripts/postgres.sh restart   fast-restart the running server (data kept): every client
#                                 connection is terminated, as in a real server restart
#   scripts/postgres.sh halt      stop the server but keep its data (`start` resumes it)
#   scripts/postgres.sh env       print the shell exports the tests read
#   scripts/postgres.sh status    say whether the server runs
#
# Every command is idempotent: `start` on a running server only prints the exports, `stop`
# on a stopped one does nothing. The cluster lives in a mktemp directory owned by the
# `postgres` user (when run as root) and listens on 127.0.0.1:$PORT and on a unix socket in
# that directory only, so it never collides with a system server.
#
# Environment knobs:
#   KDAO_PG_TEST_PORT   TCP port (default 55432)
#   KDAO_PG_STATE       file remembering the data directory (default /tmp/kdao-postgres.state)
#   KDAO_PG_ENV_FILE    where `start` writes the export lines (default /tmp/kdao-postgres.env)
set -euo pipefail

PORT="${KDAO_PG_TEST_PORT:-55432}"
STATE="${KDAO_PG_STATE:-/tmp/kdao-postgres.state}"
ENV_FILE="${KDAO_PG_ENV_FILE:-/tmp/kdao-postgres.env}"
DB_USER=kong
DB_PASSWORD=kong
DB_NAME=kong

die() { echo "postgres.sh: $*" >&2; exit 1; }

# The newest server binaries Debian installed, installing them first when absent.
find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    return 1
}

ensure_installed() {
    find_bindir >/dev/null && return
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and we are not root to install it"
    echo "postgres.sh: installing postgresql from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2 || die "apt-get install postgresql failed"
    find_bindir >/dev/null || die "postgresql installed but no initdb under /usr/lib/postgresql"
}

# Runs a command as the cluster owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

data_root() { [ -f "$STATE" ] && cat "$STATE" || true; }

is_running() {
    local root
    root="$(data_root)"
    [ -n "$root" ] && [ -d "$root/data" ] && as_owner "$(find_bindir)/pg_ctl" -D "$root/data" status >/dev/null 2>&1
}

print_env() {
    local root
    root="$(data_root)"
    [ -n "$root" ] || die "no server started (run: $0 start)"
    cat <<EOF
export KDAO_PG_HOST=127.0.0.1
export KDAO_PG_PORT=$PORT
export KDAO_PG_USER=$DB_USER
export KDAO_PG_PASSWORD=$DB_PASSWORD
export KDAO_PG_DATABASE=$DB_NAME
EOF
}

wait_ready() {
    local bin i
    bin="$(find_bindir)"
    for i in $(seq 1 100); do
        "$bin/pg_isready" -q -h "$(data_root)" -p "$PORT" && return 0
        sleep 0.1
    done
    die "server did not accept connections on port $PORT"
}

cmd_start() {
    if is_running; then
        print_env | tee "$ENV_FILE"
        return
    fi
    ensure_installed
    local bin root
    bin="$(find_bindir)"
    root="$(data_root)"
    if [ -z "$root" ] || [ ! -d "$root/data" ]; then
        root="$(mktemp -d /tmp/kdao-pg.XXXXXX)"
        chmod 755 "$root"
        [ "$(id -u)" = 0 ] && chown postgres: "$root"
        echo "$root" > "$STATE"
        # Trust on the private socket (for the admin steps below), passwords over TCP so the
        # tests exercise pg_password.
        as_owner "$bin/initdb" -D "$root/data" -U postgres -E UTF8 --no-locale \
            --auth-local=trust --auth-host=scram-sha-256 >"$root/initdb.log" 2>&1 \
            || die "initdb failed: $(tail -5 "$root/initdb.log")"
        cat >> "$root/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$root'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 64MB
logging_collector = off
lc_messages = 'C'
EOF
    fi
    as_owner "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 start >/dev/null \
        || die "server did not start: $(tail -5 "$root/server.log")"
    wait_ready
    as_owner "$bin/psql" -q -h "$root" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<EOF >/dev/null
SELECT 'CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD ''$DB_PASSWORD'''
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER')\gexec
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME')\gexec
EOF
    print_env | tee "$ENV_FILE"
}

cmd_stop() {
    local root
    root="$(data_root)"
    [ -n "$root" ] || return 0
    if [ -d "$root/data" ] && find_bindir >/dev/null; then
        as_owner "$(find_bindir)/pg_ctl" -D "$root/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$root" "$STATE" "$ENV_FILE"
}

cmd_halt() {
    is_running || return 0
    as_owner "$(find_bindir)/pg_ctl" -D "$(data_root)/data" -m fast -w stop >/dev/null
}

cmd_restart() {
    is_running || die "no server running (run: $0 start)"
    local root
    root="$(data_root)"
    as_owner "$(find_bindir)/pg_ctl" -D "$root/data" -l "$root/server.log" -m fast -w -t 60 restart >/dev/null \
        || die "restart failed: $(tail -5 "$root/server.log")"
    wait_ready
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_restart ;;
    halt) cmd_halt ;;
    env) print_env ;;
    status) if is_running; then echo "running on port $PORT ($(data_root))"; else echo "stopped"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|restart|halt|env|status" >&2; exit 2 ;;
esac
