#!/usr/bin/env bash
# `make test-cluster`: kdao on a three-node Cassandra cluster that loses a node mid-run.
#
# Starts nodes on 127.0.0.1..3 (scripts/cassandra.sh start 3, in a run directory of its own),
# builds tests/cassandra/cluster_check.c and runs it: a keyspace with replication factor 3,
# then rounds of insert / find / update / find_all / count / page at consistency ONE; after
# round KILL_AFTER the third node is killed (SIGKILL, as a crash), and every later operation
# must still succeed. The nodes are stopped whatever happens.
#
# Knobs: KDAO_BUILD_DIR (default build), KDAO_CLUSTER_ROUNDS (default 200),
# KDAO_CLUSTER_KILL_AFTER (default 80). Needs 127.0.0.1:9042 free: stop a single-node server
# of scripts/cassandra.sh first (make test stops its own).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${KDAO_BUILD_DIR:-build}"
ROUNDS="${KDAO_CLUSTER_ROUNDS:-200}"
KILL_AFTER="${KDAO_CLUSTER_KILL_AFTER:-80}"
export KDAO_CASSANDRA_DIR="${KDAO_CLUSTER_DIR:-/tmp/kdao-cassandra-cluster}"

if (exec 3<>/dev/tcp/127.0.0.1/9042) 2>/dev/null; then
  echo "test-cluster.sh: 127.0.0.1:9042 is taken; stop that server first (scripts/cassandra.sh stop)" >&2
  exit 1
fi

t0=$(date +%s)
cleanup() { bash scripts/cassandra.sh stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Build while the nodes come up.
bash scripts/cassandra.sh start 3 > /tmp/kdao-cluster-start.log 2>&1 &
start_pid=$!
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target cassandra_cluster_check -j2 >/dev/null
if ! wait "$start_pid"; then
  tail -40 /tmp/kdao-cluster-start.log >&2
  echo "test-cluster.sh: the cluster did not start" >&2
  exit 1
fi

export KDAO_CASSANDRA_CONTACT_POINTS=127.0.0.1,127.0.0.2,127.0.0.3
export KDAO_CASSANDRA_PORT=9042
victim=$(cat "$KDAO_CASSANDRA_DIR/node3/pid")
"$BUILD/tests/cassandra/cassandra_cluster_check" "$ROUNDS" "$KILL_AFTER" \
  "kill -9 $victim && echo 'test-cluster.sh: killed node3 (pid $victim)'"
echo "test-cluster.sh: passed in $(( $(date +%s) - t0 ))s" >&2
