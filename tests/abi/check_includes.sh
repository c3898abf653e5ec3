#!/usr/bin/env bash
# check_includes.sh SOURCE_DIR — includes point one way (anchors lesson 12):
#  - the CQL client (src/cql/) includes only its own headers: it knows nothing of kdao;
#  - the library (src/) never includes the tools built on it (cli/, lua/).
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
[ "$bad" = 0 ] && echo "check_includes: includes point one way"
exit "$bad"
