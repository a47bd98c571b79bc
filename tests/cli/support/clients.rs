//! Client processes that drive a broker in the tests: one-shot mosquitto_pub (with stdin),
//! mosquitto_sub and smq pub runs, an `smq pub -l` held open to publish line by line, MQTT.js
//! over WebSocket, and `kill -9` for a client that must die without a DISCONNECT. Every
//! one-shot run has a deadline; the caller of `line_publisher` waits with its own.

use std::io::Write as _;
use std::process::{Child, ChildStdin, Command, Output, Stdio};

use super::ws_broker::WsBroker;
use super::{assert_ok, mosquitto_client, mosquitto_pub, run_with_timeout, smq};

const SECS: u64 = 30;

/// mosquitto_pub with `stdin` (for `-l`).
pub fn mpub_stdin(port: u16, args: &[&str], stdin: &[u8]) {
    let out = run_with_timeout(mosquitto_pub(port).args(args), Some(stdin), SECS);
    assert_ok(&out, &format!("mosquitto_pub {args:?}"));
}

/// A one-shot mosquitto_sub (for `-E`, `-C` after an offline period).
pub fn msub(port: u16, args: &[&str]) -> Output {
    run_with_timeout(
        mosquitto_client("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        None,
        SECS,
    )
}

pub fn smq_pub(port: u16, args: &[&str]) -> Output {
    run_with_timeout(
        smq()
            .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        None,
        SECS,
    )
}

/// MQTT.js's CLI (tests/ws-broker/node_modules/.bin/mqtt), a real WebSocket client. It exits 0
/// even when it failed, so callers check arrival with a subscriber.
pub fn mqttjs(args: &[&str]) -> Output {
    let dir = WsBroker::package_dir();
    let bin = dir.join("node_modules/.bin/mqtt");
    assert!(
        bin.exists(),
        "MQTT.js is not installed: run `npm ci --prefix tests/ws-broker`"
    );
    run_with_timeout(Command::new(bin).args(args).current_dir(dir), None, SECS)
}

/// `smq pub -l` that stays connected, reading lines from the returned stdin.
pub fn line_publisher(port: u16, args: &[&str]) -> (Child, ChildStdin) {
    let mut child = smq()
        .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string(), "-l"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning smq pub -l");
    let stdin = child.stdin.take().expect("piped stdin");
    (child, stdin)
}

pub fn send_line(stdin: &mut ChildStdin, line: &str) {
    stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
}

pub fn kill_9(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success());
    let _ = child.wait();
}
