//! Calls through the wasm and http runtimes over the real server: results,
//! errors, limits and the C example.

use crate::algorithms::{build_upstream, call, compile, create, publish, upload};
use crate::support::{Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::{Value, json};

const FAIL_WAT: &str = include_str!("../../../../examples/fail.wat");
const SLOW_WAT: &str = include_str!("../../../../examples/slow.wat");

pub(crate) async fn calls_through_the_wasm_runtime(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let a = create(&app, &alice, "alice", "echo").await;
    let id = a["id"].as_str().unwrap().to_string();
    let c = compile(&app, &alice, "alice/echo").await;
    let hash = c["version_info"]["git_hash"].as_str().unwrap().to_string();
    // An unpublished build: callable by hash by the owner only.
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/echo/{hash}"),
        Some("text/plain"),
        b"hi",
    )
    .await;
    assert_eq!((s, r["result"].as_str()), (200, Some("hi")), "{r}");
    let (s, r) = call(
        &app,
        &bob,
        &format!("alice/echo/{hash}"),
        Some("text/plain"),
        b"hi",
    )
    .await;
    assert_eq!(s, 404, "{r}");
    // Nothing public yet: for bob the algorithm does not exist.
    let (s, _, body) = app
        .send_raw(
            Method::POST,
            "/v1/algo/alice/echo",
            &bob,
            Some("text/plain"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("No such algorithm"));
    let (s, v) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");

    // Every content type, through the latest public version.
    let (s, r) = call(
        &app,
        &bob,
        "alice/echo",
        Some("application/json"),
        br#"{"a": [1, 2]}"#,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["result"], json!({"a": [1, 2]}));
    assert_eq!(r["metadata"]["content_type"], "json");
    assert!(r["metadata"]["duration"].as_f64().unwrap() >= 0.0);
    assert!(
        r["metadata"]["compute_units"].as_u64().unwrap() > 0,
        "fuel is reported: {r}"
    );
    assert_eq!(r["async"], false);
    assert!(r["request_id"].as_str().unwrap().starts_with("req-"));
    assert!(r.get("error").is_none());
    let (_, r) = call(
        &app,
        &bob,
        "alice/echo",
        Some("text/plain"),
        "héllo".as_bytes(),
    )
    .await;
    assert_eq!(
        (r["result"].as_str(), r["metadata"]["content_type"].as_str()),
        (Some("héllo"), Some("text"))
    );
    let (_, r) = call(
        &app,
        &bob,
        "alice/echo",
        Some("application/octet-stream"),
        &[0, 159, 255],
    )
    .await;
    assert_eq!(
        (r["result"].as_str(), r["metadata"]["content_type"].as_str()),
        (Some("AJ//"), Some("binary"))
    );
    let (_, r) = call(&app, &bob, "alice/echo", Some("application/json"), b"null").await;
    assert_eq!(r["result"], Value::Null);
    assert!(r.get("error").is_none(), "{r}");
    // A JSON string (how the generated client sends text).
    let (_, r) = call(
        &app,
        &bob,
        "alice/echo",
        Some("application/json"),
        br#""x""#,
    )
    .await;
    assert_eq!(r["result"], "x");
    let (s, b) = call(&app, &bob, "alice/echo", Some("application/json"), b"{oops").await;
    assert_eq!((s, error_reason(&b).as_str()), (400, "malformed_json"));

    // Version forms.
    for v in [
        "0.1.0",
        "0.1.*",
        "0.*",
        "latestPrivate",
        &hash[..],
        &hash.to_uppercase()[..],
    ] {
        let (s, r) = call(
            &app,
            &alice,
            &format!("alice/echo/{v}"),
            Some("text/plain"),
            b"v",
        )
        .await;
        assert_eq!(
            (s, r["result"].as_str()),
            (200, Some("v")),
            "version {v}: {r}"
        );
    }
    let (s, r) = call(&app, &bob, "alice/echo/0.*", Some("text/plain"), b"v").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["metadata"]["version"], "0.1.0");
    // An unknown version is not found; a malformed one (leading zeros or a
    // sign included) is a bad request.
    for (v, status) in [
        ("9.9.9", 404),
        ("1.*", 404),
        ("nonsense", 400),
        ("00.1.0", 400),
        ("0.01.0", 400),
        ("+0.1.0", 400),
    ] {
        let (s, r) = call(
            &app,
            &bob,
            &format!("alice/echo/{v}"),
            Some("text/plain"),
            b"v",
        )
        .await;
        assert_eq!(s, status, "version {v}: {r}");
    }
    // The by-id form.
    let (s, r) = call(
        &app,
        &bob,
        &format!("{id}/0.1.0"),
        Some("text/plain"),
        b"by id",
    )
    .await;
    assert_eq!((s, r["result"].as_str()), (200, Some("by id")), "{r}");

    // output=raw and output=void; bad options.
    let (s, ct, body) = app
        .send_raw(
            Method::POST,
            "/v1/algo/alice/echo?output=raw",
            &bob,
            Some("application/json"),
            br#"[1,2]"#.to_vec(),
        )
        .await;
    assert_eq!(
        (s, ct.as_str(), body.as_slice()),
        (200, "application/json", &br#"[1,2]"#[..])
    );
    let (s, r) = call(
        &app,
        &bob,
        "alice/echo?output=void",
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!((s, r["async"].as_str()), (200, Some("void")), "{r}");
    assert!(r["request_id"].as_str().unwrap().starts_with("req-"));
    assert!(r.get("result").is_none());
    for q in [
        "timeout=abc",
        "timeout=-1",
        "timeout=3001",
        "timeout=1e308",
        "output=fancy",
        "stdout=maybe",
    ] {
        let (s, r) = call(
            &app,
            &bob,
            &format!("alice/echo?{q}"),
            Some("text/plain"),
            b"x",
        )
        .await;
        assert_eq!(s, 400, "{q}: {r}");
    }
    let (s, _) = call(
        &app,
        "simnotakey0000000000000000000",
        "alice/echo",
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(s, 401);
    let (s, r) = call(&app, &bob, "alice/nosuch", Some("text/plain"), b"x").await;
    assert_eq!(s, 404);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No such algorithm")
    );

    // A failing module: HTTP 200 with an error object; stdout only for the owner.
    let (s, b) = upload(
        &app,
        &alice,
        "alice/echo",
        "text/plain",
        FAIL_WAT.as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    compile(&app, &alice, "alice/echo").await;
    publish(&app, &alice, "alice/echo", "minor", "public").await;
    let (s, r) = call(
        &app,
        &alice,
        "alice/echo?stdout=True",
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["error"]["message"], "the input is not acceptable");
    assert_eq!(r["error"]["error_type"], "ValueError");
    assert!(r["error"]["stack_trace"].is_string() && r["error"]["stacktrace"].is_string());
    assert_eq!(r["metadata"]["stdout"], "checking the input...\n");
    assert!(r.get("result").is_none());
    let (_, r) = call(
        &app,
        &bob,
        "alice/echo?stdout=true",
        Some("text/plain"),
        b"x",
    )
    .await;
    assert!(
        r["metadata"].get("stdout").is_none(),
        "stdout is the owner's: {r}"
    );
    let (s, ct, body) = app
        .send_raw(
            Method::POST,
            "/v1/algo/alice/echo?output=raw",
            &bob,
            Some("text/plain"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(s, 400);
    assert!(ct.starts_with("text/plain"));
    assert_eq!(
        String::from_utf8_lossy(&body),
        "the input is not acceptable"
    );
    // Failed calls are listed for the owner's side, newest first.
    let (s, errs) = app.get("/v1/algorithms/alice/echo/errors", &alice).await;
    assert_eq!(s, 200, "{errs}");
    let errs = errs.as_array().unwrap().clone();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_eq!(errs[0]["error"], "the input is not acceptable");
    assert_eq!(errs[0]["error_type"], "ValueError");
    assert_eq!(errs[0]["algoversion"], "0.2.0");
    assert_eq!(errs[0]["input"], "x");
    assert!(errs[0]["request_id"].as_str().unwrap().starts_with("req-"));
    assert_eq!(errs.iter().filter(|e| e["username"] == "bob").count(), 2);
    let (s, by_id) = app
        .get(&format!("/v1/algorithms/{id}/errors"), &alice)
        .await;
    assert_eq!((s, by_id.as_array().map(Vec::len)), (200, Some(3)));
    let (s, _) = app.get("/v1/algorithms/alice/echo/errors", &bob).await;
    assert!(
        (400..500).contains(&s),
        "callers do not see the error listing"
    );
    // The previous version still answers.
    let (_, r) = call(&app, &bob, "alice/echo/0.1.0", Some("text/plain"), b"old").await;
    assert_eq!(r["result"], "old");

    // A runaway module is stopped by its deadline; the server goes on.
    let (s, b) = upload(
        &app,
        &alice,
        "alice/echo",
        "text/plain",
        SLOW_WAT.as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let c = compile(&app, &alice, "alice/echo").await;
    let slow = c["version_info"]["git_hash"].as_str().unwrap().to_string();
    // The loop never ends: only the deadline (not its fuel, which lasts
    // far longer than the call may run) can stop it this way.
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/echo/{slow}?timeout=0.3"),
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["error"]["error_type"], "AlgorithmTimeoutError", "{r}");
    let (_, r) = call(
        &app,
        &bob,
        "alice/echo/0.1.0",
        Some("text/plain"),
        b"still here",
    )
    .await;
    assert_eq!(r["result"], "still here");
    // Invalid artifacts are refused and change nothing.
    for bad in [&b"(module (func"[..], b"\0asm\x01\0\0\0garbage"] {
        let (s, b) = upload(&app, &alice, "alice/echo", "application/wasm", bad).await;
        assert_eq!(
            (s, error_reason(&b).as_str()),
            (400, "invalid_artifact"),
            "{b}"
        );
    }
    let (s, b) = upload(&app, &bob, "alice/echo", "text/plain", FAIL_WAT.as_bytes()).await;
    assert!((400..500).contains(&s), "{b}");
    app.stop().await;
}

/// A tiny upstream model server on loopback.
async fn upstream() -> String {
    use axum::routing::post;
    let app = axum::Router::new()
        .route(
            "/predict",
            post(
                |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    let key = headers
                        .get("x-model-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let kind = headers
                        .get("x-algohub-content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    axum::Json(json!({"length": body.len(), "key": key, "kind": kind}))
                },
            ),
        )
        .route(
            "/broken",
            post(|| async {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"error": {"message": "model not loaded"}})),
                )
            }),
        )
        .route(
            "/slow",
            // Never answers: only the call's deadline ends it.
            post(std::future::pending::<&'static str>),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

pub(crate) async fn calls_through_the_http_runtime(db: Db) {
    let base = upstream().await;
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    create(&app, &alice, "alice", "remote").await;
    let def = json!({"runtime": "http", "url": format!("{base}/predict"), "timeout": 30, "headers": {"X-Model-Key": "s3cret"}});
    let (s, b) = upload(
        &app,
        &alice,
        "alice/remote",
        "application/json",
        def.to_string().as_bytes(),
    )
    .await;
    assert_eq!((s, b["runtime"].as_str()), (200, Some("http")), "{b}");
    assert!(
        !b.to_string().contains("s3cret"),
        "header secrets are not shown back"
    );
    let c = compile(&app, &alice, "alice/remote").await;
    let hash = c["version_info"]["git_hash"].as_str().unwrap().to_string();
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/remote/{hash}"),
        Some("text/plain"),
        b"four",
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["result"],
        json!({"length": 4, "key": "s3cret", "kind": "text"})
    );
    assert_eq!(r["metadata"]["content_type"], "json");
    let (s, g) = app.get("/v1/algorithms/alice/remote", &alice).await;
    assert_eq!(s, 200);
    assert!(!g.to_string().contains("s3cret"));
    // Upstream failures are clean algorithm errors.
    for (path, kind, timeout) in [
        ("broken", "UpstreamError", ""),
        ("slow", "AlgorithmTimeoutError", "?timeout=0.5"),
    ] {
        let h = build_upstream(
            &app,
            &alice,
            "alice/remote",
            json!({"url": format!("{base}/{path}")}),
        )
        .await;
        let (s, r) = call(
            &app,
            &alice,
            &format!("alice/remote/{h}{timeout}"),
            Some("text/plain"),
            b"x",
        )
        .await;
        assert_eq!(
            (s, r["error"]["error_type"].as_str()),
            (200, Some(kind)),
            "{r}"
        );
        if path == "broken" {
            assert_eq!(r["error"]["message"], "model not loaded");
        }
    }
    let h = build_upstream(
        &app,
        &alice,
        "alice/remote",
        json!({"url": "http://127.0.0.1:1/nothing-listens"}),
    )
    .await;
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/remote/{h}"),
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(
        (s, r["error"]["error_type"].as_str()),
        (200, Some("UpstreamError")),
        "{r}"
    );
    for bad in [
        json!({"url": "ftp://x/y"}),
        json!({"url": "http://example.com", "headers": {"Host": "x"}}),
        json!({"nourl": 1}),
    ] {
        let (s, b) = upload(
            &app,
            &alice,
            "alice/remote",
            "application/json",
            bad.to_string().as_bytes(),
        )
        .await;
        assert_eq!(
            (s, error_reason(&b).as_str()),
            (400, "invalid_artifact"),
            "{bad}: {b}"
        );
    }
    app.stop().await;

    // The SSRF guard: by default loopback and private upstreams are refused.
    let guarded = TestApp::with(&db, |c| c.http_upstream_allow_private = false).await;
    let alice = guarded.make_user("alice", false).await;
    create(&guarded, &alice, "alice", "remote").await;
    for url in [
        format!("{base}/predict"),
        "http://localhost:8080/".into(),
        "http://169.254.169.254/latest".into(),
        "http://[::1]/x".into(),
    ] {
        let def = json!({"url": url});
        let (s, b) = upload(
            &guarded,
            &alice,
            "alice/remote",
            "application/json",
            def.to_string().as_bytes(),
        )
        .await;
        assert_eq!(s, 400, "{url}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("internal address"),
            "{b}"
        );
    }
    guarded.stop().await;
}

/// The C example (examples/wordcount.c), built by `.ci/run` with Debian's clang
/// and wasi-libc; `ALGOHUB_EXAMPLE_WASM_DIR` names the directory it was built
/// into. Without the variable when the tests are built, the test is listed as
/// ignored (see `api_tests!`).
pub(crate) async fn wordcount_example_written_in_c(db: Db) {
    let dir = std::env::var("ALGOHUB_EXAMPLE_WASM_DIR")
        .expect("ALGOHUB_EXAMPLE_WASM_DIR names the built C examples");
    let wasm = std::fs::read(std::path::Path::new(&dir).join("wordcount.wasm"))
        .expect("ALGOHUB_EXAMPLE_WASM_DIR is set, so wordcount.wasm must be there");
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    create(&app, &alice, "alice", "wordcount").await;
    let (s, b) = upload(&app, &alice, "alice/wordcount", "application/wasm", &wasm).await;
    assert_eq!(s, 200, "{b}");
    let c = compile(&app, &alice, "alice/wordcount").await;
    let h = c["version_info"]["git_hash"].as_str().unwrap().to_string();
    let text = "the quick brown fox\njumps over the lazy dog\n";
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/wordcount/{h}?stdout=true"),
        Some("text/plain"),
        text.as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["result"],
        json!({"lines": 2, "words": 9, "chars": 44, "longest_word": 5})
    );
    assert_eq!(r["metadata"]["content_type"], "json");
    assert_eq!(r["metadata"]["stdout"], "counted 44 characters\n");
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/wordcount/{h}"),
        Some("application/octet-stream"),
        &[1, 2, 3],
    )
    .await;
    assert_eq!(
        (s, r["error"]["error_type"].as_str()),
        (200, Some("InputError")),
        "{r}"
    );
    app.stop().await;
}
