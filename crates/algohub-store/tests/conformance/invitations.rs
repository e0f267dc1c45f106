//! Conformance cases: invitations (accept, decline, rescind, expire), the outbox
//! written with them, and the event log.

use crate::support::*;
use algohub_core::model::*;
use algohub_core::roles::OrgRole;
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

pub async fn accept_and_single_use(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let cat = user(&s, "cat").await;
    let acme = org(&s, "acme", ann.id).await;
    let now = now_millis();

    let mut new = new_invitation(acme.id, Some(ben.id), None, ann.id, now);
    new.role = OrgRole::TeamContributor;
    let inv = s
        .create_invitation(&cli(), &new, &[])
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(inv.status, InvitationStatus::Pending);
    assert_eq!(
        (inv.org_name.as_str(), inv.invitee_username.as_deref()),
        ("acme", Some("ben"))
    );
    assert_eq!(inv.role, OrgRole::TeamContributor);
    // Another invitee, so only the id clashes.
    let same_id = NewInvitation {
        token_digest: None,
        invitee_user_id: Some(cat.id),
        ..new.clone()
    };
    assert_eq!(
        conflict(
            s.create_invitation(&cli(), &same_id, &[])
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationId
    );
    // Another invitee, so only the token clashes.
    let same_token = NewInvitation {
        id: "another".to_string(),
        invitee_user_id: Some(cat.id),
        ..new.clone()
    };
    assert_eq!(
        conflict(
            s.create_invitation(&cli(), &same_token, &[])
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationToken
    );

    let found = s
        .find_invitation_by_token(new.token_digest.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(found.id, inv.id);
    not_found(s.find_invitation_by_token("nope").await);
    assert_eq!(
        s.find_pending_invitation(acme.id, Some(ben.id), None)
            .await
            .unwrap()
            .map(|i| i.id),
        Some(inv.id.clone())
    );
    assert_eq!(
        s.find_pending_invitation(acme.id, Some(cat.id), None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.find_pending_invitation(acme.id, None, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.list_pending_invitations(acme.id).await.unwrap().len(), 1);

    let seq = last_seq(&s).await;
    let m = s
        .accept_invitation(&cli(), &inv.id, ben.id, 3, now + 1)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        (m.org_id, m.user_id, m.role),
        (acme.id, ben.id, OrgRole::TeamContributor)
    );
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::User, ben.id)]);
    let done = s.get_invitation(&inv.id).await.unwrap();
    assert_eq!(done.status, InvitationStatus::Accepted);
    assert_eq!(
        (done.decided_at, done.accepted_tos_version),
        (Some(now + 1), Some(3))
    );
    // Single use.
    assert_eq!(
        conflict(
            s.accept_invitation(&cli(), &inv.id, ben.id, 3, now + 2)
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationClosed
    );
    assert_eq!(
        conflict(
            s.accept_invitation(&cli(), &inv.id, cat.id, 3, now + 2)
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationClosed
    );
    assert!(
        s.list_pending_invitations(acme.id)
            .await
            .unwrap()
            .is_empty()
    );

    // By email: accepting fills in who accepted.
    let by_mail = s
        .create_invitation(
            &cli(),
            &new_invitation(acme.id, None, Some("Cat@Example.com"), ann.id, now),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(by_mail.invitee_email.as_deref(), Some("cat@example.com"));
    let pending = s
        .find_pending_invitation(acme.id, None, Some("CAT@example.com"))
        .await
        .unwrap();
    assert_eq!(pending.map(|i| i.id), Some(by_mail.id.clone()));
    let listed = s
        .list_invitations_for_user(cat.id, "cat@example.com")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    s.accept_invitation(&cli(), &by_mail.id, cat.id, 1, now + 1)
        .await
        .map(Written::unindexed)
        .unwrap();
    let accepted = s.get_invitation(&by_mail.id).await.unwrap();
    assert_eq!(
        (
            accepted.invitee_user_id,
            accepted.invitee_username.as_deref()
        ),
        (Some(cat.id), Some("cat"))
    );

    // Already a member: the acceptance is refused and the invitation stays pending.
    let again = s
        .create_invitation(
            &cli(),
            &new_invitation(acme.id, Some(ben.id), None, ann.id, now),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        conflict(
            s.accept_invitation(&cli(), &again.id, ben.id, 1, now + 1)
                .await
                .map(Written::unindexed)
        ),
        Constraint::Membership
    );
    assert_eq!(
        s.get_invitation(&again.id).await.unwrap().status,
        InvitationStatus::Pending
    );
    not_found(
        s.accept_invitation(&cli(), "no-such-id", ben.id, 1, now)
            .await
            .map(Written::unindexed),
    );
}

pub async fn decline_rescind_expire(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let acme = org(&s, "acme", ann.id).await;
    let now = now_millis();

    let a = s
        .create_invitation(
            &cli(),
            &new_invitation(acme.id, Some(ben.id), None, ann.id, now),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let declined = s
        .close_invitation(&cli(), &a.id, InvitationStatus::Declined, now + 5)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        (declined.status, declined.decided_at),
        (InvitationStatus::Declined, Some(now + 5))
    );
    assert_eq!(
        conflict(
            s.close_invitation(&cli(), &a.id, InvitationStatus::Rescinded, now)
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationClosed
    );
    assert_eq!(
        conflict(
            s.accept_invitation(&cli(), &a.id, ben.id, 1, now)
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationClosed
    );

    let b = s
        .create_invitation(
            &cli(),
            &new_invitation(acme.id, Some(ben.id), None, ann.id, now),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let rescinded = s
        .close_invitation(&cli(), &b.id, InvitationStatus::Rescinded, now)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(rescinded.status, InvitationStatus::Rescinded);
    not_found(
        s.close_invitation(&cli(), "missing", InvitationStatus::Declined, now)
            .await
            .map(Written::unindexed),
    );
    assert!(matches!(
        s.close_invitation(&cli(), &b.id, InvitationStatus::Accepted, now)
            .await
            .map(Written::unindexed),
        Err(StoreError::Other(_))
    ));

    // Expiry: an unexpired acceptance window is checked against `now`.
    let mut short = new_invitation(acme.id, Some(ben.id), None, ann.id, now);
    short.expires_at = now + 10;
    let c = s
        .create_invitation(&cli(), &short, &[])
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        conflict(
            s.accept_invitation(&cli(), &c.id, ben.id, 1, now + 10)
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationExpired
    );
    let d = s
        .create_invitation(
            &cli(),
            &new_invitation(acme.id, None, Some("z@example.com"), ann.id, now),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        s.expire_invitations(&cli(), now + 10)
            .await
            .map(Written::unindexed)
            .unwrap(),
        1
    );
    assert_eq!(
        s.get_invitation(&c.id).await.unwrap().status,
        InvitationStatus::Expired
    );
    assert_eq!(
        s.get_invitation(&d.id).await.unwrap().status,
        InvitationStatus::Pending
    );
    assert_eq!(
        s.expire_invitations(&cli(), now + 10)
            .await
            .map(Written::unindexed)
            .unwrap(),
        0
    );
    assert_eq!(
        conflict(
            s.accept_invitation(&cli(), &c.id, ben.id, 1, now)
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationClosed
    );
    let history = s
        .list_invitations_for_user(ben.id, "ben@example.com")
        .await
        .unwrap();
    assert_eq!(history.len(), 3);
}

pub async fn outbox_and_events(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let acme = org(&s, "acme", ann.id).await;
    let now = now_millis();
    let msg = NewOutboxMessage {
        kind: "invitation_email".to_string(),
        recipient_user_id: None,
        recipient_email: Some("new@example.com".to_string()),
        payload: serde_json::json!({ "org": "acme", "token": "t0k" }),
    };
    let inv = s
        .create_invitation(
            &cli(),
            &new_invitation(acme.id, None, Some("new@example.com"), ann.id, now),
            &[msg],
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let queued = s.list_outbox(true, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].payload["token"], "t0k");
    // Email delivery claims: one node at a time, by kind prefix, until the
    // claim lapses.
    assert!(
        s.claim_outbox("email.", now, now + 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = s
        .claim_outbox("invitation", now, now + 100, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        s.claim_outbox("invitation", now + 50, now + 150, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s
        .claim_outbox("invitation", now + 101, now + 200, 10)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        [claimed[0].id]
    );
    assert_eq!(
        (queued[0].kind.as_str(), queued[0].created_at),
        ("invitation_email", now)
    );
    s.mark_delivered(queued[0].id, now + 1).await.unwrap();
    assert!(s.list_outbox(true, 10).await.unwrap().is_empty());
    assert_eq!(
        s.list_outbox(false, 10).await.unwrap()[0].delivered_at,
        Some(now + 1)
    );
    not_found(s.mark_delivered(9999, now).await);

    // A failed invitation leaves no outbox message behind.
    let mut dup = new_invitation(acme.id, None, Some("x@example.com"), ann.id, now);
    dup.id = inv.id.clone();
    let msg2 = NewOutboxMessage {
        kind: "invitation_email".to_string(),
        recipient_user_id: Some(ann.id),
        recipient_email: None,
        payload: serde_json::json!({}),
    };
    assert_eq!(
        conflict(
            s.create_invitation(&cli(), &dup, &[msg2])
                .await
                .map(Written::unindexed)
        ),
        Constraint::InvitationId
    );
    assert_eq!(s.list_outbox(false, 10).await.unwrap().len(), 1);

    let created = s.list_events(Some("invitation.created"), 10).await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].subject, format!("invitation:{}", inv.id));
    let all = s.list_events(None, 100).await.unwrap();
    assert!(all.len() >= 3);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(s.list_events(None, 2).await.unwrap().len(), 2);
}

/// One pending invitation per invitee and organization, held by the database
/// (a unique index), so concurrent identical invitations leave one: by
/// account and by email; a closed one blocks nothing; another org's is
/// another invitation.
pub async fn one_pending_invitation_per_invitee(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let acme = org(&s, "acme", ann.id).await;
    let beta = org(&s, "beta", ann.id).await;
    let now = now_millis();
    let create = async |inv: &NewInvitation| {
        s.create_invitation(&cli(), inv, &[])
            .await
            .map(Written::unindexed)
    };
    let first = create(&new_invitation(acme.id, Some(ben.id), None, ann.id, now))
        .await
        .unwrap();
    let again = new_invitation(acme.id, Some(ben.id), None, ann.id, now);
    assert_eq!(
        conflict(create(&again).await),
        Constraint::PendingInvitation
    );
    create(&new_invitation(beta.id, Some(ben.id), None, ann.id, now))
        .await
        .unwrap();
    let by_email = new_invitation(acme.id, None, Some("new@example.com"), ann.id, now);
    create(&by_email).await.unwrap();
    let again = new_invitation(acme.id, None, Some("new@example.com"), ann.id, now);
    assert_eq!(
        conflict(create(&again).await),
        Constraint::PendingInvitation
    );
    s.close_invitation(&cli(), &first.id, InvitationStatus::Declined, now)
        .await
        .map(Written::unindexed)
        .unwrap();
    create(&new_invitation(acme.id, Some(ben.id), None, ann.id, now))
        .await
        .unwrap();
}
