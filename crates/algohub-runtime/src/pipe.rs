//! Capped in-memory output streams for a guest's stdout and stderr.
//!
//! Design: wasmtime-wasi's `MemoryOutputPipe` traps with an opaque message when full and
//! its generic fallback spawns a worker task per stream. This pipe implements the WASI
//! stream traits directly (no task, no copy beyond the buffer) and has two overflow
//! policies: the result stream traps with a typed [`OutputLimitExceeded`] so the call
//! fails with a clear algorithm error, while the printed-output stream keeps the first
//! `cap` bytes and silently drops the rest.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// How much a guest may hand over in one write (the WASI "permit"); the cap is enforced
/// in `write`, so this only bounds the size of one chunk.
const WRITE_PERMIT: usize = 64 * 1024;

/// Raised (as a trap) when the result stream would grow past its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the result is larger than the output limit of {limit} bytes")]
pub struct OutputLimitExceeded {
    pub limit: usize,
}

#[derive(Debug)]
struct State {
    buf: Vec<u8>,
    cap: usize,
    /// Trap on overflow (result) instead of truncating (printed output).
    strict: bool,
    truncated: bool,
}

/// A shared, capped byte buffer usable as a WASI stdout/stderr.
#[derive(Debug, Clone)]
pub struct CappedPipe {
    state: Arc<Mutex<State>>,
}

impl CappedPipe {
    /// A pipe whose overflow is an error (for the result).
    pub fn strict(cap: usize) -> Self {
        Self::new(cap, true)
    }

    /// A pipe that keeps the first `cap` bytes (for printed output).
    pub fn truncating(cap: usize) -> Self {
        Self::new(cap, false)
    }

    fn new(cap: usize, strict: bool) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                buf: Vec::new(),
                cap,
                strict,
                truncated: false,
            })),
        }
    }

    /// Takes the bytes written so far and whether any were dropped.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut state = self.state.lock();
        (std::mem::take(&mut state.buf), state.truncated)
    }

    /// Appends as much of `bytes` as fits; in strict mode an overflow is an error.
    fn append(&self, bytes: &[u8]) -> Result<usize, OutputLimitExceeded> {
        let mut state = self.state.lock();
        let room = state.cap.saturating_sub(state.buf.len());
        if bytes.len() > room {
            if state.strict {
                return Err(OutputLimitExceeded { limit: state.cap });
            }
            state.truncated = true;
        }
        let n = bytes.len().min(room);
        state.buf.extend_from_slice(&bytes[..n]);
        Ok(n)
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes)
            .map(drop)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // Report the whole buffer as written even when truncating, so writers never spin.
        Poll::Ready(
            self.append(buf)
                .map(|_| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_pipe_refuses_overflow_and_keeps_what_fit() {
        let pipe = CappedPipe::strict(4);
        assert_eq!(pipe.append(b"abc"), Ok(3));
        assert_eq!(pipe.append(b"de"), Err(OutputLimitExceeded { limit: 4 }));
        assert_eq!(pipe.append(b"d"), Ok(1));
        assert_eq!(pipe.take(), (b"abcd".to_vec(), false));
    }

    #[test]
    fn truncating_pipe_keeps_the_head() {
        let pipe = CappedPipe::truncating(4);
        assert_eq!(pipe.append(b"abc"), Ok(3));
        assert_eq!(pipe.append(b"defg"), Ok(1));
        assert_eq!(pipe.append(b"h"), Ok(0));
        assert_eq!(pipe.take(), (b"abcd".to_vec(), true));
    }
}
