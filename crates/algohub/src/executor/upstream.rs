//! The `http` runtime: an algorithm whose artifact is an upstream definition
//! (`{"url", "timeout", "headers"}`); a call is forwarded there as one POST.
//!
//! Design: the definition is validated and normalized when it is uploaded (so
//! its digest is stable); the upstream's answer is mapped onto the call
//! envelope, and every failure of the upstream (refused connection, timeout,
//! non-2xx, oversized or malformed answer) becomes an algorithm error, never a
//! server error. The SSRF guard lives in the DNS resolver the client uses, so
//! the address that is checked is the address that is connected to (no
//! rebinding between check and use); literal addresses are checked up front;
//! redirects are not followed and proxies are not used.

use algohub_core::services::{ContentKind, ExecError, ExecInput, ExecOutput, RunContext};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Largest answer accepted from an upstream.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Longest timeout a definition may set, in seconds (as for calls).
const MAX_TIMEOUT_SECS: f64 = 3000.0;
/// Request headers a definition may not set (the hub sets them).
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "x-algohub-content-type",
    "x-algohub-request-id",
    API_KEY_HEADER,
];
/// The header that carries the call token (the upstream's API key for the
/// data API while the call runs).
pub const API_KEY_HEADER: &str = "x-algohub-api-key";

/// An upstream definition as uploaded (`runtime` is optional, `http` if given).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    runtime: Option<String>,
    url: String,
    /// Seconds; the call's own timeout applies when it is shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<f64>,
    /// Sent with every call (e.g. the upstream's own credentials). They are kept
    /// with the artifact and never shown back by the API.
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Whether an address belongs to this host or a private network (the SSRF guard).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            let seg = v6.segments();
            // IPv4 carried inside IPv6: NAT64 (64:ff9b::/96), IPv4-compatible (::/96).
            let embedded = || {
                std::net::Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                )
            };
            if (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4]) || seg[..6] == [0; 6] {
                return v6.is_unspecified()
                    || v6.is_loopback()
                    || is_internal(IpAddr::V4(embedded()));
            }
            // 6to4 (2002::/16) carries an IPv4 address in bits 16..48.
            if first == 0x2002 {
                let v4 = std::net::Ipv4Addr::new(
                    (seg[1] >> 8) as u8,
                    seg[1] as u8,
                    (seg[2] >> 8) as u8,
                    seg[2] as u8,
                );
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// The refusal; it does not say which address a name resolved to, nor
/// whether the name resolved at all (a name that is not known gets the same
/// words), so it cannot be used to map internal names.
fn refused(host: &str) -> String {
    format!(
        "the upstream {host} cannot be used: it is at an internal address, or its name is \
         not known; this cluster does not allow upstreams on loopback or private addresses \
         (http_upstream_allow_private)"
    )
}

/// A literal internal address in the url's host, if any (names are checked by
/// the resolver when they are resolved).
fn literal_internal(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    is_internal(ip).then_some(ip)
}

/// Resolves names and refuses internal addresses unless allowed.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found.collect(),
                // Told apart from an internal address only where those are
                // allowed anyway.
                Err(_) if !allow_private => return Err(refused(&host).into()),
                Err(e) => return Err(e.into()),
            };
            if !allow_private && addrs.iter().any(|a| is_internal(a.ip())) {
                return Err(refused(&host).into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

pub struct Upstream {
    client: reqwest::Client,
    allow_private: bool,
}

impl Upstream {
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver { allow_private })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the upstream HTTP client: {e}"))?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// Validates a definition and returns its normalized JSON.
    pub fn prepare(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let def: Definition = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "an http artifact is JSON {{\"runtime\": \"http\", \"url\": \"http://...\", \
                 \"timeout\": SECONDS, \"headers\": {{...}}}}: {e}"
            )
        })?;
        if def.runtime.as_deref().is_some_and(|r| r != "http") {
            return Err(format!(
                "runtime {:?} is not an http definition; upload wasm as a binary or WAT text",
                def.runtime.as_deref().unwrap_or_default()
            ));
        }
        let url = reqwest::Url::parse(&def.url).map_err(|e| format!("invalid url: {e}"))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(
                    "https upstreams are not supported by this build yet: use http:// (e.g. \
                     a cluster-internal service address, with http_upstream_allow_private)"
                        .into(),
                );
            }
            other => return Err(format!("unsupported url scheme {other:?}: use http://")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("put upstream credentials in headers, not in the url".into());
        }
        let host = url.host_str().ok_or("the url has no host")?.to_string();
        let local_name = host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost");
        if !self.allow_private && (literal_internal(&url).is_some() || local_name) {
            return Err(refused(&host));
        }
        if let Some(t) = def.timeout
            && !(t > 0.0 && t <= MAX_TIMEOUT_SECS)
        {
            return Err(format!(
                "invalid timeout {t}: use seconds above 0, at most {MAX_TIMEOUT_SECS}"
            ));
        }
        for (name, value) in &def.headers {
            let parsed = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            if RESERVED_HEADERS.contains(&parsed.as_str()) {
                return Err(format!(
                    "header {name:?} is set by the hub and cannot be given"
                ));
            }
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name:?}"))?;
        }
        let normal = Definition {
            runtime: Some("http".into()),
            url: url.to_string(),
            timeout: def.timeout,
            headers: def
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        };
        serde_json::to_vec(&normal).map_err(|e| format!("cannot store the definition: {e}"))
    }

    /// Forwards one call.
    pub async fn call(
        &self,
        definition: &[u8],
        input: ExecInput,
        run: &RunContext<'_>,
    ) -> Result<ExecOutput, ExecError> {
        let timeout = run.timeout;
        let def: Definition = serde_json::from_slice(definition)
            .map_err(|e| ExecError::Internal(format!("stored http definition unreadable: {e}")))?;
        let timeout = match def.timeout {
            Some(t) => timeout.min(Duration::from_secs_f64(t)),
            None => timeout,
        };
        // Literal addresses never reach the resolver: check them on every call
        // too (the definition may predate this node's setting).
        if !self.allow_private
            && let Ok(url) = reqwest::Url::parse(&def.url)
            && literal_internal(&url).is_some()
        {
            return Err(ExecError::Upstream(refused(
                url.host_str().unwrap_or_default(),
            )));
        }
        let mut req = self
            .client
            .post(&def.url)
            .timeout(timeout)
            .header("x-algohub-content-type", input.content_type.as_str())
            .header("x-algohub-request-id", run.request_id);
        if let Some(key) = run.api_key
            && let Ok(mut value) = reqwest::header::HeaderValue::from_str(key)
        {
            value.set_sensitive(true);
            req = req.header(API_KEY_HEADER, value);
        }
        for (k, v) in &def.headers {
            req = req.header(k, v);
        }
        req = match input.content_type {
            ContentKind::Void => req,
            ContentKind::Text => req.header("content-type", "text/plain; charset=utf-8"),
            ContentKind::Json => req.header("content-type", "application/json"),
            ContentKind::Binary => req.header("content-type", "application/octet-stream"),
        };
        let started = Instant::now();
        let sent = if input.content_type == ContentKind::Void {
            req.send().await
        } else {
            req.body(input.data).send().await
        };
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                ExecError::Timeout {
                    after: timeout,
                    compute_units: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            } else {
                // The resolver's refusal (SSRF guard) is in the source chain.
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                ExecError::Upstream(msg)
            }
        };
        let mut resp = sent.map_err(transport)?;
        let status = resp.status();
        let declared = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ExecError::Upstream(format!(
                    "the upstream's answer is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let compute_units = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !status.is_success() {
            return Err(upstream_error(status, &body, compute_units));
        }
        let content_type = match declared.as_deref() {
            _ if body.is_empty() => ContentKind::Void,
            Some("application/json") => ContentKind::Json,
            Some(t) if t.starts_with("text/") => ContentKind::Text,
            _ => ContentKind::Binary,
        };
        let malformed = |what: &str| ExecError::Upstream(format!("the upstream's answer {what}"));
        match content_type {
            ContentKind::Json => {
                if let Err(why) = algohub_runtime::check_json_result(&body) {
                    return Err(malformed(&format!("says application/json but its {why}")));
                }
            }
            ContentKind::Text if std::str::from_utf8(&body).is_err() => {
                return Err(malformed("says text but is not valid UTF-8"));
            }
            _ => {}
        }
        Ok(ExecOutput {
            content_type,
            data: body,
            stdout: String::new(),
            compute_units,
        })
    }
}

/// A non-2xx answer: the message is the upstream's `error.message` (or
/// `message`), else the start of its body.
fn upstream_error(status: reqwest::StatusCode, body: &[u8], compute_units: u64) -> ExecError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|m| m.as_str()).map(str::to_owned);
    let from_json = parsed.as_ref().and_then(|v| {
        v.get("error")
            .and_then(|e| field(e, "message").or_else(|| e.as_str().map(str::to_owned)))
            .or_else(|| field(v, "message"))
    });
    let message = from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(500).collect();
        if text.is_empty() {
            format!("the upstream answered {status}")
        } else {
            format!("the upstream answered {status}: {text}")
        }
    });
    ExecError::Algorithm {
        message,
        error_type: "UpstreamError".into(),
        stacktrace: String::new(),
        stdout: String::new(),
        compute_units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::127.0.0.1",
            "198.18.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn definitions_are_checked_and_normalized() {
        let guard = Upstream::new(false).unwrap();
        for bad in [
            r#"{"url": "http://127.0.0.1:9/x"}"#,
            r#"{"url": "http://localhost/x"}"#,
            r#"{"url": "http://[::1]/x"}"#,
            r#"{"url": "http://169.254.169.254/latest"}"#,
            r#"{"url": "ftp://example.com/x"}"#,
            r#"{"url": "https://example.com/x"}"#,
            r#"{"url": "http://u:p@example.com/x"}"#,
            r#"{"url": "http://example.com/x", "timeout": 0}"#,
            r#"{"url": "http://example.com/x", "headers": {"Host": "a"}}"#,
            r#"{"url": "http://example.com/x", "extra": 1}"#,
            r#"{"runtime": "wasm", "url": "http://example.com/x"}"#,
            "not json",
        ] {
            assert!(guard.prepare(bad.as_bytes()).is_err(), "{bad}");
        }
        let a = guard
            .prepare(br#"{"url": "http://example.com/m", "headers": {"X-Key": "s"}}"#)
            .unwrap();
        let b = guard
            .prepare(
                br#"{"headers": {"x-key": "s"}, "runtime": "http", "url": "http://example.com/m"}"#,
            )
            .unwrap();
        assert_eq!(a, b, "equivalent definitions normalize to the same bytes");
        let open = Upstream::new(true).unwrap();
        assert!(open.prepare(br#"{"url": "http://127.0.0.1:9/x"}"#).is_ok());
    }
}
