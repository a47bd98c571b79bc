//! Reason codes in words, as the client reports them: the words live with the codes in
//! `crate::mqtt::reason`.

use super::packet::Protocol;
use crate::mqtt::reason;

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
