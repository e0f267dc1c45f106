//! Two nodes on one database: a change made through one governs decisions on
//! the other within one second. Runs on a shared SQLite file always, and on a
//! fresh PostgreSQL database when `ALGOHUB_TEST_DATABASE_URL` is set.

use crate::support::config_for;
use algohub::Server;
use algohub_core::services::CreateUser;
use serde_json::json;
use std::time::{Duration, Instant};

pub(crate) async fn fresh_pg_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("algohub_mn_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database");
    format!("{base}/{name}")
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{}", t, std::process::id())
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> u16 {
    let mut r = client
        .request(method, format!("{base}{path}"))
        .header("Authorization", key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Polls until `path` on `base` answers `want`; returns how long it took.
async fn until(client: &reqwest::Client, base: &str, path: &str, key: &str, want: u16) -> Duration {
    let start = Instant::now();
    loop {
        let s = call(client, base, reqwest::Method::GET, path, key, None).await;
        if s == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{path} never answered {want} (last {s})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn two_nodes_agree(database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path(), database_url);
    config.policy_poll_ms = 200;
    let a = Server::start(&config, None).await.expect("node a");
    let b = Server::start(&config, None).await.expect("node b");
    let (base_a, base_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    let mk = |name: &'static str| CreateUser {
        username: name.into(),
        email: format!("{name}@example.com"),
        ..Default::default()
    };
    a.hub.create_user_unchecked(mk("alice")).await.unwrap();
    a.hub.create_user_unchecked(mk("bob")).await.unwrap();
    let alice = a
        .hub
        .create_user_key_unchecked("alice", "t")
        .await
        .unwrap()
        .1
        .expose()
        .to_string();
    let bob = a
        .hub
        .create_user_key_unchecked("bob", "t")
        .await
        .unwrap()
        .1
        .expose()
        .to_string();
    let client = reqwest::Client::new();
    let org = json!({"org_name": "acme", "org_email": "o@acme.test", "type_id": "basic"});
    assert_eq!(
        call(
            &client,
            &base_a,
            reqwest::Method::POST,
            "/v1/organizations",
            &alice,
            Some(org)
        )
        .await,
        200
    );
    let (_, inv) = {
        let r = client
            .post(format!("{base_a}/v1/organizations/acme/invitations"))
            .header("Authorization", &alice)
            .json(&json!({"username": "bob"}))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<serde_json::Value>().await.unwrap())
    };
    // bob accepts through node B (it must know bob's key, made on node A).
    until(&client, &base_b, "/v1/invitations", &bob, 200).await;
    let id = inv["id"].as_str().unwrap();
    assert_eq!(
        call(
            &client,
            &base_b,
            reqwest::Method::POST,
            &format!("/v1/invitations/{id}/accept"),
            &bob,
            Some(json!({}))
        )
        .await,
        200
    );
    // Node A learns of the membership.
    until(
        &client,
        &base_a,
        "/v1/organizations/acme/members",
        &bob,
        200,
    )
    .await;

    // Removing bob on A governs B within a second.
    assert_eq!(
        call(
            &client,
            &base_a,
            reqwest::Method::DELETE,
            "/v1/organizations/acme/members/bob",
            &alice,
            None
        )
        .await,
        204
    );
    let took = until(
        &client,
        &base_b,
        "/v1/organizations/acme/members",
        &bob,
        403,
    )
    .await;
    eprintln!("membership removal reached node B after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "membership removal reached node B after {took:?}"
    );
    // Revoking a key on A refuses it on B within a second.
    let (k, secret) = a
        .hub
        .create_user_key_unchecked("alice", "spare")
        .await
        .unwrap();
    until(&client, &base_b, "/v1/users/alice", secret.expose(), 200).await;
    let alice_p = a.hub.authenticate_key(&alice).unwrap();
    a.hub.revoke_key(&alice_p, &k.uuid).await.unwrap();
    let took = until(&client, &base_b, "/v1/users/alice", secret.expose(), 401).await;
    eprintln!("key revocation reached node B after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "key revocation reached node B after {took:?}"
    );
    // A version published through A is what B calls within a second, though
    // B had already resolved (and cached) the previous one.
    let settings = json!({"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false});
    let publish = json!({"settings": {"algorithm_callability": "public"}, "version_info": {"version_type": "minor"}});
    for (path, body) in [
        (
            "/v1/algorithms/alice",
            json!({"name": "echo", "details": {"label": "E"}, "settings": settings}),
        ),
        ("/v1/algorithms/alice/echo/compile", json!({})),
        ("/v1/algorithms/alice/echo/versions", publish.clone()),
    ] {
        assert_eq!(
            call(
                &client,
                &base_a,
                reqwest::Method::POST,
                path,
                &alice,
                Some(body)
            )
            .await,
            200,
            "{path}"
        );
    }
    let version_on_b = || async {
        let r: serde_json::Value = client
            .post(format!("{base_b}/v1/algo/alice/echo"))
            .header("Authorization", &bob)
            .json(&json!("hi"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["metadata"]["version"].as_str().unwrap_or("").to_string()
    };
    let start = Instant::now();
    while version_on_b().await != "0.1.0" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "0.1.0 never callable on B"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (path, body) in [
        ("/v1/algorithms/alice/echo/compile", json!({})),
        ("/v1/algorithms/alice/echo/versions", publish),
    ] {
        assert_eq!(
            call(
                &client,
                &base_a,
                reqwest::Method::POST,
                path,
                &alice,
                Some(body)
            )
            .await,
            200,
            "{path}"
        );
    }
    let start = Instant::now();
    while version_on_b().await != "0.2.0" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "0.2.0 never reached node B"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    eprintln!("a new version reached node B after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "a new version reached node B after {took:?}"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn two_nodes_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    two_nodes_agree(format!("sqlite:{}", dir.path().join("shared.db").display())).await;
}

#[tokio::test]
async fn two_nodes_postgres() {
    let Some(url) = std::env::var("ALGOHUB_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("ALGOHUB_TEST_DATABASE_URL not set: PostgreSQL two-node test not run");
        return;
    };
    let db = fresh_pg_database(&url).await;
    two_nodes_agree(db.clone()).await;
    use sqlx::Connection;
    let name = db.rsplit('/').next().unwrap().to_string();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
