//! The algorithm runtime the server plugs into the hub: `wasm` artifacts run
//! in-process on the shared [`WasmRuntime`], `http` artifacts are forwarded to
//! their upstream ([`upstream`]).
//!
//! Design: the domain only knows the `Executor` port; this adapter maps its
//! types onto the runtime crate's and back, so neither wasmtime nor the HTTP
//! client leaks into `algohub-core`. One wasm engine serves the whole process
//! (its pooling allocator reserves address space per slot, and compiled modules
//! are shared), so servers started in the same process (tests, benchmarks)
//! share it too.

pub mod upstream;

use algohub_core::model::{Artifact, RuntimeKind};
use algohub_core::services::{
    CallData, ContentKind, ExecError, ExecInput, ExecOutput, Executor, RunContext, artifact_digest,
};
use algohub_runtime::{
    CallError, CallInput, ContentType, ECHO_WAT, GuestData, HostFuture, Limits, RuntimeConfig,
    WasmRuntime,
};
use parking_lot::Mutex;
use std::sync::Arc;

/// The fuel of a call with the default timeout (300 s) at the default rate
/// (`algohub_runtime::DEFAULT_FUEL_PER_SEC`): 30 trillion units. A call's
/// own budget comes from the hub (`RunContext::fuel`: the cluster's
/// `wasm_fuel_per_sec` times the call's timeout, within the algorithm's cap).
pub const CALL_FUEL: u64 =
    algohub_runtime::DEFAULT_FUEL_PER_SEC * algohub_runtime::DEFAULT_TIMEOUT.as_secs();

/// The process's wasm runtime for `config`, created on first use (servers
/// started in one process with the same settings share one).
pub fn shared_wasm_runtime(config: &RuntimeConfig) -> Result<Arc<WasmRuntime>, String> {
    static RUNTIMES: Mutex<Vec<(RuntimeConfig, Arc<WasmRuntime>)>> = Mutex::new(Vec::new());
    let mut runtimes = RUNTIMES.lock();
    if let Some((_, rt)) = runtimes.iter().find(|(c, _)| c == config) {
        return Ok(rt.clone());
    }
    let rt = WasmRuntime::new(config.clone())
        .map(Arc::new)
        .map_err(|e| format!("cannot start the wasm runtime: {e}"))?;
    runtimes.push((config.clone(), rt.clone()));
    Ok(rt)
}

/// Runs `wasm` and `http` algorithms.
pub struct HubExecutor {
    wasm: Arc<WasmRuntime>,
    upstream: upstream::Upstream,
    template: Artifact,
}

impl HubExecutor {
    pub fn new(allow_private_upstreams: bool, runtime: &RuntimeConfig) -> Result<Self, String> {
        let wasm = shared_wasm_runtime(runtime)?;
        let bytes = wasm
            .prepare(ECHO_WAT.as_bytes())
            .map_err(|e| format!("the built-in echo template does not compile: {e}"))?;
        Ok(Self {
            template: Artifact {
                digest: artifact_digest(&bytes),
                kind: RuntimeKind::Wasm,
                bytes,
            },
            wasm,
            upstream: upstream::Upstream::new(allow_private_upstreams)?,
        })
    }
}

fn to_runtime(kind: ContentKind) -> ContentType {
    match kind {
        ContentKind::Text => ContentType::Text,
        ContentKind::Json => ContentType::Json,
        ContentKind::Binary => ContentType::Binary,
        ContentKind::Void => ContentType::Void,
    }
}

fn from_runtime(kind: ContentType) -> ContentKind {
    match kind {
        ContentType::Text => ContentKind::Text,
        ContentType::Json => ContentKind::Json,
        ContentType::Binary => ContentKind::Binary,
        ContentType::Void => ContentKind::Void,
    }
}

/// The call's data API access, as the wasm runtime's guests use it.
struct GuestDataBridge(Arc<dyn CallData>);

impl GuestData for GuestDataBridge {
    fn read(&self, path: String) -> HostFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move { self.0.read(&path).await })
    }
    fn write(&self, path: String, bytes: Vec<u8>) -> HostFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.write(&path, bytes).await })
    }
}

fn exec_error(e: CallError) -> ExecError {
    match e {
        CallError::Algorithm {
            message,
            error_type,
            stacktrace,
            stdout,
            fuel_used,
        } => ExecError::Algorithm {
            message,
            error_type,
            stacktrace,
            stdout,
            compute_units: fuel_used,
        },
        CallError::Timeout { after, fuel_used } => ExecError::Timeout {
            after,
            compute_units: fuel_used,
        },
        CallError::OutOfFuel { fuel_used } => ExecError::ResourceLimit {
            message: format!("the algorithm used up its fuel ({fuel_used} units)"),
            compute_units: fuel_used,
        },
        CallError::OutOfMemory { fuel_used } => ExecError::ResourceLimit {
            message: "the algorithm exceeded its memory limit".into(),
            compute_units: fuel_used,
        },
        CallError::MemoryBudget { message, fuel_used } => ExecError::NodeMemory {
            message,
            compute_units: fuel_used,
        },
        CallError::Trap { message, fuel_used } => ExecError::Crash {
            message,
            compute_units: fuel_used,
        },
        CallError::InvalidModule(m) => ExecError::Crash {
            message: format!("invalid module: {m}"),
            compute_units: 0,
        },
        CallError::Internal(m) => ExecError::Internal(m),
    }
}

#[async_trait::async_trait]
impl Executor for HubExecutor {
    fn prepare(&self, kind: RuntimeKind, bytes: &[u8]) -> Result<Vec<u8>, String> {
        match kind {
            RuntimeKind::Wasm => self.wasm.prepare(bytes).map_err(|e| e.to_string()),
            RuntimeKind::Http => self.upstream.prepare(bytes),
        }
    }

    fn template(&self) -> Artifact {
        self.template.clone()
    }

    fn wasm_text(&self, module: &[u8]) -> Result<String, String> {
        wasmprinter::print_bytes(module).map_err(|e| e.to_string())
    }

    async fn execute(
        &self,
        artifact: &Artifact,
        input: ExecInput,
        run: &RunContext<'_>,
    ) -> Result<ExecOutput, ExecError> {
        match artifact.kind {
            RuntimeKind::Wasm => {
                let limits = Limits {
                    fuel: run.fuel,
                    timeout: run.timeout,
                    ..Limits::default()
                };
                let mut input = CallInput::new(to_runtime(input.content_type), input.data)
                    .for_group(run.person as u64);
                if let Some(data) = &run.data {
                    input = input.with_data_api(Arc::new(GuestDataBridge(data.clone())));
                }
                let out = self
                    .wasm
                    .call(&artifact.digest, &artifact.bytes, input, &limits)
                    .await
                    .map_err(exec_error)?;
                Ok(ExecOutput {
                    content_type: from_runtime(out.content_type),
                    data: out.data,
                    stdout: out.stdout,
                    compute_units: out.fuel_used,
                })
            }
            RuntimeKind::Http => self.upstream.call(&artifact.bytes, input, run).await,
        }
    }
}
