//! Exit codes, and the one place a final error is printed.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

/// The table shown by `--help`, the man pages and docs/exit-codes.md.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0        success; also when the reader of stdout went away (broken pipe)
  1        runtime error: DNS, TCP, TLS, file, protocol, connection lost
  2        usage error: a bad flag, value or URL; a bad line in a config, password or ACL file
  1-5      the broker refused the connection: its MQTT 3.1.1 CONNACK code (under -V auto,
           the closest 3.1.1 code to an MQTT 5 refusal)
  128-159  with -V mqttv5: the broker's MQTT 5 CONNACK reason code
  27       timed out: -W, or a message not acknowledged within --ack-timeout
  130      interrupted (Ctrl-C): pub or replay before every message was handed over; sub or
           record before it had connected";

pub const USAGE: u8 = 2;
pub const TIMED_OUT: u8 = 27;
pub const INTERRUPTED: u8 = 130;

/// Failures that carry their own exit code; anything else exits 1.
#[derive(Debug)]
pub enum Failure {
    /// The broker answered CONNECT with a refusal; the code is the exit code.
    Refused {
        code: u8,
        reason: String,
    },
    /// Every one of several brokers refused the connection; the first one's code.
    Brokers {
        code: u8,
        msg: String,
    },
    /// The broker cannot do what was asked: MQTT 5 features of a broker that speaks only 3.1.1.
    Unsupported(String),
    /// Bad input found after clap: same code as clap's usage errors.
    Usage(String),
    TimedOut(String),
    Interrupted(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused { code, reason } => {
                write!(
                    f,
                    "the broker refused the connection: {reason} (code {code})"
                )
            }
            Failure::Brokers { msg, .. }
            | Failure::Unsupported(msg)
            | Failure::Usage(msg)
            | Failure::TimedOut(msg)
            | Failure::Interrupted(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Failure {}

/// Shorthand for a usage error, as `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Failure::Usage(msg.into()).into()
}

pub fn finish(result: anyhow::Result<ExitCode>, quiet: bool) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            if !quiet {
                // Nothing useful is left to do if stderr itself is gone.
                let _ = writeln!(io::stderr().lock(), "smq: error: {err:#}");
            }
            ExitCode::from(code_for(&err))
        }
    }
}

fn code_for(err: &anyhow::Error) -> u8 {
    match err.chain().find_map(|e| e.downcast_ref::<Failure>()) {
        Some(Failure::Refused { code, .. } | Failure::Brokers { code, .. }) => *code,
        Some(Failure::Unsupported(_)) => 1,
        Some(Failure::Usage(_)) => USAGE,
        Some(Failure::TimedOut(_)) => TIMED_OUT,
        Some(Failure::Interrupted(_)) => INTERRUPTED,
        None => 1,
    }
}

/// Whether `err` is, or was caused by, the reader of our output going away: not a failure
/// (exit 0, as `head` expects), wherever it turns up.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<io::Error>().is_some_and(pipe_closed))
}

/// The one test for it on an `io::Error`.
pub fn pipe_closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
