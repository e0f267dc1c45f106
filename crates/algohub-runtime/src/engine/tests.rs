//! The engine's tests: limits, fuel, fresh memory per call, the data imports.

use super::*;

#[test]
fn runtime_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<WasmRuntime>();
}

/// Prints the bytes at a few addresses (low, past the first page and in a
/// page it grows), then dirties them: if a reused slot kept anything of an
/// earlier call, a later call prints it.
const SNOOP_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write"
(func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
(drop (memory.grow (i32.const 1)))
;; 100..112: the words at 2048, 70000 and 140000 (the grown page).
(i32.store (i32.const 100) (i32.load (i32.const 2048)))
(i32.store (i32.const 104) (i32.load (i32.const 70000)))
(i32.store (i32.const 108) (i32.load (i32.const 140000)))
(i32.store (i32.const 0) (i32.const 100))
(i32.store (i32.const 4) (i32.const 12))
(drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
(i32.store (i32.const 2048) (i32.const 0x5ec2e7))
(i32.store (i32.const 70000) (i32.const 0x5ec2e7))
(i32.store (i32.const 140000) (i32.const 0x5ec2e7))))
"#;

#[tokio::test]
async fn every_call_starts_from_zeroed_memory() {
    // One slot, so every call reuses the memory of the one before.
    let rt = WasmRuntime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let wasm = rt.prepare(SNOOP_WAT.as_bytes()).unwrap();
    for call in 0..5 {
        let out = rt
            .call(
                "snoop",
                &wasm,
                CallInput::new(crate::ContentType::Binary, Vec::new()),
                &Limits::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            out.data, [0u8; 12],
            "call {call} saw an earlier call's memory"
        );
    }
}

/// A data API over a map: `read` of an unknown path fails.
#[derive(Default)]
struct MapData(parking_lot::Mutex<HashMap<String, Vec<u8>>>);

impl crate::GuestData for MapData {
    fn read(&self, path: String) -> crate::HostFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            self.0
                .lock()
                .get(&path)
                .cloned()
                .ok_or_else(|| format!("data_not_found: {path}"))
        })
    }
    fn write(&self, path: String, bytes: Vec<u8>) -> crate::HostFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0.lock().insert(path, bytes);
            Ok(())
        })
    }
}

/// Reads `in/a` (taking the reply in two pieces), writes it to `out/b`,
/// reads a missing file and takes the message; prints the answers as
/// i32s: read, length, piece 1, piece 2, length after, write, failed
/// read, then the message.
const DATA_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write"
(func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "algohub" "data_read" (func $read (param i32 i32) (result i32)))
  (import "algohub" "data_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "algohub" "reply_len" (func $len (result i32)))
  (import "algohub" "reply_read" (func $take (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) " in/a\n")
  (data (i32.const 110) "out/b")
  (data (i32.const 120) "nope")
  (func (export "_start")
(i32.store (i32.const 400) (call $read (i32.const 100) (i32.const 6)))
(i32.store (i32.const 404) (call $len))
(i32.store (i32.const 408) (call $take (i32.const 200) (i32.const 5)))
(i32.store (i32.const 412) (call $take (i32.const 205) (i32.const 100)))
(i32.store (i32.const 416) (call $len))
(i32.store (i32.const 420) (call $write (i32.const 110) (i32.const 5) (i32.const 200) (i32.const 11)))
(i32.store (i32.const 424) (call $read (i32.const 120) (i32.const 4)))
(drop (call $take (i32.const 428) (call $len)))
(i32.store (i32.const 0) (i32.const 400))
(i32.store (i32.const 4) (i32.const 48))
(drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

#[tokio::test]
async fn guests_use_the_data_api_through_the_imports() {
    let rt = WasmRuntime::new(RuntimeConfig {
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let wasm = rt.prepare(DATA_WAT.as_bytes()).unwrap();
    let data = Arc::new(MapData::default());
    data.0.lock().insert("in/a".into(), b"hello world".to_vec());
    let input = CallInput::new(crate::ContentType::Binary, Vec::new()).with_data_api(data.clone());
    let out = rt
        .call("data", &wasm, input, &Limits::default())
        .await
        .unwrap();
    let ints: Vec<i32> = out.data[..28]
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ints, [0, 11, 5, 6, 0, 0, 1]);
    assert_eq!(&out.data[28..], b"data_not_found: nope");
    assert_eq!(data.0.lock()["out/b"], b"hello world");

    // Without data API access, every data import fails with a message.
    let out = rt
        .call(
            "data",
            &wasm,
            CallInput::new(crate::ContentType::Binary, Vec::new()),
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.data[..4], 1i32.to_le_bytes());
    assert_eq!(&out.data[28..], b"this call has no dat");
}

/// A loop that never ends (as `examples/slow.wat`): one `br`, one fuel
/// unit, a turn.
const BUSY_WAT: &str =
    "(module (memory (export \"memory\") 1) (func (export \"_start\") (loop $l (br $l))))";

async fn run_busy_loop(limits: &Limits) -> CallError {
    let rt = WasmRuntime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let wasm = rt.prepare(BUSY_WAT.as_bytes()).unwrap();
    let input = CallInput::new(crate::ContentType::Void, Vec::new());
    rt.call("busy", &wasm, input, limits).await.unwrap_err()
}

/// Fuel out of reach: the deadline ends the loop, and the fuel it burned
/// until then is reported (it was 0: compiled code keeps its count in a
/// register, and nothing stored it before the deadline's trap). How much
/// a loop burns per second: `examples/fuel_rate.rs`.
#[tokio::test]
async fn an_endless_loop_with_ample_fuel_is_stopped_by_its_deadline() {
    let limits = Limits {
        fuel: u64::MAX,
        timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    match run_busy_loop(&limits).await {
        CallError::Timeout { after, fuel_used } => {
            assert_eq!(after, limits.timeout);
            assert!(fuel_used > 0 && fuel_used < limits.fuel, "{fuel_used}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// A deadline out of reach: the fuel ends the loop, and all of it is
/// reported as used.
#[tokio::test]
async fn an_endless_loop_with_little_fuel_is_stopped_by_its_fuel() {
    let limits = Limits {
        fuel: 1_000_000,
        timeout: Duration::from_secs(3000),
        ..Limits::default()
    };
    let err = run_busy_loop(&limits).await;
    assert_eq!(
        err,
        CallError::OutOfFuel {
            fuel_used: 1_000_000
        }
    );
    assert_eq!(err.fuel_used(), 1_000_000);
}

/// Issue 21: the default budget ran out after 5 to 10 s of a busy loop
/// although the default deadline is 300 s. A call's default fuel now
/// grows with its timeout, at a rate a busy loop cannot reach (one turn
/// per fuel unit would take 100 billion turns a second), so the deadline
/// stops it, here after 300 ms as it would after 300 s.
#[tokio::test]
async fn by_default_a_busy_loop_meets_its_deadline_before_its_fuel_ends() {
    let limits = Limits::with_timeout(Duration::from_millis(300));
    assert_eq!(limits.fuel, crate::DEFAULT_FUEL_PER_SEC / 10 * 3);
    match run_busy_loop(&limits).await {
        // (On a loaded machine the deadline may pass before the guest
        // has run much, or at all: only "before its fuel ends" is asked.)
        CallError::Timeout { fuel_used, .. } => {
            assert!(fuel_used < limits.fuel, "{fuel_used}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn the_fuel_budget_is_the_rate_times_the_timeout() {
    let per_sec = crate::DEFAULT_FUEL_PER_SEC;
    assert_eq!(
        Limits::default().fuel,
        per_sec * crate::DEFAULT_TIMEOUT.as_secs()
    );
    assert_eq!(Limits::default().timeout, crate::DEFAULT_TIMEOUT);
    assert_eq!(Limits::fuel_for(Duration::from_secs(2), 1000), 2000);
    assert_eq!(Limits::fuel_for(Duration::from_millis(1500), 1000), 1500);
    assert_eq!(Limits::fuel_for(Duration::from_micros(1), 1000), 0);
    assert_eq!(
        Limits::fuel_for(Duration::from_secs(3000), u64::MAX),
        u64::MAX
    );
    let limits = Limits::with_timeout(Duration::from_secs(7));
    assert_eq!(
        (limits.fuel, limits.timeout, limits.memory_bytes),
        (
            per_sec * 7,
            Duration::from_secs(7),
            Limits::default().memory_bytes
        )
    );
}

#[test]
fn prepare_converts_wat_and_keeps_binaries() {
    let rt = WasmRuntime::new(RuntimeConfig {
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let binary = rt.prepare(crate::ECHO_WAT.as_bytes()).unwrap();
    assert!(binary.starts_with(b"\0asm"));
    assert_eq!(rt.prepare(&binary).unwrap(), binary);
    assert!(matches!(
        rt.prepare(b"\xff\xfe garbage"),
        Err(CallError::InvalidModule(_))
    ));
}

/// Sleeps ten seconds in WASI `poll_oneoff` (a relative monotonic clock
/// subscription), spending no fuel.
const SLEEP_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store8 (i32.const 264) (i32.const 0))
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 10000000000))
    (drop (call $poll (i32.const 256) (i32.const 320) (i32.const 1) (i32.const 400)))))"#;

#[tokio::test]
async fn time_spent_sleeping_counts_against_the_time_limit() {
    let rt = WasmRuntime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let wasm = rt.prepare(SLEEP_WAT.as_bytes()).unwrap();
    let limits = Limits::with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let input = CallInput::new(crate::ContentType::Void, Vec::new());
    let err = rt.call("sleep", &wasm, input, &limits).await.unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The instance went back: the next call starts at once.
    let input = CallInput::new(crate::ContentType::Void, Vec::new());
    let err = rt.call("sleep", &wasm, input, &limits).await.unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
}
