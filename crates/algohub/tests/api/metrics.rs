//! `/metrics` as `algohub serve` exposes it: latencies as Prometheus
//! histograms (which add up across nodes), every metric described, and calls
//! and their errors counted per algorithm and per error type.
//!
//! The metrics recorder is process-wide and installed by `serve` only (the
//! in-process test servers have none), so the node is a real `algohub serve`
//! process.

use crate::nodes::{DEADLINE, Node, cli_user, start_node};
use crate::support::Db;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const FAIL_WAT: &str = include_str!("../../../../examples/fail.wat");
const SLOW_WAT: &str = include_str!("../../../../examples/slow.wat");

impl Node {
    /// Sends `body` with its Content-Type; returns the status and JSON answer.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", key)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            path,
            key,
            "application/json",
            body.to_string(),
        )
        .await
    }

    /// Creates `owner/name` with `artifact` (Content-Type, bytes), or the
    /// template echo, builds it and publishes it public.
    async fn publish(&self, key: &str, owner: &str, name: &str, artifact: Option<(&str, String)>) {
        let (s, v) = self
            .post(
                &format!("/v1/algorithms/{owner}"),
                key,
                crate::algorithms::create_body(name),
            )
            .await;
        assert_eq!(s, 200, "create {owner}/{name}: {v}");
        if let Some((ct, bytes)) = artifact {
            let path = format!("/v1/algorithms/{owner}/{name}/artifact");
            let (s, v) = self.send(reqwest::Method::PUT, &path, key, ct, bytes).await;
            assert_eq!(s, 200, "upload {owner}/{name}: {v}");
        }
        let (s, v) = self
            .post(
                &format!("/v1/algorithms/{owner}/{name}/compile"),
                key,
                json!({}),
            )
            .await;
        assert_eq!(s, 200, "compile {owner}/{name}: {v}");
        let publish = json!({"settings": {"algorithm_callability": "public"}, "version_info": {"version_type": "minor"}});
        let (s, v) = self
            .post(
                &format!("/v1/algorithms/{owner}/{name}/versions"),
                key,
                publish,
            )
            .await;
        assert_eq!(s, 200, "publish {owner}/{name}: {v}");
    }

    /// Calls `/v1/algo/{path}` with a text input.
    async fn call(&self, key: &str, path: &str) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            &format!("/v1/algo/{path}"),
            key,
            "text/plain",
            "x",
        )
        .await
    }

    async fn metrics(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    }
}

/// One sample line of the exposition: name, labels (sorted) and value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The sample lines of a Prometheus text exposition (comments skipped).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = line[..name_end].to_string();
            let mut labels = BTreeMap::new();
            let mut rest = &line[name_end..];
            if rest.starts_with('{') {
                // Label values here hold no quotes, so a quote toggles.
                let mut quoted = false;
                let close = rest
                    .char_indices()
                    .find(|&(_, c)| {
                        if c == '"' {
                            quoted = !quoted;
                        }
                        c == '}' && !quoted
                    })
                    .map(|(i, _)| i)
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                for pair in rest[1..close].split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("label {pair:?} in {line}"));
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                rest = &rest[close + 1..];
            }
            let value = rest
                .trim()
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("{e}: value of {line}"));
            (name, labels, value)
        })
        .collect()
}

/// The samples named `name`, by their labels as `k=v,...` (sorted).
fn series(samples: &[Sample], name: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, labels, v)| {
            let key = labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            (key, *v)
        })
        .collect()
}

fn expect(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Calls that answer, fail (the algorithm's own error, a timeout) and are
/// refused (over the work limit, no such algorithm) are counted per
/// algorithm, outcome and error type; every latency is a histogram with
/// buckets (no summary quantiles), and every metric has a description.
pub(crate) async fn calls_and_errors_are_counted_per_algorithm_with_histograms(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url().await;
    let key = cli_user(dir.path(), &url, "ops", false);
    // One call at a time per account: a second one is refused.
    let node = start_node(dir.path(), &url, &[("ALGOHUB_DEFAULT_WORK_LIMIT", "1")]).await;
    let (upstream, gauge) = crate::governance::gauged_upstream().await;
    node.publish(&key, "ops", "echo", None).await;
    node.publish(&key, "ops", "fail", Some(("text/plain", FAIL_WAT.into())))
        .await;
    node.publish(&key, "ops", "slow", Some(("text/plain", SLOW_WAT.into())))
        .await;
    let gate = json!({"runtime": "http", "url": format!("{upstream}/gate"), "timeout": 300});
    node.publish(
        &key,
        "ops",
        "gate",
        Some(("application/json", gate.to_string())),
    )
    .await;

    for _ in 0..2 {
        let (s, r) = node.call(&key, "ops/echo").await;
        assert_eq!((s, r["result"].as_str()), (200, Some("x")), "{r}");
    }
    // The algorithm's own error type (ValueError) is its choice, so the
    // metric counts it as an AlgorithmError (a bounded set of labels).
    let (s, r) = node.call(&key, "ops/fail").await;
    assert_eq!(
        (s, r["error"]["error_type"].as_str()),
        (200, Some("ValueError")),
        "{r}"
    );
    let (s, r) = node.call(&key, "ops/slow?timeout=0.3").await;
    assert_eq!(
        (s, r["error"]["error_type"].as_str()),
        (200, Some("AlgorithmTimeoutError")),
        "{r}"
    );
    // While a call holds the account's only slot, another is refused.
    let held = {
        let (base, key) = (node.base.clone(), key.clone());
        tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/v1/algo/ops/gate"))
                .header("Authorization", key)
                .header("Content-Type", "text/plain")
                .body("x")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        })
    };
    gauge.until_running(1).await;
    let (s, r) = node.call(&key, "ops/echo").await;
    assert_eq!(
        (s, r["error"]["reason"].as_str()),
        (429, Some("limit_exceeded")),
        "{r}"
    );
    gauge.open_gate();
    let (s, r) = tokio::time::timeout(DEADLINE, held)
        .await
        .expect("the held call was answered")
        .unwrap();
    assert_eq!(
        (s, r["result"]["gated"].as_bool()),
        (200, Some(true)),
        "{r}"
    );
    // A refusal before the call names an algorithm counts under none (the
    // request's text never becomes a label).
    let (s, r) = node.call(&key, "ops/missing").await;
    assert_eq!(
        (s, r["error"]["reason"].as_str()),
        (404, Some("algorithm_not_found")),
        "{r}"
    );

    let text = node.metrics().await;
    let all = samples(&text);
    assert_eq!(
        series(&all, "algohub_calls_total"),
        expect(&[
            ("algorithm=,outcome=refused", 1.0),
            ("algorithm=ops/echo,outcome=ok", 2.0),
            ("algorithm=ops/echo,outcome=refused", 1.0),
            ("algorithm=ops/fail,outcome=error", 1.0),
            ("algorithm=ops/gate,outcome=ok", 1.0),
            ("algorithm=ops/slow,outcome=error", 1.0),
        ]),
        "{text}"
    );
    assert_eq!(
        series(&all, "algohub_call_errors_total"),
        expect(&[
            ("algorithm=,error_type=algorithm_not_found", 1.0),
            ("algorithm=ops/echo,error_type=limit_exceeded", 1.0),
            ("algorithm=ops/fail,error_type=AlgorithmError", 1.0),
            ("algorithm=ops/slow,error_type=AlgorithmTimeoutError", 1.0),
        ]),
        "{text}"
    );
    // Every call that ran has its duration (refusals have none).
    assert_eq!(
        series(&all, "algohub_call_duration_seconds_count"),
        expect(&[
            ("algorithm=ops/echo", 2.0),
            ("algorithm=ops/fail", 1.0),
            ("algorithm=ops/gate", 1.0),
            ("algorithm=ops/slow", 1.0),
        ]),
        "{text}"
    );
    let slow_sum = series(&all, "algohub_call_duration_seconds_sum")["algorithm=ops/slow"];
    assert!(
        slow_sum >= 0.3,
        "the timed-out call ran 0.3 s at least: {text}"
    );
    // Buckets up to the longest calls (300 s), then +Inf, which counts all.
    let buckets = series(&all, "algohub_call_duration_seconds_bucket");
    assert_eq!(
        buckets.get("algorithm=ops/echo,le=300"),
        Some(&2.0),
        "{text}"
    );
    assert_eq!(
        buckets.get("algorithm=ops/echo,le=+Inf"),
        Some(&2.0),
        "{text}"
    );
    assert_eq!(
        buckets.get("algorithm=ops/slow,le=0.25"),
        Some(&0.0),
        "{text}"
    );

    // Request latencies: histogram buckets, no summary quantiles anywhere.
    let requests = series(&all, "algohub_http_request_duration_seconds_bucket");
    let call_route = "method=POST,route=/v1/algo/{owner}/{algo}";
    for le in ["0.0005", "1", "60", "300", "+Inf"] {
        assert!(
            requests.contains_key(&format!("le={le},{call_route}")),
            "a le={le} bucket for calls: {text}"
        );
    }
    assert_eq!(
        requests[&format!("le=+Inf,{call_route}")],
        7.0,
        "every call request: {text}"
    );
    assert!(
        text.contains("# TYPE algohub_http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(!text.contains("quantile="), "no summaries: {text}");

    // Every metric shown is described, and those of this test are shown.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line["# TYPE ".len()..].split(' ').next().unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has a description: {text}"
        );
    }
    for name in [
        "algohub_http_requests_total",
        "algohub_http_request_duration_seconds",
        "algohub_calls_total",
        "algohub_call_errors_total",
        "algohub_call_duration_seconds",
        "algohub_policy_decisions_total",
        "algohub_policy_index_users",
        "algohub_policy_index_keys",
        "algohub_policy_seq",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}: {text}");
    }
    // What was there stays.
    assert!(
        series(&all, "algohub_policy_seq").contains_key(""),
        "{text}"
    );
    let requests = series(&all, "algohub_http_requests_total");
    assert_eq!(
        requests.get("method=POST,route=/v1/algo/{owner}/{algo},status=200"),
        Some(&5.0),
        "{text}"
    );
}
