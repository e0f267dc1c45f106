//! README promises that had no test of their own: found by walking README
//! (security and data-loss promises first). Who may act: call tokens,
//! impersonation, sudo calls. The rest are in `promises_running.rs`.

use crate::algorithms::{call, compile, create, publish, upload};
use crate::call_tokens::{data_agent, people_and_data};
use crate::governance::published_upstream;
use crate::support::{Db, TestApp, error_reason};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Suspends (`true`) or reinstates `user` as the cluster admin would.
async fn set_suspended(app: &TestApp, user: &str, suspended: bool) {
    let verb = if suspended { "suspend" } else { "unsuspend" };
    let (s, v) = app
        .post(
            &format!("/v1/admin/users/{user}/{verb}"),
            &app.root,
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{verb} {user}: {v}");
}

/// Asserts that `token` is refused as a call token whose call's credential
/// has ended (not as one whose call is over: the call still runs).
async fn refused_as_ended_credential(app: &TestApp, token: &str, what: &str) {
    let (s, r) = app.get("/v1/data/.my/notes/hello.txt", token).await;
    assert_eq!(
        (s, error_reason(&r)),
        (401, "invalid_key".to_string()),
        "{what}: {r}"
    );
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the credential of the call this access came from has ended"),
        "{what}: {r}"
    );
}

/// A wasm guest that says it runs (writes `.my/notes/started`), then reads
/// `.my/notes/hello.txt` over and over until a read fails, and fails with
/// the message that read got.
const WATCHER_WAT: &str = r#"(module
  (import "algohub" "data_read" (func $data_read (param i32 i32) (result i32)))
  (import "algohub" "data_write" (func $data_write (param i32 i32 i32 i32) (result i32)))
  (import "algohub" "reply_len" (func $reply_len (result i32)))
  (import "algohub" "reply_read" (func $reply_read (param i32 i32) (result i32)))
  (import "algohub" "set_error" (func $set_error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) ".my/notes/started")
  (data (i32.const 64) ".my/notes/hello.txt")
  (data (i32.const 128) "running")
  (func (export "_start")
    (local $len i32)
    (drop (call $data_write (i32.const 0) (i32.const 17) (i32.const 128) (i32.const 7)))
    (block $failed
      (loop $watch
        (br_if $failed (call $data_read (i32.const 64) (i32.const 19)))
        (br $watch)))
    (local.set $len (call $reply_len))
    (drop (call $reply_read (i32.const 1024) (local.get $len)))
    (call $set_error (i32.const 1024) (local.get $len))))
"#;

/// README, data API during a call: "Access ends at once when the call's own
/// credential does (key revoked, account suspended, sudo role removed)";
/// docs/guest-abi.md: "the account the call acts as or was made from
/// suspended". Each while the call still runs: an `http` algorithm's call
/// token, and a `wasm` algorithm's `algohub.data_*` imports.
pub(crate) async fn call_tokens_end_when_an_account_of_the_call_is_suspended(db: Db) {
    let app = TestApp::new(&db).await;
    let agent = data_agent().await;
    let (alice, bob, sue) = people_and_data(&app).await;
    published_upstream(
        &app,
        &alice,
        "alice",
        "agent",
        &format!("{}/agent", agent.base),
    )
    .await;

    // bob's own call: suspending bob ends his call's token at once.
    agent
        .during_call(&app, &bob, "", async |token: &str| {
            let (s, _, b) = app
                .send_raw(
                    reqwest::Method::GET,
                    "/v1/data/.my/notes/hello.txt",
                    token,
                    None,
                    vec![],
                )
                .await;
            assert_eq!((s, b.as_slice()), (200, &b"bob's notes"[..]));
            set_suspended(&app, "bob", true).await;
            refused_as_ended_credential(&app, token, "caller suspended").await;
            // The data stays out of reach through any of bob's credentials.
            let (s, r) = app.get("/v1/data/.my/notes/hello.txt", &bob).await;
            assert_eq!(
                (s, error_reason(&r)),
                (401, "account_suspended".to_string()),
                "{r}"
            );
        })
        .await;
    set_suspended(&app, "bob", false).await;

    // A sudo call acts as alice: suspending the sudo user who made it ends
    // its token, although alice is active...
    agent
        .during_call(&app, &sue, "?sudo=true", async |token: &str| {
            let (s, _, b) = app
                .send_raw(
                    reqwest::Method::GET,
                    "/v1/data/.my/notes/hello.txt",
                    token,
                    None,
                    vec![],
                )
                .await;
            assert_eq!((s, b.as_slice()), (200, &b"alice's notes"[..]));
            set_suspended(&app, "sue", true).await;
            refused_as_ended_credential(&app, token, "sudo caller suspended").await;
            let (s, _) = app.get("/v1/data/.my/notes/hello.txt", &alice).await;
            assert_eq!(s, 200, "alice herself is untouched");
        })
        .await;
    set_suspended(&app, "sue", false).await;

    // ...and so does suspending alice, the account the sudo call acts as.
    agent
        .during_call(&app, &sue, "?sudo=true", async |token: &str| {
            let (s, _) = app.get("/v1/data/.my/notes/hello.txt", token).await;
            assert_eq!(s, 200);
            set_suspended(&app, "alice", true).await;
            refused_as_ended_credential(&app, token, "acting account suspended").await;
        })
        .await;
    set_suspended(&app, "alice", false).await;

    // A wasm guest's data access (no token) ends alike, while it runs.
    create(&app, &alice, "alice", "watcher").await;
    let (s, b) = upload(
        &app,
        &alice,
        "alice/watcher",
        "text/plain",
        WATCHER_WAT.as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    compile(&app, &alice, "alice/watcher").await;
    let (s, v) = publish(&app, &alice, "alice/watcher", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let watch = call(
        &app,
        &bob,
        "alice/watcher?timeout=120",
        Some("text/plain"),
        b"",
    );
    let suspend_once_running = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, _) = app.get("/v1/data/.my/notes/started", &bob).await;
            if s == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "the guest never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        set_suspended(&app, "bob", true).await;
    };
    let ((s, r), ()) = tokio::join!(watch, suspend_once_running);
    assert_eq!(s, 200, "{r}");
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message
            .starts_with("invalid_key: the credential of the call this access came from has ended"),
        "{r}"
    );
    app.stop().await;
}

/// Starts an impersonation of `user` by root; the session's `Authorization`.
async fn impersonate(app: &TestApp, user: &str) -> String {
    let (s, v) = app
        .post(
            &format!("/v1/admin/users/{user}/impersonate"),
            &app.root,
            json!({"reason": "support ticket 12", "duration_minutes": 10}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    format!("Bearer {}", v["token"].as_str().unwrap())
}

/// Asserts a refusal by the impersonation limit (not by the user's rights).
fn refused_while_impersonating(what: &str, s: u16, v: &Value) {
    assert_eq!(s, 403, "{what}: {v}");
    assert_eq!(
        (s, error_reason(v)),
        (403, "forbidden".to_string()),
        "{what}: {v}"
    );
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("impersonation.limit"), "{what}: {v}");
}

/// `(username, role)` of an org's members and invitees, as its admin `key`
/// lists them.
async fn members(app: &TestApp, org: &str, key: &str) -> Vec<(String, String)> {
    let (s, v) = app
        .get(&format!("/v1/organizations/{org}/members"), key)
        .await;
    assert_eq!(s, 200, "{v}");
    let mut list: Vec<(String, String)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_string(),
                m["algohub_role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    list.sort();
    list
}

/// README, impersonation: "Such a session cannot ... manage org members ...
/// or make sudo calls". alice is an org admin and a sudo user, so her own key
/// may do each of these; the session acting as her may not.
pub(crate) async fn impersonation_cannot_manage_org_members_or_make_sudo_calls(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    app.make_user("bob", false).await;
    app.make_user("erin", false).await;
    app.make_user("fay", false).await;
    let dave = app.make_user("dave", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    app.make_org("beta", &dave).await;
    app.add_member("beta", "alice", "viewer").await;
    let (s, v) = app
        .put("/v1/admin/users/alice/sudo", &app.root, json!({}))
        .await;
    assert_eq!((s, v["sudo_user"].as_bool()), (200, Some(true)), "{v}");
    // dave's private algorithm: only a sudo call reaches it.
    create(&app, &dave, "dave", "secret").await;
    compile(&app, &dave, "dave/secret").await;
    let (s, v) = publish(&app, &dave, "dave/secret", "minor", "private").await;
    assert_eq!(s, 200, "{v}");
    // A pending invitation alice sent, and one addressed to her.
    let (s, pending) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "erin"}),
        )
        .await;
    assert_eq!(s, 201, "{pending}");
    let pending = pending["id"].as_str().unwrap().to_string();
    app.make_org("gamma", &dave).await;
    let (s, to_alice) = app
        .post(
            "/v1/organizations/gamma/invitations",
            &dave,
            json!({"username": "alice", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, 201, "{to_alice}");
    let to_alice = to_alice["id"].as_str().unwrap().to_string();

    // alice's own key makes a sudo call.
    let sudo_call = "dave/secret/0.1.0?sudo=true";
    let (s, r) = call(&app, &alice, sudo_call, Some("text/plain"), b"x").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("x")), "{r}");

    let session = impersonate(&app, "alice").await;
    let before_acme = members(&app, "acme", &alice).await;
    let before_beta = members(&app, "beta", &dave).await;

    // No sudo calls.
    let (s, r) = call(&app, &session, sudo_call, Some("text/plain"), b"x").await;
    assert_eq!(
        (s, error_reason(&r)),
        (403, "not_sudo_user".to_string()),
        "{r}"
    );

    // No member management in alice's org: invite, add, change a role,
    // remove, rescind.
    let (s, v) = app
        .post(
            "/v1/organizations/acme/invitations",
            &session,
            json!({"username": "fay", "role": "admin"}),
        )
        .await;
    refused_while_impersonating("invite", s, &v);
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            "/v1/organizations/acme/members/dave",
            Some(&session),
            None,
        )
        .await;
    refused_while_impersonating("add a member", s, &v);
    let (s, v) = app
        .put(
            "/v1/organizations/acme/members/bob/role",
            &session,
            json!({"role": "admin"}),
        )
        .await;
    refused_while_impersonating("change a role", s, &v);
    let (s, v) = app
        .delete("/v1/organizations/acme/members/bob", &session)
        .await;
    refused_while_impersonating("remove a member", s, &v);
    let (s, v) = app
        .delete(
            &format!("/v1/organizations/acme/invitations/{pending}"),
            &session,
        )
        .await;
    refused_while_impersonating("rescind", s, &v);
    // Nor alice's own memberships: join (accept, decline) or leave.
    for verb in ["accept", "decline"] {
        let (s, v) = app
            .post(
                &format!("/v1/invitations/{to_alice}/{verb}"),
                &session,
                json!({}),
            )
            .await;
        refused_while_impersonating(verb, s, &v);
    }
    let (s, v) = app
        .delete("/v1/organizations/beta/members/alice", &session)
        .await;
    refused_while_impersonating("leave an org", s, &v);

    // Nothing changed.
    assert_eq!(members(&app, "acme", &alice).await, before_acme);
    assert_eq!(members(&app, "beta", &dave).await, before_beta);
    assert!(
        before_beta.contains(&("alice".to_string(), "viewer".to_string())),
        "{before_beta:?}"
    );
    let (_, open) = app.get("/v1/organizations/acme/invitations", &alice).await;
    assert!(open.to_string().contains(&pending), "{open}");
    let (_, mine) = app.get("/v1/invitations", &alice).await;
    assert!(mine.to_string().contains(&to_alice), "{mine}");
    // The session itself still works, and alice's own key may do such things.
    let (s, _) = app.get("/v1/session", &session).await;
    assert_eq!(s, 200);
    let (s, v) = app
        .put(
            "/v1/organizations/acme/members/bob/role",
            &alice,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .delete("/v1/organizations/beta/members/alice", &alice)
        .await;
    assert_eq!(s, 204, "{v}");
    app.stop().await;
}

/// README, audit trail: "refused admin requests ... and sudo calls are
/// recorded too". A sudo call is on record as `call.sudo` once admitted,
/// naming the sudo user, the algorithm, the version and the call's request.
pub(crate) async fn sudo_calls_are_on_the_audit_trail(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let sue = app.make_user("sue", false).await;
    let (s, v) = app
        .put("/v1/admin/users/sue/sudo", &app.root, json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    create(&app, &alice, "alice", "secret").await;
    compile(&app, &alice, "alice/secret").await;
    let (s, v) = publish(&app, &alice, "alice/secret", "minor", "private").await;
    assert_eq!(s, 200, "{v}");

    // Calls that are not sudo calls are not on record as such: the owner's
    // own, and a refused `sudo=true` of someone without the role.
    let (s, r) = call(&app, &alice, "alice/secret/0.1.0", Some("text/plain"), b"x").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("x")), "{r}");
    let (s, r) = call(
        &app,
        &bob,
        "alice/secret/0.1.0?sudo=true",
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!((s, error_reason(&r)), (403, "not_sudo_user".into()), "{r}");

    let (s, r) = call(
        &app,
        &sue,
        "alice/secret/0.1.0?sudo=true",
        Some("text/plain"),
        b"as the owner",
    )
    .await;
    assert_eq!(
        (s, r["result"].as_str()),
        (200, Some("as the owner")),
        "{r}"
    );
    let request_id = r["request_id"].as_str().unwrap().to_string();
    // Written before the call runs, so it is there once the call answered.
    let (s, v) = app.get("/v1/admin/audit?action=call.sudo", &app.root).await;
    assert_eq!(s, 200, "{v}");
    let records = v["results"].as_array().unwrap();
    assert_eq!(records.len(), 1, "one sudo call, one record: {v}");
    let rec = &records[0];
    assert_eq!(
        (
            rec["actor"].as_str(),
            rec["target"].as_str(),
            rec["outcome"].as_str()
        ),
        (Some("sue"), Some("algorithm:alice/secret"), Some("ok")),
        "{rec}"
    );
    assert_eq!(
        (
            rec["detail"]["version"].as_str(),
            rec["detail"]["request_id"].as_str()
        ),
        (Some("0.1.0"), Some(request_id.as_str())),
        "{rec}"
    );
    assert_eq!(
        (rec["auth_method"].as_str(), rec["source"].as_str()),
        (Some("key"), Some("127.0.0.1")),
        "{rec}"
    );
    assert_eq!(
        rec["token_sha256"].as_str(),
        Some(algohub_core::secrets::digest_hex(&sue).as_str()),
        "{rec}"
    );
    assert!(
        !v.to_string().contains(&sue),
        "the key itself is not stored"
    );
    // Found by actor too, and each sudo call has its own record.
    let (s, r) = call(
        &app,
        &sue,
        "alice/secret/latestPrivate?sudo=true",
        Some("text/plain"),
        b"again",
    )
    .await;
    assert_eq!((s, r["result"].as_str()), (200, Some("again")), "{r}");
    let by_sue = app
        .get("/v1/admin/audit?action=call.sudo&actor=sue", &app.root)
        .await
        .1;
    let ids: Vec<&str> = by_sue["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detail"]["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [request_id.as_str(), r["request_id"].as_str().unwrap()],
        "{by_sue}"
    );
    // The records are part of the hash chain.
    let (s, v) = app.get("/v1/admin/audit/verify", &app.root).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    app.stop().await;
}
