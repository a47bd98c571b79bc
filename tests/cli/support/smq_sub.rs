//! `smq sub` as a child process that says when its subscription is live: with `-d` it traces
//! `Client ID received SUBACK` on stderr, which is the readiness signal.

use std::process::{Child, ChildStdout, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    READY_TIMEOUT, join_bytes, kill_and_reap, read_log, read_to_end, smq, tail_lines, wait_or_kill,
};

pub struct SmqSub {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    raw_stdout: Option<ChildStdout>,
    log: Arc<Mutex<String>>,
    stderr: Option<JoinHandle<()>>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl SmqSub {
    /// `smq sub -h 127.0.0.1 -p PORT -d -i ID <args>`, returned once subscribed.
    pub fn start(port: u16, args: &[&str]) -> SmqSub {
        Self::spawn(port, args, true)
    }

    /// As `start`, but stdout is left for the test to read (and close) itself.
    pub fn start_piped(port: u16, args: &[&str]) -> SmqSub {
        Self::spawn(port, args, false)
    }

    fn spawn(port: u16, args: &[&str], collect: bool) -> SmqSub {
        let id = format!(
            "smq-sub-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut cmd = smq();
        cmd.args([
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-d",
            "-i",
            &id,
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let (lines, stderr) = tail_lines(child.stderr.take().expect("piped stderr"), &log);
        let raw = child.stdout.take();
        let (stdout, raw_stdout) = if collect {
            (raw.map(read_to_end), None)
        } else {
            (None, raw)
        };
        let mut sub = SmqSub {
            child,
            stdout,
            raw_stdout,
            log,
            stderr: Some(stderr),
        };
        let suback = format!("Client {id} received SUBACK");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(&suback) => return sub,
                Ok(_) => {}
                Err(_) => {
                    kill_and_reap(&mut sub.child);
                    panic!(
                        "smq sub {args:?} got no SUBACK\n--- stderr\n{}",
                        read_log(&sub.log)
                    );
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&mut self) -> ChildStdout {
        self.raw_stdout
            .take()
            .expect("start_piped gives stdout once")
    }

    /// What smq wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_log(&self.log)
    }

    /// Waits for smq sub to exit; fails the test if it still runs after `secs`.
    pub fn wait(mut self, secs: u64) -> Output {
        let exited = wait_or_kill(&mut self.child, Duration::from_secs(secs));
        let status = self.child.wait().expect("waiting for smq sub");
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
        let out = Output {
            status,
            stdout: self.stdout.take().map(join_bytes).unwrap_or_default(),
            stderr: read_log(&self.log).into_bytes(),
        };
        assert!(
            exited,
            "smq sub still running after {secs}s, killed\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for SmqSub {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}
