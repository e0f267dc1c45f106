"""Shared fixtures for the Algorithmia client compatibility tests.

This file imports neither client: the HL tests (``algorithmia==2.0.5``) and the
GEN tests (``algorithmia-api-client==1.5.5``) run in separate virtualenvs (see
run.sh) and share only this server fixture.

The session fixture starts ``algohub serve`` on a free loopback port with a
fresh data directory, bootstraps a cluster admin and its key through the CLI,
waits for ``/healthz``, and stops the server with SIGTERM at the end (checking
that it exits 0).
"""

import itertools
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller

ALGOHUB_BIN = os.environ.get("ALGOHUB_BIN", "/work/main/target/debug/algohub")
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")

_counter = itertools.count(1)


def unique(prefix):
    """A fresh name that matches the Algorithmia name pattern (lowercase, no '-')."""
    return "%s%d%d" % (prefix, os.getpid() % 1000, next(_counter))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, key=None, body=None, headers=None, timeout=10):
    """A tiny urllib client for set-up and raw-wire checks: (status, headers, bytes)."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if key is not None:
        hdrs["Authorization"] = key
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def example(name):
    """The text of examples/<name> (e.g. fail.wat, slow.wat)."""
    with open(os.path.join(EXAMPLES_DIR, name), "rb") as f:
        return f.read()


# Small guest modules for the algorithm tests (docs/guest-abi.md).

# chatty: the echo template that first prints CHATTY_LINE to stderr (its
# printed output, returned as metadata.stdout to the owner's side).
CHATTY_LINE = "chatty: starting\n"
CHATTY_WAT = rb"""
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 64) "chatty: starting\n")
  (func (export "_start")
    (local $n i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 17))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 65536))
        (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (local.get $n))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br $read))))
)
"""


def const_wat(text):
    """A module that ignores its input and answers the text result `text` (ASCII, no quotes)."""
    assert text.isascii() and '"' not in text and "\\" not in text
    return (
        """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "algohub" "set_content_type" (func $set_content_type (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "text")
  (data (i32.const 128) "%s")
  (func (export "_start")
    (call $set_content_type (i32.const 64) (i32.const 4))
    (i32.store (i32.const 0) (i32.const 128))
    (i32.store (i32.const 4) (i32.const %d))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
"""
        % (text, len(text))
    ).encode()


def upload_artifact(server, key, owner, algo, body, content_type="text/plain"):
    """PUT /v1/algorithms/{owner}/{algo}/artifact (native route, not in the clients)."""
    status, _, resp = http(
        "PUT",
        "%s/v1/algorithms/%s/%s/artifact" % (server.base_url, owner, algo),
        key=key,
        body=body,
        headers={"Content-Type": content_type},
    )
    assert status == 200, "artifact upload for %s/%s answered %d: %r" % (owner, algo, status, resp)
    return json.loads(resp)


@dataclass
class Server:
    base_url: str
    admin_key: str
    data_dir: str
    env: dict
    log_path: str
    users: dict = field(default_factory=dict)
    # Emails the server sent, as received by the local SMTP sink.
    mailbox: list = field(default_factory=list)

    def cli(self, *args, stdin=None):
        """Runs ``algohub <args>`` against the same data directory; returns stdout."""
        p = subprocess.run(
            [ALGOHUB_BIN, *args],
            env=self.env,
            cwd=self.data_dir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, "algohub %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr)
        return p.stdout

    def create_user(self, username=None, email=None, admin=False):
        """Creates a user through the CLI; returns the username."""
        username = username or unique("u")
        email = email or "%s@example.com" % username
        args = ["admin", "create-user", "--username", username, "--email", email, "--full-name", username.title()]
        if admin:
            args.append("--admin")
        self.cli(*args)
        return username

    def create_key(self, username, label="compat"):
        """Creates a key through the CLI and waits until the running server accepts it."""
        key = self.cli("admin", "create-key", "--username", username, "--label", label).strip()
        assert len(key) == 28 and key.startswith("sim"), "CLI printed an unexpected key: %r" % key
        self.wait_for_key(key, username)
        return key

    def create_user_with_key(self, username=None, admin=False):
        username = self.create_user(username=username, admin=admin)
        return username, self.create_key(username)

    def wait_for_key(self, key, username, timeout=10.0):
        """The server reads CLI changes through its policy poller (~250 ms)."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status, _, _ = http("GET", "%s/v1/users/%s" % (self.base_url, username), key="Simple " + key)
            if status == 200:
                return
            time.sleep(0.05)
        raise AssertionError("the server never accepted the CLI key of %s (last status %s)" % (username, status))


def _wait_health(base_url, proc, log_path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path) as f:
                raise AssertionError("algohub exited early (%s):\n%s" % (proc.returncode, f.read()[-4000:]))
        try:
            status, _, body = http("GET", base_url + "/healthz", timeout=1)
            if status == 200 and json.loads(body).get("status") == "ok":
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("algohub did not answer /healthz within %.0fs" % timeout)


class _Sink:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self, mailbox):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):
        self.mailbox.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def server():
    assert os.access(ALGOHUB_BIN, os.X_OK), "algohub binary not found at %s (set ALGOHUB_BIN)" % ALGOHUB_BIN
    tmp = tempfile.TemporaryDirectory(prefix="algohub-compat-")
    data_dir = tmp.name
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGOHUB_")}
    env["ALGOHUB_DATA_DIR"] = os.path.join(data_dir, "data")
    env["ALGOHUB_LOG_LEVEL"] = "warn"
    # The http-runtime tests run their upstream on loopback.
    env["ALGOHUB_HTTP_UPSTREAM_ALLOW_PRIVATE"] = "true"
    port = _free_port()
    base_url = "http://127.0.0.1:%d" % port

    srv = Server(base_url=base_url, admin_key="", data_dir=data_dir, env=env, log_path=os.path.join(data_dir, "server.log"))
    # A real local SMTP server receives the invitation emails.
    smtp = Controller(_Sink(srv.mailbox), hostname="127.0.0.1", port=_free_port())
    smtp.start()
    env["ALGOHUB_SMTP_URL"] = "smtp://127.0.0.1:%d" % smtp.port
    env["ALGOHUB_SMTP_FROM"] = "algohub <noreply@algohub.test>"
    # Bootstrap before serving (the CLI applies migrations itself).
    srv.create_user("admin", "admin@example.com", admin=True)
    admin_key = srv.cli("admin", "create-key", "--username", "admin", "--label", "bootstrap").strip()
    assert len(admin_key) == 28 and admin_key.startswith("sim"), admin_key
    srv.admin_key = admin_key

    log = open(srv.log_path, "w")
    proc = subprocess.Popen(
        [ALGOHUB_BIN, "serve", "--listen", "127.0.0.1:%d" % port],
        env=env,
        cwd=data_dir,  # so no stray ./algohub.toml is read
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_health(base_url, proc, srv.log_path)
        srv.wait_for_key(admin_key, "admin")
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = "killed after a SIGTERM timeout"
        else:
            rc = "exited before the end of the session with %s" % proc.returncode
        log.close()
        smtp.stop()
        with open(srv.log_path) as f:
            full = f.read()
        tail = full[-4000:]
        keep = os.environ.get("ALGOHUB_COMPAT_LOG")
        if keep:  # keep the server log for debugging
            with open(keep, "w") as f:
                f.write(full)
        tmp.cleanup()
    assert rc == 0, "algohub did not stop cleanly on SIGTERM: %s\n%s" % (rc, tail)
