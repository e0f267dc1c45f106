//! Conformance cases: API keys.

use crate::support::*;
use algohub_core::model::*;
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

pub async fn create_list_revoke_touch(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let acme = org_with(&s, "acme", ann.id, &[ben.id]).await;

    let seq = last_seq(&s).await;
    let mut new = new_key("u1", KeyKind::User, ann.id, None, ann.id);
    new.allow_web_algo = true;
    new.referer_host = Some("example.com".to_string());
    new.scopes = Scopes(Scopes::ALGO_CALL | Scopes::DATA_READ);
    new.expires_at = Some(now_millis() + HOUR);
    let k1 = s
        .create_key(&cli(), &new)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::Key, k1.id)]);
    assert_eq!(
        (k1.kind, k1.owner_name.as_str(), k1.org_id),
        (KeyKind::User, "ann", None)
    );
    assert_eq!((k1.scopes, k1.allow_web_algo), (Scopes(3), true));
    assert_eq!(k1.referer_host.as_deref(), Some("example.com"));
    assert_eq!(k1.algo_acl, ["acme/hello"]);
    assert_eq!(
        (k1.digest.as_str(), k1.mask.as_str()),
        ("digest-u1", "sim****u1")
    );
    assert_eq!((k1.last_used_at, k1.revoked_at), (None, None));
    assert_eq!(s.get_key_by_uuid(&new.uuid).await.unwrap().id, k1.id);
    assert_eq!(
        conflict(
            s.create_key(&cli(), &new_key("u1", KeyKind::User, ann.id, None, ann.id))
                .await
                .map(Written::unindexed)
        ),
        Constraint::KeyDigest
    );
    not_found(
        s.create_key(&cli(), &new_key("x", KeyKind::User, 9999, None, ann.id))
            .await
            .map(Written::unindexed),
    );

    let k2 = s
        .create_key(&cli(), &new_key("u2", KeyKind::User, ann.id, None, ann.id))
        .await
        .map(Written::unindexed)
        .unwrap();
    let org_key = s
        .create_key(&cli(), &new_key("o", KeyKind::Org, acme.id, None, ann.id))
        .await
        .map(Written::unindexed)
        .unwrap();
    let member = s
        .create_key(
            &cli(),
            &new_key("m", KeyKind::Member, ben.id, Some(acme.id), ben.id),
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(member.org_name.as_deref(), Some("acme"));
    let ids = |keys: Vec<ApiKey>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_keys(ann.id, KeyKind::User).await.unwrap()),
        [k1.id, k2.id]
    );
    assert_eq!(
        ids(s.list_keys(acme.id, KeyKind::Org).await.unwrap()),
        [org_key.id]
    );
    assert_eq!(ids(s.list_member_keys(acme.id).await.unwrap()), [member.id]);
    assert!(s.list_keys(ben.id, KeyKind::User).await.unwrap().is_empty());

    let now = now_millis();
    let seq = last_seq(&s).await;
    s.revoke_key(&cli(), k1.id, now)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::Key, k1.id)]);
    s.revoke_key(&cli(), k1.id, now + 5)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(s.get_key(k1.id).await.unwrap().revoked_at, Some(now));
    not_found(
        s.revoke_key(&cli(), 9999, now)
            .await
            .map(Written::unindexed),
    );
    assert_eq!(
        ids(s.list_keys(ann.id, KeyKind::User).await.unwrap()),
        [k2.id]
    );
    let subject = s.load_policy_subject(ChangeKind::Key, k1.id).await.unwrap();
    assert!(subject.key.unwrap().revoked);

    s.touch_keys(&[(k2.id, now), (org_key.id, now + 1)])
        .await
        .unwrap();
    s.touch_keys(&[(k2.id, now - 100)]).await.unwrap();
    s.touch_keys(&[]).await.unwrap();
    assert_eq!(s.get_key(k2.id).await.unwrap().last_used_at, Some(now));
    assert_eq!(
        s.get_key(org_key.id).await.unwrap().last_used_at,
        Some(now + 1)
    );
}

/// The first secret stored under a name is the one every later caller gets,
/// also when several ask at once; other names are separate.
pub async fn cluster_secrets_are_created_once(s: Arc<SqlStore>) {
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.cluster_secret("call_token", &format!("c{i}")).await })
        })
        .collect();
    let mut got = Vec::new();
    for r in racers {
        got.push(r.await.unwrap().unwrap());
    }
    got.dedup();
    assert_eq!(got.len(), 1, "one secret for everyone: {got:?}");
    assert!(got[0].starts_with('c'), "{got:?}");
    assert_eq!(
        s.cluster_secret("call_token", "later").await.unwrap(),
        got[0]
    );
    assert_eq!(s.cluster_secret("other", "o1").await.unwrap(), "o1");
}

/// Browser sessions: made with their kind, source and browser; their last use
/// written now and then (never backwards, never after they ended); the
/// policy feed carries their kind and last use; ending one records
/// `session.ended`, not an impersonation's end.
pub async fn browser_sessions_record_their_use(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let seq = last_seq(&s).await;
    let new = NewSession {
        kind: SessionKind::Browser,
        digest: "digest-browser".into(),
        user_id: ann.id,
        actor_id: ann.id,
        reason: String::new(),
        expires_at: now_millis() + HOUR,
        source: Some("127.0.0.1".into()),
        user_agent: Some("TestBrowser/1.0".into()),
    };
    let made = s
        .create_session(&cli(), &new)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        changes_after(&s, seq).await,
        [(ChangeKind::Session, made.id)]
    );
    assert_eq!(made.kind, SessionKind::Browser);
    assert_eq!(made.last_seen_at, Some(made.created_at));
    assert_eq!(
        (made.source.as_deref(), made.user_agent.as_deref()),
        (Some("127.0.0.1"), Some("TestBrowser/1.0"))
    );
    let later = made.created_at + 60_000;
    s.touch_sessions(&[(made.id, later)]).await.unwrap();
    s.touch_sessions(&[(made.id, later - 30_000)])
        .await
        .unwrap();
    assert_eq!(
        s.get_session(made.id).await.unwrap().last_seen_at,
        Some(later)
    );
    let snapshot = s.load_policy_snapshot().await.unwrap();
    let row = snapshot.sessions.iter().find(|r| r.id == made.id).unwrap();
    assert_eq!(
        (row.kind, row.last_seen, row.ended),
        (SessionKind::Browser, later, false)
    );

    let ended = s
        .end_session(&cli(), made.id, Some(ann.id), "signed_out")
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("signed_out"));
    s.touch_sessions(&[(made.id, later + 60_000)])
        .await
        .unwrap();
    assert_eq!(
        s.get_session(made.id).await.unwrap().last_seen_at,
        Some(later)
    );
    let q = algohub_core::audit::AuditQuery {
        action: Some("session.ended".into()),
        limit: 100,
        ..Default::default()
    };
    let records = s.list_audit(&q).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].detail["reason"], "signed_out");
    let q = algohub_core::audit::AuditQuery {
        action: Some("impersonation.ended".into()),
        limit: 100,
        ..Default::default()
    };
    assert!(s.list_audit(&q).await.unwrap().is_empty());
}
