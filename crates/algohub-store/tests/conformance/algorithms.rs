//! Algorithms, artifacts, builds and versions.

use crate::support::*;
use algohub_core::model::*;
use algohub_core::store::*;
use algohub_store::SqlStore;
use serde_json::json;
use std::sync::Arc;

pub fn artifact(bytes: &[u8]) -> Artifact {
    Artifact {
        digest: algohub_core::services::artifact_digest(bytes),
        kind: RuntimeKind::Wasm,
        bytes: bytes.to_vec(),
    }
}

pub fn new_algo(owner: AccountId, name: &str, digest: &str) -> NewAlgorithm {
    NewAlgorithm {
        uuid: uuid::Uuid::new_v4().to_string(),
        owner_id: owner,
        name: name.into(),
        app_id: None,
        details: json!({"label": name}),
        settings: AlgorithmSettings {
            license: Some(License::Mit),
            royalty_microcredits: Some(3),
            ..Default::default()
        },
        runtime: RuntimeKind::Wasm,
        artifact_digest: digest.into(),
        created_by: owner,
    }
}

pub fn new_version(algo: &Algorithm, build: &Build, minor: i64) -> NewVersion {
    NewVersion {
        uuid: uuid::Uuid::new_v4().to_string(),
        algorithm_id: algo.id,
        build_id: build.id,
        semver: SemVer {
            major: 0,
            minor,
            patch: 0,
        },
        callability: Callability::Public,
        release_notes: "n".into(),
        sample_input: None,
        sample_output: None,
        settings: algo.settings.clone(),
        published_by: algo.created_by,
    }
}

pub async fn algorithms_builds_versions(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let acme = org(&s, "acme", ann.id).await;
    let a1 = artifact(b"one");
    s.put_artifact(&a1).await.unwrap();
    s.put_artifact(&a1).await.unwrap(); // idempotent
    assert_eq!(s.get_artifact(&a1.digest).await.unwrap(), a1);
    not_found(s.get_artifact("0000").await);

    let algo = s
        .create_algorithm(&cli(), &new_algo(acme.id, "model", &a1.digest))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        (algo.owner_name.as_str(), algo.name.as_str()),
        ("acme", "model")
    );
    assert_eq!(algo.settings.royalty_microcredits, Some(3));
    assert_eq!(
        conflict(
            s.create_algorithm(&cli(), &new_algo(acme.id, "model", &a1.digest))
                .await
                .map(Written::unindexed)
        ),
        Constraint::AlgorithmName
    );
    assert_eq!(
        s.get_algorithm_by_uuid(&algo.uuid).await.unwrap().id,
        algo.id
    );
    assert_eq!(s.list_algorithms(acme.id).await.unwrap().len(), 1);
    let updated = s
        .update_algorithm(
            &cli(),
            algo.id,
            &json!({"label": "M"}),
            &AlgorithmSettings {
                license: Some(License::Apl),
                ..Default::default()
            },
            None,
        )
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        (updated.details["label"].as_str(), updated.settings.license),
        (Some("M"), Some(License::Apl))
    );

    // Builds: newest first; the same artifact gives the same hash.
    let sha = &a1.digest[..40];
    let b1 = s
        .create_build(algo.id, "b1", sha, &a1.digest, "ok", ann.id)
        .await
        .unwrap();
    let b2 = s
        .create_build(algo.id, "b2", sha, &a1.digest, "ok", ann.id)
        .await
        .unwrap();
    let builds = s.list_builds(algo.id, 10, None).await.unwrap();
    assert_eq!(
        builds.iter().map(|b| b.uuid.as_str()).collect::<Vec<_>>(),
        ["b2", "b1"]
    );
    assert_eq!(s.get_build(algo.id, "b1").await.unwrap().commit_sha, sha);

    // Only the newest build can be published, once.
    assert!(
        s.create_version(&cli(), &new_version(&algo, &b1, 1))
            .await
            .map(Written::unindexed)
            .is_err()
    );
    let v1 = s
        .create_version(&cli(), &new_version(&algo, &b2, 1))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        (v1.status, v1.git_hash.as_str()),
        (VersionStatus::Pending, sha)
    );
    assert!(
        s.create_version(&cli(), &new_version(&algo, &b2, 2))
            .await
            .map(Written::unindexed)
            .is_err()
    );
    assert_eq!(
        s.list_builds(algo.id, 1, None).await.unwrap()[0]
            .semantic_version
            .as_deref(),
        Some("0.1.0")
    );
    let pending = s.list_pending_versions(acme.id).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1.id, v1.id);

    // Approval binds the digest; a decided version is not decided again.
    let d = s
        .decide_version(&cli(), v1.id, true, ann.id, "fine", &a1.digest)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        (d.status, d.approved_digest.as_deref()),
        (VersionStatus::Published, Some(a1.digest.as_str()))
    );
    assert!(
        s.decide_version(&cli(), v1.id, false, ann.id, "late", &a1.digest)
            .await
            .map(Written::unindexed)
            .is_err()
    );
    assert!(s.list_pending_versions(acme.id).await.unwrap().is_empty());

    // A new artifact, build and a second version; versions list newest first.
    let a2 = artifact(b"two");
    s.put_artifact(&a2).await.unwrap();
    let moved = s
        .set_algorithm_artifact(&cli(), algo.id, &a2.digest, RuntimeKind::Wasm)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(moved.artifact_digest, a2.digest);
    let b3 = s
        .create_build(algo.id, "b3", &a2.digest[..40], &a2.digest, "", ann.id)
        .await
        .unwrap();
    let v2 = s
        .create_version(&cli(), &new_version(&algo, &b3, 2))
        .await
        .map(Written::unindexed)
        .unwrap();
    let versions = s.list_versions(algo.id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.id).collect::<Vec<_>>(),
        [v2.id, v1.id]
    );
    assert_eq!(
        s.get_version_by_uuid(&v2.uuid)
            .await
            .unwrap()
            .artifact_digest,
        a2.digest
    );

    // Delete: gone from lists and lookups, the name stays taken.
    s.delete_algorithm(&cli(), algo.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert!(s.list_algorithms(acme.id).await.unwrap().is_empty());
    assert!(s.get_algorithm(acme.id, "model").await.is_err());
    assert!(
        s.create_algorithm(&cli(), &new_algo(acme.id, "model", &a1.digest))
            .await
            .map(Written::unindexed)
            .is_err()
    );
}
