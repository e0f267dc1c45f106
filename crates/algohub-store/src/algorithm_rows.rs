//! How algorithms, builds and versions are read from rows: the `SELECT`s
//! (as macros, so that queries can `concat!` their own `WHERE`) and the row
//! conversions `algorithms.rs` uses.

use crate::db::{col, json};
use algohub_core::model::*;
use algohub_core::store::{StoreError, StoreResult};
use sqlx::any::AnyRow;

macro_rules! algo_select {
    () => {
        "SELECT g.id, g.uuid, g.owner_id, o.name AS owner_name, g.name, g.app_id, g.details, g.settings, \
         g.runtime, g.artifact_digest, g.created_by, g.created_at, g.updated_at \
         FROM algorithms g JOIN accounts o ON o.id = g.owner_id"
    };
}

macro_rules! build_select {
    () => {
        "SELECT b.id, b.uuid, b.algorithm_id, b.commit_sha, b.artifact_digest, b.status, b.logs, b.created_by, \
         b.started_at, b.finished_at, v.major, v.minor, v.patch \
         FROM builds b LEFT JOIN versions v ON v.build_id = b.id"
    };
}

macro_rules! version_select {
    () => {
        "SELECT v.id, v.uuid, v.algorithm_id, v.build_id, b.uuid AS build_uuid, v.major, v.minor, v.patch, \
         v.git_hash, v.artifact_digest, v.callability, v.status, v.release_notes, v.sample_input, \
         v.sample_output, v.settings, v.published_by, v.created_at, v.decided_by, v.decided_at, \
         v.decision_reason, v.approved_digest FROM versions v JOIN builds b ON b.id = v.build_id"
    };
}

pub(crate) fn algorithm_from_row(r: &AnyRow) -> StoreResult<Algorithm> {
    let runtime: String = col(r, "runtime")?;
    Ok(Algorithm {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        owner_id: col(r, "owner_id")?,
        owner_name: col(r, "owner_name")?,
        name: col(r, "name")?,
        app_id: col(r, "app_id")?,
        details: json(r, "details")?,
        settings: json(r, "settings")?,
        runtime: RuntimeKind::parse(&runtime),
        artifact_digest: col(r, "artifact_digest")?,
        created_by: col(r, "created_by")?,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
    })
}

pub(crate) fn build_from_row(r: &AnyRow) -> StoreResult<Build> {
    let major: Option<i64> = col(r, "major")?;
    let semantic_version = match major {
        Some(major) => Some(
            SemVer {
                major,
                minor: col(r, "minor")?,
                patch: col(r, "patch")?,
            }
            .to_string(),
        ),
        None => None,
    };
    Ok(Build {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        algorithm_id: col(r, "algorithm_id")?,
        commit_sha: col(r, "commit_sha")?,
        artifact_digest: col(r, "artifact_digest")?,
        status: col(r, "status")?,
        logs: col(r, "logs")?,
        created_by: col(r, "created_by")?,
        started_at: col(r, "started_at")?,
        finished_at: col(r, "finished_at")?,
        semantic_version,
    })
}

pub(crate) fn version_from_row(r: &AnyRow) -> StoreResult<Version> {
    let status: String = col(r, "status")?;
    Ok(Version {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        algorithm_id: col(r, "algorithm_id")?,
        build_id: col(r, "build_id")?,
        build_uuid: col(r, "build_uuid")?,
        semver: SemVer {
            major: col(r, "major")?,
            minor: col(r, "minor")?,
            patch: col(r, "patch")?,
        },
        git_hash: col(r, "git_hash")?,
        artifact_digest: col(r, "artifact_digest")?,
        callability: {
            let raw: String = col(r, "callability")?;
            Callability::parse(&raw)
                .ok_or_else(|| StoreError::Other(format!("bad callability {raw:?}")))?
        },
        status: VersionStatus::parse(&status),
        release_notes: col(r, "release_notes")?,
        sample_input: col(r, "sample_input")?,
        sample_output: col(r, "sample_output")?,
        settings: json(r, "settings")?,
        published_by: col(r, "published_by")?,
        created_at: col(r, "created_at")?,
        decided_by: col(r, "decided_by")?,
        decided_at: col(r, "decided_at")?,
        decision_reason: col(r, "decision_reason")?,
        approved_digest: col(r, "approved_digest")?,
    })
}

pub(crate) use {algo_select, build_select, version_select};
