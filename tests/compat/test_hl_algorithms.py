"""HL client (algorithmia 2.0.5) against algohub: algorithm management and
calls (reference §1.3, §1.4, §2, §4.7, §6 `Algorithm`, §8).

Run in the HL virtualenv only (see run.sh). A new algorithm starts from the
built-in echo module, so create -> compile -> publish -> pipe needs no upload;
other behaviour comes from WAT modules uploaded through the native route
`PUT /v1/algorithms/{owner}/{algo}/artifact` (examples/fail.wat, slow.wat and
the small modules in conftest).

Every exchange of the clients is recorded, and each test checks that no 2xx JSON
body carries an `error` key (§1.4).
"""

import json
import time

import pytest

import Algorithmia  # noqa: E402  (an import failure fails the suite: no skips)
from Algorithmia.algorithm import OutputType  # noqa: E402
from Algorithmia.async_response import AsyncResponse  # noqa: E402
from Algorithmia.errors import AlgorithmException  # noqa: E402

from conftest import CHATTY_LINE, CHATTY_WAT, const_wat, example, http, unique, upload_artifact  # noqa: E402
from cli_support import run_cli, write_cli_config  # noqa: E402
from hl_support import error_json, make_hl_fixture, query_of, sent_json  # noqa: E402

SETTINGS = {"source_visibility": "open", "license": "apache2", "network_access": "isolated", "pipeline_enabled": False}


@pytest.fixture()
def hl(server):
    make, recorders = make_hl_fixture(Algorithmia, server)
    yield make
    for r in recorders:
        r.check_no_error_key_in_success()


@pytest.fixture()
def owner(server, hl):
    """A fresh user: (username, key, HL client)."""
    name, key = server.create_user_with_key()
    return name, key, hl(key)


def create_algo(c, username, name=None, label="Compat"):
    name = name or unique("algo")
    a = c.algo("%s/%s" % (username, name))
    created = a.create(details={"label": label, "summary": "a compat test"}, settings=dict(SETTINGS))
    return name, a, created


def publish(a, version_type="minor", callability="public", notes="notes"):
    return a.publish(
        version_info={"version_type": version_type, "release_notes": notes},
        settings={"algorithm_callability": callability},
    )


def published_algo(server, c, username, artifact=None, callability="public", content_type="text/plain"):
    """Creates, (uploads,) compiles and publishes 0.1.0; returns (name, Algorithm, hash)."""
    name, a, _ = create_algo(c, username)
    if artifact is not None:
        upload_artifact(server, c.apiKey, username, name, artifact, content_type=content_type)
    h = a.compile()["version_info"]["git_hash"]
    v = publish(a, callability=callability)
    assert v["version_info"]["semantic_version"] == "0.1.0", v
    return name, a, h


# ----------------------------------------------------------------------------- management


def test_create_compile_publish_info(server, owner):
    user, key, c = owner
    name, a, created = create_algo(c, user)
    assert isinstance(created, dict) and "error" not in created, created
    assert created["name"] == name
    assert len(created["id"]) == 36
    assert created["details"]["label"] == "Compat"
    assert created["settings"]["algorithm_callability"] == "private"  # the initial callability
    for k, v in SETTINGS.items():
        assert created["settings"][k] == v, (k, created)
    # HL posted {"name", "details", "settings"} as JSON with the bare key.
    data, resp = c.recorder.last("POST", "/v1/algorithms/%s" % user)
    assert sent_json(data) == {"name": name, "details": {"label": "Compat", "summary": "a compat test"}, "settings": SETTINGS}
    assert resp.request.headers["Authorization"] == key
    assert resp.status_code == 200

    assert a.exists() is True

    compiled = a.compile()
    _, resp = c.recorder.last("POST", "/v1/algorithms/%s/%s/compile" % (user, name))
    assert resp.status_code == 200 and len(c.recorder.matching("POST", "/compile")) == 1, "compile was retried"
    h = compiled["version_info"]["git_hash"]
    assert len(h) == 40 and all(ch in "0123456789abcdef" for ch in h), h
    assert compiled["compilation"]["successful"] is True
    assert compiled["build"]["commit_sha"] == h
    assert compiled["build"]["status"] == "succeeded"
    assert compiled["version_info"]["insights_enabled"] is False

    v = publish(a, notes="first release")
    data, _ = c.recorder.last("POST", "/v1/algorithms/%s/%s/versions" % (user, name))
    # HL sends all five keys, empty dicts included.
    assert sent_json(data) == {
        "details": {},
        "settings": {"algorithm_callability": "public"},
        "version_info": {"version_type": "minor", "release_notes": "first release"},
        "source": {},
        "scmsCredentials": {},
    }
    assert v["version_info"]["semantic_version"] == "0.1.0"
    assert v["version_info"]["git_hash"] == h
    assert v["version_info"]["release_notes"] == "first release"
    assert v["settings"]["algorithm_callability"] == "public"
    assert v["id"] == created["id"]

    # info(): the version list; info(hash): one version.
    info = a.info()
    assert isinstance(info["results"], list) and info["results"], info
    assert h in [r["version_info"].get("git_hash") for r in info["results"]]
    one = a.info(h)
    assert one["version_info"]["git_hash"] == h
    assert one["version_info"]["semantic_version"] == "0.1.0"
    assert one["name"] == name

    # Builds: get_builds sends limit=56.
    builds = a.get_builds()
    _, resp = c.recorder.last("GET", "/v1/algorithms/%s/%s/builds" % (user, name))
    assert query_of(resp) == {"limit": "56"}
    assert len(builds["results"]) == 1, builds
    b = builds["results"][0]
    assert b["commit_sha"] == h and b["status"] == "succeeded"
    assert b["resource_type"] == "algorithm_build"
    assert b["started_at"]
    assert b["version_info"]["semantic_version"] == "0.1.0"
    assert a.get_build(b["build_id"])["build_id"] == b["build_id"]
    logs = a.get_build_logs(b["build_id"])
    assert isinstance(logs["logs"], str) and logs["logs"]


def test_versions_filters_and_version_types(server, owner):
    user, _, c = owner
    name, a, _ = create_algo(c, user)
    a.compile()
    assert publish(a, "minor")["version_info"]["semantic_version"] == "0.1.0"
    a.compile()
    assert publish(a, "major")["version_info"]["semantic_version"] == "1.0.0"
    a.compile()
    assert publish(a, "revision", callability="private")["version_info"]["semantic_version"] == "1.0.1"
    h = a.compile()["version_info"]["git_hash"]  # an unpublished build

    everything = a.versions(limit=50)
    _, resp = c.recorder.last("GET", "/v1/algorithms/%s/%s/versions" % (user, name))
    assert query_of(resp) == {"limit": "50"}
    assert len(everything["results"]) == 4, everything
    published = a.versions(limit=50, published=True)
    _, resp = c.recorder.last("GET", "/versions")
    assert query_of(resp) == {"limit": "50", "published": "true"}
    assert sorted(r["version_info"]["semantic_version"] for r in published["results"]) == ["0.1.0", "1.0.0", "1.0.1"]
    public = a.versions(limit=50, callable=True)
    assert sorted(r["version_info"]["semantic_version"] for r in public["results"]) == ["0.1.0", "1.0.0"]
    unpublished = [r for r in everything["results"] if not r["version_info"].get("semantic_version")]
    assert [r["version_info"]["git_hash"] for r in unpublished] == [h]
    for r in everything["results"]:
        assert r["version_info"]["insights_enabled"] is False
    # Paging with limit and marker.
    first = a.versions(limit=1)
    assert len(first["results"]) == 1 and first["marker"], first
    second = a.versions(limit=1, marker=first["marker"])
    assert len(second["results"]) == 1
    assert second["results"][0] != first["results"][0]


def test_exists_false_for_missing_algorithm(owner):
    user, _, c = owner
    a = c.algo("%s/%s" % (user, unique("nosuch")))
    assert a.exists() is False
    _, resp = c.recorder.last("GET", "/v1/algorithms/%s/%s" % (user, a.algoname))
    assert resp.status_code == 404
    assert "No such algorithm" in error_json(resp)["message"]


def test_create_errors_raise(owner):
    user, _, c = owner
    name, a, _ = create_algo(c, user)
    with pytest.raises(Exception) as ei:  # the name is taken
        a.create(details={"label": "again"}, settings=dict(SETTINGS))
    assert "Non-Algorithm related Failure" in str(ei.value)
    _, resp = c.recorder.last("POST", "/v1/algorithms/%s" % user)
    assert resp.status_code == 409
    error_json(resp)
    with pytest.raises(Exception):  # settings missing the mandatory fields
        c.algo("%s/%s" % (user, unique("nosettings"))).create(details={"label": "x"}, settings={})
    _, resp = c.recorder.last("POST", "/v1/algorithms/%s" % user)
    assert resp.status_code == 400
    error_json(resp)


def test_publish_without_new_build_raises_after_one_retry(owner):
    user, _, c = owner
    name, a, _ = create_algo(c, user)
    with pytest.raises(Exception):  # nothing compiled yet
        publish(a)
    a.compile()
    publish(a)
    before = len(c.recorder.matching("POST", "/versions"))
    with pytest.raises(Exception) as ei:  # the build is already published
        publish(a)
    assert "Non-Algorithm related Failure" in str(ei.value)
    attempts = c.recorder.matching("POST", "/v1/algorithms/%s/%s/versions" % (user, name))[before:]
    assert len(attempts) == 2, "HL retries a failed publish once (§8.9)"
    for _, resp in attempts:
        assert resp.status_code == 409
        error_json(resp)
    assert a.versions(published=True)["results"][0]["version_info"]["semantic_version"] == "0.1.0"


def test_update_form_encoded_is_refused(owner):
    """HL 2.0.5 update() form-encodes its dict (§6); the server answers 400 and
    changes nothing (§8.10)."""
    user, _, c = owner
    name, a, _ = create_algo(c, user)
    with pytest.raises(Exception):
        a.update(details={"label": "Changed"}, settings={"license": "mit"})
    data, resp = c.recorder.last("PUT", "/v1/algorithms/%s/%s" % (user, name))
    assert resp.request.headers.get("Content-Type") == "application/x-www-form-urlencoded"
    assert resp.status_code == 400, (resp.status_code, resp.text)
    error_json(resp)
    got = c.getJsonHelper("/v1/algorithms/%s/%s" % (user, name))
    assert got["details"]["label"] == "Compat" and got["settings"]["license"] == "apache2"


def test_algorithm_id_via_get(owner):
    user, _, c = owner
    name, a, created = create_algo(c, user)
    got = c.getJsonHelper("/v1/algorithms/%s/%s" % (user, name))
    assert got["id"] == created["id"]
    assert got["version_info"]["insights_enabled"] is False
    # Algorithm.get_algorithm_id() prints the URL and reads `id`.
    assert a.get_algorithm_id() == created["id"]


# ----------------------------------------------------------------------------- calls


def test_pipe_input_types(server, owner, hl):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user)
    caller = hl(server.create_user_with_key()[1])  # anyone may call a public version
    algo = caller.algo("%s/%s" % (user, name))

    r = algo.pipe("héllo wörld")
    assert r.result == "héllo wörld" and r.metadata.content_type == "text"
    assert isinstance(r.metadata.duration, float) and r.metadata.duration >= 0
    assert r.metadata.stdout is None
    _, resp = caller.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.request.headers["Content-Type"] == "text/plain"
    assert resp.status_code == 200
    body = resp.json()
    assert body["async"] is False and body["request_id"].startswith("req-"), body
    assert "async_protocol" not in body

    r = algo.pipe(b"\x00\x9f\xffbinary")
    assert r.result == b"\x00\x9f\xffbinary" and r.metadata.content_type == "binary"
    _, resp = caller.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.request.headers["Content-Type"] == "application/octet-stream"

    r = algo.pipe(bytearray(b"ba"))
    assert r.result == b"ba" and r.metadata.content_type == "binary"

    r = algo.pipe({"a": [1, 2, {"b": None}], "c": "d"})
    assert r.result == {"a": [1, 2, {"b": None}], "c": "d"} and r.metadata.content_type == "json"
    _, resp = caller.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.request.headers["Content-Type"] == "application/json"

    r = algo.pipe([1, "two", 3.5])
    assert r.result == [1, "two", 3.5] and r.metadata.content_type == "json"
    r = algo.pipe(42)
    assert r.result == 42

    r = algo.pipe(None)  # sent as `null` with Content-Type json
    assert r.result is None
    assert r.metadata.content_type in ("json", "void")
    data, resp = caller.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert data == b"null" and resp.request.headers["Content-Type"] == "application/json"

    r = algo.pipe("")
    assert r.result in ("", None)


def test_algo_ref_forms(server, owner):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user)
    for ref in ("%s/%s" % (user, name), "algo://%s/%s" % (user, name), "/%s/%s" % (user, name)):
        assert c.algo(ref).pipe("ref").result == "ref", ref
        _, resp = c.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
        assert resp.status_code == 200


def test_set_options_stdout_for_owner_only(server, owner, hl):
    user, _, c = owner
    name, _, h = published_algo(server, c, user, artifact=CHATTY_WAT)
    ref = "%s/%s" % (user, name)

    r = c.algo(ref).set_options(stdout=True).pipe("hi")
    assert r.result == "hi"
    assert r.metadata.stdout == CHATTY_LINE
    _, resp = c.recorder.last("POST", "/v1/algo/" + ref)
    assert query_of(resp) == {"timeout": "300", "stdout": "True"}  # Python booleans, capitalised

    # Without stdout=True (HL sends stdout=False), nothing is returned.
    r = c.algo(ref).set_options(stdout=False).pipe("hi")
    assert r.result == "hi" and r.metadata.stdout is None
    r = c.algo(ref).pipe("hi")
    assert r.metadata.stdout is None

    # A caller who is not on the algorithm's side never gets it.
    other = hl(server.create_user_with_key()[1])
    r = other.algo(ref).set_options(stdout=True).pipe("hi")
    assert r.result == "hi"
    assert r.metadata.stdout is None, "stdout is only for the owner: %r" % r.metadata.full_metadata

    # The owner, by hash (an unpublished build is the owner's only).
    r = c.algo("%s/%s" % (ref, h)).set_options(stdout=True).pipe("by hash")
    assert (r.result, r.metadata.stdout) == ("by hash", CHATTY_LINE)


def test_set_options_extra_query_parameters_pass_through(server, owner):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user)
    r = c.algo("%s/%s" % (user, name)).set_options(timeout=60, custom_flag="x").pipe("t")
    assert r.result == "t"  # an unknown extra parameter is ignored, not refused
    _, resp = c.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert query_of(resp) == {"timeout": "60", "stdout": "False", "custom_flag": "x"}


def test_output_raw(server, owner, hl):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user)
    algo = hl(server.create_user_with_key()[1]).algo("%s/%s" % (user, name))
    algo.set_options(output=OutputType.raw)
    assert algo.pipe("plain text") == "plain text"
    _, resp = algo.client.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert query_of(resp)["output"] == "raw"
    assert resp.text == "plain text"
    out = algo.pipe({"k": [1, 2]})
    assert json.loads(out) == {"k": [1, 2]}
    # Binary results come back as the raw bytes (HL then returns response.text).
    algo.pipe(b"\x00\x01\xfe\xff")
    _, resp = algo.client.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.status_code == 200 and resp.content == b"\x00\x01\xfe\xff"


def test_output_raw_algorithm_error_is_400(server, owner):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user, artifact=example("fail.wat"))
    algo = c.algo("%s/%s" % (user, name)).set_options(output=OutputType.raw)
    with pytest.raises(Exception):
        algo.pipe("x")
    _, resp = c.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.status_code == 400
    assert resp.text == "the input is not acceptable"


def test_output_void(server, owner):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user)
    r = c.algo("%s/%s" % (user, name)).set_options(output=OutputType.void).pipe({"x": 1})
    assert isinstance(r, AsyncResponse)
    assert r.async_protocol == "void"
    assert isinstance(r.request_id, str) and r.request_id.startswith("req-")
    _, resp = c.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert query_of(resp)["output"] == "void"
    assert "result" not in resp.json()


def test_fail_module_raises_algorithm_exception(server, owner):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user, artifact=example("fail.wat"))
    with pytest.raises(AlgorithmException) as ei:
        c.algo("%s/%s" % (user, name)).pipe("x")
    e = ei.value
    assert e.message == "the input is not acceptable"
    assert e.error_type == "ValueError"
    assert isinstance(e.stack_trace, str)  # read from `stack_trace` (§1.4)
    _, resp = c.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.status_code == 200  # algorithm errors are HTTP 200 (§2)
    body = resp.json()
    assert isinstance(body["error"]["stacktrace"], str)
    assert isinstance(body["metadata"]["duration"], (int, float))
    assert "result" not in body
    # The same with stdout=True (printed output is not lost on the wire).
    with pytest.raises(AlgorithmException):
        c.algo("%s/%s" % (user, name)).set_options(stdout=True).pipe("x")
    _, resp = c.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.json()["metadata"]["stdout"] == "checking the input...\n"


def test_timeout_stops_slow_module(server, owner):
    user, _, c = owner
    name, a, _ = create_algo(c, user)
    upload_artifact(server, c.apiKey, user, name, example("slow.wat"))
    h = a.compile()["version_info"]["git_hash"]
    algo = c.algo("%s/%s/%s" % (user, name, h)).set_options(timeout=1)
    started = time.monotonic()
    with pytest.raises(AlgorithmException) as ei:
        algo.pipe("x")
    elapsed = time.monotonic() - started
    assert ei.value.error_type == "AlgorithmTimeoutError", (ei.value.message, ei.value.error_type)
    assert ei.value.message
    assert elapsed < 20, "the deadline of 1 s took %.1f s" % elapsed
    _, resp = c.recorder.last("POST", "/v1/algo/%s/%s/%s" % (user, name, h))
    assert resp.status_code == 200 and query_of(resp)["timeout"] == "1"
    # A fractional timeout is accepted too (§1.3: parse as a float).
    with pytest.raises(AlgorithmException) as ei:
        c.algo("%s/%s/%s" % (user, name, h)).set_options(timeout=0.5).pipe("x")
    assert ei.value.error_type == "AlgorithmTimeoutError"


def test_missing_algorithm_raises(owner):
    user, _, c = owner
    ref = "%s/%s" % (user, unique("nosuch"))
    with pytest.raises(Exception) as ei:
        c.algo(ref).pipe("x")
    assert "Non-Algorithm related Failure" in str(ei.value)
    _, resp = c.recorder.last("POST", "/v1/algo/" + ref)
    assert resp.status_code == 404
    assert "No such algorithm" in error_json(resp)["message"]
    with pytest.raises(Exception):
        c.algo("nosuchowner/nosuchalgo").pipe("x")
    _, resp = c.recorder.last("POST", "/v1/algo/nosuchowner/nosuchalgo")
    assert resp.status_code == 404


def test_bad_key_raises(server, owner, hl):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user)
    bad = hl("sim" + "z" * 25)
    with pytest.raises(Exception):
        bad.algo("%s/%s" % (user, name)).pipe("x")
    _, resp = bad.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.status_code == 401
    error_json(resp)


def test_version_references(server, owner, hl):
    """Exact, `0.*`, `0.1.*`, latest public, hash (from the compile result) and
    latestPrivate (§2), each version told apart by what it answers."""
    user, key, c = owner
    name, a, _ = create_algo(c, user)
    ref = "%s/%s" % (user, name)
    h1 = a.compile()["version_info"]["git_hash"]  # echo
    publish(a, "minor")  # 0.1.0 public: echo
    upload_artifact(server, key, user, name, const_wat("second"))
    h2 = a.compile()["version_info"]["git_hash"]
    publish(a, "minor")  # 0.2.0 public: "second"
    upload_artifact(server, key, user, name, const_wat("third"))
    h3 = a.compile()["version_info"]["git_hash"]
    v = publish(a, "minor", callability="private")  # 0.3.0 private: "third"
    assert v["version_info"]["semantic_version"] == "0.3.0"
    upload_artifact(server, key, user, name, const_wat("unpublished"))
    h4 = a.compile()["version_info"]["git_hash"]  # a build only
    assert len({h1, h2, h3, h4}) == 4

    def result(client, version=None):
        r = client.algo(ref + ("/" + version if version else "")).pipe("input")
        return r.result

    expected = {
        None: "second",  # latest public
        "0.1.0": "input",
        "0.2.0": "second",
        "0.3.0": "third",  # exact private version, for the owner
        "0.*": "second",
        "0.1.*": "input",
        "0.2.*": "second",
        "latestPrivate": "third",
        h1: "input",
        h4: "unpublished",
    }
    for version, want in expected.items():
        assert result(c, version) == want, version
    # HL sends the version verbatim, `*` unescaped.
    _, resp = c.recorder.matching("POST", "/v1/algo/%s/0.2.*" % ref)[-1]
    assert resp.request.path_url.startswith("/v1/algo/%s/0.2.*" % ref)

    # Another user: public versions only.
    other = hl(server.create_user_with_key()[1])
    assert result(other) == "second"
    assert result(other, "0.1.0") == "input"
    assert result(other, "0.*") == "second"
    for version in ("0.3.0", h4, "1.*", "9.9.9"):
        with pytest.raises(Exception):
            result(other, version)
        _, resp = other.recorder.last("POST", "/v1/algo/%s/%s" % (ref, version))
        assert 400 <= resp.status_code < 500, (version, resp.status_code, resp.text)
        error_json(resp)
    # Unknown versions for the owner too.
    for version in ("1.*", "9.9.9", "0.9.*"):
        with pytest.raises(Exception):
            result(c, version)
        _, resp = c.recorder.last("POST", "/v1/algo/%s/%s" % (ref, version))
        assert resp.status_code == 404, (version, resp.status_code, resp.text)


def test_private_algorithm_is_hidden_from_others(server, owner, hl):
    user, _, c = owner
    name, _, _ = published_algo(server, c, user, callability="private")
    assert c.algo("%s/%s/0.1.0" % (user, name)).pipe("mine").result == "mine"
    other = hl(server.create_user_with_key()[1])
    with pytest.raises(Exception):
        other.algo("%s/%s" % (user, name)).pipe("x")
    _, resp = other.recorder.last("POST", "/v1/algo/%s/%s" % (user, name))
    assert resp.status_code in (403, 404)
    assert other.algo("%s/%s" % (user, name)).exists() is False


def test_cli_run(server, owner, tmp_path):
    """`algo run` (§6 CLI) reads ~/.algorithmia/config from HOME."""
    user, key, c = owner
    name, _, _ = published_algo(server, c, user)
    home = write_cli_config(tmp_path, server.base_url, key)
    out = run_cli(home, "run", "%s/%s" % (user, name), "-d", "hello cli")
    assert out.strip() == "hello cli"
    out = run_cli(home, "run", "%s/%s" % (user, name), "-j", '{"a": 1}')
    assert out.strip() == "{'a': 1}"
    out = run_cli(home, "run", "%s/%s" % (user, name), "-t", "as text", "--timeout", "30")
    assert out.strip() == "as text"
    outfile = tmp_path / "result.bin"
    src = tmp_path / "input.bin"
    src.write_bytes(b"\x00\x01binary")
    run_cli(home, "run", "%s/%s" % (user, name), "-B", str(src), "-o", str(outfile))
    assert outfile.read_bytes() == b"\x00\x01binary"
    # `algo builds user algo`: GET .../builds?limit=56, prints `results` as JSON.
    builds = json.loads(run_cli(home, "builds", user, name))
    assert len(builds) == 1 and builds[0]["status"] == "succeeded"


def test_raw_wire_call_of_hl_shape(server, owner):
    """The documented JSON of a success: result, metadata.content_type/duration,
    async false and a request id; never an `error` key (§2, §8.2-3)."""
    user, key, c = owner
    name, _, _ = published_algo(server, c, user)
    status, _, body = http(
        "POST", "%s/v1/algo/%s/%s" % (server.base_url, user, name), key=key, body=b"w", headers={"Content-Type": "text/plain"}
    )
    r = json.loads(body)
    assert status == 200
    assert r["result"] == "w" and r["metadata"]["content_type"] == "text"
    assert isinstance(r["metadata"]["duration"], float)
    assert r["async"] is False and r["request_id"].startswith("req-")
    assert "error" not in r


def test_stdout_for_org_members(server, hl):
    """stdout is honoured for the owner's side: members of the owning org (§2)."""
    admin = hl()
    org = unique("horg")
    admin.create_org({
        "org_name": org, "org_label": "Org", "org_contact_name": "C", "org_email": "%s@example.org" % org,
        "org_url": "https://%s.example.org" % org, "type_id": "basic",
    })
    member, member_key = server.create_user_with_key()
    assert admin.invite_to_org(org, member).status_code == 204  # a cluster admin adds directly
    m = hl(member_key)
    name, a, created = create_algo(m, org)
    assert created["name"] == name
    upload_artifact(server, member_key, org, name, CHATTY_WAT)
    h = a.compile()["version_info"]["git_hash"]
    r = m.algo("%s/%s/%s" % (org, name, h)).set_options(stdout=True).pipe("org")
    assert (r.result, r.metadata.stdout) == ("org", CHATTY_LINE)
    # The org's owner (here the cluster admin who created it) is on the same side.
    r = admin.algo("%s/%s/%s" % (org, name, h)).set_options(stdout=True).pipe("org")
    assert (r.result, r.metadata.stdout) == ("org", CHATTY_LINE)
    # An outsider cannot even call the unpublished build.
    outsider = hl(server.create_user_with_key()[1])
    with pytest.raises(Exception):
        outsider.algo("%s/%s/%s" % (org, name, h)).set_options(stdout=True).pipe("org")


def test_algorithm_errors_listing(server, owner):
    """HL Client.get_algorithm_errors(id): GET /v1/algorithms/{id}/errors, a list
    of error entries (§4.7 "Error entries", §6)."""
    user, _, c = owner
    name, _, _ = published_algo(server, c, user, artifact=example("fail.wat"))
    with pytest.raises(AlgorithmException):
        c.algo("%s/%s" % (user, name)).pipe("bad input")
    aid = c.algo("%s/%s" % (user, name)).get_algorithm_id()
    errors = c.get_algorithm_errors(aid)
    assert isinstance(errors, list) and errors, errors
    e = errors[0]
    assert e["algoname"] == name and e["username"] == user
    assert e["error"] and e["error_type"] == "ValueError"
    assert isinstance(e["created_at"], int)


def test_user_and_organization_errors(server, hl):
    """HL Client.get_user_errors(id) and get_organization_errors(org): failed calls
    to the account's algorithms, as error-entry lists (§4.1, §4.2, §6)."""
    admin_name, admin_key = server.create_user_with_key(admin=True)
    admin = hl(admin_key)
    user, key = server.create_user_with_key()
    c = hl(key)
    name, _, _ = published_algo(server, c, user, artifact=example("fail.wat"))
    with pytest.raises(AlgorithmException):
        c.algo("%s/%s" % (user, name)).pipe("bad input")
    errors = c.get_user_errors(user)
    assert isinstance(errors, list) and errors, errors
    assert (errors[0]["algoname"], errors[0]["algorithm_owner"], errors[0]["username"]) == (name, user, user)

    org = unique("eorg")
    admin.create_org({
        "org_name": org, "org_label": "Org", "org_contact_name": "C", "org_email": "%s@example.org" % org,
        "org_url": "https://%s.example.org" % org, "type_id": "basic",
    })
    assert admin.get_organization_errors(org) == []
    # Another user cannot read them (HL returns the error body as JSON).
    other = hl(server.create_user_with_key()[1])
    refused = other.get_user_errors(user)
    assert isinstance(refused, dict) and refused["error"]["reason"] == "forbidden", refused


# ----------------------------------------------------------------------------- data during calls


def _notes(c, text):
    """A fresh collection of the client's user with hello.txt = text; its name."""
    coll = unique("notes")
    c.dir("data://.my/" + coll).create()
    c.file("data://.my/%s/hello.txt" % coll).put(text)
    return coll


def test_wasm_algorithm_reads_the_callers_data(server, owner, hl):
    """examples/readfile.wat reads the file its input names; `.my` is the caller."""
    user, key, c = owner
    name, _, _ = published_algo(server, c, user, artifact=example("readfile.wat"))
    caller, caller_key = server.create_user_with_key()
    cc = hl(caller_key)
    coll = _notes(cc, "the caller's notes")
    r = cc.algo("%s/%s" % (user, name)).pipe("data://.my/%s/hello.txt" % coll)
    assert r.result == "the caller's notes"
    with pytest.raises(AlgorithmException) as e:
        cc.algo("%s/%s" % (user, name)).pipe("data://.my/%s/missing.txt" % coll)
    assert "data_not_found" in str(e.value)


def test_http_algorithm_uses_its_call_token_with_the_client(server, owner, hl):
    """An upstream uses the X-Algohub-Api-Key it is handed as the unmodified
    client's API key: `data://.my` is the caller's data during the call."""
    import http.server
    import threading

    import Algorithmia as upstream_client

    class Upstream(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            path = self.rfile.read(int(self.headers["Content-Length"])).decode()
            token = self.headers.get("X-Algohub-Api-Key", "")
            client = upstream_client.client(token, server.base_url)
            body = client.file(path).getString().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        user, key, c = owner
        definition = {"runtime": "http", "url": "http://127.0.0.1:%d/" % srv.server_address[1], "timeout": 30}
        name, _, _ = published_algo(
            server, c, user, artifact=json.dumps(definition).encode(), content_type="application/json"
        )
        caller, caller_key = server.create_user_with_key()
        cc = hl(caller_key)
        coll = _notes(cc, "read by the upstream")
        r = cc.algo("%s/%s" % (user, name)).pipe("data://.my/%s/hello.txt" % coll)
        assert r.result == "read by the upstream"
    finally:
        srv.shutdown()
