//! The packets each side sends, and the two decoders that take one off the front of a
//! receive buffer: [`decode_client`] (what a client sends, read by the broker) and
//! [`decode_server`] (what a server sends, read by the client). CONNECT, the first packet,
//! has its own decoder in `connect.rs`.

use bytes::{Buf, BytesMut};

use super::acks;
use super::connack;
use super::connack::ConnAck;
use super::control::{self, Disconnect};
use super::protocol::Protocol;
use super::publish::Message;
use super::publish::{self, Sender};
use super::reason::{
    AuthCode, ClientDisconnectCode, PubAckCode, PubRelCode, ServerDisconnectCode, SubAckCode,
    UnsubAckCode,
};
use super::subscribe::{self, Filter};
use super::unsubscribe;
use super::violation::Violation;
use super::wire::{Reader, whole_packet};

/// A packet from a client, after its CONNECT.
///
/// Every field is what the packet says, whether or not the broker acts on it (it ignores DUP
/// and the codes of a client's acknowledgements); the unit tests read them all.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "fields the broker does not act on")
)]
pub enum ClientPacket {
    /// A v5 topic alias stays in `msg.props.topic_alias`; the topic is empty only if an alias
    /// is present (the session resolves aliases).
    Publish {
        msg: Message,
        pkid: u16,
        dup: bool,
    },
    PubAck {
        pkid: u16,
        code: PubAckCode,
    },
    PubRec {
        pkid: u16,
        code: PubAckCode,
    },
    PubRel {
        pkid: u16,
        code: PubRelCode,
    },
    PubComp {
        pkid: u16,
        code: PubRelCode,
    },
    Subscribe {
        pkid: u16,
        filters: Vec<Filter>,
        sub_id: Option<u32>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect(Disconnect<ClientDisconnectCode>),
    /// v5 AUTH (well-formed; its content is not kept since smq has no enhanced auth).
    Auth(AuthCode),
    /// A second CONNECT: the session answers with a protocol error [MQTT-3.1.0-2].
    Connect,
}

/// A packet from a server. As with [`ClientPacket`], every field is what the packet says;
/// the client does not act on PUBREL's code or UNSUBACK's.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "fields the client does not act on")
)]
pub enum ServerPacket {
    ConnAck(ConnAck),
    Publish {
        msg: Message,
        pkid: u16,
        dup: bool,
    },
    PubAck {
        pkid: u16,
        code: PubAckCode,
    },
    PubRec {
        pkid: u16,
        code: PubAckCode,
    },
    PubRel {
        pkid: u16,
        code: PubRelCode,
    },
    PubComp {
        pkid: u16,
        code: PubRelCode,
    },
    SubAck {
        pkid: u16,
        codes: Vec<SubAckCode>,
    },
    /// No codes in 3.1.1.
    UnsubAck {
        pkid: u16,
        codes: Vec<UnsubAckCode>,
    },
    PingResp,
    Disconnect(Disconnect<ServerDisconnectCode>),
    Auth(AuthCode),
}

/// Decodes the next packet a client sent on an established connection.
///
/// `Ok(None)`: more bytes are needed (`buf` is untouched apart from reserved capacity). On
/// `Err`, a v5 connection gets DISCONNECT with `code` (`answer` is `Some(V5)`), then both close.
pub fn decode_client(
    proto: Protocol,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<ClientPacket>, Violation> {
    answered(proto, client_packet(proto, buf, max))
}

/// Decodes the next packet a server sent, after CONNECT; as strict as [`decode_client`].
pub fn decode_server(
    proto: Protocol,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<ServerPacket>, Violation> {
    answered(proto, server_packet(proto, buf, max))
}

/// A v5 peer is told why with a DISCONNECT; a 3.1.1 one is just closed on.
fn answered<T>(proto: Protocol, r: Result<T, Violation>) -> Result<T, Violation> {
    r.map_err(|mut v| {
        v.answer = (proto == Protocol::V5).then_some(Protocol::V5);
        v
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The packet comes from a client.
    Client,
    /// The packet comes from a server.
    Server,
}

/// The whole packet at the front of `buf`: (first byte, header length, packet size).
fn next(
    proto: Protocol,
    side: Side,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<(u8, usize, usize)>, Violation> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    // The first byte alone can condemn a packet; no need to wait for the rest.
    check_fixed_header(proto, side, byte1)?;
    Ok(whole_packet(buf, max)?.map(|(header, size)| (byte1, header, size)))
}

fn client_packet(
    proto: Protocol,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<ClientPacket>, Violation> {
    let Some((byte1, header, size)) = next(proto, Side::Client, buf, max)? else {
        return Ok(None);
    };
    if byte1 >> 4 == 3 {
        let (msg, pkid, dup) = publish::decode(proto, Sender::Client, byte1, header, size, buf)?;
        return Ok(Some(ClientPacket::Publish { msg, pkid, dup }));
    }
    let body = buf.get(header..size).unwrap_or_default();
    let packet = parse_client(proto, byte1 >> 4, body)?;
    buf.advance(size);
    Ok(Some(packet))
}

fn server_packet(
    proto: Protocol,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<ServerPacket>, Violation> {
    let Some((byte1, header, size)) = next(proto, Side::Server, buf, max)? else {
        return Ok(None);
    };
    if byte1 >> 4 == 3 {
        let (msg, pkid, dup) = publish::decode(proto, Sender::Server, byte1, header, size, buf)?;
        return Ok(Some(ServerPacket::Publish { msg, pkid, dup }));
    }
    let body = buf.get(header..size).unwrap_or_default();
    let packet = parse_server(proto, byte1 >> 4, body)?;
    buf.advance(size);
    Ok(Some(packet))
}

/// The packet type and its flag bits, as 3.1.1 §2.2.2 (5.0 §2.1.3) lists them: neither side
/// sends the other's types, and reserved flags must have their listed values [MQTT-2.2.2-1]
/// or the connection is closed [MQTT-2.2.2-2] (5.0: MQTT-2.1.3-1, malformed).
fn check_fixed_header(proto: Protocol, side: Side, byte1: u8) -> Result<(), Violation> {
    let flags = byte1 & 0x0f;
    let kind = byte1 >> 4;
    let (name, want) = match kind {
        0 => return Err(Violation::malformed("packet type 0 is reserved")),
        1 if side == Side::Client => ("CONNECT", 0),
        2 if side == Side::Server => ("CONNACK", 0),
        3 => return publish::check_flags(byte1),
        4 => ("PUBACK", 0),
        5 => ("PUBREC", 0),
        6 => ("PUBREL", 0b0010), // [MQTT-3.6.1-1]
        7 => ("PUBCOMP", 0),
        8 if side == Side::Client => ("SUBSCRIBE", 0b0010), // [MQTT-3.8.1-1]
        9 if side == Side::Server => ("SUBACK", 0),
        10 if side == Side::Client => ("UNSUBSCRIBE", 0b0010), // [MQTT-3.10.1-1]
        11 if side == Side::Server => ("UNSUBACK", 0),
        12 if side == Side::Client => ("PINGREQ", 0),
        13 if side == Side::Server => ("PINGRESP", 0),
        14 => ("DISCONNECT", 0),
        15 if proto == Protocol::V5 => ("AUTH", 0),
        15 => {
            return Err(Violation::malformed(
                "packet type 15 is reserved in MQTT 3.1.1",
            ));
        }
        2 | 9 | 11 | 13 => {
            return Err(Violation::protocol(format!(
                "packet type {kind} is sent only by a server"
            )));
        }
        _ => {
            return Err(Violation::protocol(format!(
                "packet type {kind} is sent only by a client"
            )));
        }
    };
    if flags != want {
        return Err(Violation::malformed(format!(
            "{name} with fixed-header flags {flags:#06b} instead of {want:#06b} \
             [MQTT-2.2.2-1][MQTT-2.2.2-2]"
        )));
    }
    Ok(())
}

/// Everything a client sends but PUBLISH, whose fixed header has been checked.
fn parse_client(proto: Protocol, kind: u8, body: &[u8]) -> Result<ClientPacket, Violation> {
    let v5 = proto == Protocol::V5;
    Ok(match kind {
        1 => ClientPacket::Connect,
        4 => {
            let (pkid, code) =
                acks::parse(v5, "PUBACK", body, PubAckCode::Success, PubAckCode::in_spec)?;
            ClientPacket::PubAck { pkid, code }
        }
        5 => {
            let (pkid, code) =
                acks::parse(v5, "PUBREC", body, PubAckCode::Success, PubAckCode::in_spec)?;
            ClientPacket::PubRec { pkid, code }
        }
        6 => {
            let (pkid, code) = acks::parse(v5, "PUBREL", body, PubRelCode::Success, |_| true)?;
            ClientPacket::PubRel { pkid, code }
        }
        7 => {
            let (pkid, code) = acks::parse(v5, "PUBCOMP", body, PubRelCode::Success, |_| true)?;
            ClientPacket::PubComp { pkid, code }
        }
        8 => {
            let (pkid, filters, sub_id) = subscribe::parse(v5, body)?;
            ClientPacket::Subscribe {
                pkid,
                filters,
                sub_id,
            }
        }
        10 => {
            let (pkid, filters) = unsubscribe::parse(v5, body)?;
            ClientPacket::Unsubscribe { pkid, filters }
        }
        12 => {
            Reader::new(body, "PINGREQ").end()?;
            ClientPacket::PingReq
        }
        14 => ClientPacket::Disconnect(control::parse_client_disconnect(v5, body)?),
        15 => ClientPacket::Auth(control::parse_auth(body)?),
        // check_fixed_header has refused every other type.
        _ => return Err(Violation::malformed("unexpected packet type")),
    })
}

/// Everything a server sends but PUBLISH, whose fixed header has been checked.
fn parse_server(proto: Protocol, kind: u8, body: &[u8]) -> Result<ServerPacket, Violation> {
    let v5 = proto == Protocol::V5;
    Ok(match kind {
        2 => ServerPacket::ConnAck(connack::parse(proto, body)?),
        4 => {
            let (pkid, code) =
                acks::parse(v5, "PUBACK", body, PubAckCode::Success, PubAckCode::in_spec)?;
            ServerPacket::PubAck { pkid, code }
        }
        5 => {
            let (pkid, code) =
                acks::parse(v5, "PUBREC", body, PubAckCode::Success, PubAckCode::in_spec)?;
            ServerPacket::PubRec { pkid, code }
        }
        6 => {
            let (pkid, code) = acks::parse(v5, "PUBREL", body, PubRelCode::Success, |_| true)?;
            ServerPacket::PubRel { pkid, code }
        }
        7 => {
            let (pkid, code) = acks::parse(v5, "PUBCOMP", body, PubRelCode::Success, |_| true)?;
            ServerPacket::PubComp { pkid, code }
        }
        9 => {
            // 3.1.1: 0, 1, 2 or 0x80 [MQTT-3.9.3-2].
            let v311: fn(u8) -> bool = |b| matches!(b, 0 | 1 | 2 | 0x80);
            let (pkid, codes) = subscribe::parse_ack(proto, "SUBACK", body, Some(v311))?;
            ServerPacket::SubAck { pkid, codes }
        }
        11 => {
            let (pkid, codes) = subscribe::parse_ack(proto, "UNSUBACK", body, None)?;
            ServerPacket::UnsubAck { pkid, codes }
        }
        13 => {
            Reader::new(body, "PINGRESP").end()?;
            ServerPacket::PingResp
        }
        14 => ServerPacket::Disconnect(control::parse_server_disconnect(v5, body)?),
        15 => ServerPacket::Auth(control::parse_auth(body)?),
        _ => return Err(Violation::malformed("unexpected packet type")),
    })
}
