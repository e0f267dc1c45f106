//! Conformance cases: orgs, org types, memberships and the last-admin rule
//! (deletions: `deletions.rs`).

use crate::support::*;
use algohub_core::model::*;
use algohub_core::roles::OrgRole;
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

pub async fn org_create_makes_creator_admin(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let seq = last_seq(&s).await;
    let acme = org(&s, "Acme", ann.id).await;
    assert_eq!(acme.name, "acme");
    assert_eq!(acme.status, AccountStatus::Active);
    assert_eq!(acme.tos_version, 1);
    assert!(acme.require_approval && !acme.allow_self_approval && !acme.consolidated_billing);
    let after = changes_after(&s, seq).await;
    assert!(
        after.contains(&(ChangeKind::Org, acme.id)) && after.contains(&(ChangeKind::User, ann.id))
    );

    let m = s.get_membership(acme.id, ann.id).await.unwrap().unwrap();
    assert_eq!(
        (m.role, m.org_name.as_str(), m.username.as_str()),
        (OrgRole::Admin, "acme", "ann")
    );
    assert_eq!(s.get_membership(acme.id, ben.id).await.unwrap(), None);
    assert_eq!(s.get_org_by_name("ACME").await.unwrap().id, acme.id);
    assert_eq!(s.get_account(acme.id).await.unwrap().kind, AccountKind::Org);

    let m = s
        .add_member(
            &cli(),
            acme.id,
            ben.id,
            OrgRole::Viewer,
            Some(now_millis() + HOUR),
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(m.role, OrgRole::Viewer);
    assert!(m.expires_at.is_some());
    assert_eq!(
        conflict(
            s.add_member(&cli(), acme.id, ben.id, OrgRole::Admin, None)
                .await
                .map(Written::unindexed)
        ),
        Constraint::Membership
    );
    not_found(
        s.add_member(&cli(), acme.id, 9999, OrgRole::Viewer, None)
            .await
            .map(Written::unindexed),
    );
    let members: Vec<String> = s
        .list_members(acme.id, &Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.username)
        .collect();
    assert_eq!(members, ["ann", "ben"]);
    let page = Page {
        limit: 5,
        marker: Some("ann".to_string()),
    };
    assert_eq!(s.list_members(acme.id, &page).await.unwrap().len(), 1);

    org(&s, "beta", ben.id).await;
    let orgs: Vec<String> = s
        .list_orgs(&Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(orgs, ["acme", "beta"]);
    let mine: Vec<String> = s
        .list_user_memberships(ben.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.org_name)
        .collect();
    assert_eq!(mine, ["acme", "beta"]);

    let update = OrgUpdate {
        label: Some("ACME Corp".to_string()),
        url: Some(Some("https://acme.example".to_string())),
        require_approval: Some(false),
        consolidated_billing: Some(true),
        ..Default::default()
    };
    let acme2 = s
        .update_org(&cli(), acme.id, &update)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(acme2.label, "ACME Corp");
    assert_eq!(acme2.url.as_deref(), Some("https://acme.example"));
    assert!(!acme2.require_approval && acme2.consolidated_billing);
    assert_eq!(acme2.contact_name, acme.contact_name);
    let cleared = s
        .update_org(
            &cli(),
            acme.id,
            &OrgUpdate {
                url: Some(None),
                ..Default::default()
            },
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(cleared.url, None);
    assert_eq!(cleared.label, "ACME Corp");
    let unknown_type = OrgUpdate {
        type_id: Some("nope".to_string()),
        ..Default::default()
    };
    not_found(
        s.update_org(&cli(), acme.id, &unknown_type)
            .await
            .map(Written::unindexed),
    );
}

pub async fn org_types(s: Arc<SqlStore>) {
    let gold = s
        .create_org_type(&cli(), "Gold")
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(gold.name, "gold");
    assert_eq!(
        conflict(
            s.create_org_type(&cli(), "gold")
                .await
                .map(Written::unindexed)
        ),
        Constraint::OrgTypeName
    );
    let names: Vec<String> = s
        .list_org_types()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["basic", "gold"]);
    s.delete_org_type(&cli(), "gold")
        .await
        .map(Written::unindexed)
        .unwrap();
    not_found(
        s.delete_org_type(&cli(), "gold")
            .await
            .map(Written::unindexed),
    );

    let ann = user(&s, "ann").await;
    org(&s, "acme", ann.id).await;
    assert_eq!(
        conflict(
            s.delete_org_type(&cli(), "basic")
                .await
                .map(Written::unindexed)
        ),
        Constraint::OrgTypeInUse
    );
    let bad = NewOrg {
        name: "badtype".to_string(),
        label: "x".to_string(),
        contact_name: "x".to_string(),
        email: "x@example.com".to_string(),
        url: None,
        type_id: "no-such-type".to_string(),
    };
    not_found(
        s.create_org(&cli(), &bad, ann.id)
            .await
            .map(Written::unindexed),
    );
    not_found(s.get_account_by_name("badtype").await);
}

pub async fn last_admin_refusals(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let acme = org_with(&s, "acme", ann.id, &[ben.id]).await;

    assert_eq!(
        conflict(
            s.set_member_role(&cli(), acme.id, ann.id, OrgRole::Contributor, None)
                .await
                .map(Written::unindexed)
        ),
        Constraint::LastAdmin
    );
    assert_eq!(
        conflict(
            s.remove_member(&cli(), acme.id, ann.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::LastAdmin
    );
    assert_eq!(
        conflict(
            s.delete_user(&cli(), ann.id, ann.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::LastAdminOf { org: "acme".into() }
    );
    assert_eq!(
        s.get_user(ann.id).await.unwrap().status,
        AccountStatus::Active
    );
    // Still an admin: refusals changed nothing.
    assert_eq!(
        s.get_membership(acme.id, ann.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        OrgRole::Admin
    );

    // With a second admin, each of them is allowed.
    let m = s
        .set_member_role(&cli(), acme.id, ben.id, OrgRole::Admin, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(m.role, OrgRole::Admin);
    s.set_member_role(&cli(), acme.id, ann.id, OrgRole::Viewer, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        conflict(
            s.remove_member(&cli(), acme.id, ben.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::LastAdmin
    );
    s.set_member_role(&cli(), acme.id, ann.id, OrgRole::Admin, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.remove_member(&cli(), acme.id, ben.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(s.get_membership(acme.id, ben.id).await.unwrap(), None);
    not_found(
        s.remove_member(&cli(), acme.id, ben.id)
            .await
            .map(Written::unindexed),
    );
    not_found(
        s.set_member_role(&cli(), acme.id, ben.id, OrgRole::Viewer, None)
            .await
            .map(Written::unindexed),
    );
    // Non-admins can always leave.
    s.add_member(&cli(), acme.id, ben.id, OrgRole::Viewer, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.delete_user(&cli(), ben.id, ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
}

/// `max_orgs_per_user` holds under concurrent adds and accepts: with a limit of 3,
/// twelve concurrent adds of one user to twelve orgs leave exactly 3 memberships.
pub async fn org_limit_holds_under_concurrency(s: Arc<SqlStore>) {
    let owner = user(&s, "owner").await;
    let joiner = user(&s, "joiner").await;
    let mut orgs = Vec::new();
    for i in 0..12 {
        orgs.push(org(&s, &format!("limited{i}"), owner.id).await);
    }
    s.set_max_orgs_per_user(Some(3));
    let mut tasks = tokio::task::JoinSet::new();
    for o in &orgs {
        let (s, org_id, user_id) = (s.clone(), o.id, joiner.id);
        tasks.spawn(async move {
            s.add_member(&cli(), org_id, user_id, OrgRole::Viewer, None)
                .await
                .map(Written::unindexed)
        });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict {
                constraint: Constraint::OrgLimit,
            }) => refused += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, refused), (3, 9));
    assert_eq!(s.list_user_memberships(joiner.id).await.unwrap().len(), 3);
    // Creating an org counts too; the owner is already in 12 orgs.
    let refused = s
        .create_org(
            &cli(),
            &NewOrg {
                name: "onemore".into(),
                label: "x".into(),
                contact_name: "x".into(),
                email: "x@onemore.example".into(),
                url: None,
                type_id: basic_type(&s).await,
            },
            owner.id,
        )
        .await
        .map(Written::unindexed);
    assert_eq!(conflict(refused), Constraint::OrgLimit);
    // Lifting the limit lets the user join an org that refused them, and the
    // owner create one more.
    s.set_max_orgs_per_user(None);
    let joined: Vec<AccountId> = s
        .list_user_memberships(joiner.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.org_id)
        .collect();
    let refused_before = orgs
        .iter()
        .find(|o| !joined.contains(&o.id))
        .expect("an org that refused the joiner");
    let m = s
        .add_member(&cli(), refused_before.id, joiner.id, OrgRole::Viewer, None)
        .await
        .map(Written::unindexed)
        .expect("no limit: the add succeeds");
    assert_eq!(
        (m.org_id, m.user_id, m.role),
        (refused_before.id, joiner.id, OrgRole::Viewer)
    );
    let mut now_in: Vec<AccountId> = s
        .list_user_memberships(joiner.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.org_id)
        .collect();
    now_in.sort_unstable();
    let mut want = joined;
    want.push(refused_before.id);
    want.sort_unstable();
    assert_eq!(now_in, want, "the three orgs of before, and the new one");
    let onemore = s
        .create_org(
            &cli(),
            &NewOrg {
                name: "onemore".into(),
                label: "x".into(),
                contact_name: "x".into(),
                email: "x@onemore.example".into(),
                url: None,
                type_id: basic_type(&s).await,
            },
            owner.id,
        )
        .await
        .map(Written::unindexed)
        .expect("no limit: the owner creates a 13th org");
    assert_eq!(
        s.list_user_memberships(owner.id).await.unwrap().len(),
        13,
        "{onemore:?}"
    );
}

/// An audited write returns the policy changes it recorded: those the
/// change feed holds for it (what the index is refreshed from); a write
/// that changes nothing the policy reads returns none.
pub async fn writes_return_their_policy_changes(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let seq = last_seq(&s).await;
    let new = NewOrg {
        name: "acme".to_string(),
        label: "Acme Inc.".to_string(),
        contact_name: "Contact".to_string(),
        email: "contact@acme.example".to_string(),
        url: None,
        type_id: basic_type(&s).await,
    };
    let written = s.create_org(&cli(), &new, ann.id).await.unwrap();
    let mut returned = written.changes().to_vec();
    let acme = written.unindexed();
    let mut fed = changes_after(&s, seq).await;
    returned.sort_by_key(|&(k, id)| (k.as_str(), id));
    fed.sort_by_key(|&(k, id)| (k.as_str(), id));
    assert_eq!(returned, fed);
    assert!(returned.contains(&(ChangeKind::Org, acme.id)));

    let app = s
        .create_app(&cli(), acme.id, "vision", "", ann.id)
        .await
        .unwrap()
        .unindexed();
    let seq = last_seq(&s).await;
    let pinned = s.pin_app(&cli(), ann.id, app.id).await.unwrap();
    assert!(pinned.changes().is_empty(), "{:?}", pinned.changes());
    assert_eq!(changes_after(&s, seq).await, vec![]);
}
