//! `smq serve-broker` as a child process on ports it picks itself (`--listen …:0`).
//!
//! Readiness is its own stderr: one `smq: listening on URL` line per bound listener, printed
//! after every listener is bound. The rest of stderr (and stdout) keeps being drained into a log
//! for failure messages. Killed by PID on Drop; `stop()` sends SIGTERM and returns the status.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{READY_TIMEOUT, kill_and_reap, read_log, smq, tail_lines, wait_or_kill};

/// The listeners `SmqBroker::start` asks for.
pub const DEFAULT_LISTENERS: [&str; 2] = ["mqtt://127.0.0.1:0", "ws://127.0.0.1:0"];

/// What the broker printed for one listener: `smq: listening on SCHEME://ADDR:PORT`.
#[derive(Debug, Clone)]
pub struct Bound {
    pub scheme: String,
    pub port: u16,
    pub url: String,
}

pub struct SmqBroker {
    child: Option<Child>,
    bound: Vec<Bound>,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl SmqBroker {
    /// `smq serve-broker --listen mqtt://127.0.0.1:0 --listen ws://127.0.0.1:0 <extra>`,
    /// returned once both listeners are bound.
    pub fn start(extra: &[&str]) -> SmqBroker {
        Self::start_with_listeners(&DEFAULT_LISTENERS, extra)
    }

    /// `smq serve-broker --listen URL... <extra>`, returned once every listener is bound.
    pub fn start_with_listeners(listeners: &[&str], extra: &[&str]) -> SmqBroker {
        let mut args = Vec::new();
        for url in listeners {
            args.extend(["--listen", url]);
        }
        args.extend(extra);
        Self::start_args(listeners.len(), &args)
    }

    /// `smq serve-broker <args>`, returned once `listeners` listeners are bound: for `-c FILE`,
    /// where the file names the listeners.
    pub fn start_args(listeners: usize, args: &[&str]) -> SmqBroker {
        let mut cmd = smq();
        cmd.arg("serve-broker")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut cmd);
        let log = Arc::new(Mutex::new(String::new()));
        let (lines, err_reader) = tail_lines(child.stderr.take().expect("piped stderr"), &log);
        let (_, out_reader) = tail_lines(child.stdout.take().expect("piped stdout"), &log);
        let mut broker = SmqBroker {
            child: Some(child),
            bound: Vec::new(),
            log,
            readers: vec![err_reader, out_reader],
        };

        let deadline = Instant::now() + READY_TIMEOUT;
        while broker.bound.len() < listeners {
            let left = deadline.saturating_duration_since(Instant::now());
            let failure = match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("smq: listening on ") {
                        let bound = parse_bound(url).unwrap_or_else(|| {
                            broker.kill();
                            panic!("serve-broker printed a listener we can't parse: {line:?}")
                        });
                        broker.bound.push(bound);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => "did not print every listener in time",
                Err(RecvTimeoutError::Disconnected) => "exited while starting",
            };
            broker.kill();
            panic!(
                "smq serve-broker {args:?} {failure}\n--- log\n{}",
                broker.log()
            );
        }
        broker
    }

    /// Every listener as printed, in order.
    pub fn bound(&self) -> &[Bound] {
        &self.bound
    }

    fn port_of(&self, scheme: &str) -> u16 {
        self.bound
            .iter()
            .find(|b| b.scheme == scheme)
            .map(|b| b.port)
            .unwrap_or_else(|| panic!("this broker has no {scheme}:// listener: {:?}", self.bound))
    }

    /// The first `mqtt://` listener's port.
    pub fn port(&self) -> u16 {
        self.port_of("mqtt")
    }

    /// The first `ws://` listener's port.
    pub fn ws_port(&self) -> u16 {
        self.port_of("ws")
    }

    /// The first `mqtts://` listener's port.
    pub fn tls_port(&self) -> u16 {
        self.port_of("mqtts")
    }

    /// The first `wss://` listener's port.
    pub fn wss_port(&self) -> u16 {
        self.port_of("wss")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the broker was stopped").id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Everything the broker wrote to stderr and stdout so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// SIGTERM (`kill -TERM PID`), then waits for the exit. Fails the test if the broker is
    /// still running after `READY_TIMEOUT` (it is killed then).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM")
    }

    /// Sends `kill -SIG PID` and waits for the exit, as `stop()`.
    pub fn signal(&mut self, sig: &str) -> ExitStatus {
        let mut child = self.child.take().expect("the broker was already stopped");
        let sent = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .stdin(Stdio::null())
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{sig} {} failed", child.id());
        let exited = wait_or_kill(&mut child, READY_TIMEOUT);
        let status = child.wait().expect("waiting for serve-broker");
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        assert!(
            exited,
            "serve-broker still running {READY_TIMEOUT:?} after SIG{sig}, killed\n--- log\n{}",
            self.log()
        );
        status
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

impl Drop for SmqBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"))
}

/// `mqtt://127.0.0.1:43211` (maybe `[::1]:1883`, maybe with a path) → scheme and port.
fn parse_bound(url: &str) -> Option<Bound> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let port = authority.rsplit_once(':')?.1.parse().ok()?;
    Some(Bound {
        scheme: scheme.to_owned(),
        port,
        url: url.to_owned(),
    })
}

/// A deadline-bounded poll: calls `f` every `every` until it returns `Some`, or `None` at
/// `limit`.
pub fn poll<T>(limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
