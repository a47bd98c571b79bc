//! Reason codes in words, as the client reports them: the words live with the codes in
//! `crate::mqtt::reason`.

use crate::mqtt::Protocol;
use crate::mqtt::reason;

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
    reason::connack_words(proto, code)
}

pub fn disconnect(code: u8) -> &'static str {
    reason::disconnect_words(code)
}

/// PUBACK/PUBREC/PUBCOMP codes.
pub fn delivery(code: u8) -> &'static str {
    reason::delivery_words(code)
}

/// SUBACK codes; 3.1.1 has only 0x80 for a refusal.
pub fn subscribe(code: u8) -> &'static str {
    reason::subscribe_words(code)
}
