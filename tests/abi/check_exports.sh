#!/usr/bin/env bash
# check_exports.sh LIBKDAO_SO KDAO_H — the shared library exports exactly the functions the
# public header declares (KDAO_API): nothing internal leaks, nothing declared is missing.
set -euo pipefail
lib=$1 header=$2
exports=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sort)
declared=$(grep -oE '^KDAO_API [^(;]*\(' "$header" | sed -E 's/.*[ *]([A-Za-z_0-9]+)\($/\1/' | sort)
extra=$(comm -23 <(echo "$exports") <(echo "$declared"))
missing=$(comm -13 <(echo "$exports") <(echo "$declared"))
[ -n "$extra" ] && echo "exported but not declared in kdao.h:" $extra >&2
[ -n "$missing" ] && echo "declared in kdao.h but not exported:" $missing >&2
[ -z "$extra" ] && [ -z "$missing" ] || exit 1
echo "check_exports: $(echo "$declared" | wc -l) functions, exports match kdao.h"
