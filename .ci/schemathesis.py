#!/usr/bin/env python3
"""Runs schemathesis against a running algohub over every documented operation.

Starts `algohub serve` on a free port with a fresh data directory, makes a
cluster admin and a plain user with the CLI, each with a key, and runs
`schemathesis run` on /openapi.json once per key with the checks
not_a_server_error and response_schema_conformance. Prints, per key, the
operations tested, the responses received, the responses with a 5xx status and
the responses that did not match the document; exits 1 when either of the last
two is not 0 (or schemathesis failed otherwise).

So that operations answer more than 404, a small fixture (an organization, an
app, a team, algorithms with a published version, a data collection with a
file) is made first, and schemathesis draws path parameters from its names
most of the time (a dictionary). The plain key runs first: the admin run may
delete or suspend the plain user.

Usage: schemathesis.py ALGOHUB_BIN SCHEMATHESIS_BIN REPORT_DIR [MAX_EXAMPLES]
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, key=None, body=None, content_type="application/json"):
    """(status, parsed JSON body or None)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("Authorization", "Simple " + key)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    except OSError:
        return None, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def get(url, key=None):
    return call("GET", url, key)[0]


def fixture(base, admin_key, plain_key):
    """Makes what the dictionaries name; returns the dictionaries."""
    def need(method, path, key, body=None, want=(200, 201, 204), **kw):
        status, answer = call(method, base + path, key, body, **kw)
        if status not in want:
            sys.exit("schemathesis.py: fixture %s %s answered %s: %s" % (method, path, status, answer))
        return answer
    types = need("GET", "/v1/organization/types", admin_key)
    need("POST", "/v1/organizations", admin_key, {"org_name": "st-org", "org_email": "org@example.com", "type_id": types[0]["id"]})
    need("POST", "/v1/apps/st-admin", admin_key, {"name": "st-app"})
    need("POST", "/v1/organizations/st-org/teams", admin_key, {"name": "st-team"})
    versions = []
    for owner, key, algo in (("st-admin", admin_key, "st_algo"), ("st-plain", plain_key, "p_algo")):
        need("POST", "/v1/algorithms/" + owner, key, {
            "name": algo,
            "details": {"label": algo, "summary": "echo"},
            "settings": {"source_visibility": "open", "license": "apache2", "network_access": "isolated",
                         "pipeline_enabled": False, "royalty_microcredits": 0, "language": "rust",
                         "environment": "cpu", "package_set": "wasm32-wasi"},
        })
        need("POST", "/v1/algorithms/%s/%s/compile" % (owner, algo), key)
        v = need("POST", "/v1/algorithms/%s/%s/versions" % (owner, algo), key, {"version_info": {"version_type": "minor"}})
        versions.append(v["version_info"]["git_hash"])
        need("POST", "/v1/algo/%s/%s/latestPrivate" % (owner, algo), key, b"hello", content_type="text/plain")
        need("POST", "/v1/data/.my", key, {"name": "st"})
        need("PUT", "/v1/data/.my/st/a.txt", key, b"hello", content_type="application/octet-stream")
    return {
        "accounts": ["st-admin", "st-plain", "st-org"],
        "algorithms": ["st_algo", "p_algo"],
        "versions": ["0.1.0", "latestPrivate"] + versions,
        "apps": ["st-app"],
        "teams": ["st-team"],
        "data": [".my/st", ".my/st/a.txt", "st-plain/st", "st-admin/st/a.txt"],
    }


def config(path, dictionaries):
    """A schemathesis.toml drawing path parameters from the fixture's names."""
    bind = {
        "accounts": ["owner", "username", "org", "org_name", "account"],
        "algorithms": ["algo"],
        "versions": ["version", "hash"],
        "apps": ["app"],
        "teams": ["team"],
        "data": ["path"],
    }
    with open(path, "w") as f:
        f.write("[dictionaries]\n")
        for name, values in dictionaries.items():
            f.write("%s = { values = %s }\n" % (name, json.dumps(values)))
        f.write("\n[parameters]\n")
        for name, params in bind.items():
            for p in params:
                f.write('"path.%s" = { dictionary = "%s", probability = 0.8 }\n' % (p, name))


def wait_for(what, ok, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    sys.exit("schemathesis.py: %s did not happen within %.0fs" % (what, timeout))


def counts(report_dir):
    """(operations, responses, 5xx responses, schema violations) of one run."""
    [run] = glob.glob(os.path.join(report_dir, "json-*.json"))
    [har] = glob.glob(os.path.join(report_dir, "har-*.json"))
    with open(run) as f:
        report = json.load(f)
    with open(har) as f:
        entries = json.load(f)["log"]["entries"]
    statuses = [e["response"]["status"] for e in entries]
    by_code = {f["code"]: f["count"] for f in report.get("failures", [])}
    return {
        "operations": report["operations"]["tested"],
        "responses": len(statuses),
        "5xx": sum(1 for s in statuses if s >= 500),
        "server_error_failures": by_code.get("ST101", 0),
        "mismatches": by_code.get("ST108", 0),
        "other_failures": sum(n for c, n in by_code.items() if c not in ("ST101", "ST108")),
        "errors": len(report.get("errors", [])),
        "exit_code": report["exit_code"],
    }


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    algohub, schemathesis, report_root = (os.path.abspath(a) if os.sep in a else a for a in sys.argv[1:4])
    max_examples = sys.argv[4] if len(sys.argv) > 4 else "30"
    tmp = tempfile.mkdtemp(prefix="algohub-schemathesis-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGOHUB_")}
    env["ALGOHUB_DATA_DIR"] = os.path.join(tmp, "data")
    env["ALGOHUB_LOG_LEVEL"] = "warn"

    def cli(*args):
        p = subprocess.run([algohub, *args], env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            sys.exit("schemathesis.py: algohub %s failed: %s" % (" ".join(args), p.stderr))
        return p.stdout.strip()

    keys = {}
    for name, admin in (("admin", True), ("plain", False)):
        username = "st-" + name
        args = ["admin", "create-user", "--username", username, "--email", username + "@example.com", "--full-name", name]
        cli(*(args + ["--admin"] if admin else args))
        keys[name] = (username, cli("admin", "create-key", "--username", username, "--label", "schemathesis"))

    port = free_port()
    base = "http://127.0.0.1:%d" % port
    log_path = os.path.join(report_root, "server.log")
    os.makedirs(report_root, exist_ok=True)
    log = open(log_path, "w")
    server = subprocess.Popen([algohub, "serve", "--listen", "127.0.0.1:%d" % port], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    results = {}
    try:
        wait_for("/healthz", lambda: get(base + "/healthz") == 200)
        for name, (username, key) in keys.items():
            wait_for("the %s key being accepted" % name, lambda: get("%s/v1/users/%s" % (base, username), key) == 200)
        config_path = os.path.join(report_root, "schemathesis.toml")
        config(config_path, fixture(base, keys["admin"][1], keys["plain"][1]))
        for name in ("plain", "admin"):
            key = keys[name][1]
            report_dir = os.path.join(report_root, name)
            shutil.rmtree(report_dir, ignore_errors=True)
            cmd = [
                schemathesis, "--config-file", config_path, "run", base + "/openapi.json",
                "--checks", "not_a_server_error,response_schema_conformance",
                "--header", "Authorization: Simple " + key,
                "--max-examples", max_examples,
                "--phases", "examples,coverage,fuzzing",
                # One worker: with two, CPython 3.11's AST constructor (which
                # hypothesis reaches when it describes a strategy) can fail
                # with "SystemError: AST constructor recursion depth mismatch"
                # (its depth counter is not per thread; fixed in 3.12), which
                # schemathesis reports as an error of the run.
                "--workers", "1",
                "--seed", "1",
                "--generation-database", "none",
                "--no-color",
                "--report", "json,har",
                "--report-dir", report_dir,
            ]
            shown = [c if not c.startswith("Authorization:") else "Authorization: Simple <%s key>" % name for c in cmd]
            print("schemathesis.py: " + " ".join(shown), flush=True)
            started = time.monotonic()
            # (From the report directory: schemathesis keeps a cache in .schemathesis/.)
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=report_root)
            with open(os.path.join(report_root, name + ".log"), "w") as f:
                f.write(p.stdout + p.stderr)
            if p.returncode != 0:
                # The failures themselves, for the CI log.
                out = p.stdout
                i = out.find("FAILURES")
                print(out[i if i >= 0 else 0:][-20000:], flush=True)
            results[name] = counts(report_dir)
            results[name]["seconds"] = round(time.monotonic() - started)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    failed = False
    print("schemathesis (max %s examples per operation; reports in %s):" % (max_examples, report_root))
    print("  key    operations  responses  5xx  not matching the document  other failures  errors  seconds")
    for name, c in results.items():
        print("  %-6s %10d %10d %4d %26d %15d %7d %8d" % (
            name, c["operations"], c["responses"], c["5xx"], c["mismatches"], c["other_failures"], c["errors"], c["seconds"]))
        if c["5xx"] or c["server_error_failures"] or c["mismatches"] or c["other_failures"] or c["errors"] or c["exit_code"] != 0:
            failed = True
    print("schemathesis: %s" % ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
