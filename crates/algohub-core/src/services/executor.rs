//! The port through which services run algorithms. The domain stays free of
//! wasmtime and HTTP clients: the binary plugs in an implementation backed by
//! the runtime crate.

use crate::model::{Artifact, RuntimeKind};
use async_trait::async_trait;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Text,
    Json,
    Binary,
    Void,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Binary => "binary",
            Self::Void => "void",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecInput {
    pub content_type: ContentKind,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub content_type: ContentKind,
    pub data: Vec<u8>,
    /// What the algorithm printed (returned with `stdout=true`).
    pub stdout: String,
    /// Compute units: wasm fuel, or upstream milliseconds.
    pub compute_units: u64,
}

/// The data API as an algorithm uses it during one call: acting as the call's
/// acting-as account (`.my` is that account), decided by the policy like any
/// request. Errors are messages for the algorithm (`reason: message`).
#[async_trait]
pub trait CallData: Send + Sync {
    /// The bytes of the file at `path` (`data://owner/collection/file`).
    async fn read(&self, path: &str) -> Result<Vec<u8>, String>;
    /// Creates or replaces the file at `path`.
    async fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), String>;
}

/// What a run knows of its call besides the input.
#[derive(Clone)]
pub struct RunContext<'a> {
    /// The call's wall-clock limit.
    pub timeout: Duration,
    /// The person the call counts for when a node shares its instances
    /// (`PolicyEngine::person_behind`).
    pub person: crate::model::AccountId,
    /// The call's fuel budget (`wasm` only): the cluster's
    /// `wasm_fuel_per_sec` times `timeout`, at most the algorithm's
    /// `max_fuel_per_call`.
    pub fuel: u64,
    /// The call's `req-...` id.
    pub request_id: &'a str,
    /// A call token the algorithm may use as its API key for the data API
    /// while the call runs (acting as the call's acting-as account; `.my` is
    /// that account). Minted only for runtimes that pass it on (`http`).
    pub api_key: Option<&'a str>,
    /// The same access for in-process runtimes (`wasm`: the `algohub.data_*`
    /// imports); `None` on nodes that do not serve the data API.
    pub data: Option<std::sync::Arc<dyn CallData>>,
}

/// Why a run did not produce a result. `Algorithm` errors are the algorithm's own
/// (HTTP 200 with an `error` object); the others are the platform's verdict on
/// the run (also reported as algorithm errors, with their own `error_type`).
/// A run that got as far as running carries the compute units it used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("{message}")]
    Algorithm {
        message: String,
        error_type: String,
        stacktrace: String,
        stdout: String,
        compute_units: u64,
    },
    #[error("the call exceeded its time limit of {after:?}")]
    Timeout { after: Duration, compute_units: u64 },
    /// Out of fuel or memory.
    #[error("{message}")]
    ResourceLimit { message: String, compute_units: u64 },
    /// The node could not give the call the memory it needed (its memory
    /// for all running algorithms was in use): refused with `limit_kind`
    /// `memory`, to be retried.
    #[error("{message}")]
    NodeMemory { message: String, compute_units: u64 },
    #[error("the algorithm crashed: {message}")]
    Crash { message: String, compute_units: u64 },
    #[error("upstream failure: {0}")]
    Upstream(String),
    #[error("internal runtime error: {0}")]
    Internal(String),
}

impl ExecError {
    /// The compute units the run used before it failed (wasm fuel, or
    /// upstream milliseconds); 0 where nothing ran.
    pub fn compute_units(&self) -> u64 {
        match self {
            ExecError::Algorithm { compute_units, .. }
            | ExecError::Timeout { compute_units, .. }
            | ExecError::ResourceLimit { compute_units, .. }
            | ExecError::NodeMemory { compute_units, .. }
            | ExecError::Crash { compute_units, .. } => *compute_units,
            ExecError::Upstream(_) | ExecError::Internal(_) => 0,
        }
    }

    /// (message, error_type, stacktrace) as callers see them. Internal faults
    /// get a fixed message (the cause is for the logs).
    pub fn describe(&self) -> (String, String, String) {
        match self {
            ExecError::Algorithm {
                message,
                error_type,
                stacktrace,
                ..
            } => (message.clone(), error_type.clone(), stacktrace.clone()),
            ExecError::Timeout { .. } => (
                self.to_string(),
                "AlgorithmTimeoutError".into(),
                String::new(),
            ),
            ExecError::ResourceLimit { .. } | ExecError::NodeMemory { .. } => {
                (self.to_string(), "ResourceLimitError".into(), String::new())
            }
            ExecError::Crash { .. } => (
                self.to_string(),
                "AlgorithmCrashError".into(),
                String::new(),
            ),
            ExecError::Upstream(_) => (self.to_string(), "UpstreamError".into(), String::new()),
            ExecError::Internal(_) => (
                "the algorithm could not be run (internal runtime error)".into(),
                "InternalError".into(),
                String::new(),
            ),
        }
    }
}

/// Runs algorithms and checks artifacts.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Validates an uploaded artifact and returns the bytes to store (e.g. WAT
    /// text compiled to a wasm binary; an http definition normalized).
    fn prepare(&self, kind: RuntimeKind, bytes: &[u8]) -> Result<Vec<u8>, String>;
    /// The built-in template every new algorithm starts from (an echo module).
    fn template(&self) -> Artifact;
    /// A stored wasm module printed as WAT text, for reading its source (a
    /// WAT upload is kept compiled, so this is its text again, without the
    /// comments). A runtime that cannot print modules says so.
    fn wasm_text(&self, module: &[u8]) -> Result<String, String> {
        let _ = module;
        Err("this node cannot print wasm modules as text".into())
    }
    async fn execute(
        &self,
        artifact: &Artifact,
        input: ExecInput,
        run: &RunContext<'_>,
    ) -> Result<ExecOutput, ExecError>;
}
