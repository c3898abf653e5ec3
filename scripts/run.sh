#!/usr/bin/env bash
# `make run`: kdao's main job on the embedded default (SQLite), in two steps:
#  1. the seed's example —
#       dao.apis:insert({name = "mockbin", hosts = {"mockbin.com"}, upstream_url = "http://mockbin.com"})
#     — through the CLI on a fresh database (build/run/seed/kdao.db), printing the stored API;
#  2. the admin API (`kdao serve`) on a second fresh database (build/run/kdao.db), so the
#     curl line it prints creates mockbin there (201) and a repeat of it shows the 409.
set -euo pipefail
cd "$(dirname "$0")/.."
KDAO="$PWD/build/kdao"
mkdir -p build/run/seed
cd build/run/seed
rm -f kdao.db kdao.db-wal kdao.db-shm
echo "\$ kdao insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com" >&2
"$KDAO" insert apis name=mockbin hosts=mockbin.com upstream_url=http://mockbin.com
cd ..
if [ "${KDAO_RUN_SERVE:-1}" = 1 ] && "$KDAO" serve --help >/dev/null 2>&1; then
  rm -f kdao.db kdao.db-wal kdao.db-shm
  listen="${KDAO_ADMIN_LISTEN:-127.0.0.1:8001}"
  port="${listen##*:}"
  echo >&2
  echo "Admin API on http://$listen, database build/run/kdao.db (Ctrl-C to stop). Try:" >&2
  echo "  curl -s -X POST localhost:$port/apis -d name=mockbin -d hosts=mockbin.com -d upstream_url=http://mockbin.com" >&2
  echo "  curl -s localhost:$port/apis" >&2
  exec "$KDAO" serve --listen "$listen"
fi
