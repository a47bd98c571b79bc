//! The broker's log, in Mosquitto 2.0's words: `1733350000: New client connected from
//! 127.0.0.1:53012 as sensor-7 (p2, c1, k60).` Operators grep these lines and feed them to
//! tools written for Mosquitto, so the wording is Mosquitto's, letter for letter.
//!
//! Quiet unless asked: `-v`, or `log_type`/`log_dest` lines in the `-c` file. Where it goes
//! is mosquitto.conf's `log_dest` (stderr, stdout, a file); stdout carries nothing else then.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where lines go: mosquitto.conf's `log_dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Stderr,
    Stdout,
    File(PathBuf),
}

/// What to put before each line: mosquitto.conf's `log_timestamp` and `log_timestamp_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// `log_timestamp false`.
    None,
    /// Seconds since 1970, Mosquitto's default.
    Epoch,
    /// A strftime format, e.g. `%Y-%m-%dT%H:%M:%S`.
    Format(String),
}

/// What the log was asked to be, before its files are opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub dests: Vec<Dest>,
    pub stamp: Stamp,
    /// `log_type notice` (or `all`) and `connection_messages` not false: the connection log.
    pub connections: bool,
}

impl LogConfig {
    /// Opens the files; a file that cannot be opened is an error naming it.
    pub fn open(&self) -> anyhow::Result<Log> {
        let mut outs = Vec::new();
        if self.connections {
            for d in &self.dests {
                outs.push(match d {
                    Dest::Stderr => Out::Stderr,
                    Dest::Stdout => Out::Stdout,
                    Dest::File(path) => Out::File(Mutex::new(
                        File::options()
                            .create(true)
                            .append(true)
                            .open(path)
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "log_dest file {}: cannot open it ({e}); give a path the broker may write",
                                    path.display()
                                )
                            })?,
                    )),
                });
            }
        }
        Ok(Log {
            outs,
            stamp: self.stamp.clone(),
        })
    }
}

enum Out {
    Stderr,
    Stdout,
    File(Mutex<File>),
}

/// The open log. Every line is one write, so lines from connections served on different
/// threads never interleave.
pub struct Log {
    outs: Vec<Out>,
    stamp: Stamp,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("outs", &self.outs.len())
            .finish()
    }
}

impl Log {
    pub fn quiet() -> Log {
        Log {
            outs: Vec::new(),
            stamp: Stamp::Epoch,
        }
    }

    /// Whether connection messages are written at all: callers skip formatting otherwise.
    pub fn on(&self) -> bool {
        !self.outs.is_empty()
    }

    /// Writes one line (without its newline), timestamped.
    pub fn line(&self, text: fmt::Arguments<'_>) {
        if self.outs.is_empty() {
            return;
        }
        let line = match &self.stamp {
            Stamp::None => format!("{text}\n"),
            Stamp::Epoch => format!("{}: {text}\n", chrono::Utc::now().timestamp()),
            Stamp::Format(f) => {
                use std::fmt::Write as _;
                let mut s = String::new();
                // A bad format gives no timestamp rather than a panic.
                if write!(s, "{}", chrono::Local::now().format(f)).is_err() {
                    s.clear();
                }
                format!("{s}: {text}\n")
            }
        };
        for out in &self.outs {
            // A log that cannot be written must not stop the broker: the line is lost.
            let _ = match out {
                Out::Stderr => io::stderr().lock().write_all(line.as_bytes()),
                Out::Stdout => {
                    let mut o = io::stdout().lock();
                    o.write_all(line.as_bytes()).and_then(|()| o.flush())
                }
                Out::File(f) => match f.lock() {
                    Ok(mut f) => f.write_all(line.as_bytes()),
                    Err(_) => Ok(()),
                },
            };
        }
    }

    pub fn new_connection(&self, peer: SocketAddr, port: u16) {
        if self.on() {
            self.line(format_args!(
                "New connection from {}:{} on port {port}.",
                peer.ip(),
                peer.port()
            ));
        }
    }
}

/// How a connection ended, in the words Mosquitto's `do_disconnect` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// The client sent DISCONNECT.
    Disconnected,
    /// The socket closed without a DISCONNECT.
    Closed,
    /// A read or write failed: the OS's words.
    Socket(io::ErrorKind),
    Keepalive,
    Protocol,
    Malformed,
    Oversize,
    NotAuthorised,
    /// Taken over by a new connection, or the broker is stopping: nothing is said.
    Silent,
}

impl Log {
    /// `Client ID disconnected.` and its kin; `<unknown>` before CONNECT named the client.
    pub fn gone(&self, id: Option<&str>, how: Gone) {
        if !self.on() {
            return;
        }
        let id = id.unwrap_or("<unknown>");
        match how {
            Gone::Disconnected => self.line(format_args!("Client {id} disconnected.")),
            Gone::Closed => self.line(format_args!("Client {id} closed its connection.")),
            Gone::Socket(kind) => {
                self.line(format_args!(
                    "Client {id} disconnected: {}.",
                    strerror(kind)
                ));
            }
            Gone::Keepalive => {
                self.line(format_args!(
                    "Client {id} has exceeded timeout, disconnecting."
                ));
            }
            Gone::Protocol => {
                self.line(format_args!(
                    "Client {id} disconnected due to protocol error."
                ));
            }
            Gone::Malformed => self.line(format_args!(
                "Client {id} disconnected due to malformed packet."
            )),
            Gone::Oversize => self.line(format_args!(
                "Client {id} disconnected due to oversize packet."
            )),
            Gone::NotAuthorised => {
                self.line(format_args!("Client {id} disconnected, not authorised."));
            }
            Gone::Silent => {}
        }
    }
}

/// glibc's strerror() text for the errors a socket gives, as Mosquitto prints them.
fn strerror(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::ConnectionReset => "Connection reset by peer",
        io::ErrorKind::BrokenPipe => "Broken pipe",
        io::ErrorKind::TimedOut => "Connection timed out",
        io::ErrorKind::ConnectionAborted => "Software caused connection abort",
        _ => "Input/output error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_gets_timestamped_lines_in_mosquittos_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.log");
        let log = LogConfig {
            dests: vec![Dest::File(path.clone())],
            stamp: Stamp::Epoch,
            connections: true,
        }
        .open()
        .unwrap();
        log.new_connection("127.0.0.1:53012".parse().unwrap(), 1883);
        log.gone(Some("sensor-7"), Gone::Keepalive);
        log.gone(None, Gone::NotAuthorised);
        log.gone(Some("x"), Gone::Silent);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| {
                let (stamp, rest) = l.split_once(": ").unwrap();
                assert!(stamp.parse::<i64>().unwrap() > 1_600_000_000, "{l}");
                rest
            })
            .collect();
        assert_eq!(
            lines,
            [
                "New connection from 127.0.0.1:53012 on port 1883.",
                "Client sensor-7 has exceeded timeout, disconnecting.",
                "Client <unknown> disconnected, not authorised.",
            ]
        );
    }

    #[test]
    fn quiet_unless_connection_messages_are_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.log");
        let log = LogConfig {
            dests: vec![Dest::File(path.clone())],
            stamp: Stamp::None,
            connections: false,
        }
        .open()
        .unwrap();
        assert!(!log.on());
        assert!(!path.exists(), "a log that writes nothing opens no file");
        let bad = LogConfig {
            dests: vec![Dest::File(dir.path().join("no/such/dir/log"))],
            stamp: Stamp::None,
            connections: true,
        };
        let e = bad.open().unwrap_err().to_string();
        assert!(
            e.contains("log_dest file") && e.contains("no/such/dir"),
            "{e}"
        );
    }
}
