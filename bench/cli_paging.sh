#!/usr/bin/env bash
# The paging acceptance of the core issue, through the command-line tool exactly as a user
# would run it: 100 000 apis, then `kdao list apis --size 100 [--offset TOKEN]` until there is
# no next page. Checks every api comes back exactly once and prints what the first and the
# last page cost (each is one `kdao` process: open, query, print).
#
#   bench/cli_paging.sh [KDAO_BINARY] [N]      (default build/kdao, 100000)
#
# The rows are loaded with one SQL statement through sqlite3 (100 000 `kdao insert` processes
# would measure process start-up, not paging); the listing is all kdao.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KDAO=$(realpath "${1:-$ROOT/build/kdao}")
N=${2:-100000}
command -v sqlite3 >/dev/null && command -v jq >/dev/null ||
  { echo "cli_paging: needs sqlite3 and jq" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$KDAO" migrations up >/dev/null
sqlite3 kdao.db <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO apis (id, name, upstream_url, preserve_host, created_at, retries, https_only,
                  http_if_terminated, hosts, strip_uri, upstream_connect_timeout,
                  upstream_send_timeout, upstream_read_timeout)
SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
             substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) ||
             substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       'api-' || i, 'http://upstream.example.com', 0, 1795833600000 + i, 5, 0, 1,
       '["h' || i || '.example.com"]', 1, 60000, 60000, 60000
FROM n;
SQL
now_ms() { date +%s%3N; }
offset=""
pages=0
first_ms=0
last_ms=0
: >ids.txt
while :; do
  t0=$(now_ms)
  if [ -z "$offset" ]; then
    "$KDAO" list apis --size 100 >page.json
  else
    "$KDAO" list apis --size 100 --offset "$offset" >page.json
  fi
  t1=$(now_ms)
  pages=$((pages + 1))
  [ "$pages" = 1 ] && first_ms=$((t1 - t0))
  last_ms=$((t1 - t0))
  jq -r '.data[].id' page.json >>ids.txt
  offset=$(jq -r '.offset // empty' page.json)
  [ -n "$offset" ] || break
done
total=$(wc -l <ids.txt)
unique=$(sort -u ids.txt | wc -l)
echo "cli paging: $pages pages of 100 over $N apis: $total rows, $unique distinct"
echo "cli paging: first page ${first_ms} ms, last page ${last_ms} ms (one kdao process each)"
[ "$total" = "$N" ] && [ "$unique" = "$N" ] || { echo "cli paging: FAILED: not every row exactly once" >&2; exit 1; }
echo "cli paging: every api exactly once"
