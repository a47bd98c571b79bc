//! Support for the `cli` tests: the smq binary with a hermetic env, brokers on ports picked at
//! run time, and a mosquitto_sub that says when its subscription is live. Every process started
//! here is killed by PID on Drop, and every wait has a deadline, so a broken test fails instead
//! of hanging CI. `assert_ok` and `assert_fails` check how a run ended.
//!
//! - `smq_broker.rs`: `smq serve-broker`; `mosquitto.rs`: Eclipse Mosquitto; `ws_broker.rs`:
//!   a third-party WebSocket broker (aedes)
//! - `smq_sub.rs`: `smq sub` that says when it is subscribed; `Sub` here: the same for
//!   mosquitto_sub
//! - `clients.rs`: one-shot client runs and an `smq pub -l` held open
//! - `raw.rs`: hand-built MQTT packets on a `TcpStream`, and the checks that a bad one is refused
//! - `certs.rs`: a CA and certificates made at test time

// Each test module uses a different subset of these helpers.
#![allow(dead_code)]

pub mod certs;
pub mod clients;
pub mod mosquitto;
pub mod rabbitmq;
pub mod raw;
pub mod smq_broker;
pub mod smq_sub;
pub mod watched;
pub mod ws_broker;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a helper waits for a process to become ready before failing the test.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The smq binary under test with a hermetic env and stdin from /dev/null.
pub fn smq() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smq"));
    hermetic(&mut cmd);
    cmd
}

/// The environment `smq()` gives the binary, for a command that runs it (a shell line).
pub fn hermetic(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SMQ_") {
            cmd.env_remove(key);
        }
    }
    // No options file or profile of whoever runs the tests: the tests that want one set
    // their own XDG_CONFIG_HOME.
    cmd.env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", "/nonexistent/smq-tests")
        .stdin(Stdio::null());
}

/// A mosquitto client (`mosquitto_pub`, `mosquitto_sub`, `mosquitto_rr`) that ignores the
/// user's `~/.config/mosquitto_*` defaults file, with stdin from /dev/null.
pub fn mosquitto_client(program: &str) -> Command {
    let mut cmd = Command::new(program);
    hermetic_mosquitto_client(&mut cmd);
    cmd
}

/// `mosquitto_pub -h 127.0.0.1 -p PORT`, hermetic; add `-t`, `-m`, TLS flags…
pub fn mosquitto_pub(port: u16) -> Command {
    let mut cmd = mosquitto_client("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p"]).arg(port.to_string());
    cmd
}

/// Publishes with mosquitto_pub (so what smq receives was not sent by smq); fails the test if
/// mosquitto_pub fails.
pub fn send(port: u16, args: &[&str]) {
    let out = run_with_timeout(mosquitto_pub(port).args(args), None, 30);
    assert_ok(&out, &format!("mosquitto_pub {args:?}"));
}

fn hermetic_mosquitto_client(cmd: &mut Command) {
    // The clients read $XDG_CONFIG_HOME/mosquitto_{pub,sub} (else ~/.config/…) as extra flags.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/smq-tests")
        .stdin(Stdio::null());
}

/// A port that was free a moment ago. Only for servers that can't bind port 0 themselves;
/// the caller must retry if someone else takes it first.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("reserving a free port on 127.0.0.1")
        .port()
}

/// Runs `cmd` to completion, feeding it `stdin` if given (otherwise its stdin is left as
/// configured: `smq()` sets /dev/null). Fails the test if it runs longer than `secs`.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, secs: u64) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    // A thread, because a child that writes a lot before reading would deadlock us.
    let feeder = child.stdin.take().zip(stdin).map(|(mut pipe, bytes)| {
        let bytes = bytes.to_vec();
        // The child may exit without reading it all (EPIPE): that's for the test to judge.
        thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let result = wait_with_deadline(child, Duration::from_secs(secs));
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    result.unwrap_or_else(|out| {
        panic!(
            "{cmd:?} still running after {secs}s, killed\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Collects the child's piped stdout/stderr and waits for it to exit. At the deadline the
/// child is killed and what it wrote so far comes back as `Err`.
pub fn wait_with_deadline(mut child: Child, limit: Duration) -> Result<Output, Output> {
    let stdout = child.stdout.take().map(read_to_end);
    let stderr = child.stderr.take().map(read_to_end);
    let timed_out = !wait_or_kill(&mut child, limit);
    let status = child.wait().expect("waiting for a child process");
    let output = Output {
        status,
        stdout: stdout.map(join_bytes).unwrap_or_default(),
        stderr: stderr.map(join_bytes).unwrap_or_default(),
    };
    if timed_out { Err(output) } else { Ok(output) }
}

/// True if the child exited within `limit`; otherwise kills it (by PID) and returns false.
fn wait_or_kill(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    false
}

/// Kills a child that is still running and reaps it. For Drop impls.
fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn read_to_end(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn join_bytes(handle: JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

/// Reads `pipe` line by line on a thread, appending each line to `log` and sending it on the
/// returned channel (ignored once the receiver is gone). The thread ends at EOF.
fn tail_lines(
    pipe: impl Read + Send + 'static,
    log: &Arc<Mutex<String>>,
) -> (mpsc::Receiver<String>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let log = Arc::clone(log);
    let reader = thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            append_log(&log, &format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    (rx, reader)
}

fn read_log(log: &Mutex<String>) -> String {
    lock(log).clone()
}

fn append_log(log: &Mutex<String>, text: &str) {
    lock(log).push_str(text);
}

/// A panicking test thread must not hide the log from the others.
fn lock(log: &Mutex<String>) -> MutexGuard<'_, String> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A mosquitto_sub subscriber (a client that is not smq) for checking what arrives.
///
/// `-d` is how we learn that the SUBACK arrived, but mosquitto_sub 2.0 prints its debug lines
/// on *stdout*, block-buffered. So it runs under `stdbuf -oL` with a unique client id, and
/// [`Sub::wait`] moves every `Client <id> …` line (and `Subscribed (mid: …)`) out of stdout
/// and into stderr: `stdout` holds exactly what mosquitto_sub printed for the messages.
pub struct Sub {
    child: Child,
    id: String,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

static SUB_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Sub {
    /// Spawns `mosquitto_sub -h 127.0.0.1 -p PORT -d -i ID <args>` and returns once the broker
    /// has acknowledged the subscription. Pass `-t`, `-C N`, `-v`, `-F`, TLS or auth flags in
    /// `args`; a later `-h` in `args` wins. An `-i` in `args` is used as the id.
    pub fn start(port: u16, args: &[&str]) -> Sub {
        assert!(
            !args.iter().any(|a| *a == "-I" || *a == "--id-prefix"),
            "Sub can't use -I: it needs to know the client id to split debug lines from data"
        );
        let given_id = args
            .windows(2)
            .find(|w| w[0] == "-i" || w[0] == "--id")
            .map(|w| w[1].to_string());
        let id = given_id.clone().unwrap_or_else(|| {
            let n = SUB_COUNTER.fetch_add(1, Ordering::Relaxed);
            format!("smq-test-sub-{}-{n}", std::process::id())
        });

        let mut cmd = Command::new("stdbuf");
        hermetic_mosquitto_client(&mut cmd);
        cmd.args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-d", "-p"])
            .arg(port.to_string());
        if given_id.is_none() {
            cmd.args(["-i", &id]);
        }
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));

        let (ready_tx, ready_rx) = mpsc::channel();
        let suback = format!("Client {id} received SUBACK");
        let stdout = child.stdout.take().map(|pipe| {
            thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut raw = Vec::new();
                let mut ready = Some(ready_tx);
                loop {
                    let start = raw.len();
                    match reader.read_until(b'\n', &mut raw) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if ready.is_some() && raw[start..].starts_with(suback.as_bytes()) {
                        let _ = ready.take().map(|tx| tx.send(()));
                    }
                }
                raw
            })
        });
        let stderr = child.stderr.take().map(read_to_end);
        let mut sub = Sub {
            child,
            id,
            stdout,
            stderr,
        };
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(()) => sub,
            Err(why) => {
                let _ = sub.child.kill();
                let out = sub.finish();
                panic!(
                    "mosquitto_sub {args:?} on port {port} got no SUBACK ({}), {}\n--- stdout\n{}\n--- stderr\n{}",
                    match why {
                        mpsc::RecvTimeoutError::Timeout => "timed out",
                        mpsc::RecvTimeoutError::Disconnected => "it exited",
                    },
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            }
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for mosquitto_sub to exit (pass `-C N`, `-W SECS` or `-E` in `args`). Fails the
    /// test, showing what arrived so far, if it is still running after `secs`.
    pub fn wait(mut self, secs: u64) -> Output {
        let exited = wait_or_kill(&mut self.child, Duration::from_secs(secs));
        let out = self.finish();
        assert!(
            exited,
            "mosquitto_sub still running after {secs}s, killed\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Reaps the (exited or killed) child and splits its output.
    fn finish(&mut self) -> Output {
        let status = self.child.wait().expect("waiting for mosquitto_sub");
        let raw = self.stdout.take().map(join_bytes).unwrap_or_default();
        let (stdout, mut stderr) = split_debug(&raw, &self.id);
        stderr.extend(self.stderr.take().map(join_bytes).unwrap_or_default());
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// Splits mosquitto_sub `-d` stdout into (message output, debug lines). Debug lines are whole
/// `printf("%s\n")` writes, but with `-N` a message has no newline, so they are searched for
/// anywhere, not only at line starts.
fn split_debug(raw: &[u8], id: &str) -> (Vec<u8>, Vec<u8>) {
    let marker = format!("Client {id} ");
    let (mut data, mut debug) = (Vec::new(), Vec::new());
    let mut rest = raw;
    while let Some(pos) = find(rest, marker.as_bytes()) {
        data.extend_from_slice(&rest[..pos]);
        let mut end = line_end(rest, pos);
        // mosquitto_sub's own "Subscribed (mid: 1): 0" follows the SUBACK debug line.
        if rest[pos..end].starts_with(format!("{marker}received SUBACK").as_bytes())
            && rest[end..].starts_with(b"Subscribed (mid: ")
        {
            end = line_end(rest, end);
        }
        debug.extend_from_slice(&rest[pos..end]);
        rest = &rest[end..];
    }
    data.extend_from_slice(rest);
    (data, debug)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Index just past the newline that ends the line containing `from`, or the end.
fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| from + i + 1)
}

/// `out` is a success; else the test fails showing `what`, the status and both streams.
#[track_caller]
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `out` failed as a user should see it: exit code `code`, one line on stderr and it says
/// `needle`, no panic. Returns that stderr, for any further check.
#[track_caller]
pub fn assert_fails(out: &Output, code: i32, needle: &str) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line of error: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Lossy UTF-8 of an output stream, for assertions and messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::split_debug;

    #[test]
    fn split_debug_keeps_messages_without_newlines() {
        let raw = b"Client me sending CONNECT\nClient me received SUBACK\nSubscribed (mid: 1): 1, 1\n\
Client me received PUBLISH (d0, q1, r0, m1, 'a/b', ... (2 bytes))\nClient me sending PUBACK (m1, rc0)\n\
a/b x1Client me received PUBLISH (d0, q0, r0, m0, 'c', ... (9 bytes))\nClient mex\nyClient me sending DISCONNECT\n";
        let (data, debug) = split_debug(raw, "me");
        assert_eq!(data, b"a/b x1Client mex\ny");
        assert!(debug.starts_with(b"Client me sending CONNECT\n"));
        assert!(debug.ends_with(b"Client me sending DISCONNECT\n"));
        assert!(String::from_utf8_lossy(&debug).contains("Subscribed (mid: 1): 1, 1\n"));
    }
}
