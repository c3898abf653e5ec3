#!/usr/bin/env bash
# check_includes.sh SOURCE_DIR — includes point one way (anchors lesson 12):
#  - the CQL client (src/cql/) includes only its own headers: it knows nothing of kdao;
#  - the library (src/) never includes the tools built on it (cli/, lua/);
#  - the tools (cli/, lua/) use the library only through include/kdao.h: no header of src/.
set -euo pipefail
cd "$1"
bad=0
while IFS= read -r line; do
  echo "src/cql must not include kdao headers: $line" >&2
  bad=1
done < <(grep -Hn '#include "' src/cql/*.c src/cql/*.h | grep -vE '#include "(cql|cql_int)\.h"' || true)
while IFS= read -r line; do
  echo "the library must not include tool headers: $line" >&2
  bad=1
done < <(grep -rHn '#include "' src --include='*.c' --include='*.h' |
           grep -E '#include "(cli|serve|http_[a-z_]*|kdao_lua|lua_[a-z_]*)\.h"' || true)
# A quoted include in a tool (cli/: the CLI and admin API; lua/: the binding) names kdao.h
# or a header of the tool's own directory. The build keeps src/ off their include paths;
# this also catches what the build cannot: a relative path into src/ ("../src/schema.h").
for tool in cli lua; do
  while IFS=: read -r file lineno directive; do
    name=$(sed -E 's/.*#include "([^"]*)".*/\1/' <<<"$directive")
    [ "$name" = kdao.h ] && continue
    [[ "$name" != */* && -f "$tool/$name" ]] && continue
    echo "$tool/ must use the library through kdao.h only: $file:$lineno: $directive" >&2
    bad=1
  done < <(grep -Hn '#include "' "$tool"/*.c "$tool"/*.h || true)
done
[ "$bad" = 0 ] && echo "check_includes: includes point one way"
exit "$bad"
