//! [`WasmRuntime`]: the wasmtime engine, the compiled-module cache and the call path.
//!
//! Design: one engine per process with fuel metering, epoch interruption and (by
//! default) the pooling allocator, so a fresh instance per call costs microseconds.
//! Modules are compiled once per key on a blocking thread and kept as `InstancePre`
//! (imports already resolved); concurrent first calls for the same key share one
//! compilation. A gate (`share`) sized like the pool makes extra calls wait
//! for a slot instead of failing, hands slots out fairly among callers and
//! reserves their memory from the node's budget. Each call gets its own store whose epoch callback enforces the
//! deadline and yields to the executor every tick; a tokio timeout around the call also
//! covers a guest blocked inside a host call (e.g. sleeping in `poll_oneoff`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::OnceCell;
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use crate::host::{self, DeadlineExceeded, GuestState, HOST_MODULE, MemoryLimiter, WASI_MODULE};
use crate::outcome::{self, Ended, Run};
use crate::pipe::CappedPipe;
use crate::share::{Gate, INSTANCE_OVERHEAD_BYTES, Refusal, ShareConfig};
use crate::{CallError, CallInput, CallOutput, Limits, RuntimeConfig};

/// Environment variable that tells the guest the input's content type.
pub const CONTENT_TYPE_ENV: &str = "ALGOHUB_CONTENT_TYPE";
/// Compiled modules kept at most; past this an arbitrary entry is dropped.
const MAX_CACHED_MODULES: usize = 1024;
/// Bytes of each pooled memory and table slot reset by memset and kept mapped
/// (two wasm pages: what small modules use; the rest is decommitted).
const KEEP_RESIDENT_BYTES: usize = 128 << 10;
/// Fuel handed to a running guest at a time (the store keeps the rest): when
/// a slice is used up, the guest stores its fuel count and yields to the
/// executor (a tenth of a second of a busy loop, milliseconds of denser code;
/// a few microseconds per slice). The
/// fuel reported for a call stopped by its deadline or a trap is at most this
/// much short of what it burned.
const FUEL_SLICE: u64 = 100_000_000;
/// `argv[0]` of every guest.
const PROGRAM_NAME: &str = "algorithm";

/// A compiled module ready to instantiate, and the linear memory it starts with.
struct Prepared {
    pre: InstancePre<GuestState>,
    initial_memory: u64,
}

type Pre = Arc<Prepared>;
type CacheEntry = Arc<OnceCell<Pre>>;

/// How instances get their memory, tables and stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocatorKind {
    /// Pre-reserved slots sized from [`RuntimeConfig`] (the default; fastest).
    #[default]
    Pooling,
    /// `mmap` per instance (for comparison in benchmarks).
    OnDemand,
}

/// Runs guest modules; cheap to share (`Send + Sync`), meant to live in an `Arc`.
pub struct WasmRuntime {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    cache: RwLock<HashMap<String, CacheEntry>>,
    gate: Arc<Gate>,
    config: RuntimeConfig,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("config", &self.config)
            .field("cached_modules", &self.cached_modules())
            .finish_non_exhaustive()
    }
}

impl WasmRuntime {
    /// A runtime with the pooling allocator.
    pub fn new(config: RuntimeConfig) -> Result<Self, CallError> {
        Self::with_allocator(config, AllocatorKind::Pooling)
    }

    /// A runtime with the given allocator (on-demand exists for comparison).
    pub fn with_allocator(config: RuntimeConfig, kind: AllocatorKind) -> Result<Self, CallError> {
        if config.max_instances == 0 || config.epoch_tick.is_zero() {
            return Err(CallError::Internal(
                "runtime config needs max_instances > 0 and a non-zero epoch_tick".into(),
            ));
        }
        let mut wasm_config = Config::new();
        wasm_config.consume_fuel(true).epoch_interruption(true);
        if kind == AllocatorKind::Pooling {
            let n = config.max_instances;
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(n)
                .total_memories(n)
                .total_tables(n)
                .total_stacks(n)
                .max_memories_per_module(1)
                .max_tables_per_module(1)
                .max_memory_size(config.max_memory_bytes)
                // Reset small memories and tables with memset instead of
                // madvise: decommitting pages on every call costs a TLB
                // shootdown (an interrupt to every core) per instance.
                .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                .table_keep_resident(KEEP_RESIDENT_BYTES)
                // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only
                // the pages a call touched instead of the whole resident
                // prefix (echo: 6.0 -> 4.3 us per fresh instance + call).
                // `every_call_starts_from_zeroed_memory` checks the result.
                .pagemap_scan(wasmtime::Enabled::Auto);
            wasm_config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm_config).map_err(internal)?;
        let linker = host::linker(&engine).map_err(internal)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone())?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache: RwLock::new(HashMap::new()),
            gate: Gate::new(ShareConfig {
                instances: config.max_instances,
                per_group: config.instances_per_caller.clamp(1, config.max_instances),
                memory_budget: config.memory_budget_bytes,
            }),
            config,
            ticker_stop,
        })
    }

    /// Accepts a WebAssembly binary or WAT text, compiles it and checks it against the
    /// guest ABI; returns the canonical binary (WAT converted) to store and hash.
    ///
    /// Compiling is CPU work (milliseconds to seconds): call it from a blocking thread
    /// for large artifacts.
    pub fn prepare(&self, artifact: &[u8]) -> Result<Vec<u8>, CallError> {
        let binary = to_binary(artifact)?;
        compile(
            &self.engine,
            &self.linker,
            &binary,
            self.config.max_memory_bytes,
        )?;
        Ok(binary)
    }

    /// Runs one call of the module identified by `key` (the artifact's digest). The
    /// module is compiled from `wasm` only if `key` is not cached yet.
    ///
    /// Must run inside a tokio runtime with the time driver enabled.
    pub async fn call(
        &self,
        key: &str,
        wasm: &[u8],
        input: CallInput,
        limits: &Limits,
    ) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let deadline = started
            .checked_add(limits.timeout)
            .unwrap_or(started + Duration::from_secs(365 * 24 * 3600));
        let timeout = || CallError::Timeout {
            after: limits.timeout,
            fuel_used: 0,
        };
        let pre = match tokio::time::timeout_at(deadline.into(), self.instance_pre(key, wasm)).await
        {
            Ok(pre) => pre?,
            Err(_) => return Err(timeout()),
        };
        let memory_cap = limits.memory_bytes.min(self.config.max_memory_bytes);
        let start_memory = pre.initial_memory + INSTANCE_OVERHEAD_BYTES;
        let acquire = self.gate.acquire(input.group, start_memory);
        let permit = match tokio::time::timeout_at(deadline.into(), acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(Refusal::TooLarge { needed, budget })) => {
                return Err(CallError::MemoryBudget {
                    message: format!(
                        "the algorithm needs {} MiB of memory to start, more than one \
                         caller's share of this node's memory for algorithms ({} MiB)",
                        needed.div_ceil(1 << 20),
                        budget >> 20
                    ),
                    fuel_used: 0,
                });
            }
            Ok(Err(Refusal::Closed)) => {
                return Err(CallError::Internal("the runtime is shut down".into()));
            }
            Err(_) => return Err(timeout()),
        };

        let stdout = CappedPipe::strict(limits.max_output_bytes);
        let stderr = CappedPipe::truncating(limits.max_output_bytes);
        let input_type = input.content_type;
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(input.data))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .env(CONTENT_TYPE_ENV, input_type.as_str())
            .arg(PROGRAM_NAME)
            .build_p1();
        let state = GuestState {
            wasi,
            limiter: MemoryLimiter {
                memory_bytes: memory_cap,
                hit: false,
                reserved: pre.initial_memory,
                permit,
                budget_hit: false,
            },
            declared: None,
            error: None,
            deadline,
            data_api: input.data_api,
            reply: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Compiled code keeps its fuel count in a register and stores it only
        // when it calls out (or runs out of its slice), so a guest stopped by
        // the deadline or a trap inside a loop would seem to have used none:
        // handing fuel out in slices makes the count at most a slice short.
        store
            .fuel_async_yield_interval(Some(FUEL_SLICE))
            .map_err(internal)?;
        store.set_fuel(limits.fuel).map_err(internal)?;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let exec_started = Instant::now();
        // The epoch callback normally stops the guest; this guard covers host calls.
        let guard = deadline + 4 * self.config.epoch_tick + Duration::from_millis(50);
        let ended = tokio::time::timeout_at(guard.into(), run_guest(&mut store, &pre.pre))
            .await
            .unwrap_or(Ended::TimedOut);
        let duration = exec_started.elapsed();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        // Dropping the store frees the instance (and its memory) before its
        // permit goes back to the gate with the state.
        let state = store.into_data();
        drop(state.wasi);
        outcome::conclude(Run {
            ended,
            input_type,
            declared: state.declared,
            reported_error: state.error,
            memory_cap_hit: state.limiter.hit,
            memory_budget_hit: state.limiter.budget_hit,
            result: stdout.take().0,
            printed: stderr.take(),
            fuel_used,
            duration,
            timeout: limits.timeout,
        })
    }

    /// How many compiled modules are cached.
    pub fn cached_modules(&self) -> usize {
        self.cache
            .read()
            .values()
            .filter(|cell| cell.initialized())
            .count()
    }

    /// The cached `InstancePre` for `key`, compiling `wasm` on a blocking thread on a
    /// miss; concurrent misses for one key share a single compilation.
    async fn instance_pre(&self, key: &str, wasm: &[u8]) -> Result<Pre, CallError> {
        let cell = self.cache.read().get(key).cloned();
        let cell = match cell {
            Some(cell) => cell,
            None => {
                let mut cache = self.cache.write();
                if cache.len() >= MAX_CACHED_MODULES && !cache.contains_key(key) {
                    let victim = cache.keys().next().cloned();
                    if let Some(victim) = victim {
                        cache.remove(&victim);
                    }
                }
                cache.entry(key.to_owned()).or_default().clone()
            }
        };
        if let Some(pre) = cell.get() {
            return Ok(pre.clone());
        }
        let result = cell
            .get_or_try_init(|| async {
                let engine = self.engine.clone();
                let linker = self.linker.clone();
                let wasm = wasm.to_vec();
                let max_memory = self.config.max_memory_bytes;
                tokio::task::spawn_blocking(move || {
                    let binary = to_binary(&wasm)?;
                    compile(&engine, &linker, &binary, max_memory).map(Arc::new)
                })
                .await
                .map_err(|e| CallError::Internal(format!("compilation task failed: {e}")))?
            })
            .await
            .cloned();
        if result.is_err() {
            // Do not keep an empty entry for an artifact that does not compile.
            let mut cache = self.cache.write();
            if cache.get(key).is_some_and(|c| !c.initialized()) {
                cache.remove(key);
            }
        }
        result
    }
}

impl Drop for WasmRuntime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Instantiates and runs `_start`, recording how the run ended.
async fn run_guest(store: &mut Store<GuestState>, pre: &InstancePre<GuestState>) -> Ended {
    let instance = match pre.instantiate_async(&mut *store).await {
        Ok(instance) => instance,
        Err(err) => return Ended::NotInstantiated(err),
    };
    let start = match instance.get_typed_func::<(), ()>(&mut *store, "_start") {
        Ok(start) => start,
        Err(err) => return Ended::NotInstantiated(err),
    };
    match start.call_async(&mut *store, ()).await {
        Ok(()) => Ended::Returned,
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(exit) => Ended::Exited(exit.0),
            None => Ended::Failed(err),
        },
    }
}

/// Converts WAT text to a binary; passes binaries through.
fn to_binary(artifact: &[u8]) -> Result<Vec<u8>, CallError> {
    if !artifact.starts_with(b"\0asm") && std::str::from_utf8(artifact).is_err() {
        return Err(CallError::InvalidModule(
            "not a WebAssembly binary (no \\0asm header) nor WAT text".into(),
        ));
    }
    wat::parse_bytes(artifact)
        .map(|bytes| bytes.into_owned())
        .map_err(|e| CallError::InvalidModule(format!("WAT does not parse: {e}")))
}

/// Compiles a binary and checks it against the guest ABI.
fn compile(
    engine: &Engine,
    linker: &Linker<GuestState>,
    binary: &[u8],
    max_memory_bytes: usize,
) -> Result<Prepared, CallError> {
    let module = Module::new(engine, binary)
        .map_err(|e| CallError::InvalidModule(format!("does not compile: {e:#}")))?;
    let invalid = |msg: String| Err(CallError::InvalidModule(msg));
    for import in module.imports() {
        let (from, name) = (import.module(), import.name());
        if from != WASI_MODULE && from != HOST_MODULE {
            return invalid(format!(
                "import `{from}.{name}` is not allowed: only {WASI_MODULE}.* and {HOST_MODULE}.* \
                 functions may be imported"
            ));
        }
        if !matches!(import.ty(), ExternType::Func(_)) {
            return invalid(format!(
                "import `{from}.{name}` must be a function (memories, tables and globals \
                 cannot be imported)"
            ));
        }
    }
    match module.get_export("_start") {
        Some(ExternType::Func(ty)) if ty.params().len() == 0 && ty.results().len() == 0 => {}
        Some(_) => return invalid("export `_start` must be a function `() -> ()`".into()),
        None => return invalid("no `_start` export: build a WASI command module".into()),
    }
    let initial_memory = match module.get_export("memory") {
        Some(ExternType::Memory(ty)) => {
            let initial = ty.minimum().saturating_mul(ty.page_size());
            if initial > max_memory_bytes as u64 {
                return invalid(format!(
                    "initial memory of {initial} bytes exceeds the runtime's limit of \
                     {max_memory_bytes} bytes"
                ));
            }
            initial
        }
        _ => return invalid("no exported memory named `memory`".into()),
    };
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| CallError::InvalidModule(format!("imports do not link: {e:#}")))?;
    Ok(Prepared {
        pre,
        initial_memory,
    })
}

/// Starts the thread that advances the engine's epoch every `tick` until `stop` is set.
fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) -> Result<(), CallError> {
    std::thread::Builder::new()
        .name("algohub-wasm-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(drop)
        .map_err(|e| CallError::Internal(format!("cannot start the epoch thread: {e}")))
}

fn internal(err: wasmtime::Error) -> CallError {
    CallError::Internal(format!("{err:#}"))
}

#[cfg(test)]
mod tests;
