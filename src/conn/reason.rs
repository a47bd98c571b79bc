//! Reason codes in words (MQTT 3.1.1 §3.2.2.3, MQTT 5 §2.4).

use super::packet::Protocol;

/// The MQTT 3.1.1 CONNACK code closest to an MQTT 5 reason code, as a broker answers a 3.1.1
/// client: what smq exits with under `-V auto`, so scripts written for mosquitto_pub (which
/// speaks 3.1.1 unless told otherwise) see the codes they test for.
pub fn connack_v311(code: u8) -> u8 {
    match code {
        0x84 => 1,
        0x85 => 2,
        0x86 => 4,
        0x87 | 0x8C => 5,
        // Server unavailable: the closest 3.1.1 has to "refused for another reason".
        _ => 3,
    }
}

pub fn connack(proto: Protocol, code: u8) -> &'static str {
    match (proto, code) {
        (Protocol::V311, 1) => "unacceptable protocol version",
        (Protocol::V311, 2) => "client identifier rejected",
        (Protocol::V311, 3) => "server unavailable",
        (Protocol::V311, 4) => "bad username or password",
        (Protocol::V311, 5) => "not authorised",
        // A 3.1.1 code in answer to a v5 CONNECT: the broker does not speak MQTT 5.
        (Protocol::V5, 1) => {
            "unacceptable protocol version: the broker speaks only MQTT 3.1.1 (use -V mqttv311)"
        }
        (Protocol::V5, _) => v5(code),
        _ => "unknown reason",
    }
}

pub fn disconnect(code: u8) -> &'static str {
    match code {
        0x00 => "normal disconnection",
        0x04 => "disconnect with will message",
        _ => v5(code),
    }
}

/// PUBACK/PUBREC/PUBCOMP codes.
pub fn delivery(code: u8) -> &'static str {
    match code {
        0x10 => "no matching subscribers",
        0x92 => "packet identifier not found",
        _ => v5(code),
    }
}

/// SUBACK codes; 3.1.1 has only 0x80 for a refusal.
pub fn subscribe(code: u8) -> &'static str {
    match code {
        0x80 => "refused",
        _ => v5(code),
    }
}

fn v5(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8A => "banned",
        0x8B => "server shutting down",
        0x8C => "bad authentication method",
        0x8D => "keep alive timeout",
        0x8E => "session taken over",
        0x8F => "topic filter invalid",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x93 => "receive maximum exceeded",
        0x94 => "topic alias invalid",
        0x95 => "packet too large",
        0x96 => "message rate too high",
        0x97 => "quota exceeded",
        0x98 => "administrative action",
        0x99 => "payload format invalid",
        0x9A => "retain not supported",
        0x9B => "QoS not supported",
        0x9C => "use another server",
        0x9D => "server moved",
        0x9E => "shared subscriptions not supported",
        0x9F => "connection rate exceeded",
        0xA0 => "maximum connect time",
        0xA1 => "subscription identifiers not supported",
        0xA2 => "wildcard subscriptions not supported",
        _ => "unknown reason",
    }
}
