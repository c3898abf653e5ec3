#!/usr/bin/env bash
# Installs what kdao needs from Debian's packages: `deps.sh build` what building needs,
# `deps.sh` (all) also what the tests and benchmarks use. Idempotent: does nothing when every
# package is already installed (so `make` stays fast on a warm machine).
set -euo pipefail

# What building needs (`make build`, `make run`), then what the tests and benchmarks add.
BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libjansson-dev libpcre2-dev libsqlite3-dev libssl-dev
  libpq-dev libluajit-5.1-dev liblua5.1-0-dev libmicrohttpd-dev
)
TEST_PACKAGES=(
  libcmocka-dev
  sqlite3 postgresql
  luajit lua-busted lua5.1
  curl wrk jq
  clang libclang-rt-14-dev clang-format bc
  python3-cassandra
  openjdk-17-jdk-headless maven
)
PACKAGES=("${BUILD_PACKAGES[@]}")
[ "${1:-all}" = build ] || PACKAGES+=("${TEST_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A JDK from elsewhere (e.g. /usr/lib/jvm/*17*) and mvn already on PATH satisfy the Java needs.
if command -v mvn >/dev/null && ls -d /usr/lib/jvm/*17* >/dev/null 2>&1; then
  missing=("${missing[@]/openjdk-17-jdk-headless/}")
  missing=("${missing[@]/maven/}")
fi
todo=()
for p in "${missing[@]}"; do [ -n "$p" ] && todo+=("$p"); done
[ ${#todo[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "kdao: installing ${todo[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${todo[@]}" >&2
