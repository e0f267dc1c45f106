//! `call-bench`: the whole call path of algohub (authentication, policy,
//! version resolution, wasm echo) over loopback HTTP, side by side with a bare
//! axum handler that echoes the body (the practical limit on this machine) and
//! with that bare handler behind nginx (what a gateway in front of a model
//! server costs). The load comes from `wrk` (Debian package `wrk`); nginx from
//! `nginx-light`. Prints one table and the goals; exits non-zero if a tool is
//! missing or a target answers wrongly.
//!
//! ```text
//! CARGO_TARGET_DIR=target-bench cargo run --release -p algohub-bench --bin call-bench -- \
//!     [--seconds 10] [--connections 32] [--threads 1] [--instances 20000] [--wasm-only] [--algohub-only]
//! ```
//!
//! Design: every target runs in this process's tokio runtime (except nginx,
//! a child process) and is loaded one at a time with the same wrk settings and
//! the same 5-byte text body, so the ratios compare like with like. "Full
//! load" is wrk's closed loop with `--connections`. "Half load" is measured
//! two ways, each at half of algohub's full-load throughput (half of the
//! bare handler's would be more than algohub can carry, so its p50 would
//! measure a queue): in a closed loop with the fewest connections with which
//! algohub carries that rate (each target then loaded with as many; the goal
//! is read here), and paced, each connection pausing with a Lua `delay()`.
//! wrk's timers have whole-millisecond resolution, so paced requests arrive
//! in bursts at millisecond boundaries and the paced p50 includes the queue
//! of a burst (it inflates even the bare handler's p50 several times over);
//! it is printed for comparison. "Light load" is one connection in a closed
//! loop: nothing waits, and its p50 difference is what one call adds.
//! A second algohub node on the same database, with metering switched off,
//! is loaded beside the first: the difference is what durable metering (the
//! usage journal and its loader) costs the call path over HTTP.
//! Two floor rows (`floor.rs`) load the bare handler running a fresh echo
//! instance per request (and copying one journal-sized line into a mapped
//! file, as the usage journal appends): the most a
//! call path with a fresh instance and a record per call can keep.
//! The wasm row times a fresh instance plus a call of the echo module with no
//! HTTP at all (pooling allocator, compiled module cached), beside the
//! on-demand allocator for comparison.

/// The server's allocator, so that the call path is measured as it runs.
#[global_allocator]
static ALLOCATOR: algohub::ServerAllocator = algohub::ServerAllocator;

#[path = "../../async_main.rs"]
mod async_main;
use algohub_runtime::{AllocatorKind, CallInput, ContentType, ECHO_WAT, Limits, RuntimeConfig};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod floor;
mod metering;
mod targets;
mod tools;
use metering::{METERING_ROUNDS, metering_rounds};
use targets::{start_algohub, start_bare, start_unmetered};
use tools::{start_nginx, write_script, wrk};

#[derive(Debug, Clone, Copy)]
struct Options {
    seconds: u64,
    connections: u64,
    threads: u64,
    instances: usize,
    /// Only the wasm instance row (no HTTP loads).
    wasm_only: bool,
    /// Only load algohub (for profiling the call path), printing its row.
    algohub_only: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        seconds: 10,
        connections: 32,
        threads: 1,
        instances: 20_000,
        wasm_only: false,
        algohub_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--wasm-only" {
            o.wasm_only = true;
            continue;
        }
        if flag == "--algohub-only" {
            o.algohub_only = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!(
                "call-bench [--seconds 10] [--connections 32] [--threads 1] [--instances 20000] [--wasm-only] [--algohub-only]"
            );
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value:?}"))?;
        match flag.as_str() {
            "--seconds" => o.seconds = n.max(1),
            "--connections" => o.connections = n.max(1),
            "--threads" => o.threads = n.max(1),
            "--instances" => o.instances = usize::try_from(n).unwrap_or(20_000).max(100),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(o)
}

/// One POST, to check a target answers what it should before loading it.
async fn probe(url: &str, key: &str) -> Result<String, String> {
    let resp = reqwest::Client::new()
        .post(url)
        .header("Authorization", key)
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {body}"));
    }
    Ok(body)
}

async fn wait_for(url: &str, key: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match probe(url, key).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Fresh instance + call of the echo module, per call, in microseconds (p50, p99, mean).
async fn wasm_instance_cost(kind: AllocatorKind, n: usize) -> Result<(f64, f64, f64), String> {
    let rt = algohub_runtime::WasmRuntime::with_allocator(RuntimeConfig::default(), kind)
        .map_err(|e| e.to_string())?;
    let wasm = rt.prepare(ECHO_WAT.as_bytes()).map_err(|e| e.to_string())?;
    let limits = Limits::default();
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 200 {
        let input = CallInput::new(ContentType::Text, "hello");
        let t = Instant::now();
        let out = rt
            .call("echo", &wasm, input, &limits)
            .await
            .map_err(|e| e.to_string())?;
        let dt = t.elapsed();
        if out.data != b"hello" {
            return Err("the echo module answered wrongly".into());
        }
        if i >= 200 {
            times.push(dt.as_secs_f64() * 1e6);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    Ok((pct(0.5), pct(0.99), mean))
}

/// Loads each target in turn with the same script and connection count.
async fn load_each(
    o: Options,
    targets: &[(&'static str, &str)],
    script: &Path,
    connections: u64,
) -> Result<Vec<(&'static str, tools::Load)>, String> {
    let mut loads = Vec::new();
    for (name, url) in targets {
        let l = tokio::task::spawn_blocking({
            let (url, script) = (url.to_string(), script.to_path_buf());
            move || wrk(&o, &url, &script, connections)
        })
        .await
        .map_err(|e| e.to_string())??;
        loads.push((*name, l));
    }
    Ok(loads)
}

/// A table of loads, the first being the bare handler's.
fn print_added_over_bare(loads: &[(&str, tools::Load)]) {
    println!("| target | requests/s | p50 | p99 | p50 added over bare |");
    println!("|---|---:|---:|---:|---:|");
    let bare = loads[0].1;
    for (name, l) in loads {
        println!(
            "| {name} | {:.0} | {:.0} µs | {:.0} µs | {:+.0} µs |",
            l.rps,
            l.p50_us,
            l.p99_us,
            l.p50_us - bare.p50_us
        );
    }
}

fn check(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

async fn run(o: Options) -> Result<bool, String> {
    if o.wasm_only {
        let (p50, p99, mean) = wasm_instance_cost(AllocatorKind::Pooling, o.instances).await?;
        println!("| allocator | p50 | p99 | mean |");
        println!("|---|---:|---:|---:|");
        println!("| pooling | {p50:.1} µs | {p99:.1} µs | {mean:.1} µs |");
        return Ok(true);
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (server, algo_url, key) = start_algohub(dir.path()).await?;
    let unmetered_url = start_unmetered(dir.path()).await?;
    let bare_url = start_bare().await?;
    let floor_url = floor::start_floor(None).await?;
    let floor_journal_url = floor::start_floor(Some(dir.path())).await?;
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).map_err(|e| e.to_string())?;
    let (_nginx, nginx_url) = start_nginx(&nginx_dir, &bare_url)?;
    wait_for(&nginx_url, &key).await?;
    let answer = probe(&algo_url, &key).await?;
    if !answer.contains("\"result\":\"hello\"") {
        return Err(format!("algohub answered {answer}"));
    }
    let answer = probe(&unmetered_url, &key).await?;
    if !answer.contains("\"result\":\"hello\"") {
        return Err(format!("algohub without metering answered {answer}"));
    }
    for url in [&bare_url, &nginx_url, &floor_url, &floor_journal_url] {
        if probe(url, &key).await? != "hello" {
            return Err(format!("{url} answered wrongly"));
        }
    }
    let script = write_script(dir.path(), &key, None)?;
    if o.algohub_only {
        let (url, script) = (algo_url.clone(), script.clone());
        let l = tokio::task::spawn_blocking(move || wrk(&o, &url, &script, o.connections))
            .await
            .map_err(|e| e.to_string())??;
        println!(
            "algohub call: {:.0} requests/s, p50 {:.0} µs, p99 {:.0} µs, {:.1} µs server CPU per request, {} errors",
            l.rps, l.p50_us, l.p99_us, l.cpu_us, l.errors
        );
        server.stop().await.map_err(|e| e.to_string())?;
        return Ok(l.errors == 0);
    }
    let targets = [
        ("bare axum echo", bare_url.as_str()),
        ("bare echo behind nginx", nginx_url.as_str()),
        ("algohub call (auth, policy, wasm echo)", algo_url.as_str()),
        (
            "algohub call, metering off (not a server setting)",
            unmetered_url.as_str(),
        ),
        (
            "floor: bare handler + fresh wasm echo instance",
            floor_url.as_str(),
        ),
        (
            "floor + one journal line copied into a mapped file",
            floor_journal_url.as_str(),
        ),
    ];
    println!(
        "# call-bench: {} s per run, {} connections, {} wrk thread(s), load avg {}",
        o.seconds,
        o.connections,
        o.threads,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "\nalgohub runs as `algohub serve` does (Prometheus recorder, info-level logs, here to \
         /dev/null) with `access_log = false`, as the nginx beside it runs with `access_log off`."
    );
    let mut full = Vec::new();
    for (name, url) in targets {
        let l = tokio::task::spawn_blocking({
            let (url, script) = (url.to_string(), script.clone());
            move || wrk(&o, &url, &script, o.connections)
        })
        .await
        .map_err(|e| e.to_string())??;
        full.push((name, url, l));
    }
    // Half load: half of algohub's full-load throughput, paced per connection.
    let bare_rps = full[0].2.rps;
    let delay_ms = 2u64;
    let half_conns = ((full[2].2.rps * 0.5) * delay_ms as f64 / 1000.0)
        .round()
        .max(1.0) as u64;
    let paced = write_script(dir.path(), &key, Some(delay_ms))?;
    let targets: Vec<(&'static str, &str)> = full.iter().map(|(n, u, _)| (*n, *u)).collect();
    let half = load_each(o, &targets, &paced, half_conns).await?;
    // Light load: one connection, closed loop (nothing queues; what one call
    // costs end to end, for reading the half-load figures beside).
    let light = load_each(o, &targets, &script, 1).await?;
    // Half load in a closed loop: the fewest connections with which algohub
    // carries half of its full-load rate, every target loaded with as many.
    let half_rate = full[2].2.rps * 0.5;
    let mut closed_conns = 1;
    let mut carried = light[2].1.rps;
    while carried < half_rate && closed_conns < o.connections {
        closed_conns += 1;
        carried = load_each(o, &targets[2..3], &script, closed_conns).await?[0]
            .1
            .rps;
    }
    let closed = load_each(o, &targets, &script, closed_conns).await?;
    let metering = metering_rounds(o, &server.hub, [&algo_url, &unmetered_url], &script).await?;
    let (pool_p50, pool_p99, pool_mean) =
        wasm_instance_cost(AllocatorKind::Pooling, o.instances).await?;
    let (od_p50, od_p99, od_mean) =
        wasm_instance_cost(AllocatorKind::OnDemand, o.instances / 4).await?;
    server.stop().await.map_err(|e| e.to_string())?;

    println!();
    println!("## Full load (closed loop, {} connections)", o.connections);
    println!();
    println!("| target | requests/s | vs bare | p50 | p99 | server CPU per request | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, (name, _, l)) in full.iter().enumerate() {
        // nginx runs in its own processes: only the bare handler behind it
        // is in this one.
        let cpu = if i == 1 {
            "(nginx's not counted)".to_string()
        } else {
            format!("{:.1} µs", l.cpu_us)
        };
        println!(
            "| {name} | {:.0} | {:.2} | {:.0} µs | {:.0} µs | {cpu} | {} |",
            l.rps,
            l.rps / bare_rps,
            l.p50_us,
            l.p99_us,
            l.errors
        );
    }
    println!();
    println!(
        "Server CPU per request: the CPU time (user + system) of this process, where every \
         target but nginx is served, while wrk loaded the row, over the requests answered; \
         wrk's own CPU is not in it. It varies less than throughput on a shared machine."
    );
    println!();
    println!(
        "## Half load, closed loop ({closed_conns} connection(s): the fewest with which algohub carries half of its full-load rate; each sends its next request when the last is answered)"
    );
    println!();
    print_added_over_bare(&closed);
    println!();
    println!(
        "## Half load, paced (half of algohub's full-load rate: {half_conns} connections, each pausing {delay_ms} ms on average, about {:.0} requests/s offered; wrk's timers fire on whole milliseconds, so requests arrive in bursts and the p50 includes a burst's queue)",
        half_conns as f64 * 1000.0 / delay_ms as f64
    );
    println!();
    print_added_over_bare(&half);
    println!();
    println!(
        "## Light load (one connection, closed loop: no queue, so the p50 difference is what the call path itself adds)"
    );
    println!();
    print_added_over_bare(&light);
    println!();
    println!("## Fresh wasm instance + call of the echo module (no HTTP)");
    println!();
    println!("| allocator | p50 | p99 | mean |");
    println!("|---|---:|---:|---:|");
    println!(
        "| pooling (used by algohub) | {pool_p50:.1} µs | {pool_p99:.1} µs | {pool_mean:.1} µs |"
    );
    println!("| on-demand | {od_p50:.1} µs | {od_p99:.1} µs | {od_mean:.1} µs |");

    let ratio = full[2].2.rps / bare_rps;
    let floor_ratio = full[5].2.rps / bare_rps;
    // Durable metering over HTTP: the same call path with and without it.
    let metering_cost = metering.cost();
    println!();
    println!("## Durable metering over HTTP (issue: metering costs < 10%)");
    println!();
    println!("| measure | value | |");
    println!("|---|---:|---|");
    let rounds: Vec<String> = metering
        .rounds
        .iter()
        .map(|(m, u)| format!("{m:.0} / {u:.0}"))
        .collect();
    println!(
        "| full load, {METERING_ROUNDS} rounds alternating: metered / unmetered requests/s | {} | |",
        rounds.join(", ")
    );
    println!(
        "| usage loader's longest catch-up after a metered round (charged to it) | {:.0} ms | |",
        metering.settle.as_secs_f64() * 1000.0
    );
    println!(
        "| throughput lost to metering at full load (1 − the median round's metered / unmetered) | {:.1}% | {} |",
        metering_cost * 100.0,
        check(metering_cost < 0.10)
    );
    println!(
        "| p50 added by metering at light load | {:+.0} µs | |",
        light[2].1.p50_us - light[3].1.p50_us
    );
    let added = closed[2].1.p50_us - closed[0].1.p50_us;
    let paced_added = half[2].1.p50_us - half[0].1.p50_us;
    let errors: u64 = full.iter().map(|f| f.2.errors).sum::<u64>()
        + half
            .iter()
            .chain(&light)
            .chain(&closed)
            .map(|h| h.1.errors)
            .sum::<u64>()
        + metering.errors;
    println!();
    println!("## Goals");
    println!();
    println!("| goal | measured | |");
    println!("|---|---:|---|");
    println!(
        "| full call path ≥ 70% of the bare handler's throughput | {:.0}% | {} |",
        ratio * 100.0,
        check(ratio >= 0.7)
    );
    println!(
        "| (the floor, bare + fresh instance + journal line, keeps) | {:.0}% | {} |",
        floor_ratio * 100.0,
        if floor_ratio >= 0.7 {
            "the goal is within reach"
        } else {
            "the goal is out of reach of any call path with a fresh instance and a record per call"
        }
    );
    println!(
        "| adds < 30 µs at p50 at half load (closed loop) | {added:+.0} µs | {} |",
        check(added < 30.0)
    );
    println!(
        "| (the floor adds at half load, closed loop) | {:+.0} µs | |",
        closed[5].1.p50_us - closed[0].1.p50_us
    );
    println!(
        "| adds < 30 µs at p50 at half load (paced, bursts of whole-millisecond timers) | {paced_added:+.0} µs | {} |",
        check(paced_added < 30.0)
    );
    // The call path within 10% of its floor (the floor row with the journal
    // line: what any path with a fresh instance and a durable record pays).
    let of_floor = full[2].2.rps / full[5].2.rps;
    println!(
        "| full load: algohub keeps ≥ 90% of the floor's throughput (bare + fresh instance + journal line) | {:.0}% | {} |",
        of_floor * 100.0,
        check(of_floor >= 0.9)
    );
    println!(
        "| (server CPU per request at full load: algohub / metering off / the floor with its journal line) | {:.1} / {:.1} / {:.1} µs | |",
        full[2].2.cpu_us, full[3].2.cpu_us, full[5].2.cpu_us
    );
    // The same goal by CPU per request: where the server is CPU-bound, the
    // throughput it keeps is the floor's CPU per request over its own; a
    // busy machine moves this less than the throughputs themselves.
    let by_cpu = full[5].2.cpu_us / full[2].2.cpu_us.max(f64::EPSILON);
    println!(
        "| full load, by server CPU per request: the floor's over algohub's ≥ 90% | {:.0}% | {} |",
        by_cpu * 100.0,
        check(by_cpu >= 0.9)
    );
    println!(
        "| full load: algohub above the nginx row | {:.0} vs {:.0} requests/s | {} |",
        full[2].2.rps,
        full[1].2.rps,
        check(full[2].2.rps > full[1].2.rps)
    );
    let light_over_floor = light[2].1.p50_us - light[5].1.p50_us;
    println!(
        "| light load: algohub adds ≤ 5 µs at p50 over the floor | {light_over_floor:+.0} µs | {} |",
        check(light_over_floor <= 5.0)
    );
    let closed_over_floor = closed[2].1.p50_us - closed[5].1.p50_us;
    println!(
        "| half load (closed loop): algohub adds ≤ 10 µs at p50 over the floor | {closed_over_floor:+.0} µs | {} |",
        check(closed_over_floor <= 10.0)
    );
    println!(
        "| fresh wasm instance + echo call < 10 µs | {pool_p50:.1} µs (p50) | {} |",
        check(pool_p50 < 10.0)
    );
    println!(
        "| no errors under load | {errors} | {} |",
        check(errors == 0)
    );
    Ok(errors == 0)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("call-bench: {e}");
            return ExitCode::from(2);
        }
    };
    async_main::block_on("call-bench", run(o))
}
