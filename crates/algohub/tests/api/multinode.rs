//! Two nodes on one database: a change made through one governs decisions on
//! the other after their next policy poll. Runs on a shared SQLite file and on
//! a shared PostgreSQL database.
//!
//! How soon is not asserted (a shared machine may stall any process for
//! seconds; propagation time is for benchmarks): each check polls until the
//! other node answers as the change says, within a generous `DEADLINE`.

use crate::support::{Db, config_for};
use algohub::Server;
use algohub_core::services::CreateUser;
use serde_json::json;
use std::time::{Duration, Instant};

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

/// How long a node may take to see another's change before the test fails:
/// far beyond any poll interval, so only a change that never arrives fails.
const DEADLINE: Duration = Duration::from_secs(30);
/// Between two polls.
const POLL: Duration = Duration::from_millis(20);

/// Polls until `path` on `base` answers `want` (fails after `DEADLINE`);
/// returns how long it took (for the log only).
async fn until(client: &reqwest::Client, base: &str, path: &str, key: &str, want: u16) -> Duration {
    let start = Instant::now();
    loop {
        let s = call(client, base, reqwest::Method::GET, path, key, None).await;
        if s == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{path} never answered {want} within {DEADLINE:?} (last {s})"
        );
        tokio::time::sleep(POLL).await;
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
    a.hub
        .accounts
        .create_user_unchecked(&algohub_core::audit::AuditContext::cli(), mk("alice"))
        .await
        .unwrap();
    a.hub
        .accounts
        .create_user_unchecked(&algohub_core::audit::AuditContext::cli(), mk("bob"))
        .await
        .unwrap();
    let alice = a
        .hub
        .keys
        .create_user_key_unchecked("alice", "t")
        .await
        .unwrap()
        .1
        .expose()
        .to_string();
    let bob = a
        .hub
        .keys
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

    // Removing bob on A governs B.
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
    // Revoking a key on A refuses it on B.
    let (k, secret) = a
        .hub
        .keys
        .create_user_key_unchecked("alice", "spare")
        .await
        .unwrap();
    until(&client, &base_b, "/v1/users/alice", secret.expose(), 200).await;
    let alice_p =
        algohub_core::RequestCtx::cli(a.hub.authenticator.authenticate_key(&alice).unwrap());
    a.hub.keys.revoke_key(&alice_p, &k.uuid).await.unwrap();
    let took = until(&client, &base_b, "/v1/users/alice", secret.expose(), 401).await;
    eprintln!("key revocation reached node B after {took:?}");
    // A version published through A is what B calls, though B had already
    // resolved (and cached) the previous one.
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
            start.elapsed() < DEADLINE,
            "0.1.0 not callable on B within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
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
    loop {
        let version = version_on_b().await;
        if version == "0.2.0" {
            break;
        }
        assert_eq!(version, "0.1.0", "B calls the previous version meanwhile");
        assert!(
            start.elapsed() < DEADLINE,
            "0.2.0 did not reach node B within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    eprintln!("a new version reached node B after {:?}", start.elapsed());
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn two_nodes(db: Db) {
    two_nodes_agree(db.fresh_url().await).await;
}
