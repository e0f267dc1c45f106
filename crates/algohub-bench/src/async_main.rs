//! The `main` of the async benchmarks (call-, governance- and admin-bench):
//! runs the benchmark on a multi-threaded tokio runtime and turns its verdict
//! into the exit code (0: every goal met, 1: a goal missed or an error).

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

pub fn block_on<E: Display>(name: &str, bench: impl Future<Output = Result<bool, E>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(bench) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
