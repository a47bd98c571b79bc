//! Clients of other implementations against the broker: mosquitto_pub/sub at 3.1.1 and 5,
//! smq pub to smq sub, and MQTT 3.1 clients.

use super::SECS;
use crate::support::clients::smq_pub;
use crate::support::smq_broker::SmqBroker;
use crate::support::smq_sub::SmqSub;
use crate::support::{Sub, assert_ok, mosquitto_pub, run_with_timeout, send, text};

#[test]
fn mosquitto_clients_v311_and_v5_interoperate() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let v311 = Sub::start(port, &["-t", "i/#", "-C", "3", "-v", "-q", "1"]);
    let v5 = Sub::start(port, &["-V", "5", "-t", "i/#", "-C", "3", "-v", "-q", "2"]);
    send(port, &["-t", "i/a", "-m", "from-311", "-q", "1"]);
    send(port, &["-V", "5", "-t", "i/b", "-m", "from-5", "-q", "2"]);
    send(port, &["-V", "5", "-t", "i/c", "-m", "qos0"]);
    for (name, sub) in [("v3.1.1", v311), ("v5", v5)] {
        // Different QoS levels: no order between them is promised (4.6).
        let out = sub.wait(SECS);
        let mut got: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
        got.sort();
        assert_eq!(
            got,
            ["i/a from-311", "i/b from-5", "i/c qos0"],
            "{name} subscriber\n{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn smq_pub_to_smq_sub_over_tcp() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let sub = SmqSub::start(port, &["-t", "s/#", "-C", "4", "-v", "-q", "2"]);
    for (topic, msg, qos, version) in [
        ("s/0", "zero", "0", "311"),
        ("s/1", "one", "1", "311"),
        ("s/2", "two", "2", "5"),
        ("s/5", "five", "1", "5"),
    ] {
        let out = smq_pub(port, &["-t", topic, "-m", msg, "-q", qos, "-V", version]);
        assert_ok(&out, &format!("smq pub {topic}"));
    }
    let out = sub.wait(SECS);
    assert_eq!(
        text(&out.stdout),
        "s/0 zero\ns/1 one\ns/2 two\ns/5 five\n",
        "{}",
        text(&out.stderr)
    );
}

/// MQTT 3.1 ("MQIsdp", level 3), which older phone and board libraries still send, is served
/// as 3.1.1 (Sensor Logger's protocol level is undocumented; SENSORS.md §1.4).
#[test]
fn mqtt_3_1_clients_are_served() {
    let broker = SmqBroker::start(&[]);
    let port = broker.port();
    let sub = Sub::start(port, &["-V", "mqttv31", "-t", "old/#", "-C", "1", "-v"]);
    let out = run_with_timeout(
        mosquitto_pub(port).args(["-V", "mqttv31", "-t", "old/board", "-m", "hi", "-q", "1"]),
        None,
        30,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&sub.wait(30).stdout), "old/board hi\n");
}
