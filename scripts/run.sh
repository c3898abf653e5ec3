#!/usr/bin/env bash
# `make run`: kdao's main job on the embedded default — the seed's example
#   dao.apis:insert({name = "mockbin", hosts = {"mockbin.com"}, upstream_url = "http://mockbin.com"})
# through the CLI, on a fresh SQLite file, then the admin API when this build has it.
set -euo pipefail
cd "$(dirname "$0")/.."
KDAO="$PWD/build/kdao"
mkdir -p build/run
cd build/run
rm -f kdao.db kdao.db-wal kdao.db-shm
echo "\$ kdao insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com" >&2
"$KDAO" insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com
if [ "${KDAO_RUN_SERVE:-1}" = 1 ] && "$KDAO" serve --help >/dev/null 2>&1; then
  listen="${KDAO_ADMIN_LISTEN:-127.0.0.1:8001}"
  echo >&2
  echo "Admin API on http://$listen (Ctrl-C to stop). Try:" >&2
  echo "  curl -s -X POST $listen/apis -d name=example -d hosts=example.com -d upstream_url=http://example.com" >&2
  echo "  curl -s $listen/apis" >&2
  exec "$KDAO" serve --listen "$listen"
fi
