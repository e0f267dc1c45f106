//! Conformance cases: teams, seats, app grants, and grant expiry.

use crate::support::*;
use algohub_core::model::*;
use algohub_core::roles::{AppRole, OrgRole};
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

pub async fn seats_require_membership(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let out = user(&s, "outsider").await;
    let acme = org_with(&s, "acme", ann.id, &[ben.id]).await;

    let seq = last_seq(&s).await;
    let team = s
        .create_team(&cli(), acme.id, "Core")
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!((team.name.as_str(), team.org_id), ("Core", acme.id));
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::Team, team.id)]);
    assert_eq!(
        conflict(
            s.create_team(&cli(), acme.id, "CORE")
                .await
                .map(Written::unindexed)
        ),
        Constraint::TeamName
    );
    let other = org(&s, "other", ann.id).await;
    s.create_team(&cli(), other.id, "core")
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(s.get_team(acme.id, "cOrE").await.unwrap().id, team.id);
    not_found(s.get_team(acme.id, "nope").await);
    s.create_team(&cli(), acme.id, "alpha")
        .await
        .map(Written::unindexed)
        .unwrap();
    let names: Vec<String> = s
        .list_teams(acme.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["alpha", "Core"]);

    not_found(
        s.add_team_member(&cli(), team.id, out.id, None)
            .await
            .map(Written::unindexed),
    );
    not_found(
        s.add_team_member(&cli(), 9999, ben.id, None)
            .await
            .map(Written::unindexed),
    );
    let seq = last_seq(&s).await;
    s.add_team_member(&cli(), team.id, ben.id, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_team_member(&cli(), team.id, ann.id, Some(now_millis() + HOUR))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        changes_after(&s, seq).await,
        [(ChangeKind::User, ben.id), (ChangeKind::User, ann.id)]
    );
    assert_eq!(
        conflict(
            s.add_team_member(&cli(), team.id, ben.id, None)
                .await
                .map(Written::unindexed)
        ),
        Constraint::TeamMember
    );
    let members = s.list_team_members(team.id).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.username.as_str())
            .collect::<Vec<_>>(),
        ["ann", "ben"]
    );
    assert!(members[0].expires_at.is_some() && members[1].expires_at.is_none());

    s.remove_team_member(&cli(), team.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    not_found(
        s.remove_team_member(&cli(), team.id, ann.id)
            .await
            .map(Written::unindexed),
    );
    // Leaving the org takes the seat along.
    s.remove_member(&cli(), acme.id, ben.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert!(s.list_team_members(team.id).await.unwrap().is_empty());

    s.add_member(&cli(), acme.id, ben.id, OrgRole::Viewer, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_team_member(&cli(), team.id, ben.id, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    let seq = last_seq(&s).await;
    s.delete_team(&cli(), team.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let after = changes_after(&s, seq).await;
    assert!(
        after.contains(&(ChangeKind::Team, team.id)) && after.contains(&(ChangeKind::User, ben.id))
    );
    not_found(s.delete_team(&cli(), team.id).await.map(Written::unindexed));
    assert!(
        s.load_policy_subject(ChangeKind::User, ben.id)
            .await
            .unwrap()
            .team_seats
            .is_empty()
    );
}

pub async fn app_grants(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let acme = org(&s, "acme", ann.id).await;
    let team = s
        .create_team(&cli(), acme.id, "core")
        .await
        .map(Written::unindexed)
        .unwrap();
    let app = s
        .create_app(&cli(), acme.id, "Hello", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let foreign = s
        .create_app(&cli(), ann.id, "mine", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();

    let seq = last_seq(&s).await;
    s.grant_team_app(&cli(), team.id, app.id, AppRole::Read, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::Team, team.id)]);
    not_found(
        s.grant_team_app(&cli(), team.id, foreign.id, AppRole::Read, None)
            .await
            .map(Written::unindexed),
    );
    not_found(
        s.grant_team_app(&cli(), 9999, app.id, AppRole::Read, None)
            .await
            .map(Written::unindexed),
    );
    // Granting again replaces role and expiry.
    let until = now_millis() + HOUR;
    s.grant_team_app(&cli(), team.id, app.id, AppRole::Write, Some(until))
        .await
        .map(Written::unindexed)
        .unwrap();
    let grants = s.list_team_apps(team.id).await.unwrap();
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(
        (
            g.app_name.as_str(),
            g.owner_name.as_str(),
            g.role,
            g.expires_at
        ),
        ("Hello", "acme", AppRole::Write, Some(until))
    );
    let subject = s
        .load_policy_subject(ChangeKind::Team, team.id)
        .await
        .unwrap();
    assert_eq!(subject.team_org, Some(acme.id));
    assert_eq!(subject.team_apps.len(), 1);

    s.revoke_team_app(&cli(), team.id, app.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    not_found(
        s.revoke_team_app(&cli(), team.id, app.id)
            .await
            .map(Written::unindexed),
    );
    assert!(s.list_team_apps(team.id).await.unwrap().is_empty());
}

pub async fn expire_grants_writes_events(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let cat = user(&s, "cat").await;
    let solo = user(&s, "solo").await;
    let now = now_millis();
    let acme = org(&s, "acme", ann.id).await;
    s.add_member(&cli(), acme.id, ben.id, OrgRole::Contributor, Some(now - 1))
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_member(
        &cli(),
        acme.id,
        cat.id,
        OrgRole::Contributor,
        Some(now + HOUR),
    )
    .await
    .map(Written::unindexed)
    .unwrap();
    let team = s
        .create_team(&cli(), acme.id, "core")
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_team_member(&cli(), team.id, ben.id, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_team_member(&cli(), team.id, cat.id, Some(now))
        .await
        .map(Written::unindexed)
        .unwrap();
    let app = s
        .create_app(&cli(), acme.id, "hello", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.grant_team_app(&cli(), team.id, app.id, AppRole::Read, Some(now - 5))
        .await
        .map(Written::unindexed)
        .unwrap();
    let ben_key = s
        .create_key(
            &cli(),
            &new_key("b", KeyKind::Member, ben.id, Some(acme.id), ben.id),
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    // The only admin of an org cannot be put on a timer: expiry alone must
    // never leave an org without an admin.
    let lonely = org(&s, "lonely", solo.id).await;
    assert!(matches!(
        s.set_member_role(&cli(), lonely.id, solo.id, OrgRole::Admin, Some(now - 1))
            .await
            .map(Written::unindexed),
        Err(StoreError::Conflict {
            constraint: Constraint::LastAdmin
        })
    ));

    let seq = last_seq(&s).await;
    // ben's membership (with his seat and member key), cat's seat, the team grant.
    assert_eq!(
        s.expire_grants(&cli(), now)
            .await
            .map(Written::unindexed)
            .unwrap(),
        3
    );
    let after = changes_after(&s, seq).await;
    for c in [
        (ChangeKind::User, ben.id),
        (ChangeKind::User, cat.id),
        (ChangeKind::Team, team.id),
        (ChangeKind::Key, ben_key.id),
    ] {
        assert!(after.contains(&c), "{c:?} in {after:?}");
    }
    assert_eq!(s.get_membership(acme.id, ben.id).await.unwrap(), None);
    assert!(s.get_membership(acme.id, cat.id).await.unwrap().is_some());
    assert!(s.list_team_members(team.id).await.unwrap().is_empty());
    assert!(s.list_team_apps(team.id).await.unwrap().is_empty());
    assert!(s.get_key(ben_key.id).await.unwrap().revoked_at.is_some());
    let kept = s.get_membership(lonely.id, solo.id).await.unwrap().unwrap();
    // (The sweep keeps a clearing rule for the last admin, for rows written
    // before the refusal existed; the refusal above means it is not reached here.)
    assert_eq!((kept.role, kept.expires_at), (OrgRole::Admin, None));

    let mut subjects: Vec<String> = s
        .list_events(Some("grant.expired"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.subject)
        .collect();
    subjects.sort();
    let mut expected = [
        format!("membership:{}:{}", acme.id, ben.id),
        format!("team_app:{}:{}", team.id, app.id),
        format!("team_member:{}:{}", team.id, cat.id),
    ];
    expected.sort();
    assert_eq!(subjects, expected);
    assert_eq!(
        s.expire_grants(&cli(), now)
            .await
            .map(Written::unindexed)
            .unwrap(),
        0
    );
}
