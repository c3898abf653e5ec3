# kdao — the two commands of the README, plus a few conveniences. The real build is CMake
# (build/ and, for the sanitizer run, build-asan/); this file only sequences it.
.PHONY: all deps deps-build build install run test test-quick test-cluster fuzz fuzz-long bench clean

JOBS ?= 2

all: build

deps:
	@bash scripts/deps.sh

deps-build:
	@bash scripts/deps.sh build

build: deps-build
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS)

# libkdao.so, kdao.h, kdao.pc, the kdao command and the Lua binding under PREFIX (DESTDIR,
# when given, is honoured by cmake --install for staged installs). The prefix is configured,
# not only passed to cmake --install: GNUInstallDirs derives the library directory from it
# (lib/<multiarch> under /usr on Debian, where LuaJIT looks for C modules).
PREFIX ?= /usr/local
install: deps-build
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$(PREFIX)" >/dev/null
	@cmake --build build -j$(JOBS)
	@cmake --install build

# The seed's example through the CLI on the embedded default (SQLite, a fresh kdao.db in
# build/run/), then the admin API on it when it is built.
run: build
	@bash scripts/run.sh

# Every suite on every backend (SQLite, PostgreSQL, Cassandra), then again under ASan+UBSan.
test: deps
	@bash scripts/test.sh

# Only the normal build, only the backends named (e.g. make test-quick BACKENDS=sqlite).
test-quick: deps
	@KDAO_TEST_ASAN=0 KDAO_TEST_BACKENDS="$(or $(BACKENDS),sqlite)" bash scripts/test.sh

# Three Cassandra nodes on 127.0.0.1-3: one is stopped mid-run, consistency ONE keeps working.
test-cluster: deps build
	@bash scripts/test-cluster.sh

# Every libFuzzer target of tests/fuzz/ (docs/fuzzing.md). FUZZ_SECONDS is the total fuzzing
# time, shared evenly by the targets (at least 5 s each), the clang build coming on top;
# fuzz-long runs each target to 10 million executions instead.
FUZZ_SECONDS ?= 60
fuzz: deps
	@bash scripts/fuzz.sh short $(FUZZ_SECONDS)

fuzz-long: deps
	@bash scripts/fuzz.sh long

bench: deps build
	@bash scripts/bench.sh

clean:
	rm -rf build build-asan build-fuzz
