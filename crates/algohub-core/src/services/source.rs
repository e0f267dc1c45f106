//! Algorithm source: the artifact a version or a build was made from, for
//! those who may see it (the seed's super powers: "algorithm settings and
//! source code for private and closed-source algorithms").
//!
//! Who, decided by the policy as `data.rs` decides collection reads: first
//! `algo.source.read` (rights on the algorithm: its owner, org admins and
//! contributors, a team grant of write or more; a cluster admin only with super
//! powers, which audits the read as `super_powers.read`); then, only where the
//! algorithm's `source_visibility` is `open`, `algo.read` (anyone who may read
//! the algorithm). The algorithm's current setting governs every version and
//! build: closing the source closes it for all of them. A missing setting
//! counts as closed.
//!
//! What: a wasm module as stored (WAT uploads are kept compiled to a binary),
//! or printed as WAT text on request; an http definition with its secrets
//! redacted, as every other route keeps them: header values (the upstream's
//! credentials), the URL's query values, user info and fragment, and any field
//! this code does not know.

use super::AlgorithmService;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{Algorithm, RuntimeKind, SemVer};
use crate::policy::{Action, Resource};
use crate::store::StoreError;
use serde_json::{Map, Value};

/// What replaces a secret in a shown http definition.
pub const REDACTED: &str = "[redacted]";

/// The form a wasm module is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceForm {
    /// The artifact as stored (a wasm binary, or an http definition).
    Stored,
    /// A wasm module printed as WAT text (`?format=wat`).
    Wat,
}

impl SourceForm {
    /// The `format` query parameter: absent (as stored) or `wat`.
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        match raw {
            None | Some("") => Ok(Self::Stored),
            Some(f) if f.eq_ignore_ascii_case("wat") => Ok(Self::Wat),
            Some(other) => Err(Error::invalid(format!(
                "unknown format {other:?}: leave it out for the artifact as stored, or use wat \
                 for a wasm module as text"
            ))),
        }
    }
}

/// An algorithm's source as the source routes answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmSource {
    pub kind: RuntimeKind,
    /// `application/wasm`, `text/plain; charset=utf-8` (WAT) or
    /// `application/json` (an http definition).
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    /// Whether secrets were taken out (an http definition's).
    pub redacted: bool,
    /// The version hash of the build (the first 40 hex digits of the
    /// artifact's SHA-256).
    pub hash: String,
}

/// Whether an algorithm's settings open its source to its readers.
pub fn source_is_open(settings: &crate::model::AlgorithmSettings) -> bool {
    settings.source_is_open()
}

fn parse_semver(raw: &str) -> Option<SemVer> {
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    match raw.split('.').collect::<Vec<_>>().as_slice() {
        [ma, mi, pa] => Some(SemVer {
            major: num(ma)?,
            minor: num(mi)?,
            patch: num(pa)?,
        }),
        _ => None,
    }
}

fn is_hash(raw: &str) -> bool {
    raw.len() == 40 && raw.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A URL with its user info, query values and fragment redacted, and whether
/// anything was.
fn redact_url(url: &str) -> (String, bool) {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, _)) => (rest, true),
        None => (url, false),
    };
    let (base, query) = match rest.split_once('?') {
        Some((base, q)) => (base, Some(q)),
        None => (rest, None),
    };
    let mut redacted = fragment;
    let mut out = match base.split_once("://") {
        Some((scheme, after)) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => {
                    redacted = true;
                    format!("{scheme}://{REDACTED}@{host}{path}")
                }
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}={REDACTED}"),
                None => REDACTED.to_string(),
            })
            .collect();
        redacted |= !pairs.is_empty();
        if !pairs.is_empty() {
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
    }
    if fragment {
        out.push('#');
        out.push_str(REDACTED);
    }
    (out, redacted)
}

/// A stored http definition as it may be shown: `runtime` and `timeout` as
/// they are, the URL redacted (`redact_url`), every header's value replaced
/// (names kept), and any other field replaced whole. An unreadable definition
/// is not shown at all.
pub(crate) fn redact_http_definition(bytes: &[u8]) -> Result<(Vec<u8>, bool)> {
    let Ok(Value::Object(def)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(Error::internal(
            "the stored http definition is unreadable, so it is not shown",
        ));
    };
    let mut redacted = false;
    let mut shown = Map::new();
    for (field, value) in def {
        let value = match (field.as_str(), value) {
            ("runtime", v @ Value::String(_))
            | ("timeout", v @ (Value::Number(_) | Value::Null)) => v,
            ("url", Value::String(url)) => {
                let (url, r) = redact_url(&url);
                redacted |= r;
                Value::String(url)
            }
            ("headers", Value::Object(headers)) => {
                redacted |= !headers.is_empty();
                Value::Object(
                    headers
                        .into_iter()
                        .map(|(name, _)| (name, Value::from(REDACTED)))
                        .collect(),
                )
            }
            _ => {
                redacted = true;
                Value::from(REDACTED)
            }
        };
        shown.insert(field, value);
    }
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(shown))
        .map_err(|e| Error::internal(format!("cannot show the http definition: {e}")))?;
    bytes.push(b'\n');
    Ok((bytes, redacted))
}

impl AlgorithmService {
    /// May the caller read this algorithm's source? `algo.source.read` first
    /// (so that a super-powers read is audited as a source read), then, for
    /// open source only, `algo.read`.
    fn authorize_source_read(&self, ctx: &RequestCtx, algo: &Algorithm) -> Result<()> {
        let r = Resource::Algorithm(algo.id);
        if self.authz.can(ctx, Action::AlgoSourceRead, r) {
            return Ok(());
        }
        if source_is_open(&algo.settings) {
            return self.authz.authorize(ctx, Action::AlgoRead, r);
        }
        self.authz
            .authorize(ctx, Action::AlgoSourceRead, r)
            .map_err(|e| match e.code {
                Code::Forbidden => Error::forbidden(format!(
                    "the source of {}/{} is closed: only its owner, members with rights on it \
                     and cluster admins with super powers may read it ({})",
                    algo.owner_name, algo.name, e.message
                )),
                _ => e,
            })
    }

    /// The source of a version: `version` is a semantic version (`1.2.3`,
    /// pending and rejected ones included) or a version hash (the newest
    /// build with it).
    pub async fn version_source(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
        version: &str,
        form: SourceForm,
    ) -> Result<AlgorithmSource> {
        self.authorize_source_read(ctx, algo)?;
        let not_found = || {
            Error::new(
                Code::VersionNotFound,
                format!(
                    "no version {version:?} of {}/{}: give a semantic version (1.2.3) or a \
                     40-character version hash",
                    algo.owner_name, algo.name
                ),
            )
        };
        let digest = if let Some(semver) = parse_semver(version) {
            self.store
                .list_versions(algo.id)
                .await?
                .into_iter()
                .find(|v| v.semver == semver)
                .ok_or_else(not_found)?
                .artifact_digest
        } else if is_hash(version) {
            self.all_builds(algo.id)
                .await?
                .into_iter()
                .find(|b| b.commit_sha.eq_ignore_ascii_case(version))
                .ok_or_else(not_found)?
                .artifact_digest
        } else {
            return Err(not_found());
        };
        self.artifact_source(&digest, form).await
    }

    /// The source of one build, by its id.
    pub async fn build_source(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
        build_id: &str,
        form: SourceForm,
    ) -> Result<AlgorithmSource> {
        self.authorize_source_read(ctx, algo)?;
        let build = match self.store.get_build(algo.id, build_id).await {
            Ok(b) => b,
            Err(StoreError::NotFound) => {
                return Err(Error::new(
                    Code::BuildNotFound,
                    format!("build {build_id:?} not found"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.artifact_source(&build.artifact_digest, form).await
    }

    async fn artifact_source(&self, digest: &str, form: SourceForm) -> Result<AlgorithmSource> {
        let artifact = self.store.get_artifact(digest).await?;
        let hash: String = artifact.digest.chars().take(40).collect();
        let (media_type, bytes, redacted) = match (artifact.kind, form) {
            (RuntimeKind::Wasm, SourceForm::Stored) => ("application/wasm", artifact.bytes, false),
            (RuntimeKind::Wasm, SourceForm::Wat) => {
                let executor = self.executor.clone().ok_or_else(|| {
                    Error::new(Code::Unavailable, "this node has no algorithm runtime")
                })?;
                let module = artifact.bytes;
                // Printing a large module is CPU work: off the request threads.
                let text = tokio::task::spawn_blocking(move || executor.wasm_text(&module))
                    .await
                    .map_err(|e| Error::internal(format!("printing the module failed: {e}")))?
                    .map_err(|e| {
                        Error::new(
                            Code::Unavailable,
                            format!("cannot print the module as text: {e}"),
                        )
                    })?;
                ("text/plain; charset=utf-8", text.into_bytes(), false)
            }
            (RuntimeKind::Http, SourceForm::Stored) => {
                let (bytes, redacted) = redact_http_definition(&artifact.bytes)?;
                ("application/json", bytes, redacted)
            }
            (RuntimeKind::Http, SourceForm::Wat) => {
                return Err(Error::invalid(
                    "format=wat is for wasm modules; an http algorithm's source is its \
                     definition (JSON): leave the format out",
                ));
            }
        };
        Ok(AlgorithmSource {
            kind: artifact.kind,
            media_type,
            bytes,
            redacted,
            hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(def: &Value) -> (Value, bool) {
        let (bytes, redacted) = redact_http_definition(def.to_string().as_bytes()).unwrap();
        (serde_json::from_slice(&bytes).unwrap(), redacted)
    }

    #[test]
    fn http_definitions_are_shown_without_their_secrets() {
        let def = json!({"runtime": "http", "url": "http://model.svc/predict?key=s3cret&v=2&flag#frag",
                         "timeout": 30.0, "headers": {"x-model-key": "s3cret", "authorization": "Bearer s3cret"}});
        let (v, redacted) = shown(&def);
        assert!(redacted);
        assert!(!v.to_string().contains("s3cret"), "{v}");
        assert_eq!(
            v,
            json!({"runtime": "http", "url": "http://model.svc/predict?key=[redacted]&v=[redacted]&[redacted]#[redacted]",
                   "timeout": 30.0, "headers": {"x-model-key": REDACTED, "authorization": REDACTED}})
        );
        // User info (refused at upload, redacted anyway) and unknown fields.
        let (v, redacted) = shown(&json!({"url": "http://u:s3cret@h:8080/p", "token": "s3cret"}));
        assert!(redacted);
        assert_eq!(
            v,
            json!({"url": "http://[redacted]@h:8080/p", "token": REDACTED})
        );
        // Nothing secret: nothing redacted.
        let plain = json!({"runtime": "http", "url": "http://h/p", "headers": {}});
        assert_eq!(shown(&plain), (plain.clone(), false));
        // What cannot be read is not shown.
        for bad in [&b"not json"[..], b"[1]", b"\"x\""] {
            let e = redact_http_definition(bad).unwrap_err();
            assert_eq!(e.code, Code::Internal);
        }
    }

    #[test]
    fn versions_formats_and_visibility_parse() {
        assert_eq!(
            parse_semver("1.20.3"),
            Some(SemVer {
                major: 1,
                minor: 20,
                patch: 3
            })
        );
        for bad in [
            "1.2", "1.2.3.4", "1.*.0", "-1.2.3", "+1.2.3", "a.b.c", "1..3",
        ] {
            assert_eq!(parse_semver(bad), None, "{bad}");
        }
        assert!(is_hash(&"0123456789abcdefABCD".repeat(2)));
        assert!(!is_hash(&"g".repeat(40)) && !is_hash(&"a".repeat(39)));
        assert_eq!(SourceForm::parse(None).unwrap(), SourceForm::Stored);
        assert_eq!(SourceForm::parse(Some("WAT")).unwrap(), SourceForm::Wat);
        assert_eq!(
            SourceForm::parse(Some("zip")).unwrap_err().code,
            Code::InvalidInput
        );
        use crate::model::{AlgorithmSettings, SourceVisibility};
        let with = |v| AlgorithmSettings {
            source_visibility: v,
            ..Default::default()
        };
        assert!(source_is_open(&with(Some(SourceVisibility::Open))));
        assert!(!source_is_open(&with(Some(SourceVisibility::Closed))));
        assert!(!source_is_open(&with(None)), "no setting counts as closed");
    }
}
