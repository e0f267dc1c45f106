//! The tools `call-bench` drives: `wrk` (the load, and reading its report)
//! and nginx (the gateway in front of the bare handler).

use super::Options;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What wrk measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
    /// Requests wrk completed.
    pub requests: u64,
    /// CPU time (user + system) this process spent per request while wrk ran:
    /// the servers under test live in this process (wrk and nginx do not), so
    /// this is what one request costs the server, less noisy than throughput
    /// on a shared machine.
    pub cpu_us: f64,
}

fn parse_duration_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mul) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1_000.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1_000_000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * mul)
}

fn parse_wrk(out: &str) -> Result<Load, String> {
    let mut load = Load::default();
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            load.rps = v
                .trim()
                .parse()
                .map_err(|_| format!("bad rps line {t:?}"))?;
        } else if let Some(v) = t.strip_prefix("50%") {
            load.p50_us = parse_duration_us(v).ok_or(format!("bad p50 {t:?}"))?;
        } else if let Some(v) = t.strip_prefix("99%") {
            load.p99_us = parse_duration_us(v).ok_or(format!("bad p99 {t:?}"))?;
        } else if let Some((n, _)) = t.split_once(" requests in ") {
            load.requests = n.trim().parse().unwrap_or(0);
        } else if t.starts_with("Non-2xx or 3xx responses:") {
            load.errors += t
                .rsplit(':')
                .next()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        } else if t.starts_with("Socket errors:") {
            load.errors += t
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    if load.rps == 0.0 {
        return Err(format!("wrk printed no throughput:\n{out}"));
    }
    Ok(load)
}

/// The Lua script wrk runs: a POST of `hello` as text, with the key, and (for
/// paced runs) a delay before each request of a connection: 1 to 2d-1 ms at
/// random (d on average), so the connections do not fire in lockstep bursts
/// (which would measure a burst's queue, not a call).
pub fn write_script(dir: &Path, key: &str, delay_ms: Option<u64>) -> Result<PathBuf, String> {
    let path = dir.join(format!("post-{}.lua", delay_ms.unwrap_or(0)));
    let mut s = format!(
        "wrk.method = \"POST\"\nwrk.body = \"hello\"\nwrk.headers[\"Content-Type\"] = \"text/plain\"\nwrk.headers[\"Authorization\"] = \"{key}\"\n"
    );
    if let Some(d) = delay_ms {
        s.push_str(&format!(
            "function delay() return math.random(1, {}) end\n",
            (2 * d).saturating_sub(1).max(1)
        ));
    }
    std::fs::write(&path, s).map_err(|e| format!("cannot write the wrk script: {e}"))?;
    Ok(path)
}

/// This process's CPU time so far (user + system), in microseconds, from
/// `/proc/self/stat` (clock ticks of 10 ms: a run of seconds spends
/// thousands of them).
fn process_cpu_us() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("cannot read /proc/self/stat: {e}"))?;
    // The fields after the command name (which may hold spaces, in parentheses).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime, fields 14 and 15 of the line, are 11 and 12 after the name.
    let ticks = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| "unexpected /proc/self/stat".to_string())
    };
    Ok((ticks(11)? + ticks(12)?) * 10_000.0)
}

pub fn wrk(o: &Options, url: &str, script: &Path, connections: u64) -> Result<Load, String> {
    let cpu_before = process_cpu_us()?;
    let out = Command::new("wrk")
        .args([
            "-t",
            &o.threads.min(connections).to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{}s", o.seconds),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let cpu = process_cpu_us()? - cpu_before;
    let mut load = parse_wrk(&String::from_utf8_lossy(&out.stdout))?;
    load.cpu_us = cpu / load.requests.max(1) as f64;
    Ok(load)
}

/// The nginx master process, and the config and prefix it was started with.
pub struct Nginx {
    master: std::process::Child,
    conf: PathBuf,
    prefix: PathBuf,
}

impl Drop for Nginx {
    /// Stops nginx through its master (`nginx -s stop`), which takes its
    /// workers down with it; killing the master alone left the workers
    /// running (and spinning) after the bench.
    fn drop(&mut self) {
        let _ = Command::new("nginx")
            .arg("-c")
            .arg(&self.conf)
            .arg("-p")
            .arg(&self.prefix)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.master.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

pub fn start_nginx(dir: &Path, upstream: &str) -> Result<(Nginx, String), String> {
    let port = free_port()?;
    let upstream = upstream.trim_start_matches("http://");
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\ndaemon off;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {dir};\n  proxy_temp_path {dir};\n\
               upstream bare {{ server {up_host}; keepalive 64; }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://bare;\n\
                 proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
            dir = dir.display(),
            up_host = upstream.split('/').next().unwrap_or(upstream),
        ),
    )
    .map_err(|e| e.to_string())?;
    let master = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start nginx (apt-get install nginx-light): {e}"))?;
    let nginx = Nginx {
        master,
        conf,
        prefix: dir.to_path_buf(),
    };
    Ok((nginx, format!("http://127.0.0.1:{port}/echo")))
}
