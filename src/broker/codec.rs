//! The broker's side of the wire: decode what clients send, encode what only a server sends.
//!
//! Everything a client sends is parsed here by hand, over bounds-checked readers, rather than
//! through rumqttc's `mqttbytes` readers: those are client-oriented and let through much of what
//! a server must refuse (fixed-header flag bits, duplicate properties, property values out of
//! range, property lists that run past their declared length, U+0000 in strings, the CONNECT
//! reserved bit, subscription-option reserved bits, ...). Checking all of that afterwards would
//! mean parsing every packet twice. The shapes (`Message`, `PublishProperties`) and the
//! PUBLISH encoder are shared with the client in `crate::conn::packet`.
//!
//! Normative statements are cited as in the 3.1.1 specification; where MQTT 5 numbers the same
//! rule differently both are given ("5.0: ...").
//!
//! Every decoder works on a whole packet only, never panics on any input, and leaves `buf`
//! untouched when it returns `Ok(None)`. A PUBLISH owns its bytes: topic and payload are
//! copied out of the receive buffer, once, so that a message queued for a slow subscriber holds
//! only itself and never the (possibly megabytes large) buffer it arrived in.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::conn::packet::{Message, Protocol, PublishProperties};

/// v5 reason codes the decoder reports.
pub const MALFORMED: u8 = 0x81;
pub const PROTOCOL_ERROR: u8 = 0x82;
pub const UNSUPPORTED_VERSION: u8 = 0x84;
pub const CLIENT_ID_INVALID: u8 = 0x85;
pub const TOPIC_NAME_INVALID: u8 = 0x90;
pub const PACKET_TOO_LARGE: u8 = 0x95;
pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The whole filter as sent, `$share/group/` prefix included.
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
    /// false: answer this filter with SUBACK 0x80 (3.1.1) or 0x8F (5), not a connection error.
    pub valid: bool,
}

// No PartialEq: `Message` has none.
#[derive(Debug, Clone)]
// `dup` and the ack reason codes are decoded and checked, but the session acts on packet ids
// alone: a resent QoS 2 PUBLISH is recognised by its id, and a client's negative ack changes
// nothing the broker does next.
#[allow(dead_code)]
pub enum Packet {
    /// A v5 topic alias stays in `msg.props.topic_alias`; the topic is empty only if an alias
    /// is present (the session resolves aliases).
    Publish {
        msg: Message,
        pkid: u16,
        dup: bool,
    },
    PubAck {
        pkid: u16,
        code: u8,
    },
    PubRec {
        pkid: u16,
        code: u8,
    },
    PubRel {
        pkid: u16,
        code: u8,
    },
    PubComp {
        pkid: u16,
        code: u8,
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
    Disconnect {
        code: u8,
        session_expiry: Option<u32>,
    },
    /// v5 AUTH (well-formed; its content is not kept since smq has no enhanced auth).
    Auth,
    /// A second CONNECT: the session answers with a protocol error [MQTT-3.1.0-2].
    Connect,
}

/// What went wrong, and what the server must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The v5 reason code (0x81 malformed, 0x82 protocol error, 0x95 too large, ...).
    pub code: u8,
    pub why: String,
    /// Which protocol's packet to answer with before closing: a CONNACK from `decode_connect`
    /// (see [`Violation::connack_code`]), a DISCONNECT from `decode` (always V5 there).
    /// None: close the connection without a word.
    pub answer: Option<Protocol>,
}

impl Violation {
    fn new(code: u8, why: impl Into<String>) -> Violation {
        Violation {
            code,
            why: why.into(),
            answer: None,
        }
    }

    /// The return code to put in the CONNACK that answers a refused CONNECT, if one is owed.
    pub fn connack_code(&self) -> Option<u8> {
        match self.answer? {
            Protocol::V5 => Some(self.code),
            Protocol::V311 => Some(connack_code_v311(self.code)),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (reason code {:#04x})", self.why, self.code)
    }
}

impl std::error::Error for Violation {}

fn malformed(why: impl Into<String>) -> Violation {
    Violation::new(MALFORMED, why)
}

fn protocol_error(why: impl Into<String>) -> Violation {
    Violation::new(PROTOCOL_ERROR, why)
}

/// Maps a v5 CONNACK reason code onto the six 3.1.1 return codes (3.1.1 §3.2.2.3).
pub fn connack_code_v311(code: u8) -> u8 {
    match code {
        0x00 => 0,
        UNSUPPORTED_VERSION => 1,
        CLIENT_ID_INVALID => 2,
        0x86 => 4, // bad user name or password
        0x87 | 0x8C => 5,
        _ => 3, // server unavailable: the closest 3.1.1 has to "refused for another reason"
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A bounds-checked cursor over one packet's bytes; every read fails cleanly at the end.
struct Reader<'a> {
    b: &'a [u8],
    /// The packet's name, for error messages.
    pkt: &'static str,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], pkt: &'static str) -> Reader<'a> {
        Reader { b, pkt }
    }

    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    fn len(&self) -> usize {
        self.b.len()
    }

    fn short(&self) -> Violation {
        malformed(format!("{} ends early", self.pkt))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Violation> {
        if n > self.b.len() {
            return Err(self.short());
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Violation> {
        let (&b, tail) = self.b.split_first().ok_or_else(|| self.short())?;
        self.b = tail;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, Violation> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Violation> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Variable Byte Integer (§1.5.5 in 5.0): at most 4 bytes.
    fn varint(&mut self) -> Result<u32, Violation> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed(format!(
            "{}: variable byte integer longer than 4 bytes",
            self.pkt
        )))
    }

    /// Binary Data: a 2-byte length, then that many bytes.
    fn binary(&mut self) -> Result<&'a [u8], Violation> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A UTF-8 Encoded String: well-formed UTF-8 (which excludes the surrogates U+D800..U+DFFF)
    /// [MQTT-1.5.3-1] (5.0: MQTT-1.5.4-1) and no U+0000 [MQTT-1.5.3-2] (5.0: MQTT-1.5.4-2).
    /// A byte-order mark is kept as it is [MQTT-1.5.3-3].
    fn string(&mut self) -> Result<&'a str, Violation> {
        let b = self.binary()?;
        utf8_string(b).map_err(|why| malformed(format!("{}: {why}", self.pkt)))
    }

    /// The next `n` bytes as their own reader (a property list, say).
    fn sub(&mut self, n: usize) -> Result<Reader<'a>, Violation> {
        Ok(Reader::new(self.take(n)?, self.pkt))
    }

    /// Fails unless everything has been read: trailing bytes mean the lengths disagree.
    fn end(&self) -> Result<(), Violation> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "{} has {} bytes beyond its content",
                self.pkt,
                self.b.len()
            )))
        }
    }
}

fn utf8_string(b: &[u8]) -> Result<&str, &'static str> {
    let s =
        std::str::from_utf8(b).map_err(|_| "a string is not well-formed UTF-8 [MQTT-1.5.3-1]")?;
    if b.contains(&0) {
        return Err("a string contains U+0000 [MQTT-1.5.3-2]");
    }
    Ok(s)
}

/// Reads the fixed header's remaining length: (header length, whole packet size), or None until
/// enough of the header has arrived.
fn frame(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, Violation> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let header = 2 + i;
            let size = header + remaining;
            if size > max {
                return Err(Violation::new(
                    PACKET_TOO_LARGE,
                    format!("a {size}-byte packet, larger than the {max} bytes allowed"),
                ));
            }
            return Ok(Some((header, size)));
        }
    }
    Err(malformed("remaining length longer than 4 bytes"))
}

/// The whole packet at the front of `buf`, or None (having reserved room for more of it) until
/// it is all there.
fn whole_packet(buf: &mut BytesMut, max: usize) -> Result<Option<(usize, usize)>, Violation> {
    let Some((header, size)) = frame(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < size {
        // Room for the rest, but at most RESERVE_STEP at a time: a client announcing a huge
        // packet gets memory only as its bytes arrive (the buffer still grows by doubling).
        buf.reserve((size - buf.len()).min(RESERVE_STEP));
        return Ok(None);
    }
    Ok(Some((header, size)))
}

const RESERVE_STEP: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Properties (MQTT 5 §2.2.2)

/// Property identifiers.
mod prop {
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

/// Which properties a client may put in each packet (MQTT 5 §2.2.2.2, table 2-4). The
/// Subscription Identifier is listed for PUBLISH only so that its use gets the specific
/// protocol error [MQTT-3.3.4-6] rather than "malformed".
const CONNECT_PROPS: u64 = prop::set(&[
    prop::SESSION_EXPIRY,
    prop::AUTH_METHOD,
    prop::AUTH_DATA,
    prop::REQUEST_PROBLEM_INFO,
    prop::REQUEST_RESPONSE_INFO,
    prop::RECEIVE_MAX,
    prop::TOPIC_ALIAS_MAX,
    prop::USER_PROPERTY,
    prop::MAX_PACKET,
]);
const WILL_PROPS: u64 = prop::set(&[
    prop::PAYLOAD_FORMAT,
    prop::MESSAGE_EXPIRY,
    prop::CONTENT_TYPE,
    prop::RESPONSE_TOPIC,
    prop::CORRELATION_DATA,
    prop::WILL_DELAY,
    prop::USER_PROPERTY,
]);
const PUBLISH_PROPS: u64 = prop::set(&[
    prop::PAYLOAD_FORMAT,
    prop::MESSAGE_EXPIRY,
    prop::CONTENT_TYPE,
    prop::RESPONSE_TOPIC,
    prop::CORRELATION_DATA,
    prop::SUBSCRIPTION_ID,
    prop::TOPIC_ALIAS,
    prop::USER_PROPERTY,
]);
const ACK_PROPS: u64 = prop::set(&[prop::REASON_STRING, prop::USER_PROPERTY]);
const SUBSCRIBE_PROPS: u64 = prop::set(&[prop::SUBSCRIPTION_ID, prop::USER_PROPERTY]);
const UNSUBSCRIBE_PROPS: u64 = prop::set(&[prop::USER_PROPERTY]);
const DISCONNECT_PROPS: u64 = prop::set(&[
    prop::SESSION_EXPIRY,
    prop::SERVER_REFERENCE,
    prop::REASON_STRING,
    prop::USER_PROPERTY,
]);
const AUTH_PROPS: u64 = prop::set(&[
    prop::AUTH_METHOD,
    prop::AUTH_DATA,
    prop::REASON_STRING,
    prop::USER_PROPERTY,
]);

/// One property value, by data type.
enum Value<'a> {
    Int(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

/// Reads a property list (its length, then identifier/value pairs) and hands each property to
/// `f`. An identifier not valid for the packet is malformed (§2.2.2.2); a property given twice
/// is a protocol error (each property's "more than once" rule), except the User Property.
fn properties<'a>(
    r: &mut Reader<'a>,
    allowed: u64,
    mut f: impl FnMut(u8, Value<'a>) -> Result<(), Violation>,
) -> Result<(), Violation> {
    let len = r.varint()?;
    let mut p = r.sub(len as usize)?;
    let mut seen = 0u64;
    while !p.is_empty() {
        let id = p.u8()?;
        let bit = 1u64.checked_shl(u32::from(id)).unwrap_or(0);
        if bit & allowed == 0 {
            return Err(malformed(format!(
                "{}: property {id:#04x} is not valid in this packet",
                p.pkt
            )));
        }
        if id != prop::USER_PROPERTY {
            if seen & bit != 0 {
                return Err(protocol_error(format!(
                    "{}: property {id:#04x} given more than once",
                    p.pkt
                )));
            }
            seen |= bit;
        }
        let value = match id {
            prop::PAYLOAD_FORMAT
            | prop::REQUEST_PROBLEM_INFO
            | prop::REQUEST_RESPONSE_INFO
            | prop::MAX_QOS
            | prop::RETAIN_AVAILABLE
            | prop::WILDCARD_AVAILABLE
            | prop::SUB_IDS_AVAILABLE
            | prop::SHARED_AVAILABLE => Value::Int(u32::from(p.u8()?)),
            prop::SERVER_KEEPALIVE
            | prop::RECEIVE_MAX
            | prop::TOPIC_ALIAS_MAX
            | prop::TOPIC_ALIAS => Value::Int(u32::from(p.u16()?)),
            prop::MESSAGE_EXPIRY | prop::SESSION_EXPIRY | prop::WILL_DELAY | prop::MAX_PACKET => {
                Value::Int(p.u32()?)
            }
            prop::SUBSCRIPTION_ID => Value::Int(p.varint()?),
            prop::CORRELATION_DATA | prop::AUTH_DATA => Value::Bin(p.binary()?),
            prop::USER_PROPERTY => Value::Pair(p.string()?, p.string()?),
            // The rest are the string-valued ones.
            _ => Value::Str(p.string()?),
        };
        f(id, value)?;
    }
    Ok(())
}

/// A property that must be 0 or 1 ("It is a Protocol Error to ... have a value other than 0
/// or 1", e.g. 5.0 §3.1.2.11.6, §3.3.2.3.2).
fn boolean(pkt: &str, id: u8, v: u32) -> Result<bool, Violation> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(protocol_error(format!(
            "{pkt}: property {id:#04x} must be 0 or 1, not {v}"
        ))),
    }
}

fn int(v: &Value<'_>) -> u32 {
    match v {
        Value::Int(n) => *n,
        _ => 0,
    }
}

fn text(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => (*s).to_owned(),
        _ => String::new(),
    }
}

/// The properties PUBLISH and a will message share; `id` is one of them.
fn message_property(
    pkt: &str,
    props: &mut PublishProperties,
    id: u8,
    v: Value<'_>,
) -> Result<(), Violation> {
    match (id, v) {
        (prop::PAYLOAD_FORMAT, v) => {
            props.payload_format_indicator = Some(u8::from(boolean(pkt, id, int(&v))?));
        }
        (prop::MESSAGE_EXPIRY, v) => props.message_expiry_interval = Some(int(&v)),
        (prop::CONTENT_TYPE, v) => props.content_type = Some(text(&v)),
        (prop::RESPONSE_TOPIC, Value::Str(s)) => {
            // A topic name: no wildcards [MQTT-3.3.2-14] (5.0), and not empty (§4.7.3).
            if s.is_empty() || s.contains(['+', '#']) {
                return Err(protocol_error(format!(
                    "{pkt}: the response topic {s:?} is not a valid topic name [MQTT-3.3.2-14]"
                )));
            }
            props.response_topic = Some(s.to_owned());
        }
        (prop::CORRELATION_DATA, Value::Bin(b)) => {
            props.correlation_data = Some(Bytes::copy_from_slice(b));
        }
        (prop::USER_PROPERTY, Value::Pair(k, v)) => {
            props.user_properties.push((k.to_owned(), v.to_owned()));
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding

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
        return Err(protocol_error(
            "the first packet is not a CONNECT [MQTT-3.1.0-1]",
        ));
    }
    if byte1 & 0x0f != 0 {
        return Err(malformed(
            "CONNECT with fixed-header flags set [MQTT-2.2.2-1][MQTT-2.2.2-2]",
        ));
    }
    let Some((header, size)) = whole_packet(buf, max)? else {
        return Ok(None);
    };
    let body = buf.get(header..size).unwrap_or_default();
    let connect = parse_connect(body)?;
    buf.advance(size);
    Ok(Some(connect))
}

fn parse_connect(body: &[u8]) -> Result<Connect, Violation> {
    let mut r = Reader::new(body, "CONNECT");
    let name = r.binary()?;
    let level = r.u8()?;
    let proto = match (name, level) {
        // MQTT 3.1 ("MQIsdp", level 3) has 3.1.1's packets; older phone and board libraries
        // still send it, and mosquitto serves it, so it is served as 3.1.1.
        (b"MQTT", 4) | (b"MQIsdp", 3) => Protocol::V311,
        (b"MQTT", 5) => Protocol::V5,
        // Other levels, and mosquitto's bridge levels 0x83 and 0x84 (level | 0x80): a
        // 3.1.1-style refusal, the shape those clients read [MQTT-3.1.2-2].
        (b"MQIsdp", _) | (b"MQTT", 0..=3 | 0x80..=0x84) => {
            return Err(Violation {
                answer: Some(Protocol::V311),
                ..Violation::new(
                    UNSUPPORTED_VERSION,
                    format!("unsupported protocol level {level} [MQTT-3.1.2-2]"),
                )
            });
        }
        // A later level: a v5 client is the likeliest, so answer 0x84 in v5's shape
        // (5.0 [MQTT-3.1.2-2]).
        (b"MQTT", _) => {
            return Err(Violation {
                answer: Some(Protocol::V5),
                ..Violation::new(
                    UNSUPPORTED_VERSION,
                    format!("unsupported protocol level {level} [MQTT-3.1.2-2]"),
                )
            });
        }
        // Not MQTT at all: say nothing [MQTT-3.1.2-1].
        _ => {
            return Err(protocol_error(format!(
                "protocol name {:?} is not \"MQTT\" [MQTT-3.1.2-1]",
                String::from_utf8_lossy(name)
            )));
        }
    };
    connect_body(proto, &mut r).map_err(|mut v| {
        v.answer = match proto {
            Protocol::V5 => Some(Protocol::V5),
            // 3.1.1 has a CONNACK code only for these; everything else just closes.
            Protocol::V311 => (v.code == CLIENT_ID_INVALID).then_some(Protocol::V311),
        };
        v
    })
}

/// The CONNECT after its protocol name and level.
fn connect_body(proto: Protocol, r: &mut Reader<'_>) -> Result<Connect, Violation> {
    let v5 = proto == Protocol::V5;
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(malformed("CONNECT reserved flag is not 0 [MQTT-3.1.2-3]"));
    }
    let clean = flags & 0x02 != 0;
    let has_will = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if !has_will && will_qos != 0 {
        return Err(malformed(
            "Will QoS without a will [MQTT-3.1.2-11][MQTT-3.1.2-13] (5.0: MQTT-3.1.2-11)",
        ));
    }
    if !has_will && will_retain {
        return Err(malformed(
            "Will Retain without a will [MQTT-3.1.2-15] (5.0: MQTT-3.1.2-13)",
        ));
    }
    if will_qos == 3 {
        return Err(malformed("Will QoS 3 [MQTT-3.1.2-14] (5.0: MQTT-3.1.2-12)"));
    }
    // 5.0 allows a password alone (for other authentication schemes); 3.1.1 does not.
    if !v5 && has_password && !has_username {
        return Err(malformed("a password without a user name [MQTT-3.1.2-22]"));
    }
    let keepalive = r.u16()?;

    let mut c = Connect {
        proto,
        client_id: String::new(),
        clean,
        keepalive,
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
    };
    if v5 {
        let mut auth_data = false;
        properties(r, CONNECT_PROPS, |id, v| {
            match id {
                prop::SESSION_EXPIRY => c.session_expiry = int(&v),
                prop::RECEIVE_MAX => {
                    // 5.0 §3.1.2.11.3: 0 is a protocol error.
                    c.receive_max = u16::try_from(int(&v)).unwrap_or(u16::MAX);
                    if c.receive_max == 0 {
                        return Err(protocol_error("CONNECT: Receive Maximum 0"));
                    }
                }
                prop::MAX_PACKET => {
                    // 5.0 §3.1.2.11.4: 0 is a protocol error.
                    if int(&v) == 0 {
                        return Err(protocol_error("CONNECT: Maximum Packet Size 0"));
                    }
                    c.max_packet = Some(int(&v));
                }
                prop::TOPIC_ALIAS_MAX => {
                    c.topic_alias_max = u16::try_from(int(&v)).unwrap_or(u16::MAX);
                }
                prop::REQUEST_RESPONSE_INFO => {
                    c.request_response_info = boolean("CONNECT", id, int(&v))?;
                }
                prop::REQUEST_PROBLEM_INFO => {
                    c.request_problem_info = boolean("CONNECT", id, int(&v))?;
                }
                prop::USER_PROPERTY => {
                    if let Value::Pair(k, v) = v {
                        c.user_properties.push((k.to_owned(), v.to_owned()));
                    }
                }
                prop::AUTH_METHOD => c.auth_method = Some(text(&v)),
                prop::AUTH_DATA => auth_data = true,
                _ => {}
            }
            Ok(())
        })?;
        // 5.0 §3.1.2.11.10.
        if auth_data && c.auth_method.is_none() {
            return Err(protocol_error(
                "CONNECT: Authentication Data without an Authentication Method",
            ));
        }
    }

    // The client identifier is a UTF-8 string like any other [MQTT-3.1.3-4].
    c.client_id = r.string()?.to_owned();

    if has_will {
        let mut props = PublishProperties::default();
        let mut delay = 0;
        if v5 {
            properties(r, WILL_PROPS, |id, v| {
                if id == prop::WILL_DELAY {
                    delay = int(&v);
                    Ok(())
                } else {
                    message_property("CONNECT will", &mut props, id, v)
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
                PAYLOAD_FORMAT_INVALID,
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
            CLIENT_ID_INVALID,
            "an empty client identifier with clean session 0 [MQTT-3.1.3-8]",
        ));
    }
    Ok(c)
}

/// Decodes the next packet of an established connection.
///
/// `Ok(None)`: more bytes are needed (`buf` is untouched apart from reserved capacity). On
/// `Err`, a v5 connection gets DISCONNECT with `code` (`answer` is `Some(V5)`), then both close.
pub fn decode(
    proto: Protocol,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, Violation> {
    decode_packet(proto, buf, max).map_err(|mut v| {
        v.answer = (proto == Protocol::V5).then_some(Protocol::V5);
        v
    })
}

fn decode_packet(
    proto: Protocol,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, Violation> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    // The first byte alone can condemn a packet; no need to wait for the rest.
    check_fixed_header(proto, byte1)?;
    let Some((header, size)) = whole_packet(buf, max)? else {
        return Ok(None);
    };
    if byte1 >> 4 == 3 {
        return decode_publish(proto, byte1, header, size, buf).map(Some);
    }
    let body = buf.get(header..size).unwrap_or_default();
    let packet = parse_packet(proto, byte1 >> 4, body)?;
    buf.advance(size);
    Ok(Some(packet))
}

/// The packet type and its flag bits, as 3.1.1 §2.2.2 (5.0 §2.1.3) lists them: a client never
/// sends the server-only types, and reserved flags must have their listed values
/// [MQTT-2.2.2-1] or the connection is closed [MQTT-2.2.2-2] (5.0: MQTT-2.1.3-1, malformed).
fn check_fixed_header(proto: Protocol, byte1: u8) -> Result<(), Violation> {
    let flags = byte1 & 0x0f;
    let (name, want) = match byte1 >> 4 {
        0 => return Err(malformed("packet type 0 is reserved")),
        1 => ("CONNECT", 0),
        3 => {
            let qos = (flags >> 1) & 0x03;
            if qos == 3 {
                return Err(malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]"));
            }
            if qos == 0 && flags & 0x08 != 0 {
                return Err(malformed("PUBLISH with DUP set at QoS 0 [MQTT-3.3.1-2]"));
            }
            return Ok(());
        }
        4 => ("PUBACK", 0),
        5 => ("PUBREC", 0),
        6 => ("PUBREL", 0b0010), // [MQTT-3.6.1-1]
        7 => ("PUBCOMP", 0),
        8 => ("SUBSCRIBE", 0b0010),    // [MQTT-3.8.1-1]
        10 => ("UNSUBSCRIBE", 0b0010), // [MQTT-3.10.1-1]
        12 => ("PINGREQ", 0),
        14 => ("DISCONNECT", 0),
        15 if proto == Protocol::V5 => ("AUTH", 0),
        15 => return Err(malformed("packet type 15 is reserved in MQTT 3.1.1")),
        2 | 9 | 11 | 13 => {
            return Err(protocol_error(format!(
                "packet type {} is sent only by a server",
                byte1 >> 4
            )));
        }
        _ => return Err(malformed("unknown packet type")),
    };
    if flags != want {
        return Err(malformed(format!(
            "{name} with fixed-header flags {flags:#06b} instead of {want:#06b} \
             [MQTT-2.2.2-1][MQTT-2.2.2-2]"
        )));
    }
    Ok(())
}

/// Why `topic` cannot be a PUBLISH topic name, with the reason code, if it cannot.
/// `alias` says whether a topic alias stands in for an empty name.
fn topic_name_error(topic: &[u8], alias: bool) -> Option<(u8, &'static str)> {
    // Every PUBLISH comes through here: settle the common case (ASCII) without a UTF-8 pass.
    if plain_ascii(topic) && (alias || !topic.is_empty()) {
        return None;
    }
    if let Some(&b) = topic.iter().find(|&&b| matches!(b, 0 | b'+' | b'#')) {
        return Some(if b == 0 {
            (MALFORMED, "it contains U+0000 [MQTT-1.5.3-2]")
        } else {
            (
                TOPIC_NAME_INVALID,
                "wildcards are not allowed in a topic name [MQTT-3.3.2-2]",
            )
        });
    }
    if std::str::from_utf8(topic).is_err() {
        return Some((MALFORMED, "it is not well-formed UTF-8 [MQTT-1.5.3-1]"));
    }
    if topic.is_empty() && !alias {
        // 3.1.1 [MQTT-4.7.3-1]; 5.0 §3.3.2.1: empty without a Topic Alias is a protocol error.
        return Some((
            PROTOCOL_ERROR,
            "an empty topic name without a topic alias [MQTT-4.7.3-1]",
        ));
    }
    None
}

/// Whether `t` is ASCII without NUL, `+` or `#`, checked eight bytes at a time rather than
/// one (topics are typically 20-40 bytes).
fn plain_ascii(t: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero iff some byte of x is zero (the classic "haszero" bit trick).
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = t.chunks_exact(8);
    for chunk in &mut chunks {
        // A chunk is always 8 bytes; HIGH (treated as "not plain") can never be needed.
        let x = chunk.try_into().map_or(HIGH, u64::from_le_bytes);
        let bad = (x & HIGH)
            | zero_byte(x)
            | zero_byte(x ^ (ONES * u64::from(b'+')))
            | zero_byte(x ^ (ONES * u64::from(b'#')));
        if bad != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b.is_ascii() && !matches!(b, 0 | b'+' | b'#'))
}

fn decode_publish(
    proto: Protocol,
    byte1: u8,
    header: usize,
    size: usize,
    buf: &mut BytesMut,
) -> Result<Packet, Violation> {
    let qos = (byte1 >> 1) & 0x03;
    let dup = byte1 & 0x08 != 0;
    let retain = byte1 & 0x01 != 0;
    let body = buf.get(header..size).unwrap_or_default();
    let mut r = Reader::new(body, "PUBLISH");
    let topic = r.binary()?;
    let topic_len = topic.len();
    let pkid = if qos > 0 {
        let pkid = r.u16()?;
        if pkid == 0 {
            return Err(protocol_error(
                "PUBLISH at QoS > 0 with packet identifier 0 [MQTT-2.3.1-1]",
            ));
        }
        pkid
    } else {
        0
    };
    let props = if proto == Protocol::V5 {
        publish_properties(&mut r)?
    } else {
        None
    };
    let alias = props.as_ref().is_some_and(|p| p.topic_alias.is_some());
    if let Some((code, why)) = topic_name_error(topic, alias) {
        return Err(Violation::new(code, format!("PUBLISH topic: {why}")));
    }
    // 5.0 §3.3.2.3.2: a receiver may check a payload declared UTF-8, and answer PUBACK,
    // PUBREC or DISCONNECT 0x99. Checking here keeps invalid text away from every subscriber.
    if props
        .as_ref()
        .is_some_and(|p| p.payload_format_indicator == Some(1))
        && std::str::from_utf8(r.b).is_err()
    {
        return Err(Violation::new(
            PAYLOAD_FORMAT_INVALID,
            "PUBLISH payload is declared UTF-8 but is not (5.0 §3.3.2.3.2)",
        ));
    }
    // One allocation for topic and payload (and the few bytes between them).
    let payload_start = size - r.len();
    let owned = Bytes::copy_from_slice(buf.get(header + 2..size).unwrap_or_default());
    let topic = owned.slice(..topic_len);
    let payload = owned.slice(payload_start - header - 2..);
    buf.advance(size);
    Ok(Packet::Publish {
        msg: Message {
            topic,
            payload,
            qos,
            retain,
            props,
        },
        pkid,
        dup,
    })
}

fn publish_properties(r: &mut Reader<'_>) -> Result<Option<PublishProperties>, Violation> {
    // Most PUBLISHes have none: skip building anything.
    if r.b.first() == Some(&0) {
        r.u8()?;
        return Ok(None);
    }
    let mut props = PublishProperties::default();
    properties(r, PUBLISH_PROPS, |id, v| match id {
        prop::TOPIC_ALIAS => {
            let alias = u16::try_from(int(&v)).unwrap_or(0);
            if alias == 0 {
                return Err(protocol_error("PUBLISH: Topic Alias 0 [MQTT-3.3.2-8]"));
            }
            props.topic_alias = Some(alias);
            Ok(())
        }
        prop::SUBSCRIPTION_ID => Err(protocol_error(
            "PUBLISH from a client with a Subscription Identifier [MQTT-3.3.4-6]",
        )),
        _ => message_property("PUBLISH", &mut props, id, v),
    })?;
    Ok(Some(props))
}

/// Everything but PUBLISH, whose fixed header has been checked.
fn parse_packet(proto: Protocol, kind: u8, body: &[u8]) -> Result<Packet, Violation> {
    let v5 = proto == Protocol::V5;
    Ok(match kind {
        1 => Packet::Connect,
        4 => {
            let (pkid, code) = ack(v5, "PUBACK", body, &PUB_CODES)?;
            Packet::PubAck { pkid, code }
        }
        5 => {
            let (pkid, code) = ack(v5, "PUBREC", body, &PUB_CODES)?;
            Packet::PubRec { pkid, code }
        }
        6 => {
            let (pkid, code) = ack(v5, "PUBREL", body, &REL_CODES)?;
            Packet::PubRel { pkid, code }
        }
        7 => {
            let (pkid, code) = ack(v5, "PUBCOMP", body, &REL_CODES)?;
            Packet::PubComp { pkid, code }
        }
        8 => subscribe(v5, body)?,
        10 => unsubscribe(v5, body)?,
        12 => {
            Reader::new(body, "PINGREQ").end()?;
            Packet::PingReq
        }
        14 => disconnect(v5, body)?,
        15 => {
            auth(body)?;
            Packet::Auth
        }
        // check_fixed_header has refused every other type.
        _ => return Err(malformed("unexpected packet type")),
    })
}

/// Reason codes a client may put in PUBACK/PUBREC (5.0 §3.4.2.1) and PUBREL/PUBCOMP (§3.6.2.1).
const PUB_CODES: [u8; 9] = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const REL_CODES: [u8; 2] = [0x00, 0x92];

/// PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id; in 5.0 optionally a reason code, then
/// optionally properties. 3.1.1 allows exactly the packet id.
fn ack(v5: bool, pkt: &'static str, body: &[u8], codes: &[u8]) -> Result<(u16, u8), Violation> {
    let mut r = Reader::new(body, pkt);
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(protocol_error(format!(
            "{pkt} with packet identifier 0, which no PUBLISH can have [MQTT-2.3.1-1]"
        )));
    }
    let mut code = 0;
    if v5 && !r.is_empty() {
        code = r.u8()?;
        if !codes.contains(&code) {
            return Err(protocol_error(format!(
                "{pkt} with reason code {code:#04x}, not one defined for it"
            )));
        }
        if !r.is_empty() {
            properties(&mut r, ACK_PROPS, |_, _| Ok(()))?;
        }
    }
    r.end()?;
    Ok((pkid, code))
}

fn subscribe(v5: bool, body: &[u8]) -> Result<Packet, Violation> {
    let mut r = Reader::new(body, "SUBSCRIBE");
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(protocol_error(
            "SUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]",
        ));
    }
    let mut sub_id = None;
    if v5 {
        properties(&mut r, SUBSCRIBE_PROPS, |id, v| {
            if id == prop::SUBSCRIPTION_ID {
                // 5.0 §3.8.2.1.2: 1 to 268,435,455; 0 is a protocol error.
                if int(&v) == 0 {
                    return Err(protocol_error("SUBSCRIBE: Subscription Identifier 0"));
                }
                sub_id = Some(int(&v));
            }
            Ok(())
        })?;
    }
    let mut filters = Vec::new();
    while !r.is_empty() {
        // An ill-formed string closes the connection [MQTT-3.8.3-1], unlike a well-formed but
        // unusable filter, which only fails its own SUBACK entry.
        let filter = r.string()?;
        let opts = r.u8()?;
        let qos = opts & 0x03;
        let f = if v5 {
            if opts & 0xC0 != 0 {
                return Err(malformed(
                    "SUBSCRIBE options with reserved bits set [MQTT-3.8.3-5]",
                ));
            }
            if qos == 3 {
                return Err(protocol_error(
                    "SUBSCRIBE with Maximum QoS 3 (5.0 §3.8.3.1)",
                ));
            }
            let retain_handling = (opts >> 4) & 0x03;
            if retain_handling == 3 {
                return Err(protocol_error(
                    "SUBSCRIBE with Retain Handling 3 (5.0 §3.8.3.1)",
                ));
            }
            let no_local = opts & 0x04 != 0;
            if no_local && filter.starts_with("$share/") {
                return Err(protocol_error(
                    "No Local on a shared subscription (5.0 MQTT-3.8.3-4)",
                ));
            }
            Filter {
                filter: filter.to_owned(),
                qos,
                no_local,
                retain_as_published: opts & 0x08 != 0,
                retain_handling,
                valid: filter_valid(filter),
            }
        } else {
            if opts & 0xFC != 0 || qos == 3 {
                return Err(malformed(
                    "SUBSCRIBE with reserved bits set or QoS 3 [MQTT-3.8.3-4]",
                ));
            }
            Filter {
                filter: filter.to_owned(),
                qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: 0,
                valid: filter_valid(filter),
            }
        };
        filters.push(f);
    }
    if filters.is_empty() {
        return Err(protocol_error(
            "SUBSCRIBE without a topic filter [MQTT-3.8.3-3] (5.0: MQTT-3.8.3-2)",
        ));
    }
    Ok(Packet::Subscribe {
        pkid,
        filters,
        sub_id,
    })
}

fn unsubscribe(v5: bool, body: &[u8]) -> Result<Packet, Violation> {
    let mut r = Reader::new(body, "UNSUBSCRIBE");
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(protocol_error(
            "UNSUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]",
        ));
    }
    if v5 {
        properties(&mut r, UNSUBSCRIBE_PROPS, |_, _| Ok(()))?;
    }
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?.to_owned()); // [MQTT-3.10.3-1]
    }
    if filters.is_empty() {
        return Err(protocol_error(
            "UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]",
        ));
    }
    Ok(Packet::Unsubscribe { pkid, filters })
}

/// DISCONNECT reason codes a client may send (5.0 §3.14.2.1).
const CLIENT_DISCONNECT_CODES: [u8; 14] = [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
];

fn disconnect(v5: bool, body: &[u8]) -> Result<Packet, Violation> {
    let mut r = Reader::new(body, "DISCONNECT");
    let mut code = 0;
    let mut session_expiry = None;
    if v5 && !r.is_empty() {
        code = r.u8()?;
        if !CLIENT_DISCONNECT_CODES.contains(&code) {
            return Err(protocol_error(format!(
                "DISCONNECT with reason code {code:#04x}, not one a client sends"
            )));
        }
        if !r.is_empty() {
            properties(&mut r, DISCONNECT_PROPS, |id, v| {
                if id == prop::SESSION_EXPIRY {
                    session_expiry = Some(int(&v));
                }
                Ok(())
            })?;
        }
    }
    // 3.1.1 §3.14: no variable header, no payload.
    r.end()?;
    Ok(Packet::Disconnect {
        code,
        session_expiry,
    })
}

fn auth(body: &[u8]) -> Result<(), Violation> {
    let mut r = Reader::new(body, "AUTH");
    if !r.is_empty() {
        let code = r.u8()?;
        // 5.0 §3.15.2.1: success, continue authentication, re-authenticate.
        if !matches!(code, 0x00 | 0x18 | 0x19) {
            return Err(protocol_error(format!("AUTH with reason code {code:#04x}")));
        }
        if !r.is_empty() {
            properties(&mut r, AUTH_PROPS, |_, _| Ok(()))?;
        }
    }
    r.end()
}

/// Whether a well-formed topic filter can be subscribed to: `#` alone and last, `+` alone in
/// its level, not empty (§4.7.1, [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1]); and for a
/// shared subscription `$share/{group}/{filter}`, a non-empty group without `/`, `+` or `#`
/// followed by a valid filter (5.0 [MQTT-4.8.2-1], [MQTT-4.8.2-2]).
pub fn filter_valid(filter: &str) -> bool {
    match shared(filter) {
        Some(Ok((_, inner))) => crate::topic::filter_error(inner).is_none(),
        Some(Err(())) => false,
        None => crate::topic::filter_error(filter).is_none(),
    }
}

/// Splits a shared subscription `$share/{group}/{filter}` into group and filter: None if
/// `filter` is not one, `Some(Err)` if it starts with `$share/` but its group is not valid.
pub fn shared(filter: &str) -> Option<Result<(&str, &str), ()>> {
    let rest = filter.strip_prefix("$share/")?;
    Some(match rest.split_once('/') {
        Some((group, inner)) if !group.is_empty() && !group.contains(['+', '#']) => {
            Ok((group, inner))
        }
        _ => Err(()),
    })
}

// ---------------------------------------------------------------------------------------------
// Encoding what only a server sends. PUBLISH and the acknowledgements without a reason code are
// shared with the client (`crate::conn::packet::encode_publish`), the rest are here.

fn put_varint(buf: &mut BytesMut, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        buf.put_u8(b);
        if n == 0 {
            break;
        }
    }
}

/// A UTF-8 string, cut at a character boundary if it is longer than a string can be.
fn put_str(buf: &mut BytesMut, s: &str) {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    buf.put_u16(end as u16);
    buf.put_slice(&s.as_bytes()[..end]);
}

fn put_packet(buf: &mut BytesMut, byte1: u8, body: &[u8]) {
    buf.reserve(5 + body.len());
    buf.put_u8(byte1);
    put_varint(buf, body.len());
    buf.put_slice(body);
}

/// CONNACK. 3.1.1: only `session_present` and `code` (a 3.1.1 return code 0-5; see
/// [`connack_code_v311`]). 5.0: the reason code, then every property that is `Some`.
pub fn encode_connack(proto: Protocol, ack: &ConnAck, buf: &mut BytesMut) {
    // A refused connection never has a session [MQTT-3.2.2-4] (5.0: MQTT-3.2.2-6).
    let session_present = u8::from(ack.session_present && ack.code == 0);
    if proto == Protocol::V311 {
        buf.put_slice(&[0x20, 2, session_present, ack.code]);
        return;
    }
    let mut props = BytesMut::new();
    let byte = |props: &mut BytesMut, id: u8, v: Option<u8>| {
        if let Some(v) = v {
            props.put_slice(&[id, v]);
        }
    };
    if let Some(v) = ack.session_expiry {
        props.put_u8(prop::SESSION_EXPIRY);
        props.put_u32(v);
    }
    if let Some(v) = ack.receive_max {
        props.put_u8(prop::RECEIVE_MAX);
        props.put_u16(v);
    }
    // Maximum QoS may only be 0 or 1; absent means 2 (5.0 §3.2.2.3.4).
    byte(&mut props, prop::MAX_QOS, ack.max_qos.filter(|&q| q < 2));
    byte(
        &mut props,
        prop::RETAIN_AVAILABLE,
        ack.retain_available.map(u8::from),
    );
    if let Some(v) = ack.max_packet {
        props.put_u8(prop::MAX_PACKET);
        props.put_u32(v);
    }
    if let Some(v) = &ack.assigned_client_id {
        props.put_u8(prop::ASSIGNED_CLIENT_ID);
        put_str(&mut props, v);
    }
    if let Some(v) = ack.topic_alias_max {
        props.put_u8(prop::TOPIC_ALIAS_MAX);
        props.put_u16(v);
    }
    if let Some(v) = &ack.reason_string {
        props.put_u8(prop::REASON_STRING);
        put_str(&mut props, v);
    }
    byte(
        &mut props,
        prop::WILDCARD_AVAILABLE,
        ack.wildcard_available.map(u8::from),
    );
    byte(
        &mut props,
        prop::SUB_IDS_AVAILABLE,
        ack.sub_ids_available.map(u8::from),
    );
    byte(
        &mut props,
        prop::SHARED_AVAILABLE,
        ack.shared_available.map(u8::from),
    );
    if let Some(v) = ack.server_keepalive {
        props.put_u8(prop::SERVER_KEEPALIVE);
        props.put_u16(v);
    }
    if let Some(v) = &ack.response_info {
        props.put_u8(prop::RESPONSE_INFO);
        put_str(&mut props, v);
    }
    let mut body = BytesMut::with_capacity(props.len() + 7);
    body.put_slice(&[session_present, ack.code]);
    put_varint(&mut body, props.len());
    body.put_slice(&props);
    put_packet(buf, 0x20, &body);
}

/// What CONNACK says besides the reason code; every `None` property is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub code: u8,
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
}

/// SUBACK: one code per filter (3.1.1: 0, 1, 2 or 0x80; 5.0: granted QoS or a reason code).
pub fn encode_suback(proto: Protocol, pkid: u16, codes: &[u8], buf: &mut BytesMut) {
    sub_ack(0x90, proto, pkid, codes, buf);
}

/// UNSUBACK: 3.1.1 has only the packet id; 5.0 one reason code per filter.
pub fn encode_unsuback(proto: Protocol, pkid: u16, codes: &[u8], buf: &mut BytesMut) {
    if proto == Protocol::V311 {
        buf.put_u8(0xB0);
        buf.put_u8(2);
        buf.put_u16(pkid);
        return;
    }
    sub_ack(0xB0, proto, pkid, codes, buf);
}

fn sub_ack(byte1: u8, proto: Protocol, pkid: u16, codes: &[u8], buf: &mut BytesMut) {
    let props = usize::from(proto == Protocol::V5);
    buf.reserve(7 + codes.len());
    buf.put_u8(byte1);
    put_varint(buf, 2 + props + codes.len());
    buf.put_u16(pkid);
    if props == 1 {
        buf.put_u8(0); // no properties
    }
    buf.put_slice(codes);
}

/// A v5 DISCONNECT from the server, with an optional reason string.
pub fn encode_disconnect(code: u8, reason: Option<&str>, buf: &mut BytesMut) {
    match reason {
        // The short form: "normal disconnection" with no properties (5.0 §3.14.2.1).
        None if code == 0 => buf.put_slice(&[0xE0, 0]),
        None => buf.put_slice(&[0xE0, 1, code]),
        Some(reason) => {
            let mut props = BytesMut::with_capacity(3 + reason.len());
            props.put_u8(prop::REASON_STRING);
            put_str(&mut props, reason);
            let mut body = BytesMut::with_capacity(5 + props.len());
            body.put_u8(code);
            put_varint(&mut body, props.len());
            body.put_slice(&props);
            put_packet(buf, 0xE0, &body);
        }
    }
}

/// PUBACK (4), PUBREC (5), PUBREL (6), PUBCOMP (7). Code 0 is the short form both versions
/// read; any other code is v5's reason code (3.1.1 callers always pass 0).
pub fn encode_ack(kind: u8, pkid: u16, code: u8, buf: &mut BytesMut) {
    // PUBREL's reserved flags are 0010 [MQTT-3.6.1-1].
    let byte1 = if kind == 6 { 0x62 } else { (kind & 0x0f) << 4 };
    let [hi, lo] = pkid.to_be_bytes();
    if code == 0 {
        buf.put_slice(&[byte1, 2, hi, lo]);
    } else {
        // The property length may be omitted when there are none (5.0 §3.4.2.2).
        buf.put_slice(&[byte1, 3, hi, lo, code]);
    }
}

pub fn encode_pingresp(buf: &mut BytesMut) {
    buf.put_slice(&[0xD0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::packet::{self as client, Incoming, MAX_PACKET};

    /// A packet: first byte, remaining length, body.
    fn pkt(byte1: u8, body: &[u8]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        put_packet(&mut buf, byte1, body);
        buf.to_vec()
    }

    /// A length-prefixed string or binary field.
    fn s(text: &[u8]) -> Vec<u8> {
        let mut v = (text.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(text);
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn dec(proto: Protocol, raw: &[u8]) -> Result<Option<Packet>, Violation> {
        decode(proto, &mut BytesMut::from(raw), MAX_PACKET)
    }

    fn ok(proto: Protocol, raw: &[u8]) -> Packet {
        match dec(proto, raw) {
            Ok(Some(p)) => p,
            other => panic!("{raw:02x?} should decode, got {other:?}"),
        }
    }

    /// The reason code a packet is refused with, checking the answer that goes with it.
    fn err(proto: Protocol, raw: &[u8]) -> u8 {
        match dec(proto, raw) {
            Err(v) => {
                assert_eq!(v.answer, (proto == Protocol::V5).then_some(Protocol::V5));
                v.code
            }
            other => panic!("{raw:02x?} should be refused, got {other:?}"),
        }
    }

    fn both(raw: &[u8]) -> [u8; 2] {
        [err(Protocol::V311, raw), err(Protocol::V5, raw)]
    }

    fn publish(byte1: u8, topic: &[u8], rest: &[u8]) -> Vec<u8> {
        pkt(byte1, &cat(&[&s(topic), rest]))
    }

    fn published(p: Packet) -> (Message, u16, bool) {
        match p {
            Packet::Publish { msg, pkid, dup } => (msg, pkid, dup),
            other => panic!("not a PUBLISH: {other:?}"),
        }
    }

    // ---- fixed header ---------------------------------------------------------------------

    #[test]
    fn fixed_header_flags_must_be_the_listed_values() {
        // [MQTT-2.2.2-1][MQTT-2.2.2-2]: each type with a wrong flag nibble.
        let cases: &[(u8, &[u8])] = &[
            (0x41, &[0, 1]),                // PUBACK
            (0x58, &[0, 1]),                // PUBREC
            (0x60, &[0, 1]),                // PUBREL must be 0010 [MQTT-3.6.1-1]
            (0x63, &[0, 1]),                // PUBREL
            (0x72, &[0, 1]),                // PUBCOMP
            (0x80, &[0, 1, 0, 1, b'a', 0]), // SUBSCRIBE must be 0010 [MQTT-3.8.1-1]
            (0x8A, &[0, 1, 0, 1, b'a', 0]),
            (0xA0, &[0, 1, 0, 1, b'a']), // UNSUBSCRIBE must be 0010 [MQTT-3.10.1-1]
            (0xC4, &[]),                 // PINGREQ
            (0xE1, &[]),                 // DISCONNECT
            (0x11, &[]),                 // a second CONNECT with flags
        ];
        for &(byte1, body) in cases {
            let raw = pkt(byte1, body);
            assert_eq!(both(&raw), [MALFORMED; 2], "{byte1:#04x}");
        }
        assert_eq!(err(Protocol::V5, &pkt(0xF1, &[])), MALFORMED); // AUTH
        // The right flags pass.
        assert!(matches!(
            ok(Protocol::V311, &pkt(0x62, &[0, 1])),
            Packet::PubRel { pkid: 1, .. }
        ));
        assert!(matches!(ok(Protocol::V5, &pkt(0xF0, &[])), Packet::Auth));
        assert!(matches!(
            ok(Protocol::V311, &pkt(0x10, &[])),
            Packet::Connect
        ));
    }

    #[test]
    fn refuses_reserved_and_server_only_packet_types_from_the_first_byte() {
        // Only the first byte has arrived: no need to wait for the rest.
        assert_eq!(both(&[0x00]), [MALFORMED; 2]);
        assert_eq!(err(Protocol::V311, &[0xF0]), MALFORMED); // AUTH does not exist in 3.1.1
        for byte1 in [0x20, 0x90, 0xB0, 0xD0] {
            assert_eq!(both(&[byte1]), [PROTOCOL_ERROR; 2], "{byte1:#04x}");
        }
        assert_eq!(both(&[0x36]), [MALFORMED; 2]); // QoS 3 [MQTT-3.3.1-4]
    }

    #[test]
    fn remaining_length_limits() {
        // Five length bytes.
        assert_eq!(both(&[0xC0, 0x80, 0x80, 0x80, 0x80, 0x01]), [MALFORMED; 2]);
        // Larger than allowed: refused from the header alone, before the body arrives.
        let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0x7f][..]);
        let v = decode(Protocol::V5, &mut buf, 1024).unwrap_err();
        assert_eq!(v.code, PACKET_TOO_LARGE);
        // The limit is the whole packet, header included: 2 + 1022 fits in 1024, 2 + 1023 not.
        let mut body = s(b"t");
        body.resize(1022, b'x');
        let mut buf = BytesMut::from(&pkt(0x30, &body)[..]);
        assert_eq!(buf.len(), 1025); // a 2-byte remaining length
        assert_eq!(
            decode(Protocol::V311, &mut buf, 1024).unwrap_err().code,
            PACKET_TOO_LARGE
        );
        assert!(decode(Protocol::V311, &mut buf, 1025).unwrap().is_some());
    }

    #[test]
    fn waits_for_a_whole_packet_and_leaves_the_buffer_alone() {
        let raw = publish(0x32, b"a/b", &[0, 7, b'x']);
        for cut in 0..raw.len() {
            let mut buf = BytesMut::from(&raw[..cut]);
            assert!(
                decode(Protocol::V311, &mut buf, MAX_PACKET)
                    .unwrap()
                    .is_none()
            );
            assert_eq!(&buf[..], &raw[..cut]);
        }
        // Two packets back to back come out one at a time.
        let mut buf = BytesMut::from(&cat(&[&raw, &[0xC0, 0]])[..]);
        assert!(matches!(
            decode(Protocol::V311, &mut buf, MAX_PACKET),
            Ok(Some(Packet::Publish { .. }))
        ));
        assert!(matches!(
            decode(Protocol::V311, &mut buf, MAX_PACKET),
            Ok(Some(Packet::PingReq))
        ));
        assert!(buf.is_empty());
    }

    // ---- PUBLISH --------------------------------------------------------------------------

    #[test]
    fn publish_owns_its_bytes() {
        let raw = publish(0x3B, b"a/b", &[0x12, 0x34, b'h', b'i']); // DUP, QoS 1, retain
        let mut buf = BytesMut::from(&raw[..]);
        let base = buf.as_ptr() as usize;
        let inside = |p: *const u8| (base..base + raw.len()).contains(&(p as usize));
        let (msg, pkid, dup) = published(
            decode(Protocol::V311, &mut buf, MAX_PACKET)
                .unwrap()
                .unwrap(),
        );
        assert_eq!(
            (&msg.topic[..], &msg.payload[..]),
            (&b"a/b"[..], &b"hi"[..])
        );
        assert_eq!((msg.qos, msg.retain, pkid, dup), (1, true, 0x1234, true));
        assert!(msg.props.is_none());
        // Copies: a queued message must not keep the receive buffer alive.
        assert!(!inside(msg.topic.as_ptr()) && !inside(msg.payload.as_ptr()));
        assert!(buf.is_empty());
        // v5 with an empty property list.
        let (msg, pkid, _) = published(ok(Protocol::V5, &publish(0x30, b"t", &[0, b'p'])));
        assert_eq!(
            (&msg.payload[..], pkid, msg.props.is_none()),
            (&b"p"[..], 0, true)
        );
        // QoS 0 carries no packet id: those two bytes are payload.
        let (msg, ..) = published(ok(Protocol::V311, &publish(0x30, b"t", &[0, 1])));
        assert_eq!(&msg.payload[..], &[0, 1]);
    }

    #[test]
    fn publish_qos_and_dup_rules() {
        assert_eq!(both(&publish(0x36, b"t", &[0, 1])), [MALFORMED; 2]); // [MQTT-3.3.1-4]
        assert_eq!(both(&publish(0x38, b"t", &[])), [MALFORMED; 2]); // [MQTT-3.3.1-2]
        assert_eq!(both(&publish(0x32, b"t", &[0, 0, 0])), [PROTOCOL_ERROR; 2]); // [MQTT-2.3.1-1]
        assert_eq!(both(&publish(0x34, b"t", &[0])), [MALFORMED; 2]); // packet id cut short
        assert!(matches!(
            published(ok(Protocol::V311, &publish(0x3C, b"t", &[0, 1]))),
            (_, 1, true)
        ));
    }

    #[test]
    fn publish_topic_names() {
        for bad in [&b"a/\xff"[..], b"\xed\xa0\x80", b"\xc0\xaf"] {
            // Ill-formed UTF-8, a surrogate, an overlong '/' [MQTT-1.5.3-1].
            assert_eq!(
                both(&publish(0x30, bad, &[0])),
                [MALFORMED; 2],
                "{bad:02x?}"
            );
        }
        assert_eq!(both(&publish(0x30, b"a\0b", &[0])), [MALFORMED; 2]); // [MQTT-1.5.3-2]
        for bad in ["a/+", "#", "a/b#", "+"] {
            // [MQTT-3.3.2-2]
            assert_eq!(
                both(&publish(0x30, bad.as_bytes(), &[0])),
                [TOPIC_NAME_INVALID; 2],
                "{bad}"
            );
        }
        // Empty: 3.1.1 [MQTT-4.7.3-1]; v5 only with a topic alias.
        assert_eq!(both(&publish(0x30, b"", &[0])), [PROTOCOL_ERROR; 2]);
        let (msg, ..) = published(ok(
            Protocol::V5,
            &publish(0x30, b"", &[3, 0x23, 0, 5, b'x']),
        ));
        assert!(msg.topic.is_empty());
        assert_eq!(msg.props.unwrap().topic_alias, Some(5));
        // Non-ASCII topics, a leading byte-order mark included, are valid and kept as sent
        // [MQTT-1.5.3-3].
        for good in ["\u{feff}a/b", "süß/温度", "/", "a//b", "$SYS/x", "😀"] {
            for proto in [Protocol::V311, Protocol::V5] {
                let (msg, ..) = published(ok(proto, &publish(0x30, good.as_bytes(), &[0])));
                assert_eq!(&msg.topic[..], good.as_bytes());
            }
        }
    }

    #[test]
    fn publish_properties() {
        let v5 = Protocol::V5;
        // Every PUBLISH property a client may send.
        let props = cat(&[
            &[0x01, 1, 0x02, 0, 0, 0, 60, 0x23, 0, 7],
            &[0x03],
            &s(b"text/plain"),
            &[0x08],
            &s(b"re/ply"),
            &[0x09],
            &s(b"\x00\xff"),
            &[0x26],
            &s(b"k"),
            &s(b"v1"),
            &[0x26],
            &s(b"k"),
            &s(b"v2"),
        ]);
        let raw = publish(
            0x32,
            b"t",
            &cat(&[&[0, 9, props.len() as u8], &props, "ü".as_bytes()]),
        );
        let (msg, pkid, _) = published(ok(v5, &raw));
        assert_eq!((pkid, &msg.payload[..]), (9, "ü".as_bytes()));
        let p = msg.props.unwrap();
        assert_eq!(p.payload_format_indicator, Some(1));
        assert_eq!(p.message_expiry_interval, Some(60));
        assert_eq!(p.topic_alias, Some(7));
        assert_eq!(p.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.response_topic.as_deref(), Some("re/ply"));
        assert_eq!(p.correlation_data.as_deref(), Some(&b"\x00\xff"[..]));
        assert_eq!(
            p.user_properties,
            [("k".into(), "v1".into()), ("k".into(), "v2".into())]
        );

        let with = |props: &[u8], payload: &[u8]| {
            publish(0x30, b"t", &cat(&[&[props.len() as u8], props, payload]))
        };
        // A property given twice is a protocol error (the User Property excepted).
        assert_eq!(
            err(v5, &with(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2], b"")),
            PROTOCOL_ERROR
        );
        assert_eq!(err(v5, &with(&[0x01, 0, 0x01, 0], b"")), PROTOCOL_ERROR);
        // A property that belongs to another packet, and unknown identifiers: malformed.
        assert_eq!(err(v5, &with(&[0x11, 0, 0, 0, 1], b"")), MALFORMED);
        assert_eq!(err(v5, &with(&[0x50, 0], b"")), MALFORMED);
        assert_eq!(err(v5, &with(&[0xC1, 0], b"")), MALFORMED);
        assert_eq!(err(v5, &with(&[0x00], b"")), MALFORMED);
        // Topic Alias 0 [MQTT-3.3.2-8]; a Subscription Identifier from a client [MQTT-3.3.4-6].
        assert_eq!(err(v5, &with(&[0x23, 0, 0], b"")), PROTOCOL_ERROR);
        assert_eq!(err(v5, &with(&[0x0B, 1], b"")), PROTOCOL_ERROR);
        // Payload Format Indicator is 0 or 1; a payload declared UTF-8 must be.
        assert_eq!(err(v5, &with(&[0x01, 2], b"")), PROTOCOL_ERROR);
        assert_eq!(err(v5, &with(&[0x01, 1], b"\xff")), PAYLOAD_FORMAT_INVALID);
        assert!(ok(v5, &with(&[0x01, 0], b"\xff")).clone_is_publish());
        // A response topic is a topic name [MQTT-3.3.2-14].
        assert_eq!(
            err(v5, &with(&cat(&[&[0x08], &s(b"a/#")]), b"")),
            PROTOCOL_ERROR
        );
        // Strings inside properties follow the string rules.
        assert_eq!(
            err(v5, &with(&cat(&[&[0x03], &s(b"\xff")]), b"")),
            MALFORMED
        );
        assert_eq!(
            err(v5, &with(&cat(&[&[0x26], &s(b"k"), &s(b"\0")]), b"")),
            MALFORMED
        );
        // A property list longer than the packet, and a property running past its list: the
        // second is what rumqttc's readers let through.
        assert_eq!(err(v5, &publish(0x30, b"t", &[9, 0x01, 1])), MALFORMED);
        assert_eq!(
            err(v5, &publish(0x30, b"t", &[3, 0x02, 0, 0, 0, 1, b'x'])),
            MALFORMED
        );
        assert_eq!(err(v5, &publish(0x30, b"t", &[])), MALFORMED); // no property length
        assert_eq!(
            err(v5, &publish(0x30, b"t", &[0x80, 0x80, 0x80, 0x80, 1])),
            MALFORMED
        );
    }

    impl Packet {
        fn clone_is_publish(&self) -> bool {
            matches!(self, Packet::Publish { .. })
        }
    }

    // ---- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------

    fn subscribed(p: Packet) -> (u16, Vec<Filter>, Option<u32>) {
        match p {
            Packet::Subscribe {
                pkid,
                filters,
                sub_id,
            } => (pkid, filters, sub_id),
            other => panic!("not a SUBSCRIBE: {other:?}"),
        }
    }

    fn sub311(entries: &[(&[u8], u8)]) -> Vec<u8> {
        let mut body = vec![0, 1];
        for (f, o) in entries {
            body.extend(s(f));
            body.push(*o);
        }
        pkt(0x82, &body)
    }

    fn sub5(props: &[u8], entries: &[(&[u8], u8)]) -> Vec<u8> {
        let mut body = vec![0, 1, props.len() as u8];
        body.extend_from_slice(props);
        for (f, o) in entries {
            body.extend(s(f));
            body.push(*o);
        }
        pkt(0x82, &body)
    }

    #[test]
    fn subscribe_decodes_options() {
        let (pkid, f, id) = subscribed(ok(Protocol::V311, &sub311(&[(b"a/+", 1), (b"#", 2)])));
        assert_eq!((pkid, id, f.len()), (1, None, 2));
        assert_eq!(
            (f[0].filter.as_str(), f[0].qos, f[0].valid),
            ("a/+", 1, true)
        );
        assert_eq!((f[1].filter.as_str(), f[1].qos), ("#", 2));

        // Options 0b0010_1101: Retain Handling 2, Retain As Published, No Local, QoS 1.
        let raw = sub5(
            &[0x0B, 0x80, 0x01, 0x26, 0, 1, b'k', 0, 0],
            &[(b"x/#", 0b0010_1101), (b"$share/g/y", 2)],
        );
        let (_, f, id) = subscribed(ok(Protocol::V5, &raw));
        assert_eq!(id, Some(128));
        assert_eq!(
            f[0],
            Filter {
                filter: "x/#".into(),
                qos: 1,
                no_local: true,
                retain_as_published: true,
                retain_handling: 2,
                valid: true,
            }
        );
        assert_eq!(
            (f[1].filter.as_str(), f[1].valid, f[1].no_local),
            ("$share/g/y", true, false)
        );
    }

    #[test]
    fn subscribe_packet_rules() {
        let v5 = Protocol::V5;
        // No filters [MQTT-3.8.3-3] (5.0: MQTT-3.8.3-2); packet id 0 [MQTT-2.3.1-1].
        assert_eq!(err(Protocol::V311, &sub311(&[])), PROTOCOL_ERROR);
        assert_eq!(err(v5, &sub5(&[], &[])), PROTOCOL_ERROR);
        assert_eq!(
            both(&pkt(0x82, &cat(&[&[0, 0], &s(b"a"), &[0]])))[0],
            PROTOCOL_ERROR
        );
        // 3.1.1: reserved bits or QoS 3 [MQTT-3.8.3-4].
        for opts in [3, 4, 0x80] {
            assert_eq!(err(Protocol::V311, &sub311(&[(b"a", opts)])), MALFORMED);
        }
        // 5.0: reserved bits [MQTT-3.8.3-5] (malformed), QoS 3 and Retain Handling 3 (protocol errors).
        assert_eq!(err(v5, &sub5(&[], &[(b"a", 0x40)])), MALFORMED);
        assert_eq!(err(v5, &sub5(&[], &[(b"a", 0x80)])), MALFORMED);
        assert_eq!(err(v5, &sub5(&[], &[(b"a", 3)])), PROTOCOL_ERROR);
        assert_eq!(err(v5, &sub5(&[], &[(b"a", 0x30)])), PROTOCOL_ERROR);
        // No Local on a shared subscription (5.0 MQTT-3.8.3-4).
        assert_eq!(err(v5, &sub5(&[], &[(b"$share/g/a", 4)])), PROTOCOL_ERROR);
        // Options byte missing.
        assert_eq!(
            err(v5, &pkt(0x82, &cat(&[&[0, 1, 0], &s(b"a")]))),
            MALFORMED
        );
        // Ill-formed strings close the connection [MQTT-3.8.3-1][MQTT-1.5.3-1/2].
        assert_eq!(err(v5, &sub5(&[], &[(b"a\0", 0)])), MALFORMED);
        assert_eq!(err(Protocol::V311, &sub311(&[(b"\xff", 0)])), MALFORMED);
        // Subscription Identifier: 0 and twice are protocol errors; user property only else.
        assert_eq!(err(v5, &sub5(&[0x0B, 0], &[(b"a", 0)])), PROTOCOL_ERROR);
        assert_eq!(
            err(v5, &sub5(&[0x0B, 1, 0x0B, 2], &[(b"a", 0)])),
            PROTOCOL_ERROR
        );
        assert_eq!(err(v5, &sub5(&[0x01, 1], &[(b"a", 0)])), MALFORMED);
    }

    #[test]
    fn unusable_filters_fail_alone() {
        let bad: &[&[u8]] = &[
            b"",
            b"a/#/b",
            b"a#",
            b"a/b+",
            b"+a",
            b"$share/g",
            b"$share/",
            b"$share//a",
            b"$share/g+/a",
            b"$share/g#/a",
            b"$share/g/",
            b"$share/g/a/#/b",
        ];
        let good: &[&[u8]] = &[
            b"#",
            b"+",
            b"a/+/c",
            b"/",
            b"$SYS/#",
            b"$share/g/a/#",
            b"$share/g/+",
            b"$share",
            b"$shared/x",
            "\u{feff}ü/+".as_bytes(),
        ];
        for proto in [Protocol::V311, Protocol::V5] {
            let entries: Vec<(&[u8], u8)> = bad.iter().chain(good).map(|f| (*f, 0)).collect();
            let raw = match proto {
                Protocol::V311 => sub311(&entries),
                Protocol::V5 => sub5(&[], &entries),
            };
            let (_, filters, _) = subscribed(ok(proto, &raw));
            for (f, raw) in filters.iter().zip(bad.iter().chain(good)) {
                assert_eq!(f.filter.as_bytes(), *raw);
                assert_eq!(f.valid, good.contains(raw), "{:?}", f.filter);
            }
        }
        assert_eq!(shared("$share/g/a/b"), Some(Ok(("g", "a/b"))));
        assert_eq!(shared("a/b"), None);
        assert_eq!(shared("$share/+/a"), Some(Err(())));
    }

    #[test]
    fn unsubscribe_rules() {
        let raw = pkt(0xA2, &cat(&[&[0, 5], &s(b"a/#"), &s(b"$share/g/x")]));
        match ok(Protocol::V311, &raw) {
            Packet::Unsubscribe { pkid, filters } => {
                assert_eq!(
                    (pkid, filters),
                    (5, vec!["a/#".to_string(), "$share/g/x".into()])
                );
            }
            other => panic!("{other:?}"),
        }
        let raw = pkt(0xA2, &cat(&[&[0, 5, 5, 0x26, 0, 0, 0, 0], &s(b"a")]));
        assert!(matches!(ok(Protocol::V5, &raw), Packet::Unsubscribe { .. }));
        // No filters [MQTT-3.10.3-2]; packet id 0; a bad string; a property not allowed.
        assert_eq!(err(Protocol::V311, &pkt(0xA2, &[0, 5])), PROTOCOL_ERROR);
        assert_eq!(err(Protocol::V5, &pkt(0xA2, &[0, 5, 0])), PROTOCOL_ERROR);
        assert_eq!(
            err(Protocol::V311, &pkt(0xA2, &cat(&[&[0, 0], &s(b"a")]))),
            PROTOCOL_ERROR
        );
        assert_eq!(
            err(Protocol::V311, &pkt(0xA2, &cat(&[&[0, 1], &s(b"a\0")]))),
            MALFORMED
        );
        assert_eq!(
            err(
                Protocol::V5,
                &pkt(0xA2, &cat(&[&[0, 1, 2, 0x0B, 1], &s(b"a")]))
            ),
            MALFORMED
        );
        // A truncated string.
        assert_eq!(
            err(Protocol::V311, &pkt(0xA2, &[0, 1, 0, 5, b'a'])),
            MALFORMED
        );
    }

    // ---- acknowledgements, PINGREQ, DISCONNECT, AUTH --------------------------------------

    #[test]
    fn acknowledgements() {
        for (byte1, kind) in [(0x40, 4), (0x50, 5), (0x62, 6), (0x70, 7)] {
            for proto in [Protocol::V311, Protocol::V5] {
                let got = match ok(proto, &pkt(byte1, &[1, 2])) {
                    Packet::PubAck { pkid, code } => (4, pkid, code),
                    Packet::PubRec { pkid, code } => (5, pkid, code),
                    Packet::PubRel { pkid, code } => (6, pkid, code),
                    Packet::PubComp { pkid, code } => (7, pkid, code),
                    other => panic!("{other:?}"),
                };
                assert_eq!(got, (kind, 0x0102, 0));
            }
            // 3.1.1: exactly a packet id.
            assert_eq!(err(Protocol::V311, &pkt(byte1, &[1, 2, 0])), MALFORMED);
            assert_eq!(both(&pkt(byte1, &[1])), [MALFORMED; 2]);
            assert_eq!(both(&pkt(byte1, &[0, 0])), [PROTOCOL_ERROR; 2]);
        }
        let v5 = Protocol::V5;
        assert!(matches!(
            ok(v5, &pkt(0x40, &[0, 1, 0x10])),
            Packet::PubAck {
                pkid: 1,
                code: 0x10
            }
        ));
        let reason = cat(&[&[0, 1, 0x87, 8, 0x1F], &s(b"nope"), &[0x26, 0, 0, 0, 0]]);
        assert_eq!(err(v5, &pkt(0x40, &reason)), MALFORMED); // property length 8 but 12 follow
        let reason = cat(&[&[0, 1, 0x87, 12, 0x1F], &s(b"nope"), &[0x26, 0, 0, 0, 0]]);
        assert!(matches!(
            ok(v5, &pkt(0x40, &reason)),
            Packet::PubAck { code: 0x87, .. }
        ));
        assert!(matches!(
            ok(v5, &pkt(0x62, &[0, 1, 0x92, 0])),
            Packet::PubRel { code: 0x92, .. }
        ));
        // Codes not defined for the packet, duplicate reason strings, foreign properties.
        assert_eq!(err(v5, &pkt(0x40, &[0, 1, 0x92])), PROTOCOL_ERROR);
        assert_eq!(err(v5, &pkt(0x62, &[0, 1, 0x10])), PROTOCOL_ERROR);
        let twice = cat(&[&[0, 1, 0, 8, 0x1F], &s(b"a"), &[0x1F], &s(b"b")]);
        assert_eq!(err(v5, &pkt(0x70, &twice)), PROTOCOL_ERROR);
        assert_eq!(err(v5, &pkt(0x50, &[0, 1, 0, 2, 0x01, 0])), MALFORMED);
    }

    #[test]
    fn pingreq_and_disconnect() {
        assert!(matches!(ok(Protocol::V311, &[0xC0, 0]), Packet::PingReq));
        assert_eq!(both(&pkt(0xC0, &[0])), [MALFORMED; 2]);
        assert!(matches!(
            ok(Protocol::V311, &[0xE0, 0]),
            Packet::Disconnect {
                code: 0,
                session_expiry: None
            }
        ));
        assert_eq!(err(Protocol::V311, &pkt(0xE0, &[0])), MALFORMED);
        let v5 = Protocol::V5;
        assert!(matches!(
            ok(v5, &[0xE0, 0]),
            Packet::Disconnect { code: 0, .. }
        ));
        assert!(matches!(
            ok(v5, &[0xE0, 1, 0x04]),
            Packet::Disconnect { code: 4, .. }
        ));
        assert!(matches!(
            ok(v5, &pkt(0xE0, &[0, 5, 0x11, 0, 0, 1, 0])),
            Packet::Disconnect {
                code: 0,
                session_expiry: Some(256)
            }
        ));
        // Server-only codes (0x8E session taken over), duplicates, foreign properties.
        assert_eq!(err(v5, &[0xE0, 1, 0x8E]), PROTOCOL_ERROR);
        assert_eq!(
            err(v5, &pkt(0xE0, &[0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2])),
            PROTOCOL_ERROR
        );
        assert_eq!(err(v5, &pkt(0xE0, &[0, 2, 0x01, 0])), MALFORMED);
        // AUTH.
        assert!(matches!(ok(v5, &pkt(0xF0, &[0x18, 0])), Packet::Auth));
        assert_eq!(err(v5, &pkt(0xF0, &[0x80])), PROTOCOL_ERROR);
        assert_eq!(err(v5, &pkt(0xF0, &[0x18, 2, 0x02, 0])), MALFORMED);
    }

    // ---- CONNECT --------------------------------------------------------------------------

    fn connect_raw(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
        pkt(0x10, &cat(&[&s(name), &[level, flags, 0, 60], rest]))
    }

    fn conn(raw: &[u8]) -> Result<Option<Connect>, Violation> {
        decode_connect(&mut BytesMut::from(raw), MAX_PACKET)
    }

    fn connected(raw: &[u8]) -> Connect {
        match conn(raw) {
            Ok(Some(c)) => c,
            other => panic!("{raw:02x?} should connect, got {other:?}"),
        }
    }

    /// (code, answer) for a refused CONNECT.
    fn refused(raw: &[u8]) -> (u8, Option<Protocol>) {
        match conn(raw) {
            Err(v) => (v.code, v.answer),
            other => panic!("{raw:02x?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn connect_minimal_in_both_versions() {
        let c = connected(&connect_raw(b"MQTT", 4, 0x02, &s(b"id")));
        assert_eq!(
            (c.proto, c.client_id.as_str(), c.clean, c.keepalive),
            (Protocol::V311, "id", true, 60)
        );
        assert_eq!(
            (c.receive_max, c.max_packet, c.request_problem_info),
            (65535, None, true)
        );
        assert!(c.will.is_none() && c.username.is_none() && c.password.is_none());
        let c = connected(&connect_raw(b"MQTT", 5, 0x00, &cat(&[&[0], &s(b"")])));
        assert_eq!(
            (c.proto, c.client_id.as_str(), c.clean),
            (Protocol::V5, "", false)
        );
        // A password alone is fine in 5.0, and it is binary.
        let c = connected(&connect_raw(
            b"MQTT",
            5,
            0x40,
            &cat(&[&[0], &s(b"x"), &s(b"\xff\0")]),
        ));
        assert_eq!(c.password.as_deref(), Some(&b"\xff\0"[..]));
    }

    #[test]
    fn connect_must_come_first_and_be_mqtt() {
        // [MQTT-3.1.0-1]: refused on its first byte, with no answer.
        assert_eq!(refused(&[0x30]), (PROTOCOL_ERROR, None));
        assert_eq!(refused(&[0xC0, 0]), (PROTOCOL_ERROR, None));
        assert_eq!(refused(&[0x12]), (MALFORMED, None));
        // MQTT 3.1 is served as 3.1.1; other levels get CONNACK "unacceptable protocol
        // version" [MQTT-3.1.2-2].
        let c = conn(&connect_raw(b"MQIsdp", 3, 0x02, &s(b"id")))
            .unwrap()
            .unwrap();
        assert_eq!(c.proto, Protocol::V311);
        let v = conn(&connect_raw(b"MQIsdp", 4, 0x02, &s(b"id"))).unwrap_err();
        assert_eq!(
            (v.code, v.answer, v.connack_code()),
            (UNSUPPORTED_VERSION, Some(Protocol::V311), Some(1))
        );
        assert_eq!(
            refused(&connect_raw(b"MQTT", 3, 2, &s(b"i"))),
            (UNSUPPORTED_VERSION, Some(Protocol::V311))
        );
        let bridge = connect_raw(b"MQTT", 0x84, 2, &s(b"i"));
        assert_eq!(
            refused(&bridge),
            (UNSUPPORTED_VERSION, Some(Protocol::V311))
        );
        let v = conn(&connect_raw(b"MQTT", 6, 0x02, &s(b"id"))).unwrap_err();
        assert_eq!(
            (v.code, v.connack_code()),
            (UNSUPPORTED_VERSION, Some(0x84))
        );
        // Not MQTT: close without a word [MQTT-3.1.2-1].
        assert_eq!(refused(&connect_raw(b"HTTP", 4, 2, &s(b"i"))).1, None);
        assert_eq!(refused(&connect_raw(b"mqtt", 4, 2, &s(b"i"))).1, None);
        // Too large.
        let mut buf = BytesMut::from(&connect_raw(b"MQTT", 4, 2, &s(&[b'x'; 100]))[..]);
        assert_eq!(
            decode_connect(&mut buf, 50).unwrap_err().code,
            PACKET_TOO_LARGE
        );
        // Larger than MAX_CONNECT, whatever the packet size limit: refused from the fixed
        // header, closing without a CONNACK (the protocol is not known yet), as Mosquitto.
        let mut buf = BytesMut::from(&[0x10, 0x80, 0x80, 0x80, 0x64][..]); // 200 MiB
        let v = decode_connect(&mut buf, MAX_PACKET).unwrap_err();
        assert_eq!((v.code, v.answer), (PACKET_TOO_LARGE, None));
        // The largest will payload fits.
        let will = cat(&[&s(b"id"), &s(b"w"), &s(&vec![b'x'; 65_535])]);
        let c = connected(&connect_raw(b"MQTT", 4, 0x06, &will));
        assert_eq!(c.will.map(|w| w.payload.len()), Some(65_535));
        // Incomplete: wait, untouched.
        let raw = connect_raw(b"MQTT", 4, 2, &s(b"id"));
        for cut in 0..raw.len() {
            let mut buf = BytesMut::from(&raw[..cut]);
            assert!(decode_connect(&mut buf, MAX_PACKET).unwrap().is_none());
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn connect_flags() {
        for (level, answer) in [(4, None), (5, Some(Protocol::V5))] {
            let p: &[u8] = if level == 5 { &[0] } else { &[] };
            let id = cat(&[p, &s(b"i")]);
            // Reserved bit [MQTT-3.1.2-3].
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x03, &id)),
                (MALFORMED, answer)
            );
            // Will QoS or Will Retain without a will [MQTT-3.1.2-11/13/15].
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x0A, &id)),
                (MALFORMED, answer)
            );
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x12, &id)),
                (MALFORMED, answer)
            );
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x22, &id)),
                (MALFORMED, answer)
            );
            // Will QoS 3 [MQTT-3.1.2-14].
            let will = cat(&[&id, p, &s(b"w"), &s(b"bye")]);
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x1E, &will)),
                (MALFORMED, answer)
            );
            // Client identifier: ill-formed UTF-8, U+0000 [MQTT-3.1.3-4].
            let bad = cat(&[p, &s(b"\xff")]);
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x02, &bad)),
                (MALFORMED, answer)
            );
            let bad = cat(&[p, &s(b"a\0")]);
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x02, &bad)),
                (MALFORMED, answer)
            );
            // Bytes after the payload; a user name flag with no user name.
            let extra = cat(&[&id, &[0]]);
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x02, &extra)),
                (MALFORMED, answer)
            );
            assert_eq!(
                refused(&connect_raw(b"MQTT", level, 0x82, &id)),
                (MALFORMED, answer)
            );
        }
        // 3.1.1: a password without a user name [MQTT-3.1.2-22].
        let raw = connect_raw(b"MQTT", 4, 0x42, &cat(&[&s(b"i"), &s(b"pw")]));
        assert_eq!(refused(&raw), (MALFORMED, None));
        // 3.1.1: empty client id with clean session 0 → CONNACK 2 [MQTT-3.1.3-8].
        let v = conn(&connect_raw(b"MQTT", 4, 0x00, &s(b""))).unwrap_err();
        assert_eq!((v.code, v.connack_code()), (CLIENT_ID_INVALID, Some(2)));
        assert!(conn(&connect_raw(b"MQTT", 4, 0x02, &s(b""))).is_ok());
    }

    #[test]
    fn connect_will_and_login() {
        let raw = connect_raw(
            b"MQTT",
            4,
            0b1110_1110, // user, password, will retain, will QoS 1, will, clean
            &cat(&[
                &s(b"id"),
                &s("\u{feff}w/ü".as_bytes()),
                &s(b"\0bye"),
                &s(b"me"),
                &s(b"pw"),
            ]),
        );
        let c = connected(&raw);
        let w = c.will.unwrap();
        assert_eq!(
            (w.topic.as_str(), &w.payload[..], w.qos, w.retain),
            ("\u{feff}w/ü", &b"\0bye"[..], 1, true)
        );
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("me"), Some(&b"pw"[..]))
        );
        // A will topic is a topic name.
        for (topic, code) in [
            (&b"w/#"[..], TOPIC_NAME_INVALID),
            (b"", PROTOCOL_ERROR),
            (b"\xff", MALFORMED),
        ] {
            let raw = connect_raw(
                b"MQTT",
                5,
                0x06,
                &cat(&[&[0], &s(b"id"), &[0], &s(topic), &s(b"x")]),
            );
            assert_eq!(refused(&raw), (code, Some(Protocol::V5)), "{topic:?}");
        }
    }

    #[test]
    fn connect_v5_properties() {
        let props = cat(&[
            &[
                0x11, 0, 0, 0x0E, 0x10, 0x21, 0, 10, 0x27, 0, 1, 0, 0, 0x22, 0, 4, 0x19, 1, 0x17, 0,
            ],
            &[0x26],
            &s(b"k"),
            &s(b"v"),
            &[0x15],
            &s(b"SCRAM"),
            &[0x16],
            &s(b"\x01"),
        ]);
        let will_props = cat(&[
            &[0x18, 0, 0, 0, 30, 0x01, 1, 0x02, 0, 0, 0, 9, 0x03],
            &s(b"ct"),
            &[0x09],
            &s(b"cd"),
        ]);
        let raw = connect_raw(
            b"MQTT",
            5,
            0x06,
            &cat(&[
                &[props.len() as u8],
                &props,
                &s(b"id"),
                &[will_props.len() as u8],
                &will_props,
                &s(b"w"),
                &s(b"bye"),
            ]),
        );
        let c = connected(&raw);
        assert_eq!(
            (
                c.session_expiry,
                c.receive_max,
                c.max_packet,
                c.topic_alias_max
            ),
            (3600, 10, Some(65536), 4)
        );
        assert_eq!(
            (c.request_response_info, c.request_problem_info),
            (true, false)
        );
        assert_eq!(c.user_properties, [("k".into(), "v".into())]);
        assert_eq!(c.auth_method.as_deref(), Some("SCRAM"));
        let w = c.will.unwrap();
        assert_eq!(w.delay, 30);
        let wp = w.props.unwrap();
        assert_eq!(
            (wp.payload_format_indicator, wp.message_expiry_interval),
            (Some(1), Some(9))
        );
        assert_eq!(
            (wp.content_type.as_deref(), wp.correlation_data.as_deref()),
            (Some("ct"), Some(&b"cd"[..]))
        );

        let with = |props: &[u8]| {
            connect_raw(
                b"MQTT",
                5,
                2,
                &cat(&[&[props.len() as u8], props, &s(b"id")]),
            )
        };
        let v5 = Some(Protocol::V5);
        assert_eq!(refused(&with(&[0x21, 0, 0])), (PROTOCOL_ERROR, v5)); // Receive Maximum 0
        assert_eq!(refused(&with(&[0x27, 0, 0, 0, 0])), (PROTOCOL_ERROR, v5)); // Maximum Packet Size 0
        assert_eq!(refused(&with(&[0x17, 2])), (PROTOCOL_ERROR, v5));
        assert_eq!(refused(&with(&[0x19, 2])), (PROTOCOL_ERROR, v5));
        assert_eq!(
            refused(&with(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1])),
            (PROTOCOL_ERROR, v5)
        );
        assert_eq!(
            refused(&with(&cat(&[&[0x16], &s(b"x")]))),
            (PROTOCOL_ERROR, v5)
        ); // data, no method
        assert_eq!(refused(&with(&[0x01, 1])), (MALFORMED, v5)); // a will property in CONNECT
        assert_eq!(refused(&with(&[0x21, 0])), (MALFORMED, v5)); // cut short
        // Will properties: payload declared UTF-8 but not; a CONNECT property in the will.
        let will = |wp: &[u8], payload: &[u8]| {
            connect_raw(
                b"MQTT",
                5,
                6,
                &cat(&[
                    &[0],
                    &s(b"id"),
                    &[wp.len() as u8],
                    wp,
                    &s(b"w"),
                    &s(payload),
                ]),
            )
        };
        assert_eq!(
            refused(&will(&[0x01, 1], b"\xff")),
            (PAYLOAD_FORMAT_INVALID, v5)
        );
        assert_eq!(refused(&will(&[0x11, 0, 0, 0, 1], b"")), (MALFORMED, v5));
        assert_eq!(
            refused(&will(&[0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 1], b"")),
            (PROTOCOL_ERROR, v5)
        );
        assert!(connected(&will(&[], b"\xff")).will.unwrap().props.is_none());
    }

    // ---- round trips with the client codec ------------------------------------------------

    #[test]
    fn client_packets_decode_here() {
        use rumqttc::v5::mqttbytes::v5::{ConnectProperties, LastWillProperties};
        for proto in [Protocol::V311, Protocol::V5] {
            let will = client::Will {
                topic: "w/ü".into(),
                payload: Bytes::from_static(b"bye"),
                qos: 2,
                retain: true,
                props: (proto == Protocol::V5).then(|| LastWillProperties {
                    delay_interval: Some(5),
                    payload_format_indicator: None,
                    message_expiry_interval: Some(7),
                    content_type: None,
                    response_topic: Some("r".into()),
                    correlation_data: None,
                    user_properties: vec![("a".into(), "b".into())],
                }),
            };
            let props = (proto == Protocol::V5).then(|| {
                let mut p = ConnectProperties::new();
                p.session_expiry_interval = Some(99);
                p.receive_maximum = Some(20);
                p
            });
            let c = client::Connect {
                client_id: "me",
                keepalive: 0,
                clean: false,
                username: Some("u"),
                password: Some("p"),
                will: Some(&will),
                props,
            };
            let mut buf = BytesMut::new();
            client::encode_connect(proto, &c, &mut buf).unwrap();
            let got = decode_connect(&mut buf, MAX_PACKET).unwrap().unwrap();
            assert!(buf.is_empty());
            assert_eq!(
                (got.proto, got.client_id.as_str(), got.clean, got.keepalive),
                (proto, "me", false, 0)
            );
            assert_eq!(
                (got.username.as_deref(), got.password.as_deref()),
                (Some("u"), Some(&b"p"[..]))
            );
            let w = got.will.unwrap();
            assert_eq!(
                (w.topic.as_str(), &w.payload[..], w.qos, w.retain),
                ("w/ü", &b"bye"[..], 2, true)
            );
            if proto == Protocol::V5 {
                assert_eq!((got.session_expiry, got.receive_max, w.delay), (99, 20, 5));
                let wp = w.props.unwrap();
                assert_eq!(
                    (wp.message_expiry_interval, wp.response_topic.as_deref()),
                    (Some(7), Some("r"))
                );
                assert_eq!(wp.user_properties, [("a".into(), "b".into())]);
            }

            // PUBLISH, with properties in v5.
            let msg = Message {
                topic: Bytes::from_static("\u{feff}t/ü".as_bytes()),
                payload: Bytes::from_static(b"\0\xff"),
                qos: 2,
                retain: true,
                props: (proto == Protocol::V5).then(|| PublishProperties {
                    message_expiry_interval: Some(3),
                    user_properties: vec![("k".into(), "v".into())],
                    correlation_data: Some(Bytes::from_static(b"c")),
                    ..Default::default()
                }),
            };
            client::encode_publish(proto, &msg, 77, true, &mut buf).unwrap();
            let (got, pkid, dup) = published(decode(proto, &mut buf, MAX_PACKET).unwrap().unwrap());
            assert_eq!(
                (&got.topic, &got.payload, got.qos, got.retain),
                (&msg.topic, &msg.payload, 2, true)
            );
            assert_eq!((pkid, dup, got.props), (77, true, msg.props.clone()));

            // SUBSCRIBE and UNSUBSCRIBE.
            let subs = [client::Subscription {
                filter: "a/+".into(),
                qos: 1,
                no_local: proto == Protocol::V5,
                retain_as_published: proto == Protocol::V5,
                retain_handling: if proto == Protocol::V5 { 1 } else { 0 },
            }];
            client::encode_subscribe(proto, 3, &subs, None, &mut buf).unwrap();
            let (pkid, f, _) = subscribed(decode(proto, &mut buf, MAX_PACKET).unwrap().unwrap());
            assert_eq!(pkid, 3);
            let s = &subs[0];
            assert_eq!(
                (
                    f[0].filter.as_str(),
                    f[0].qos,
                    f[0].no_local,
                    f[0].retain_as_published,
                    f[0].retain_handling
                ),
                (
                    s.filter.as_str(),
                    s.qos,
                    s.no_local,
                    s.retain_as_published,
                    s.retain_handling
                )
            );
            client::encode_unsubscribe(proto, 4, &["a/+".into()], None, &mut buf).unwrap();
            assert!(matches!(
                decode(proto, &mut buf, MAX_PACKET),
                Ok(Some(Packet::Unsubscribe { pkid: 4, .. }))
            ));

            // Acknowledgements, PINGREQ, DISCONNECT.
            client::encode_ack(6, 9, &mut buf);
            assert!(matches!(
                decode(proto, &mut buf, MAX_PACKET),
                Ok(Some(Packet::PubRel { pkid: 9, code: 0 }))
            ));
            client::encode_pingreq(&mut buf);
            assert!(matches!(
                decode(proto, &mut buf, MAX_PACKET),
                Ok(Some(Packet::PingReq))
            ));
            client::encode_disconnect(proto, None, &mut buf).unwrap();
            assert!(matches!(
                decode(proto, &mut buf, MAX_PACKET),
                Ok(Some(Packet::Disconnect { code: 0, .. }))
            ));
            assert!(buf.is_empty());
        }
    }

    fn client_reads(proto: Protocol, buf: &mut BytesMut) -> Incoming {
        let got = client::decode(proto, buf, MAX_PACKET).unwrap().unwrap();
        assert!(buf.is_empty(), "bytes left over: {buf:02x?}");
        got
    }

    #[test]
    fn server_packets_decode_in_the_client() {
        let mut buf = BytesMut::new();
        // 3.1.1 CONNACK: session present only when accepted.
        encode_connack(
            Protocol::V311,
            &ConnAck {
                session_present: true,
                ..Default::default()
            },
            &mut buf,
        );
        assert_eq!(&buf[..], &[0x20, 2, 1, 0]);
        assert!(matches!(
            client_reads(Protocol::V311, &mut buf),
            Incoming::ConnAck {
                session_present: true,
                code: 0,
                ..
            }
        ));
        encode_connack(
            Protocol::V311,
            &ConnAck {
                session_present: true,
                code: 2,
                ..Default::default()
            },
            &mut buf,
        );
        assert_eq!(&buf[..], &[0x20, 2, 0, 2]);
        buf.clear();

        let ack = ConnAck {
            session_present: true,
            code: 0,
            assigned_client_id: Some("auto-1".into()),
            session_expiry: Some(10),
            receive_max: Some(100),
            max_qos: Some(1),
            retain_available: Some(false),
            max_packet: Some(1 << 20),
            topic_alias_max: Some(10),
            reason_string: Some("fine".into()),
            wildcard_available: Some(true),
            sub_ids_available: Some(true),
            shared_available: Some(false),
            server_keepalive: Some(30),
            response_info: Some("resp/".into()),
        };
        encode_connack(Protocol::V5, &ack, &mut buf);
        match client_reads(Protocol::V5, &mut buf) {
            Incoming::ConnAck {
                session_present,
                code,
                props,
            } => {
                assert_eq!((session_present, code), (true, 0));
                let p = props.unwrap();
                assert_eq!(p.assigned_client_identifier.as_deref(), Some("auto-1"));
                assert_eq!(
                    (p.session_expiry_interval, p.receive_max, p.max_qos),
                    (Some(10), Some(100), Some(1))
                );
                assert_eq!(
                    (p.retain_available, p.max_packet_size, p.topic_alias_max),
                    (Some(0), Some(1 << 20), Some(10))
                );
                assert_eq!(p.reason_string.as_deref(), Some("fine"));
                assert_eq!(
                    (
                        p.wildcard_subscription_available,
                        p.subscription_identifiers_available,
                        p.shared_subscription_available
                    ),
                    (Some(1), Some(1), Some(0))
                );
                assert_eq!(
                    (p.server_keep_alive, p.response_information.as_deref()),
                    (Some(30), Some("resp/"))
                );
            }
            other => panic!("{other:?}"),
        }
        // Maximum QoS 2 is said by leaving it out.
        encode_connack(
            Protocol::V5,
            &ConnAck {
                max_qos: Some(2),
                code: 0x87,
                ..Default::default()
            },
            &mut buf,
        );
        assert_eq!(&buf[..], &[0x20, 3, 0, 0x87, 0]);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::ConnAck { code: 0x87, .. }
        ));

        for proto in [Protocol::V311, Protocol::V5] {
            encode_suback(proto, 5, &[0, 1, 2, 0x80], &mut buf);
            match client_reads(proto, &mut buf) {
                Incoming::SubAck { pkid, codes } => {
                    assert_eq!((pkid, codes), (5, vec![0, 1, 2, 0x80]))
                }
                other => panic!("{other:?}"),
            }
            encode_unsuback(proto, 6, &[0, 0x11], &mut buf);
            if proto == Protocol::V311 {
                assert_eq!(&buf[..], &[0xB0, 2, 0, 6]);
            }
            assert!(matches!(
                client_reads(proto, &mut buf),
                Incoming::UnsubAck { pkid: 6 }
            ));
            for kind in 4..=7 {
                encode_ack(kind, 0x0102, 0, &mut buf);
                let got = client_reads(proto, &mut buf);
                let pkid = match got {
                    Incoming::PubAck { pkid, code: 0 } if kind == 4 => pkid,
                    Incoming::PubRec { pkid, code: 0 } if kind == 5 => pkid,
                    Incoming::PubRel { pkid } if kind == 6 => pkid,
                    Incoming::PubComp { pkid, code: 0 } if kind == 7 => pkid,
                    other => panic!("{kind}: {other:?}"),
                };
                assert_eq!(pkid, 0x0102);
            }
            encode_pingresp(&mut buf);
            assert!(matches!(client_reads(proto, &mut buf), Incoming::PingResp));
        }
        encode_ack(4, 1, 0x10, &mut buf);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::PubAck {
                pkid: 1,
                code: 0x10
            }
        ));
        encode_ack(6, 1, 0x92, &mut buf);
        assert_eq!(&buf[..], &[0x62, 3, 0, 1, 0x92]);
        buf.clear();

        encode_disconnect(0, None, &mut buf);
        assert_eq!(&buf[..], &[0xE0, 0]);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::Disconnect {
                code: 0,
                reason: None
            }
        ));
        encode_disconnect(0x8E, Some("taken over"), &mut buf);
        match client_reads(Protocol::V5, &mut buf) {
            Incoming::Disconnect { code, reason } => {
                assert_eq!((code, reason.as_deref()), (0x8E, Some("taken over")))
            }
            other => panic!("{other:?}"),
        }
        encode_disconnect(0x81, None, &mut buf);
        assert!(matches!(
            client_reads(Protocol::V5, &mut buf),
            Incoming::Disconnect { code: 0x81, .. }
        ));
        // An over-long reason string is cut at a character boundary, not mid-character.
        let long = "é".repeat(40_000);
        encode_disconnect(0x82, Some(&long), &mut buf);
        match client_reads(Protocol::V5, &mut buf) {
            Incoming::Disconnect { reason, .. } => assert_eq!(reason.unwrap().len(), 65534),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v311_connack_codes() {
        assert_eq!(
            [0x00, 0x84, 0x85, 0x86, 0x87, 0x88, 0x81].map(connack_code_v311),
            [0, 1, 2, 4, 5, 3, 3]
        );
    }

    // ---- robustness -----------------------------------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Decodes everything in `raw` the way a connection does, until it waits or fails.
    /// Decodes everything in `raw` the way a connection does, until it waits or fails, and
    /// returns how many packets came out.
    fn drain(raw: &[u8], max: usize) -> usize {
        let mut buf = BytesMut::from(raw);
        let mut n = 0;
        let Ok(Some(c)) = decode_connect(&mut buf, max) else {
            // Not a connection opening: try the rest of the decoder on it anyway.
            for proto in [Protocol::V311, Protocol::V5] {
                let mut buf = BytesMut::from(raw);
                let mut before = buf.len();
                while let Ok(Some(_)) = decode(proto, &mut buf, max) {
                    assert!(buf.len() < before, "no progress");
                    before = buf.len();
                    n += 1;
                }
            }
            return n;
        };
        while let Ok(Some(_)) = decode(c.proto, &mut buf, max) {
            n += 1;
        }
        n + 1
    }

    fn samples() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = BytesMut::new();
        for proto in [Protocol::V311, Protocol::V5] {
            let will = client::Will {
                topic: "w".into(),
                payload: Bytes::from_static(b"x"),
                qos: 1,
                retain: false,
                props: None,
            };
            let c = client::Connect {
                client_id: "id",
                keepalive: 5,
                clean: true,
                username: Some("u"),
                password: Some("p"),
                will: Some(&will),
                props: None,
            };
            client::encode_connect(proto, &c, &mut buf).unwrap();
            out.push(buf.split().to_vec());
        }
        let props = cat(&[
            &[0x01, 1, 0x23, 0, 1, 0x26],
            &s(b"k"),
            &s(b"v"),
            &[0x08],
            &s(b"r"),
        ]);
        out.push(publish(
            0x32,
            b"a/b",
            &cat(&[&[0, 1, props.len() as u8], &props, b"payload"]),
        ));
        out.push(publish(0x30, "ü/\u{feff}".as_bytes(), b"x"));
        out.push(sub5(&[0x0B, 5], &[(b"a/#", 0x1A), (b"$share/g/+", 2)]));
        out.push(sub311(&[(b"a/+", 1)]));
        out.push(pkt(0xA2, &cat(&[&[0, 5, 0], &s(b"a")])));
        out.push(pkt(0x40, &cat(&[&[0, 1, 0x87, 7, 0x1F], &s(b"nope")])));
        out.push(pkt(0xE0, &[0x04, 5, 0x11, 0, 0, 0, 9]));
        out.push(vec![0xC0, 0]);
        out
    }

    #[test]
    fn never_panics_on_random_or_damaged_input() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let samples = samples();
        let mut decoded = 0;
        for round in 0..100_000 {
            let max = [MAX_PACKET, 64, 8][round % 3];
            // Random bytes, often starting with a plausible first byte.
            let n = rng.below(40);
            let mut raw: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            if let Some(b) = raw.first_mut() {
                if round % 2 == 0 {
                    *b = [0x10, 0x30, 0x32, 0x62, 0x82, 0xA2, 0xE0, 0xF0][rng.below(8)];
                }
            }
            decoded += drain(&raw, max);
            // A valid stream (a CONNECT, then the rest), truncated and with bytes changed.
            let mut raw = samples[rng.below(2)].clone();
            for _ in 0..1 + rng.below(3) {
                raw.extend_from_slice(&samples[2 + rng.below(samples.len() - 2)]);
            }
            for _ in 0..rng.below(4) {
                let i = rng.below(raw.len());
                raw[i] = match rng.below(3) {
                    0 => rng.next() as u8,
                    1 => raw[i] ^ (1 << rng.below(8)),
                    _ => [0, 0xff, 0x80, 0x7f][rng.below(4)],
                };
            }
            raw.truncate(rng.below(raw.len() + 1));
            decoded += drain(&raw, max);
        }
        // The damage must leave enough intact for the deeper decoding paths to be reached.
        assert!(decoded > 50_000, "only {decoded} packets decoded");
        // Every prefix of every sample.
        for sample in &samples {
            for cut in 0..=sample.len() {
                drain(&sample[..cut], MAX_PACKET);
            }
        }
    }

    /// `cargo test --release -- --ignored --nocapture publish_decode_speed`
    #[test]
    #[ignore = "a timing report, run by hand in release mode"]
    #[allow(clippy::print_stderr)] // the report is the point
    fn publish_decode_speed() {
        let cases = [
            (
                "3.1.1 QoS 0, 100-byte payload",
                Protocol::V311,
                publish(0x30, b"sensors/phone/accelerometer", &[b'x'; 100]),
            ),
            (
                "5.0 QoS 1, 100-byte payload",
                Protocol::V5,
                publish(
                    0x32,
                    b"sensors/phone/accelerometer",
                    &cat(&[&[0, 1, 0], &[b'x'; 100]]),
                ),
            ),
            ("5.0 QoS 0, alias + user property", Protocol::V5, {
                let props = cat(&[&[0x23, 0, 1, 0x26], &s(b"k"), &s(b"v")]);
                publish(
                    0x30,
                    b"sensors/phone/accelerometer",
                    &cat(&[&[props.len() as u8], &props, &[b'x'; 100]]),
                )
            }),
        ];
        for (name, proto, raw) in cases.iter().chain(&cases) {
            let proto = *proto;
            const BATCH: usize = 1000;
            let stream: Vec<u8> = raw
                .iter()
                .copied()
                .cycle()
                .take(raw.len() * BATCH)
                .collect();
            let rounds = 2000;
            let mut buf = BytesMut::with_capacity(stream.len());
            // What refilling the buffer costs, to subtract.
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                buf.clear();
                buf.extend_from_slice(std::hint::black_box(&stream));
            }
            let refill = start.elapsed();
            let mut n = 0usize;
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                buf.clear();
                buf.extend_from_slice(std::hint::black_box(&stream));
                while let Some(p) = decode(proto, &mut buf, MAX_PACKET).unwrap() {
                    n += std::hint::black_box(p).clone_is_publish() as usize;
                }
            }
            let per = start.elapsed().saturating_sub(refill) / n as u32;
            // For comparison: the client's decoder, on rumqttc's codec.
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                buf.clear();
                buf.extend_from_slice(std::hint::black_box(&stream));
                while let Some(p) = client::decode(proto, &mut buf, MAX_PACKET).unwrap() {
                    std::hint::black_box(p);
                }
            }
            let theirs = start.elapsed().saturating_sub(refill) / n as u32;
            eprintln!("{name}: {per:?} per PUBLISH decoded and dropped (rumqttc: {theirs:?})");
        }
    }
}
