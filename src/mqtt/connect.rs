//! CONNECT (3.1.1 §3.1, 5.0 §3.1): the first packet of a connection, decoded by the broker
//! and encoded by the client.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::props::{self, PublishProperties, Value, id, int, text};
use super::protocol::Protocol;
use super::publish::topic_name_error;
use super::reason::ReasonCode;
use super::violation::Violation;
use super::wire::{Reader, put_binary, put_packet, put_str, put_varint, whole_packet};

/// A Session Expiry Interval that never ends (5.0 §3.1.2.11.2).
pub const SESSION_NEVER: u32 = u32::MAX;

/// The first packet of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    /// V311 (level 4) or V5 (level 5).
    pub proto: Protocol,
    /// May be empty (the server assigns one; in 3.1.1 only with `clean`).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean: bool,
    pub keepalive: u16,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub will: Option<Will>,
    /// v5 CONNECT properties, with the specification's defaults when absent or in 3.1.1.
    /// 0 if absent; in 3.1.1 the caller derives it from `clean`.
    pub session_expiry: u32,
    /// 65535 if absent (0 is refused as a protocol error).
    pub receive_max: u16,
    /// None if absent (0 is refused as a protocol error).
    pub max_packet: Option<u32>,
    pub topic_alias_max: u16,
    pub request_response_info: bool,
    /// Default true.
    pub request_problem_info: bool,
    pub user_properties: Vec<(String, String)>,
    pub auth_method: Option<String>,
    pub auth_data: Option<Bytes>,
}

impl Connect {
    /// A CONNECT with every v5 property at its default.
    pub fn new(proto: Protocol, client_id: impl Into<String>) -> Connect {
        Connect {
            proto,
            client_id: client_id.into(),
            clean: true,
            keepalive: 60,
            username: None,
            password: None,
            will: None,
            session_expiry: 0,
            receive_max: u16::MAX,
            max_packet: None,
            topic_alias_max: 0,
            request_response_info: false,
            request_problem_info: true,
            user_properties: Vec::new(),
            auth_method: None,
            auth_data: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// v5 Will Delay Interval, 0 if absent.
    pub delay: u32,
    /// The will's message properties as PUBLISH properties: payload format, expiry, content
    /// type, response topic, correlation data, user properties. None if there are none.
    pub props: Option<PublishProperties>,
}

/// The largest CONNECT taken, whatever the packet size limit: `packet_max_connect` in
/// Mosquitto's current sources (2.0.11 has no such limit).
/// It fits the largest will payload (64 KiB) with room for the rest; anything larger comes
/// from no real client, and a client that has not logged in yet must not make the broker
/// hold `--max-packet-size` bytes for it.
pub const MAX_CONNECT: usize = 100_000;

/// Decodes the first packet of a connection, which must be a CONNECT [MQTT-3.1.0-1].
///
/// `Ok(None)`: more bytes are needed (`buf` is untouched). On `Err`, close the connection after
/// sending the CONNACK that [`Violation::connack_code`] names, if any. A CONNECT larger than
/// `max` or [`MAX_CONNECT`] is refused from its fixed header, before its body is read.
pub fn decode_connect(buf: &mut BytesMut, max: usize) -> Result<Option<Connect>, Violation> {
    let max = max.min(MAX_CONNECT);
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    // Refuse anything else at once, before its body arrives.
    if byte1 >> 4 != 1 {
        return Err(Violation::protocol(
            "the first packet is not a CONNECT [MQTT-3.1.0-1]",
        ));
    }
    if byte1 & 0x0f != 0 {
        return Err(Violation::malformed(
            "CONNECT with fixed-header flags set [MQTT-2.2.2-1][MQTT-2.2.2-2]",
        ));
    }
    let Some((header, size)) = whole_packet(buf, max)? else {
        return Ok(None);
    };
    let body = buf.get(header..size).unwrap_or_default();
    let connect = parse(body)?;
    buf.advance(size);
    Ok(Some(connect))
}

fn parse(body: &[u8]) -> Result<Connect, Violation> {
    let mut r = Reader::new(body, "CONNECT");
    let name = r.binary()?;
    let level = r.u8()?;
    let unsupported = |answer| Violation {
        answer: Some(answer),
        ..Violation::new(
            ReasonCode::UnsupportedProtocolVersion,
            format!("unsupported protocol level {level} [MQTT-3.1.2-2]"),
        )
    };
    let proto = match (name, level) {
        // MQTT 3.1 ("MQIsdp", level 3) has 3.1.1's packets; older phone and board libraries
        // still send it, and mosquitto serves it, so it is served as 3.1.1.
        (b"MQTT", 4) | (b"MQIsdp", 3) => Protocol::V311,
        (b"MQTT", 5) => Protocol::V5,
        // Other levels, and mosquitto's bridge levels 0x83 and 0x84 (level | 0x80): a
        // 3.1.1-style refusal, the shape those clients read [MQTT-3.1.2-2].
        (b"MQIsdp", _) | (b"MQTT", 0..=3 | 0x80..=0x84) => {
            return Err(unsupported(Protocol::V311));
        }
        // A later level: a v5 client is the likeliest, so answer 0x84 in v5's shape
        // (5.0 [MQTT-3.1.2-2]).
        (b"MQTT", _) => return Err(unsupported(Protocol::V5)),
        // Not MQTT at all: say nothing [MQTT-3.1.2-1].
        _ => {
            return Err(Violation::protocol(format!(
                "protocol name {:?} is not \"MQTT\" [MQTT-3.1.2-1]",
                String::from_utf8_lossy(name)
            )));
        }
    };
    body_after_level(proto, &mut r).map_err(|mut v| {
        v.answer = match proto {
            Protocol::V5 => Some(Protocol::V5),
            // 3.1.1 has a CONNACK code only for these; everything else just closes.
            Protocol::V311 => {
                (v.code == ReasonCode::ClientIdentifierNotValid).then_some(Protocol::V311)
            }
        };
        v
    })
}

/// The CONNECT after its protocol name and level.
fn body_after_level(proto: Protocol, r: &mut Reader<'_>) -> Result<Connect, Violation> {
    let v5 = proto == Protocol::V5;
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(Violation::malformed(
            "CONNECT reserved flag is not 0 [MQTT-3.1.2-3]",
        ));
    }
    let clean = flags & 0x02 != 0;
    let has_will = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if !has_will && will_qos != 0 {
        return Err(Violation::malformed(
            "Will QoS without a will [MQTT-3.1.2-11][MQTT-3.1.2-13] (5.0: MQTT-3.1.2-11)",
        ));
    }
    if !has_will && will_retain {
        return Err(Violation::malformed(
            "Will Retain without a will [MQTT-3.1.2-15] (5.0: MQTT-3.1.2-13)",
        ));
    }
    if will_qos == 3 {
        return Err(Violation::malformed(
            "Will QoS 3 [MQTT-3.1.2-14] (5.0: MQTT-3.1.2-12)",
        ));
    }
    // 5.0 allows a password alone (for other authentication schemes); 3.1.1 does not.
    if !v5 && has_password && !has_username {
        return Err(Violation::malformed(
            "a password without a user name [MQTT-3.1.2-22]",
        ));
    }
    let mut c = Connect::new(proto, String::new());
    c.clean = clean;
    c.keepalive = r.u16()?;
    if v5 {
        connect_properties(r, &mut c)?;
    }

    // The client identifier is a UTF-8 string like any other [MQTT-3.1.3-4].
    c.client_id = r.string()?.to_owned();

    if has_will {
        let mut props = PublishProperties::default();
        let mut delay = 0;
        if v5 {
            props::read(r, props::WILL, |id, v| {
                if id == id::WILL_DELAY {
                    delay = int(&v);
                    Ok(())
                } else {
                    props::message_property("CONNECT will", &mut props, id, v)
                }
            })?;
        }
        let topic = r.string()?;
        if let Some((code, why)) = topic_name_error(topic.as_bytes(), false) {
            return Err(Violation::new(code, format!("will topic {topic:?}: {why}")));
        }
        let payload = r.binary()?;
        // 5.0 §3.1.3.2.3: a will declared UTF-8 must be UTF-8 (checking is optional; cheap).
        if props.payload_format_indicator == Some(1) && std::str::from_utf8(payload).is_err() {
            return Err(Violation::new(
                ReasonCode::PayloadFormatInvalid,
                "the will payload is declared UTF-8 but is not",
            ));
        }
        c.will = Some(Will {
            topic: topic.to_owned(),
            payload: Bytes::copy_from_slice(payload),
            qos: will_qos,
            retain: will_retain,
            delay,
            props: (props != PublishProperties::default()).then_some(props),
        });
    }
    if has_username {
        c.username = Some(r.string()?.to_owned());
    }
    if has_password {
        // Binary Data, not a string: any bytes are allowed (§3.1.3.5).
        c.password = Some(Bytes::copy_from_slice(r.binary()?));
    }
    r.end()?;

    // Checked last so that a malformed CONNECT just closes, as 3.1.1 requires of malformed
    // packets, and a well-formed one gets CONNACK 2 [MQTT-3.1.3-8][MQTT-3.1.3-9]. 5.0 lets
    // the server assign an identifier whatever Clean Start is (5.0 MQTT-3.1.3-6).
    if !v5 && c.client_id.is_empty() && !clean {
        return Err(Violation::new(
            ReasonCode::ClientIdentifierNotValid,
            "an empty client identifier with clean session 0 [MQTT-3.1.3-8]",
        ));
    }
    Ok(c)
}

fn connect_properties(r: &mut Reader<'_>, c: &mut Connect) -> Result<(), Violation> {
    props::read(r, props::CONNECT, |id, v| {
        match id {
            id::SESSION_EXPIRY => c.session_expiry = int(&v),
            id::RECEIVE_MAX => {
                // 5.0 §3.1.2.11.3: 0 is a protocol error.
                c.receive_max = u16::try_from(int(&v)).unwrap_or(u16::MAX);
                if c.receive_max == 0 {
                    return Err(Violation::protocol("CONNECT: Receive Maximum 0"));
                }
            }
            id::MAX_PACKET => {
                // 5.0 §3.1.2.11.4: 0 is a protocol error.
                if int(&v) == 0 {
                    return Err(Violation::protocol("CONNECT: Maximum Packet Size 0"));
                }
                c.max_packet = Some(int(&v));
            }
            id::TOPIC_ALIAS_MAX => {
                c.topic_alias_max = u16::try_from(int(&v)).unwrap_or(u16::MAX);
            }
            id::REQUEST_RESPONSE_INFO => {
                c.request_response_info = props::boolean("CONNECT", id, int(&v))?;
            }
            id::REQUEST_PROBLEM_INFO => {
                c.request_problem_info = props::boolean("CONNECT", id, int(&v))?;
            }
            id::USER_PROPERTY => {
                if let Value::Pair(k, v) = v {
                    c.user_properties.push((k.to_owned(), v.to_owned()));
                }
            }
            id::AUTH_METHOD => c.auth_method = Some(text(&v)),
            id::AUTH_DATA => {
                if let Value::Bin(b) = v {
                    c.auth_data = Some(Bytes::copy_from_slice(b));
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    // 5.0 §3.1.2.11.10.
    if c.auth_data.is_some() && c.auth_method.is_none() {
        return Err(Violation::protocol(
            "CONNECT: Authentication Data without an Authentication Method",
        ));
    }
    Ok(())
}

/// Encodes a CONNECT. Every v5 property at its default is left out. Fails only on a string
/// longer than MQTT allows, or a packet larger than it can express.
pub fn encode_connect(c: &Connect, buf: &mut BytesMut) -> anyhow::Result<()> {
    encode(c, false, buf)
}

/// Encodes `c` (a 3.1.1 one) as MQTT 3.1: protocol name `MQIsdp`, level 3. Every other packet
/// of 3.1 is 3.1.1's.
pub fn encode_connect_mqtt31(c: &Connect, buf: &mut BytesMut) -> anyhow::Result<()> {
    encode(c, true, buf)
}

fn encode(c: &Connect, mqtt31: bool, buf: &mut BytesMut) -> anyhow::Result<()> {
    let v5 = c.proto == Protocol::V5;
    let mut strings: Vec<&[u8]> = vec![c.client_id.as_bytes()];
    strings.extend(c.username.as_deref().map(str::as_bytes));
    strings.extend(c.password.as_deref());
    strings.extend(c.auth_method.as_deref().map(str::as_bytes));
    strings.extend(c.auth_data.as_deref());
    for (k, v) in &c.user_properties {
        strings.extend([k.as_bytes(), v.as_bytes()]);
    }
    if let Some(w) = &c.will {
        strings.extend([w.topic.as_bytes(), &w.payload[..]]);
        if let Some(p) = &w.props {
            strings.extend(p.strings());
        }
    }
    if let Some(n) = props::too_long(&strings) {
        anyhow::bail!("cannot encode CONNECT: a {n}-byte string, longer than MQTT allows");
    }
    let mut body = BytesMut::new();
    let mut flags = 0u8;
    if c.clean {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos.min(2) << 3);
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    if mqtt31 {
        put_str(&mut body, "MQIsdp");
        body.put_u8(3);
    } else {
        put_str(&mut body, "MQTT");
        body.put_u8(if v5 { 5 } else { 4 });
    }
    body.put_u8(flags);
    body.put_u16(c.keepalive);
    if v5 {
        let mut p = BytesMut::new();
        if c.session_expiry != 0 {
            p.put_u8(id::SESSION_EXPIRY);
            p.put_u32(c.session_expiry);
        }
        if c.receive_max != u16::MAX {
            p.put_u8(id::RECEIVE_MAX);
            p.put_u16(c.receive_max);
        }
        if let Some(v) = c.max_packet {
            p.put_u8(id::MAX_PACKET);
            p.put_u32(v);
        }
        if c.topic_alias_max != 0 {
            p.put_u8(id::TOPIC_ALIAS_MAX);
            p.put_u16(c.topic_alias_max);
        }
        if c.request_response_info {
            p.put_slice(&[id::REQUEST_RESPONSE_INFO, 1]);
        }
        if !c.request_problem_info {
            p.put_slice(&[id::REQUEST_PROBLEM_INFO, 0]);
        }
        props::write_user_properties(&mut p, &c.user_properties);
        if let Some(v) = &c.auth_method {
            p.put_u8(id::AUTH_METHOD);
            put_str(&mut p, v);
        }
        if let Some(v) = &c.auth_data {
            p.put_u8(id::AUTH_DATA);
            put_binary(&mut p, v);
        }
        put_varint(&mut body, p.len());
        body.put_slice(&p);
    }
    put_str(&mut body, &c.client_id);
    if let Some(w) = &c.will {
        if v5 {
            let mut p = BytesMut::new();
            if w.delay != 0 {
                p.put_u8(id::WILL_DELAY);
                p.put_u32(w.delay);
            }
            if let Some(m) = &w.props {
                // A will carries no topic alias or subscription identifier.
                let m = PublishProperties {
                    topic_alias: None,
                    subscription_identifiers: Vec::new(),
                    ..m.clone()
                };
                let mut mp = BytesMut::new();
                m.write(&mut mp);
                // Without its length: the will's list is one with the delay.
                let skip = super::wire::varint_len(m.len());
                p.put_slice(&mp[skip..]);
            }
            put_varint(&mut body, p.len());
            body.put_slice(&p);
        }
        put_str(&mut body, &w.topic);
        put_binary(&mut body, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(&mut body, u);
    }
    if let Some(p) = &c.password {
        put_binary(&mut body, p);
    }
    if body.len() > super::wire::MAX_REMAINING_LENGTH {
        anyhow::bail!("cannot encode CONNECT: larger than MQTT can express");
    }
    put_packet(buf, 0x10, &body);
    Ok(())
}
