//! HTTP Push ingest (`--http`): real HTTP clients (curl, Python's urllib and http.client) POST
//! the Sensor Logger fixtures to the WebSocket port; real MQTT subscribers (mosquitto_sub,
//! paho-mqtt over WebSocket) receive the bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::smq_broker::{SmqBroker, poll};
use crate::support::{Sub, assert_fails, run_with_timeout, send, smq, text};

const SECS: u64 = 30;

const FIXTURES: [&str; 3] = [
    "sensorlogger-android-mixed.json",
    "sensorlogger-ios-motion.json",
    "sensorlogger-study.json",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("reading a fixture")
}

fn http_broker(extra: &[&str]) -> SmqBroker {
    let mut args = vec!["--http"];
    args.extend_from_slice(extra);
    SmqBroker::start(&args)
}

/// What curl got back: status, headers (one string) and body.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

/// One curl run (`-sS`, headers dumped); the answer of its last request.
fn curl(args: &[&str]) -> Answer {
    let dir = tempfile::tempdir().expect("a temp dir");
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let out = run_with_timeout(
        Command::new("curl")
            .args(["-sS", "--max-time", "20", "-D"])
            .arg(&headers)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code}"])
            .args(args),
        None,
        SECS,
    );
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        text(&out.stderr)
    );
    Answer {
        status: text(&out.stdout)
            .trim()
            .parse()
            .expect("curl's %{http_code}"),
        headers: std::fs::read_to_string(headers).unwrap_or_default(),
        body: std::fs::read_to_string(body).unwrap_or_default(),
    }
}

fn url(broker: &SmqBroker, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", broker.ws_port())
}

/// The interpreter with paho-mqtt: $SMQ_TEST_PYTHON, else the venv .ci/run makes, else
/// python3. Missing means a broken setup, so it fails the test rather than skipping it.
pub fn python() -> Command {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python3");
    let program = std::env::var_os("SMQ_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if venv.exists() {
                venv
            } else {
                PathBuf::from("python3")
            }
        });
    let check = Command::new(&program)
        .args(["-c", "import paho.mqtt.client"])
        .output();
    match check {
        Ok(out) if out.status.success() => {}
        other => panic!(
            "{} with paho-mqtt is needed for these tests (.ci/run installs it: python3 -m venv target/test-venv && target/test-venv/bin/pip install paho-mqtt==2.1.0; or set SMQ_TEST_PYTHON): {:?}",
            program.display(),
            other.map(|o| text(&o.stderr))
        ),
    }
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null());
    cmd
}

fn expected_stream(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{}\n", text(&fixture_bytes(n))))
        .collect()
}

#[test]
fn curl_posts_reach_subscribers_unchanged_over_one_connection() {
    let broker = http_broker(&[]);
    let sub = Sub::start(broker.port(), &["-t", "sensor-logger", "-C", "3"]);
    // One curl, three requests: --next keeps the connection (%{num_connects} is 0 on reuse).
    let mut args = Vec::new();
    let files: Vec<String> = FIXTURES
        .iter()
        .map(|n| format!("@{}", fixture(n).display()))
        .collect();
    let target = url(&broker, "/data");
    for (i, file) in files.iter().enumerate() {
        if i > 0 {
            args.push("--next");
        }
        args.extend_from_slice(&[
            "-sS",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            file,
            "-w",
            "%{http_code} %{num_connects}\n",
            "-o",
            "/dev/null",
            &target,
        ]);
    }
    let out = run_with_timeout(Command::new("curl").args(&args), None, SECS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "200 1\n200 0\n200 0\n");
    let got = sub.wait(SECS);
    assert_eq!(text(&got.stdout), expected_stream(&FIXTURES));
}

#[test]
fn python_urllib_posts_plain_gzip_and_chunked_bodies() {
    let broker = http_broker(&["--http-qos", "1"]);
    let sub = Sub::start(
        broker.port(),
        &["-t", "sensor-logger", "-C", "4", "-q", "1"],
    );
    let script = r#"
import gzip, http.client, sys, urllib.request
port, path = int(sys.argv[1]), sys.argv[2]
body = open(path, "rb").read()
url = f"http://127.0.0.1:{port}/data"
def post(data, headers):
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=20) as r:
        print(r.status, r.read().decode().strip())
post(body, {"Content-Type": "application/json"})
post(gzip.compress(body), {"Content-Type": "application/json", "Content-Encoding": "gzip"})
# An iterable body without a length goes out chunked.
post(iter([body[:100], body[100:]]), {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
# http.client keeps its connection between requests when the server allows it.
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
conn.request("GET", "/anything")
r = conn.getresponse(); page = r.read().decode()
sock = conn.sock
conn.request("POST", "/x", body=body)
r = conn.getresponse(); r.read()
print(r.status, "same connection" if conn.sock is sock and sock is not None else "new connection")
print(page.splitlines()[0])
"#;
    let out = run_with_timeout(
        python()
            .args(["-c", script])
            .arg(broker.ws_port().to_string())
            .arg(fixture(FIXTURES[0])),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "200 ok\n200 ok\n200 ok\n200 same connection\nsmq HTTP Push receiver: it works.\n"
    );
    let got = sub.wait(SECS);
    assert_eq!(text(&got.stdout), expected_stream(&[FIXTURES[0]; 4]));
}

#[test]
fn errors_answer_with_their_status_and_a_short_text() {
    let broker = http_broker(&[
        "--http-path",
        "/data",
        "--http-token",
        "s3cret",
        "--http-max-body",
        "1KiB",
        "--http-topic",
        "phones/{deviceId}",
    ]);
    let data = url(&broker, "/data");
    let auth = "Authorization: Bearer s3cret";
    let check = |answer: Answer, status: u16, body: &str| {
        assert_eq!(answer.status, status, "{}{}", answer.headers, answer.body);
        assert!(
            answer.body.starts_with(body),
            "{status}: {:?} does not start with {body:?}",
            answer.body
        );
        answer
    };

    let page = check(curl(&[&data]), 200, "smq HTTP Push receiver: it works.");
    assert!(page.headers.contains("text/plain"), "{}", page.headers);
    assert!(page.body.contains("phones/{deviceId}"), "{}", page.body);
    check(
        curl(&["--data-binary", "{}", &url(&broker, "/other")]),
        404,
        "smq: no HTTP Push receiver at /other: use /data",
    );
    let put = check(curl(&["-X", "PUT", &data]), 405, "smq: PUT is not accepted");
    assert!(
        put.headers.contains("Allow: GET, HEAD, POST"),
        "{}",
        put.headers
    );
    // The token: missing, wrong, then the two accepted forms.
    let small = r#"{"deviceId":"d1","payload":[]}"#;
    check(
        curl(&["--data-binary", small, &data]),
        499,
        "smq: bad token",
    );
    check(
        curl(&[
            "-H",
            "Authorization: Bearer nope",
            "--data-binary",
            small,
            &data,
        ]),
        499,
        "smq: bad token",
    );
    check(
        curl(&["-H", "Authorization: s3cret", "--data-binary", small, &data]),
        200,
        "ok",
    );
    check(
        curl(&["-H", auth, "--data-binary", small, &data]),
        200,
        "ok",
    );

    check(
        curl(&["-H", auth, "--data-binary", "not json", &data]),
        400,
        "smq: the body is not JSON",
    );
    check(
        curl(&["-H", auth, "--data-binary", r#"{"payload":[]}"#, &data]),
        400,
        "smq: the body has no deviceId for the topic",
    );
    let big = format!(r#"{{"deviceId":"d1","pad":"{}"}}"#, "x".repeat(2000));
    check(
        curl(&["-H", auth, "--data-binary", &big, &data]),
        413,
        "smq: body exceeds 1 KiB (--http-max-body)",
    );
    // A small gzip body that inflates past the limit.
    let dir = tempfile::tempdir().expect("temp dir");
    let bomb = dir.path().join("bomb.gz");
    let out = run_with_timeout(
        Command::new("sh").args([
            "-c",
            &format!(
                "head -c 100000 /dev/zero | gzip -9 > {}",
                bomb.to_str().expect("utf-8")
            ),
        ]),
        None,
        SECS,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    check(
        curl(&[
            "-H",
            auth,
            "-H",
            "Content-Encoding: gzip",
            "--data-binary",
            &format!("@{}", bomb.display()),
            &data,
        ]),
        413,
        "smq: the decoded body exceeds 1 KiB",
    );
    check(
        curl(&[
            "-H",
            auth,
            "-H",
            "Content-Encoding: br",
            "--data-binary",
            small,
            &data,
        ]),
        415,
        "smq: Content-Encoding br is not supported",
    );
}

/// Sends raw bytes on one connection, closes the sending side, returns all that came back.
fn raw(port: u16, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    tcp.set_read_timeout(Some(Duration::from_secs(SECS)))
        .expect("timeout");
    tcp.write_all(request).expect("sending");
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    text(&answer)
}

#[test]
fn framing_pipelining_continue_and_malformed_requests() {
    let mut broker = http_broker(&[]);
    let port = broker.ws_port();
    let sub = Sub::start(broker.port(), &["-t", "sensor-logger", "-C", "4"]);
    // Two pipelined requests in one write, a stray CRLF between them (skipped, RFC 9112 §2.2),
    // the second chunked with an extension and a trailer.
    let answer = raw(
        port,
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"n\":1}\r\n\
          POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          3;ext=1\r\n{\"n\r\n4\r\n\":2}\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");

    // Expect: 100-continue: the body goes out only after the interim answer.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    tcp.set_read_timeout(Some(Duration::from_secs(SECS)))
        .expect("timeout");
    tcp.write_all(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n")
        .expect("head");
    let mut interim = [0u8; 25];
    tcp.read_exact(&mut interim).expect("interim answer");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    tcp.write_all(b"{\"n\":3}").expect("body");
    let mut buf = [0u8; 17];
    tcp.read_exact(&mut buf).expect("final answer");
    assert_eq!(&buf, b"HTTP/1.1 200 OK\r\n");
    drop(tcp);

    // HTTP/1.0 without keep-alive: answered, then closed by the server.
    let answer = raw(
        port,
        b"POST / HTTP/1.0\r\nContent-Length: 7\r\n\r\n{\"n\":4}",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n"
    );

    for (request, status) in [
        (
            &b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"[..],
            "400",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            "400",
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "501"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n{}", "400"),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "400",
        ),
        (b"POST / HTTP/2.0\r\n\r\n", "505"),
        (b"POST /\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nBad Header\r\n\r\n", "400"),
    ] {
        let answer = raw(port, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{}: {answer}",
            text(request)
        );
    }
    let huge = format!("POST / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(20_000));
    assert!(raw(port, huge.as_bytes()).starts_with("HTTP/1.1 431 "));
    // Cut off mid-body and mid-chunk: no answer is owed, and the broker carries on.
    raw(
        port,
        b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"n\":",
    );
    raw(
        port,
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"n",
    );
    let answer = raw(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(broker.is_running(), "{}", broker.log());
}

#[test]
fn concurrent_clients_keep_their_order() {
    const CLIENTS: usize = 6;
    const EACH: usize = 15;
    let broker = http_broker(&["--http-topic", "sl/{deviceId}"]);
    let total = (CLIENTS * EACH).to_string();
    let sub = Sub::start(broker.port(), &["-t", "sl/#", "-v", "-C", &total]);
    let target = url(&broker, "/");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let target = target.clone();
            std::thread::spawn(move || {
                let mut args: Vec<String> = Vec::new();
                for i in 0..EACH {
                    if i > 0 {
                        args.push("--next".into());
                    }
                    args.extend([
                        "-sS".into(),
                        "-o".into(),
                        "/dev/null".into(),
                        "-w".into(),
                        "%{http_code}\n".into(),
                        "--data-binary".into(),
                        format!(r#"{{"deviceId":"c{c}","messageId":{i},"payload":[]}}"#),
                        target.clone(),
                    ]);
                }
                run_with_timeout(Command::new("curl").args(&args), None, SECS)
            })
        })
        .collect();
    for client in clients {
        let out: Output = client.join().expect("client thread");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "200\n".repeat(EACH));
    }
    let got = text(&sub.wait(SECS).stdout);
    for c in 0..CLIENTS {
        let ids: Vec<String> = got
            .lines()
            .filter(|l| l.starts_with(&format!("sl/c{c} ")))
            .map(|l| {
                let at = l.find("\"messageId\":").expect("an id") + 12;
                l[at..].split(',').next().expect("digits").to_owned()
            })
            .collect();
        let want: Vec<String> = (0..EACH).map(|i| i.to_string()).collect();
        assert_eq!(ids, want, "client {c} in\n{got}");
    }
}

#[test]
fn split_publishes_each_reading_on_its_sensor_topic() {
    let broker = http_broker(&["--split"]);
    let sub = Sub::start(
        broker.port(),
        &[
            "-t",
            "sensor-logger/+/totalacceleration",
            "-t",
            "sensor-logger/+/light",
            "-v",
            "-C",
            "2",
        ],
    );
    let answer = curl(&[
        "--data-binary",
        &format!("@{}", fixture(FIXTURES[0]).display()),
        &url(&broker, "/data"),
    ]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let device = "4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d";
    let envelope = r#"{"messageId":7,"sessionId":"c0a80164-0000-4000-8000-00000000beef","deviceId":"4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d","payload":"#;
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        format!(
            "sensor-logger/{device}/totalacceleration {envelope}[{{\"name\":\"totalacceleration\",\"values\":{{\"z\":9.7543,\"y\":0.2011,\"x\":-0.1532}},\"accuracy\":3,\"time\":1741944600130482200}}]}}\n\
             sensor-logger/{device}/light {envelope}[{{\"name\":\"light\",\"values\":{{\"lux\":342}},\"accuracy\":3,\"time\":1741944600140482300}}]}}\n"
        )
    );
}

#[test]
fn record_serve_http_writes_the_same_csv_as_mqtt() {
    let (child, seen) = crate::record_replay::spawn_record(&[
        "--serve",
        "--listen",
        "mqtt://127.0.0.1:0",
        "--listen",
        "ws://127.0.0.1:0",
        "--http",
        "-t",
        "sensor-logger",
        "-o",
        "-",
        "-C",
        "6",
    ]);
    let mqtt = crate::record_replay::listening_port(&seen, "mqtt");
    let ws = crate::record_replay::listening_port(&seen, "ws");
    // Each 200 means published, so the HTTP rows come first, then the MQTT ones.
    for name in FIXTURES {
        let answer = curl(&[
            "--data-binary",
            &format!("@{}", fixture(name).display()),
            &format!("http://127.0.0.1:{ws}/data"),
        ]);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    for name in FIXTURES {
        send(
            mqtt,
            &[
                "-t",
                "sensor-logger",
                "-f",
                fixture(name).to_str().expect("utf-8"),
            ],
        );
    }
    let out = crate::record_replay::wait(child);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "recv_time,topic,device_id,session_id,message_id,sensor,time,time_ns,time_src,field,value,value_text"
        )
    );
    // Without recv_time (column 1), the rows of the pushes equal the rows of the publishes.
    let rows: Vec<&str> = lines
        .map(|l| l.split_once(',').expect("a CSV row").1)
        .collect();
    assert_eq!(rows.len() % 2, 0, "{csv}");
    let (http, mqtt) = rows.split_at(rows.len() / 2);
    assert_eq!(http, mqtt, "{csv}");
    assert!(
        http.contains(&"sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,totalacceleration,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,z,9.7543,"),
        "{csv}"
    );
}

#[test]
fn paho_over_websocket_sees_http_pushes_and_websocket_publishes() {
    let broker = http_broker(&[]);
    let ws = broker.ws_port();
    // The seed consumer pattern: paho-mqtt with transport="websockets", printing each payload.
    let script = r#"
import sys, paho.mqtt.client as mqtt
port, want = int(sys.argv[1]), int(sys.argv[2])
got = []
def on_connect(c, u, flags, rc, props):
    c.subscribe("sensor-logger", qos=1)
def on_subscribe(c, u, mid, codes, props):
    print("subscribed", flush=True)
def on_message(c, u, msg):
    got.append(msg.payload)
    if len(got) == want:
        c.disconnect()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport="websockets")
c.ws_set_options(path="/mqtt")
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect("127.0.0.1", port, keepalive=30)
c.loop_forever()
for p in got:
    print(p.hex(), flush=True)
"#;
    let mut consumer = python()
        .args(["-c", script])
        .arg(ws.to_string())
        .arg("6")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting python");
    let mut stdout = consumer.stdout.take().expect("piped");
    let mut first = [0u8; 11];
    let ready = stdout.read_exact(&mut first);
    if ready.is_err() || &first != b"subscribed\n" {
        let _ = consumer.kill();
        let out = consumer.wait_with_output().expect("python output");
        panic!("paho did not subscribe: {}", text(&out.stderr));
    }
    for name in FIXTURES {
        let answer = curl(&[
            "--data-binary",
            &format!("@{}", fixture(name).display()),
            &format!("http://127.0.0.1:{ws}/data"),
        ]);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    for name in FIXTURES {
        let out = run_with_timeout(
            smq().args([
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &ws.to_string(),
                "--ws",
                "-q",
                "1",
                "-t",
                "sensor-logger",
                "-f",
                fixture(name).to_str().expect("utf-8"),
            ]),
            None,
            SECS,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let mut rest = String::new();
    let read = stdout.read_to_string(&mut rest);
    let out = crate::support::wait_with_deadline(consumer, Duration::from_secs(SECS))
        .unwrap_or_else(|o| panic!("paho still running: {}", text(&o.stderr)));
    assert!(
        read.is_ok() && out.status.success(),
        "{}",
        text(&out.stderr)
    );
    let got: Vec<Vec<u8>> = rest
        .lines()
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect();
    let want: Vec<Vec<u8>> = FIXTURES
        .iter()
        .chain(FIXTURES.iter())
        .map(|n| fixture_bytes(n))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn http_flags_need_http_and_a_websocket_listener() {
    let usage_error = |args: &[&str], want: &str| {
        let out = run_with_timeout(smq().args(args), None, SECS);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    };
    usage_error(
        &["serve-broker", "--listen", "mqtt://127.0.0.1:0", "--http"],
        "--http needs a ws:// listener",
    );
    usage_error(
        &["sub", "-t", "x", "--http"],
        "--http runs on the embedded broker: add --serve",
    );
    usage_error(
        &["serve-broker", "--http", "--http-topic", "a/{nope}"],
        "unknown placeholder {nope}",
    );
    usage_error(
        &["serve-broker", "--http", "--http-path", "data"],
        "--http-path 'data': give a path starting with '/'",
    );
    usage_error(
        &["serve-broker", "--split"],
        "the following required arguments were not provided:\n  --http\n",
    );
}

#[test]
fn https_push_on_a_wss_listener() {
    let certs = crate::support::certs::Certs::generate();
    let cert = certs.server_cert();
    let key = certs.server_key();
    let broker = SmqBroker::start_with_listeners(
        &["mqtt://127.0.0.1:0", "wss://127.0.0.1:0"],
        &[
            "--cert",
            cert.to_str().expect("utf-8"),
            "--key",
            key.to_str().expect("utf-8"),
            "--http",
        ],
    );
    let sub = Sub::start(broker.port(), &["-t", "sensor-logger", "-C", "1"]);
    let answer = curl(&[
        "--cacert",
        certs.ca().to_str().expect("utf-8"),
        "--data-binary",
        &format!("@{}", fixture(FIXTURES[1]).display()),
        &format!("https://127.0.0.1:{}/data", broker.wss_port()),
    ]);
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok\n"));
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        expected_stream(&[FIXTURES[1]])
    );
}

#[test]
fn pushes_are_anonymous_clients_held_to_the_broker_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let passwords = dir.path().join("passwd");
    crate::broker_auth::mosquitto_passwd(&passwords, true, "reader", "pw");
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "topic write phones/#\nuser reader\ntopic read #\n").expect("acl");
    let conf = dir.path().join("smq.conf");
    std::fs::write(&conf, "message_size_limit 200\n").expect("conf");
    let (passwords, acl, conf) = (
        passwords.to_str().expect("utf-8"),
        acl.to_str().expect("utf-8"),
        conf.to_str().expect("utf-8"),
    );

    // Anonymous MQTT clients are refused (a password file): open pushes would let them in.
    let out = run_with_timeout(
        smq().args([
            "serve-broker",
            "--listen",
            "ws://127.0.0.1:0",
            "--password-file",
            passwords,
            "--http",
        ]),
        None,
        SECS,
    );
    assert_fails(&out, 2, "add --http-token SECRET");

    let broker = http_broker(&[
        "-c",
        conf,
        "--password-file",
        passwords,
        "--acl-file",
        acl,
        "--http-token",
        "s3cret",
        "--http-topic",
        "{path}",
    ]);
    assert!(
        broker
            .log()
            .contains("HTTP Push: pushes are anonymous clients, each needing the --http-token"),
        "{}",
        broker.log()
    );
    let sub = Sub::start(
        broker.port(),
        &[
            "-u", "reader", "-P", "pw", "-t", "#", "-t", "$SYS/#", "-v", "-C", "1",
        ],
    );
    let auth = "Authorization: s3cret";
    let post =
        |path: &str, body: &str| curl(&["-H", auth, "--data-binary", body, &url(&broker, path)]);
    // No token: refused before anything else.
    let no_token = curl(&["--data-binary", "{}", &url(&broker, "/phones/a")]);
    assert_eq!(no_token.status, 499, "{}", no_token.body);
    // The path cannot reach $SYS: its leading $ is a plain character, and the ACL has no
    // write rule there for anonymous clients.
    let sys = post("/$SYS/broker/version", "{}");
    assert_eq!(sys.status, 403, "{}", sys.body);
    assert_eq!(
        sys.body,
        "smq: the ACL does not let anonymous clients publish to _SYS/broker/version\n"
    );
    let elsewhere = post("/other", "{}");
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(200));
    let too_big = post("/phones/a", &big);
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert!(
        too_big.body.contains("message_size_limit of 200 bytes"),
        "{}",
        too_big.body
    );
    // Wildcards in the path stay characters of their level.
    let ok = post("/phones/+/%23", r#"{"n":1}"#);
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Refused pushes were answered before this one was routed: the first message seen is it.
    assert_eq!(text(&sub.wait(SECS).stdout), "phones/_/%23 {\"n\":1}\n");
}

#[test]
fn split_output_is_capped_and_bodies_in_flight_are_bounded() {
    let broker = http_broker(&["--split", "--http-max-body", "64KiB"]);
    // 30 KB of padding repeated in each of 1,000 one-reading messages would be 30 MB.
    let readings = vec![r#"{"name":"a","values":{"v":1}}"#; 1000].join(",");
    let bomb = format!(
        r#"{{"deviceId":"d","pad":"{}","payload":[{readings}]}}"#,
        "x".repeat(30_000)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bomb.json");
    std::fs::write(&file, &bomb).expect("write");
    let answer = curl(&[
        "--data-binary",
        &format!("@{}", file.display()),
        &url(&broker, "/data"),
    ]);
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(
        answer.body,
        "smq: this body and its --split messages would take more than 256 KiB\n"
    );

    // Four bodies of the largest size, all but their last byte sent, hold the whole budget
    // (4 × 64 KiB): nothing else fits, not even two bytes.
    let body = json_of_len(64 << 10);
    let (mut holding, busy) = hold_until_busy(
        broker.ws_port(),
        4,
        &body,
        b"POST /data HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert!(busy.contains("Retry-After: 1\r\n"), "{busy}");
    // One finishes: its share is free again.
    let mut done = holding.pop().expect("a connection");
    done.write_all(&body[body.len() - 1..]).expect("body");
    let mut status = [0u8; 17];
    done.read_exact(&mut status).expect("answer");
    assert_eq!(&status, b"HTTP/1.1 200 OK\r\n");
    let answer = curl(&["--data-binary", "{}", &url(&broker, "/data")]);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// `{"pad":"xx…"}`, exactly `len` bytes.
fn json_of_len(len: usize) -> Vec<u8> {
    format!(r#"{{"pad":"{}"}}"#, "x".repeat(len - 10)).into_bytes()
}

/// A POST announcing `len` bytes, with `sent` of them sent once the broker answered
/// `100 Continue`: the head was read and accepted.
fn start_body(port: u16, len: usize, sent: &[u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(SECS)))
        .expect("timeout");
    let head =
        format!("POST /data HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {len}\r\n\r\n");
    tcp.write_all(head.as_bytes()).expect("head");
    let mut interim = [0u8; 25];
    tcp.read_exact(&mut interim).expect("an interim answer");
    assert_eq!(text(&interim), "HTTP/1.1 100 Continue\r\n\r\n");
    tcp.write_all(sent).expect("body");
    tcp
}

/// `count` connections each sending all of `body` but its last byte, and `probe` sent until
/// it is answered 503: then the broker has read their bytes (nothing else says so). A probe
/// can take the budget a body arriving meanwhile needed, which is then refused: it is sent
/// again. Fails after SECS.
fn hold_until_busy(port: u16, count: usize, body: &[u8], probe: &[u8]) -> (Vec<TcpStream>, String) {
    let mut holding = Vec::new();
    let mut last = String::new();
    poll(Duration::from_secs(SECS), Duration::from_millis(20), || {
        holding.retain(|tcp| !answered(tcp));
        while holding.len() < count {
            holding.push(start_body(port, body.len(), &body[..body.len() - 1]));
        }
        last = raw(port, probe);
        last.starts_with("HTTP/1.1 503 ").then_some(())
    })
    .unwrap_or_else(|| panic!("never answered 503; the last answer: {last}"));
    (holding, last)
}

/// Whether the broker has answered (or closed) a connection whose request is not complete.
fn answered(tcp: &TcpStream) -> bool {
    tcp.set_nonblocking(true).expect("non-blocking");
    let peeked = tcp.peek(&mut [0u8]);
    tcp.set_nonblocking(false).expect("blocking");
    !matches!(peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
fn connections_announcing_large_bodies_do_not_lock_out_pushes() {
    // Each announces the largest body (16 MiB) and sends one byte: 50 of them hold 50 bytes,
    // not 50 × 16 MiB, so real pushes go on.
    let broker = http_broker(&[]);
    let tricklers: Vec<TcpStream> = (0..50)
        .map(|_| start_body(broker.ws_port(), 16 << 20, b"{"))
        .collect();
    let answer = curl(&[
        "--data-binary",
        &format!("@{}", fixture(FIXTURES[0]).display()),
        &url(&broker, "/data"),
    ]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    drop(tricklers);
}

#[test]
fn gzip_bombs_are_charged_for_what_they_decode_to() {
    use std::io::Write as _;
    let broker = http_broker(&["--http-max-body", "64KiB"]);
    let port = broker.ws_port();
    // About 100 bytes on the wire, 64 KiB decoded: valid JSON, so it is answered 200 when it
    // fits.
    let decoded = json_of_len(64 << 10);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&decoded).expect("compress");
    let bomb = enc.finish().expect("compress");
    let mut request = format!(
        "POST /data HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    request.extend_from_slice(&bomb);
    let answer = raw(port, &request);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");

    // Three bodies arriving hold 3/4 of the budget (4 × 64 KiB): the bomb's 100 bytes would
    // fit, its 64 KiB do not.
    let (mut holding, busy) = hold_until_busy(port, 3, &decoded, &request);
    assert!(
        busy.ends_with("smq: too many pushes at once: try again in a second\n"),
        "{busy}"
    );
    for mut done in holding.drain(..) {
        done.write_all(&decoded[decoded.len() - 1..]).expect("body");
        let mut status = [0u8; 17];
        done.read_exact(&mut status).expect("answer");
        assert_eq!(&status, b"HTTP/1.1 200 OK\r\n");
    }
    let answer = raw(port, &request);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

#[test]
fn a_qos_1_push_answered_200_survives_a_crash_with_persist() {
    use crate::support::raw::{Client, Connect, V4, disconnect, parse_publish};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let args = ["--http-qos", "1", "--persist", store];
    let mut broker = http_broker(&args);
    let connect = Connect::new(V4, "phone-store").clean(false);
    let (mut sub, _) = Client::connect(broker.port(), &connect);
    assert_eq!(sub.subscribe(1, &[("sensor-logger", 1)]), [1]);
    sub.send(&disconnect(V4, 0));
    let body = fixture_bytes(FIXTURES[0]);
    let answer = curl(&[
        "--data-binary",
        &format!("@{}", fixture(FIXTURES[0]).display()),
        &url(&broker, "/data"),
    ]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The 200 came after the fsync: killed right away, the broker still has the message.
    broker.signal("KILL");
    let broker = http_broker(&args);
    let (mut sub, _) = Client::connect(broker.port(), &connect);
    let p = parse_publish(V4, &sub.expect("the pushed message"));
    assert_eq!(
        (p.topic.as_slice(), p.payload),
        (&b"sensor-logger"[..], body)
    );
}

/// MQTT 5 topic aliases from the broker, on the topics `--split` makes of Sensor Logger's
/// readings (`sensor-logger/DEVICE/SENSOR`): a client that allows them gets each topic in full
/// once, with an alias, and after that the alias and an empty topic. The bytes are counted
/// against a client that does not allow them, receiving the same messages.
#[test]
fn split_topics_go_as_topic_aliases_to_a_client_that_allows_them() {
    use crate::support::raw::{Client, Connect, Prop, V5, parse_publish, prop_u16};
    use std::collections::HashMap;
    let broker = http_broker(&["--split"]);
    let connect = |id, alias_max: Option<u16>| {
        let c = Connect::new(V5, id);
        let c = match alias_max {
            Some(n) => c.props(prop_u16(0x22, n)),
            None => c,
        };
        let (mut client, _) = Client::connect(broker.port(), &c);
        assert_eq!(client.subscribe(1, &[("sensor-logger/#", 0)]), [0]);
        client
    };
    let mut aliased = connect("aliased", Some(32));
    let mut plain = connect("plain", None);
    const ROUNDS: usize = 4;
    let mut readings = 0;
    for _ in 0..ROUNDS {
        for name in FIXTURES {
            let body: serde_json::Value =
                serde_json::from_slice(&fixture_bytes(name)).expect("a fixture is JSON");
            readings += body["payload"].as_array().expect("a payload array").len();
            let answer = curl(&[
                "--data-binary",
                &format!("@{}", fixture(name).display()),
                &url(&broker, "/data"),
            ]);
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
    }
    let alias_of = |p: &crate::support::raw::Publish| {
        p.props.iter().find_map(|(id, v)| match (id, v) {
            (0x23, Prop::U16(n)) => Some(*n),
            _ => None,
        })
    };
    let (mut aliased_bytes, mut plain_bytes) = (0, 0);
    let mut topics: HashMap<u16, Vec<u8>> = HashMap::new();
    for i in 0..readings {
        let a = aliased.expect("a PUBLISH to the aliased client");
        let p = plain.expect("a PUBLISH to the plain client");
        aliased_bytes += a.bytes().len();
        plain_bytes += p.bytes().len();
        let (a, p) = (parse_publish(V5, &a), parse_publish(V5, &p));
        assert_eq!(
            alias_of(&p),
            None,
            "message {i}: an alias the client did not allow"
        );
        assert_eq!(
            a.payload, p.payload,
            "message {i}: the same message in the same order"
        );
        let n = alias_of(&a).unwrap_or_else(|| panic!("message {i} without an alias"));
        assert!((1..=32).contains(&n), "alias {n}");
        if a.topic.is_empty() {
            assert_eq!(topics.get(&n), Some(&p.topic), "message {i}: alias {n}");
        } else {
            assert_eq!(a.topic, p.topic, "message {i}");
            assert_eq!(
                topics.insert(n, a.topic.clone()),
                None,
                "alias {n} set twice"
            );
        }
    }
    assert!(topics.len() < readings, "no topic was sent twice");
    assert!(
        aliased_bytes < plain_bytes,
        "{aliased_bytes} bytes with aliases, {plain_bytes} without"
    );
    // The measurement docs/serve-broker.md quotes.
    let _ = writeln!(
        std::io::stderr(),
        "Sensor Logger --split topics, {readings} messages on {} topics: {aliased_bytes} bytes with topic aliases, {plain_bytes} without ({:.1}% saved)",
        topics.len(),
        100.0 * (plain_bytes - aliased_bytes) as f64 / plain_bytes as f64
    );
}
