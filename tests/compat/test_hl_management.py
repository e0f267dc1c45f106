"""HL client (algorithmia 2.0.5, with api-client 1.5.1) against algohub:
create_user, org types, create/get/edit org, invite_to_org (reference §1.4,
§4.1, §4.2, §6).

Run in the HL virtualenv only (see run.sh): `import Algorithmia` needs
algorithmia-api-client 1.5.1 (DefaultApi), which 1.5.5 removed.

HL sends the key bare (`Authorization: <key>`). Every HTTP exchange of the
clients made here is recorded, and each test checks that no 2xx JSON body
carries an `error` key: HL tests `'error' in body` and crashes on
`"error": null` (§1.4).
"""

import json

import pytest

import Algorithmia  # noqa: E402  (an import failure fails the suite: no skips)

from conftest import http, unique  # noqa: E402


class Recorder:
    """Wraps a client's requests session and keeps (method, url, request body, response)."""

    def __init__(self, client):
        self.calls = []
        session = client.requestSession
        original = session.request

        def request(method, url, *args, **kwargs):
            resp = original(method, url, *args, **kwargs)
            self.calls.append((method.upper(), url, kwargs.get("data"), resp))
            return resp

        session.request = request

    def last(self, method, path_suffix):
        for m, url, data, resp in reversed(self.calls):
            if m == method and url.split("?")[0].endswith(path_suffix):
                return data, resp
        raise AssertionError("no %s ...%s recorded: %s" % (method, path_suffix, [(m, u) for m, u, _, _ in self.calls]))

    def check_no_error_key_in_success(self):
        for method, url, _, resp in self.calls:
            if 200 <= resp.status_code < 300 and resp.content:
                try:
                    body = resp.json()
                except ValueError:
                    continue
                items = body if isinstance(body, list) else [body]
                for item in items:
                    assert not (isinstance(item, dict) and "error" in item), (
                        "%s %s answered %d with an `error` key in a success body: %s"
                        % (method, url, resp.status_code, resp.text)
                    )


@pytest.fixture()
def hl(server):
    """A factory of HL clients; every exchange is checked for `error` in 2xx bodies."""
    recorders = []

    def make(key=None, address=None):
        c = Algorithmia.client(key or server.admin_key, api_address=address or server.base_url)
        c.recorder = Recorder(c)
        recorders.append(c.recorder)
        return c

    yield make
    for r in recorders:
        r.check_no_error_key_in_success()


def org_request(name, type_name="basic", **kw):
    body = {
        "org_name": name,
        "org_label": "Label %s" % name,
        "org_contact_name": "Contact %s" % name,
        "org_email": "%s@example.org" % name,
        "org_url": "https://%s.example.org" % name,
        "type_id": type_name,
    }
    body.update(kw)
    return body


def members(server, org, key=None):
    status, _, body = http("GET", "%s/v1/organizations/%s/members" % (server.base_url, org), key=key or server.admin_key)
    assert status == 200, body
    return {m["username"]: m["role"] for m in json.loads(body)["results"]}


def basic_id(server):
    status, _, body = http("GET", server.base_url + "/v1/organization/types", key=server.admin_key)
    assert status == 200, body
    ids = [t["id"] for t in json.loads(body) if t["name"] == "basic"]
    assert len(ids) == 1, body
    return ids[0]


# ----------------------------------------------------------------------------- users


def test_create_user(server, hl):
    c = hl()
    name = unique("hu")
    req = {
        "username": name,
        "email": "%s@example.com" % name,
        "fullname": "HL %s" % name,
        "passwordHash": "",
        "shouldCreateHello": False,
    }
    u = c.create_user(req)
    assert isinstance(u, dict), u
    assert u["username"] == name
    assert u["email"] == "%s@example.com" % name
    assert u["fullname"] == "HL %s" % name
    assert u["resource_type"] == "user"
    assert len(u["id"]) == 36
    # HL sent the dict as JSON with the bare key.
    data, resp = c.recorder.last("POST", "/v1/users")
    assert json.loads(data) == req
    assert resp.request.headers["Authorization"] == server.admin_key
    assert resp.request.headers["Content-Type"] == "application/json"
    # The user exists.
    status, _, body = http("GET", "%s/v1/users/%s" % (server.base_url, name), key=server.admin_key)
    assert status == 200 and json.loads(body)["id"] == u["id"]


def test_create_user_errors_raise(server, hl):
    c = hl()
    name = unique("hd")
    c.create_user({"username": name, "email": "%s@example.com" % name, "fullname": "X"})
    with pytest.raises(Exception) as ei:  # duplicate: 409
        c.create_user({"username": name, "email": "other%s@example.com" % name, "fullname": "X"})
    assert "409" in str(ei.value)
    with pytest.raises(Exception) as ei:  # invalid name: 400
        c.create_user({"username": "bad name!", "email": "bad@example.com", "fullname": "X"})
    assert "400" in str(ei.value)
    # Not an admin: 403.
    _, key = server.create_user_with_key()
    with pytest.raises(Exception) as ei:
        hl(key).create_user({"username": unique("hx"), "email": "x@example.com", "fullname": "X"})
    assert "403" in str(ei.value)


def test_bad_key_raises(server, hl):
    c = hl("sim" + "y" * 25)
    with pytest.raises(Exception) as ei:
        c.create_user({"username": unique("hb"), "email": "b@example.com", "fullname": "X"})
    assert "401" in str(ei.value)


# ----------------------------------------------------------------------------- org types


def test_get_org_types(server, hl):
    types = hl().get_org_types()
    assert isinstance(types, list)
    by_name = {t["name"]: t["id"] for t in types}
    assert by_name.get("basic") == basic_id(server)
    for t in types:
        assert set(t) >= {"id", "name"}


def test_address_with_trailing_slash(server, hl):
    # requests collapses `//v1` to `/v1`, and the server accepts either (§1.1).
    types = hl(address=server.base_url + "/").get_org_types()
    assert "basic" in [t["name"] for t in types]


# ----------------------------------------------------------------------------- organizations


def test_create_get_edit_org(server, hl):
    c = hl()
    name = unique("ho")
    req = org_request(name)
    o = c.create_org(req)
    assert isinstance(o, dict), o
    assert "error" not in o
    assert o["org_name"] == name
    assert o["org_label"] == "Label %s" % name
    assert o["org_email"] == "%s@example.org" % name
    assert o["org_contact_name"] == "Contact %s" % name
    assert o["resource_type"] == "organization"
    # HL mapped the type name to its id before posting.
    bid = basic_id(server)
    data, _ = c.recorder.last("POST", "/v1/organizations")
    assert json.loads(data)["type_id"] == bid
    assert o["type_id"] == bid

    got = c.get_org(name)
    assert got["org_name"] == name and got["type_id"] == bid and "error" not in got

    edited = c.edit_org(name, org_request(name, org_label="Edited %s" % name, org_contact_name="Someone Else"))
    data, resp = c.recorder.last("PUT", "/v1/organizations/%s" % name)
    assert 200 <= resp.status_code < 300, resp.text
    assert json.loads(data)["type_id"] == bid
    if isinstance(edited, dict):
        assert edited["org_label"] == "Edited %s" % name
    got = c.get_org(name)
    assert got["org_label"] == "Edited %s" % name
    assert got["org_contact_name"] == "Someone Else"


def test_get_missing_org_returns_error_json(hl):
    # HL get_org returns .json() whatever the status: the error must be JSON.
    got = hl().get_org("nosuchorg")
    assert isinstance(got, dict)
    assert isinstance(got["error"]["message"], str) and got["error"]["message"]


def test_create_org_unknown_type_raises(server, hl):
    c = hl()
    name = unique("hbad")
    with pytest.raises(Exception) as ei:
        c.create_org(org_request(name, type_name="no_such_type"))
    # HL looked the name up, found nothing and sent an empty type_id.
    data, resp = c.recorder.last("POST", "/v1/organizations")
    assert json.loads(data)["type_id"] == ""
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert "error" in resp.json()
    assert "Non-Algorithm related Failure" in str(ei.value)
    # Nothing was created.
    status, _, _ = http("GET", "%s/v1/organizations/%s" % (server.base_url, name), key=server.admin_key)
    assert status == 404


def test_edit_org_unknown_type_raises(server, hl):
    c = hl()
    name = unique("hbe")
    c.create_org(org_request(name))
    with pytest.raises(Exception):
        c.edit_org(name, org_request(name, type_name="no_such_type", org_label="Should not apply"))
    data, resp = c.recorder.last("PUT", "/v1/organizations/%s" % name)
    assert json.loads(data)["type_id"] == ""
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert c.get_org(name)["org_label"] == "Label %s" % name


def test_create_org_duplicate_raises(hl):
    c = hl()
    name = unique("hdo")
    c.create_org(org_request(name))
    with pytest.raises(Exception) as ei:
        c.create_org(org_request(name))
    assert "409" in str(ei.value)


# ----------------------------------------------------------------------------- invitations / members


def test_invite_by_cluster_admin_adds_member(server, hl):
    c = hl()
    org = unique("hia")
    c.create_org(org_request(org))
    user = server.create_user()
    resp = c.invite_to_org(org, user)
    # putHelper returns the raw Response when the body is empty (204).
    assert resp.status_code == 204, (resp.status_code, getattr(resp, "text", resp))
    assert resp.content == b""
    data, _ = c.recorder.last("PUT", "/v1/organizations/%s/members/%s" % (org, user))
    assert not data  # HL sends no body
    assert members(server, org) == {"admin": "owner", user: "member"}


def test_invite_by_org_admin_creates_invitation(server, hl):
    owner, owner_key = server.create_user_with_key()
    c = hl(owner_key)
    org = unique("hio")
    o = c.create_org(org_request(org))
    assert o["org_name"] == org
    assert members(server, org, owner_key) == {owner: "owner"}

    invitee, invitee_key = server.create_user_with_key()
    resp = c.invite_to_org(org, invitee)
    assert resp.status_code == 204, (resp.status_code, getattr(resp, "text", resp))
    assert members(server, org, owner_key) == {owner: "owner", invitee: "invited"}

    # The invitee sees the invitation and can accept it (native routes).
    status, _, body = http("GET", server.base_url + "/v1/invitations", key=invitee_key)
    assert status == 200
    inv = [i for i in json.loads(body) if i["org"] == org]
    assert len(inv) == 1 and inv[0]["status"] == "pending", body
    status, _, body = http("POST", "%s/v1/invitations/%s/accept" % (server.base_url, inv[0]["id"]), key=invitee_key)
    assert status == 200, body
    assert members(server, org, owner_key) == {owner: "owner", invitee: "member"}


def test_invite_errors_raise(server, hl):
    c = hl()
    org = unique("hie")
    c.create_org(org_request(org))
    with pytest.raises(Exception):  # no such user: 404 with a JSON body
        c.invite_to_org(org, "nosuchuser")
    _, resp = c.recorder.last("PUT", "/v1/organizations/%s/members/nosuchuser" % org)
    assert resp.status_code == 404 and resp.json()["error"]["message"]

    user = server.create_user()
    c.invite_to_org(org, user)
    with pytest.raises(Exception):  # already a member: 409
        c.invite_to_org(org, user)
    _, resp = c.recorder.last("PUT", "/v1/organizations/%s/members/%s" % (org, user))
    assert resp.status_code == 409

    # A plain member may not invite: 403.
    member, member_key = server.create_user_with_key()
    c.invite_to_org(org, member)
    m = hl(member_key)
    other = server.create_user()
    with pytest.raises(Exception):
        m.invite_to_org(org, other)
    _, resp = m.recorder.last("PUT", "/v1/organizations/%s/members/%s" % (org, other))
    assert resp.status_code == 403
    assert other not in members(server, org)


def test_manage_api_reaches_the_same_routes(server, hl):
    """HL builds client.manageApi: an api-client 1.5.1 DefaultApi with host
    <address>/v1, paths without /v1 and the bare key (§0). HL never calls it,
    but user code may; it must hit the same routes and decode."""
    c = hl()
    assert c.manageApi.api_client.configuration.host == server.base_url + "/v1"
    u = c.manageApi.get_user("admin")
    assert u.username == "admin" and u.resource_type == "user" and len(u.id) == 36
    org = unique("hma")
    c.create_org(org_request(org))
    o = c.manageApi.get_organization(org)
    assert o.org_name == org and o.type_id == basic_id(server)
    # (get_all_organization_types lists no security scheme, so 1.5.1 sends no
    # Authorization header and the server rightly answers 401: not checked.)
