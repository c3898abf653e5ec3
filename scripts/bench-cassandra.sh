#!/usr/bin/env bash
# kdao on Cassandra against the DataStax Python driver (python3-cassandra), same server, same
# table, same operations, one run. Needs a running server (scripts/cassandra.sh start).
#
#   scripts/bench-cassandra.sh [N]     N rows per operation (default 1000)
#
# Knobs: KDAO_BUILD_DIR (default build), KDAO_CASSANDRA_CONTACT_POINTS (default 127.0.0.1).
# Ratios are kdao's throughput over the driver's (1.00 = as fast as the driver). kdao's
# insert makes two lightweight transactions (unique reservation, row IF NOT EXISTS), its
# update and delete read the row first and take part in reservations: compare insert with
# the driver's insert_lwt for the cost of the client itself.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
BUILD="${KDAO_BUILD_DIR:-build}"
export KDAO_CASSANDRA_CONTACT_POINTS="${KDAO_CASSANDRA_CONTACT_POINTS:-127.0.0.1}"
/usr/bin/python3 -c 'import cassandra' 2>/dev/null ||
  { echo "bench-cassandra.sh: python3-cassandra missing (apt-get install python3-cassandra)" >&2; exit 1; }
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target bench_cassandra -j2 >/dev/null

kdao_out=$("$BUILD/tests/cassandra/bench_cassandra" "$N")
py_out=$(/usr/bin/python3 bench/cassandra_bench.py "$N")

echo "Cassandra, $N rows per operation (ops/s; page_rows: rows/s through pages of 100)"
awk -v py="$py_out" '
  BEGIN {
    n = split(py, lines, "\n")
    for (i = 1; i <= n; i++) { split(lines[i], f, " "); drv[f[1]] = f[2] }
    printf "%-12s %12s %12s %8s\n", "operation", "kdao", "driver", "ratio"
  }
  {
    printf "%-12s %12.1f %12.1f %8.2f\n", $1, $2, drv[$1], $2 / drv[$1]
    if ($1 == "insert")
      printf "%-12s %12.1f %12.1f %8.2f\n", "  vs lwt", $2, drv["insert_lwt"], $2 / drv["insert_lwt"]
  }' <<< "$kdao_out"
