"""GEN client (algorithmia-api-client 1.5.5) against algohub: algorithm
management (AlgorithmsApi, BuildsApi) and calls (AlgorithmsApi.call_algorithm,
call_algorithm_by_id) (reference §1.3, §1.4, §2, §4.7, §5 "Algorithm objects").

Run in the GEN virtualenv only (see run.sh). Clients carry a default header
`Authorization: <key>` (the bare key, as the clients send it) through
`ApiClient(cfg, header_name=..., header_value=...)`. Hash versions and
algorithm UUIDs in `{username}` slots break GEN's client-side patterns, so
those calls use `cfg.client_side_validation = False` (§2).

GEN sends every call body as JSON: a str input arrives JSON-quoted (`"x"`).
"""

import datetime
import json
import time

import pytest

import algorithmia_api_client  # noqa: E402  (an import failure fails the suite: no skips)
from algorithmia_api_client import (  # noqa: E402
    AlgorithmsApi,
    ApiClient,
    ApiException,
    BuildsApi,
    Configuration,
    OrganizationsApi,
    CreateRequest,
    Details,
    Settings,
    SettingsMandatory,
    SettingsPublish,
    UpdateRequest,
    VersionInfoPublish,
    VersionRequest,
)
from algorithmia_api_client.models import (  # noqa: E402
    AlgorithmInvocationResult,
    Build,
    HashResponse,
    PagedBuildsList,
    PagedVersionsList,
    VersionResponse,
)

from conftest import CHATTY_LINE, CHATTY_WAT, const_wat, example, http, unique, upload_artifact  # noqa: E402

# Error codes the GEN `Error` model accepts (§1.4).
ALLOWED_CODES = set()
for lo, hi in [
    (1000, 1017), (2001, 2002), (2011, 2018), (3000, 3001), (3003, 3005), (3007, 3010),
    (3100, 3110), (3300, 3302), (4001, 4009), (4020, 4021), (4040, 4045), (4050, 4052),
    (4070, 4070), (4080, 4084), (5001, 5004), (6001, 6001), (8000, 8014),
]:
    ALLOWED_CODES.update(range(lo, hi + 1))


class Apis:
    def __init__(self, base_url, key, validate=True):
        cfg = Configuration(host=base_url)
        cfg.client_side_validation = validate
        self.client = ApiClient(cfg, header_name="Authorization", header_value=key)
        self.algos = AlgorithmsApi(self.client)
        self.builds = BuildsApi(self.client)
        self.orgs = OrganizationsApi(self.client)


@pytest.fixture()
def owner(server):
    """A fresh user: (username, key, Apis, Apis without client-side validation)."""
    name, key = server.create_user_with_key()
    return name, key, Apis(server.base_url, key), Apis(server.base_url, key, validate=False)


def api_error(excinfo, status):
    """Checks an ApiException's status and its `{"error": {"message", "code"?}}` body."""
    e = excinfo.value
    assert isinstance(e, ApiException)
    assert e.status == status, "expected HTTP %d, got %d: %s" % (status, e.status, e.body)
    body = json.loads(e.body)
    err = body["error"]
    assert isinstance(err.get("message"), str) and err["message"], body
    if "code" in err:
        assert err["code"] in ALLOWED_CODES, "code %r is outside the GEN Error enum: %s" % (err["code"], body)
    return err


def create_request(name, label="Gen"):
    return CreateRequest(
        name=name,
        details=Details(label=label, summary="a GEN compat test", tagline="tag"),
        settings=SettingsMandatory(
            source_visibility="open", license="apache2", network_access="isolated", pipeline_enabled=False,
            royalty_microcredits=0,
        ),
    )


def version_request(version_type="minor", callability="public", notes="notes"):
    return VersionRequest(
        settings=SettingsPublish(algorithm_callability=callability),
        version_info=VersionInfoPublish(version_type=version_type, release_notes=notes, insights_enabled=False),
    )


def new_published(server, apis, user, key, artifact=None, callability="public"):
    """create -> (upload) -> compile -> publish 0.1.0; returns (name, hash, algorithm id)."""
    name = unique("galgo")
    created = apis.algos.create_algorithm(user, create_request(name))
    if artifact is not None:
        upload_artifact(server, key, user, name, artifact)
    h = apis.algos.compile_algorithm(user, name).version_info.git_hash
    v = apis.algos.publish_algorithm(user, name, version_request(callability=callability))
    assert v.version_info.semantic_version == "0.1.0"
    return name, h, created.id


def raw_call(apis, user, name, version, body, **kw):
    """call_algorithm with _preload_content=False: (status, parsed JSON)."""
    resp = apis.algos.call_algorithm(user, name, version, body, _preload_content=False, **kw)
    return resp.status, json.loads(resp.data)


# ----------------------------------------------------------------------------- management


def test_create_get_update_delete(server, owner):
    user, _, apis, _ = owner
    name = unique("galgo")
    created = apis.algos.create_algorithm(user, create_request(name))
    assert isinstance(created, HashResponse)
    assert created.name == name and len(created.id) == 36
    assert created.details.label == "Gen" and created.details.summary == "a GEN compat test"
    assert created.settings.algorithm_callability == "private"
    assert created.settings.license == "apache2" and created.settings.source_visibility == "open"
    assert created.settings.network_access == "isolated" and created.settings.pipeline_enabled is False

    got = apis.algos.get_algorithm(user, name)
    assert isinstance(got, VersionResponse)
    assert got.name == name and got.details.label == "Gen"
    assert got.version_info.insights_enabled is False
    assert got.resource_type == "algorithm"

    updated = apis.algos.update_algorithm(
        user, name, UpdateRequest(details=Details(label="Renamed", summary="new summary"), settings=Settings(license="mit"))
    )
    assert isinstance(updated, HashResponse)
    assert updated.id == created.id
    assert updated.details.label == "Renamed" and updated.details.summary == "new summary"
    assert updated.settings.license == "mit"
    assert updated.settings.source_visibility == "open"  # untouched settings stay
    got = apis.algos.get_algorithm(user, name)
    assert got.details.label == "Renamed" and got.settings.license == "mit"

    assert apis.algos.delete_algorithm(user, name) is None
    with pytest.raises(ApiException) as ei:
        apis.algos.get_algorithm(user, name)
    assert "No such algorithm" in api_error(ei, 404)["message"]


def test_create_errors(server, owner):
    user, _, apis, unchecked = owner
    name = unique("galgo")
    apis.algos.create_algorithm(user, create_request(name))
    with pytest.raises(ApiException) as ei:
        apis.algos.create_algorithm(user, create_request(name))
    api_error(ei, 409)
    with pytest.raises(ApiException) as ei:  # a name the server refuses
        unchecked.algos.create_algorithm(user, create_request("bad name!"), _preload_content=False)
    api_error(ei, 400)
    # Someone else's namespace.
    other, other_key = server.create_user_with_key()
    with pytest.raises(ApiException) as ei:
        Apis(server.base_url, other_key).algos.create_algorithm(user, create_request(unique("x")))
    assert ei.value.status in (403, 404), (ei.value.status, ei.value.body)
    api_error(ei, ei.value.status)


def test_get_missing_is_404(owner):
    user, _, apis, _ = owner
    for call in (
        lambda: apis.algos.get_algorithm(user, "nosuchalgo"),
        lambda: apis.algos.compile_algorithm(user, "nosuchalgo"),
        lambda: apis.algos.get_algorithm_versions(user, "nosuchalgo"),
        lambda: apis.algos.get_algorithm_builds(user, "nosuchalgo"),
        lambda: apis.algos.delete_algorithm(user, "nosuchalgo"),
        lambda: apis.algos.publish_algorithm(user, "nosuchalgo", version_request()),
    ):
        with pytest.raises(ApiException) as ei:
            call()
        assert "No such algorithm" in api_error(ei, 404)["message"]


def test_compile_publish_versions_builds(server, owner):
    user, _, apis, unchecked = owner
    name = unique("galgo")
    apis.algos.create_algorithm(user, create_request(name))

    with pytest.raises(ApiException) as ei:  # nothing compiled yet
        apis.algos.publish_algorithm(user, name, version_request())
    assert 400 <= ei.value.status < 500
    api_error(ei, ei.value.status)

    compiled = apis.algos.compile_algorithm(user, name)
    assert isinstance(compiled, VersionResponse)
    h = compiled.version_info.git_hash
    assert len(h) == 40
    assert compiled.compilation.successful is True and isinstance(compiled.compilation.output, str)
    assert isinstance(compiled.build, Build)
    assert compiled.build.commit_sha == h and compiled.build.status == "succeeded"
    assert isinstance(compiled.build.started_at, datetime.datetime)

    v = apis.algos.publish_algorithm(user, name, version_request("minor", notes="first"))
    assert isinstance(v, VersionResponse)
    assert v.version_info.semantic_version == "0.1.0" and v.version_info.git_hash == h
    assert v.version_info.release_notes == "first"
    assert v.settings.algorithm_callability == "public"

    with pytest.raises(ApiException) as ei:  # the same build again
        apis.algos.publish_algorithm(user, name, version_request())
    api_error(ei, 409)

    # BuildsApi.compile_algorithm is the same route.
    assert apis.builds.compile_algorithm(user, name).version_info.git_hash == h
    v = apis.algos.publish_algorithm(user, name, version_request("major"))
    assert v.version_info.semantic_version == "1.0.0"
    apis.algos.compile_algorithm(user, name)
    v = apis.algos.publish_algorithm(user, name, version_request("revision", callability="private"))
    assert v.version_info.semantic_version == "1.0.1"
    assert v.settings.algorithm_callability == "private"
    apis.algos.compile_algorithm(user, name)  # an unpublished build

    versions = apis.algos.get_algorithm_versions(user, name, limit=50)
    assert isinstance(versions, PagedVersionsList)
    assert len(versions.results) == 4
    assert all(isinstance(r, VersionResponse) for r in versions.results)
    published = apis.algos.get_algorithm_versions(user, name, limit=50, published=True)
    assert sorted(r.version_info.semantic_version for r in published.results) == ["0.1.0", "1.0.0", "1.0.1"]
    public = apis.algos.get_algorithm_versions(user, name, limit=50, callable=True)
    assert sorted(r.version_info.semantic_version for r in public.results) == ["0.1.0", "1.0.0"]
    unpublished = apis.algos.get_algorithm_versions(user, name, limit=50, published=False)
    assert len(unpublished.results) == 1 and not unpublished.results[0].version_info.semantic_version
    private = apis.algos.get_algorithm_versions(user, name, limit=50, callable=False)
    assert "1.0.1" in [r.version_info.semantic_version for r in private.results]
    assert not {"0.1.0", "1.0.0"} & {r.version_info.semantic_version for r in private.results}
    page = apis.algos.get_algorithm_versions(user, name, limit=1)
    assert len(page.results) == 1 and page.marker
    nxt = apis.algos.get_algorithm_versions(user, name, limit=1, marker=page.marker)
    assert len(nxt.results) == 1 and nxt.results[0].to_dict() != page.results[0].to_dict()

    # One version by hash (the algohash slot has no pattern).
    one = apis.algos.get_algorithm_hash_version(user, name, h)
    assert isinstance(one, VersionResponse) and one.version_info.git_hash == h

    # Builds, through both APIs.
    builds = apis.algos.get_algorithm_builds(user, name, limit=56)
    assert isinstance(builds, PagedBuildsList)
    assert len(builds.results) == 4
    assert all(b.status == "succeeded" and b.resource_type == "algorithm_build" for b in builds.results)
    b = builds.results[0]
    got = apis.algos.get_algorithm_build_by_id(user, name, b.build_id)
    assert isinstance(got, Build) and got.build_id == b.build_id and got.commit_sha == b.commit_sha
    assert apis.builds.get_algorithm_build_by_id(user, name, b.build_id).build_id == b.build_id
    logs = apis.algos.get_algorithm_build_logs(user, name, b.build_id)
    assert isinstance(logs.logs, str) and logs.logs
    assert apis.builds.get_algorithm_builds(user, name).results
    with pytest.raises(ApiException) as ei:
        apis.algos.get_algorithm_build_by_id(user, name, "00000000-0000-0000-0000-000000000000")
    api_error(ei, 404)


def test_versions_default_page_and_marker_walk(server, owner):
    """The documented default page is 10 (§4.7); marker paging visits each build once."""
    user, _, apis, _ = owner
    name = unique("gpage")
    apis.algos.create_algorithm(user, create_request(name))
    ids = {apis.algos.compile_algorithm(user, name).build.build_id for _ in range(12)}
    assert len(ids) == 12, "every compile is a new build"
    first = apis.algos.get_algorithm_versions(user, name)
    assert len(first.results) == 10 and first.marker and first.next_link, first.to_dict()
    seen, marker = [], None
    while True:
        page = apis.algos.get_algorithm_versions(user, name, limit=5, **({"marker": marker} if marker else {}))
        seen.extend(r.build.build_id for r in page.results)
        marker = page.marker
        if not marker:
            break
        assert len(seen) < 100
    assert sorted(seen) == sorted(ids)
    builds = apis.algos.get_algorithm_builds(user, name, limit=5)
    assert len(builds.results) == 5 and builds.marker
    rest = apis.algos.get_algorithm_builds(user, name, limit=50, marker=builds.marker)
    assert {b.build_id for b in builds.results + rest.results} == ids


def test_get_algorithm_by_id(server, owner):
    """GET /v1/algorithms/{id} (§1.5: GEN names the slot `username`, so its
    username pattern rejects a UUID: validation off)."""
    user, _, apis, unchecked = owner
    name = unique("gid")
    aid = apis.algos.create_algorithm(user, create_request(name)).id
    got = unchecked.algos.get_algorithm_by_id(aid)
    assert isinstance(got, VersionResponse) and got.name == name
    assert got.version_info.insights_enabled is False


def test_compile_by_id(server, owner):
    """POST /v1/algorithms/{id}/compile; GEN sends its `body` (a build request
    string) JSON-encoded (§1.5, §4.7)."""
    user, _, apis, _ = owner
    name = unique("gid")
    aid = apis.algos.create_algorithm(user, create_request(name)).id
    compiled = apis.algos.compile_algorithm_by_id(aid, "{}")
    assert isinstance(compiled, VersionResponse)
    assert len(compiled.version_info.git_hash) == 40 and compiled.compilation.successful is True
    assert apis.builds.compile_algorithm_by_id(aid, "").version_info.git_hash == compiled.version_info.git_hash


def test_publish_by_id(server, owner):
    """POST /v1/algorithms/{id}/versions with a VersionRequest (§1.5, §4.7)."""
    user, _, apis, _ = owner
    name = unique("gid")
    aid = apis.algos.create_algorithm(user, create_request(name)).id
    h = apis.algos.compile_algorithm(user, name).version_info.git_hash
    v = apis.algos.publish_algorithm_by_id(aid, version_request())
    assert isinstance(v, VersionResponse)
    assert v.version_info.semantic_version == "0.1.0" and v.version_info.git_hash == h
    assert apis.algos.get_algorithm_versions(user, name, published=True).results[0].version_info.git_hash == h


def test_builds_by_id(server, owner):
    """GET /v1/algorithms/{id}/builds[/{buildId}[/logs]] (§1.5, §4.7)."""
    user, key, apis, _ = owner
    name, h, aid = new_published(server, apis, user, key)
    builds = apis.algos.get_algorithm_by_id_builds(aid)
    assert isinstance(builds, PagedBuildsList) and len(builds.results) == 1
    bid = builds.results[0].build_id
    assert apis.algos.get_algorithm_by_id_build_by_id(aid, bid).commit_sha == h
    assert apis.builds.get_algorithm_by_id_build_by_id(aid, bid).build_id == bid
    assert isinstance(apis.builds.get_algorithm_by_id_build_logs(aid, bid).logs, str)
    assert len(apis.builds.get_algorithm_by_id_builds(aid).results) == 1


def test_call_by_id(server, owner):
    """POST /v1/algo/{algorithmId}/{version} (§1.5, §2)."""
    user, key, apis, unchecked = owner
    name, h, aid = new_published(server, apis, user, key)
    r = apis.algos.call_algorithm_by_id(aid, "0.1.0", "by id")
    assert r.result == "by id" and r.metadata.content_type == "json"
    assert apis.algos.call_algorithm_by_id(aid, "0.*", {"k": 1}).result == {"k": 1}
    assert unchecked.algos.call_algorithm_by_id(aid, h, [1]).result == [1]


def test_update_algorithm_by_id(server, owner):
    """PUT /v1/algorithms/{id} with an UpdateRequest answers a HashResponse (§1.5, §4.7)."""
    user, _, apis, unchecked = owner
    name = unique("gupd")
    aid = apis.algos.create_algorithm(user, create_request(name)).id
    updated = unchecked.algos.update_algorithm_by_id(
        aid, UpdateRequest(details=Details(label="By id"), settings=Settings(license="gpl3"))
    )
    assert isinstance(updated, HashResponse)
    assert updated.id == aid and updated.details.label == "By id" and updated.settings.license == "gpl3"
    got = apis.algos.get_algorithm(user, name)
    assert got.details.label == "By id" and got.settings.license == "gpl3"


def test_list_algorithms_for_user(server, owner):
    user, _, apis, _ = owner
    names = {unique("gl") for _ in range(2)}
    for n in names:
        apis.algos.create_algorithm(user, create_request(n))
    listed = apis.algos.list_algorithms_for_user(user)
    assert names <= {a.algoname for a in listed}
    for a in listed:
        assert a.username == user and len(a.id) == 36


def test_org_utility_algorithms(server, owner):
    user, key, apis, _ = owner
    org = unique("gorg")
    body = {"org_name": org, "org_label": "Org " + org, "org_contact_name": "Owner",
            "org_email": "%s@example.com" % org, "type_id": "basic"}
    status, _, raw = http("POST", server.base_url + "/v1/organizations", key=key, body=body)
    assert status in (200, 201), raw
    name = unique("gou")
    apis.algos.create_algorithm(org, create_request(name))
    listed = apis.orgs.get_utility_algorithms(org)
    assert [(a.username, a.algoname) for a in listed] == [(org, name)]
    assert len(listed[0].id) == 36
    # A user's name is no organization's.
    with pytest.raises(ApiException) as e:
        apis.orgs.get_utility_algorithms(user)
    api_error(e, 404)


def test_success_bodies_have_no_error_key(server, owner):
    user, key, apis, _ = owner
    name, h, _ = new_published(server, apis, user, key)
    for resp in (
        apis.algos.get_algorithm(user, name, _preload_content=False),
        apis.algos.get_algorithm_versions(user, name, _preload_content=False),
        apis.algos.get_algorithm_builds(user, name, _preload_content=False),
        apis.algos.get_algorithm_hash_version(user, name, h, _preload_content=False),
        apis.algos.call_algorithm(user, name, "", "x", _preload_content=False),
    ):
        assert resp.status == 200
        body = json.loads(resp.data)
        assert "error" not in body, body
        for r in body.get("results", []):
            assert "error" not in r


# ----------------------------------------------------------------------------- calls


def test_call_inputs_are_json(server, owner):
    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key)
    caller = Apis(server.base_url, server.create_user_with_key()[1])

    r = caller.algos.call_algorithm(user, name, "", "plain")  # empty version: `/v1/algo/u/a/`
    assert isinstance(r, AlgorithmInvocationResult)
    # GEN JSON-encodes the str: the echo gets `"plain"` and answers a JSON string.
    assert r.result == "plain"
    assert r.metadata.content_type == "json"
    assert isinstance(r.metadata.duration, float)
    assert r._async is False and r.request_id.startswith("req-")
    assert r.error is None

    r = caller.algos.call_algorithm(user, name, "", {"a": [1, 2], "b": {"c": None}})
    assert r.result == {"a": [1, 2], "b": {"c": None}} and r.metadata.content_type == "json"
    r = caller.algos.call_algorithm(user, name, "0.1.0", [1, "two"])
    assert r.result == [1, "two"]
    r = caller.algos.call_algorithm(user, name, "0.*", 7)  # `*` is sent as %2A
    assert r.result == 7


def test_call_version_forms(server, owner):
    user, key, apis, unchecked = owner
    name = unique("gver")
    apis.algos.create_algorithm(user, create_request(name))
    h1 = apis.algos.compile_algorithm(user, name).version_info.git_hash  # echo
    apis.algos.publish_algorithm(user, name, version_request())  # 0.1.0 public
    upload_artifact(server, key, user, name, const_wat("second"))
    apis.algos.compile_algorithm(user, name)
    apis.algos.publish_algorithm(user, name, version_request())  # 0.2.0 public
    upload_artifact(server, key, user, name, const_wat("third"))
    apis.algos.compile_algorithm(user, name)
    apis.algos.publish_algorithm(user, name, version_request(callability="private"))  # 0.3.0 private
    upload_artifact(server, key, user, name, const_wat("unpublished"))
    h4 = apis.algos.compile_algorithm(user, name).version_info.git_hash

    for version, want in [
        ("", "second"),
        ("0.1.0", "echo"),
        ("0.2.0", "second"),
        ("0.3.0", "third"),
        ("0.*", "second"),
        ("0.1.*", "echo"),
        ("latestPrivate", "third"),
    ]:
        r = apis.algos.call_algorithm(user, name, version, "echo")
        assert r.result == want, (version, r)
    # Hashes break GEN's version pattern: validation off (§2).
    for h, want in [(h1, "echo"), (h4, "unpublished"), (h4.upper(), "unpublished")]:
        r = unchecked.algos.call_algorithm(user, name, h, "echo")
        assert r.result == want, (h, r)
    # Unknown versions.
    for version in ("1.*", "9.9.9", "0.9.*"):
        with pytest.raises(ApiException) as ei:
            apis.algos.call_algorithm(user, name, version, "x")
        api_error(ei, 404)
    # Another user: public versions only.
    other = Apis(server.base_url, server.create_user_with_key()[1], validate=False)
    assert other.algos.call_algorithm(user, name, "", "x").result == "second"
    for version in ("0.3.0", h4, "latestPrivate"):
        with pytest.raises(ApiException) as ei:
            other.algos.call_algorithm(user, name, version, "x")
        assert 400 <= ei.value.status < 500, (version, ei.value.status)
        api_error(ei, ei.value.status)


def test_call_algorithm_error(server, owner):
    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key, artifact=example("fail.wat"))
    r = apis.algos.call_algorithm(user, name, "", "x")
    assert r.error is not None
    assert r.error.message == "the input is not acceptable"
    assert isinstance(r.error.stacktrace, str)
    assert r._async is False and r.request_id.startswith("req-")
    assert r.result is None
    status, body = raw_call(apis, user, name, "", "x", stdout=True)
    assert status == 200
    assert body["error"]["error_type"] == "ValueError"
    assert body["metadata"]["stdout"] == "checking the input...\n"


def test_call_stdout_for_owner_only(server, owner):
    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key, artifact=CHATTY_WAT)
    r = apis.algos.call_algorithm(user, name, "", "x", stdout=True)  # sent as stdout=True
    assert r.result == "x" and r.metadata.stdout == CHATTY_LINE
    r = apis.algos.call_algorithm(user, name, "", "x", stdout=False)
    assert r.metadata.stdout is None
    other = Apis(server.base_url, server.create_user_with_key()[1])
    r = other.algos.call_algorithm(user, name, "", "x", stdout=True)
    assert r.result == "x" and r.metadata.stdout is None


def test_call_timeout(server, owner):
    user, key, apis, unchecked = owner
    name = unique("gslow")
    apis.algos.create_algorithm(user, create_request(name))
    upload_artifact(server, key, user, name, example("slow.wat"))
    h = apis.algos.compile_algorithm(user, name).version_info.git_hash
    started = time.monotonic()
    resp = unchecked.algos.call_algorithm(user, name, h, "x", timeout=0.5, _preload_content=False)
    assert time.monotonic() - started < 20
    assert resp.status == 200
    body = json.loads(resp.data)
    assert body["error"]["error_type"] == "AlgorithmTimeoutError", body
    r = unchecked.algos.call_algorithm(user, name, h, "x", timeout=1)
    assert r.error is not None and r.error.message


def test_call_output_void_and_raw(server, owner):
    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key)
    r = apis.algos.call_algorithm(user, name, "", {"x": 1}, output="void")
    assert r._async is True  # `"void"` is coerced to True by the bool model (§2)
    assert r.request_id.startswith("req-")
    assert r.result is None and r.error is None
    status, body = raw_call(apis, user, name, "", {"x": 1}, output="void")
    assert body["async"] == "void" and "result" not in body and "error" not in body

    resp = apis.algos.call_algorithm(user, name, "", {"x": [1, 2]}, output="raw", _preload_content=False)
    assert resp.status == 200
    assert json.loads(resp.data) == {"x": [1, 2]}
    resp = apis.algos.call_algorithm(user, name, "", "text", output="raw", _preload_content=False)
    assert json.loads(resp.data) == "text"  # the JSON-quoted string came back as JSON


def test_call_missing_and_bad_key(server, owner):
    user, key, apis, _ = owner
    with pytest.raises(ApiException) as ei:
        apis.algos.call_algorithm(user, "nosuchalgo", "", "x")
    assert "No such algorithm" in api_error(ei, 404)["message"]
    name, _, _ = new_published(server, apis, user, key)
    bad = Apis(server.base_url, "sim" + "q" * 25)
    with pytest.raises(ApiException) as ei:
        bad.algos.call_algorithm(user, name, "", "x")
    api_error(ei, 401)


def test_call_bad_options_are_400(server, owner):
    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key)
    for kw in ({"output": "fancy"}, {"timeout": -1}):
        with pytest.raises(ApiException) as ei:
            apis.algos.call_algorithm(user, name, "", "x", **kw)
        api_error(ei, 400)


def test_raw_text_body_still_accepted(server, owner):
    """The operation also lists application/text and octet-stream bodies (§2)."""
    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key)
    for ct in ("application/text", "text/plain"):
        status, _, body = http(
            "POST", "%s/v1/algo/%s/%s/" % (server.base_url, user, name), key=key, body=b"abc", headers={"Content-Type": ct}
        )
        r = json.loads(body)
        assert status == 200 and r["result"] == "abc" and r["metadata"]["content_type"] == "text", (ct, r)


def test_algorithm_errors_by_name(server, owner):
    """GET /v1/algorithms/{owner}/{algo}/errors after a failed call (§4.7 "Error
    entries"). GEN declares `AlgorithmErrorEntry` ({"logs"}) but the documented
    body is a list, so the raw JSON is checked."""
    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key, artifact=example("fail.wat"))
    assert apis.algos.call_algorithm(user, name, "", "x").error is not None
    resp = apis.algos.get_algorithm_errors_by_algorithm_name(user, name, _preload_content=False)
    assert resp.status == 200
    entries = json.loads(resp.data)
    assert isinstance(entries, list) and entries, entries
    assert entries[0]["algoname"] == name and entries[0]["error_type"] == "ValueError"


# ----------------------------------------------------------------------------- usage (§4.6)


def test_admin_usage_routes(server, owner):
    """AdminApi.get_full_usage / get_user_usage_result / get_algorithm_usage_result:
    rows decode into the generated models, `user` filters, `marker` pages."""
    from algorithmia_api_client import AdminApi

    user, key, apis, _ = owner
    name, _, _ = new_published(server, apis, user, key)
    for _ in range(3):
        status, body = raw_call(apis, user, name, "0.1.0", "x")
        assert status == 200, body
    admin_name, admin_key = server.create_user_with_key(admin=True)
    cfg = Configuration(host=server.base_url)
    admin = AdminApi(ApiClient(cfg, header_name="Authorization", header_value="Simple %s" % admin_key))
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    end = today + datetime.timedelta(days=1)

    full = admin.get_full_usage(today, end, 100, user=[user])
    rows = [r for r in full.results if r.algorithm_called == name]
    assert len(rows) == 1, full
    row = rows[0]
    assert (row.caller, row.algorithm_owner, row.algorithm_version) == (user, user, "0.1.0")
    assert int(row.total_calls) == 3 and row.total_errors == 0
    assert row.total_duration > 0 and row.machine_type == "cpu"

    users = admin.get_user_usage_result(today, end, 100, user=[user])
    assert [(u.caller, int(u.total_calls)) for u in users.results] == [(user, 3)]

    algos = admin.get_algorithm_usage_result(today, end, 100, user=[user])
    assert [(a.algorithm_called, int(a.total_calls)) for a in algos.results] == [(name, 3)]

    # Paging: one row per page, following next_marker to the end.
    seen, marker = [], None
    for _ in range(50):
        kw = {"marker": marker} if marker else {}
        page = admin.get_user_usage_result(today, end, 1, **kw)
        assert len(page.results) <= 1
        seen.extend(r.caller for r in page.results)
        marker = page.next_marker
        if not marker:
            break
    assert user in seen and len(seen) == len(set(seen))

    # Non-admins are refused; a missing page_size is a 400.
    plain = AdminApi(ApiClient(cfg, header_name="Authorization", header_value="Simple %s" % key))
    with pytest.raises(ApiException) as e:
        plain.get_full_usage(today, end, 10)
    assert e.value.status == 403
    status, _, raw = http("GET", "%s/v1/admin/usage?start_date=2026-01-01&end_date=2026-01-02" % server.base_url, key=admin_key)
    body = json.loads(raw)
    assert status == 400 and body["error"]["code"] in ALLOWED_CODES, body
