//! Conformance cases: the policy feed (snapshot, change log, subjects).

use crate::support::*;
use algohub_core::model::*;
use algohub_core::roles::{AppRole, OrgRole};
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

pub async fn snapshot_contents(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let gone = user(&s, "gone").await;
    let sus = user(&s, "sus").await;
    s.set_user_flags(&cli(), None, ann.id, Some(true), Some(true))
        .await
        .map(Written::unindexed)
        .unwrap();
    let acme = org_with(&s, "acme", ann.id, &[ben.id, sus.id]).await;
    let dead = org(&s, "dead", ann.id).await;
    let team = s
        .create_team(&cli(), acme.id, "core")
        .await
        .map(Written::unindexed)
        .unwrap();
    s.add_team_member(&cli(), team.id, ben.id, Some(123))
        .await
        .map(Written::unindexed)
        .unwrap();
    let app = s
        .create_app(&cli(), acme.id, "hello", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.grant_team_app(&cli(), team.id, app.id, AppRole::Contributor, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    let live_key = s
        .create_key(
            &cli(),
            &new_key("l", KeyKind::Member, ben.id, Some(acme.id), ben.id),
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let dead_key = s
        .create_key(&cli(), &new_key("d", KeyKind::User, ben.id, None, ben.id))
        .await
        .map(Written::unindexed)
        .unwrap();
    s.revoke_key(&cli(), dead_key.id, now_millis())
        .await
        .map(Written::unindexed)
        .unwrap();
    s.delete_user(&cli(), gone.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.delete_org(&cli(), dead.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    // No store method suspends an account yet; set it directly.
    sqlx::query("UPDATE accounts SET status = 'suspended' WHERE id = $1")
        .bind(sus.id)
        .execute(s.pool())
        .await
        .unwrap();

    let snap = s.load_policy_snapshot().await.unwrap();
    assert_eq!(snap.seq, last_seq(&s).await);
    assert!(snap.seq > 0);
    let mut users = snap.users.clone();
    users.sort_by_key(|u| u.id);
    assert_eq!(
        users,
        [
            PolicyUserRow {
                id: ann.id,
                cluster_admin: true,
                sudo_user: true,
                active: true,
                super_powers_until: None,
            },
            PolicyUserRow {
                id: ben.id,
                cluster_admin: false,
                sudo_user: false,
                active: true,
                super_powers_until: None,
            },
            PolicyUserRow {
                id: sus.id,
                cluster_admin: false,
                sudo_user: false,
                active: false,
                super_powers_until: None,
            },
        ]
    );
    assert_eq!(snap.orgs, [(acme.id, true)]);
    let mut memberships: Vec<(i64, OrgRole)> = snap
        .memberships
        .iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    memberships.sort();
    assert_eq!(
        memberships,
        [
            (ann.id, OrgRole::Admin),
            (ben.id, OrgRole::Contributor),
            (sus.id, OrgRole::Contributor)
        ]
    );
    assert!(snap.memberships.iter().all(|m| m.org_id == acme.id));
    assert_eq!(snap.teams, [(team.id, acme.id)]);
    assert_eq!(
        snap.team_members,
        [PolicyTeamMemberRow {
            team_id: team.id,
            user_id: ben.id,
            expires_at: Some(123)
        }]
    );
    assert_eq!(
        snap.team_apps,
        [PolicyTeamAppRow {
            team_id: team.id,
            app_id: app.id,
            role: AppRole::Contributor,
            expires_at: None
        }]
    );
    assert_eq!(snap.apps, [(app.id, acme.id)]);
    assert_eq!(snap.keys.len(), 1);
    let k = &snap.keys[0];
    assert_eq!(
        (k.id, k.kind, k.owner_id, k.org_id, k.revoked),
        (live_key.id, KeyKind::Member, ben.id, Some(acme.id), false)
    );
    assert_eq!((k.digest.as_str(), k.scopes), ("digest-l", Scopes::ALL));
}

pub async fn changes_are_ordered(s: Arc<SqlStore>) {
    assert!(changes(&s).await.is_empty());
    let ann = user(&s, "ann").await;
    let acme = org(&s, "acme", ann.id).await;
    let team = s
        .create_team(&cli(), acme.id, "core")
        .await
        .map(Written::unindexed)
        .unwrap();
    let all = changes(&s).await;
    let kinds: Vec<(ChangeKind, i64)> = all.iter().map(|c| (c.kind, c.id)).collect();
    assert_eq!(kinds[0], (ChangeKind::User, ann.id));
    assert!(kinds.contains(&(ChangeKind::Org, acme.id)));
    assert_eq!(*kinds.last().unwrap(), (ChangeKind::Team, team.id));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    let last = all.last().unwrap().seq;
    assert!(s.policy_changes_since(last, 100).await.unwrap().is_empty());
    let first_two = s.policy_changes_since(0, 2).await.unwrap();
    assert_eq!(first_two, all[..2]);
    let rest = s.policy_changes_since(first_two[1].seq, 100).await.unwrap();
    assert_eq!(rest, all[2..]);

    // Concurrent writers: every change appears once, in increasing seq.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.create_user(&cli(), &new_user(&format!("w{i}")))
                .await
                .map(Written::unindexed)
                .map(|u| u.id)
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap());
    }
    let new: Vec<PolicyChange> = s.policy_changes_since(last, 100).await.unwrap();
    assert_eq!(new.len(), 10);
    let mut seen: Vec<i64> = new.iter().map(|c| c.id).collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}

pub async fn subjects_follow_changes(s: Arc<SqlStore>) {
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

    let subject = s
        .load_policy_subject(ChangeKind::User, ben.id)
        .await
        .unwrap();
    assert_eq!(subject.user.map(|u| u.active), Some(true));
    assert_eq!(
        subject.memberships,
        [PolicyMembershipRow {
            user_id: ben.id,
            org_id: acme.id,
            role: OrgRole::Contributor,
            expires_at: None
        }]
    );
    assert_eq!(subject.team_seats.len(), 1);

    s.set_member_role(&cli(), acme.id, ben.id, OrgRole::Admin, Some(99))
        .await
        .map(Written::unindexed)
        .unwrap();
    let subject = s
        .load_policy_subject(ChangeKind::User, ben.id)
        .await
        .unwrap();
    assert_eq!(
        (
            subject.memberships[0].role,
            subject.memberships[0].expires_at
        ),
        (OrgRole::Admin, Some(99))
    );

    assert_eq!(
        s.load_policy_subject(ChangeKind::Org, acme.id)
            .await
            .unwrap()
            .org_active,
        Some(true)
    );
    assert_eq!(
        s.load_policy_subject(ChangeKind::Org, ann.id)
            .await
            .unwrap()
            .org_active,
        None
    );
    assert_eq!(
        s.load_policy_subject(ChangeKind::Team, team.id)
            .await
            .unwrap()
            .team_org,
        Some(acme.id)
    );
    s.delete_team(&cli(), team.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let gone = s
        .load_policy_subject(ChangeKind::Team, team.id)
        .await
        .unwrap();
    assert!(gone.team_org.is_none() && gone.team_apps.is_empty());
    assert!(
        s.load_policy_subject(ChangeKind::User, ben.id)
            .await
            .unwrap()
            .team_seats
            .is_empty()
    );
    assert!(
        s.load_policy_subject(ChangeKind::Key, 4242)
            .await
            .unwrap()
            .key
            .is_none()
    );

    s.remove_member(&cli(), acme.id, ben.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert!(
        s.load_policy_subject(ChangeKind::User, ben.id)
            .await
            .unwrap()
            .memberships
            .is_empty()
    );
    s.delete_org(&cli(), acme.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        s.load_policy_subject(ChangeKind::Org, acme.id)
            .await
            .unwrap()
            .org_active,
        None
    );
    assert!(
        s.load_policy_subject(ChangeKind::User, ann.id)
            .await
            .unwrap()
            .memberships
            .is_empty()
    );
}
