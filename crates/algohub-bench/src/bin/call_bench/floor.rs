//! The floor rows: the least a call must do beyond the bare handler, served
//! by the bare handler itself. The issue asks for a fresh wasm instance per
//! call and a durable usage record per call, so a bare axum handler that only
//! runs a fresh instance of the echo module on algohub's wasm runtime (and,
//! in the second row, also copies one usage-record-sized line into a mapped
//! file, as the usage journal appends) bounds from above what any call path built on
//! those two can keep of the bare handler's throughput: no key, policy,
//! admission, envelope, error listing or store load is in it.

use algohub_runtime::{CallInput, ContentType, ECHO_WAT, Limits};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of one floor journal line: about a usage record's journal line.
const LINE_BYTES: usize = 200;
/// Bytes of the floor's journal file (allocated, then mapped; lines wrap
/// around in it).
const JOURNAL_BYTES: usize = 16 << 20;

/// Starts the floor handler; with `journal`, each call also appends a line
/// to a file in that directory before answering. Returns its URL.
pub async fn start_floor(journal: Option<&Path>) -> Result<String, String> {
    use axum::routing::post;
    let rt = algohub::executor::shared_wasm_runtime(&algohub_runtime::RuntimeConfig::default())?;
    let wasm = Arc::new(rt.prepare(ECHO_WAT.as_bytes()).map_err(|e| e.to_string())?);
    let file = match journal {
        Some(dir) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(dir.join("floor-journal"))
                .map_err(|e| format!("cannot open the floor journal: {e}"))?;
            std::io::Write::write_all(&mut &file, &vec![0u8; JOURNAL_BYTES])
                .map_err(|e| format!("cannot allocate the floor journal: {e}"))?;
            // SAFETY: the file was just made (truncated) in the benchmark's own
            // directory and is kept, unshrunk, with its map for the whole run.
            #[allow(unsafe_code)]
            let map = unsafe { algohub_sync::MappedFile::map(&file) }.map_err(|e| e.to_string())?;
            Some(Arc::new(std::sync::Mutex::new((file, map))))
        }
        None => None,
    };
    let calls = Arc::new(AtomicU64::new(0));
    let handler = move |body: axum::body::Bytes| {
        let (rt, wasm, file, calls) = (rt.clone(), wasm.clone(), file.clone(), calls.clone());
        async move {
            let limits = Limits {
                fuel: algohub::executor::CALL_FUEL,
                ..Limits::default()
            };
            let input = CallInput::new(ContentType::Text, body.to_vec());
            let out = match rt.call("floor-echo", &wasm, input, &limits).await {
                Ok(out) => out.data,
                Err(e) => {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        .into_response();
                }
            };
            if let Some(file) = &file {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                let mut line = format!("{{\"call\":{n},\"pad\":\"");
                line.extend(std::iter::repeat_n(
                    'x',
                    LINE_BYTES.saturating_sub(line.len() + 3),
                ));
                line.push_str("\"}\n");
                let at = (n as usize * LINE_BYTES) % (JOURNAL_BYTES - LINE_BYTES);
                let written = match file.lock() {
                    Ok(mut f) => f.1.write_at(at, line.as_bytes()).map_err(|e| e.to_string()),
                    Err(_) => Err("the floor journal lock is poisoned".to_string()),
                };
                if let Err(e) = written {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e).into_response();
                }
            }
            out.into_response()
        }
    };
    use axum::response::IntoResponse;
    let app = axum::Router::new().route("/floor", post(handler));
    super::targets::serve_on_loopback(app, "/floor").await
}
