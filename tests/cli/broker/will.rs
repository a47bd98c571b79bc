//! Wills: published when a connection dies, not after DISCONNECT; v5's Disconnect with Will
//! Message and will delay.

use std::time::{Duration, Instant};

use super::SECS;
use crate::support::clients::{kill_9, line_publisher, send_line};
use crate::support::raw::{self, Client, Connect, V5, Will, hex_all};
use crate::support::smq_broker::SmqBroker;
use crate::support::{Sub, assert_ok, send, text, wait_with_deadline};

/// [MQTT-3.1.2-8]: the will is published when the connection dies;
/// [MQTT-3.1.2-10]: not after a normal DISCONNECT.
#[test]
fn will_on_abnormal_close_and_not_on_disconnect() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let will = Sub::start(port, &["-t", "wl/will", "-C", "1", "-v"]);
    let no_will = Sub::start(port, &["-t", "wl/none", "-C", "1", "-W", "3"]);
    let alive = Sub::start(port, &["-t", "wl/alive", "-C", "2"]);

    let (graceful, mut g_in) = line_publisher(
        port,
        &[
            "-t",
            "wl/alive",
            "--will-topic",
            "wl/none",
            "--will-payload",
            "x",
        ],
    );
    let (mut dying, mut d_in) = line_publisher(
        port,
        &[
            "-t",
            "wl/alive",
            "--will-topic",
            "wl/will",
            "--will-payload",
            "died",
            "--will-qos",
            "1",
        ],
    );
    send_line(&mut g_in, "g");
    send_line(&mut d_in, "d");
    let out = alive.wait(SECS);
    assert_eq!(text(&out.stdout).lines().count(), 2, "both connected");
    // End of input: smq pub sends DISCONNECT and exits.
    drop(g_in);
    let out =
        wait_with_deadline(graceful, Duration::from_secs(SECS)).expect("smq pub exits at EOF");
    assert_ok(&out, "smq pub -l");
    kill_9(&mut dying);
    drop(d_in);
    assert_eq!(text(&will.wait(SECS).stdout), "wl/will died\n");
    let out = no_will.wait(SECS);
    assert_eq!(
        out.status.code(),
        Some(27),
        "will published after DISCONNECT"
    );
    assert_eq!(text(&out.stdout), "");
}

/// v5 [MQTT-3.14.4-3]: DISCONNECT 0x00 discards the will; 0x04 (Disconnect with Will Message)
/// publishes it.
#[test]
fn v5_disconnect_with_will_message_publishes_the_will() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let sub = Sub::start(port, &["-t", "w4/#", "-C", "2", "-v"]);
    for (reason, topic) in [(0x00, "w4/normal"), (0x04, "w4/with-will")] {
        let will = Will {
            topic: topic.as_bytes(),
            payload: b"will",
            qos: 1,
            props: Vec::new(),
        };
        let (mut c, _) = Client::connect(port, &Connect::new(V5, "").will(will));
        c.send(&raw::disconnect(V5, reason));
        let got = c.expect_close(raw::REPLY, "DISCONNECT");
        assert!(got.is_empty(), "{}", hex_all(&got));
    }
    send(port, &["-t", "w4/marker", "-m", "m"]);
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "w4/with-will will\nw4/marker m\n"
    );
}

/// v5 [MQTT-3.1.2-8]: with a will delay the will is published after the delay.
#[test]
fn v5_will_delay_publishes_after_the_delay() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let will = Sub::start(port, &["-t", "wd/will", "-C", "1", "-v"]);
    let alive = Sub::start(port, &["-t", "wd/alive", "-C", "1"]);
    let (mut child, mut stdin) = line_publisher(
        port,
        &[
            "-V",
            "5",
            "-c",
            "-x",
            "60",
            "-i",
            "wd-client",
            "-t",
            "wd/alive",
            "--will-topic",
            "wd/will",
            "--will-payload",
            "late",
            "-D",
            "will",
            "will-delay-interval",
            "2",
        ],
    );
    send_line(&mut stdin, "up");
    alive.wait(SECS);
    let killed = Instant::now();
    kill_9(&mut child);
    assert_eq!(text(&will.wait(SECS).stdout), "wd/will late\n");
    let waited = killed.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "will delay 2 s, but the will came after {waited:?}"
    );
}

/// v5 [MQTT-3.1.3-9]: reconnecting to the session within the will delay cancels the will.
#[test]
fn v5_will_delay_is_cancelled_by_reconnecting() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let will = Sub::start(port, &["-t", "wr/will", "-C", "1", "-W", "5"]);
    let session = [
        "-V",
        "5",
        "-c",
        "-x",
        "60",
        "-i",
        "wr-client",
        "-t",
        "wr/alive",
    ];
    let with_will = [
        "--will-topic",
        "wr/will",
        "--will-payload",
        "x",
        "-D",
        "will",
        "will-delay-interval",
        "2",
    ];
    let alive = Sub::start(port, &["-t", "wr/alive", "-C", "1"]);
    let (mut first, mut first_in) = line_publisher(port, &[&session[..], &with_will].concat());
    send_line(&mut first_in, "first");
    alive.wait(SECS);
    kill_9(&mut first);
    let alive = Sub::start(port, &["-t", "wr/alive", "-C", "1"]);
    let (_second, mut second_in) = line_publisher(port, &session);
    send_line(&mut second_in, "second");
    assert_eq!(text(&alive.wait(SECS).stdout), "second\n");
    let out = will.wait(SECS);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(27), String::new()),
        "the will was published although the session was resumed within the delay"
    );
}
