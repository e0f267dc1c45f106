#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! algohub-runtime: runs algorithm artifacts (WASI preview 1 command modules) in-process
//! with wasmtime, under fuel, memory and wall-clock limits.
//!
//! Design: one shared [`WasmRuntime`] per process owns a wasmtime engine with the
//! pooling allocator, fuel metering and epoch interruption (a background thread ticks
//! the epoch). Each artifact is compiled once and cached as an `InstancePre` keyed by
//! the caller's digest; every call gets a fresh store and instance, so calls share no
//! guest state. Guests run through `call_async` and yield to the executor on every
//! epoch tick, so a busy guest never pins a tokio worker. The guest ABI (stdin in,
//! stdout out, stderr as printed output, the `algohub.*` imports) is documented in
//! `docs/guest-abi.md`; the types here are the whole public surface.
//!
//! - `engine`: [`WasmRuntime`] (engine set-up, module cache, `prepare`, `call`).
//! - `host`: per-call store state, the `algohub.*` imports, the memory limiter.
//! - `outcome`: turns a finished call into [`CallOutput`] or [`CallError`].
//! - `pipe`: capped in-memory stdout/stderr for WASI.

mod engine;
mod host;
mod json_result;
mod outcome;
mod pipe;
mod share;

use std::time::Duration;

pub use engine::{AllocatorKind, WasmRuntime};
pub use host::{GuestData, HostFuture, MAX_DATA_WRITE_BYTES};
pub use json_result::{MAX_JSON_DEPTH, check_json_result};
pub use share::INSTANCE_OVERHEAD_BYTES;

/// The content type of a call's input or result (Algorithmia v1 `metadata.content_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// UTF-8 text.
    Text,
    /// A JSON document.
    Json,
    /// Raw bytes.
    Binary,
    /// No data.
    Void,
}

impl ContentType {
    /// The wire name: `text`, `json`, `binary` or `void`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Text => "text",
            ContentType::Json => "json",
            ContentType::Binary => "binary",
            ContentType::Void => "void",
        }
    }

    /// Parses a wire name (exact, lower case); `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "text" => Some(ContentType::Text),
            "json" => Some(ContentType::Json),
            "binary" => Some(ContentType::Binary),
            "void" => Some(ContentType::Void),
            _ => None,
        }
    }
}

impl std::fmt::Display for ContentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The input of one call: the request body and its content type, and what
/// the guest may do with the data API during the call.
#[derive(Clone)]
pub struct CallInput {
    pub content_type: ContentType,
    pub data: Vec<u8>,
    /// Backs the `algohub.data_*` imports; without it they answer "no data
    /// API access".
    pub data_api: Option<std::sync::Arc<dyn GuestData>>,
    /// Whom the call counts for when instances are shared (the host's
    /// choice: the person behind the call); see [`RuntimeConfig::instances_per_caller`].
    pub group: u64,
}

impl std::fmt::Debug for CallInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallInput")
            .field("content_type", &self.content_type)
            .field("data", &format_args!("{} bytes", self.data.len()))
            .field("data_api", &self.data_api.is_some())
            .field("group", &self.group)
            .finish()
    }
}

impl CallInput {
    /// Shorthand for a call input (no data API access, group 0).
    pub fn new(content_type: ContentType, data: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type,
            data: data.into(),
            data_api: None,
            group: 0,
        }
    }
    /// Counts the call for `group` when instances are shared.
    pub fn for_group(mut self, group: u64) -> Self {
        self.group = group;
        self
    }
    /// Gives the guest the data API through `api`.
    pub fn with_data_api(mut self, api: std::sync::Arc<dyn GuestData>) -> Self {
        self.data_api = Some(api);
        self
    }
}

/// The wall-clock limit of a call that names none (the Algorithmia default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Fuel a call gets per second of its wall-clock limit unless the host says
/// otherwise: its budget is this rate times its timeout ([`Limits::fuel_for`]),
/// 30 trillion units for the default 300 s.
///
/// Measured with `examples/fuel_rate.rs` on a 2-core 2.6 GHz AMD EPYC server
/// (release and debug builds of the host alike: Cranelift compiles the guest
/// the same way), a busy loop (`loop br`, one unit a turn) burns about 1.1
/// billion units a second, a counting loop about 8 billion and a loop of
/// loads, adds and stores about 15 billion (several one-unit instructions
/// retire per cycle). The old fixed budget of 10 billion units therefore
/// ended a busy loop after 5 to 10 s, long before its 300 s deadline. At 100
/// billion a second (90 times the busy loop, 7 times the densest loop) the
/// deadline is what stops a runaway call, and fuel stays a deterministic
/// count of the work done (`metadata.compute_units`). Code of many cheap
/// instructions the compiler folds away (thousands of `i32.const; drop` in a
/// loop) can still burn fuel faster than that and run out first.
pub const DEFAULT_FUEL_PER_SEC: u64 = 100_000_000_000;

/// Per-call limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel units (roughly one per wasm instruction; `nop`, `drop`, `block`,
    /// `loop`, `end`, `else`, `return` and `unreachable` cost none). A call
    /// that uses them all fails with [`CallError::OutOfFuel`].
    pub fuel: u64,
    /// Linear memory cap; clamped to [`RuntimeConfig::max_memory_bytes`].
    pub memory_bytes: usize,
    /// Wall-clock deadline, including instantiation and any wait for a free slot.
    pub timeout: Duration,
    /// Cap on the result (stdout) and, separately, on the printed output (stderr).
    pub max_output_bytes: usize,
}

impl Limits {
    /// The fuel budget of a call with `timeout` at `fuel_per_sec`: the rate
    /// times the timeout (fractions of a second count; saturates at `u64::MAX`).
    pub fn fuel_for(timeout: Duration, fuel_per_sec: u64) -> u64 {
        let fuel = u128::from(fuel_per_sec) * timeout.as_nanos() / 1_000_000_000;
        u64::try_from(fuel).unwrap_or(u64::MAX)
    }

    /// The default limits for a call with `timeout`, and the fuel for it at
    /// [`DEFAULT_FUEL_PER_SEC`].
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            fuel: Self::fuel_for(timeout, DEFAULT_FUEL_PER_SEC),
            timeout,
            ..Self::default()
        }
    }
}

impl Default for Limits {
    /// [`DEFAULT_TIMEOUT`] and the fuel for it at [`DEFAULT_FUEL_PER_SEC`]
    /// (30 trillion units), 256 MiB of memory, 16 MiB of output.
    fn default() -> Self {
        Self {
            fuel: Self::fuel_for(DEFAULT_TIMEOUT, DEFAULT_FUEL_PER_SEC),
            memory_bytes: 256 << 20,
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: 16 << 20,
        }
    }
}

/// The result of a successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutput {
    pub content_type: ContentType,
    /// The result bytes (empty for `void`).
    pub data: Vec<u8>,
    /// What the guest printed (its stderr), lossily decoded as UTF-8, capped.
    pub stdout: String,
    pub fuel_used: u64,
    /// Wall-clock time of the call (instantiation and execution).
    pub duration: Duration,
}

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The guest reported an error (`algohub.set_error`) or exited with a non-zero code.
    #[error("{error_type}: {message}")]
    Algorithm {
        message: String,
        error_type: String,
        stacktrace: String,
        /// What the guest printed (its stderr) before failing.
        stdout: String,
        fuel_used: u64,
    },
    /// The wall-clock deadline passed.
    #[error("algorithm timed out after {after:?}")]
    Timeout { after: Duration, fuel_used: u64 },
    /// The fuel limit was used up.
    #[error("algorithm ran out of fuel after {fuel_used} units")]
    OutOfFuel { fuel_used: u64 },
    /// The guest needed more memory than its cap.
    #[error("algorithm exceeded its memory limit")]
    OutOfMemory { fuel_used: u64 },
    /// The node's memory budget for guests could not cover the call: it
    /// needs more at start than the whole budget, or a growth within its
    /// own cap found the budget used up by other calls.
    #[error("{message}")]
    MemoryBudget { message: String, fuel_used: u64 },
    /// The guest crashed (unreachable, out-of-bounds access, stack overflow, ...).
    #[error("algorithm crashed: {message}")]
    Trap { message: String, fuel_used: u64 },
    /// The artifact is not a valid guest module (does not compile, wrong imports, no `_start`).
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// A fault of the runtime itself.
    #[error("runtime error: {0}")]
    Internal(String),
}

impl CallError {
    /// Fuel used before the failure, where the call got far enough to use any.
    pub fn fuel_used(&self) -> u64 {
        match self {
            CallError::Algorithm { fuel_used, .. }
            | CallError::Timeout { fuel_used, .. }
            | CallError::OutOfFuel { fuel_used }
            | CallError::OutOfMemory { fuel_used }
            | CallError::MemoryBudget { fuel_used, .. }
            | CallError::Trap { fuel_used, .. } => *fuel_used,
            CallError::InvalidModule(_) | CallError::Internal(_) => 0,
        }
    }
}

/// Engine-wide settings, fixed when the runtime is created.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuntimeConfig {
    /// Instances that may exist at once (pool size); further calls wait for a slot.
    pub max_instances: u32,
    /// Instances the calls of one group ([`CallInput::group`]) may hold at
    /// once; further calls of the group wait while other groups' calls
    /// start (taken as 1 to `max_instances`).
    pub instances_per_caller: u32,
    /// Largest linear memory any guest may have (pool slot size).
    pub max_memory_bytes: usize,
    /// Guest memory the node may have reserved at once: each instance's
    /// initial memory plus [`INSTANCE_OVERHEAD_BYTES`] before it starts, and
    /// each growth as it happens.
    pub memory_budget_bytes: u64,
    /// Epoch tick: the granularity of wall-clock deadlines and of yielding to the executor.
    pub epoch_tick: Duration,
}

/// Instances in the pool unless configured otherwise.
pub const DEFAULT_MAX_INSTANCES: u32 = 128;
/// Instances one caller may hold unless configured otherwise (a quarter of the pool).
pub const DEFAULT_INSTANCES_PER_CALLER: u32 = 32;
/// Memory per instance unless configured otherwise.
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 256 << 20;

impl Default for RuntimeConfig {
    /// Sized for a small (2-core) server: 128 instances of at most 256 MiB,
    /// 32 per caller, half of the machine's memory for guests, 5 ms ticks.
    /// The pool reserves address space (about 4 GiB per slot), not memory.
    fn default() -> Self {
        Self {
            max_instances: DEFAULT_MAX_INSTANCES,
            instances_per_caller: DEFAULT_INSTANCES_PER_CALLER,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            memory_budget_bytes: default_memory_budget(),
            epoch_tick: Duration::from_millis(5),
        }
    }
}

/// Half of the memory this process may use: the machine's (`MemTotal` in
/// `/proc/meminfo`) or its control group's limit (`memory.max`), whichever is
/// lower; 4 GiB where neither can be read.
pub fn default_memory_budget() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let available = match (meminfo, cgroup) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 8 << 30,
    };
    available / 2
}

/// The built-in template every new algorithm starts from: it copies stdin to stdout, so
/// the result is the input with the same content type. Identical to `examples/echo.wat`.
pub const ECHO_WAT: &str = r#";; echo: the algohub template algorithm.
;; Copies its input (stdin) to its result (stdout); the result keeps the input's
;; content type because the module never calls algohub.set_content_type.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; 0..8: one iovec {ptr, len}; 8..12: bytes read/written; 1024..66560: buffer.
  (memory (export "memory") 2)

  (func (export "_start")
    (local $n i32)
    (local $at i32)
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 65536))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $at (i32.const 1024))
        (loop $write
          (i32.store (i32.const 0) (local.get $at))
          (i32.store (i32.const 4) (local.get $n))
          (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
            (then (call $proc_exit (i32.const 1))))
          (local.set $at (i32.add (local.get $at) (i32.load (i32.const 8))))
          (local.set $n (i32.sub (local.get $n) (i32.load (i32.const 8))))
          (br_if $write (local.get $n)))
        (br $read))))
)
"#;
