//! Turns a finished guest run into a [`CallOutput`] or a [`CallError`].
//!
//! Design: the engine only records facts (how the run ended, what the guest declared or
//! reported, what it wrote, fuel and time); every rule of the guest ABI about results
//! and errors is applied here, in one pure function that is easy to test and to read
//! next to `docs/guest-abi.md`.

use std::time::Duration;

use wasmtime::Trap;

use crate::host::{DeadlineExceeded, GuestAbiError};
use crate::pipe::OutputLimitExceeded;
use crate::{CallError, CallOutput, ContentType};

/// `error_type` of errors the guest reported or caused without naming a type.
pub const DEFAULT_ERROR_TYPE: &str = "AlgorithmError";
/// Lines of printed output kept as the stack trace of a non-zero exit.
const STACKTRACE_LINES: usize = 50;

/// How a guest run ended.
#[derive(Debug)]
pub enum Ended {
    /// `_start` returned.
    Returned,
    /// The guest called `proc_exit(code)`.
    Exited(i32),
    /// Instantiation failed.
    NotInstantiated(wasmtime::Error),
    /// Execution failed (trap, host error, deadline via epoch callback).
    Failed(wasmtime::Error),
    /// The outer wall-clock guard fired (e.g. the guest was blocked in a host call).
    TimedOut,
}

/// The facts of one finished run.
#[derive(Debug)]
pub struct Run {
    pub ended: Ended,
    pub input_type: ContentType,
    pub declared: Option<ContentType>,
    pub reported_error: Option<String>,
    pub memory_cap_hit: bool,
    /// A memory growth within the cap was refused: the node's budget for
    /// guests was used up.
    pub memory_budget_hit: bool,
    /// Bytes written to stdout.
    pub result: Vec<u8>,
    /// Bytes written to stderr, and whether some were dropped.
    pub printed: (Vec<u8>, bool),
    pub fuel_used: u64,
    pub duration: Duration,
    pub timeout: Duration,
}

/// Applies the guest ABI's rules to a finished run. A run that failed after
/// the node's memory budget refused it memory failed for that reason (the
/// guest saw `memory.grow` fail), unless its deadline passed first.
pub fn conclude(run: Run) -> Result<CallOutput, CallError> {
    let budget_hit = run.memory_budget_hit;
    match apply_rules(run) {
        Err(e) if budget_hit && !matches!(e, CallError::Timeout { .. }) => {
            Err(CallError::MemoryBudget {
                message: "the memory of this node for running algorithms is in use by \
                          other calls; retry shortly"
                    .into(),
                fuel_used: e.fuel_used(),
            })
        }
        other => other,
    }
}

fn apply_rules(run: Run) -> Result<CallOutput, CallError> {
    let fuel_used = run.fuel_used;
    let printed = printed_text(run.printed);
    let facts = Facts {
        fuel_used,
        timeout: run.timeout,
        memory_cap_hit: run.memory_cap_hit,
    };
    let exit_code = match run.ended {
        Ended::TimedOut => {
            return Err(CallError::Timeout {
                after: run.timeout,
                fuel_used,
            });
        }
        Ended::NotInstantiated(err) => {
            if run.memory_cap_hit {
                return Err(CallError::OutOfMemory { fuel_used });
            }
            return Err(match err.downcast_ref::<Trap>() {
                Some(_) => classify(err, &facts, printed),
                None => CallError::Internal(format!("instantiation failed: {err:#}")),
            });
        }
        Ended::Failed(err) => return Err(classify(err, &facts, printed)),
        Ended::Returned => 0,
        Ended::Exited(code) => code,
    };
    if let Some(raw) = run.reported_error {
        return Err(reported_error(&raw, printed, fuel_used));
    }
    if exit_code != 0 {
        return Err(exit_error(exit_code, printed, fuel_used));
    }
    let content_type = run.declared.unwrap_or(match run.input_type {
        ContentType::Void if !run.result.is_empty() => ContentType::Text,
        ContentType::Json if run.result.is_empty() => ContentType::Void,
        other => other,
    });
    let mut data = run.result;
    let invalid = |message: &str| CallError::Algorithm {
        message: message.to_owned(),
        error_type: DEFAULT_ERROR_TYPE.to_owned(),
        stacktrace: String::new(),
        stdout: printed.clone(),
        fuel_used,
    };
    match content_type {
        ContentType::Void => data.clear(),
        ContentType::Json => {
            if let Err(why) = crate::check_json_result(&data) {
                return Err(invalid(&why));
            }
        }
        ContentType::Text => {
            if std::str::from_utf8(&data).is_err() {
                return Err(invalid(
                    "result is not valid UTF-8 text (declare binary results with \
                     algohub.set_content_type)",
                ));
            }
        }
        ContentType::Binary => {}
    }
    Ok(CallOutput {
        content_type,
        data,
        stdout: printed,
        fuel_used,
        duration: run.duration,
    })
}

/// What [`classify`] needs to know of a run besides its error.
struct Facts {
    fuel_used: u64,
    timeout: Duration,
    memory_cap_hit: bool,
}

/// Maps an execution error to the most specific [`CallError`].
fn classify(err: wasmtime::Error, run: &Facts, printed: String) -> CallError {
    let fuel_used = run.fuel_used;
    if err.is::<DeadlineExceeded>() {
        return CallError::Timeout {
            after: run.timeout,
            fuel_used,
        };
    }
    if let Some(limit) = err.downcast_ref::<OutputLimitExceeded>() {
        return CallError::Algorithm {
            message: limit.to_string(),
            error_type: "OutputLimitExceeded".to_owned(),
            stacktrace: String::new(),
            stdout: printed,
            fuel_used,
        };
    }
    if let Some(abi) = err.downcast_ref::<GuestAbiError>() {
        return CallError::Algorithm {
            message: abi.0.clone(),
            error_type: DEFAULT_ERROR_TYPE.to_owned(),
            stacktrace: String::new(),
            stdout: printed,
            fuel_used,
        };
    }
    if matches!(err.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
        return CallError::OutOfFuel { fuel_used };
    }
    if run.memory_cap_hit {
        // The guest asked for more memory than allowed and then failed: report the cause.
        return CallError::OutOfMemory { fuel_used };
    }
    let message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    CallError::Trap { message, fuel_used }
}

/// An error the guest reported with `algohub.set_error`: a JSON object with `message`
/// (and optionally `error_type`, `stacktrace`), or plain text.
fn reported_error(raw: &str, printed: String, fuel_used: u64) -> CallError {
    let field = |map: &serde_json::Map<String, serde_json::Value>, key: &str| {
        map.get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(raw)
        && let Some(message) = field(&map, "message")
    {
        return CallError::Algorithm {
            message,
            error_type: field(&map, "error_type").unwrap_or_else(|| DEFAULT_ERROR_TYPE.into()),
            stacktrace: field(&map, "stacktrace").unwrap_or_default(),
            stdout: printed,
            fuel_used,
        };
    }
    let message = raw.trim();
    CallError::Algorithm {
        message: if message.is_empty() {
            "algorithm reported an error".to_owned()
        } else {
            message.to_owned()
        },
        error_type: DEFAULT_ERROR_TYPE.to_owned(),
        stacktrace: String::new(),
        stdout: printed,
        fuel_used,
    }
}

/// A non-zero exit: the message is the last non-empty printed line, the stack trace the
/// tail of the printed output.
fn exit_error(code: i32, printed: String, fuel_used: u64) -> CallError {
    let message = printed
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("algorithm exited with code {code}"));
    let lines: Vec<&str> = printed.lines().collect();
    let tail = lines[lines.len().saturating_sub(STACKTRACE_LINES)..].join("\n");
    let stacktrace = if tail.trim().is_empty() {
        format!("exit code {code}")
    } else {
        format!("{tail}\nexit code {code}")
    };
    CallError::Algorithm {
        message,
        error_type: DEFAULT_ERROR_TYPE.to_owned(),
        stacktrace,
        stdout: printed,
        fuel_used,
    }
}

fn printed_text((bytes, truncated): (Vec<u8>, bool)) -> String {
    let mut text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if truncated {
        text.push_str("\n[printed output truncated]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input_type: ContentType, declared: Option<ContentType>, result: &[u8]) -> Run {
        Run {
            ended: Ended::Returned,
            input_type,
            declared,
            reported_error: None,
            memory_cap_hit: false,
            memory_budget_hit: false,
            result: result.to_vec(),
            printed: (b"hello\n".to_vec(), false),
            fuel_used: 7,
            duration: Duration::from_millis(1),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn default_content_type_follows_input() {
        let out = conclude(run(ContentType::Binary, None, b"\xff")).unwrap();
        assert_eq!(out.content_type, ContentType::Binary);
        assert_eq!(out.stdout, "hello\n");
        let out = conclude(run(ContentType::Void, None, b"")).unwrap();
        assert_eq!(out.content_type, ContentType::Void);
        let out = conclude(run(ContentType::Void, None, b"hi")).unwrap();
        assert_eq!(out.content_type, ContentType::Text);
        let out = conclude(run(ContentType::Json, None, b"")).unwrap();
        assert_eq!(out.content_type, ContentType::Void);
        let out = conclude(run(ContentType::Text, Some(ContentType::Void), b"x")).unwrap();
        assert!(out.data.is_empty());
    }

    #[test]
    fn invalid_json_and_text_are_algorithm_errors() {
        let err = conclude(run(ContentType::Text, Some(ContentType::Json), b"{")).unwrap_err();
        assert!(
            matches!(err, CallError::Algorithm { ref message, .. } if message == "result is not valid JSON")
        );
        let err = conclude(run(ContentType::Text, None, b"\xff")).unwrap_err();
        assert!(matches!(err, CallError::Algorithm { .. }));
    }

    #[test]
    fn reported_errors_parse_json_or_text() {
        let mut r = run(ContentType::Text, None, b"");
        r.reported_error = Some(r#"{"message":"bad","error_type":"InputError"}"#.into());
        let err = conclude(r).unwrap_err();
        assert!(
            matches!(err, CallError::Algorithm { ref message, ref error_type, fuel_used: 7, .. }
            if message == "bad" && error_type == "InputError")
        );
        let mut r = run(ContentType::Text, None, b"");
        r.reported_error = Some("plain failure".into());
        let err = conclude(r).unwrap_err();
        assert!(
            matches!(err, CallError::Algorithm { ref message, ref error_type, .. }
            if message == "plain failure" && error_type == DEFAULT_ERROR_TYPE)
        );
    }

    #[test]
    fn non_zero_exit_uses_last_printed_line() {
        let mut r = run(ContentType::Text, None, b"");
        r.ended = Ended::Exited(3);
        r.printed = (b"working\nfile not found\n\n".to_vec(), false);
        let err = conclude(r).unwrap_err();
        assert!(
            matches!(err, CallError::Algorithm { ref message, ref stacktrace, .. }
            if message == "file not found" && stacktrace.ends_with("exit code 3"))
        );
        let mut r = run(ContentType::Text, None, b"");
        r.ended = Ended::Exited(2);
        r.printed = (Vec::new(), false);
        let err = conclude(r).unwrap_err();
        assert!(matches!(err, CallError::Algorithm { ref message, .. }
            if message == "algorithm exited with code 2"));
    }
}
