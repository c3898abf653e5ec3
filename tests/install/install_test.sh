#!/usr/bin/env bash
# Installs a kdao build into a fresh prefix and uses only what landed there, as a user would:
# the header and libkdao.so through pkg-config (a C program compiled, linked and run), the
# kdao command, and the Lua binding with LUA_PATH/LUA_CPATH naming only the installed tree.
#
#   install_test.sh <build dir> <source dir> <cc> <libdir> <bindir> <lua cmod dir> <lua lmod dir>
#                   <lua built: 0|1> [extra cflags...]
#
# The directories are the build's GNUInstallDirs / KDAO_LUA_* values, relative to the prefix.
# Without luajit the Lua step is skipped, unless KDAO_REQUIRE_ALL=1 makes that a failure.
set -euo pipefail

build=$1 src=$2 cc=$3 libdir=$4 bindir=$5 cmod=$6 lmod=$7 with_lua=$8
shift 8
extra_cflags=("$@")
here=$(cd "$(dirname "$0")" && pwd)

for d in "$libdir" "$bindir" "$cmod" "$lmod"; do
  if [[ $d == /* ]]; then
    echo "install_test: $d is absolute, it cannot go under a throw-away prefix: skipped"
    exit 77
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
fail() {
  echo "install_test: $*" >&2
  exit 1
}

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log" >&2
  fail "cmake --install failed"
}

version=$(sed -n 's/^#define KDAO_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/kdao.h")
[ -n "$version" ] || fail "no KDAO_VERSION_STRING in $src/include/kdao.h"

# The shared library: real file, SONAME link and development link.
lib=$prefix/$libdir
[ -f "$lib/libkdao.so.$version" ] || fail "libkdao.so.$version not installed in $lib"
soname=$(readelf -d "$lib/libkdao.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libkdao.so.${version%%.*}" ] || fail "SONAME is '$soname'"
[ "$(readlink "$lib/$soname")" = "libkdao.so.$version" ] || fail "$soname link missing"
[ -L "$lib/libkdao.so" ] || fail "libkdao.so link missing"

# pkg-config: only the installed kdao.pc (jansson's comes from the system's default path).
export PKG_CONFIG_PATH=$lib/pkgconfig
modversion=$(pkg-config --modversion kdao) || fail "pkg-config does not find kdao"
[ "$modversion" = "$version" ] || fail "pkg-config --modversion kdao: $modversion, kdao.h: $version"
[ "$(pkg-config --variable=prefix kdao)" = "$prefix" ] || fail "kdao.pc names another prefix"
read -r -a flags <<<"$(pkg-config --cflags --libs kdao)"

"$cc" -std=c17 -Wall -Wextra -Werror "${extra_cflags[@]}" -o "$work/install_check" \
  "$here/install_check.c" "${flags[@]}" -Wl,-rpath,"$(pkg-config --variable=libdir kdao)" ||
  fail "the C program does not build with pkg-config's flags"
ldd "$work/install_check" | grep -q "libkdao.so.${version%%.*} => $lib/" ||
  fail "the C program does not load the installed libkdao"
mkdir "$work/c"
out=$("$work/install_check" "$work/c") || fail "the C program failed"
[ "$out" = "kdao $version" ] || fail "the C program printed '$out'"
echo "ok: C program via pkg-config ($out)"

# The command.
cli=$(PATH=$prefix/$bindir kdao --version) || fail "the installed kdao --version failed"
grep -q "\"version\": *\"$version\"" <<<"$cli" || fail "kdao --version printed: $cli"
echo "ok: $bindir/kdao --version"

# The Lua binding.
if [ "$with_lua" != 1 ] || ! command -v luajit >/dev/null; then
  [ "${KDAO_REQUIRE_ALL:-0}" = 1 ] && fail "the Lua binding or luajit is missing (KDAO_REQUIRE_ALL=1)"
  echo "install_test: no Lua binding or no luajit: the Lua step is skipped"
  exit 0
fi
[ -f "$prefix/$cmod/kdao.so" ] || fail "kdao.so not installed in $cmod"
# A sanitizer build's kdao.so needs its runtimes loaded before the interpreter (as in
# tests/lua/run.sh); LeakSanitizer stays with the C program.
preload=$(ldd "$prefix/$cmod/kdao.so" | awk '/lib(asan|ubsan)\.so/ {print $3}' | tr '\n' ' ')
mkdir "$work/lua"
out=$(env ${preload:+LD_PRELOAD="$preload"} ${preload:+ASAN_OPTIONS=detect_leaks=0} \
  LUA_PATH="$prefix/$lmod/?.lua;$prefix/$lmod/?/init.lua" LUA_CPATH="$prefix/$cmod/?.so" \
  luajit "$here/install_check.lua" "$work/lua") || fail "the Lua check failed"
[ "$out" = "lua: $prefix/$cmod/kdao.so" ] || fail "the Lua check printed '$out'"
echo "ok: Lua binding ($cmod, $lmod)"
