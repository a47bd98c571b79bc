//! MQTT 5 properties (§2.2.2): identifiers, which packet may carry which, the strict reader
//! every packet's decoder uses, and the message properties PUBLISH and a will share.

use bytes::{BufMut, Bytes, BytesMut};

use super::violation::Violation;
use super::wire::{Reader, put_binary, put_str, put_varint, varint_len};

/// Property identifiers.
pub(super) mod id {
    pub const PAYLOAD_FORMAT: u8 = 0x01;
    pub const MESSAGE_EXPIRY: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_ID: u8 = 0x0B;
    pub const SESSION_EXPIRY: u8 = 0x11;
    pub const ASSIGNED_CLIENT_ID: u8 = 0x12;
    pub const SERVER_KEEPALIVE: u8 = 0x13;
    pub const AUTH_METHOD: u8 = 0x15;
    pub const AUTH_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFO: u8 = 0x17;
    pub const WILL_DELAY: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFO: u8 = 0x19;
    pub const RESPONSE_INFO: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAX: u8 = 0x21;
    pub const TOPIC_ALIAS_MAX: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAX_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAX_PACKET: u8 = 0x27;
    pub const WILDCARD_AVAILABLE: u8 = 0x28;
    pub const SUB_IDS_AVAILABLE: u8 = 0x29;
    pub const SHARED_AVAILABLE: u8 = 0x2A;

    /// A set of property identifiers (all are below 64).
    pub const fn set(ids: &[u8]) -> u64 {
        let mut bits = 0u64;
        let mut i = 0;
        while i < ids.len() {
            bits |= 1 << ids[i];
            i += 1;
        }
        bits
    }
}

/// Which properties each packet may carry (MQTT 5 §2.2.2.2, table 2-4). The Subscription
/// Identifier is listed for a client's PUBLISH only so that its use gets the specific protocol
/// error [MQTT-3.3.4-6] rather than "malformed".
pub(super) const CONNECT: u64 = id::set(&[
    id::SESSION_EXPIRY,
    id::AUTH_METHOD,
    id::AUTH_DATA,
    id::REQUEST_PROBLEM_INFO,
    id::REQUEST_RESPONSE_INFO,
    id::RECEIVE_MAX,
    id::TOPIC_ALIAS_MAX,
    id::USER_PROPERTY,
    id::MAX_PACKET,
]);
pub(super) const WILL: u64 = id::set(&[
    id::PAYLOAD_FORMAT,
    id::MESSAGE_EXPIRY,
    id::CONTENT_TYPE,
    id::RESPONSE_TOPIC,
    id::CORRELATION_DATA,
    id::WILL_DELAY,
    id::USER_PROPERTY,
]);
pub(super) const PUBLISH: u64 = id::set(&[
    id::PAYLOAD_FORMAT,
    id::MESSAGE_EXPIRY,
    id::CONTENT_TYPE,
    id::RESPONSE_TOPIC,
    id::CORRELATION_DATA,
    id::SUBSCRIPTION_ID,
    id::TOPIC_ALIAS,
    id::USER_PROPERTY,
]);
pub(super) const CONNACK: u64 = id::set(&[
    id::SESSION_EXPIRY,
    id::ASSIGNED_CLIENT_ID,
    id::SERVER_KEEPALIVE,
    id::AUTH_METHOD,
    id::AUTH_DATA,
    id::RESPONSE_INFO,
    id::SERVER_REFERENCE,
    id::REASON_STRING,
    id::RECEIVE_MAX,
    id::TOPIC_ALIAS_MAX,
    id::MAX_QOS,
    id::RETAIN_AVAILABLE,
    id::USER_PROPERTY,
    id::MAX_PACKET,
    id::WILDCARD_AVAILABLE,
    id::SUB_IDS_AVAILABLE,
    id::SHARED_AVAILABLE,
]);
/// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK.
pub(super) const ACK: u64 = id::set(&[id::REASON_STRING, id::USER_PROPERTY]);
pub(super) const SUBSCRIBE: u64 = id::set(&[id::SUBSCRIPTION_ID, id::USER_PROPERTY]);
pub(super) const UNSUBSCRIBE: u64 = id::set(&[id::USER_PROPERTY]);
pub(super) const DISCONNECT: u64 = id::set(&[
    id::SESSION_EXPIRY,
    id::SERVER_REFERENCE,
    id::REASON_STRING,
    id::USER_PROPERTY,
]);
pub(super) const AUTH: u64 = id::set(&[
    id::AUTH_METHOD,
    id::AUTH_DATA,
    id::REASON_STRING,
    id::USER_PROPERTY,
]);

/// One property value, by data type.
pub(super) enum Value<'a> {
    Int(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

/// The properties that may be given more than once in every packet: the User Property.
pub(super) const REPEAT_USER: u64 = id::set(&[id::USER_PROPERTY]);

/// Reads a property list (its length, then identifier/value pairs) and hands each property to
/// `f`. An identifier not valid for the packet is malformed (§2.2.2.2); a property given twice
/// is a protocol error (each property's "more than once" rule), except the User Property.
pub(super) fn read<'a>(
    r: &mut Reader<'a>,
    allowed: u64,
    f: impl FnMut(u8, Value<'a>) -> Result<(), Violation>,
) -> Result<(), Violation> {
    read_repeating(r, allowed, REPEAT_USER, f)
}

/// [`read`], with the set of properties that may repeat (a server's PUBLISH carries one
/// Subscription Identifier per matching subscription).
pub(super) fn read_repeating<'a>(
    r: &mut Reader<'a>,
    allowed: u64,
    repeatable: u64,
    mut f: impl FnMut(u8, Value<'a>) -> Result<(), Violation>,
) -> Result<(), Violation> {
    let len = r.varint()?;
    let mut p = r.sub(len as usize)?;
    let mut seen = 0u64;
    while !p.is_empty() {
        let id = p.u8()?;
        let bit = 1u64.checked_shl(u32::from(id)).unwrap_or(0);
        if bit & allowed == 0 {
            return Err(Violation::malformed(format!(
                "{}: property {id:#04x} is not valid in this packet",
                p.pkt
            )));
        }
        if bit & repeatable == 0 {
            if seen & bit != 0 {
                return Err(Violation::protocol(format!(
                    "{}: property {id:#04x} given more than once",
                    p.pkt
                )));
            }
            seen |= bit;
        }
        let value = match id {
            id::PAYLOAD_FORMAT
            | id::REQUEST_PROBLEM_INFO
            | id::REQUEST_RESPONSE_INFO
            | id::MAX_QOS
            | id::RETAIN_AVAILABLE
            | id::WILDCARD_AVAILABLE
            | id::SUB_IDS_AVAILABLE
            | id::SHARED_AVAILABLE => Value::Int(u32::from(p.u8()?)),
            id::SERVER_KEEPALIVE | id::RECEIVE_MAX | id::TOPIC_ALIAS_MAX | id::TOPIC_ALIAS => {
                Value::Int(u32::from(p.u16()?))
            }
            id::MESSAGE_EXPIRY | id::SESSION_EXPIRY | id::WILL_DELAY | id::MAX_PACKET => {
                Value::Int(p.u32()?)
            }
            id::SUBSCRIPTION_ID => Value::Int(p.varint()?),
            id::CORRELATION_DATA | id::AUTH_DATA => Value::Bin(p.binary()?),
            id::USER_PROPERTY => Value::Pair(p.string()?, p.string()?),
            // The rest are the string-valued ones.
            _ => Value::Str(p.string()?),
        };
        f(id, value)?;
    }
    Ok(())
}

/// A property that must be 0 or 1 ("It is a Protocol Error to ... have a value other than 0
/// or 1", e.g. 5.0 §3.1.2.11.6, §3.3.2.3.2).
pub(super) fn boolean(pkt: &str, id: u8, v: u32) -> Result<bool, Violation> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Violation::protocol(format!(
            "{pkt}: property {id:#04x} must be 0 or 1, not {v}"
        ))),
    }
}

pub(super) fn int(v: &Value<'_>) -> u32 {
    match v {
        Value::Int(n) => *n,
        _ => 0,
    }
}

pub(super) fn text(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => (*s).to_owned(),
        _ => String::new(),
    }
}

/// A PUBLISH's (and a will's) message properties (5.0 §3.3.2.3), named as the specification
/// names them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishProperties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
    pub subscription_identifiers: Vec<usize>,
    pub content_type: Option<String>,
}

/// The properties PUBLISH and a will message share; `id` is one of them.
pub(super) fn message_property(
    pkt: &str,
    props: &mut PublishProperties,
    id: u8,
    v: Value<'_>,
) -> Result<(), Violation> {
    match (id, v) {
        (id::PAYLOAD_FORMAT, v) => {
            props.payload_format_indicator = Some(u8::from(boolean(pkt, id, int(&v))?));
        }
        (id::MESSAGE_EXPIRY, v) => props.message_expiry_interval = Some(int(&v)),
        (id::CONTENT_TYPE, v) => props.content_type = Some(text(&v)),
        (id::RESPONSE_TOPIC, Value::Str(s)) => {
            // A topic name: no wildcards [MQTT-3.3.2-14] (5.0), and not empty (§4.7.3).
            if s.is_empty() || s.contains(['+', '#']) {
                return Err(Violation::protocol(format!(
                    "{pkt}: the response topic {s:?} is not a valid topic name [MQTT-3.3.2-14]"
                )));
            }
            props.response_topic = Some(s.to_owned());
        }
        (id::CORRELATION_DATA, Value::Bin(b)) => {
            props.correlation_data = Some(Bytes::copy_from_slice(b));
        }
        (id::USER_PROPERTY, Value::Pair(k, v)) => {
            props.user_properties.push((k.to_owned(), v.to_owned()));
        }
        _ => {}
    }
    Ok(())
}

/// Why a property list cannot be sent, if it cannot: a string longer than a string can be.
pub(super) fn too_long(strings: &[&[u8]]) -> Option<usize> {
    strings
        .iter()
        .map(|s| s.len())
        .find(|&n| n > usize::from(u16::MAX))
}

impl PublishProperties {
    /// Bytes the properties take, their length excluded.
    pub(super) fn len(&self) -> usize {
        let s = |v: &Option<String>| v.as_ref().map_or(0, |s| 3 + s.len());
        usize::from(self.payload_format_indicator.is_some()) * 2
            + usize::from(self.message_expiry_interval.is_some()) * 5
            + usize::from(self.topic_alias.is_some()) * 3
            + s(&self.response_topic)
            + self.correlation_data.as_ref().map_or(0, |d| 3 + d.len())
            + self
                .user_properties
                .iter()
                .map(|(k, v)| 5 + k.len() + v.len())
                .sum::<usize>()
            + self
                .subscription_identifiers
                .iter()
                .map(|&i| 1 + varint_len(i))
                .sum::<usize>()
            + s(&self.content_type)
    }

    /// Every string and binary value, for the length check before encoding.
    pub(super) fn strings(&self) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = Vec::new();
        out.extend(self.response_topic.as_deref().map(str::as_bytes));
        out.extend(self.correlation_data.as_deref());
        for (k, v) in &self.user_properties {
            out.push(k.as_bytes());
            out.push(v.as_bytes());
        }
        out.extend(self.content_type.as_deref().map(str::as_bytes));
        out
    }

    /// The property length, then the properties, in the order smq has always sent them (the
    /// order of rumqttc's encoder, which the client used before `mqtt/`).
    pub(super) fn write(&self, buf: &mut BytesMut) {
        put_varint(buf, self.len());
        if let Some(v) = self.payload_format_indicator {
            buf.put_slice(&[id::PAYLOAD_FORMAT, v]);
        }
        if let Some(v) = self.message_expiry_interval {
            buf.put_u8(id::MESSAGE_EXPIRY);
            buf.put_u32(v);
        }
        if let Some(v) = self.topic_alias {
            buf.put_u8(id::TOPIC_ALIAS);
            buf.put_u16(v);
        }
        if let Some(v) = &self.response_topic {
            buf.put_u8(id::RESPONSE_TOPIC);
            put_str(buf, v);
        }
        if let Some(v) = &self.correlation_data {
            buf.put_u8(id::CORRELATION_DATA);
            put_binary(buf, v);
        }
        for (k, v) in &self.user_properties {
            buf.put_u8(id::USER_PROPERTY);
            put_str(buf, k);
            put_str(buf, v);
        }
        for &i in &self.subscription_identifiers {
            buf.put_u8(id::SUBSCRIPTION_ID);
            put_varint(buf, i);
        }
        if let Some(v) = &self.content_type {
            buf.put_u8(id::CONTENT_TYPE);
            put_str(buf, v);
        }
    }
}

/// User properties, each as (0x26, key, value).
pub(super) fn write_user_properties(buf: &mut BytesMut, props: &[(String, String)]) {
    for (k, v) in props {
        buf.put_u8(id::USER_PROPERTY);
        put_str(buf, k);
        put_str(buf, v);
    }
}

pub(super) fn user_properties_len(props: &[(String, String)]) -> usize {
    props.iter().map(|(k, v)| 5 + k.len() + v.len()).sum()
}
