#!/usr/bin/env bash
# Start and stop a throw-away Apache Cassandra 5.0 cluster for kdao's tests.
#
#   scripts/cassandra.sh start [N]   start N nodes (default 1) on 127.0.0.1..127.0.0.N:9042
#                                    (KDAO_CASSANDRA_BASE_ADDR moves them)
#   scripts/cassandra.sh stop        stop every node this script started
#   scripts/cassandra.sh env         print the shell exports the tests read
#   scripts/cassandra.sh status      show which nodes run
#
# Cassandra comes from Maven Central as org.apache.cassandra:cassandra-all, resolved by mvn into
# ~/.m2 and copied to $KDAO_CACHE/cassandra/lib; it runs under Java 17 with the JVM flags of
# Cassandra's conf/jvm17-server.options and a minimal generated cassandra.yaml per node.
#
# Environment knobs:
#   KDAO_CACHE                  cache root (default ~/.cache/kdao)
#   KDAO_CASSANDRA_VERSION      cassandra-all version (default 5.0.4)
#   KDAO_CASSANDRA_DIR          run directory: data, logs, pid files (default /tmp/kdao-cassandra)
#   KDAO_CASSANDRA_BASE_ADDR    node n listens on this IPv4 address + n (default 127.0.0.0, so
#                               127.0.0.1..N; 127.0.0.10 gives 127.0.0.11..), its JMX port on
#                               7198 + the address's last number: clusters on other addresses
#                               run beside the default one
#   KDAO_CASSANDRA_AUTH         "password" to enable PasswordAuthenticator (user cassandra/cassandra)
#   KDAO_CASSANDRA_HEAP         max heap per node (default 1g; 768m is used when N > 1)
#   KDAO_CASSANDRA_START_TIMEOUT seconds to wait for each node's CQL port (default 180)
#   JAVA_HOME                   a Java 17 (default: the first /usr/lib/jvm/*17* found)
set -euo pipefail

VERSION="${KDAO_CASSANDRA_VERSION:-5.0.4}"
CACHE="${KDAO_CACHE:-$HOME/.cache/kdao}/cassandra"
RUN="${KDAO_CASSANDRA_DIR:-/tmp/kdao-cassandra}"
LIB="$CACHE/lib-$VERSION"
PORT=9042
BASE_ADDR="${KDAO_CASSANDRA_BASE_ADDR:-127.0.0.0}"
[[ "$BASE_ADDR" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.([0-9]+)$ ]] || { echo "cassandra.sh: bad KDAO_CASSANDRA_BASE_ADDR" >&2; exit 1; }
ADDR_PREFIX="${BASH_REMATCH[1]}"
ADDR_BASE="${BASH_REMATCH[2]}"
node_addr() { echo "$ADDR_PREFIX.$((ADDR_BASE + $1))"; }
TIMEOUT="${KDAO_CASSANDRA_START_TIMEOUT:-180}"

die() { echo "cassandra.sh: $*" >&2; exit 1; }

find_java() {
    if [ -n "${JAVA_HOME:-}" ] && "$JAVA_HOME/bin/java" -version 2>&1 | grep -q 'version "17'; then
        echo "$JAVA_HOME/bin/java"; return
    fi
    local j
    for j in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/*17*/bin/java; do
        [ -x "$j" ] && { echo "$j"; return; }
    done
    die "no Java 17 found under /usr/lib/jvm (apt-get install openjdk-17-jre-headless)"
}

# Resolve cassandra-all and its runtime dependencies once; later runs reuse the copy.
fetch_jars() {
    [ -f "$LIB/.complete" ] && return
    command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
    mkdir -p "$CACHE"
    cat > "$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kdao.test</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    echo "cassandra.sh: resolving cassandra-all $VERSION with mvn (first run only)" >&2
    rm -rf "$LIB"
    (cd "$CACHE" && mvn -q -B dependency:copy-dependencies \
        -DoutputDirectory="$LIB" -DincludeScope=runtime) || die "mvn could not resolve cassandra-all $VERSION"
    ls "$LIB"/cassandra-all-*.jar >/dev/null 2>&1 || die "cassandra-all jar missing in $LIB"
    touch "$LIB/.complete"
}

# Evenly spaced Murmur3 tokens, one per node, so nodes need no token allocation or bootstrap.
node_token() { # $1 = index from 0, $2 = node count
    echo "-(2^63) + $1 * (2^64 / $2)" | BC_LINE_LENGTH=0 bc
}

write_yaml() { # $1 = node number, $2 = node count
    local n=$1 dir="$RUN/node$1" addr auth=AllowAllAuthenticator authz=AllowAllAuthorizer
    addr=$(node_addr "$n")
    if [ "${KDAO_CASSANDRA_AUTH:-}" = password ]; then
        auth=PasswordAuthenticator; authz=CassandraAuthorizer
    fi
    mkdir -p "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/cdc_raw" "$dir/logs"
    cat > "$dir/cassandra.yaml" <<EOF
cluster_name: kdao_test
num_tokens: 1
initial_token: $(node_token $((n - 1)) "$2")
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
auto_bootstrap: false
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$(node_addr 1):7000"
listen_address: $addr
rpc_address: $addr
storage_port: 7000
native_transport_port: $PORT
start_native_transport: true
endpoint_snitch: SimpleSnitch
authenticator: $auth
authorizer: $authz
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
counter_cache_size: 4MiB
prepared_statements_cache_size: 8MiB
disk_access_mode: mmap_index_only
read_request_timeout: 10000ms
write_request_timeout: 5000ms
request_timeout: 20000ms
# Kong 0.10's schema uses plain CREATE INDEX: keep the legacy secondary index as the default.
secondary_indexes_enabled: true
default_secondary_index: legacy_local_table
default_secondary_index_enabled: true
materialized_views_enabled: false
sasi_indexes_enabled: false
user_defined_functions_enabled: false
EOF
    cat > "$dir/logback.xml" <<EOF
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$dir/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
EOF
}

port_open() { # $1 = address
    (exec 3<>"/dev/tcp/$1/$PORT") 2>/dev/null
}

start_node() { # $1 = node number, $2 = node count
    local n=$1 dir="$RUN/node$1" addr java heap
    addr=$(node_addr "$n")
    java=$(find_java)
    heap="${KDAO_CASSANDRA_HEAP:-1g}"
    [ "$2" -gt 1 ] && heap="${KDAO_CASSANDRA_HEAP:-768m}"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "cassandra.sh: node$n already running (pid $(cat "$dir/pid"))" >&2
        return
    fi
    port_open "$addr" && die "something already listens on $addr:$PORT (not started by this script)"
    write_yaml "$n" "$2"
    local jamm
    jamm=$(ls "$LIB"/jamm-*.jar | head -n 1)
    # Flags follow conf/jvm17-server.options and cassandra-env.sh, trimmed for a small test box.
    nohup "$java" \
        -ea -da:net.openhft... -Xss512k -Xms256m -Xmx"$heap" \
        -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 \
        -XX:G1HeapRegionSize=4m -XX:MaxGCPauseMillis=300 -XX:+ExitOnOutOfMemoryError \
        -XX:ActiveProcessorCount=2 \
        -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem \
        -javaagent:"$jamm" \
        -Djdk.attach.allowAttachSelf=true \
        --add-exports java.base/jdk.internal.misc=ALL-UNNAMED \
        --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED \
        --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED \
        --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED \
        --add-exports java.sql/java.sql=ALL-UNNAMED \
        --add-exports java.base/java.lang.ref=ALL-UNNAMED \
        --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED \
        --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED \
        --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED \
        --add-opens java.base/java.lang.module=ALL-UNNAMED \
        --add-opens java.base/jdk.internal.loader=ALL-UNNAMED \
        --add-opens java.base/jdk.internal.ref=ALL-UNNAMED \
        --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED \
        --add-opens java.base/jdk.internal.math=ALL-UNNAMED \
        --add-opens java.base/jdk.internal.module=ALL-UNNAMED \
        --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED \
        --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
        --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
        --add-opens java.base/java.io=ALL-UNNAMED \
        --add-opens java.base/java.lang.reflect=ALL-UNNAMED \
        --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED \
        --add-opens java.base/java.lang=ALL-UNNAMED \
        --add-opens java.base/java.util=ALL-UNNAMED \
        -Dio.netty.tryReflectionSetAccessible=true \
        -Dio.netty.allocator.useCacheForAllThreads=true \
        -Dio.netty.allocator.maxOrder=11 \
        -Djava.net.preferIPv4Stack=true \
        -Dcassandra-foreground=yes \
        -Dcassandra.config="file://$dir/cassandra.yaml" \
        -Dcassandra.storagedir="$dir" \
        -Dcassandra.logdir="$dir/logs" \
        -Dlogback.configurationFile="$dir/logback.xml" \
        -Dcassandra.skip_wait_for_gossip_to_settle=0 \
        -Dcassandra.ring_delay_ms=1000 \
        -Dcassandra.superuser_setup_delay_ms=0 \
        -Dcassandra.jmx.local.port=$((7198 + ADDR_BASE + n)) \
        -cp "$LIB/*" org.apache.cassandra.service.CassandraDaemon \
        > "$dir/logs/stdout.log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
}

wait_node() { # $1 = node number
    local n=$1 dir="$RUN/node$1" addr waited=0 pid
    addr=$(node_addr "$n")
    pid=$(cat "$dir/pid")
    until port_open "$addr"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "cassandra.sh: node$n (pid $pid) exited during start-up; log tail:" >&2
            tail -n 40 "$dir/logs/system.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
            exit 1
        fi
        if [ "$waited" -ge "$TIMEOUT" ]; then
            echo "cassandra.sh: node$n did not open $addr:$PORT within ${TIMEOUT}s; log tail:" >&2
            tail -n 40 "$dir/logs/system.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 1; waited=$((waited + 1))
    done
}

cmd_start() {
    local count="${1:-1}" n t0
    [[ "$count" =~ ^[1-9]$ ]] || die "node count must be 1..9"
    command -v bc >/dev/null || die "bc not found (apt-get install bc)"
    t0=$(date +%s)
    fetch_jars
    mkdir -p "$RUN"
    # A previous run of a different size leaves tokens that do not fit: start clean then.
    if [ -f "$RUN/count" ] && [ "$(cat "$RUN/count")" != "$count" ] && ! any_running; then
        rm -rf "$RUN"/node*
    fi
    echo "$count" > "$RUN/count"
    # The seed starts first; the others join it one at a time (gossip dislikes parallel joins).
    for n in $(seq 1 "$count"); do
        start_node "$n" "$count"
        wait_node "$n"
    done
    echo "cassandra.sh: $count node(s) up in $(( $(date +%s) - t0 ))s" >&2
    cmd_env
}

any_running() {
    local f
    for f in "$RUN"/node*/pid; do
        [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0
    done
    return 1
}

cmd_stop() {
    local f pid i
    for f in "$RUN"/node*/pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}

cmd_env() {
    local count=1 hosts n
    hosts=$(node_addr 1)
    [ -f "$RUN/count" ] && count=$(cat "$RUN/count")
    for n in $(seq 2 "$count"); do hosts="$hosts,$(node_addr "$n")"; done
    echo "export KDAO_CASSANDRA_HOST=$(node_addr 1)"
    echo "export KDAO_CASSANDRA_PORT=$PORT"
    echo "export KDAO_CASSANDRA_HOSTS=$hosts"
    if [ "${KDAO_CASSANDRA_AUTH:-}" = password ]; then
        echo "export KDAO_CASSANDRA_USER=cassandra"
        echo "export KDAO_CASSANDRA_PASSWORD=cassandra"
    fi
}

cmd_status() {
    local f
    for f in "$RUN"/node*/pid; do
        [ -f "$f" ] || continue
        if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$(dirname "$f"): running"; else echo "$(dirname "$f"): dead"; fi
    done
}

case "${1:-}" in
    start) cmd_start "${2:-1}" ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
    *) die "usage: $0 start [N] | stop | env | status" ;;
esac
