//! Conformance cases: apps (create, list with search and sort, duplicate,
//! transfer, pin, delete; what a transfer takes along: `transfers.rs`).

use crate::support::*;
use algohub_core::model::*;
use algohub_core::roles::AppRole;
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;
use std::time::Duration;

fn names(apps: &[App]) -> Vec<&str> {
    apps.iter().map(|a| a.name.as_str()).collect()
}

pub async fn create_list_search_sort(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let seq = last_seq(&s).await;
    let first = s
        .create_app(&cli(), ann.id, "Zeta", "last letter", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::App, first.id)]);
    assert_eq!(
        (first.owner_name.as_str(), first.description.as_str()),
        ("ann", "last letter")
    );
    for name in ["alpha", "Beta_1", "beta2"] {
        tokio::time::sleep(Duration::from_millis(3)).await;
        s.create_app(&cli(), ann.id, name, "", ann.id)
            .await
            .map(Written::unindexed)
            .unwrap();
    }
    s.create_app(&cli(), ben.id, "alpha", "", ben.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        conflict(
            s.create_app(&cli(), ann.id, "ALPHA", "", ann.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::AppName
    );
    not_found(
        s.create_app(&cli(), 9999, "x", "", ann.id)
            .await
            .map(Written::unindexed),
    );
    assert_eq!(s.get_app(ann.id, "ZETA").await.unwrap().id, first.id);
    assert_eq!(s.get_app_by_id(first.id).await.unwrap().name, "Zeta");
    not_found(s.get_app(ben.id, "zeta").await);

    let list = |search: Option<&'static str>, sort, limit, offset| {
        let s = s.clone();
        async move {
            s.list_apps(ann.id, search, sort, limit, offset)
                .await
                .unwrap()
        }
    };
    // Byte order of the lowercased name: '2' sorts before '_'.
    assert_eq!(
        names(&list(None, AppSort::NameAsc, 10, 0).await),
        ["alpha", "beta2", "Beta_1", "Zeta"]
    );
    assert_eq!(
        names(&list(None, AppSort::NameDesc, 10, 0).await),
        ["Zeta", "Beta_1", "beta2", "alpha"]
    );
    assert_eq!(
        names(&list(None, AppSort::UpdatedDesc, 10, 0).await),
        ["beta2", "Beta_1", "alpha", "Zeta"]
    );
    assert_eq!(
        names(&list(None, AppSort::UpdatedAsc, 10, 0).await),
        ["Zeta", "alpha", "Beta_1", "beta2"]
    );
    assert_eq!(
        names(&list(Some("BETA"), AppSort::NameAsc, 10, 0).await),
        ["beta2", "Beta_1"]
    );
    // `_` is a literal, not a wildcard.
    assert_eq!(
        names(&list(Some("a_"), AppSort::NameAsc, 10, 0).await),
        ["Beta_1"]
    );
    assert!(list(Some("%"), AppSort::NameAsc, 10, 0).await.is_empty());
    assert_eq!(
        names(&list(None, AppSort::NameAsc, 2, 1).await),
        ["beta2", "Beta_1"]
    );
    assert_eq!(names(&list(None, AppSort::NameAsc, 2, 3).await), ["Zeta"]);
}

pub async fn duplicate_transfer_pin_delete(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let acme = org(&s, "acme", ann.id).await;
    let app = s
        .create_app(&cli(), ann.id, "hello", "says hello", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();

    let copy = s
        .duplicate_app(&cli(), app.id, "hello2", ben.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        (copy.owner_id, copy.description.as_str(), copy.created_by),
        (ann.id, "says hello", ben.id)
    );
    assert_ne!(copy.uuid, app.uuid);
    assert_eq!(
        conflict(
            s.duplicate_app(&cli(), app.id, "HELLO", ann.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::AppName
    );
    not_found(
        s.duplicate_app(&cli(), 9999, "x", ann.id)
            .await
            .map(Written::unindexed),
    );

    s.pin_app(&cli(), ben.id, app.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.pin_app(&cli(), ben.id, app.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.pin_app(&cli(), ben.id, copy.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        names(&s.list_pinned_apps(ben.id).await.unwrap()),
        ["hello", "hello2"]
    );
    not_found(
        s.pin_app(&cli(), ben.id, 9999)
            .await
            .map(Written::unindexed),
    );

    // Transfer into the org; a clash on the target name is a conflict.
    s.create_app(&cli(), acme.id, "taken", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        conflict(
            s.transfer_app(&cli(), app.id, ann.id, acme.id, "Taken", ann.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::AppName
    );
    let team = s
        .create_team(&cli(), acme.id, "core")
        .await
        .map(Written::unindexed)
        .unwrap();
    let org_app = s
        .create_app(&cli(), acme.id, "shared", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.grant_team_app(&cli(), team.id, org_app.id, AppRole::Read, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    let seq = last_seq(&s).await;
    let moved = s
        .transfer_app(&cli(), app.id, ann.id, acme.id, "Greeter", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap()
        .app;
    assert_eq!(
        (
            moved.id,
            moved.owner_id,
            moved.owner_name.as_str(),
            moved.name.as_str()
        ),
        (app.id, acme.id, "acme", "Greeter")
    );
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::App, app.id)]);
    assert_eq!(s.get_app(acme.id, "greeter").await.unwrap().id, app.id);
    not_found(s.get_app(ann.id, "hello").await);
    // Pins survive a transfer.
    assert_eq!(
        names(&s.list_pinned_apps(ben.id).await.unwrap()),
        ["Greeter", "hello2"]
    );
    // Moving an app away drops its team grants (teams belong to the old owner).
    let seq = last_seq(&s).await;
    s.transfer_app(&cli(), org_app.id, acme.id, ann.id, "shared", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let after = changes_after(&s, seq).await;
    assert!(
        after.contains(&(ChangeKind::Team, team.id))
            && after.contains(&(ChangeKind::App, org_app.id))
    );
    assert!(s.list_team_apps(team.id).await.unwrap().is_empty());

    s.unpin_app(&cli(), ben.id, copy.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    s.unpin_app(&cli(), ben.id, copy.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        names(&s.list_pinned_apps(ben.id).await.unwrap()),
        ["Greeter"]
    );
    let seq = last_seq(&s).await;
    s.delete_app(&cli(), app.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::App, app.id)]);
    not_found(s.get_app_by_id(app.id).await);
    not_found(s.delete_app(&cli(), app.id).await.map(Written::unindexed));
    assert!(s.list_pinned_apps(ben.id).await.unwrap().is_empty());
    assert_eq!(
        s.load_policy_subject(ChangeKind::App, app.id)
            .await
            .unwrap()
            .app_owner,
        None
    );
    assert_eq!(
        s.load_policy_subject(ChangeKind::App, copy.id)
            .await
            .unwrap()
            .app_owner,
        Some(ann.id)
    );
}
