#!/usr/bin/env python3
"""The CLI driver of the bad-input table (tests/bad_input/README.md):

    bad_input_cli.py KDAO_BINARY sqlite|postgres [CASE_ID_PREFIX]

Maps each case to `kdao insert/update/find/delete/list/count` on a fresh database, checks the
exit status and the JSON error on stderr, and that `kdao count` of the entity did not change.
PostgreSQL comes from KDAO_PG_*; without it the test is skipped (77) unless KDAO_REQUIRE_ALL=1.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bad_input"))
import table  # noqa: E402

KDAO, BACKEND = os.path.abspath(sys.argv[1]), sys.argv[2]
ONLY = sys.argv[3] if len(sys.argv) > 3 else ""
# Cases run one process each (plus two counts): the tool is what is tested.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("KDAO_")}


def skip(why):
    print(f"bad_input_cli: {why}", file=sys.stderr)
    sys.exit(1 if os.environ.get("KDAO_REQUIRE_ALL") == "1" else 77)


def kdao(*args):
    """Runs kdao; returns (status, stdout JSON or None, the last JSON document of stderr)."""
    p = subprocess.run([KDAO, *args], env=ENV, capture_output=True, timeout=120)
    out = err = None
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        out = p.stdout
    # split on "\n" only: values may hold U+0085 or U+2028, which splitlines() also breaks on
    lines = [line for line in p.stderr.decode("utf-8", "replace").split("\n") if line.strip()]
    # stderr holds pretty-printed documents after one-line notes: parse from the last '{' line.
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("{"):
            try:
                err = json.loads("\n".join(lines[i:]))
                break
            except ValueError:
                continue
    return p.returncode, out, err


def args_of(obj, prefix=""):
    """field:=json arguments; raw bytes as field=bytes, reached through dotted names."""
    out = []
    for k, v in (obj or {}).items():
        if isinstance(v, dict) and table.has_bytes(v):
            out += args_of(v, f"{prefix}{k}.")
        elif isinstance(v, table.Bytes):
            out.append(f"{prefix}{k}=".encode() + bytes(v))
        else:
            out.append(f"{prefix}{k}:={json.dumps(v)}".encode())
    return out


def key_of(pk):
    v = pk.get("id", "")
    return v if isinstance(v, str) else json.dumps(v)


def count(entity):
    rc, out, err = kdao("count", entity)
    return out["count"] if rc == 0 else f"count failed: {err}"


def setup():
    tmp = tempfile.mkdtemp(prefix="kdao-bad-cli-")
    why = table.backend_env(ENV, BACKEND, tmp, KDAO, "_bad_cli")
    if why:
        skip(why)
    return tmp


SEEDS = {}


def seed(entity, placeholder, **fields):
    rc, out, err = kdao("insert", entity, *args_of(table.expand(fields, SEEDS)))
    if rc != 0:
        sys.exit(f"bad_input_cli: seed {entity}: {err}")
    SEEDS[placeholder] = out["id"]


def run_case(case, report):
    if "skip_cli" in case:
        report.skipped += 1
        return
    entity, op = case["entity"], case["op"]
    kind = case.get("cli_kind", case["kind"])
    inp = table.expand(case.get("input"), SEEDS)
    pk = table.expand(case.get("pk") or {}, SEEDS)
    if op == "insert":
        argv = ["insert", entity, *args_of(inp)]
    elif op in ("update", "full_update"):
        argv = ["update", entity, key_of(pk), *args_of(inp)] + (["--full"] if op == "full_update" else [])
    elif op in ("find", "delete"):
        argv = [op, entity, key_of(pk)]
    elif op == "find_all":
        argv = ["list", entity, *args_of(inp)]
    elif op == "count":
        argv = ["count", entity, *args_of(inp)]
    elif op == "page":
        argv = ["list", entity, *args_of(inp)]
        if "size" in case:
            argv += ["--size", str(case["size"])]
        off = case.get("offset")
        if isinstance(off, dict) and "$token" in off:
            rc, out, err = kdao("list", entity, "--size", "1")
            if rc != 0 or not isinstance(out, dict) or "offset" not in out:
                report.result(case, [f"no token to spoil: status {rc}: {out} {err}"])
                return
            off = table.spoil(out["offset"], off)
        elif off is not None:
            off = table.expand(off, SEEDS)
        if off is not None:
            argv += ["--offset", off]
    else:
        report.result(case, [f"unknown op {op}"])
        return
    before = count(entity)
    rc, out, err = kdao(*argv)
    problems = []
    if kind == "ok":
        if rc != 0:
            problems.append(f"expected success, got status {rc}: {err}")
        elif "rows" in case:
            got = out["count"] if op == "count" else len(out["data"])
            if got != case["rows"]:
                problems.append(f"expected {case['rows']} rows, got {got}")
    elif kind == "usage":
        if rc != 2 or not isinstance(err, dict) or err.get("kind") != "usage":
            problems.append(f"expected a usage error (2), got status {rc}: {err}")
    elif kind == "notfound":
        if rc != 1 or err != {"message": "Not found"}:
            problems.append(f"expected Not found, got status {rc}: {err}")
    else:
        if rc != 1 or not isinstance(err, dict) or err.get("kind") != kind:
            problems.append(f"expected a {kind} error (1), got status {rc}: {err}")
        elif "field" in case and case["field"] not in (err.get("fields") or {}):
            problems.append(f"no message under '{case['field']}': {err}")
    after = count(entity)
    if after != before:
        problems.append(f"{entity} rows: {before} before, {after} after")
    report.result(case, problems)


def main():
    if not os.access(KDAO, os.X_OK):
        sys.exit(f"bad_input_cli: {KDAO} is not executable")
    tmp = setup()
    try:
        seed("apis", "@api", name="seed-a", hosts=["a.com"], upstream_url="http://a.com")
        seed("apis", "@api2", name="seed-b", hosts=["b.com"], upstream_url="http://b.com")
        seed("apis", "@api3", name="seed-c", hosts=["c.com"], upstream_url="http://c.com")
        seed("consumers", "@consumer", username="seed-u1", custom_id="seed-c1")
        seed("consumers", "@consumer2", username="seed-u2")
        seed("plugins", "@plugin", name="key-auth", api_id="@api")
        seed("plugins", "@plugin2", name="key-auth", api_id="@api2")
        seed("upstreams", "@upstream", name="seed-ups.com")
        cases = table.load()
        report = table.Report("bad_input_cli", BACKEND)
        for case in cases:
            if case["id"].startswith(ONLY):
                run_case(case, report)
        status = report.summary(len(cases))
        if BACKEND == "postgres":
            kdao("migrations", "reset", "--yes")
        return status
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


sys.exit(main())
