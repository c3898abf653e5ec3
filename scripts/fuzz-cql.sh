#!/usr/bin/env bash
# Build the libFuzzer target over the CQL frame decoder with clang and run it for a bounded
# time. Exits non-zero when the fuzzer finds a crash, a leak or undefined behaviour.
#
#   scripts/fuzz-cql.sh [seconds]      (default 60; KDAO_FUZZ_JOBS for parallel workers)
#
# Build tree: ${KDAO_FUZZ_BUILD:-build-fuzz}; corpus kept in <build>/corpus between runs,
# crash inputs written to <build>/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
BUILD="${KDAO_FUZZ_BUILD:-build-fuzz}"
command -v clang >/dev/null || { echo "fuzz-cql.sh: clang not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
cmake -S src/cql -B "$BUILD" -DCMAKE_C_COMPILER=clang -DKDAO_FUZZ=ON -DKDAO_CQL_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target fuzz_cql_frame -j"$(nproc)" >/dev/null
mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
# Seeds: a READY frame, a Void RESULT, an ERROR, and a small ROWS result.
printf '\x84\x00\x00\x01\x02\x00\x00\x00\x00' > "$BUILD/corpus/seed-ready"
printf '\x84\x00\x00\x01\x08\x00\x00\x00\x04\x00\x00\x00\x01' > "$BUILD/corpus/seed-void"
printf '\x84\x00\x00\x01\x00\x00\x00\x00\x0b\x00\x00\x22\x00\x00\x05oops!' > "$BUILD/corpus/seed-error"
printf '\x84\x00\x00\x01\x08\x00\x00\x00\x25\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x01\x00\x01k\x00\x01t\x00\x01c\x00\x20\x00\x0d\x00\x00\x00\x01\x00\x00\x00\x09\x00\x00\x00\x01\x00\x00\x00\x01x' > "$BUILD/corpus/seed-rows"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
"$BUILD/fuzz_cql_frame" -max_total_time="$SECS" -max_len=4096 -timeout=10 \
    -artifact_prefix="$BUILD/artifacts/" ${KDAO_FUZZ_JOBS:+-jobs=$KDAO_FUZZ_JOBS -workers=$KDAO_FUZZ_JOBS} \
    "$BUILD/corpus"
