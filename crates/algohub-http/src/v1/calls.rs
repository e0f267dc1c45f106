//! `POST /v1/algo/{owner}/{algo}[/{version}]`: calling an algorithm, with the
//! Algorithmia response envelope.
//!
//! Design: the body's Content-Type picks the input kind (JSON, text, binary;
//! `null` JSON is a null input); the service resolves, authorizes and runs; this
//! module only renders. A run that failed is still HTTP 200 with an `error`
//! object (the clients' contract); a refused request is a 4xx. `output=void`
//! answers once the call is admitted and runs it in the background;
//! `output=raw` returns the bare result (an algorithm error is a 400 with the
//! message as text). `metadata.compute_units` (wasm fuel, or upstream
//! milliseconds) is our extension, for metering.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, ContentType, QueryArgs, RawBody, parse_bool};
use crate::ops::RawErrorBody;
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::services::{
    CallOutcome, CallRequest, ContentKind, ExecError, ExecInput, parse_timeout,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// Largest call input.
pub const MAX_INPUT_BYTES: usize = 16 << 20;

#[derive(Deserialize)]
struct CallArgs {
    timeout: Option<String>,
    stdout: Option<String>,
    output: Option<String>,
    sudo: Option<String>,
    data: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Default,
    Raw,
    Void,
}

/// Decodes the request body by its Content-Type.
fn input_of(content_type: Option<&HeaderValue>, body: &[u8]) -> ApiResult<ExecInput> {
    let ct = content_type.and_then(|v| v.to_str().ok()).map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let text = |kind: ContentKind| -> ApiResult<ExecInput> {
        std::str::from_utf8(body).map_err(|_| {
            ApiError::new(
                Code::InvalidInput,
                "the body is not valid UTF-8 text: send binary input as application/octet-stream",
            )
        })?;
        Ok(ExecInput {
            content_type: kind,
            data: body.to_vec(),
        })
    };
    match ct.as_deref() {
        Some("application/json") => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(ExecInput {
                    content_type: ContentKind::Json,
                    data: b"null".to_vec(),
                });
            }
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| {
                ApiError::new(Code::MalformedJson, format!("invalid JSON input: {e}"))
            })?;
            text(ContentKind::Json)
        }
        Some("application/octet-stream") => Ok(ExecInput {
            content_type: ContentKind::Binary,
            data: body.to_vec(),
        }),
        Some("application/text") => text(ContentKind::Text),
        Some(t) if t.starts_with("text/") => text(ContentKind::Text),
        // No (or another) Content-Type: text when it is text, else bytes.
        _ if std::str::from_utf8(body).is_ok() => text(ContentKind::Text),
        _ => Ok(ExecInput {
            content_type: ContentKind::Binary,
            data: body.to_vec(),
        }),
    }
}

/// A call's result as the envelope carries it: JSON as JSON (`null` if the
/// algorithm's output does not parse), text as a string, bytes as base64.
/// Serialized straight into the response, without a `Value` tree.
struct ResultValue<'a> {
    kind: ContentKind,
    data: &'a [u8],
}

impl serde::Serialize for ResultValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.kind {
            ContentKind::Void => s.serialize_unit(),
            ContentKind::Json => serde_json::from_slice::<Value>(self.data)
                .unwrap_or(Value::Null)
                .serialize(s),
            ContentKind::Text => s.serialize_str(&String::from_utf8_lossy(self.data)),
            ContentKind::Binary => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.data))
            }
        }
    }
}

/// The envelope of a call that returned a result.
/// A call's result (`async: false`).
#[derive(Serialize, ToSchema)]
#[schema(as = CallSuccess)]
struct Success<'a> {
    /// JSON as returned; text as a string; binary as base64; null for void.
    #[schema(value_type = Value)]
    result: ResultValue<'a>,
    metadata: SuccessMetadata<'a>,
    #[serde(rename = "async")]
    is_async: bool,
    request_id: &'a str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CallMetadata)]
struct SuccessMetadata<'a> {
    /// text, json, binary or void.
    content_type: &'static str,
    duration: f64,
    compute_units: u64,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<&'a str>,
}

/// A call's failure (`async: false`), with HTTP status 200 as in v1.
#[derive(Serialize, ToSchema)]
struct CallFailure {
    error: CallError,
    metadata: FailureMetadata,
    #[serde(rename = "async")]
    is_async: bool,
    request_id: String,
}

#[derive(Serialize, ToSchema)]
struct CallError {
    message: String,
    error_type: String,
    stacktrace: String,
    /// The same as `stacktrace` (both spellings are in use).
    stack_trace: String,
}

#[derive(Serialize, ToSchema)]
struct FailureMetadata {
    duration: f64,
    compute_units: u64,
    version: String,
    /// With `stdout=true`, for those allowed to see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<String>,
}

/// `output=void`: the call was accepted and runs on.
#[derive(Serialize, ToSchema)]
struct CallAccepted {
    /// Always `void`.
    #[serde(rename = "async")]
    is_async: &'static str,
    request_id: String,
}

/// What a call answers in JSON: a result, an algorithm's failure, or (with
/// `output=void`) the acceptance.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum CallResult<'a> {
    Success(Success<'a>),
    Failure(CallFailure),
    Accepted(CallAccepted),
}

/// The input: any JSON (application/json), text (text/plain) or bytes
/// (application/octet-stream).
#[derive(ToSchema)]
#[allow(dead_code)]
struct CallInput(Value);

fn render(out: CallOutcome, output: Output, want_stdout: bool, rid: String) -> Response {
    let duration = out.duration.as_secs_f64();
    let show_stdout = want_stdout && out.stdout_allowed;
    match (out.result, output) {
        (Ok(o), Output::Raw) => {
            let ct = match o.content_type {
                ContentKind::Json => "application/json",
                ContentKind::Binary => "application/octet-stream",
                ContentKind::Text | ContentKind::Void => "text/plain; charset=utf-8",
            };
            ([(header::CONTENT_TYPE, ct)], o.data).into_response()
        }
        (Err(e), Output::Raw) => {
            let (message, _, _) = e.describe();
            let mut r = (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response();
            r.extensions_mut().insert(RawErrorBody);
            r
        }
        (Ok(o), _) => Json(Success {
            result: ResultValue {
                kind: o.content_type,
                data: &o.data,
            },
            metadata: SuccessMetadata {
                content_type: o.content_type.as_str(),
                duration,
                compute_units: o.compute_units,
                version: &out.version,
                stdout: show_stdout.then_some(o.stdout.as_str()),
            },
            is_async: false,
            request_id: &rid,
        })
        .into_response(),
        (Err(e), _) => {
            let (message, error_type, stacktrace) = e.describe();
            // What the run used before it failed (fuel, upstream time) is
            // reported as for a result: 0 where nothing ran.
            let stdout = match &e {
                ExecError::Algorithm { stdout, .. } if show_stdout => Some(stdout.clone()),
                _ => None,
            };
            Json(CallFailure {
                error: CallError {
                    message,
                    error_type,
                    stack_trace: stacktrace.clone(),
                    stacktrace,
                },
                metadata: FailureMetadata {
                    duration,
                    compute_units: e.compute_units(),
                    version: out.version,
                    stdout,
                },
                is_async: false,
                request_id: rid,
            })
            .into_response()
        }
    }
}

/// The algorithm a call names, as given in the path.
struct Target {
    owner: String,
    algo: String,
    version: Option<String>,
}

async fn call(
    s: AppState,
    caller: algohub_core::RequestCtx,
    target: Target,
    q: CallArgs,
    content_type: Option<HeaderValue>,
    body: &[u8],
) -> ApiResult<Response> {
    // The by-id form: /v1/algo/{algorithm uuid}/{version}.
    let Target {
        owner,
        algo,
        version,
    } = target;
    let (owner, algo, version) = match s.hub.calls.algorithm_name_by_uuid(&caller, &owner).await {
        Some((o, n)) => (o, n, Some(algo)),
        None => (owner, algo, version),
    };
    let version = version.filter(|v| !v.is_empty());
    let parsed = parse_call(&q, content_type.as_ref(), body);
    let asked_sudo = matches!(
        q.sudo.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("true" | "1")
    );
    let (timeout, want_stdout, output, sudo, no_data, input) = match parsed {
        Ok(p) => p,
        // A refused call is metered like any other.
        Err(ApiError(e)) => {
            let e = s
                .hub
                .calls
                .refuse_call(&caller, &owner, &algo, version.as_deref(), asked_sudo, e)
                .await;
            return Err(ApiError(e));
        }
    };
    let req = CallRequest {
        owner,
        name: algo,
        version,
        input,
        timeout,
        sudo,
        no_data,
    };
    let (prepared, input) = s.hub.calls.prepare_call(&caller, req).await?;
    let rid = prepared.request_id.clone();
    if output == Output::Void {
        let hub = s.hub.clone();
        let id = rid.clone();
        tokio::spawn(async move {
            match hub.calls.run_call(prepared, input).await {
                Ok(o) if o.result.is_err() => {
                    tracing::info!(request_id = %id, "void call ended with an algorithm error")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(request_id = %id, error = %e, "void call failed"),
            }
        });
        return Ok(Json(CallAccepted {
            is_async: "void",
            request_id: rid,
        })
        .into_response());
    }
    let out = s.hub.calls.run_call(prepared, input).await?;
    Ok(render(out, output, want_stdout, rid))
}

/// The call's options and input: (timeout, stdout, output, sudo, no data
/// access, input).
#[allow(clippy::type_complexity)]
fn parse_call(
    q: &CallArgs,
    content_type: Option<&HeaderValue>,
    body: &[u8],
) -> ApiResult<(
    Option<std::time::Duration>,
    bool,
    Output,
    bool,
    bool,
    ExecInput,
)> {
    let timeout = parse_timeout(q.timeout.as_deref())?;
    let want_stdout = parse_bool(q.stdout.as_deref())?.unwrap_or(false);
    let output = match q.output.as_deref() {
        None | Some("") | Some("default") => Output::Default,
        Some("raw") => Output::Raw,
        Some("void") => Output::Void,
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!("invalid output {other:?}: use raw or void (or leave it out)"),
            ));
        }
    };
    let sudo = parse_bool(q.sudo.as_deref())?.unwrap_or(false);
    let no_data = match q.data.as_deref() {
        None | Some("" | "caller") => false,
        Some("none") => true,
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "invalid data {other:?}: use none (the algorithm gets no data API access) \
                     or caller (the default: it acts with the caller's data scopes)"
                ),
            ));
        }
    };
    let input = input_of(content_type, body)?;
    Ok((timeout, want_stdout, output, sudo, no_data, input))
}

#[utoipa::path(post, path = "/v1/algo/{owner}/{algo}", tag = "calls", summary = "Call the latest public version (or, with an algorithm id as {owner}, the version named by {algo}); ?timeout&stdout&output=raw|void&data=none (no data API access; by default the algorithm acts with the caller's data scopes)&sudo=true (sudo users: run as the owner)", request_body(content((CallInput = "application/json"), (String = "text/plain"), (String = "application/octet-stream"))), responses((status = 200, description = "the result, or the algorithm's failure; with output=raw the result itself (its media type) or the failure's message as text with status 400", content((CallResult = "application/json"), (String = "text/plain"), (String = "application/octet-stream")))))]
async fn call_latest(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, algo)): Path<(String, String)>,
    QueryArgs(q): QueryArgs<CallArgs>,
    ContentType(content_type): ContentType,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    call(
        s,
        c,
        Target {
            owner,
            algo,
            version: None,
        },
        q,
        content_type,
        &body,
    )
    .await
}

#[utoipa::path(post, path = "/v1/algo/{owner}/{algo}/{version}", tag = "calls", summary = "Call a version: 1.2.3, 1.2.*, 1.*, a build hash or latestPrivate", request_body(content((CallInput = "application/json"), (String = "text/plain"), (String = "application/octet-stream"))), responses((status = 200, description = "the result, or the algorithm's failure; with output=raw the result itself (its media type) or the failure's message as text with status 400", content((CallResult = "application/json"), (String = "text/plain"), (String = "application/octet-stream")))))]
async fn call_version(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, algo, version)): Path<(String, String, String)>,
    QueryArgs(q): QueryArgs<CallArgs>,
    ContentType(content_type): ContentType,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    call(
        s,
        c,
        Target {
            owner,
            algo,
            version: Some(version),
        },
        q,
        content_type,
        &body,
    )
    .await
}

/// How the call route's summary names the sudo option (left out of the
/// OpenAPI document when the cluster has no sudo role).
pub(crate) const SUDO_OPTION: &str = "&sudo=true (sudo users: run as the owner)";

pub fn routes(r: Routes) -> Routes {
    r.typed_with_limit(routes!(call_latest), MAX_INPUT_BYTES)
        .typed_with_limit(routes!(call_version), MAX_INPUT_BYTES)
}
