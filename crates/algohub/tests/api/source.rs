//! Algorithm source (issue 21): a version's or a build's uploaded source
//! (`GET .../versions/{version}/source`, `.../builds/{build_id}/source`) for
//! the owner and members with rights on the algorithm, for its readers when
//! its `source_visibility` is `open`, and for a cluster admin with super
//! powers (audited as a super-powers read); an http definition never shows its
//! secrets there or anywhere else.

use crate::algorithms::{build_upstream, compile, create, publish, upload};
use crate::governance::account_id;
use crate::support::{Db, TestApp, audit_records, error_reason};
use algohub_runtime::ECHO_WAT;
use serde_json::{Value, json};

/// The echo template with a marker in its memory, so that each algorithm's
/// module is its own (and the marker shows in its binary and its text).
fn marked_wat(marker: &str) -> String {
    let memory = "(memory (export \"memory\") 2)";
    assert!(ECHO_WAT.contains(memory));
    ECHO_WAT.replace(
        memory,
        &format!("{memory}\n  (data (i32.const 100000) \"{marker}\")"),
    )
}

/// One GET: status, content type, `x-algohub-redacted`, body bytes.
async fn get_raw(app: &TestApp, path: &str, key: &str) -> (u16, String, Option<String>, Vec<u8>) {
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .header("Authorization", key)
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let ct = header("content-type").unwrap_or_default();
    let redacted = header("x-algohub-redacted");
    (
        status,
        ct,
        redacted,
        resp.bytes().await.expect("body").to_vec(),
    )
}

fn reason_of(body: &[u8]) -> String {
    error_reason(&serde_json::from_slice::<Value>(body).unwrap_or(Value::Null))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// An algorithm made from a marked module, compiled and published as 0.1.0:
/// its (version, hash, build) source paths.
async fn marked_algorithm(
    app: &TestApp,
    key: &str,
    algo: &str,
    visibility: &str,
    marker: &str,
) -> [String; 3] {
    let (owner, name) = algo.split_once('/').unwrap();
    let license = if visibility == "closed" { "apl" } else { "mit" };
    let (s, v) = app
        .post(
            &format!("/v1/algorithms/{owner}"),
            key,
            json!({"name": name, "details": {"label": "M"},
                   "settings": {"source_visibility": visibility, "license": license,
                                "network_access": "isolated", "pipeline_enabled": false}}),
        )
        .await;
    assert_eq!(s, 200, "create {algo}: {v}");
    let (s, v) = upload(app, key, algo, "text/plain", marked_wat(marker).as_bytes()).await;
    assert_eq!(s, 200, "upload {algo}: {v}");
    let built = compile(app, key, algo).await;
    let (s, v) = publish(app, key, algo, "minor", "private").await;
    assert_eq!(s, 200, "publish {algo}: {v}");
    let base = format!("/v1/algorithms/{algo}");
    [
        format!("{base}/versions/0.1.0/source"),
        format!(
            "{base}/versions/{}/source",
            built["version_info"]["git_hash"].as_str().unwrap()
        ),
        format!(
            "{base}/builds/{}/source",
            built["build"]["build_id"].as_str().unwrap()
        ),
    ]
}

/// Every path answers `who` as `want`: 200 with the marked wasm module, or
/// the refusal's status and reason.
async fn expect_source(
    app: &TestApp,
    paths: &[String],
    marker: &str,
    who: &[(&str, &str)],
    want: (u16, &str),
) {
    for path in paths {
        for (name, key) in who {
            let (s, ct, _, body) = get_raw(app, path, key).await;
            if want.0 == 200 {
                assert_eq!(
                    (s, ct.as_str()),
                    (200, "application/wasm"),
                    "{path} as {name}: {}",
                    String::from_utf8_lossy(&body)
                );
                assert!(body.starts_with(b"\0asm"), "{path} as {name}");
                assert!(contains(&body, marker), "{path} as {name}: its own module");
            } else {
                assert_eq!(
                    (s, reason_of(&body)),
                    (want.0, want.1.to_string()),
                    "{path} as {name}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
}

pub(crate) async fn source_follows_visibility_rights_and_super_powers(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let dave = app.make_user("dave", false).await;
    let erin = app.make_user("erin", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    app.add_member("acme", "dave", "viewer").await;
    let root = app.root.clone();

    let open = marked_algorithm(&app, &bob, "acme/opened", "open", "marker-opened").await;
    let shut = marked_algorithm(&app, &bob, "acme/shut", "closed", "marker-shut").await;
    let own = marked_algorithm(&app, &alice, "alice/own", "closed", "marker-own").await;

    // Open source: everyone who may read the algorithm.
    let readers = [("alice", &*alice), ("bob", &*bob), ("dave", &*dave)];
    expect_source(&app, &open, "marker-opened", &readers, (200, "")).await;
    // Closed source: the org's admin and contributor (rights on it), not the
    // viewer, who may read the algorithm but not its source.
    let rights = [("alice", &*alice), ("bob", &*bob)];
    expect_source(&app, &shut, "marker-shut", &rights, (200, "")).await;
    expect_source(&app, &shut, "", &[("dave", &dave)], (403, "forbidden")).await;
    // A personal algorithm: its owner only.
    expect_source(&app, &own, "marker-own", &[("alice", &alice)], (200, "")).await;
    expect_source(
        &app,
        &own,
        "",
        &[("bob", &bob)],
        (404, "algorithm_not_found"),
    )
    .await;
    // Outsiders, and a cluster admin without super powers, learn nothing.
    let strangers = [("erin", &*erin), ("root", &*root)];
    for paths in [&open, &shut] {
        expect_source(&app, paths, "", &strangers, (404, "algorithm_not_found")).await;
    }
    // The viewer is refused before the version is looked up (nothing learnt).
    let (s, _, _, body) = get_raw(
        &app,
        "/v1/algorithms/acme/shut/versions/9.9.9/source",
        &dave,
    )
    .await;
    assert_eq!((s, reason_of(&body)), (403, "forbidden".into()));

    // Unknown versions and builds, and bad formats, are clear errors.
    for (path, status, reason) in [
        ("versions/9.9.9/source", 404, "version_not_found"),
        ("versions/latest/source", 404, "version_not_found"),
        (
            &format!("versions/{}/source", "0".repeat(40)),
            404,
            "version_not_found",
        ),
        ("builds/nosuch/source", 404, "build_not_found"),
        ("versions/0.1.0/source?format=zip", 400, "invalid_input"),
    ] {
        let (s, _, _, body) =
            get_raw(&app, &format!("/v1/algorithms/acme/shut/{path}"), &bob).await;
        assert_eq!((s, reason_of(&body)), (status, reason.into()), "{path}");
    }
    // The module as text, on request.
    let (s, ct, _, body) = get_raw(&app, &format!("{}?format=wat", shut[0]), &bob).await;
    assert_eq!((s, ct.as_str()), (200, "text/plain; charset=utf-8"));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with("(module") && text.contains("marker-shut"),
        "{text}"
    );

    // Super powers open every source, each read audited as a source read.
    let (s, v) = app
        .post(
            "/v1/admin/super-powers",
            &root,
            json!({"reason": "issue 21"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    expect_source(&app, &shut, "marker-shut", &[("root", &root)], (200, "")).await;
    expect_source(&app, &open, "marker-opened", &[("root", &root)], (200, "")).await;
    // Each read: the algorithm (algo.read) and its source (algo.source.read).
    let reads = audit_records(&app, "super_powers.read", 12).await;
    let shut_id = app
        .hub()
        .store
        .get_algorithm(account_id(&app, "acme").await, "shut")
        .await
        .unwrap()
        .id;
    let source_reads: Vec<&Value> = reads
        .iter()
        .filter(|r| r["detail"]["action"] == "algo.source.read")
        .collect();
    assert_eq!(source_reads.len(), 6, "{reads:?}");
    let target = format!("algorithm:{shut_id}");
    assert_eq!(
        source_reads
            .iter()
            .filter(|r| r["target"] == target.as_str())
            .count(),
        3,
        "{source_reads:?}"
    );
    assert!(
        source_reads
            .iter()
            .all(|r| r["actor"] == "root" && r["outcome"] == "ok"),
        "{source_reads:?}"
    );
    // Ordinary source reads are not elevated ones.
    expect_source(&app, &shut, "marker-shut", &[("bob", &bob)], (200, "")).await;
    let again = audit_records(&app, "super_powers.read", 12).await;
    assert_eq!(again.len(), reads.len(), "{again:?}");
    // Off again: closed again.
    let (s, _) = app.delete("/v1/admin/super-powers", &root).await;
    assert_eq!(s, 200);
    expect_source(
        &app,
        &shut,
        "",
        &[("root", &root)],
        (404, "algorithm_not_found"),
    )
    .await;
}

pub(crate) async fn http_definitions_show_no_secrets(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let dave = app.make_user("dave", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "dave", "viewer").await;
    create(&app, &alice, "acme", "remote").await;
    let def = json!({"runtime": "http", "url": "http://example.com/predict?key=s3cret&v=2",
                     "timeout": 30, "headers": {"X-Model-Key": "s3cret", "Authorization": "Bearer s3cret"}});
    let hash = build_upstream(&app, &alice, "acme/remote", def).await;
    let (s, v) = publish(&app, &alice, "acme/remote", "minor", "private").await;
    assert_eq!(s, 200, "{v}");
    let build =
        app.get("/v1/algorithms/acme/remote/builds", &alice).await.1["results"][0]["build_id"]
            .as_str()
            .unwrap()
            .to_string();
    let base = "/v1/algorithms/acme/remote";
    let want = json!({"runtime": "http", "url": "http://example.com/predict?key=[redacted]&v=[redacted]",
                      "timeout": 30.0, "headers": {"x-model-key": "[redacted]", "authorization": "[redacted]"}});
    // The owner's side and (open source) the viewer see the definition, with
    // every secret redacted, and told so.
    for key in [&alice, &dave] {
        for path in [
            format!("{base}/versions/0.1.0/source"),
            format!("{base}/versions/{hash}/source"),
            format!("{base}/builds/{build}/source"),
        ] {
            let (s, ct, redacted, body) = get_raw(&app, &path, key).await;
            let text = String::from_utf8_lossy(&body).to_string();
            assert_eq!(
                (s, ct.as_str()),
                (200, "application/json"),
                "{path}: {text}"
            );
            assert_eq!(redacted.as_deref(), Some("true"), "{path}");
            assert!(!text.contains("s3cret"), "{path}: {text}");
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                want,
                "{path}"
            );
        }
    }
    // An http definition has no text form.
    let (s, _, _, body) = get_raw(
        &app,
        &format!("{base}/versions/0.1.0/source?format=wat"),
        &alice,
    )
    .await;
    assert_eq!((s, reason_of(&body)), (400, "invalid_input".into()));
    // Nor does any other route show the secrets.
    for path in [
        base.to_string(),
        format!("{base}/versions"),
        format!("{base}/versions/{hash}"),
        format!("{base}/builds"),
        format!("{base}/builds/{build}"),
        format!("{base}/builds/{build}/logs"),
        "/v1/users/acme/algorithms".to_string(),
    ] {
        let (s, v) = app.get(&path, &alice).await;
        assert_eq!(s, 200, "{path}: {v}");
        assert!(!v.to_string().contains("s3cret"), "{path}: {v}");
    }
}
