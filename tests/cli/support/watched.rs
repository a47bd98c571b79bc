//! A child process whose stdout and stderr are read as they arrive, so that a test can wait for
//! what it says (a line on stderr, a message on stdout) while it runs, and write to its stdin.
//! Killed by PID on Drop.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{kill_and_reap, lock};

pub struct Watched {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    what: String,
}

impl Watched {
    /// Spawns `cmd` with all three streams piped.
    pub fn spawn(cmd: &mut Command) -> Watched {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), &stdout),
            collect(child.stderr.take().expect("piped stderr"), &stderr),
        ];
        Watched {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            readers,
            what: format!("{cmd:?}"),
        }
    }

    pub fn stdout(&self) -> String {
        lock(&self.stdout).clone()
    }

    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Writes to its stdin (and flushes).
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing to {}: {e}", self.what));
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits until `done(stdout, stderr)` holds; fails the test with both after `secs`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, secs: u64, done: impl Fn(&str, &str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (out, err) = (self.stdout(), self.stderr());
            if done(&out, &err) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: no {what} within {secs} s\n--- stdout\n{out}\n--- stderr\n{err}",
                    self.what
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for it to exit; fails the test (after killing it) past `secs`.
    #[track_caller]
    pub fn wait(mut self, secs: u64) -> (ExitStatus, String, String) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for a child") {
                break status;
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut self.child);
                panic!(
                    "{} still running after {secs} s, killed\n--- stdout\n{}\n--- stderr\n{}",
                    self.what,
                    self.stdout(),
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (status, self.stdout(), self.stderr())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn collect(mut pipe: impl Read + Send + 'static, into: &Arc<Mutex<String>>) -> JoinHandle<()> {
    let into = Arc::clone(into);
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            lock(&into).push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}
