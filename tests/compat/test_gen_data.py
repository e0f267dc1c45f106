"""GEN client (algorithmia-api-client 1.5.5) against algohub: the data
connector routes `/v1/connector/{connectorId}/{connectorPath}` through DataApi
and ConnectorsApi (reference §1.3, §3, §5 "Data").

Run in the GEN virtualenv only (see run.sh). GEN percent-encodes the path with
no safe characters (`alice/coll/f` -> `alice%2Fcoll%2Ff`), sends
`Content-Type: application/json` on every call and JSON-encodes an upload body
(a str upload is stored with its quotes). A GET of a *file* cannot be decoded
into the declared `Directory` model, so those reads use `_preload_content=False`.
"""

import datetime
import json

import pytest

import algorithmia_api_client  # noqa: E402  (an import failure fails the suite: no skips)
from algorithmia_api_client import (  # noqa: E402
    ApiClient,
    ApiException,
    Configuration,
    ConnectorsApi,
    CreateDirectoryRequest,
    DataApi,
    DirectoryAcl,
    DirectoryAclUpdateRequest,
)
from algorithmia_api_client.models import Directory, File, InlineResponse200, InlineResponse2001  # noqa: E402

from conftest import http, unique  # noqa: E402

PUBLIC, MY_ALGOS = "user://*", "algo://.my/*"


class Apis:
    def __init__(self, base_url, key, validate=True):
        cfg = Configuration(host=base_url)
        cfg.client_side_validation = validate
        self.client = ApiClient(cfg, header_name="Authorization", header_value=key)
        self.data = DataApi(self.client)
        self.connectors = ConnectorsApi(self.client)


@pytest.fixture()
def owner(server):
    name, key = server.create_user_with_key()
    return name, key, Apis(server.base_url, key)


@pytest.fixture()
def coll(owner):
    """A fresh collection of the owner, created with GEN: (user, key, apis, name)."""
    user, key, apis = owner
    name = unique("gcoll")
    r = apis.data.create_directory("data", user, create_directory_request=CreateDirectoryRequest(name=name))
    assert isinstance(r, InlineResponse200) and r.result, r
    return user, key, apis, name


def read_file(apis, path):
    resp = apis.data.get_file_or_directory("data", path, _preload_content=False)
    assert resp.status == 200, (resp.status, resp.data)
    return resp.data


def api_error(excinfo, status):
    e = excinfo.value
    assert isinstance(e, ApiException)
    assert e.status == status, "expected HTTP %d, got %d: %s" % (status, e.status, e.body)
    body = json.loads(e.body)
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    return body["error"]


# ----------------------------------------------------------------------------- directories


def test_create_directory_and_get_listing(server, owner):
    user, _, apis = owner
    name = unique("gcoll")
    r = apis.data.create_directory("data", user, create_directory_request=CreateDirectoryRequest(name=name))
    assert r.result in ("data://%s/%s" % (user, name), "data://.my/%s" % name), r.result
    d = apis.data.get_file_or_directory("data", "%s/%s" % (user, name))
    assert isinstance(d, Directory)
    assert d.files in (None, []) and d.folders in (None, [])
    assert d.marker in (None, "")
    # It is listed in the owner's root.
    root = apis.data.get_file_or_directory("data", user)
    assert name in [f.name for f in root.folders]
    # `.my` works as the parent too, and with an ACL.
    other = unique("gcoll")
    apis.data.create_directory(
        "data", ".my", create_directory_request=CreateDirectoryRequest(name=other, acl=DirectoryAcl(read=[PUBLIC]))
    )
    d = apis.data.get_file_or_directory("data", "%s/%s" % (user, other), acl=True)
    assert d.acl.read == [PUBLIC]


def test_create_directory_errors(server, coll):
    user, _, apis, name = coll
    with pytest.raises(ApiException) as ei:
        apis.data.create_directory("data", user, create_directory_request=CreateDirectoryRequest(name=name))
    api_error(ei, 409)
    unchecked = Apis(server.base_url, apis.client.default_headers["Authorization"], validate=False)
    bad = CreateDirectoryRequest(name="ok", local_vars_configuration=unchecked.client.configuration)
    bad.name = "bad name!"
    with pytest.raises(ApiException) as ei:
        unchecked.data.create_directory("data", user, create_directory_request=bad)
    api_error(ei, 400)


def test_acl_default_update_and_listing(server, coll):
    user, key, apis, name = coll
    path = "%s/%s" % (user, name)
    d = apis.data.get_file_or_directory("data", path, acl=True)  # sent as acl=True
    assert d.acl.read == [MY_ALGOS]
    assert apis.data.update_directory_acl(
        "data", path, directory_acl_update_request=DirectoryAclUpdateRequest(acl=DirectoryAcl(read=[PUBLIC]))
    ) is None
    assert apis.data.get_file_or_directory("data", path, acl=True).acl.read == [PUBLIC]
    apis.data.upload_file("data", path + "/f.json", body={"v": 1})
    other = Apis(server.base_url, server.create_user_with_key()[1])
    assert json.loads(read_file(other, path + "/f.json")) == {"v": 1}
    assert apis.data.update_directory_acl(
        "data", path, directory_acl_update_request=DirectoryAclUpdateRequest(acl=DirectoryAcl(read=[]))
    ) is None
    assert apis.data.get_file_or_directory("data", path, acl=True).acl.read == []
    with pytest.raises(ApiException) as ei:
        other.data.get_file_or_directory("data", path + "/f.json", _preload_content=False)
    api_error(ei, 404)


# ----------------------------------------------------------------------------- files


def test_upload_get_head_delete_file(server, coll):
    user, key, apis, name = coll
    path = "%s/%s/hello.txt" % (user, name)
    r = apis.data.upload_file("data", path, body="hello text")
    assert isinstance(r, InlineResponse200)
    assert r.result.endswith("/%s/hello.txt" % name), r.result
    # GEN JSON-encoded the str: the stored bytes carry the quotes (§3.2).
    assert read_file(apis, path) == b'"hello text"'
    # The same bytes through the HL-style route.
    status, _, body = http("GET", "%s/v1/data/%s" % (server.base_url, path), key=key)
    assert (status, body) == (200, b'"hello text"')

    apis.data.upload_file("data", path, body={"a": [1, 2], "b": None})  # replaces it
    assert json.loads(read_file(apis, path)) == {"a": [1, 2], "b": None}

    assert apis.data.verify_file_existence("data", path) is None  # HEAD 200
    with pytest.raises(ApiException) as ei:
        apis.data.verify_file_existence("data", "%s/%s/missing.txt" % (user, name))
    assert ei.value.status == 404

    d = apis.data.delete_file_or_directory("data", path)
    assert isinstance(d, InlineResponse2001)
    assert d.result.deleted == 1 and d.error is None
    with pytest.raises(ApiException) as ei:
        apis.data.verify_file_existence("data", path)
    assert ei.value.status == 404
    with pytest.raises(ApiException) as ei:
        apis.data.get_file_or_directory("data", path, _preload_content=False)
    api_error(ei, 404)


def test_listing_models_decode(server, coll):
    user, key, apis, name = coll
    base = "%s/%s" % (user, name)
    apis.data.upload_file("data", base + "/a.json", body=[1, 2, 3])
    apis.data.upload_file("data", base + "/b.txt", body="bee")
    apis.data.create_directory("data", base, create_directory_request=CreateDirectoryRequest(name="sub"))
    d = apis.data.get_file_or_directory("data", base)
    assert isinstance(d, Directory)
    assert [f.name for f in d.folders] == ["sub"]
    files = {f.filename: f for f in d.files}
    assert set(files) == {"a.json", "b.txt"}
    for f in files.values():
        assert isinstance(f, File)
        assert isinstance(f.last_modified, datetime.datetime)
        assert f.last_modified.tzinfo is not None  # the trailing Z
    assert files["a.json"].size == len(b"[1, 2, 3]")
    assert files["b.txt"].size == len(b'"bee"')
    # With a trailing slash on the path (§3.1).
    d2 = apis.data.get_file_or_directory("data", base + "/")
    assert {f.filename for f in d2.files} == {"a.json", "b.txt"}
    # The marker parameter.
    d3 = apis.data.get_file_or_directory("data", base, marker="a.json")
    assert [f.filename for f in (d3.files or [])] == ["b.txt"]


def test_delete_directory_force(server, coll):
    user, _, apis, name = coll
    base = "%s/%s" % (user, name)
    apis.data.upload_file("data", base + "/one", body="1")
    apis.data.upload_file("data", base + "/two", body="2")
    with pytest.raises(ApiException) as ei:
        apis.data.delete_file_or_directory("data", base)
    err = api_error(ei, 409)
    assert err["deleted"] == 0
    d = apis.data.delete_file_or_directory("data", base, force=True)  # sent as force=True
    assert d.result.deleted == 2
    with pytest.raises(ApiException) as ei:
        apis.data.get_file_or_directory("data", base)
    api_error(ei, 404)


def test_connectors_api_is_the_same_route(server, coll):
    user, _, apis, name = coll
    path = "%s/%s/c.json" % (user, name)
    r = apis.connectors.upload_file("data", path, body={"via": "connectors"})
    assert r.result
    d = apis.connectors.get_file_or_directory("data", "%s/%s" % (user, name))
    assert [f.filename for f in d.files] == ["c.json"]
    resp = apis.connectors.get_file_or_directory("data", path, _preload_content=False)
    assert json.loads(resp.data) == {"via": "connectors"}
    assert apis.connectors.verify_file_existence("data", path) is None
    assert apis.connectors.delete_file_or_directory("data", path).result.deleted == 1


def test_dot_my_paths(server, coll):
    user, _, apis, name = coll
    apis.data.upload_file("data", ".my/%s/m.json" % name, body={"m": True})
    assert json.loads(read_file(apis, "%s/%s/m.json" % (user, name))) == {"m": True}
    assert json.loads(read_file(apis, ".my/%s/m.json" % name)) == {"m": True}
    d = apis.data.get_file_or_directory("data", ".my/" + name)
    assert [f.filename for f in d.files] == ["m.json"]


def test_unknown_connector_is_refused(server, owner):
    """Only the hosted `data` connector exists here; others are errors, not 5xx."""
    user, _, apis = owner
    with pytest.raises(ApiException) as ei:
        apis.data.get_file_or_directory("s3", "bucket/key", _preload_content=False)
    assert 400 <= ei.value.status < 500, (ei.value.status, ei.value.body)
    api_error(ei, ei.value.status)


@pytest.mark.parametrize("filename", ["with space.txt", "ünïcode-名前.json", "pct%41.txt", "q?.txt", "plus+sign"])
def test_file_names_are_percent_decoded(coll, filename):
    """GEN percent-encodes every character that is not unreserved (`%` -> %25,
    `?` -> %3F, `/` -> %2F); the server decodes each once (§1.3, §8.6)."""
    user, _, apis, name = coll
    path = "%s/%s/%s" % (user, name, filename)
    apis.data.upload_file("data", path, body={"name": filename})
    assert json.loads(read_file(apis, path)) == {"name": filename}
    d = apis.data.get_file_or_directory("data", "%s/%s" % (user, name))
    assert [f.filename for f in d.files] == [filename]
    assert apis.data.delete_file_or_directory("data", path).result.deleted == 1
