//! Invitations: by name, by email with a single-use token, decline, rescind,
//! expiry, and not revealing whether an email belongs to an account.

use crate::support::{Db, TestApp, error_reason};
use serde_json::{Value, json};

async fn token_for(app: &TestApp, email: &str) -> String {
    let msgs = app.hub().store.list_outbox(true, 100).await.unwrap();
    let m = msgs
        .iter()
        .rev()
        .find(|m| m.kind == "email.invitation_token" && m.recipient_email.as_deref() == Some(email))
        .expect("token email in the outbox");
    m.payload["token"].as_str().unwrap().to_string()
}

pub(crate) async fn invite_by_name_accept_records_terms(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    let (s, inv) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "bob", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, 201, "{inv}");
    assert_eq!(
        (inv["status"].as_str(), inv["role"].as_str()),
        (Some("pending"), Some("viewer"))
    );
    // The outbox holds a notification (delivered in-app at once) and an email for bob.
    let msgs = app.hub().store.list_outbox(false, 100).await.unwrap();
    assert!(msgs.iter().any(|m| m.kind == "notification.invitation"
        && m.payload["org"] == "acme"
        && m.delivered_at.is_some()));
    let (s, notes) = app.get("/v1/users/bob/notifications", &bob).await;
    assert_eq!(s, 200, "{notes}");
    assert_eq!(notes[0]["notification_type"], "invitation", "{notes}");
    assert!(
        notes[0]["text"].as_str().unwrap().contains("as viewer"),
        "{notes}"
    );
    assert!(
        msgs.iter().any(|m| m.kind == "email.invitation"
            && m.recipient_email.as_deref() == Some("bob@example.com"))
    );
    // Duplicate pending invitation refused.
    let (s, _) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(s, 409);
    // Pending list for admins; bob sees his own.
    let (_, pending) = app.get("/v1/organizations/acme/invitations", &alice).await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let (s, _) = app.get("/v1/organizations/acme/invitations", &bob).await;
    assert_eq!(s, 403);
    let (_, mine) = app.get("/v1/invitations", &bob).await;
    let id = mine[0]["id"].as_str().unwrap().to_string();
    // Only the invitee can accept.
    let (s, _) = app
        .post(&format!("/v1/invitations/{id}/accept"), &alice, json!({}))
        .await;
    assert_eq!(s, 404);
    let (s, m) = app
        .post(&format!("/v1/invitations/{id}/accept"), &bob, json!({}))
        .await;
    assert_eq!((s, m["role"].as_str()), (200, Some("viewer")), "{m}");
    let inv = app.hub().store.get_invitation(&id).await.unwrap();
    assert_eq!(inv.accepted_tos_version, Some(1));
    assert!(inv.decided_at.is_some());
    // Accepting twice is refused.
    let (s, b) = app
        .post(&format!("/v1/invitations/{id}/accept"), &bob, json!({}))
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "invitation_closed"));
    // Already a member now.
    let (s, b) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "already_member"));
    app.stop().await;
}

pub(crate) async fn invite_by_email_uses_a_single_use_token_and_reveals_nothing(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let carol = app.make_user("carol", false).await;
    app.make_org("acme", &alice).await;
    // bob@example.com belongs to an account; nobody@example.com does not.
    let (s1, a) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"email": "bob@example.com"}),
        )
        .await;
    let (s2, b) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!((s1, s2), (201, 201));
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (keys, v["username"].clone(), v["status"].clone())
    };
    assert_eq!(
        shape(&a),
        shape(&b),
        "same answer whether or not the email has an account"
    );
    assert!(a["username"].is_null());
    // The token goes only to the email; it is stored hashed.
    assert!(a.get("token").is_none());
    let token = token_for(&app, "bob@example.com").await;
    // Someone else with the token can accept (the token proves the email was read);
    // a wrong token is refused; the token works once.
    let (s, e) = app
        .post(
            "/v1/invitation-tokens/accept",
            &carol,
            json!({"token": "inv_wrong"}),
        )
        .await;
    assert_eq!((s, error_reason(&e).as_str()), (400, "invalid_token"));
    let (s, m) = app
        .post(
            "/v1/invitation-tokens/accept",
            &bob,
            json!({"token": token}),
        )
        .await;
    assert_eq!((s, m["username"].as_str()), (200, Some("bob")), "{m}");
    let (s, e) = app
        .post(
            "/v1/invitation-tokens/accept",
            &carol,
            json!({"token": token}),
        )
        .await;
    assert_eq!((s, error_reason(&e).as_str()), (409, "invitation_closed"));
    app.stop().await;
}

pub(crate) async fn decline_rescind_and_expire(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let carol = app.make_user("carol", false).await;
    app.make_org("acme", &alice).await;
    let (_, inv) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "bob"}),
        )
        .await;
    let id = inv["id"].as_str().unwrap();
    let (s, d) = app
        .post(&format!("/v1/invitations/{id}/decline"), &bob, json!({}))
        .await;
    assert_eq!((s, d["status"].as_str()), (200, Some("declined")));
    let (s, _) = app
        .post(&format!("/v1/invitations/{id}/accept"), &bob, json!({}))
        .await;
    assert_eq!(s, 409);

    let (_, inv) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "carol"}),
        )
        .await;
    let id = inv["id"].as_str().unwrap();
    let (s, _) = app
        .delete(&format!("/v1/organizations/acme/invitations/{id}"), &bob)
        .await;
    assert_eq!(s, 403);
    let (s, r) = app
        .delete(&format!("/v1/organizations/acme/invitations/{id}"), &alice)
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("rescinded")));
    let (s, _) = app
        .post(&format!("/v1/invitations/{id}/accept"), &carol, json!({}))
        .await;
    assert_eq!(s, 409);

    // Expiry: an invitation past its time cannot be accepted and is swept.
    let (_, inv) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "carol"}),
        )
        .await;
    let id = inv["id"].as_str().unwrap().to_string();
    let later = algohub_core::model::now_millis() + 8 * 24 * 3600 * 1000;
    let r = app
        .hub()
        .store
        .accept_invitation(&algohub_core::audit::AuditContext::cli(), &id, 0, 1, later)
        .await
        .map(algohub_core::store::Written::unindexed);
    assert!(
        matches!(r, Err(algohub_core::store::StoreError::Conflict { .. })),
        "{r:?}"
    );
    assert_eq!(
        app.hub()
            .store
            .expire_invitations(&algohub_core::audit::AuditContext::cli(), later)
            .await
            .map(algohub_core::store::Written::unindexed)
            .unwrap(),
        1
    );
    // Once expired, a new invitation may be sent.
    let (s, _) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "carol"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, mine) = app.get("/v1/invitations", &carol).await;
    let fresh = mine[0]["id"].as_str().unwrap().to_string();
    app.delete(
        &format!("/v1/organizations/acme/invitations/{fresh}"),
        &alice,
    )
    .await;
    // An expired invitation that the sweeper has not reached yet blocks nothing.
    let carol_id = app.hub().store.get_user_by_name("carol").await.unwrap().id;
    let acme = app.hub().store.get_org_by_name("acme").await.unwrap();
    let past = algohub_core::model::now_millis() - 1000;
    let stale = algohub_core::model::NewInvitation {
        id: "stale-invitation".into(),
        org_id: acme.id,
        invitee_user_id: Some(carol_id),
        invitee_email: None,
        role: algohub_core::roles::OrgRole::Viewer,
        token_digest: None,
        invited_by: carol_id,
        created_at: past - 1000,
        expires_at: past,
    };
    app.hub()
        .store
        .create_invitation(&algohub_core::audit::AuditContext::cli(), &stale, &[])
        .await
        .map(algohub_core::store::Written::unindexed)
        .unwrap();
    let (s, b) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "carol"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        app.hub()
            .store
            .get_invitation("stale-invitation")
            .await
            .unwrap()
            .status
            .as_str(),
        "expired"
    );
    assert_eq!(
        app.hub()
            .store
            .get_invitation(&id)
            .await
            .unwrap()
            .status
            .as_str(),
        "expired"
    );
    let (s, _) = app
        .post(&format!("/v1/invitations/{id}/accept"), &carol, json!({}))
        .await;
    assert_eq!(s, 409);

    // Bad inputs.
    let (s, _) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "carol", "email": "c@example.com"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "carol", "role": "emperor"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "ghost"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"email": "not-an-email"}),
        )
        .await;
    assert_eq!(s, 400);
    app.stop().await;
}

pub(crate) async fn membership_expiry_removes_the_grant_with_its_event(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "viewer").await;
    let (s, _) = app
        .put(
            "/v1/organizations/acme/members/bob/role",
            &alice,
            json!({"role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, 400, "expiry in the past refused");
    let soon = chrono::Utc::now() + chrono::Duration::hours(1);
    let (s, m) = app
        .put(
            "/v1/organizations/acme/members/bob/role",
            &alice,
            json!({"role": "viewer", "expires_at": soon.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    assert!(m["expires_at"].is_string());
    let (s, _) = app.get("/v1/organizations/acme/members", &bob).await;
    assert_eq!(s, 200);
    let later = algohub_core::model::now_millis() + 2 * 3600 * 1000;
    assert!(
        app.hub()
            .store
            .expire_grants(&algohub_core::audit::AuditContext::cli(), later)
            .await
            .map(algohub_core::store::Written::unindexed)
            .unwrap()
            >= 1
    );
    app.hub().index.sync().await.unwrap();
    let (s, _) = app.get("/v1/organizations/acme/members", &bob).await;
    assert_eq!(s, 403);
    let events = app
        .hub()
        .store
        .list_events(Some("grant.expired"), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    // Background maintenance expires grants too; its records say `system`.
    // The grant is made to end in an hour, then its end is moved into the
    // past in the store (the API refuses a past one): maintenance, which
    // expires what has ended by the clock, must take it.
    let carol = app.make_user("carol", false).await;
    app.add_member("acme", "carol", "viewer").await;
    let (s, m) = app
        .put(
            "/v1/organizations/acme/members/carol/role",
            &alice,
            json!({"role": "viewer", "expires_at": soon.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    let (s, _) = app.get("/v1/organizations/acme/members", &carol).await;
    assert_eq!(s, 200, "a member until the grant ends");
    let store = &app.hub().store;
    let acme_id = store.get_org_by_name("acme").await.unwrap().id;
    let carol_id = store.get_account_by_name("carol").await.unwrap().id;
    let ended = algohub_core::model::now_millis() - 1000;
    store
        .set_member_role(
            &algohub_core::audit::AuditContext::cli(),
            acme_id,
            carol_id,
            algohub_core::roles::OrgRole::Viewer,
            Some(ended),
        )
        .await
        .map(algohub_core::store::Written::unindexed)
        .unwrap();
    app.hub().run_maintenance().await.unwrap();
    assert_eq!(store.get_membership(acme_id, carol_id).await.unwrap(), None);
    let (s, _) = app.get("/v1/organizations/acme/members", &carol).await;
    assert_eq!(s, 403, "the expired grant is gone");
    let records = app
        .hub()
        .store
        .list_audit(&algohub_core::audit::AuditQuery {
            action: Some("grant.expired".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1].auth_method, "system", "{records:?}");
    app.stop().await;
}

/// Records what it is asked to send.
#[derive(Default)]
pub(crate) struct Outgoing(pub(crate) std::sync::Mutex<Vec<algohub_core::services::Email>>);

#[async_trait::async_trait]
impl algohub_core::services::Mailer for Outgoing {
    async fn send(
        &self,
        email: &algohub_core::services::Email,
    ) -> Result<(), algohub_core::services::MailError> {
        self.0.lock().unwrap().push(email.clone());
        Ok(())
    }
}

pub(crate) async fn emails_go_out_once_and_only_for_live_invitations(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    app.make_org("acme", &alice).await;
    let invite = |email: &'static str| {
        app.post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"email": email, "role": "viewer"}),
        )
    };
    let (s, gone) = invite("gone@example.com").await;
    assert_eq!(s, 201, "{gone}");
    let (s, _) = invite("kept@example.com").await;
    assert_eq!(s, 201);
    let id = gone["id"].as_str().unwrap();
    let (s, v) = app
        .delete(&format!("/v1/organizations/acme/invitations/{id}"), &alice)
        .await;
    assert_eq!(s, 200, "{v}");
    let token = token_for(&app, "kept@example.com").await;

    let out = Outgoing::default();
    let sent = app
        .hub()
        .invitations
        .deliver_emails(&out, "http://hub.test")
        .await
        .unwrap();
    assert_eq!(sent, 1, "the rescinded invitation's email is not sent");
    let emails = out.0.lock().unwrap().clone();
    assert_eq!(emails[0].to, "kept@example.com");
    assert!(emails[0].body.contains(&token), "{}", emails[0].body);
    // Delivered once; the token no longer sits in the outbox.
    assert_eq!(
        app.hub()
            .invitations
            .deliver_emails(&out, "http://hub.test")
            .await
            .unwrap(),
        0
    );
    let all = app.hub().store.list_outbox(false, 100).await.unwrap();
    assert!(
        all.iter().all(|m| m.payload.get("token").is_none()),
        "{all:?}"
    );
}

/// With no mail server nothing is ever sent: an invitation email's token
/// still leaves the outbox as soon as the invitation can no longer be used
/// (rescinded, accepted, expired), and the email is withdrawn.
pub(crate) async fn unsent_invitation_emails_lose_their_token_when_the_invitation_closes(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let carol = app.make_user("carol", false).await;
    app.make_org("acme", &alice).await;
    let mut ids = Vec::new();
    for email in ["gone@example.com", "taken@example.com", "late@example.com"] {
        let (s, v) = app
            .post(
                "/v1/organizations/acme/invitations",
                &alice,
                json!({"email": email, "role": "viewer"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let app = &app;
    let email_of = |id: &str| {
        let id = id.to_string();
        async move {
            let all = app.hub().store.list_outbox(false, 100).await.unwrap();
            all.into_iter()
                .find(|m| m.kind == "email.invitation_token" && m.payload["invitation_id"] == id)
                .expect("the invitation's email")
        }
    };
    for id in &ids {
        let m = email_of(id).await;
        assert!(m.payload["token"].is_string() && m.delivered_at.is_none());
    }
    // Rescinded.
    let (s, v) = app
        .delete(
            &format!("/v1/organizations/acme/invitations/{}", ids[0]),
            &alice,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Accepted with its token.
    let token = token_for(app, "taken@example.com").await;
    let (s, v) = app
        .post(
            "/v1/invitation-tokens/accept",
            &carol,
            json!({"token": token}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for id in &ids[..2] {
        let m = email_of(id).await;
        assert!(m.payload.get("token").is_none(), "{m:?}");
        assert_eq!(m.payload["withdrawn"], true);
        assert!(m.delivered_at.is_some());
    }
    // The third one still waits, token and all, until it expires.
    assert!(email_of(&ids[2]).await.payload["token"].is_string());
    let later = algohub_core::model::now_millis() + 8 * 24 * 3_600_000;
    assert_eq!(
        app.hub()
            .store
            .expire_invitations(&algohub_core::audit::AuditContext::cli(), later)
            .await
            .map(algohub_core::store::Written::unindexed)
            .unwrap(),
        1
    );
    let m = email_of(&ids[2]).await;
    assert!(m.payload.get("token").is_none(), "{m:?}");
    assert_eq!(m.payload["withdrawn"], true);
    // Nothing is left to send.
    let out = Outgoing::default();
    assert_eq!(
        app.hub()
            .invitations
            .deliver_emails(&out, "http://hub.test")
            .await
            .unwrap(),
        0
    );
}
