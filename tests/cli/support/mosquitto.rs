//! Eclipse Mosquitto 2.0 (Debian's /usr/sbin/mosquitto) on 127.0.0.1 for interop tests.
//!
//! Mosquitto can't bind port 0 (`listener 0` is a Unix socket), so we reserve free ports, write
//! them into the config and start again on new ports if one was taken meanwhile. Readiness is
//! its own log line `mosquitto version … running`, printed after every listener is bound.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::certs::Certs;
use super::{
    READY_TIMEOUT, append_log, free_port, kill_and_reap, read_log, run_with_timeout, tail_lines,
};

#[derive(Default)]
pub struct Builder {
    password: Option<(String, String)>,
    tls: Option<Tls>,
    require_certificate: bool,
    persistent: bool,
    extra: Vec<String>,
}

struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Builder {
    /// One user in a password file; anonymous clients are refused.
    pub fn password(mut self, user: &str, pass: &str) -> Self {
        self.password = Some((user.to_owned(), pass.to_owned()));
        self
    }

    /// A second listener (`tls_port()`) serving `server.pem`, trusting `ca.pem` for client certs.
    pub fn tls(mut self, certs: &Certs) -> Self {
        self.tls = Some(Tls {
            ca: certs.ca(),
            cert: certs.server_cert(),
            key: certs.server_key(),
        });
        self
    }

    /// A TLS listener with these files rather than `Certs`' own.
    pub fn tls_files(mut self, ca: PathBuf, cert: PathBuf, key: PathBuf) -> Self {
        self.tls = Some(Tls { ca, cert, key });
        self
    }

    /// Serve another cert on the TLS listener, e.g. `certs.expired_cert()`. Needs `tls()`.
    pub fn server_cert(mut self, cert: PathBuf, key: PathBuf) -> Self {
        let tls = self.tls.as_mut().expect("server_cert() needs tls() first");
        tls.cert = cert;
        tls.key = key;
        self
    }

    /// Clients on the TLS listener must present a cert signed by `ca.pem`.
    pub fn require_certificate(mut self, yes: bool) -> Self {
        self.require_certificate = yes;
        self
    }

    /// Sessions and queued messages survive a `terminate()` and `restart()`: Mosquitto saves
    /// them in its temp dir when it shuts down.
    pub fn persistent(mut self) -> Self {
        self.persistent = true;
        self
    }

    /// A global config line, e.g. `max_qos 1` or `retain_available false`.
    pub fn config(mut self, line: &str) -> Self {
        self.extra.push(line.to_owned());
        self
    }

    pub fn start(self) -> Mosquitto {
        let dir = tempfile::Builder::new()
            .prefix("smq-mosquitto-")
            .tempdir()
            .expect("creating a temp dir for mosquitto");
        let path = |name: &str| dir.path().join(name);
        // Copies, so a restart() still finds them after the caller's Certs is dropped.
        if let Some(tls) = &self.tls {
            for (from, to) in [
                (&tls.ca, "ca.pem"),
                (&tls.cert, "server.pem"),
                (&tls.key, "server.key"),
            ] {
                fs::copy(from, path(to))
                    .unwrap_or_else(|e| panic!("copying {} for mosquitto: {e}", from.display()));
            }
        }
        if let Some((user, pass)) = &self.password {
            let out = run_with_timeout(
                Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(path("passwd"))
                    .args([user, pass])
                    .stdin(Stdio::null()),
                None,
                30,
            );
            assert!(out.status.success(), "mosquitto_passwd failed: {out:?}");
        }

        let mut broker = Mosquitto {
            dir,
            port: 0,
            tls_port: None,
            child: None,
            log: Arc::default(),
            log_reader: None,
        };
        for _ in 0..10 {
            broker.port = free_port();
            broker.tls_port = self.tls.as_ref().map(|_| {
                loop {
                    let port = free_port();
                    if port != broker.port {
                        break port;
                    }
                }
            });
            let conf = self.config_text(&broker);
            fs::write(broker.conf(), conf).expect("writing mosquitto.conf");
            if broker.launch() {
                return broker;
            }
        }
        panic!(
            "mosquitto: ports kept being taken, giving up\n--- log\n{}",
            broker.log()
        );
    }

    fn config_text(&self, broker: &Mosquitto) -> String {
        let path = |name: &str| broker.dir().join(name).display().to_string();
        // As root, mosquitto 2.0 switches to user `mosquitto`, which can't read the password
        // file in our 0700 temp dir; `user root` keeps it as is (ignored when not root).
        let mut conf =
            String::from("user root\nlog_dest stderr\nlog_type all\nper_listener_settings false\n");
        if self.persistent {
            let _ = writeln!(
                conf,
                "persistence true\npersistence_location {}/",
                broker.dir().display()
            );
        } else {
            conf.push_str("persistence false\n");
        }
        for line in &self.extra {
            let _ = writeln!(conf, "{line}");
        }
        match &self.password {
            Some(_) => {
                let _ = writeln!(
                    conf,
                    "allow_anonymous false\npassword_file {}",
                    path("passwd")
                );
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        let _ = writeln!(conf, "listener {} 127.0.0.1", broker.port);
        if let Some(tls_port) = broker.tls_port {
            let _ = writeln!(
                conf,
                "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}",
                path("ca.pem"),
                path("server.pem"),
                path("server.key"),
                self.require_certificate
            );
        }
        conf
    }
}

/// A running mosquitto, killed by PID on Drop. Its log (`log_type all`) is kept for failure
/// messages: `assert!(ok, "{}", broker.log())`.
pub struct Mosquitto {
    dir: TempDir,
    port: u16,
    tls_port: Option<u16>,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    log_reader: Option<JoinHandle<()>>,
}

impl Mosquitto {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Plain TCP, anonymous clients allowed.
    pub fn start() -> Mosquitto {
        Builder::default().start()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn tls_port(&self) -> u16 {
        self.tls_port
            .expect("tls_port(): this broker was built without .tls()")
    }

    /// The temp dir holding mosquitto.conf, passwd and the TLS files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything mosquitto logged so far, across restarts.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// Kills the broker (SIGKILL: clients see the connection drop, no DISCONNECT).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
            if let Some(reader) = self.log_reader.take() {
                let _ = reader.join();
            }
            append_log(&self.log, "--- stopped by the test\n");
        }
    }

    /// Stops the broker with SIGTERM, as a service manager does: it closes every connection and
    /// saves what `persistent()` keeps.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            if !super::wait_or_kill(&mut child, READY_TIMEOUT) {
                append_log(&self.log, "--- did not stop on SIGTERM, killed\n");
            }
            let _ = child.wait();
            if let Some(reader) = self.log_reader.take() {
                let _ = reader.join();
            }
            append_log(&self.log, "--- terminated by the test\n");
        }
    }

    /// Stops the broker if running and starts it again on the same port(s).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.launch() {
            assert!(
                Instant::now() < deadline,
                "mosquitto restart: port {} stayed in use\n--- log\n{}",
                self.port,
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn conf(&self) -> PathBuf {
        self.dir().join("mosquitto.conf")
    }

    /// Starts mosquitto and waits until it is listening. False if a port was in use (the
    /// process is gone by then); any other failure fails the test with the log.
    fn launch(&mut self) -> bool {
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning mosquitto (apt-get install mosquitto): {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines, reader) = tail_lines(stderr, &self.log);
        self.child = Some(child);
        self.log_reader = Some(reader);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let failure = match lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains("mosquitto version") && line.ends_with(" running") => {
                    return true;
                }
                Ok(line) if line.contains("Address already in use") => {
                    self.stop();
                    return false;
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => "was not running in time",
                Err(RecvTimeoutError::Disconnected) => "exited while starting",
            };
            self.stop();
            panic!(
                "mosquitto {failure}\n--- mosquitto.conf\n{}--- log\n{}",
                fs::read_to_string(self.conf()).unwrap_or_default(),
                self.log()
            );
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}
