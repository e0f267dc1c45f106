//! How much fuel guests burn per second on this machine: each guest loops
//! for ever with a fixed fuel budget and a deadline out of reach, so its fuel
//! ends it, and the rate is the budget over the time that took.
//!
//! ```sh
//! cargo run -p algohub-runtime --release --example fuel_rate [-- FUEL]
//! ```
//!
//! The guest's machine code is compiled by Cranelift the same way in debug
//! and release builds of the host; only the host's share (instantiation, the
//! yields every epoch tick and fuel slice) differs.

use std::time::{Duration, Instant};

use algohub_runtime::{CallError, CallInput, ContentType, Limits, RuntimeConfig, WasmRuntime};

/// (name, what one turn does, module).
const GUESTS: [(&str, &str, &str); 3] = [
    (
        "busy loop",
        "br: 1 unit a turn (examples/slow.wat)",
        r#"(module (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"#,
    ),
    (
        "counting loop",
        "local.get, i32.const, i32.add, local.tee, i32.const, i32.ne, br_if: 7 units a turn",
        r#"(module (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const -1)))
      (local.set $i (i32.const 0))
      (br $l))))"#,
    ),
    (
        "memory loop",
        "a load, an add and a store at a moving address: 13 units a turn",
        r#"(module (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (i32.store (local.get $i)
        (i32.add (i32.load (local.get $i)) (i32.const 1)))
      (local.set $i (i32.and (i32.add (local.get $i) (i32.const 4)) (i32.const 65532)))
      (br $l))))"#,
    ),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fuel: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 20_000_000_000,
    };
    let rt = WasmRuntime::new(RuntimeConfig::default())?;
    let limits = Limits {
        fuel,
        timeout: Duration::from_secs(3000),
        ..Limits::default()
    };
    println!(
        "{} build of the host, {fuel} fuel units per run",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for (name, turn, wat) in GUESTS {
        let wasm = rt.prepare(wat.as_bytes())?;
        let mut rates = Vec::new();
        for _ in 0..3 {
            let input = CallInput::new(ContentType::Void, Vec::new());
            let started = Instant::now();
            match rt.call(name, &wasm, input, &limits).await {
                Err(CallError::OutOfFuel { fuel_used }) => {
                    rates.push(fuel_used as f64 / started.elapsed().as_secs_f64());
                }
                other => return Err(format!("{name}: expected out of fuel, got {other:?}").into()),
            }
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{name:>13}: {:.2e} units/s (median of 3; {:.2e}..{:.2e}), {turn}",
            rates[1], rates[0], rates[2]
        );
    }
    Ok(())
}
