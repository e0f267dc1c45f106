"""Invitation emails through a real SMTP server (aiosmtpd, started by the
server fixture): an invitation by email carries its single-use token, which
accepts the invitation once; an invitation by username goes to the account's
address and names the accept route."""

import email
import json
import re
import time

from conftest import http, unique


def _wait_for_mail(server, address, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for env in list(server.mailbox):
            if address in env.rcpt_tos:
                return email.message_from_bytes(env.original_content)
        time.sleep(0.1)
    raise AssertionError("no email to %s within %.0fs (got %d others)" % (address, timeout, len(server.mailbox)))


def _org(server, key, name):
    body = {"org_name": name, "org_label": "Org " + name, "org_contact_name": "Owner",
            "org_email": "%s@example.com" % name, "type_id": "basic"}
    status, _, raw = http("POST", server.base_url + "/v1/organizations", key=key, body=body)
    assert status in (200, 201), raw


def test_invitation_by_email_sends_the_token_over_smtp(server):
    owner, owner_key = server.create_user_with_key(unique("own"))
    org = unique("org")
    _org(server, owner_key, org)
    address = "%s@invitee.test" % unique("guest")
    status, _, raw = http("POST", "%s/v1/organizations/%s/invitations" % (server.base_url, org), key=owner_key,
                          body={"email": address, "role": "viewer"})
    assert status == 201, raw

    msg = _wait_for_mail(server, address)
    assert msg["Subject"] == "You are invited to join Org %s on algohub" % org
    assert msg["From"] == "algohub <noreply@algohub.test>"
    body = msg.get_payload(decode=True).decode()
    assert server.base_url + "/v1/invitation-tokens/accept" in body, body
    token = re.search(r'"token": "(inv_[A-Za-z0-9]+)"', body).group(1)

    # The token accepts the invitation once, for whoever holds it.
    invitee, invitee_key = server.create_user_with_key(unique("inv"))
    url = server.base_url + "/v1/invitation-tokens/accept"
    status, _, raw = http("POST", url, key=invitee_key, body={"token": token})
    assert status in (200, 201), raw
    assert json.loads(raw)["role"] == "viewer", raw
    status, _, raw = http("POST", url, key=invitee_key, body={"token": token})
    assert status >= 400, raw


def test_invitation_by_username_emails_the_account(server):
    owner, owner_key = server.create_user_with_key(unique("own"))
    org = unique("org")
    _org(server, owner_key, org)
    invitee = server.create_user(unique("inv"))
    status, _, raw = http("POST", "%s/v1/organizations/%s/invitations" % (server.base_url, org), key=owner_key,
                          body={"username": invitee, "role": "contributor"})
    assert status == 201, raw
    invitation = json.loads(raw)
    msg = _wait_for_mail(server, "%s@example.com" % invitee)
    body = msg.get_payload(decode=True).decode()
    assert "%s/v1/invitations/%s/accept" % (server.base_url, invitation["id"]) in body, body
    assert "as contributor" in body, body
    assert "inv_" not in body, "no token for an account's invitation"
