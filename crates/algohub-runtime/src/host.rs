//! What the host gives a guest: the per-call store state, the `algohub.*` imports and
//! the memory limiter.
//!
//! Design: the linker is built once per runtime (WASI preview 1 async functions plus the
//! `algohub` functions) and shared by every `InstancePre`; everything a call owns
//! (WASI context, declared content type, reported error, deadline, limiter, data API
//! access and its pending reply) lives in [`GuestState`], the store's data, so calls
//! cannot see each other. Host functions never panic on guest input: bad pointers or
//! names become typed traps ([`GuestAbiError`]) that the outcome mapping turns into
//! algorithm errors. The data imports are async (they await the host application's
//! [`GuestData`]); the call's wall-clock guard covers the wait. A data failure is not
//! a trap: the import answers 1 and the message is the pending reply, so the guest
//! decides what to do.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Caller, Engine, Linker, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::ContentType;
use crate::share::Permit;

/// Module name of the algohub host imports.
pub const HOST_MODULE: &str = "algohub";
/// Module name of WASI preview 1.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// Longest string a guest may pass to a host import.
const MAX_HOST_STRING: usize = 1 << 20;
/// Most table elements a guest may grow a table to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Raised (as a trap) by the epoch callback once the call's deadline has passed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the call's deadline passed")]
pub struct DeadlineExceeded;

/// Raised (as a trap) when the guest misuses an `algohub.*` import.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct GuestAbiError(pub String);

/// Caps linear memory and tables, reserves memory growth from the node's
/// budget, and remembers whether the cap or the budget stopped a growth.
pub struct MemoryLimiter {
    pub memory_bytes: usize,
    pub hit: bool,
    /// Linear memory reserved for this instance so far.
    pub reserved: u64,
    /// The instance's slot and memory reservation (`share`).
    pub permit: Permit,
    /// A growth within the cap was refused because the budget was used up.
    pub budget_hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            return Ok(false);
        }
        let desired = desired as u64;
        if desired > self.reserved {
            if !self.permit.grow(desired - self.reserved) {
                self.budget_hit = true;
                return Ok(false);
            }
            self.reserved = desired;
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Everything one call owns; the data of its store.
pub struct GuestState {
    pub wasi: WasiP1Ctx,
    pub limiter: MemoryLimiter,
    /// Set by `algohub.set_content_type`.
    pub declared: Option<ContentType>,
    /// Set by `algohub.set_error` (the raw string the guest passed).
    pub error: Option<String>,
    /// When the epoch callback stops the guest.
    pub deadline: Instant,
    /// Backs the `algohub.data_*` imports (none: no data API access).
    pub data_api: Option<Arc<dyn GuestData>>,
    /// The answer of the last `data_*` import not yet taken with
    /// `reply_read`: a file's bytes, or an error message.
    pub reply: Vec<u8>,
}

/// A boxed future a host application's data API returns.
pub type HostFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The data API as a guest sees it during one call, provided by the host
/// application (which decides whom the guest acts as and what it may touch).
/// Errors are messages for the guest.
pub trait GuestData: Send + Sync {
    /// The bytes of the file at `path` (`data://owner/collection/file`).
    fn read(&self, path: String) -> HostFuture<'_, Result<Vec<u8>, String>>;
    /// Creates or replaces the file at `path`.
    fn write(&self, path: String, bytes: Vec<u8>) -> HostFuture<'_, Result<(), String>>;
}

/// Largest file a guest may write with `algohub.data_write` (as the data API
/// takes over HTTP).
pub const MAX_DATA_WRITE_BYTES: usize = 64 << 20;

/// What a `data_*` import returns: 0 done (for a read, the file is the
/// pending reply), 1 failed (the message is the pending reply).
const DATA_OK: i32 = 0;
const DATA_FAILED: i32 = 1;

impl GuestState {
    /// Sets the pending reply and returns the import's answer.
    fn answer(&mut self, outcome: Result<Vec<u8>, String>) -> i32 {
        match outcome {
            Ok(bytes) => {
                self.reply = bytes;
                DATA_OK
            }
            Err(message) => {
                self.reply = message.into_bytes();
                DATA_FAILED
            }
        }
    }
}

/// Builds the linker every guest module is instantiated against.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut GuestState| &mut s.wasi)?;
    linker.func_wrap(
        HOST_MODULE,
        "set_content_type",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let name = read_string(&mut caller, ptr, len)?;
            let ty = ContentType::parse(name.trim()).ok_or_else(|| {
                GuestAbiError(format!(
                    "set_content_type: unknown content type {name:?} \
                     (expected text, json, binary or void)"
                ))
            })?;
            caller.data_mut().declared = Some(ty);
            Ok(())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "set_error",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let message = read_string(&mut caller, ptr, len)?;
            caller.data_mut().error = Some(message);
            Ok(())
        },
    )?;
    add_data_imports(&mut linker)?;
    Ok(linker)
}

/// `algohub.data_read`, `data_write`, `reply_len` and `reply_read`.
fn add_data_imports(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        HOST_MODULE,
        "data_read",
        |mut caller: Caller<'_, GuestState>, (ptr, len): (i32, i32)| {
            Box::new(async move {
                let path = read_string(&mut caller, ptr, len)?;
                let outcome = match caller.data().data_api.clone() {
                    None => Err(NO_DATA_API.to_string()),
                    Some(api) => {
                        let cap = caller.data().limiter.memory_bytes;
                        api.read(path.trim().to_string())
                            .await
                            .and_then(|bytes| fits_memory(bytes, cap))
                    }
                };
                Ok(caller.data_mut().answer(outcome))
            })
        },
    )?;
    linker.func_wrap_async(
        HOST_MODULE,
        "data_write",
        |mut caller: Caller<'_, GuestState>,
         (path_ptr, path_len, ptr, len): (i32, i32, i32, i32)| {
            Box::new(async move {
                let path = read_string(&mut caller, path_ptr, path_len)?;
                let bytes = read_bytes(&mut caller, ptr, len, MAX_DATA_WRITE_BYTES)?;
                let outcome = match caller.data().data_api.clone() {
                    None => Err(NO_DATA_API.to_string()),
                    Some(api) => api
                        .write(path.trim().to_string(), bytes)
                        .await
                        .map(|()| Vec::new()),
                };
                Ok(caller.data_mut().answer(outcome))
            })
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "reply_len",
        |caller: Caller<'_, GuestState>| -> i32 {
            // At most the memory cap (`fits_memory`), far below i32::MAX.
            i32::try_from(caller.data().reply.len()).unwrap_or(i32::MAX)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "reply_read",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let n = caller.data().reply.len().min(len as u32 as usize);
            let chunk: Vec<u8> = caller.data_mut().reply.drain(..n).collect();
            write_bytes(&mut caller, ptr, &chunk)?;
            Ok(i32::try_from(n).unwrap_or(i32::MAX))
        },
    )?;
    Ok(())
}

const NO_DATA_API: &str = "this call has no data API access";

/// A file a guest reads must fit its memory cap.
fn fits_memory(bytes: Vec<u8>, cap: usize) -> Result<Vec<u8>, String> {
    if bytes.len() > cap {
        return Err(format!(
            "the file is {} bytes, more than the algorithm's memory limit ({cap} bytes)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn guest_memory(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<wasmtime::Memory> {
    caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| {
            wasmtime::Error::new(GuestAbiError(
                "host call needs an exported memory named \"memory\"".into(),
            ))
        })
}

/// Copies `bytes` into the guest's memory at `ptr`.
fn write_bytes(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let memory = guest_memory(caller)?;
    memory
        .write(&mut *caller, ptr as u32 as usize, bytes)
        .map_err(|_| {
            wasmtime::Error::new(GuestAbiError(format!(
                "reply_read: {} bytes at {} are out of bounds",
                bytes.len(),
                ptr as u32
            )))
        })
}

/// Reads a UTF-8 string (lossily) from the guest's exported memory.
fn read_string(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<String> {
    let bytes = read_bytes(caller, ptr, len, MAX_HOST_STRING)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Copies `len` bytes (at most `max`) at `ptr` out of the guest's memory.
fn read_bytes(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    len: i32,
    max: usize,
) -> wasmtime::Result<Vec<u8>> {
    let abi = |msg: String| wasmtime::Error::new(GuestAbiError(msg));
    let memory = guest_memory(caller)?;
    // Pointers and lengths are i32 in the ABI but denote unsigned wasm32 addresses.
    let start = ptr as u32 as usize;
    let len = len as u32 as usize;
    if len > max {
        return Err(abi(format!(
            "host call argument is {len} bytes; the limit is {max}"
        )));
    }
    let data = memory.data(&caller);
    let bytes = start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or_else(|| {
            abi(format!(
                "host call argument at {start}+{len} is out of bounds"
            ))
        })?;
    Ok(bytes.to_vec())
}
