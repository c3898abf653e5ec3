"""Reading tests/bad_input/cases.json for the CLI and HTTP drivers (the C driver has its own)."""
import json
import os
import shutil
import subprocess
import sys

# Cases nest values 2000 levels deep: expanding and dumping them recurses once per level.
sys.setrecursionlimit(20000)

HERE = os.path.dirname(os.path.abspath(__file__))


class Bytes(bytes):
    """A string value given as raw bytes ({"$bytes": hex}): not valid UTF-8."""


def load(path=None):
    with open(path or os.path.join(HERE, "cases.json"), encoding="utf-8") as f:
        return json.load(f)


def expand(v, seeds):
    """The case's value with generators run and "@seed" placeholders replaced."""
    if isinstance(v, str):
        return seeds.get(v, v)
    if isinstance(v, list):
        return [expand(e, seeds) for e in v]
    if not isinstance(v, dict):
        return v
    if "$repeat" in v:
        return v.get("prefix", "") + v["$repeat"] * v["n"]
    if "$bytes" in v:
        return Bytes.fromhex(v["$bytes"])
    if "$deep" in v:
        out = "x"
        for _ in range(v["depth"]):
            out = [out] if v["$deep"] == "array" else {"a": out}
        return out
    if "$array" in v:
        out = [v["$array"]] * v["n"]
        if v.get("last") is not None:
            out.append(v["last"])
        return out
    return {k: expand(e, seeds) for k, e in v.items()}


def spoil(token, how):
    """A real page token spoilt as an offset {"$token": ...} asks."""
    n = len(token)
    kind = how["$token"]
    if kind == "tamper":
        mid = n // 2
        return token[:mid] + ("B" if token[mid] == "A" else "A") + token[mid + 1:]
    if kind == "truncate":
        return token[: n - how["by"]]
    if kind == "half":
        return token[: n // 2]
    return token + "A"


def has_bytes(v):
    if isinstance(v, Bytes):
        return True
    if isinstance(v, list):
        return any(has_bytes(e) for e in v)
    if isinstance(v, dict):
        return any(has_bytes(e) for e in v.values())
    return False


class Report:
    """Counts and prints like the C driver: FAIL, or PENDING for a failure owned elsewhere."""

    def __init__(self, name, backend):
        self.name, self.backend = name, backend
        self.passed = self.failed = self.pending = self.skipped = 0

    def result(self, case, problems):
        pending = (case.get("pending") or {}).get(self.backend)
        for p in problems:
            print(f"{'PENDING' if pending else 'FAIL'} {case['id']} [{self.backend}]: {p}", flush=True)
        if problems and pending:
            self.pending += 1
        elif problems:
            self.failed += 1
        else:
            self.passed += 1

    def summary(self, total):
        print(f"{self.name} {self.backend}: {self.passed} passed, {self.failed} failed, "
              f"{self.pending} pending, {self.skipped} skipped (of {total} cases)")
        return 1 if self.failed else 0


def backend_env(env, backend, tmp, kdao, suffix):
    """Points `env` at a fresh database of `backend` and migrates it with `kdao`.

    SQLite: a file in `tmp`. PostgreSQL: a database of its own named after the configured one
    plus `suffix`, when psql can create it. Returns None, or why the backend cannot be tested
    (the driver skips); exits on a failed migration.
    """
    env["KDAO_DATABASE"] = backend
    if backend == "sqlite":
        env["KDAO_SQLITE_PATH"] = os.path.join(tmp, "kdao.db")
    elif backend == "postgres":
        if not os.environ.get("KDAO_PG_HOST"):
            return "KDAO_PG_HOST is not set: no PostgreSQL to test against"
        for k in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"):
            if os.environ.get(f"KDAO_PG_{k}"):
                env[f"KDAO_PG_{k}"] = os.environ[f"KDAO_PG_{k}"]
        own = env.get("KDAO_PG_DATABASE", "kong") + suffix
        if shutil.which("psql"):
            penv = dict(os.environ, PGPASSWORD=env.get("KDAO_PG_PASSWORD", ""),
                        PGOPTIONS="-c client_min_messages=warning")
            psql = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", env["KDAO_PG_HOST"], "-p",
                    env.get("KDAO_PG_PORT", "5432"), "-U", env.get("KDAO_PG_USER", "kong"), "-d",
                    env.get("KDAO_PG_DATABASE", "kong"), "-c", f"DROP DATABASE IF EXISTS {own}",
                    "-c", f"CREATE DATABASE {own}"]
            if subprocess.run(psql, env=penv, capture_output=True).returncode == 0:
                env["KDAO_PG_DATABASE"] = own
        for sub in (["reset", "--yes"], ["up"]):
            p = subprocess.run([kdao, "migrations", *sub], env=env, capture_output=True)
            if p.returncode != 0:
                sys.exit(f"migrations {sub[0]}: {p.stderr.decode(errors='replace')}")
    else:
        sys.exit(f"unknown backend '{backend}'")
    return None
