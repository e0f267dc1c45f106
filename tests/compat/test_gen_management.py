"""GEN client (algorithmia-api-client 1.5.5) against algohub: users, orgs, org
types, members, invitations and API keys (reference §1.2, §1.4, §4.1–4.3, §5).

Run in the GEN virtualenv only (see run.sh): this package has no DefaultApi,
so `import Algorithmia` cannot work next to it.

Auth: operations that list no security scheme (or only CookieAuth) send no
Authorization header, so every client here carries a default header
`Authorization: Simple <key>` (§1.2). One test uses the bare key through
`cfg.api_key` instead.

The user, org and member list calls are made with `_preload_content=False`: the
generated `PagedResultList` element model cannot decode realistic elements
(§5), so those tests parse the raw JSON.
"""

import datetime
import json

import pytest

import algorithmia_api_client  # noqa: E402  (an import failure fails the suite: no skips)
from algorithmia_api_client import (  # noqa: E402
    AdminApi,
    ApiClient,
    ApiException,
    ApiKeyCreation,
    AuthApi,
    AuthPermissions,
    Configuration,
    Organization,
    OrganizationApiKeyCreation,
    OrganizationsApi,
    OrganizationType,
    User,
    UsersApi,
)

from conftest import http, unique  # noqa: E402

# Error codes the GEN `Error` model accepts (§1.4).
ALLOWED_CODES = set()
for lo, hi in [
    (1000, 1017), (2001, 2002), (2011, 2018), (3000, 3001), (3003, 3005), (3007, 3010),
    (3100, 3110), (3300, 3302), (4001, 4009), (4020, 4021), (4040, 4045), (4050, 4052),
    (4070, 4070), (4080, 4084), (5001, 5004), (6001, 6001), (8000, 8014),
]:
    ALLOWED_CODES.update(range(lo, hi + 1))


# ----------------------------------------------------------------------------- helpers


def make_client(base_url, key, prefix="Simple"):
    cfg = Configuration(host=base_url)
    header = None if key is None else ("%s %s" % (prefix, key) if prefix else key)
    if header is None:
        return ApiClient(cfg)
    return ApiClient(cfg, header_name="Authorization", header_value=header)


def unchecked(server, key=None):
    """Admin APIs with client-side validation off, so bad input reaches the server."""
    cfg = Configuration(host=server.base_url)
    cfg.client_side_validation = False
    return Apis(ApiClient(cfg, header_name="Authorization", header_value="Simple " + (key or server.admin_key)))


class Apis:
    def __init__(self, client):
        self.client = client
        self.users = UsersApi(client)
        self.orgs = OrganizationsApi(client)
        self.auth = AuthApi(client)
        self.admin = AdminApi(client)


def raw_json(resp):
    """Decodes a `_preload_content=False` response; asserts 2xx and no `error` key."""
    assert 200 <= resp.status < 300, resp.status
    body = json.loads(resp.data)
    assert isinstance(body, dict) and "error" not in body, body
    return body


def api_error(excinfo, status):
    """Checks an ApiException's status and its `{"error": {"message", "code"}}` body."""
    e = excinfo.value
    assert isinstance(e, ApiException)
    assert e.status == status, "expected HTTP %d, got %d: %s" % (status, e.status, e.body)
    body = json.loads(e.body)
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("message"), str) and err["message"], body
    assert isinstance(err.get("code"), int), body
    assert err["code"] in ALLOWED_CODES, "code %r is outside the GEN Error enum: %s" % (err["code"], body)
    return err


def new_user_model(username, **kw):
    return User(
        username=username,
        email=kw.pop("email", "%s@example.com" % username),
        fullname=kw.pop("fullname", "Full %s" % username),
        resource_type="user",
        **kw,
    )


def new_org_model(name, type_id="basic", **kw):
    return Organization(
        org_name=name,
        org_email=kw.pop("org_email", "%s@example.org" % name),
        org_label=kw.pop("org_label", "Label of %s" % name),
        org_contact_name=kw.pop("org_contact_name", "Contact %s" % name),
        org_url=kw.pop("org_url", "https://%s.example.org" % name),
        type_id=type_id,
        **kw,
    )


def list_all(fetch, limit):
    """Walks marker paging of a raw list call; returns (all results, pages)."""
    results, pages, marker = [], 0, None
    while True:
        kw = {"limit": limit, "_preload_content": False}
        if marker:
            kw["marker"] = marker
        body = raw_json(fetch(**kw))
        pages += 1
        assert isinstance(body["results"], list)
        assert len(body["results"]) <= limit
        results.extend(body["results"])
        marker = body.get("marker")
        if not marker:
            return results, pages
        assert body.get("next_link"), body
        assert pages < 100, "paging does not end"


@pytest.fixture(scope="module")
def admin(server):
    # An admin's tooling says why it creates keys for other people (issue 22:
    # such keys need a reason); the unmodified client sends it as a default header.
    client = make_client(server.base_url, server.admin_key)
    client.set_default_header("X-Algohub-Reason", "compatibility suite set-up")
    return Apis(client)


@pytest.fixture(scope="module")
def basic_type_id(admin):
    types = admin.orgs.get_all_organization_types()
    ids = [t.id for t in types if t.name == "basic"]
    assert len(ids) == 1, types
    return ids[0]


@pytest.fixture()
def plain_user(server):
    """A user with no admin rights, and its GEN client."""
    name, key = server.create_user_with_key()
    return name, key, Apis(make_client(server.base_url, key))


# ----------------------------------------------------------------------------- auth


def test_bare_key_and_simple_prefix_are_accepted(server):
    # The GEN default: cfg.api_key without prefix -> `Authorization: <key>`.
    cfg = Configuration(host=server.base_url)
    cfg.api_key["Authorization"] = server.admin_key
    u = UsersApi(ApiClient(cfg)).get_user("admin")
    assert u.username == "admin" and u.resource_type == "user" and len(u.id) == 36
    # With the documented prefix.
    cfg2 = Configuration(host=server.base_url)
    cfg2.api_key["Authorization"] = server.admin_key
    cfg2.api_key_prefix["Authorization"] = "Simple"
    assert UsersApi(ApiClient(cfg2)).get_user("admin").id == u.id


def test_bad_key_is_401(server):
    apis = Apis(make_client(server.base_url, "sim" + "x" * 25))
    with pytest.raises(ApiException) as ei:
        apis.users.get_user("admin")
    api_error(ei, 401)


def test_missing_key_is_401(server):
    apis = Apis(make_client(server.base_url, None))
    with pytest.raises(ApiException) as ei:
        apis.users.get_users(_preload_content=False)
    api_error(ei, 401)


def test_non_admin_is_403(server, plain_user):
    name, _, apis = plain_user
    with pytest.raises(ApiException) as ei:
        apis.users.create_user(new_user_model(unique("x")))
    api_error(ei, 403)
    with pytest.raises(ApiException) as ei:
        apis.users.get_users(_preload_content=False)
    api_error(ei, 403)
    with pytest.raises(ApiException) as ei:
        apis.orgs.create(OrganizationType(id="ignored", name=unique("t")))
    api_error(ei, 403)
    # ...but a user may read themself.
    me = apis.users.get_user(name)
    assert me.username == name and me.resource_type == "user"


# ----------------------------------------------------------------------------- users


def test_user_create_get_update_delete(admin, server):
    name = unique("gu")
    created = admin.users.create_user(
        new_user_model(name, company_name="ACME", company_role="Engineer")
    )
    assert created.username == name
    assert created.email == "%s@example.com" % name
    assert created.fullname == "Full %s" % name
    assert created.company_name == "ACME" and created.company_role == "Engineer"
    assert created.resource_type == "user"
    assert len(created.id) == 36
    assert created.self_link == "%s/v1/users/%s" % (server.base_url, name)

    got = admin.users.get_user(name)
    assert got.id == created.id and got.email == created.email

    updated = admin.users.update_user(
        name, new_user_model(name, email="%s@new.example.com" % name, fullname="Renamed Person")
    )
    assert updated.id == created.id
    assert updated.email == "%s@new.example.com" % name
    assert updated.fullname == "Renamed Person"
    assert updated.company_name == "ACME"  # untouched fields stay
    assert admin.users.get_user(name).fullname == "Renamed Person"

    assert admin.users.delete_user(name) is None
    with pytest.raises(ApiException) as ei:
        admin.users.get_user(name)
    api_error(ei, 404)


def test_user_delete_raw_status(admin):
    name = unique("gd")
    admin.users.create_user(new_user_model(name))
    resp = admin.users.delete_user(name, _preload_content=False)
    assert resp.status in (200, 204)
    assert resp.data == b"", "delete should answer an empty body, got %r" % resp.data


def test_user_duplicate_is_409(admin):
    name = unique("dup")
    admin.users.create_user(new_user_model(name))
    with pytest.raises(ApiException) as ei:
        admin.users.create_user(new_user_model(name, email="other-%s@example.com" % name))
    api_error(ei, 409)
    with pytest.raises(ApiException) as ei:  # same email, other name
        admin.users.create_user(new_user_model(unique("dup"), email="%s@example.com" % name))
    api_error(ei, 409)


def test_user_invalid_name_is_400(server):
    cfg = Configuration(host=server.base_url)
    cfg.client_side_validation = False  # let the bad name reach the server
    client = ApiClient(cfg, header_name="Authorization", header_value="Simple " + server.admin_key)
    bad = User(
        username="bad name!", email="bad@example.com", fullname="Bad", resource_type="user",
        local_vars_configuration=cfg,
    )
    with pytest.raises(ApiException) as ei:
        UsersApi(client).create_user(bad)
    api_error(ei, 400)
    bad_email = User(
        username=unique("be"), email="not-an-email", fullname="Bad", resource_type="user",
        local_vars_configuration=cfg,
    )
    with pytest.raises(ApiException) as ei:
        UsersApi(client).create_user(bad_email)
    api_error(ei, 400)


def test_product_names_outside_the_v1_pattern_are_accepted(server, admin):
    """Decision (PRODUCT.md §1): account names follow `[a-z0-9][a-z0-9_-]{1,38}`,
    which is wider than the v1 pattern `^[a-zA-Z][a-zA-Z0-9_]*$` (max 30) that GEN
    checks client-side. Such names work with HL and the native routes; GEN cannot
    decode them (documented in the README). Names outside *our* rule are refused."""
    apis = unchecked(server)
    for ok in ("dash-name", "1leadingdigit"):
        model = User(username=ok, email="%s@example.com" % ok.replace("-", ""), fullname="X",
                     resource_type="user", local_vars_configuration=apis.client.configuration)
        resp = apis.users.create_user(model, _preload_content=False)
        assert resp.status == 200, (ok, resp.status, resp.data)
        assert json.loads(resp.data)["username"] == ok
    for bad in ("-dash", "a" * 40, "has space", "x"):
        model = User(username=bad, email="b%d@example.com" % len(bad), fullname="X",
                     resource_type="user", local_vars_configuration=apis.client.configuration)
        with pytest.raises(ApiException) as e:
            apis.users.create_user(model, _preload_content=False)
        assert e.value.status == 400, (bad, e.value.status, e.value.body)
        assert json.loads(e.value.body)["error"]["reason"] == "invalid_name"


def test_user_name_case_is_kept_or_lookup_ignores_case(admin):
    name = "Mixed%s" % unique("Case")
    created = admin.users.create_user(new_user_model(name))
    assert created.username.lower() == name.lower()
    # Whatever casing the server stores, the name the client used must resolve.
    assert admin.users.get_user(name).id == created.id
    assert admin.users.get_user(created.username).id == created.id


def test_user_update_cannot_change_username(admin):
    name = unique("ren")
    admin.users.create_user(new_user_model(name))
    with pytest.raises(ApiException) as ei:
        admin.users.update_user(name, new_user_model(unique("other")))
    api_error(ei, 400)
    assert admin.users.get_user(name).username == name


def test_user_missing_is_404(admin):
    for call in (
        lambda: admin.users.get_user("nosuchuser"),
        lambda: admin.users.delete_user("nosuchuser"),
        lambda: admin.users.update_user("nosuchuser", new_user_model("nosuchuser")),
    ):
        with pytest.raises(ApiException) as ei:
            call()
        api_error(ei, 404)


def test_user_list_paging(admin, server):
    names = {unique("pl") for _ in range(3)}
    for n in names:
        admin.users.create_user(new_user_model(n))
    first = raw_json(admin.users.get_users(limit=2, _preload_content=False))
    assert set(first) >= {"results", "marker", "next_link"}, first
    assert len(first["results"]) == 2
    assert first["marker"], "a full page must carry a marker"
    assert first["next_link"].startswith(server.base_url + "/v1/users")

    results, pages = list_all(admin.users.get_users, limit=2)
    assert pages >= 3
    usernames = [r["username"] for r in results]
    assert len(usernames) == len(set(usernames)), "paging repeated users"
    assert names <= set(usernames)
    assert "admin" in usernames
    for r in results:
        assert r["resource_type"] == "user"
        assert len(r["id"]) == 36
        assert "@" in r["email"]

    # Default page (no limit) and an invalid limit.
    assert len(raw_json(admin.users.get_users(_preload_content=False))["results"]) == len(results)
    with pytest.raises(ApiException) as ei:
        unchecked(server).users.get_users(limit=0, _preload_content=False)
    api_error(ei, 400)


def test_deleted_user_is_not_listed(admin):
    name = unique("gone")
    admin.users.create_user(new_user_model(name))
    admin.users.delete_user(name)
    results, _ = list_all(admin.users.get_users, limit=50)
    assert name not in [r["username"] for r in results]


# ----------------------------------------------------------------------------- org types


def test_org_types_list_create_delete(admin, basic_type_id):
    assert len(basic_type_id) > 0
    name = unique("tier")
    created = admin.orgs.create(OrganizationType(id="client-chosen", name=name))
    assert created.name == name
    assert created.id and created.id != "client-chosen"

    listed = {t.name: t.id for t in admin.orgs.get_all_organization_types()}
    assert listed.get(name) == created.id
    assert listed.get("basic") == basic_type_id

    with pytest.raises(ApiException) as ei:
        admin.orgs.create(OrganizationType(id="x", name=name))
    api_error(ei, 409)

    assert admin.orgs.delete_by_name(name) is None
    assert name not in [t.name for t in admin.orgs.get_all_organization_types()]
    with pytest.raises(ApiException) as ei:
        admin.orgs.delete_by_name(name)
    api_error(ei, 404)


def test_org_type_in_use_cannot_be_deleted(admin):
    tname = unique("used")
    t = admin.orgs.create(OrganizationType(id="x", name=tname))
    org = unique("tu")
    o = admin.orgs.create_organization(new_org_model(org, type_id=t.id))
    assert o.type_id == t.id
    with pytest.raises(ApiException) as ei:
        admin.orgs.delete_by_name(tname)
    api_error(ei, 409)
    assert tname in [x.name for x in admin.orgs.get_all_organization_types()]


def test_org_type_invalid_name_is_400(server):
    cfg = Configuration(host=server.base_url)
    cfg.client_side_validation = False
    client = ApiClient(cfg, header_name="Authorization", header_value="Simple " + server.admin_key)
    with pytest.raises(ApiException) as ei:
        OrganizationsApi(client).create(OrganizationType(id="x", name="no spaces!", local_vars_configuration=cfg))
    api_error(ei, 400)


# ----------------------------------------------------------------------------- organizations


def test_org_create_get_edit_delete(admin, server, basic_type_id):
    name = unique("org")
    created = admin.orgs.create_organization(new_org_model(name, type_id="basic"))
    assert created.org_name == name
    assert created.org_email == "%s@example.org" % name
    assert created.org_label == "Label of %s" % name
    assert created.org_contact_name == "Contact %s" % name
    assert created.org_url == "https://%s.example.org" % name
    assert created.type_id == basic_type_id  # a type name is resolved to its id
    assert created.resource_type == "organization"
    assert created.self_link == "%s/v1/organizations/%s" % (server.base_url, name)

    got = admin.orgs.get_organization(name)
    assert got.org_name == name and got.type_id == basic_type_id
    assert got.org_email == created.org_email

    # edit: PUT with the full Organization; response_type is None in GEN.
    edited = new_org_model(name, type_id=basic_type_id, org_label="Edited label", org_contact_name="New Contact")
    assert admin.orgs.edit(name, edited) is None
    got = admin.orgs.get_organization(name)
    assert got.org_label == "Edited label"
    assert got.org_contact_name == "New Contact"
    assert got.type_id == basic_type_id

    raw = admin.orgs.edit(name, new_org_model(name, org_label="Again"), _preload_content=False)
    assert 200 <= raw.status < 300
    if raw.data:
        assert "error" not in json.loads(raw.data)

    assert admin.orgs.delete_organization(name) is None
    with pytest.raises(ApiException) as ei:
        admin.orgs.get_organization(name)
    api_error(ei, 404)


def test_org_create_by_type_id(admin, basic_type_id):
    name = unique("oid")
    created = admin.orgs.create_organization(new_org_model(name, type_id=basic_type_id))
    assert created.type_id == basic_type_id


def test_org_duplicate_is_409(admin):
    name = unique("odup")
    admin.orgs.create_organization(new_org_model(name))
    with pytest.raises(ApiException) as ei:
        admin.orgs.create_organization(new_org_model(name))
    api_error(ei, 409)


def test_org_name_shared_with_users_is_409(admin):
    # Users and organizations share one namespace (data://<owner>/...).
    with pytest.raises(ApiException) as ei:
        admin.orgs.create_organization(new_org_model("admin"))
    api_error(ei, 409)


def test_org_bad_input_is_400(server, admin):
    cfg = Configuration(host=server.base_url)
    cfg.client_side_validation = False
    client = ApiClient(cfg, header_name="Authorization", header_value="Simple " + server.admin_key)
    orgs = OrganizationsApi(client)
    bad_name = Organization(
        org_name="bad-org name", org_email="a@example.org", org_label="L", org_contact_name="C",
        type_id="basic", local_vars_configuration=cfg,
    )
    with pytest.raises(ApiException) as ei:
        orgs.create_organization(bad_name)
    api_error(ei, 400)
    empty_type = Organization(
        org_name=unique("et"), org_email="a@example.org", org_label="L", org_contact_name="C",
        type_id="", local_vars_configuration=cfg,
    )
    with pytest.raises(ApiException) as ei:
        orgs.create_organization(empty_type)
    api_error(ei, 400)


def test_org_unknown_type_is_refused(admin):
    name = unique("unk")
    with pytest.raises(ApiException) as ei:
        admin.orgs.create_organization(new_org_model(name, type_id="no_such_type"))
    assert ei.value.status in (400, 404), ei.value.status
    api_error(ei, ei.value.status)
    with pytest.raises(ApiException) as ei:
        admin.orgs.get_organization(name)
    api_error(ei, 404)


def test_org_edit_cannot_rename(admin):
    name = unique("orn")
    admin.orgs.create_organization(new_org_model(name))
    with pytest.raises(ApiException) as ei:
        admin.orgs.edit(name, new_org_model(unique("other")))
    api_error(ei, 400)


def test_org_missing_is_404(admin):
    for call in (
        lambda: admin.orgs.get_organization("nosuchorg"),
        lambda: admin.orgs.delete_organization("nosuchorg"),
        lambda: admin.orgs.edit("nosuchorg", new_org_model("nosuchorg")),
        lambda: admin.orgs.list_members("nosuchorg", _preload_content=False),
        lambda: admin.orgs.add_organization_member("nosuchorg", "admin"),
    ):
        with pytest.raises(ApiException) as ei:
            call()
        api_error(ei, 404)


def test_org_list_paging(admin):
    names = {unique("lo") for _ in range(3)}
    for n in names:
        admin.orgs.create_organization(new_org_model(n))
    first = raw_json(admin.orgs.get_organizations(limit=2, _preload_content=False))
    assert len(first["results"]) == 2 and first["marker"]
    results, pages = list_all(admin.orgs.get_organizations, limit=2)
    assert pages >= 2
    got = [r["org_name"] for r in results]
    assert len(got) == len(set(got)), "paging repeated orgs"
    assert names <= set(got)
    for r in results:
        assert r["resource_type"] == "organization"
        assert r["type_id"]
    # The documented default page size is 10.
    default = raw_json(admin.orgs.get_organizations(_preload_content=False))
    assert len(default["results"]) == min(10, len(results))


def test_org_non_admin_user_sees_only_own_orgs(server, admin, plain_user):
    name, _, apis = plain_user
    mine = unique("mine")
    o = apis.orgs.create_organization(new_org_model(mine))
    assert o.org_name == mine
    other = unique("notmine")
    admin.orgs.create_organization(new_org_model(other))
    listed = [r["org_name"] for r in raw_json(apis.orgs.get_organizations(_preload_content=False))["results"]]
    assert mine in listed and other not in listed
    # ...and cannot edit or delete someone else's org.
    with pytest.raises(ApiException) as ei:
        apis.orgs.edit(other, new_org_model(other, org_label="hijack"))
    api_error(ei, 403)
    with pytest.raises(ApiException) as ei:
        apis.orgs.delete_organization(other)
    api_error(ei, 403)


def test_org_get_by_outsider_hides_contact_details(server, admin, plain_user):
    """Decision (PRODUCT.md §2): contact and billing email are shown to members
    only. A non-member sees the public profile (name, label, type), so GEN, whose
    model requires org_email, cannot decode it; members and cluster admins get
    the full model, which GEN decodes."""
    _, _, apis = plain_user
    org = unique("priv")
    admin.orgs.create_organization(new_org_model(org))
    raw = apis.orgs.get_organization(org, _preload_content=False)
    assert raw.status == 200
    body = json.loads(raw.data)
    assert body["org_name"] == org and body["resource_type"] == "organization"
    assert "org_email" not in body and "org_contact_name" not in body
    full = admin.orgs.get_organization(org)
    assert full.org_name == org and full.org_email


def test_trailing_and_double_slashes(server):
    """§1.1/§1.3: accept a trailing '/' and a doubled '//' before v1."""
    key = server.admin_key
    for path in ("/v1/organization/types/", "//v1/organization/types", "/v1/users/admin/"):
        status, _, body = http("GET", server.base_url + path, key=key)
        assert status == 200, (path, status, body)
        assert "error" not in json.loads(body) if body.startswith(b"{") else True


# ----------------------------------------------------------------------------- members


def members_of(apis, org):
    body = raw_json(apis.orgs.list_members(org, _preload_content=False))
    assert isinstance(body["results"], list)
    for m in body["results"]:
        assert m["resource_type"] == "organization_member", m
        assert m["role"] in ("owner", "member", "invited", "unknown"), m
        assert m["user_link"].endswith("/v1/users/%s" % m["username"]), m
    return {m["username"]: m["role"] for m in body["results"]}


def test_members_add_list_remove(admin, server):
    org = unique("mem")
    admin.orgs.create_organization(new_org_model(org))
    # The creator owns the org.
    assert members_of(admin, org) == {"admin": "owner"}

    user = server.create_user()
    # Cluster admin: a direct add, 204 with an empty body.
    raw = admin.orgs.add_organization_member(org, user, _preload_content=False)
    assert raw.status in (200, 204) and raw.data == b"", (raw.status, raw.data)
    assert members_of(admin, org) == {"admin": "owner", user: "member"}

    with pytest.raises(ApiException) as ei:
        admin.orgs.add_organization_member(org, user)
    api_error(ei, 409)

    assert admin.orgs.remove_organization_member(org, user) is None
    assert members_of(admin, org) == {"admin": "owner"}

    # Removing a non-member, adding a missing user.
    with pytest.raises(ApiException) as ei:
        admin.orgs.remove_organization_member(org, user)
    assert ei.value.status in (400, 404)
    api_error(ei, ei.value.status)
    with pytest.raises(ApiException) as ei:
        admin.orgs.add_organization_member(org, "nosuchuser")
    api_error(ei, 404)


def test_member_invited_by_org_admin(server, admin):
    owner, owner_key = server.create_user_with_key()
    owner_apis = Apis(make_client(server.base_url, owner_key))
    org = unique("inv")
    created = owner_apis.orgs.create_organization(new_org_model(org))
    assert created.org_name == org
    assert members_of(owner_apis, org) == {owner: "owner"}

    invitee, invitee_key = server.create_user_with_key()
    # An org admin who is not a cluster admin: the PUT sends an invitation.
    raw = owner_apis.orgs.add_organization_member(org, invitee, _preload_content=False)
    assert raw.status in (200, 204) and raw.data == b"", (raw.status, raw.data)
    assert members_of(owner_apis, org) == {owner: "owner", invitee: "invited"}
    # The cluster admin sees the same list.
    assert members_of(admin, org) == {owner: "owner", invitee: "invited"}

    # A second invitation while one is pending conflicts.
    with pytest.raises(ApiException) as ei:
        owner_apis.orgs.add_organization_member(org, invitee)
    api_error(ei, 409)

    # The invitee is not a member yet: they cannot list members.
    invitee_apis = Apis(make_client(server.base_url, invitee_key))
    with pytest.raises(ApiException) as ei:
        invitee_apis.orgs.list_members(org, _preload_content=False)
    api_error(ei, 403)

    # Accepting (native route) turns `invited` into `member`.
    status, _, body = http("GET", server.base_url + "/v1/invitations", key=invitee_key)
    assert status == 200, body
    pending = [i for i in json.loads(body) if i["org"] == org]
    assert len(pending) == 1, body
    status, _, body = http("POST", "%s/v1/invitations/%s/accept" % (server.base_url, pending[0]["id"]), key=invitee_key)
    assert status == 200, body
    assert members_of(owner_apis, org) == {owner: "owner", invitee: "member"}


def test_invited_member_can_be_removed_through_v1(server):
    """An `invited` entry appears in the v1 member list; the v1 API's only way to
    drop a listed member is DELETE .../members/{username}, which must cancel the
    pending invitation."""
    owner, owner_key = server.create_user_with_key()
    apis = Apis(make_client(server.base_url, owner_key))
    org = unique("rin")
    apis.orgs.create_organization(new_org_model(org))
    invitee = server.create_user()
    apis.orgs.add_organization_member(org, invitee)
    assert members_of(apis, org) == {owner: "owner", invitee: "invited"}
    try:
        apis.orgs.remove_organization_member(org, invitee)
    except ApiException as e:
        pytest.fail(
            "DELETE /v1/organizations/%s/members/%s for a member listed as `invited` answered %d %s; "
            "expected 204 and the invitation rescinded" % (org, invitee, e.status, e.body)
        )
    assert members_of(apis, org) == {owner: "owner"}


def test_member_put_by_non_admin_member_is_403(server, admin):
    org = unique("nam")
    admin.orgs.create_organization(new_org_model(org))
    member, member_key = server.create_user_with_key()
    admin.orgs.add_organization_member(org, member)
    other = server.create_user()
    member_apis = Apis(make_client(server.base_url, member_key))
    with pytest.raises(ApiException) as ei:
        member_apis.orgs.add_organization_member(org, other)
    api_error(ei, 403)
    assert other not in members_of(admin, org)


def test_member_can_leave(server, admin):
    org = unique("lv")
    admin.orgs.create_organization(new_org_model(org))
    member, member_key = server.create_user_with_key()
    admin.orgs.add_organization_member(org, member)
    member_apis = Apis(make_client(server.base_url, member_key))
    assert member_apis.orgs.remove_organization_member(org, member) is None
    assert member not in members_of(admin, org)


def test_last_owner_cannot_be_removed(server):
    owner, owner_key = server.create_user_with_key()
    apis = Apis(make_client(server.base_url, owner_key))
    org = unique("lo")
    apis.orgs.create_organization(new_org_model(org))
    with pytest.raises(ApiException) as ei:
        apis.orgs.remove_organization_member(org, owner)
    api_error(ei, 409)
    assert members_of(apis, org) == {owner: "owner"}


# ----------------------------------------------------------------------------- keys


def check_new_key(k, username, label, key_type, owner_name=None):
    assert k.username == username
    assert k.key_label == label
    assert k.key_type == key_type
    assert isinstance(k.created_at, datetime.datetime)
    assert len(k.api_key) == 28 and k.api_key.startswith("sim"), k.api_key
    assert k.api_key_mask and k.api_key_mask != k.api_key
    assert k.permissions is not None
    if owner_name is not None:
        assert k.owner_name == owner_name


def test_user_keys_create_list_and_use(server, admin):
    user = server.create_user()
    label = unique("lbl")
    perms = AuthPermissions(
        allow_data=True, allow_data_write=False, allow_algo=True, allow_web_algo=False,
        allow_algo_management=True, algo_acl=["*"],
    )
    k = admin.auth.create_key_for_user(user, ApiKeyCreation(key_label=label, key_type="ManagementKey", permissions=perms))
    check_new_key(k, user, label, "ManagementKey", owner_name=user)
    assert k.permissions.allow_data is True
    assert k.permissions.allow_data_write is False
    assert k.permissions.allow_algo is True
    assert k.permissions.allow_algo_management is True
    assert k.permissions.algo_acl == ["*"]

    listed = admin.auth.get_keys_for_user(user)
    mine = [x for x in listed if x.key_label == label]
    assert len(mine) == 1
    assert mine[0].api_key_mask == k.api_key_mask
    assert mine[0].api_key != k.api_key, "a listing must not reveal the secret"
    assert mine[0].key_type == "ManagementKey"

    # The new key authenticates (bare form, as both clients send it).
    cfg = Configuration(host=server.base_url)
    cfg.api_key["Authorization"] = k.api_key
    me = UsersApi(ApiClient(cfg)).get_user(user)
    assert me.username == user

    # A key an admin created for the user acts as the admin's impersonation
    # of them (issue 22): it may not manage keys, not even list them.
    with pytest.raises(ApiException) as ei:
        AuthApi(make_client(server.base_url, k.api_key)).get_keys_for_user(user)
    api_error(ei, 403)
    assert "impersonation" in json.loads(ei.value.body)["error"]["message"]


def test_user_keys_of_others_are_403(server, plain_user):
    _, _, apis = plain_user
    with pytest.raises(ApiException) as ei:
        apis.auth.get_keys_for_user("admin")
    api_error(ei, 403)
    with pytest.raises(ApiException) as ei:
        apis.auth.create_key_for_user("admin", ApiKeyCreation(key_label="steal", key_type="ManagementKey"))
    api_error(ei, 403)


def test_user_key_missing_user_is_404(admin):
    with pytest.raises(ApiException) as ei:
        admin.auth.create_key_for_user("nosuchuser", ApiKeyCreation(key_label="x", key_type="ManagementKey"))
    api_error(ei, 404)


def test_org_keys_create_and_list(server, admin):
    org = unique("ok")
    admin.orgs.create_organization(new_org_model(org))
    label = unique("orgkey")
    perms = AuthPermissions(allow_data=True, allow_data_write=False, allow_algo=True, allow_web_algo=False, algo_acl=["*"])
    k = admin.orgs.create_key_for_organization(org, OrganizationApiKeyCreation(key_label=label, permissions=perms))
    assert k.key_label == label
    assert k.key_type == "AlgorithmKey"
    assert k.owner_name == org
    assert len(k.api_key) == 28 and k.api_key.startswith("sim")
    assert k.permissions.allow_algo is True and k.permissions.allow_data_write is False

    listed = admin.orgs.list_keys(org)
    mine = [x for x in listed if x.key_label == label]
    assert len(mine) == 1 and mine[0].owner_name == org
    assert mine[0].api_key != k.api_key


def test_member_keys(server, admin):
    org = unique("mk")
    admin.orgs.create_organization(new_org_model(org))
    member = server.create_user()
    admin.orgs.add_organization_member(org, member)
    label = unique("memkey")
    k = admin.orgs.add_organization_api_key(org, member, ApiKeyCreation(key_label=label, key_type="ManagementKey"))
    check_new_key(k, member, label, "ManagementKey", owner_name=org)
    assert label in [x.key_label for x in admin.orgs.list_keys(org)]

    outsider = server.create_user()
    with pytest.raises(ApiException) as ei:
        admin.orgs.add_organization_api_key(org, outsider, ApiKeyCreation(key_label="x", key_type="ManagementKey"))
    assert ei.value.status in (400, 404)
    api_error(ei, ei.value.status)


def test_org_keys_forbidden_for_plain_member(server, admin):
    org = unique("okf")
    admin.orgs.create_organization(new_org_model(org))
    member, member_key = server.create_user_with_key()
    admin.orgs.add_organization_member(org, member)
    apis = Apis(make_client(server.base_url, member_key))
    with pytest.raises(ApiException) as ei:
        apis.orgs.list_keys(org)
    api_error(ei, 403)


def test_admin_creates_key_for_user(server, admin):
    """POST /v1/admin/users/{username}/keys with no body (§4.3, GEN AdminApi.import_api_key).

    A key an admin creates for someone else needs a reason (issue 22): the
    unmodified client sends no body, so it gives one in the X-Algohub-Reason
    header (ApiClient.set_default_header); without one the answer is a 400
    that says so."""
    user = server.create_user()
    bare = Apis(make_client(server.base_url, server.admin_key))
    with pytest.raises(ApiException) as ei:
        bare.admin.import_api_key(user)
    assert ei.value.status == 400, ei.value.body
    assert "reason" in json.loads(ei.value.body)["error"]["message"]
    try:
        k = admin.admin.import_api_key(user)
    except ApiException as e:
        pytest.fail(
            "POST /v1/admin/users/%s/keys (no body, a reason header) answered %d %s; "
            "expected 200 with an ApiKey" % (user, e.status, e.body)
        )
    assert k.username == user
    assert len(k.api_key) == 28 and k.api_key.startswith("sim")


def test_success_bodies_have_no_error_key(server, admin):
    org = unique("ne")
    admin.orgs.create_organization(new_org_model(org))
    for resp in (
        admin.users.get_user("admin", _preload_content=False),
        admin.orgs.get_organization(org, _preload_content=False),
        admin.orgs.get_all_organization_types(_preload_content=False),
        admin.orgs.list_keys(org, _preload_content=False),
    ):
        assert resp.status == 200
        body = json.loads(resp.data)
        items = body if isinstance(body, list) else [body]
        for item in items:
            assert "error" not in item, body


# ----------------------------------------------------------------------------- invites (§4.4)


def test_admin_invite_codes(server):
    """InvitesApi: add_invite, get_invites (camelCase InviteCode), delete_invite."""
    from algorithmia_api_client import InvitesApi, NewInviteCode

    _, admin_key = server.create_user_with_key(admin=True)
    api = InvitesApi(make_client(server.base_url, admin_key))
    code = unique("code").replace("_", "-")
    api.add_invite(NewInviteCode(invite_code=code, signup_credits=25, comments="compat"))
    codes = {i.invite_code: i for i in api.get_invites()}
    assert code in codes, codes
    assert codes[code].signup_credits == 25 and codes[code].comments == "compat"
    assert codes[code].created_at
    with pytest.raises(ApiException) as e:
        api.add_invite(NewInviteCode(invite_code=code))
    assert e.value.status == 409
    api.delete_invite(code)
    assert code not in {i.invite_code for i in api.get_invites()}
    with pytest.raises(ApiException) as e:
        api.delete_invite(code)
    assert e.value.status == 404
    # Non-admins are refused.
    _, key = server.create_user_with_key()
    with pytest.raises(ApiException) as e:
        InvitesApi(make_client(server.base_url, key)).get_invites()
    assert e.value.status == 403
