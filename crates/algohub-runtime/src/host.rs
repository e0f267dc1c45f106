//! What the host gives a guest: the per-call store state, the `algohub.*` imports and
//! the memory limiter.
//!
//! Design: the linker is built once per runtime (WASI preview 1 async functions plus the
//! two `algohub` functions) and shared by every `InstancePre`; everything a call owns
//! (WASI context, declared content type, reported error, deadline, limiter) lives in
//! [`GuestState`], the store's data, so calls cannot see each other. Host functions
//! never panic on guest input: bad pointers or names become typed traps
//! ([`GuestAbiError`]) that the outcome mapping turns into algorithm errors.

use std::time::Instant;

use wasmtime::{Caller, Engine, Linker, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::ContentType;

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

/// Caps linear memory and tables, and remembers whether the memory cap was hit.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub memory_bytes: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        if !allowed {
            self.hit = true;
        }
        Ok(allowed)
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
    Ok(linker)
}

/// Reads a UTF-8 string (lossily) from the guest's exported memory.
fn read_string(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<String> {
    let abi = |msg: String| wasmtime::Error::new(GuestAbiError(msg));
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| abi("host call needs an exported memory named \"memory\"".into()))?;
    // Pointers and lengths are i32 in the ABI but denote unsigned wasm32 addresses.
    let start = ptr as u32 as usize;
    let len = len as u32 as usize;
    if len > MAX_HOST_STRING {
        return Err(abi(format!(
            "host call string is {len} bytes; the limit is {MAX_HOST_STRING}"
        )));
    }
    let data = memory.data(&caller);
    let bytes = start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or_else(|| {
            abi(format!(
                "host call string at {start}+{len} is out of bounds"
            ))
        })?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}
