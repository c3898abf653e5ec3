#!/usr/bin/env bash
# The tree's one code style (.clang-format). `format.sh` rewrites every C file in place;
# `format.sh --check` changes nothing and fails listing the files that differ (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format.sh: clang-format is not installed" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --check ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then echo "not formatted: $f" >&2; bad=1; fi
  done
  [ "$bad" = 0 ] && echo "format.sh: ${#files[@]} files formatted as .clang-format says" >&2
  exit $bad
fi
clang-format -i "${files[@]}"
