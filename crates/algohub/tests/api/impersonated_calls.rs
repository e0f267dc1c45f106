//! Under impersonation, an algorithm's data acts during a call are on record
//! as requests of the session: naming the admin, under the id of the request
//! that made the call, also when the call runs after its answer went out.

use crate::algorithms::{compile, create, publish, upload};
use crate::call_tokens::{people_and_data, publish_readfile};
use crate::support::{Db, TestApp, audit_records};
use serde_json::{Value, json};

/// Root impersonates alice; the session's `Authorization` value.
async fn impersonate_alice(app: &TestApp) -> String {
    let (s, v) = app
        .post(
            "/v1/admin/users/alice/impersonate",
            &app.root,
            json!({"reason": "support ticket", "duration_minutes": 5}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    format!("Bearer {}", v["token"].as_str().unwrap_or_default())
}

/// Under impersonation, a wasm algorithm's data acts are on record as
/// requests of the session, naming the admin, under the call's request.
pub(crate) async fn wasm_data_acts_under_impersonation_are_audited(db: Db) {
    let app = TestApp::new(&db).await;
    let (alice, _, _) = people_and_data(&app).await;
    publish_readfile(&app, &alice, "alice").await;
    let token = impersonate_alice(&app).await;
    let (s, r) = app
        .send_json(
            "/v1/algo/alice/reader",
            &token,
            Some("text/plain"),
            ".my/notes/hello.txt",
        )
        .await;
    assert_eq!(
        (s, r["result"].as_str()),
        (200, Some("alice's notes")),
        "{r}"
    );
    // The request that made the call, and the algorithm's read within it.
    let records = audit_records(&app, "impersonation.request", 2).await;
    let find = |path: &str| {
        records
            .iter()
            .find(|r| r["detail"]["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("no record of {path}: {records:?}"))
    };
    let call = find("/v1/algo/alice/reader");
    let read = find(".my/notes/hello.txt");
    assert_eq!(read["detail"]["method"], "GET", "{read}");
    assert_eq!(
        (read["actor"].as_str(), read["effective_account"].as_str()),
        (Some("root"), Some("alice")),
        "{read}"
    );
    assert_eq!(read["request_id"], call["request_id"], "{read} {call}");
    assert_eq!(read["auth_method"], call["auth_method"], "{read} {call}");
}

/// A guest that copies `.my/notes/hello.txt` to `.my/notes/copy.txt`
/// through the data API (a read and a write), whatever its input.
const COPY_WAT: &str = r#"(module
  (import "algohub" "data_read" (func $data_read (param i32 i32) (result i32)))
  (import "algohub" "data_write" (func $data_write (param i32 i32 i32 i32) (result i32)))
  (import "algohub" "reply_len" (func $reply_len (result i32)))
  (import "algohub" "reply_read" (func $reply_read (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) ".my/notes/hello.txt")
  (data (i32.const 64) ".my/notes/copy.txt")
  (func (export "_start")
    (local $len i32)
    (if (call $data_read (i32.const 0) (i32.const 19)) (then (unreachable)))
    (local.set $len (call $reply_len))
    (drop (call $reply_read (i32.const 1024) (local.get $len)))
    (if (call $data_write (i32.const 64) (i32.const 18) (i32.const 1024) (local.get $len))
      (then (unreachable)))))"#;

/// An `output=void` call runs after its answer went out, in a task of its
/// own; under impersonation its guest's data acts (a read and a write) are
/// still on record naming the admin, under the one id of the request that
/// made the call: the `x-request-id` header, the answer's `request_id`, the
/// call's usage record and every audit record of it.
pub(crate) async fn void_call_data_acts_keep_the_request_and_the_admin(db: Db) {
    let app = TestApp::new(&db).await;
    let (alice, _, _) = people_and_data(&app).await;
    create(&app, &alice, "alice", "copier").await;
    let (s, b) = upload(
        &app,
        &alice,
        "alice/copier",
        "text/plain",
        COPY_WAT.as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    compile(&app, &alice, "alice/copier").await;
    let (s, v) = publish(&app, &alice, "alice/copier", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let token = impersonate_alice(&app).await;
    let resp = app
        .client
        .post(format!("{}/v1/algo/alice/copier?output=void", app.base))
        .header("Authorization", &token)
        .header("Content-Type", "text/plain")
        // A client's own id is not taken as the request's (it keys the usage record).
        .header("x-request-id", "client-chosen")
        .body("go")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["async"], "void", "{body}");
    assert!(header_id.starts_with("req-"), "{header_id}");
    assert_eq!(body["request_id"], header_id.as_str(), "{body}");
    // The request that made the call, the guest's read and its write.
    let records = audit_records(&app, "impersonation.request", 3).await;
    for (path, method) in [
        ("/v1/algo/alice/copier", "POST"),
        (".my/notes/hello.txt", "GET"),
        (".my/notes/copy.txt", "PUT"),
    ] {
        let r = records
            .iter()
            .find(|r| r["detail"]["path"] == path)
            .unwrap_or_else(|| panic!("no record of {path}: {records:?}"));
        assert_eq!(r["detail"]["method"], method, "{r}");
        assert_eq!(
            (r["actor"].as_str(), r["effective_account"].as_str()),
            (Some("root"), Some("alice")),
            "{r}"
        );
        assert_eq!(r["request_id"], header_id.as_str(), "{r}");
        assert_eq!(r["auth_method"], "session", "{r}");
    }
    // The write happened, and the call's usage record has the same id.
    let (s, b) = app.get("/v1/data/alice/notes/copy.txt", &alice).await;
    assert_eq!((s, b.as_str()), (200, Some("alice's notes")), "{b}");
    // (Metered once the run ended, a moment after its last data act.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let usage = loop {
        let (s, u) = app
            .get(&format!("/v1/admin/usage/calls/{header_id}"), &app.root)
            .await;
        if s == 200 || std::time::Instant::now() > deadline {
            break (s, u);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(usage.0, 200, "{}", usage.1);
    assert_eq!(usage.1["request_id"], header_id.as_str(), "{}", usage.1);
}
