#!/usr/bin/python3
"""The same operations as bench/cassandra_bench.c, with the DataStax Python driver (Debian's
python3-cassandra): prepared statements, consistency ONE, protocol v4, one request at a time.

    cassandra_bench.py [N]      N rows (default 1000)

Runs after bench_cassandra, in its keyspace (kdao_bench) and on its `apis` table, which that
program leaves migrated and empty. It is the floor a hand-written driver program reaches:
no validation, no unique checks, no JSON rows. `insert_lwt` adds what kdao does for a race-free
insert (a reservation UPDATE ... IF owner = null, then the row INSERT ... IF NOT EXISTS) so that cost can be
told apart from the client's. Output: one line per operation, "<op> <ops per second>".
"""
import json
import os
import sys
import time
import uuid

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import RoundRobinPolicy
from cassandra.query import SimpleStatement

COLUMNS = ("id", "name", "hosts", "upstream_url", "created_at", "retries", "strip_uri",
           "preserve_host", "https_only", "http_if_terminated", "upstream_connect_timeout",
           "upstream_send_timeout", "upstream_read_timeout")


def report(op, n, seconds):
    print(f"{op} {n / seconds:.1f}", flush=True)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    points = os.environ.get("KDAO_CASSANDRA_CONTACT_POINTS", "127.0.0.1").split(",")
    port = int(os.environ.get("KDAO_CASSANDRA_PORT", "9042"))
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(),
                               consistency_level=ConsistencyLevel.ONE)
    cluster = Cluster([p.strip() for p in points], port=port, protocol_version=4,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    session = cluster.connect("kdao_bench")

    cols = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    insert = session.prepare(f"INSERT INTO apis ({cols}) VALUES ({marks})")
    insert_nx = session.prepare(f"INSERT INTO apis ({cols}) VALUES ({marks}) IF NOT EXISTS")
    reserve = session.prepare("UPDATE kdao_unique USING TTL 0 SET owner = ?"
                              " WHERE table_name = 'apis' AND field = 'name' AND value = ?"
                              " IF owner = null")
    find = session.prepare(f"SELECT {cols} FROM apis WHERE id = ?")
    update = session.prepare("UPDATE apis SET retries = ? WHERE id = ?")
    delete = session.prepare("DELETE FROM apis WHERE id = ?")
    for st in (insert_nx, reserve):
        st.serial_consistency_level = ConsistencyLevel.SERIAL

    def row(i, prefix):
        return (uuid.uuid4(), f"{prefix}-{i:06d}", json.dumps(["bench.example.com"]),
                "http://up.example.com", int(time.time() * 1000), 5, True, False, False, True,
                60000, 60000, 60000)

    ids = []
    t = time.monotonic()
    for i in range(n):
        values = row(i, "py")
        session.execute(insert, values)
        ids.append(values[0])
    report("insert", n, time.monotonic() - t)

    t = time.monotonic()
    for i in range(n):
        values = row(i, "lwt")
        session.execute(reserve, (json.dumps([str(values[0])]), values[1]))
        session.execute(insert_nx, values)
    report("insert_lwt", n, time.monotonic() - t)

    t = time.monotonic()
    for i in ids:
        if session.execute(find, (i,)).one() is None:
            sys.exit("cassandra_bench.py: find found nothing")
    report("find", n, time.monotonic() - t)

    t = time.monotonic()
    for i in ids:
        session.execute(update, (3, i))
    report("update", n, time.monotonic() - t)

    t = time.monotonic()
    seen = sum(1 for _ in session.execute(SimpleStatement(f"SELECT {cols} FROM apis",
                                                          fetch_size=100)))
    report("page_rows", seen, time.monotonic() - t)

    t = time.monotonic()
    for i in ids:
        session.execute(delete, (i,))
    report("delete", n, time.monotonic() - t)

    session.execute("TRUNCATE apis")
    session.execute("TRUNCATE kdao_unique")
    cluster.shutdown()


if __name__ == "__main__":
    main()
