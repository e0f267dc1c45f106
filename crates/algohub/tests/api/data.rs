//! The data API: files, directories, ACLs, paging, `.my`, both prefixes, and
//! the paths that try to escape.

use crate::support::{Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::{Value, json};

async fn raw(app: &TestApp, m: Method, path: &str, key: &str, body: &[u8]) -> (u16, Value) {
    let (s, _, b) = app.send_raw(m, path, key, None, body.to_vec()).await;
    (
        s,
        serde_json::from_slice(&b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into_owned())),
    )
}

/// Sends a PUT exactly as written (no client-side path normalization) and
/// returns the status code.
async fn raw_socket_put(app: &TestApp, path: &str, key: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {key}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

pub(crate) async fn files_directories_and_acls(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    // The root lists the caller first (Client.username()).
    let (s, r) = app.get("/v1/data/", &alice).await;
    assert_eq!(
        (s, r["folders"][0]["name"].as_str()),
        (200, Some("alice")),
        "{r}"
    );
    // Create a collection (exactly 200), default ACL my_algos.
    let (s, r) = app
        .post("/v1/data/.my", &alice, json!({"name": "coll"}))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["result"], "data://.my/coll");
    let (s, r) = app
        .post("/v1/data/.my", &alice, json!({"name": "coll"}))
        .await;
    assert_eq!((s, error_reason(&r).as_str()), (409, "data_conflict"));
    let (s, r) = app
        .post("/v1/data/.my", &alice, json!({"name": "bad name"}))
        .await;
    assert_eq!(s, 400, "{r}");
    let (_, r) = app.get("/v1/data/.my/coll?acl=true", &alice).await;
    assert_eq!(r["acl"], json!({"read": ["algo://.my/*"]}));

    // Files: put (verbatim), head, get, replace.
    let (s, r) = raw(
        &app,
        Method::PUT,
        "/v1/data/.my/coll/a.txt",
        &alice,
        b"hello",
    )
    .await;
    assert_eq!(
        (s, r["result"].as_str()),
        (200, Some("data://.my/coll/a.txt")),
        "{r}"
    );
    let (s, ct, b) = app
        .send_raw(
            Method::GET,
            "/v1/data/alice/coll/a.txt",
            &alice,
            None,
            vec![],
        )
        .await;
    assert_eq!((s, b.as_slice()), (200, &b"hello"[..]));
    assert_eq!(ct, "application/octet-stream");
    raw(
        &app,
        Method::PUT,
        "/v1/data/.my/coll/a.txt",
        &alice,
        &[0, 255, 1],
    )
    .await;
    let (_, _, b) = app
        .send_raw(Method::GET, "/v1/data/.my/coll/a.txt", &alice, None, vec![])
        .await;
    assert_eq!(b, [0, 255, 1]);
    let (s, _, _) = app
        .send_raw(
            Method::HEAD,
            "/v1/data/.my/coll/a.txt",
            &alice,
            None,
            vec![],
        )
        .await;
    assert_eq!(s, 200);
    let resp = app
        .client
        .head(format!("{}/v1/data/.my/coll/missing.txt", app.base))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(
        resp.headers()
            .get("x-error-message")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("does not exist")
    );
    // The connector prefix, with %2F inside one segment.
    let (s, _, b) = app
        .send_raw(
            Method::GET,
            "/v1/connector/data/alice%2Fcoll%2Fa.txt",
            &alice,
            Some("application/json"),
            vec![],
        )
        .await;
    assert_eq!((s, b.as_slice()), (200, &[0, 255, 1][..]));

    // Subdirectories and listing with exact last_modified format; paging.
    let (s, r) = app
        .post("/v1/data/.my/coll", &alice, json!({"name": "sub"}))
        .await;
    assert_eq!(s, 200, "{r}");
    for i in 0..3 {
        raw(
            &app,
            Method::PUT,
            &format!("/v1/data/.my/coll/sub/f{i}"),
            &alice,
            b"x",
        )
        .await;
    }
    let (s, l) = app.get("/v1/data/.my/coll/", &alice).await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["folders"], json!([{"name": "sub"}]));
    let f = &l["files"][0];
    assert_eq!(
        (f["filename"].as_str(), f["size"].as_u64()),
        (Some("a.txt"), Some(3))
    );
    let lm = f["last_modified"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(lm, "%Y-%m-%dT%H:%M:%S%.3fZ").is_ok()
            && lm.len() == 24,
        "{lm}"
    );
    assert!(l["marker"].is_null());
    let (_, l) = app.get("/v1/data/.my/coll/sub?marker=f0", &alice).await;
    assert_eq!(
        l["files"].as_array().unwrap().len(),
        2,
        "continues after the marker: {l}"
    );

    // Others: private data does not exist for bob; public data is readable, not writable.
    let (s, _) = app.get("/v1/data/alice/coll/a.txt", &bob).await;
    assert_eq!(s, 404);
    let (s, _) = raw(&app, Method::PUT, "/v1/data/alice/coll/b.txt", &bob, b"x").await;
    assert_eq!(s, 404);
    let (s, r) = app
        .call(
            Method::PATCH,
            "/v1/data/.my/coll",
            Some(&alice),
            Some(json!({"acl": {"read": ["user://*"]}})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, _, b) = app
        .send_raw(Method::GET, "/v1/data/alice/coll/a.txt", &bob, None, vec![])
        .await;
    assert_eq!((s, b.as_slice()), (200, &[0, 255, 1][..]));
    let (s, _) = raw(&app, Method::PUT, "/v1/data/alice/coll/b.txt", &bob, b"x").await;
    assert_eq!(s, 403);
    let (s, _) = app.delete("/v1/data/alice/coll/a.txt", &bob).await;
    assert_eq!(s, 403);
    let (_, l) = app.get("/v1/data/alice", &bob).await;
    assert_eq!(l["folders"], json!([{"name": "coll"}]));
    let (s, r) = app
        .call(
            Method::PATCH,
            "/v1/data/.my/coll",
            Some(&alice),
            Some(json!({"acl": {"read": ["everyone"]}})),
        )
        .await;
    assert_eq!(s, 400, "{r}");
    let (s, _) = app
        .call(
            Method::PATCH,
            "/v1/data/.my/coll",
            Some(&alice),
            Some(json!({"acl": {"read": []}})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.get("/v1/data/alice/coll/a.txt", &bob).await;
    assert_eq!(s, 404);

    // Escapes and reserved names are refused and change nothing. (Dot segments
    // go over a raw socket: HTTP client libraries resolve them before sending.)
    for p in [
        "/v1/data/.my/coll/%2E%2E/%2E%2E/etc/passwd",
        "/v1/data/.my/coll/../../x",
        "/v1/data/.my/coll/%2e%2e%2fx",
    ] {
        assert_eq!(raw_socket_put(&app, p, &alice).await, 400, "{p}");
    }
    for p in [
        "/v1/connector/data/.my%2Fcoll%2F..%2Fx",
        "/v1/data/.my/coll/.algohub-acl",
        "/v1/data/.my/coll/a%5Cb",
    ] {
        let (s, r) = raw(&app, Method::PUT, p, &alice, b"evil").await;
        assert_eq!(s, 400, "{p}: {r}");
        let (s, _) = app.get(p, &alice).await;
        assert!(s == 400 || s == 404, "{p}: {s}");
    }
    let (s, r) = raw(&app, Method::PUT, "/v1/data/.my/nocoll/x", &alice, b"x").await;
    assert_eq!((s, error_reason(&r).as_str()), (404, "data_not_found"));
    let (s, r) = raw(&app, Method::PUT, "/v1/data/.my/toplevel", &alice, b"x").await;
    assert_eq!(s, 400, "{r}");

    // Deletes: a file; a non-empty directory needs force.
    let (s, r) = app.delete("/v1/data/.my/coll/a.txt", &alice).await;
    assert_eq!((s, r["result"]["deleted"].as_u64()), (200, Some(1)));
    let (s, r) = app.delete("/v1/data/.my/coll", &alice).await;
    assert_eq!(s, 409, "{r}");
    assert_eq!(r["error"]["deleted"], 0);
    let (s, r) = app.delete("/v1/data/.my/coll?force=True", &alice).await;
    assert_eq!((s, r["result"]["deleted"].as_u64()), (200, Some(3)), "{r}");
    let (s, _) = app.get("/v1/data/.my/coll", &alice).await;
    assert_eq!(s, 404);
    app.stop().await;
}

pub(crate) async fn org_collections_follow_roles_and_key_scopes(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let dave = app.make_user("dave", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "dave", "viewer").await;
    let (s, r) = app
        .post(
            "/v1/data/acme",
            &alice,
            json!({"name": "shared", "acl": {"read": []}}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    raw(&app, Method::PUT, "/v1/data/acme/shared/x", &alice, b"1").await;
    let (s, _, b) = app
        .send_raw(Method::GET, "/v1/data/acme/shared/x", &dave, None, vec![])
        .await;
    assert_eq!((s, b.as_slice()), (200, &b"1"[..]), "viewers read org data");
    let (s, _) = raw(&app, Method::PUT, "/v1/data/acme/shared/y", &dave, b"2").await;
    assert_eq!(s, 403, "viewers do not write");
    // A key without data scopes is refused.
    let (s, k) = app
        .post(
            "/v1/users/alice/keys",
            &alice,
            json!({"key_label": "calls", "scopes": ["algo_call"]}),
        )
        .await;
    assert_eq!(s, 200, "{k}");
    let calls_only = k["api_key"].as_str().unwrap().to_string();
    let (s, _) = app.get("/v1/data/acme/shared/x", &calls_only).await;
    assert!(s == 403 || s == 404, "{s}");
    app.stop().await;
}

/// A file name has one spelling: `é` written as one character (NFC) or as
/// `e` and a combining accent (NFD) names the same file, which lists under
/// its NFC name; names with bidirectional controls (which display as other
/// names) are refused.
pub(crate) async fn file_names_have_one_spelling(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let (s, r) = app
        .post("/v1/data/.my", &alice, json!({"name": "coll"}))
        .await;
    assert_eq!(s, 200, "{r}");
    // caf + e + U+0301 (NFD), percent-encoded as a client sends it.
    let nfd = "/v1/data/.my/coll/cafe%CC%81.txt";
    let nfc = "/v1/data/.my/coll/caf%C3%A9.txt";
    let (s, r) = raw(&app, Method::PUT, nfd, &alice, b"first").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["result"], "data://.my/coll/caf\u{e9}.txt", "{r}");
    let (s, r) = raw(&app, Method::PUT, nfc, &alice, b"second").await;
    assert_eq!(s, 200, "{r}");
    let (s, _, body) = app
        .send_raw(Method::GET, nfd, &alice, None, Vec::new())
        .await;
    assert_eq!((s, body.as_slice()), (200, &b"second"[..]));
    let (_, listing) = app.get("/v1/data/.my/coll", &alice).await;
    let names: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["filename"].as_str())
        .collect();
    assert_eq!(names, ["caf\u{e9}.txt"], "{listing}");
    // U+202E (right-to-left override) would show `txt.exe` as `exe.txt`.
    for bidi in ["%E2%80%AE", "%E2%81%A6", "%E2%80%8F", "%D8%9C"] {
        let (s, r) = raw(
            &app,
            Method::PUT,
            &format!("/v1/data/.my/coll/a{bidi}txt.exe"),
            &alice,
            b"x",
        )
        .await;
        assert_eq!(
            (s, error_reason(&r).as_str()),
            (400, "invalid_path"),
            "{bidi}: {r}"
        );
        assert!(r.to_string().contains("bidirectional"), "{r}");
    }
    app.stop().await;
}
