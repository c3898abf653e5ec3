#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan + LeakSanitizer) and
# runs each in turn, then prints one line per target: executions, seconds, executions per
# second, findings. Exits non-zero when any target finds a crash, a leak, a timeout, an
# out-of-memory or a broken invariant. docs/fuzzing.md describes the targets.
#
#   scripts/fuzz.sh [short [SECONDS]]   SECONDS (default 60) is the TOTAL fuzzing budget,
#                                       shared evenly by the targets (at least 5 s each);
#                                       the build comes on top. `make fuzz FUZZ_SECONDS=60`.
#   scripts/fuzz.sh long [RUNS]         each target until RUNS executions (default 10000000),
#                                       no time limit. `make fuzz-long`.
#   scripts/fuzz.sh replay              no fuzzing: runs each target once on every file of its
#                                       seed corpus and of tests/fuzz/open/<target>/ (known,
#                                       not yet fixed findings), to check a fix.
#
# KDAO_FUZZ_TARGETS="fuzz_config ..." limits the run to those targets; KDAO_FUZZ_BUILD the
# build tree (default build-fuzz). Per target, in the build tree: corpus/<target>/ (what the
# fuzzer adds, kept between runs; the seeds of tests/fuzz/corpus/<target>/ are read, never
# written), artifacts/<target>/ (reproducers of findings), logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-short}"
BUILD="${KDAO_FUZZ_BUILD:-build-fuzz}"
ALL_TARGETS=(fuzz_http_params fuzz_http_body_json fuzz_config fuzz_paging_token fuzz_plugin_json
  fuzz_cql_frame)
read -r -a TARGETS <<<"${KDAO_FUZZ_TARGETS:-${ALL_TARGETS[*]}}"

case "$MODE" in
short)
  TOTAL="${2:-60}"
  PER=$((TOTAL / ${#TARGETS[@]}))
  [ "$PER" -ge 5 ] || PER=5
  LIMIT=(-max_total_time="$PER")
  ;;
long) LIMIT=(-runs="${2:-10000000}") ;;
replay) LIMIT=(-runs=0) ;;
*)
  echo "usage: scripts/fuzz.sh [short [SECONDS] | long [RUNS] | replay]" >&2
  exit 2
  ;;
esac

command -v clang >/dev/null || {
  echo "fuzz.sh: clang not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
}
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKDAO_FUZZ=ON \
  -DKDAO_WITH_POSTGRES=OFF -DKDAO_WITH_LUA=OFF -DKDAO_WITH_HTTP=OFF >/dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target "${TARGETS[@]}" >/dev/null

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
summary=()
failed=0
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus/$t" art="$BUILD/artifacts/$t" log="$BUILD/logs/$t.log"
  mkdir -p "$work" "$art" "$(dirname "$log")"
  before=$(find "$art" -type f | wc -l)
  start=$(date +%s)
  inputs=("$work" "tests/fuzz/corpus/$t")
  if [ "$MODE" = replay ]; then
    inputs=("tests/fuzz/corpus/$t")
    [ -d "tests/fuzz/open/$t" ] && inputs+=("tests/fuzz/open/$t")
  fi
  rc=0
  "$BUILD/tests/fuzz/$t" "${LIMIT[@]}" -max_len=4096 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$art/" "${inputs[@]}" >"$log" 2>&1 || rc=$?
  secs=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  runs="${runs:-?}"
  findings=$(($(find "$art" -type f | wc -l) - before))
  status=ok
  if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
    status=FAILED
    failed=$((failed + 1))
    echo "== $t failed (exit $rc); end of $log:" >&2
    grep -aE "fuzz invariant|ERROR:|SUMMARY:|Test unit written" "$log" | tail -n 8 >&2 || true
  fi
  rate="?"
  [ "$runs" != "?" ] && [ "$secs" -gt 0 ] && rate=$((runs / secs))
  summary+=("$(printf '%-22s %12s %8s %10s %9s  %s' "$t" "$runs" "$secs" "$rate" "$findings" "$status")")
done
printf '%-22s %12s %8s %10s %9s  %s\n' target executions seconds "exec/s" findings status
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: $failed of ${#TARGETS[@]} targets failed; reproducers in $BUILD/artifacts/, logs in $BUILD/logs/" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, no finding"
