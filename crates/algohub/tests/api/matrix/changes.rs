//! The route walk of the audit trail (issue 22 item 5): every allowed cell
//! of a row that changes something must leave at least one audit record,
//! and every record the request left names an actor and an effective
//! account. The rows below change nothing the audit trail keeps, each with
//! the reason; any other mutating route that leaves no record fails.

use super::Row;
use super::fixture::Fixture;
use crate::support::TestApp;
use serde_json::Value;

/// Mutating routes that leave no audit record, and why.
const NO_RECORD: &[(&str, &str, &str)] = &[
    // A person's own preferences and reading state.
    ("PUT", "/v1/apps/{owner}/{app}/pin", "a personal pin"),
    ("DELETE", "/v1/apps/{owner}/{app}/pin", "a personal pin"),
    (
        "POST",
        "/v1/users/{username}/notifications/read",
        "reading state",
    ),
    (
        "POST",
        "/v1/users/{username}/notifications/{id}/read",
        "reading state",
    ),
    // Calls are on record as usage records (a sudo call also as `call.sudo`).
    (
        "POST",
        "/v1/algo/{owner}/{algo}",
        "a call: its usage record",
    ),
    (
        "POST",
        "/v1/algo/{owner}/{algo}/{version}",
        "a call: its usage record",
    ),
    // A build: on record through the artifact it builds
    // (`algorithm.artifact_uploaded`) and the versions published from it.
    ("POST", "/v1/algorithms/{owner}/compile", "a build"),
    ("POST", "/v1/algorithms/{owner}/{algo}/compile", "a build"),
    // Super powers are off in the fixture, so ending them ends nothing; when
    // on, the end is `super_powers.ended`.
    ("DELETE", "/v1/admin/super-powers", "nothing to end"),
    // Data files are the account's own content, not governance (a
    // collection's ACL change is on record as `data.acl_set`).
    ("PUT", "/v1/data/{path}", "file content"),
    ("POST", "/v1/data/{path}", "a directory"),
    ("DELETE", "/v1/data/{path}", "file content"),
    ("PUT", "/v1/connector/data/{path}", "file content"),
    ("POST", "/v1/connector/data/{path}", "a directory"),
    ("DELETE", "/v1/connector/data/{path}", "file content"),
];

/// The records a change made at or after `since` left (the node's own
/// housekeeping left out); `None` if the audit log could not be read.
async fn records_since(app: &TestApp, root: &str, since: i64) -> Option<Vec<Value>> {
    let from = algohub_core::model::format_millis(since);
    let (s, v) = app
        .get(&format!("/v1/admin/audit?from={from}&limit=10000"), root)
        .await;
    if s != 200 {
        return None;
    }
    Some(
        v["results"]
            .as_array()?
            .iter()
            .filter(|r| r["auth_method"] != "system")
            .cloned()
            .collect(),
    )
}

/// Checks the records an allowed cell of a mutating row left (made at or
/// after `since`, on the cell's own copy).
pub(super) async fn check_recorded(
    app: &TestApp,
    f: &Fixture,
    r: &Row,
    role: char,
    since: i64,
) -> Result<(), String> {
    let cell = format!("{} {} as {role}", r.method, r.template);
    let exempt = NO_RECORD
        .iter()
        .any(|(m, t, _)| *m == r.method && *t == r.template);
    let root = &f.keys[&'R'];
    let Some(records) = records_since(app, root, since).await else {
        return Err(format!("{cell}: the audit log could not be read"));
    };
    if records.is_empty() && !exempt {
        return Err(format!(
            "{cell}: changed something and left no audit record"
        ));
    }
    for rec in &records {
        if rec["actor"].is_null() || rec["effective_account"].is_null() {
            return Err(format!("{cell}: a record without its actor: {rec}"));
        }
    }
    Ok(())
}
