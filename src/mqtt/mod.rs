//! MQTT 3.1.1 and 5, once, for the client and the broker: packet types, one strict decoder
//! and one encoder for every packet in both directions, properties, reason codes and the
//! framing. Who owns what:
//!
//! - `protocol.rs`: the protocol version; `violation.rs`: what a decoder reports when a packet
//!   breaks a rule.
//! - `wire.rs`: the bounds-checked reader, varints, strings, the fixed header (framing).
//! - `props.rs`: v5 property identifiers, which packet may carry which, the strict reader,
//!   and the message properties PUBLISH and a will share.
//! - `reason.rs`: reason codes, with their names and words, one type per packet kind.
//! - `packet.rs`: the packets each side sends, and the decoders that dispatch on type.
//! - one file per packet kind or group: `connect.rs`, `connack.rs`, `publish.rs`,
//!   `acks.rs` (PUBACK, PUBREC, PUBREL, PUBCOMP), `subscribe.rs` (and SUBACK),
//!   `unsubscribe.rs` (and UNSUBACK), `control.rs` (PINGREQ, PINGRESP, DISCONNECT, AUTH).
//!
//! Topic name and filter rules, `$share/GROUP/FILTER` included, are in `crate::topic`.
//!
//! Everything is parsed by hand over bounds-checked readers, strictly, as a server must:
//! fixed-header flag bits, duplicate properties, property values out of range, property
//! lists that run past their declared length, U+0000 in strings, reserved bits. Normative
//! statements are cited as in the 3.1.1 specification; where MQTT 5 numbers the same rule
//! differently both are given ("5.0: ...").
//!
//! Every decoder works on a whole packet only, never panics on any input, and leaves `buf`
//! untouched when it returns `Ok(None)`. A PUBLISH owns its bytes: topic and payload are
//! copied out of the receive buffer, once, so that a message queued for a slow subscriber holds
//! only itself and never the (possibly megabytes large) buffer it arrived in.

mod acks;
mod connack;
mod connect;
mod control;
mod packet;
mod props;
mod protocol;
mod publish;
pub mod reason;
mod subscribe;
mod unsubscribe;
mod violation;
mod wire;

pub use acks::{encode_puback, encode_pubcomp, encode_pubrec, encode_pubrel};
pub use connack::{ConnAck, encode_connack};
pub use connect::{
    Connect, SESSION_NEVER, Will, decode_connect, encode_connect, encode_connect_mqtt31,
};
pub use control::{encode_client_disconnect, encode_disconnect, encode_pingreq, encode_pingresp};
pub use packet::{ClientPacket, ServerPacket, decode_client, decode_server};
pub use props::PublishProperties;
pub use protocol::Protocol;
pub use publish::{Message, PublishHead, encode_publish, encode_publish_head, payload_room};
pub use reason::{
    ClientDisconnectCode, ConnAckCode, PubAckCode, PubRelCode, ReasonCode, ServerDisconnectCode,
    SubAckCode, UnsubAckCode,
};
pub use subscribe::{Filter, Subscription, encode_suback, encode_subscribe};
pub use unsubscribe::{encode_unsuback, encode_unsubscribe};
pub use violation::Violation;
pub use wire::{MAX_PACKET, MAX_REMAINING_LENGTH, has_whole_packet, packet_size};

#[cfg(test)]
mod tests;
