"""HL client (algorithmia 2.0.5) against algohub: the data API through
`client.file` / `client.dir`, and the `algo` CLI data commands (reference §3,
§6 `DataFile`, `DataDirectory`, CLI, §8.4-6, §8.14).

Run in the HL virtualenv only (see run.sh). HL sends `/v1/data/<path>`; every
exchange is recorded and no 2xx JSON body may carry an `error` key (§1.4).
"""

import datetime
import json
import os

import pytest

import Algorithmia  # noqa: E402  (an import failure fails the suite: no skips)
from Algorithmia.acl import AclType, ReadAcl  # noqa: E402
from Algorithmia.datadirectory import DataDirectory  # noqa: E402
from Algorithmia.datafile import DataFile  # noqa: E402
from Algorithmia.errors import DataApiError  # noqa: E402

from cli_support import run_cli, write_cli_config  # noqa: E402
from conftest import http, unique  # noqa: E402
from hl_support import make_hl_fixture, query_of  # noqa: E402


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


@pytest.fixture()
def coll(owner):
    """A fresh collection data://.my/<name> of the owner: (username, key, client, name)."""
    user, key, c = owner
    name = unique("coll")
    c.dir("data://.my/" + name).create()
    return user, key, c, name


# ----------------------------------------------------------------------------- root and collections


def test_username_is_first_root_folder(owner):
    user, _, c = owner
    assert c.username() == user
    _, resp = c.recorder.last("GET", "/v1/data/")
    assert resp.status_code == 200
    assert resp.json()["folders"][0]["name"] == user


def test_dir_create_exists_delete(owner):
    user, _, c = owner
    name = unique("coll")
    d = c.dir("data://.my/" + name)
    assert d.exists() is False
    _, resp = c.recorder.last("GET", "/v1/data/.my/" + name)
    assert resp.status_code == 404

    assert d.create() is None
    data, resp = c.recorder.last("POST", "/v1/data/.my")  # POST to the parent
    assert json.loads(data) == {"name": name}
    assert resp.status_code == 200  # exactly 200 (§8.4)
    assert d.exists() is True
    _, resp = c.recorder.last("GET", "/v1/data/.my/" + name)
    assert resp.status_code == 200 and resp.headers.get("X-Data-Type") == "directory"

    # The same collection through the owner's name.
    assert c.dir("data://%s/%s" % (user, name)).exists() is True
    assert name in [x.getName() for x in c.dir("data://.my").dirs()]

    with pytest.raises(Exception):  # already there (postJsonHelper raises before create() checks)
        d.create()
    _, resp = c.recorder.last("POST", "/v1/data/.my")
    assert resp.status_code == 409

    assert d.delete() is True
    assert d.exists() is False


def test_dir_create_with_acl(owner, server, hl):
    user, _, c = owner
    name = unique("pub")
    c.dir("data://.my/" + name).create(ReadAcl.public)
    data, _ = c.recorder.last("POST", "/v1/data/.my")
    assert json.loads(data) == {"name": name, "acl": {"read": ["user://*"]}}
    assert c.dir("data://.my/" + name).get_permissions().read_acl == AclType.public
    priv = unique("priv")
    c.dir("data://.my/" + priv).create(ReadAcl.private)
    assert c.dir("data://.my/" + priv).get_permissions().read_acl == AclType.private


# ----------------------------------------------------------------------------- files


def test_file_put_and_get_forms(coll):
    user, _, c, name = coll
    f = c.file("data://.my/%s/greeting.txt" % name)
    assert f.exists() is False

    assert f.put("héllo wörld") is f
    data, resp = c.recorder.last("PUT", "/v1/data/.my/%s/greeting.txt" % name)
    assert resp.status_code == 200
    assert resp.json()["result"].endswith("/%s/greeting.txt" % name), resp.text
    assert "Content-Type" not in resp.request.headers  # not JSON: no Content-Type (§3.2)
    assert f.exists() is True
    assert f.getString() == "héllo wörld"
    assert f.getBytes() == "héllo wörld".encode()

    raw = bytes(range(256))
    b = c.file("data://.my/%s/blob.bin" % name)
    b.put(raw)
    assert b.getBytes() == raw

    j = c.file("data://.my/%s/doc.json" % name)
    j.putJson({"a": [1, 2.5, None], "b": "c"})
    _, resp = c.recorder.last("PUT", "/v1/data/.my/%s/doc.json" % name)
    assert resp.request.headers["Content-Type"] == "application/json"
    assert j.getJson() == {"a": [1, 2.5, None], "b": "c"}
    assert json.loads(j.getString()) == {"a": [1, 2.5, None], "b": "c"}

    # put("123") parses as JSON: HL sends Content-Type json; stored verbatim.
    n = c.file("data://.my/%s/number" % name)
    n.put("123")
    _, resp = c.recorder.last("PUT", "/v1/data/.my/%s/number" % name)
    assert resp.request.headers["Content-Type"] == "application/json"
    assert n.getBytes() == b"123"
    assert n.getJson() == 123

    # Replacing a file.
    f.put(b"replaced")
    assert f.getString() == "replaced"

    # The same file through the owner's name, and as a path without data://.
    assert c.file("data://%s/%s/greeting.txt" % (user, name)).getString() == "replaced"
    assert c.file("%s/%s/greeting.txt" % (user, name)).getString() == "replaced"

    # getFile: a local temporary file.
    path = f.getFile(as_path=True)
    try:
        with open(path, "rb") as fh:
            assert fh.read() == b"replaced"
    finally:
        os.unlink(path)


def test_file_empty_and_put_file(coll, tmp_path):
    _, _, c, name = coll
    e = c.file("data://.my/%s/empty" % name)
    e.put(b"")
    assert e.exists() is True
    assert e.getBytes() == b""
    local = tmp_path / "local.txt"
    local.write_bytes(b"from a local file\n")
    p = c.file("data://.my/%s/from_file.txt" % name)
    p.putFile(str(local))
    assert p.getBytes() == b"from a local file\n"


def test_missing_file_errors(coll):
    user, _, c, name = coll
    f = c.file("data://.my/%s/missing.txt" % name)
    assert f.exists() is False
    _, resp = c.recorder.last("HEAD", "/v1/data/.my/%s/missing.txt" % name)
    assert resp.status_code == 404
    assert resp.headers.get("X-Error-Message"), resp.headers
    with pytest.raises(DataApiError) as ei:
        f.getString()
    assert "does not exist" in str(ei.value), str(ei.value)
    with pytest.raises(DataApiError):
        f.getBytes()
    with pytest.raises(DataApiError):
        f.getJson()
    # A file in a collection that does not exist: PUT fails with JSON.
    with pytest.raises(Exception):
        c.file("data://.my/%s/x" % unique("nocoll")).put("x")


def test_file_delete(coll):
    _, _, c, name = coll
    f = c.file("data://.my/%s/gone.txt" % name)
    f.put("bye")
    assert f.delete() is True
    _, resp = c.recorder.last("DELETE", "/v1/data/.my/%s/gone.txt" % name)
    assert resp.status_code in (200, 204)
    if resp.status_code == 200:
        assert resp.json()["result"]["deleted"] == 1
    assert f.exists() is False
    with pytest.raises(DataApiError):  # deleting it again
        f.delete()
    _, resp = c.recorder.last("DELETE", "/v1/data/.my/%s/gone.txt" % name)
    assert resp.status_code == 404


# ----------------------------------------------------------------------------- listing


def test_listing_files_dirs_and_attributes(coll):
    _, _, c, name = coll
    base = "data://.my/" + name
    c.file(base + "/a.txt").put("aaa")
    c.file(base + "/b.bin").put(b"\x00" * 1000)
    c.dir(base + "/sub").create()
    c.dir(base + "/sub2").create()
    c.file(base + "/sub/inner.txt").put("in")

    d = c.dir(base)
    files = {f.getName(): f for f in d.files()}
    assert set(files) == {"a.txt", "b.bin"}
    for f in files.values():
        assert isinstance(f, DataFile)
        assert isinstance(f.last_modified, datetime.datetime)  # parsed with %Y-%m-%dT%H:%M:%S.%fZ
        assert abs(f.last_modified - datetime.datetime.utcnow()) < datetime.timedelta(minutes=10), f.last_modified
    assert files["a.txt"].size == 3
    assert files["b.bin"].size == 1000
    assert files["a.txt"].path == "%s/a.txt" % base.replace("data://", "")
    assert files["a.txt"].getString() == "aaa"

    dirs = {x.getName(): x for x in d.dirs()}
    assert set(dirs) == {"sub", "sub2"}
    assert all(isinstance(x, DataDirectory) for x in dirs.values())
    assert [f.getName() for f in dirs["sub"].files()] == ["inner.txt"]
    assert list(dirs["sub2"].list()) == []

    everything = list(d.list())
    assert len(everything) == 4
    assert [x.is_dir() for x in everything] == [True, True, False, False], "folders come first"

    # The raw listing: last_modified exactly YYYY-MM-DDTHH:MM:SS.fffZ (§3.3, §8.5).
    _, resp = c.recorder.last("GET", "/v1/data/.my/%s/sub2" % name)
    assert resp.status_code == 200
    body = resp.json()
    assert body.get("marker") in (None, "")
    listing = c.getHelper(d.url).json()
    for f in listing["files"]:
        lm = f["last_modified"]
        assert len(lm) == 24 and lm.endswith("Z") and lm[19] == ".", lm
        datetime.datetime.strptime(lm, "%Y-%m-%dT%H:%M:%S.%fZ")

    # getDir(): every file downloaded into a local directory.
    local = d.getDir()
    assert sorted(os.listdir(local)) == ["a.txt", "b.bin"]


def test_listing_with_trailing_slash_and_marker_param(coll):
    _, _, c, name = coll
    for i in range(3):
        c.file("data://.my/%s/f%d" % (name, i)).put("x")
    assert sorted(f.getName() for f in c.dir("data://.my/%s/" % name).files()) == ["f0", "f1", "f2"]
    # A marker continues after the named entry; HL stops when it is null or "".
    resp = c.getHelper("/v1/data/.my/%s" % name, marker="f0")
    assert resp.status_code == 200
    assert [f["filename"] for f in resp.json()["files"]] == ["f1", "f2"]
    assert query_of(resp) == {"marker": "f0"}


def test_missing_directory(owner):
    _, _, c = owner
    d = c.dir("data://.my/" + unique("none"))
    assert d.exists() is False
    with pytest.raises(DataApiError):
        list(d.list())
    with pytest.raises(DataApiError):
        d.get_permissions()


# ----------------------------------------------------------------------------- permissions


def test_permissions_default_update_and_effect(server, coll, hl):
    user, _, c, name = coll
    d = c.dir("data://.my/" + name)
    acl = d.get_permissions()
    _, resp = c.recorder.last("GET", "/v1/data/.my/" + name)
    assert query_of(resp) == {"acl": "true"}
    assert acl.read_acl == AclType.my_algos  # the default for a new collection
    c.file("data://.my/%s/shared.txt" % name).put("shared text")

    other = hl(server.create_user_with_key()[1])
    theirs = other.file("data://%s/%s/shared.txt" % (user, name))
    assert theirs.exists() is False  # private data does not exist for others

    assert d.update_permissions(ReadAcl.public) is True
    data, resp = c.recorder.last("PATCH", "/v1/data/.my/" + name)
    assert json.loads(data) == {"acl": {"read": ["user://*"]}}
    assert resp.status_code == 200  # exactly 200 (§8.4)
    assert d.get_permissions().read_acl == AclType.public
    assert theirs.exists() is True
    assert theirs.getString() == "shared text"
    assert "shared.txt" in [f.getName() for f in other.dir("data://%s/%s" % (user, name)).files()]
    # Others see only the public collections of the owner.
    assert name in [x.getName() for x in other.dir("data://" + user).dirs()]
    # Public is read-only for others.
    with pytest.raises(Exception):
        other.file("data://%s/%s/intruder.txt" % (user, name)).put("x")
    _, resp = other.recorder.last("PUT", "/v1/data/%s/%s/intruder.txt" % (user, name))
    assert resp.status_code == 403
    with pytest.raises(DataApiError):
        theirs.delete()
    assert c.file("data://.my/%s/shared.txt" % name).exists() is True

    assert d.update_permissions(ReadAcl.private) is True
    assert d.get_permissions().read_acl == AclType.private
    data, _ = c.recorder.last("PATCH", "/v1/data/.my/" + name)
    assert json.loads(data) == {"acl": {"read": []}}
    assert theirs.exists() is False
    assert name not in [x.getName() for x in other.dir("data://" + user).dirs()]

    assert d.update_permissions(ReadAcl.my_algos) is True
    assert d.get_permissions().read_acl == AclType.my_algos


def test_update_permissions_by_others_is_refused(server, coll, hl):
    user, _, c, name = coll
    other = hl(server.create_user_with_key()[1])
    with pytest.raises(DataApiError):
        other.dir("data://%s/%s" % (user, name)).update_permissions(ReadAcl.public)
    assert c.dir("data://.my/" + name).get_permissions().read_acl == AclType.my_algos


# ----------------------------------------------------------------------------- deletes


def test_dir_delete_needs_force_when_not_empty(coll):
    _, _, c, name = coll
    d = c.dir("data://.my/" + name)
    c.file("data://.my/%s/one" % name).put("1")
    c.dir("data://.my/%s/sub" % name).create()
    c.file("data://.my/%s/sub/two" % name).put("2")
    with pytest.raises(DataApiError):
        d.delete()
    _, resp = c.recorder.last("DELETE", "/v1/data/.my/" + name)
    assert 400 <= resp.status_code < 500
    assert "deleted" in resp.json()["error"]
    assert d.exists() is True
    assert d.delete(force=True) is True
    _, resp = c.recorder.last("DELETE", "/v1/data/.my/" + name)
    assert query_of(resp) == {"force": "true"}
    assert resp.status_code in (200, 204)
    assert d.exists() is False


def test_delete_missing_dir_raises(owner):
    _, _, c = owner
    with pytest.raises(DataApiError):
        c.dir("data://.my/" + unique("none")).delete()


# ----------------------------------------------------------------------------- CLI


def test_cli_data_commands(server, owner, tmp_path):
    """`algo mkdir/ls/cp/cat/rm/rmdir` against the server (§6 CLI)."""
    user, key, c = owner
    home = write_cli_config(tmp_path, server.base_url, key)
    name = unique("cli")
    run_cli(home, "mkdir", "data://.my/" + name)
    assert c.dir("data://.my/" + name).exists()

    local = tmp_path / "upload.txt"
    local.write_text("uploaded by the CLI\n")
    run_cli(home, "cp", str(local), "data://.my/%s/" % name)  # local -> remote (dir dest)
    assert c.file("data://.my/%s/upload.txt" % name).getString() == "uploaded by the CLI\n"
    run_cli(home, "cp", str(local), "data://.my/%s/renamed.txt" % name)  # local -> remote file
    assert c.file("data://.my/%s/renamed.txt" % name).getString() == "uploaded by the CLI\n"

    out = run_cli(home, "cat", "data://.my/%s/upload.txt" % name)
    assert out == "uploaded by the CLI\n\n"  # print() adds a newline

    out = run_cli(home, "ls", "data://.my/%s/" % name)
    assert sorted(out.split()) == sorted(["%s/%s/upload.txt" % (".my", name), "%s/%s/renamed.txt" % (".my", name)]), out
    out = run_cli(home, "ls", "-l", "data://.my/%s/" % name)
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 2, out
    for line in lines:
        stamp, size, path = [p.strip() for p in line.split("   ")]
        datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        assert size == str(len("uploaded by the CLI\n")) and path.startswith(".my/%s/" % name)
    # A path without a trailing slash is a file: the CLI lists the parent.
    out = run_cli(home, "ls", "-l", "data://.my/%s/upload.txt" % name)
    assert out.strip().endswith(".my/%s/upload.txt" % name) and "20   " in out, out
    # No path: the root; the caller's own namespace comes first.
    out = run_cli(home, "ls")
    assert out.split()[0] == user + "/", out

    # remote -> remote, remote -> local.
    run_cli(home, "cp", "data://.my/%s/upload.txt" % name, "data://.my/%s/copy.txt" % name)
    assert c.file("data://.my/%s/copy.txt" % name).getString() == "uploaded by the CLI\n"
    dest = tmp_path / "downloaded.txt"
    run_cli(home, "cp", "data://.my/%s/copy.txt" % name, str(dest))
    assert dest.read_text() == "uploaded by the CLI\n"

    run_cli(home, "rm", "data://.my/%s/copy.txt" % name)
    assert c.file("data://.my/%s/copy.txt" % name).exists() is False
    run_cli(home, "rmdir", "-f", "data://.my/" + name)
    assert c.dir("data://.my/" + name).exists() is False


def test_cli_cat_missing_file(server, owner, tmp_path):
    user, key, c = owner
    home = write_cli_config(tmp_path, server.base_url, key)
    name = unique("cli")
    c.dir("data://.my/" + name).create()
    out = run_cli(home, "cat", "data://.my/%s/nothing.txt" % name)
    assert out.startswith("file does not exist"), out


def test_connector_prefix_serves_the_same_data(server, coll):
    """HL writes through /v1/data; /v1/connector/data/<owner>%2F... reads the same bytes (§3.1)."""
    user, key, c, name = coll
    c.file("data://.my/%s/same.txt" % name).put("same bytes")
    status, _, body = http("GET", "%s/v1/connector/data/%s%%2F%s%%2Fsame.txt" % (server.base_url, user, name), key=key)
    assert (status, body) == (200, b"same bytes")


def test_listing_walks_marker_pages(coll):
    """More than one page (the docs say at most 1000 entries per page): HL
    repeats GET ?marker=... until the marker is null or "" (§3.3)."""
    _, _, c, name = coll
    base = "data://.my/" + name
    c.dir(base + "/a_dir").create()  # sorts before the files: first page
    c.dir(base + "/z_dir").create()  # sorts after them: a later page
    n = 1003
    for i in range(n):
        c.file("%s/f%04d" % (base, i)).put(b"x")
    first = c.getHelper("/v1/data/.my/" + name).json()
    entries = len(first.get("files", [])) + len(first.get("folders", []))
    assert first.get("marker"), "a full first page must carry a marker: %d entries" % entries
    assert entries <= 1000
    files = [f.getName() for f in c.dir(base).files()]
    assert len(files) == n and len(set(files)) == n, "paging lost or repeated files"
    assert sorted(files) == ["f%04d" % i for i in range(n)]
    assert sorted(d.getName() for d in c.dir(base).dirs()) == ["a_dir", "z_dir"]
    assert len(list(c.dir(base).list())) == n + 2
    pages = [resp for _, resp in c.recorder.matching("GET", "/v1/data/.my/" + name) if "marker" in query_of(resp)]
    assert pages, "HL never asked for a second page"


@pytest.mark.parametrize("filename", ["with space.txt", "ünïcode-名前.txt", "plus+sign.txt", "semi;colon"])
def test_file_names_need_percent_decoding(coll, filename):
    """requests percent-encodes what is not URL-safe; the server stores and
    lists the decoded name. (HL itself cannot send `%` or `?` in a name:
    requests leaves `%41` as it is and `?` starts the query.)"""
    _, _, c, name = coll
    f = c.file("data://.my/%s/%s" % (name, filename))
    f.put("named")
    assert f.exists() is True
    assert f.getString() == "named"
    listed = [x.getName() for x in c.dir("data://.my/" + name).files()]
    assert listed == [filename], listed
    assert f.delete() is True
