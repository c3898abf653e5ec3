#!/usr/bin/env python3
"""The admin API driver of the bad-input table (tests/bad_input/README.md):

    bad_input_http.py KDAO_BINARY sqlite|postgres [CASE_ID_PREFIX]

Starts `kdao serve` on a fresh database and maps each case to POST/PATCH/PUT/GET/DELETE;
checks the status (400 schema, 409 unique, 404 foreign or missing row...), Kong's JSON shape
(an object: a field map of strings or string lists, or {"message": ...}) and that the total
of GET /<entity>?size=1 did not change. PostgreSQL comes from KDAO_PG_*; without it the test
is skipped (77) unless KDAO_REQUIRE_ALL=1.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bad_input"))
import table  # noqa: E402

KDAO, BACKEND = os.path.abspath(sys.argv[1]), sys.argv[2]
ONLY = sys.argv[3] if len(sys.argv) > 3 else ""
ENV = {k: v for k, v in os.environ.items() if not k.startswith("KDAO_")}
PATHS = {"apis": "/apis", "consumers": "/consumers", "plugins": "/plugins", "upstreams": "/upstreams"}
STATUS = {"schema": 400, "usage": 400, "unique": 409, "foreign": 404, "notfound": 404}
ADDR = None


def skip(why):
    print(f"bad_input_http: {why}", file=sys.stderr)
    sys.exit(1 if os.environ.get("KDAO_REQUIRE_ALL") == "1" else 77)


def quote(v):
    return urllib.parse.quote(bytes(v) if isinstance(v, table.Bytes) else str(v), safe="")


def query(params):
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())


def form(obj, prefix=""):
    """A form body: nested tables as dotted names, arrays as repeated names (Kong's forms)."""
    out = []
    for k, v in obj.items():
        name = prefix + k
        if isinstance(v, dict):
            out.append(form(v, name + "."))
        elif isinstance(v, list):
            out += [f"{quote(name)}={quote(e)}" for e in v]
        else:
            out.append(f"{quote(name)}={quote(v)}")
    return "&".join(p for p in out if p)


def request(method, path, body=None, as_form=False):
    """Returns (status, parsed JSON body or the raw text)."""
    conn = http.client.HTTPConnection(*ADDR, timeout=120)
    headers, data = {}, None
    if body is not None:
        if as_form:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = form(body).encode()
        else:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
    try:
        try:
            conn.request(method, path, body=data, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while sending (413 on the declared length): the answer is there
        r = conn.getresponse()
        raw = r.read()
        status = r.status
    except (ConnectionError, http.client.HTTPException) as e:
        return 0, f"connection: {e}"
    finally:
        conn.close()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:300]


def total(entity):
    st, body = request("GET", PATHS[entity] + "?size=1")
    return body["total"] if st == 200 else f"GET failed: {st} {body}"


def kong_shape(body):
    """Kong's error bodies: {"message": string}, or field → message(s)."""
    if not isinstance(body, dict) or not body:
        return False
    if set(body) == {"message"}:
        return isinstance(body["message"], str)
    return all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(e, str) for e in v))
               for v in body.values())


def run_case(case, report):
    if "skip_http" in case:
        report.skipped += 1
        return
    entity, op = case["entity"], case["op"]
    kind = case.get("http_kind", case["kind"])
    base = PATHS[entity]
    inp = table.expand(case.get("input"), SEEDS)
    pk = table.expand(case.get("pk") or {}, SEEDS)
    key = pk.get("id", "")
    as_form = bool(case.get("http_form"))
    ok_status = 200
    if op == "insert":
        call, ok_status = ("POST", base, inp), 201
    elif op == "update":
        call = ("PATCH", f"{base}/{quote(key)}", inp)
    elif op == "full_update":
        call = ("PUT", base, dict(inp, id=key))
    elif op == "find":
        call = ("GET", f"{base}/{quote(key)}", None)
    elif op == "delete":
        call, ok_status = ("DELETE", f"{base}/{quote(key)}", None), 204
    elif op in ("find_all", "count"):
        call = ("GET", f"{base}?{query(inp or {})}", None)
    elif op == "page":
        params = dict(inp or {})
        if "size" in case:
            params["size"] = case["size"]
        off = case.get("offset")
        if isinstance(off, dict) and "$token" in off:
            off = table.spoil(request("GET", base + "?size=1")[1]["offset"], off)
        elif off is not None:
            off = table.expand(off, SEEDS)
        if off is not None:
            params["offset"] = off
        call = ("GET", f"{base}?{query(params)}", None)
    else:
        report.result(case, [f"unknown op {op}"])
        return
    before = total(entity)
    status, body = request(*call, as_form=as_form)
    want = case.get("http_status", ok_status if kind == "ok" else STATUS.get(kind))
    problems = []
    if status != want:
        problems.append(f"expected {want}, got {status}: {str(body)[:300]}")
    elif kind == "ok":
        if "rows" in case and body.get("total") != case["rows"]:
            problems.append(f"expected {case['rows']} rows, got {body.get('total')}")
    elif not kong_shape(body):
        problems.append(f"not Kong's error shape: {str(body)[:300]}")
    elif "http_message" in case:
        if case["http_message"] not in str(body.get("message")):
            problems.append(f"expected a message with '{case['http_message']}': {body}")
    elif kind == "notfound" and body != {"message": "Not found"}:
        problems.append(f"expected Not found: {body}")
    elif "field" in case and "http_status" not in case and case["field"] not in body:
        problems.append(f"no message under '{case['field']}': {str(body)[:300]}")
    after = total(entity)
    if after != before:
        problems.append(f"{entity} rows: {before} before, {after} after")
    report.result(case, problems)


SEEDS = {}


def seed(entity, placeholder, **fields):
    st, body = request("POST", PATHS[entity], table.expand(fields, SEEDS))
    if st != 201:
        sys.exit(f"bad_input_http: seed {entity}: {st} {body}")
    SEEDS[placeholder] = body["id"]


def setup(tmp):
    why = table.backend_env(ENV, BACKEND, tmp, KDAO, "_bad_http")
    if why:
        skip(why)
    # 1 MiB values must reach the validator; 20 MB ones are the transport's to refuse (413).
    ENV["KDAO_ADMIN_MAX_BODY"] = str(4 << 20)


def main():
    global ADDR
    if subprocess.run([KDAO, "serve", "--help"], capture_output=True).returncode != 0:
        skip("this kdao has no admin API")
    tmp = tempfile.mkdtemp(prefix="kdao-bad-http-")
    setup(tmp)
    log = open(os.path.join(tmp, "serve.err"), "w+")
    server = subprocess.Popen([KDAO, "serve", "--listen", "127.0.0.1:0"], env=ENV, stderr=log)
    try:
        for _ in range(100):
            log.seek(0)
            for line in log.read().splitlines():
                if line.startswith("kdao admin API listening on http://"):
                    host, port = line.rsplit("/", 1)[-1].rsplit(":", 1)
                    ADDR = (host, int(port))
            if ADDR or server.poll() is not None:
                break
            time.sleep(0.1)
        if not ADDR:
            log.seek(0)
            sys.exit(f"bad_input_http: kdao serve did not start: {log.read()}")
        seed("apis", "@api", name="seed-a", hosts=["a.com"], upstream_url="http://a.com")
        seed("apis", "@api2", name="seed-b", hosts=["b.com"], upstream_url="http://b.com")
        seed("apis", "@api3", name="seed-c", hosts=["c.com"], upstream_url="http://c.com")
        seed("consumers", "@consumer", username="seed-u1", custom_id="seed-c1")
        seed("consumers", "@consumer2", username="seed-u2")
        seed("plugins", "@plugin", name="key-auth", api_id="@api")
        seed("plugins", "@plugin2", name="key-auth", api_id="@api2")
        seed("upstreams", "@upstream", name="seed-ups.com")
        cases = table.load()
        report = table.Report("bad_input_http", BACKEND)
        for case in cases:
            if case["id"].startswith(ONLY):
                run_case(case, report)
        status = report.summary(len(cases))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if BACKEND == "postgres":
        subprocess.run([KDAO, "migrations", "reset", "--yes"], env=ENV, capture_output=True)
    return status


sys.exit(main())
