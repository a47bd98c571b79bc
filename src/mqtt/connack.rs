//! CONNACK (3.1.1 §3.2, 5.0 §3.2): the server's answer to CONNECT, encoded by the broker
//! and decoded by the client.

use bytes::{BufMut, BytesMut};

use super::props::{self, Value, id, int, text};
use super::protocol::Protocol;
use super::reason::{ConnAckCode, ReasonCode};
use super::violation::Violation;
use super::wire::{Reader, put_packet, put_str, put_varint};

/// What CONNACK says besides the reason code; every `None` property is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub code: ConnAckCode,
    pub assigned_client_id: Option<String>,
    pub session_expiry: Option<u32>,
    pub receive_max: Option<u16>,
    /// Only 0 or 1 is sent; absent means 2.
    pub max_qos: Option<u8>,
    pub retain_available: Option<bool>,
    pub max_packet: Option<u32>,
    pub topic_alias_max: Option<u16>,
    pub reason_string: Option<String>,
    pub wildcard_available: Option<bool>,
    pub sub_ids_available: Option<bool>,
    pub shared_available: Option<bool>,
    pub server_keepalive: Option<u16>,
    pub response_info: Option<String>,
    pub server_reference: Option<String>,
    pub user_properties: Vec<(String, String)>,
    /// A v5 CONNECT answered the 3.1.1 way (two bytes, a 3.1.1 return code): the broker does
    /// not speak MQTT 5. Only the decoder sets it; the encoder follows `proto`.
    pub v311_answer: bool,
}

impl Default for ConnAck {
    fn default() -> ConnAck {
        ConnAck {
            session_present: false,
            code: ConnAckCode::Success,
            assigned_client_id: None,
            session_expiry: None,
            receive_max: None,
            max_qos: None,
            retain_available: None,
            max_packet: None,
            topic_alias_max: None,
            reason_string: None,
            wildcard_available: None,
            sub_ids_available: None,
            shared_available: None,
            server_keepalive: None,
            response_info: None,
            server_reference: None,
            user_properties: Vec::new(),
            v311_answer: false,
        }
    }
}

impl ConnAck {
    /// A refusal with nothing else to say.
    pub fn refused(code: ConnAckCode) -> ConnAck {
        ConnAck {
            code,
            ..ConnAck::default()
        }
    }
}

/// CONNACK. 3.1.1: only `session_present` and the return code closest to `code` (see
/// [`ReasonCode::v311_connack`]). 5.0: the reason code, then every property that is `Some`.
pub fn encode_connack(proto: Protocol, ack: &ConnAck, buf: &mut BytesMut) {
    // A refused connection never has a session [MQTT-3.2.2-4] (5.0: MQTT-3.2.2-6).
    let accepted = ack.code == ConnAckCode::Success;
    let session_present = u8::from(ack.session_present && accepted);
    if proto == Protocol::V311 {
        let code = ReasonCode::from(ack.code).v311_connack();
        buf.put_slice(&[0x20, 2, session_present, code]);
        return;
    }
    let mut props = BytesMut::new();
    let byte = |props: &mut BytesMut, id: u8, v: Option<u8>| {
        if let Some(v) = v {
            props.put_slice(&[id, v]);
        }
    };
    if let Some(v) = ack.session_expiry {
        props.put_u8(id::SESSION_EXPIRY);
        props.put_u32(v);
    }
    if let Some(v) = ack.receive_max {
        props.put_u8(id::RECEIVE_MAX);
        props.put_u16(v);
    }
    // Maximum QoS may only be 0 or 1; absent means 2 (5.0 §3.2.2.3.4).
    byte(&mut props, id::MAX_QOS, ack.max_qos.filter(|&q| q < 2));
    byte(
        &mut props,
        id::RETAIN_AVAILABLE,
        ack.retain_available.map(u8::from),
    );
    if let Some(v) = ack.max_packet {
        props.put_u8(id::MAX_PACKET);
        props.put_u32(v);
    }
    if let Some(v) = &ack.assigned_client_id {
        props.put_u8(id::ASSIGNED_CLIENT_ID);
        put_str(&mut props, v);
    }
    if let Some(v) = ack.topic_alias_max {
        props.put_u8(id::TOPIC_ALIAS_MAX);
        props.put_u16(v);
    }
    if let Some(v) = &ack.reason_string {
        props.put_u8(id::REASON_STRING);
        put_str(&mut props, v);
    }
    byte(
        &mut props,
        id::WILDCARD_AVAILABLE,
        ack.wildcard_available.map(u8::from),
    );
    byte(
        &mut props,
        id::SUB_IDS_AVAILABLE,
        ack.sub_ids_available.map(u8::from),
    );
    byte(
        &mut props,
        id::SHARED_AVAILABLE,
        ack.shared_available.map(u8::from),
    );
    if let Some(v) = ack.server_keepalive {
        props.put_u8(id::SERVER_KEEPALIVE);
        props.put_u16(v);
    }
    if let Some(v) = &ack.response_info {
        props.put_u8(id::RESPONSE_INFO);
        put_str(&mut props, v);
    }
    if let Some(v) = &ack.server_reference {
        props.put_u8(id::SERVER_REFERENCE);
        put_str(&mut props, v);
    }
    props::write_user_properties(&mut props, &ack.user_properties);
    let mut body = BytesMut::with_capacity(props.len() + 7);
    body.put_slice(&[session_present, ack.code.number()]);
    put_varint(&mut body, props.len());
    body.put_slice(&props);
    put_packet(buf, 0x20, &body);
}

/// The 3.1.1 return codes as CONNACK reason codes.
fn v311_code(code: u8) -> Option<ConnAckCode> {
    Some(match code {
        0 => ConnAckCode::Success,
        1 => ConnAckCode::UnsupportedProtocolVersion,
        2 => ConnAckCode::ClientIdentifierNotValid,
        3 => ConnAckCode::ServerUnavailable,
        4 => ConnAckCode::BadUserNameOrPassword,
        5 => ConnAckCode::NotAuthorized,
        _ => return None,
    })
}

/// A CONNACK's body, as a client reads it.
pub(super) fn parse(proto: Protocol, body: &[u8]) -> Result<ConnAck, Violation> {
    let mut r = Reader::new(body, "CONNACK");
    let flags = r.u8()?;
    // Bits 7-1 are reserved [MQTT-3.2.2-1].
    if flags & 0xFE != 0 {
        return Err(Violation::malformed(
            "CONNACK with reserved flags set [MQTT-3.2.2-1]",
        ));
    }
    let raw = r.u8()?;
    let mut ack = ConnAck {
        session_present: flags & 1 == 1,
        ..ConnAck::default()
    };
    // A 3.1.1-only broker answers a v5 CONNECT the 3.1.1 way: two bytes, a return code.
    if proto == Protocol::V311 || r.is_empty() {
        ack.v311_answer = proto == Protocol::V5;
        ack.code = v311_code(raw).ok_or_else(|| {
            Violation::protocol(format!(
                "CONNACK with return code {raw}, which 3.1.1 has not"
            ))
        })?;
        r.end()?;
    } else {
        ack.code = ConnAckCode::try_from(raw).map_err(|_| {
            Violation::protocol(format!(
                "CONNACK with reason code {raw:#04x}, not one defined for it"
            ))
        })?;
        props::read(&mut r, props::CONNACK, |id, v| {
            let flag = |v: &Value<'_>| props::boolean("CONNACK", id, int(v));
            match id {
                id::SESSION_EXPIRY => ack.session_expiry = Some(int(&v)),
                id::RECEIVE_MAX => {
                    let n = u16::try_from(int(&v)).unwrap_or(0);
                    if n == 0 {
                        return Err(Violation::protocol("CONNACK: Receive Maximum 0"));
                    }
                    ack.receive_max = Some(n);
                }
                id::MAX_QOS => {
                    if int(&v) > 1 {
                        return Err(Violation::protocol(
                            "CONNACK: Maximum QoS other than 0 or 1",
                        ));
                    }
                    ack.max_qos = Some(int(&v) as u8);
                }
                id::RETAIN_AVAILABLE => ack.retain_available = Some(flag(&v)?),
                id::MAX_PACKET => {
                    if int(&v) == 0 {
                        return Err(Violation::protocol("CONNACK: Maximum Packet Size 0"));
                    }
                    ack.max_packet = Some(int(&v));
                }
                id::ASSIGNED_CLIENT_ID => ack.assigned_client_id = Some(text(&v)),
                id::TOPIC_ALIAS_MAX => ack.topic_alias_max = u16::try_from(int(&v)).ok(),
                id::REASON_STRING => ack.reason_string = Some(text(&v)),
                id::WILDCARD_AVAILABLE => ack.wildcard_available = Some(flag(&v)?),
                id::SUB_IDS_AVAILABLE => ack.sub_ids_available = Some(flag(&v)?),
                id::SHARED_AVAILABLE => ack.shared_available = Some(flag(&v)?),
                id::SERVER_KEEPALIVE => ack.server_keepalive = u16::try_from(int(&v)).ok(),
                id::RESPONSE_INFO => ack.response_info = Some(text(&v)),
                id::SERVER_REFERENCE => ack.server_reference = Some(text(&v)),
                id::USER_PROPERTY => {
                    if let Value::Pair(k, v) = v {
                        ack.user_properties.push((k.to_owned(), v.to_owned()));
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        r.end()?;
    }
    // A refused connection never has a session [MQTT-3.2.2-4] (5.0: MQTT-3.2.2-6).
    if ack.session_present && ack.code != ConnAckCode::Success {
        return Err(Violation::protocol(
            "CONNACK refuses the connection but says a session is present [MQTT-3.2.2-4]",
        ));
    }
    Ok(ack)
}
