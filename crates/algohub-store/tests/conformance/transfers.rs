//! Conformance cases: transferring an app (its algorithms move with it, and
//! writes made meanwhile go by the current owner).

use crate::support::*;
use algohub_core::model::*;
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

/// A transfer takes the app's live algorithms along (same ids), leaves the
/// owner's others and its deleted ones, is refused whole when one of their
/// names is taken in the new owner, and puts published versions back to
/// pending in an org that requires approval.
pub async fn transfer_moves_algorithms(s: Arc<SqlStore>) {
    use crate::algorithms::{artifact, new_algo};
    let ann = user(&s, "ann").await;
    let acme = org(&s, "acme", ann.id).await;
    let beta = org(&s, "beta", ann.id).await;
    s.update_org(
        &cli(),
        beta.id,
        &OrgUpdate {
            require_approval: Some(false),
            ..Default::default()
        },
    )
    .await
    .map(Written::unindexed)
    .unwrap();
    let a = artifact(b"transfer");
    s.put_artifact(&a).await.unwrap();
    let app = s
        .create_app(&cli(), ann.id, "lab", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let in_app = |name: &str| NewAlgorithm {
        app_id: Some(app.id),
        ..new_algo(ann.id, name, &a.digest)
    };
    let model = s
        .create_algorithm(&cli(), &in_app("Model"))
        .await
        .map(Written::unindexed)
        .unwrap();
    let gone = s
        .create_algorithm(&cli(), &in_app("gone"))
        .await
        .map(Written::unindexed)
        .unwrap();
    s.delete_algorithm(&cli(), gone.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let loose = s
        .create_algorithm(&cli(), &new_algo(ann.id, "loose", &a.digest))
        .await
        .map(Written::unindexed)
        .unwrap();
    let build = s
        .create_build(
            model.id,
            &uuid::Uuid::new_v4().to_string(),
            "abc",
            &a.digest,
            "",
            ann.id,
        )
        .await
        .unwrap();
    let published = s
        .create_version(
            &cli(),
            &NewVersion {
                uuid: uuid::Uuid::new_v4().to_string(),
                algorithm_id: model.id,
                build_id: build.id,
                semver: SemVer {
                    major: 0,
                    minor: 1,
                    patch: 0,
                },
                callability: Callability::Public,
                release_notes: String::new(),
                sample_input: None,
                sample_output: None,
                settings: model.settings.clone(),
                published_by: ann.id,
            },
        )
        .await
        .map(Written::unindexed)
        .unwrap();

    // A name taken in the new owner (by a deleted algorithm too) refuses the
    // whole transfer: nothing moved.
    let clash = s
        .create_algorithm(&cli(), &new_algo(beta.id, "model", &a.digest))
        .await
        .map(Written::unindexed)
        .unwrap();
    s.delete_algorithm(&cli(), clash.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let seq = last_seq(&s).await;
    assert_eq!(
        conflict(
            s.transfer_app(&cli(), app.id, ann.id, beta.id, "lab", ann.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::AlgorithmNamesTaken {
            names: vec!["Model".into()]
        }
    );
    assert!(changes_after(&s, seq).await.is_empty());
    assert_eq!(s.get_app_by_id(app.id).await.unwrap().owner_id, ann.id);
    assert_eq!(s.get_algorithm(ann.id, "model").await.unwrap().id, model.id);

    // Into an org that requires approval (the default).
    let moved = s
        .transfer_app(&cli(), app.id, ann.id, acme.id, "lab", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(moved.app.owner_id, acme.id);
    assert_eq!(
        moved
            .algorithms
            .iter()
            .map(|g| (g.id, g.owner_id, g.owner_name.as_str(), g.app_id))
            .collect::<Vec<_>>(),
        [(model.id, acme.id, "acme", Some(app.id))]
    );
    let after = changes_after(&s, seq).await;
    assert!(
        after.contains(&(ChangeKind::App, app.id))
            && after.contains(&(ChangeKind::Algorithm, model.id))
            && !after.contains(&(ChangeKind::Algorithm, loose.id)),
        "{after:?}"
    );
    assert_eq!(
        s.get_algorithm(acme.id, "MODEL").await.unwrap().id,
        model.id
    );
    not_found(s.get_algorithm(ann.id, "model").await);
    assert_eq!(s.get_algorithm(ann.id, "loose").await.unwrap().id, loose.id);
    assert_eq!(
        s.get_algorithm_by_id(gone.id).await.unwrap().owner_id,
        ann.id,
        "a deleted algorithm stays where it was"
    );
    assert_eq!(
        moved
            .resubmitted
            .iter()
            .map(|v| (v.id, v.status, v.approved_digest.clone()))
            .collect::<Vec<_>>(),
        [(published.id, VersionStatus::Pending, None)]
    );
    let pending = s.list_pending_versions(acme.id).await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|(g, v)| (g.id, v.id))
            .collect::<Vec<_>>(),
        [(model.id, published.id)]
    );
    let events = s
        .list_events(Some("algorithm.transferred"), 10)
        .await
        .unwrap();
    assert_eq!(
        (events.len(), events[0].subject.as_str()),
        (1, format!("algorithm:{}", model.id).as_str())
    );
}

/// What an app transfer changes is read again by the writes that depend on
/// it, inside their transactions: a version's status goes by the owner the
/// algorithm has when it is written (not when the publish began), an
/// algorithm goes into an app only while the app is its owner's, and a
/// transfer moves the app only from the owner it was checked against.
pub async fn writes_go_by_the_current_owner(s: Arc<SqlStore>) {
    use crate::algorithms::{artifact, new_algo, new_version};
    let ann = user(&s, "ann").await;
    let acme = org(&s, "acme", ann.id).await;
    let beta = org(&s, "beta", ann.id).await;
    s.update_org(
        &cli(),
        beta.id,
        &OrgUpdate {
            require_approval: Some(false),
            ..Default::default()
        },
    )
    .await
    .map(Written::unindexed)
    .unwrap();
    let a = artifact(b"owners");
    s.put_artifact(&a).await.unwrap();
    let build = |algo: AlgoId| {
        let (s, digest) = (s.clone(), a.digest.clone());
        async move {
            s.create_build(
                algo,
                &uuid::Uuid::new_v4().to_string(),
                "abc",
                &digest,
                "",
                ann.id,
            )
            .await
            .unwrap()
        }
    };
    let lab = s
        .create_app(&cli(), ann.id, "lab", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let tools = s
        .create_app(&cli(), ann.id, "tools", "", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let model = s
        .create_algorithm(
            &cli(),
            &NewAlgorithm {
                app_id: Some(lab.id),
                ..new_algo(ann.id, "model", &a.digest)
            },
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    let solo = s
        .create_algorithm(&cli(), &new_algo(ann.id, "solo", &a.digest))
        .await
        .map(Written::unindexed)
        .unwrap();

    // A person's algorithm: published at once.
    let b1 = build(model.id).await;
    let v1 = s
        .create_version(&cli(), &new_version(&model, &b1, 1))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(v1.status, VersionStatus::Published);

    // A transfer checked against another owner than the app's moves nothing.
    let seq = last_seq(&s).await;
    assert_eq!(
        conflict(
            s.transfer_app(&cli(), lab.id, beta.id, acme.id, "lab", ann.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::AppMoved
    );
    assert!(changes_after(&s, seq).await.is_empty());
    assert_eq!(s.get_app_by_id(lab.id).await.unwrap().owner_id, ann.id);

    // Moved into acme, which requires approval: a version written after the
    // move waits for it, whatever the publish saw before.
    s.transfer_app(&cli(), lab.id, ann.id, acme.id, "lab", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let b2 = build(model.id).await;
    let v2 = s
        .create_version(&cli(), &new_version(&model, &b2, 2))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(v2.status, VersionStatus::Pending);
    assert_eq!(
        s.list_pending_versions(acme.id)
            .await
            .unwrap()
            .iter()
            .map(|(_, v)| v.id)
            .collect::<Vec<_>>(),
        [v1.id, v2.id]
    );
    // Into an org that does not: published.
    s.transfer_app(&cli(), lab.id, acme.id, beta.id, "lab", ann.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let b3 = build(model.id).await;
    let v3 = s
        .create_version(&cli(), &new_version(&model, &b3, 3))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(v3.status, VersionStatus::Published);

    // ann's algorithms go into ann's apps only: lab is beta's now.
    let seq = last_seq(&s).await;
    assert_eq!(
        conflict(
            s.create_algorithm(
                &cli(),
                &NewAlgorithm {
                    app_id: Some(lab.id),
                    ..new_algo(ann.id, "late", &a.digest)
                }
            )
            .await
            .map(Written::unindexed)
        ),
        Constraint::AppOwner
    );
    not_found(s.get_algorithm(ann.id, "late").await);
    let settings = solo.settings.clone();
    assert_eq!(
        conflict(
            s.update_algorithm(
                &cli(),
                solo.id,
                &solo.details,
                &settings,
                Some(Some(lab.id))
            )
            .await
            .map(Written::unindexed)
        ),
        Constraint::AppOwner
    );
    assert!(changes_after(&s, seq).await.is_empty());
    assert_eq!(s.get_algorithm_by_id(solo.id).await.unwrap().app_id, None);
    // Into an app of its own owner, and out again; beta's own goes into lab.
    let moved = s
        .update_algorithm(
            &cli(),
            solo.id,
            &solo.details,
            &settings,
            Some(Some(tools.id)),
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(moved.app_id, Some(tools.id));
    let kept = s
        .update_algorithm(&cli(), solo.id, &solo.details, &settings, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(kept.app_id, Some(tools.id));
    let out = s
        .update_algorithm(&cli(), solo.id, &solo.details, &settings, Some(None))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(out.app_id, None);
    let theirs = s
        .create_algorithm(
            &cli(),
            &NewAlgorithm {
                app_id: Some(lab.id),
                ..new_algo(beta.id, "late", &a.digest)
            },
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!((theirs.owner_id, theirs.app_id), (beta.id, Some(lab.id)));
    not_found(
        s.create_algorithm(
            &cli(),
            &NewAlgorithm {
                app_id: Some(9999),
                ..new_algo(ann.id, "nowhere", &a.digest)
            },
        )
        .await
        .map(Written::unindexed),
    );
}
