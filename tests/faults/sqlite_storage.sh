#!/usr/bin/env bash
# SQLite on a full disk and on a read-only file system, through `kdao serve` and the CLI:
# a write that does not fit fails with a clear error (503 "The database is full...", the
# CLI's code "full") and leaves nothing behind, reads keep working, and writes work again
# once space is freed, without restarting kdao. On a file system mounted read-only, reads
# work and writes fail clearly (503 "The database is read-only...", code "read_only"),
# including for a database whose last writer was killed and left its WAL behind.
#
#   sqlite_storage.sh KDAO_BINARY
#
# The database lives on a 2 MB tmpfs mounted in a temporary directory and unmounted at the
# end: root only. Skips (77) when not root, when the mount fails, or without curl, jq or the
# admin API, unless KDAO_REQUIRE_ALL=1.
set -uo pipefail

KDAO=${1:?usage: sqlite_storage.sh KDAO_BINARY}
KDAO=$(cd "$(dirname "$KDAO")" && pwd)/$(basename "$KDAO")

skip() {
  echo "sqlite_storage: $*" >&2
  [ "${KDAO_REQUIRE_ALL:-0}" = 1 ] && exit 1
  exit 77
}

command -v curl >/dev/null || skip "curl not found"
command -v jq >/dev/null || skip "jq not found"
"$KDAO" serve --help >/dev/null 2>&1 || skip "this kdao has no admin API"
[ "$EUID" = 0 ] || skip "mounting a tmpfs needs root"

TMP=$(mktemp -d /tmp/kdao-storage.XXXXXX)
MNT=$TMP/mnt
mkdir "$MNT"
SERVER_PID=""
MOUNTED=0
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ "$MOUNTED" = 1 ] && umount "$MNT"
  rm -rf "$TMP"
}
trap cleanup EXIT
if ! mount -t tmpfs -o size=2m kdao-faults "$MNT" 2>"$TMP/mount.err"; then
  skip "cannot mount a tmpfs: $(cat "$TMP/mount.err")"
fi
MOUNTED=1
cd "$TMP"

export KDAO_DATABASE=sqlite KDAO_SQLITE_PATH="$MNT/kdao.db"
"$KDAO" migrations up >/dev/null || exit 1

FAILED=0
STATUS=""
BODY=""
ko() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $*" >&2
  echo "      status $STATUS, body: ${BODY:0:300}" >&2
}

start_server() {
  "$KDAO" serve --listen 127.0.0.1:0 2>"$TMP/serve.err" &
  SERVER_PID=$!
  BASE=""
  for _ in $(seq 100); do
    BASE=$(sed -n 's/^kdao admin API listening on \(http:[^ ]*\)$/\1/p' "$TMP/serve.err")
    [ -n "$BASE" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "sqlite_storage: kdao serve did not start:" >&2
  cat "$TMP/serve.err" >&2
  exit 1
}

stop_server() {
  kill "$SERVER_PID" && wait "$SERVER_PID"
  SERVER_PID=""
}

# req METHOD PATH [curl arguments...]: sets STATUS and BODY.
req() {
  local method=$1 path=$2
  shift 2
  STATUS=$(curl -s --max-time 10 -o "$TMP/body" -w '%{http_code}' -X "$method" "$BASE$path" "$@")
  BODY=$(cat "$TMP/body")
}

# expect NAME STATUS [JQ_CONDITION...]
expect() {
  local name=$1 status=$2 cond
  shift 2
  [ "$STATUS" = "$status" ] || { ko "$name: expected status $status"; return; }
  for cond in "$@"; do
    jq -e "$cond" >/dev/null 2>&1 <<<"$BODY" || { ko "$name: $cond"; return; }
  done
}

# cli_fails NAME CODE ARGS...: the CLI exits 1 with a db error of that portable code.
cli_fails() {
  local name=$1 code=$2 rc
  shift 2
  "$KDAO" "$@" >/dev/null 2>"$TMP/cli.err"
  rc=$?
  STATUS=$rc BODY=$(cat "$TMP/cli.err")
  [ "$rc" = 1 ] || { ko "$name: CLI exit $rc, expected 1"; return; }
  jq -e --arg c "$code" '.kind == "db" and .code == $c and (.message | length > 0)' \
    >/dev/null 2>&1 <<<"$BODY" || ko "$name: CLI error"
}

# ---- a full disk ----
start_server
# Leave room for a few rows only, so that the loop below reaches the limit quickly.
avail_kb=$(df -k --output=avail "$MNT" | tail -1)
dd if=/dev/zero of="$MNT/filler" bs=1k count=$((avail_kb - 160)) status=none ||
  { echo "sqlite_storage: could not write the filler file" >&2; exit 1; }
acked=()
full_name=""
for i in $(seq 500); do
  req POST /consumers -d "username=user-$i" -d "custom_id=$(printf 'c%.0s' $(seq 200))-$i"
  if [ "$STATUS" = 201 ]; then
    acked+=("$(jq -r .id <<<"$BODY")")
    continue
  fi
  full_name=user-$i
  break
done
[ -n "$full_name" ] || ko "500 inserts fitted in 160 KB: the disk never filled"
expect "write on a full disk" 503 '.message == "The database is full: writes are refused"'
grep -q "database or disk is full" "$TMP/serve.err" ||
  ko "kdao serve did not log SQLite's reason: $(tail -2 "$TMP/serve.err")"
[ "${#acked[@]}" -ge 1 ] || ko "no insert fitted before the disk was full"
echo "sqlite_storage: disk full after ${#acked[@]} rows" >&2

req GET "/consumers/$full_name"
expect "the failed write left nothing" 404
req GET /consumers
expect "reads on a full disk" 200 ".total == ${#acked[@]}"
for id in "${acked[@]}"; do
  req GET "/consumers/$id"
  expect "acknowledged row $id on a full disk" 200 ".id == \"$id\""
done
cli_fails "CLI insert on a full disk" full insert consumers username=cli-full \
  "custom_id=$(printf 'c%.0s' $(seq 1000))"
"$KDAO" count consumers >"$TMP/count" 2>&1 || ko "CLI count on a full disk: $(cat "$TMP/count")"

rm -f "$MNT/filler"
req POST /consumers -d "username=$full_name"
expect "a write once space is back, same kdao serve" 201 ".username == \"$full_name\""
acked+=("$(jq -r .id <<<"$BODY")")

# ---- a read-only file system (cleanly closed database) ----
stop_server
mount -o remount,ro "$MNT" || { echo "sqlite_storage: remount,ro failed" >&2; exit 1; }
start_server
req GET /consumers
expect "reads on a read-only mount" 200 ".total == ${#acked[@]}"
req GET "/consumers/${acked[0]}"
expect "find on a read-only mount" 200 ".id == \"${acked[0]}\""
ro='.message == "The database is read-only: writes are refused"'
req POST /consumers -d username=ro
expect "insert on a read-only mount" 503 "$ro"
req PATCH "/consumers/${acked[0]}" -d custom_id=changed
expect "update on a read-only mount" 503 "$ro"
req DELETE "/consumers/${acked[0]}"
expect "delete on a read-only mount" 503 "$ro"
req GET /consumers
expect "nothing changed on a read-only mount" 200 ".total == ${#acked[@]}"
cli_fails "CLI insert on a read-only mount" read_only insert consumers username=cli-ro
out=$("$KDAO" find consumers "id=${acked[0]}" 2>&1) && jq -e ".id == \"${acked[0]}\"" >/dev/null <<<"$out" ||
  { STATUS="" BODY=$out; ko "CLI find on a read-only mount"; }
stop_server

# ---- a read-only file system under a WAL its killed writer left behind ----
mount -o remount,rw "$MNT" || { echo "sqlite_storage: remount,rw failed" >&2; exit 1; }
start_server
req POST /consumers -d username=in-the-wal
expect "insert before the kill" 201
wal_id=$(jq -r .id <<<"$BODY")
# Quietly: bash reports a killed background job on its own stderr.
exec 3>&2 2>/dev/null
kill -9 "$SERVER_PID"
wait "$SERVER_PID"
exec 2>&3 3>&-
SERVER_PID=""
[ -s "$MNT/kdao.db-wal" ] || ko "the killed server left no WAL: the case below tests nothing"
mount -o remount,ro "$MNT" || { echo "sqlite_storage: remount,ro failed" >&2; exit 1; }
out=$("$KDAO" find consumers "id=$wal_id" 2>&1) && jq -e ".username == \"in-the-wal\"" >/dev/null <<<"$out" ||
  { STATUS="" BODY=$out; ko "CLI find of a row still in the WAL on a read-only mount"; }
cli_fails "CLI insert on a read-only mount with a WAL" read_only insert consumers username=cli-ro

if [ "$FAILED" != 0 ]; then
  echo "sqlite_storage: $FAILED failure(s); kdao serve's last log:" >&2
  tail -5 "$TMP/serve.err" >&2
  exit 1
fi
echo "sqlite_storage: ok" >&2
