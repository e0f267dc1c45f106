//! Route × role matrix: every documented route has a row saying which roles may
//! use it, and the test fails if a route has no row (or a row no route).
//!
//! Roles: N anonymous, E outsider (erin), D viewer (dave), T team contributor
//! (carol, seat in team ml which holds acme/vision), B contributor (bob),
//! A org admin (alice), R cluster admin (root). Cluster admins do not see into
//! accounts' algorithms or orgs' teams without super powers (off here; see
//! `elevated.rs`).
//!
//! An allowed cell must answer the route's documented success status (from the
//! OpenAPI document), unless the row names another answer for that role with
//! `expect`: a business rule's refusal, such as "an API key has no session to
//! stop", given as the status and the error's reason.
//! A refused cell answers 401 to anonymous callers and 403 or 404 to others.
//! Nothing may answer 5xx.
//!
//! The fixture is built once and its server stopped; cells run on copies of
//! its database and data directory (`StoppedApp::start_copy`): each allowed
//! cell of a row that changes something on a copy of its own, every other cell
//! (read-only rows, and refused cells, which must change nothing) on one
//! shared copy.

mod accounts;
mod apps;
mod changes;
mod fixture;
mod operations;

use fixture::{Fixture, fixture};

use crate::support::{Db, TestApp};
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

const ROLES: [char; 7] = ['N', 'E', 'D', 'T', 'B', 'A', 'R'];
const AUTHENTICATED: &str = "EDTBAR";

struct Row {
    method: &'static str,
    template: &'static str,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static str,
    mutates: bool,
    /// Allowed roles whose answer is not the documented success: the role,
    /// the status and the error's reason.
    expect: Vec<(char, u16, &'static str)>,
}

fn row(
    method: &'static str,
    template: &'static str,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static str,
) -> Row {
    Row {
        method,
        template,
        path,
        body,
        allowed,
        mutates: !matches!(method, "GET" | "HEAD"),
        expect: Vec::new(),
    }
}

impl Row {
    /// These allowed roles get `status` rather than the documented success
    /// (say why at the call site).
    fn expect(mut self, roles: &'static str, status: u16, reason: &'static str) -> Self {
        self.expect
            .extend(roles.chars().map(|c| (c, status, reason)));
        self
    }
}

fn rows() -> Vec<Row> {
    let mut rows = accounts::rows();
    rows.extend(apps::rows());
    rows.extend(operations::rows());
    rows
}

/// The documented success status of every operation, by "METHOD template".
fn documented_success() -> HashMap<String, u16> {
    let doc = algohub_http::openapi_document();
    let mut out = HashMap::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let success: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect();
            assert_eq!(success.len(), 1, "{method} {path}: one success status");
            out.insert(format!("{} {path}", method.to_uppercase()), success[0]);
        }
    }
    out
}

async fn check(
    app: &TestApp,
    f: &Fixture,
    r: &Row,
    role: char,
    success: &HashMap<String, u16>,
) -> Result<(), String> {
    let mut path = r.path.to_string();
    let mut body = r.body.as_ref().map(|b| b.to_string());
    for (k, v) in &f.subs {
        path = path.replace(k, v);
        body = body.map(|b| b.replace(k, v));
    }
    let key = f.keys.get(&role).map(String::as_str);
    let method = Method::from_bytes(r.method.as_bytes()).unwrap();
    let (status, resp) = app
        .call(
            method,
            &path,
            key,
            body.map(|b| serde_json::from_str(&b).unwrap()),
        )
        .await;
    let cell = format!("{} {} as {role}", r.method, path);
    if status >= 500 {
        return Err(format!("{cell}: got {status} {resp}"));
    }
    if r.allowed.contains(role) {
        match r.expect.iter().find(|(c, _, _)| *c == role) {
            Some((_, want, reason)) => {
                let got = resp.pointer("/error/reason").and_then(Value::as_str);
                if (status, got) != (*want, Some(*reason)) {
                    return Err(format!(
                        "{cell}: allowed, got {status} ({resp}), expected {want} {reason} (the row's expectation for this role)"
                    ));
                }
            }
            None => {
                let want = success[&format!("{} {}", r.method, r.template)];
                if status != want {
                    return Err(format!(
                        "{cell}: allowed, got {status} ({resp}), expected {want} (the documented success)"
                    ));
                }
            }
        }
    } else if role == 'N' {
        if status != 401 {
            return Err(format!(
                "{cell}: refused, got {status} ({resp}), expected 401"
            ));
        }
    } else if !matches!(status, 403 | 404) {
        return Err(format!(
            "{cell}: refused, got {status} ({resp}), expected 403 or 404"
        ));
    }
    Ok(())
}

#[test]
fn every_route_has_a_row_and_the_document_matches() {
    let doc = algohub_http::openapi_document();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    let tested: BTreeSet<String> = rows()
        .iter()
        .map(|r| format!("{} {}", r.method, r.template))
        .collect();
    let missing: Vec<_> = documented.difference(&tested).collect();
    let extra: Vec<_> = tested.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without a matrix row: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "matrix rows for routes that do not exist: {extra:?}"
    );
    // Derived by utoipa, which writes OpenAPI 3.1.
    assert_eq!(doc["openapi"], "3.1.0");
    // Every documented success is a 2xx, and a row's own expectations are
    // for roles it allows (a refused role's answer is checked anyway).
    for (op, s) in documented_success() {
        assert!((200..300).contains(&s), "{op}: documented success {s}");
    }
    for r in rows() {
        for (c, s, _) in &r.expect {
            assert!(
                r.allowed.contains(*c),
                "{} {}: expectation for {c}, which the row refuses",
                r.method,
                r.path
            );
            assert!(
                !matches!(s, 401 | 403 | 404) && *s < 500,
                "{} {}: expectation {s} for {c} is a refusal or a server error",
                r.method,
                r.path
            );
        }
    }
}

/// The document is derived from the handlers' types: every reference
/// resolves, operation ids are unique, wildcard routes are documented as plain
/// parameters, every answer with a body has a schema, and a field sent only to
/// some callers is optional (an organization's contact details are for
/// members: outsiders get its id and name only).
#[test]
fn the_document_is_derived_and_says_what_is_sent() {
    let doc = algohub_http::openapi_document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(schemas.contains_key(name), "unresolved $ref {name}");
    }
    let mut ids = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        assert!(!path.contains('*'), "{path}");
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "duplicate operationId {id}");
            assert!(
                op["responses"]["default"].is_object(),
                "{method} {path}: no error answer"
            );
            for (status, resp) in op["responses"].as_object().unwrap() {
                if status.starts_with('2') && status != "204" && method != "head" && status != "201"
                {
                    assert!(
                        resp["content"].is_object(),
                        "{method} {path} {status}: no content"
                    );
                }
            }
        }
    }
    let org = &schemas["Organization"];
    let required: Vec<&str> = org["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for always in [
        "id",
        "org_name",
        "org_label",
        "type_id",
        "self_link",
        "resource_type",
    ] {
        assert!(
            required.contains(&always),
            "Organization: {always} is always sent"
        );
    }
    for members_only in [
        "org_email",
        "org_contact_name",
        "tos_version",
        "require_approval",
    ] {
        assert!(
            !required.contains(&members_only),
            "Organization: {members_only} is for members only"
        );
        assert!(
            org["properties"][members_only].is_object(),
            "Organization: {members_only}"
        );
    }
}

pub(crate) async fn route_role_matrix(db: Db) {
    let success = Arc::new(documented_success());
    let (app, f) = fixture(&db).await;
    let template = Arc::new(app.stop_keeping_data().await);
    let f = Arc::new(f);
    let rows = Arc::new(rows());
    let mut failures = Vec::new();
    // Cells that must change nothing share one copy: every read-only cell,
    // then every refused cell of the rows that change something (a refused
    // request that changed something anyway fails its own cell).
    let shared = template.start_copy(&db).await;
    for r in rows.iter().filter(|r| !r.mutates) {
        for role in ROLES {
            if let Err(e) = check(&shared, &f, r, role, &success).await {
                failures.push(e);
            }
        }
    }
    for r in rows.iter().filter(|r| r.mutates) {
        for role in ROLES.into_iter().filter(|c| !r.allowed.contains(*c)) {
            if let Err(e) = check(&shared, &f, r, role, &success).await {
                failures.push(e);
            }
        }
    }
    shared.stop_and_drop(&db).await;
    // Each allowed cell of a row that changes something gets a copy of its own.
    let cells: Vec<(usize, char)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.mutates)
        .flat_map(|(i, r)| r.allowed.chars().map(move |c| (i, c)))
        .collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, role) in cells {
        let (db, template, f, rows, success) = (
            db.clone(),
            template.clone(),
            f.clone(),
            rows.clone(),
            success.clone(),
        );
        set.spawn(async move {
            let app = template.start_copy(&db).await;
            let since = algohub_core::model::now_millis();
            let mut out = check(&app, &f, &rows[i], role, &success).await;
            let succeeds = !rows[i].expect.iter().any(|(c, _, _)| *c == role);
            if out.is_ok() && succeeds {
                out = changes::check_recorded(&app, &f, &rows[i], role, since).await;
            }
            app.stop_and_drop(&db).await;
            out
        });
        while set.len() >= 4 {
            if let Some(res) = set.join_next().await {
                collect(res, &mut failures);
            }
        }
    }
    while let Some(res) = set.join_next().await {
        collect(res, &mut failures);
    }
    if let Ok(template) = Arc::try_unwrap(template) {
        template.drop_database(&db).await;
    }
    assert!(
        failures.is_empty(),
        "{} matrix failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn collect(res: Result<Result<(), String>, tokio::task::JoinError>, failures: &mut Vec<String>) {
    match res {
        Ok(Err(e)) => failures.push(e),
        Err(e) => failures.push(format!("task panicked: {e}")),
        Ok(Ok(())) => {}
    }
}
