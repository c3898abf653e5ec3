#!/usr/bin/env bash
# `make test-cluster`: kdao on a three-node Cassandra cluster that loses nodes mid-run.
#
# Starts three nodes (scripts/cassandra.sh start 3, in a run directory of its own), builds
# tests/cassandra/cluster_check.c and runs it: a keyspace with replication factor 3, then
# rounds of insert / find / update / find_all / count / page at QUORUM; after round KILL_AFTER
# the third node is killed (SIGKILL, as a crash) and every later call must still succeed; every
# acknowledged insert is then read back and the latencies reported; finally the second node is
# killed too and the first call must be a fast Unavailable. The nodes are stopped whatever
# happens.
#
# Knobs: KDAO_BUILD_DIR (default build), KDAO_CLUSTER_ROUNDS (default 200),
# KDAO_CLUSTER_KILL_AFTER (default 80), KDAO_CLUSTER_CONSISTENCY (default QUORUM),
# KDAO_CLUSTER_DIR (run directory, default /tmp/kdao-cassandra-cluster), KDAO_CASSANDRA_BASE_ADDR
# (nodes on this address + 1..3; default 127.0.0.0: 127.0.0.1..3), KDAO_CASSANDRA_TIMEOUT
# (cassandra_timeout, default 5000). The first node's address:9042 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${KDAO_BUILD_DIR:-build}"
ROUNDS="${KDAO_CLUSTER_ROUNDS:-200}"
KILL_AFTER="${KDAO_CLUSTER_KILL_AFTER:-80}"
export KDAO_CASSANDRA_DIR="${KDAO_CLUSTER_DIR:-/tmp/kdao-cassandra-cluster}"
export KDAO_CASSANDRA_BASE_ADDR="${KDAO_CASSANDRA_BASE_ADDR:-127.0.0.0}"
prefix="${KDAO_CASSANDRA_BASE_ADDR%.*}"
base="${KDAO_CASSANDRA_BASE_ADDR##*.}"
addr() { echo "$prefix.$((base + $1))"; }

if (exec 3<>"/dev/tcp/$(addr 1)/9042") 2>/dev/null && ! bash scripts/cassandra.sh status | grep -q running; then
  echo "test-cluster.sh: $(addr 1):9042 is taken; stop that server first or set KDAO_CASSANDRA_BASE_ADDR" >&2
  exit 1
fi

t0=$(date +%s)
cleanup() { bash scripts/cassandra.sh stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Build while the nodes come up.
log="$KDAO_CASSANDRA_DIR.start.log"
bash scripts/cassandra.sh start 3 > "$log" 2>&1 &
start_pid=$!
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target cassandra_cluster_check -j2 >/dev/null
if ! wait "$start_pid"; then
  tail -40 "$log" >&2
  echo "test-cluster.sh: the cluster did not start" >&2
  exit 1
fi

export KDAO_CASSANDRA_CONTACT_POINTS="$(addr 1),$(addr 2),$(addr 3)"
export KDAO_CASSANDRA_PORT=9042
# A kill returns before the process is gone: wait for it, so "after the kill" means it.
kill_cmd() { # $1 = node number
  local pid
  pid=$(cat "$KDAO_CASSANDRA_DIR/node$1/pid")
  echo "kill -9 $pid && while kill -0 $pid 2>/dev/null; do sleep 0.05; done &&" \
    "echo 'test-cluster.sh: killed node$1 ($(addr "$1"), pid $pid)'"
}
"$BUILD/tests/cassandra/cassandra_cluster_check" "$ROUNDS" "$KILL_AFTER" "$(kill_cmd 3)" "$(kill_cmd 2)"
echo "test-cluster.sh: passed in $(( $(date +%s) - t0 ))s" >&2
