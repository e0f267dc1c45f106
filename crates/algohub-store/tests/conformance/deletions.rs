//! Conformance cases: what deleting a user or an org takes with it.

use crate::support::*;
use algohub_core::model::*;
use algohub_core::roles::AppRole;
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

pub async fn delete_user_cleans_up(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let acme = org_with(&s, "acme", ann.id, &[ben.id]).await;
    let other = org(&s, "other", ann.id).await;
    let team = s
        .create_team(&cli(), acme.id, "Core")
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_team_member(&cli(), team.id, ben.id, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    let app = s
        .create_app(&cli(), ann.id, "hello", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.pin_app(&cli(), ben.id, app.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let user_key = s
        .create_key(&cli(), &new_key("u", KeyKind::User, ben.id, None, ben.id))
        .await
        .map(Written::unindexed)
        .unwrap();
    let member_key = s
        .create_key(
            &cli(),
            &new_key("m", KeyKind::Member, ben.id, Some(acme.id), ben.id),
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let keep_key = s
        .create_key(&cli(), &new_key("a", KeyKind::User, ann.id, None, ann.id))
        .await
        .map(Written::unindexed)
        .unwrap();
    let now = now_millis();
    let by_id = s
        .create_invitation(
            &cli(),
            &new_invitation(other.id, Some(ben.id), None, ann.id, now),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let by_mail = s
        .create_invitation(
            &cli(),
            &new_invitation(other.id, None, Some("BEN@example.com"), ann.id, now),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();

    let seq = last_seq(&s).await;
    s.delete_user(&cli(), ben.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let after = changes_after(&s, seq).await;
    for c in [
        (ChangeKind::User, ben.id),
        (ChangeKind::Key, user_key.id),
        (ChangeKind::Key, member_key.id),
    ] {
        assert!(after.contains(&c), "{c:?} in {after:?}");
    }
    assert!(!after.contains(&(ChangeKind::Key, keep_key.id)));

    assert!(s.list_user_memberships(ben.id).await.unwrap().is_empty());
    assert_eq!(
        s.list_members(acme.id, &Page::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(s.list_team_members(team.id).await.unwrap().is_empty());
    assert!(s.list_pinned_apps(ben.id).await.unwrap().is_empty());
    assert!(s.list_keys(ben.id, KeyKind::User).await.unwrap().is_empty());
    assert!(s.list_member_keys(acme.id).await.unwrap().is_empty());
    assert!(s.get_key(user_key.id).await.unwrap().revoked_at.is_some());
    assert!(s.get_key(keep_key.id).await.unwrap().revoked_at.is_none());
    for inv in [by_id, by_mail] {
        assert_eq!(
            s.get_invitation(&inv.id).await.unwrap().status,
            InvitationStatus::Rescinded
        );
    }
    let subject = s
        .load_policy_subject(ChangeKind::User, ben.id)
        .await
        .unwrap();
    assert!(
        subject.user.is_none() && subject.memberships.is_empty() && subject.team_seats.is_empty()
    );
}

pub async fn delete_org_cleans_up(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let acme = org_with(&s, "acme", ann.id, &[ben.id]).await;
    let team = s
        .create_team(&cli(), acme.id, "core")
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_team_member(&cli(), team.id, ben.id, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    let app = s
        .create_app(&cli(), acme.id, "hello", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.grant_team_app(&cli(), team.id, app.id, AppRole::Write, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    let org_key = s
        .create_key(&cli(), &new_key("o", KeyKind::Org, acme.id, None, ann.id))
        .await
        .map(Written::unindexed)
        .unwrap();
    let member_key = s
        .create_key(
            &cli(),
            &new_key("m", KeyKind::Member, ben.id, Some(acme.id), ben.id),
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let ben_key = s
        .create_key(&cli(), &new_key("b", KeyKind::User, ben.id, None, ben.id))
        .await
        .map(Written::unindexed)
        .unwrap();
    let inv = s
        .create_invitation(
            &cli(),
            &new_invitation(acme.id, None, Some("x@example.com"), ann.id, now_millis()),
            &[],
        )
        .await
        .map(Written::unindexed)
        .unwrap();

    let seq = last_seq(&s).await;
    s.delete_org(&cli(), acme.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let after = changes_after(&s, seq).await;
    for c in [
        (ChangeKind::Org, acme.id),
        (ChangeKind::Team, team.id),
        (ChangeKind::User, ann.id),
        (ChangeKind::User, ben.id),
        (ChangeKind::Key, org_key.id),
        (ChangeKind::Key, member_key.id),
    ] {
        assert!(after.contains(&c), "{c:?} in {after:?}");
    }
    assert_eq!(
        s.get_org(acme.id).await.unwrap().status,
        AccountStatus::Deleted
    );
    assert!(s.list_orgs(&Page::default()).await.unwrap().is_empty());
    assert!(s.list_user_memberships(ben.id).await.unwrap().is_empty());
    assert!(s.list_teams(acme.id).await.unwrap().is_empty());
    assert_eq!(
        s.get_invitation(&inv.id).await.unwrap().status,
        InvitationStatus::Rescinded
    );
    assert!(s.get_key(org_key.id).await.unwrap().revoked_at.is_some());
    assert!(s.get_key(member_key.id).await.unwrap().revoked_at.is_some());
    assert!(s.get_key(ben_key.id).await.unwrap().revoked_at.is_none());
    assert_eq!(
        conflict(
            s.create_user(&cli(), &new_user("acme"))
                .await
                .map(Written::unindexed)
        ),
        Constraint::AccountName
    );
    not_found(
        s.delete_org(&cli(), acme.id, ann.id)
            .await
            .map(Written::unindexed),
    );
    // The last-admin rule no longer binds ann to a deleted org.
    s.delete_user(&cli(), ann.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let subject = s
        .load_policy_subject(ChangeKind::Org, acme.id)
        .await
        .unwrap();
    assert_eq!(subject.org_active, None);
}
