//! SUBSCRIBE and SUBACK (3.1.1 §3.8-3.9, 5.0 §3.8-3.9).

use bytes::{BufMut, BytesMut};

use super::props::{self, id, int};
use super::protocol::Protocol;
use super::reason::{ReasonCode, SubAckCode};
use super::violation::Violation;
use super::wire::{Reader, put_packet, put_str, put_varint, varint_len};
use crate::topic;

/// One topic filter of a SUBSCRIBE as the broker decoded it.
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

/// One filter with its subscription options, as a client sends it (the v5 ones are ignored
/// in 3.1.1).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 send retained on every subscribe, 1 only on a new one, 2 never.
    pub retain_handling: u8,
}

/// A SUBSCRIBE's body: (packet id, filters, subscription identifier).
pub(super) fn parse(v5: bool, body: &[u8]) -> Result<(u16, Vec<Filter>, Option<u32>), Violation> {
    let mut r = Reader::new(body, "SUBSCRIBE");
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(Violation::protocol(
            "SUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]",
        ));
    }
    let mut sub_id = None;
    if v5 {
        props::read(&mut r, props::SUBSCRIBE, |id, v| {
            if id == id::SUBSCRIPTION_ID {
                // 5.0 §3.8.2.1.2: 1 to 268,435,455; 0 is a protocol error.
                if int(&v) == 0 {
                    return Err(Violation::protocol("SUBSCRIBE: Subscription Identifier 0"));
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
        filters.push(options(v5, filter, opts)?);
    }
    if filters.is_empty() {
        return Err(Violation::protocol(
            "SUBSCRIBE without a topic filter [MQTT-3.8.3-3] (5.0: MQTT-3.8.3-2)",
        ));
    }
    Ok((pkid, filters, sub_id))
}

/// A filter and its options byte.
fn options(v5: bool, filter: &str, opts: u8) -> Result<Filter, Violation> {
    let qos = opts & 0x03;
    if !v5 {
        if opts & 0xFC != 0 || qos == 3 {
            return Err(Violation::malformed(
                "SUBSCRIBE with reserved bits set or QoS 3 [MQTT-3.8.3-4]",
            ));
        }
        return Ok(Filter {
            filter: filter.to_owned(),
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
            valid: topic::filter_valid(filter),
        });
    }
    if opts & 0xC0 != 0 {
        return Err(Violation::malformed(
            "SUBSCRIBE options with reserved bits set [MQTT-3.8.3-5]",
        ));
    }
    if qos == 3 {
        return Err(Violation::protocol(
            "SUBSCRIBE with Maximum QoS 3 (5.0 §3.8.3.1)",
        ));
    }
    let retain_handling = (opts >> 4) & 0x03;
    if retain_handling == 3 {
        return Err(Violation::protocol(
            "SUBSCRIBE with Retain Handling 3 (5.0 §3.8.3.1)",
        ));
    }
    let no_local = opts & 0x04 != 0;
    if no_local && topic::looks_shared(filter) {
        return Err(Violation::protocol(
            "No Local on a shared subscription (5.0 MQTT-3.8.3-4)",
        ));
    }
    Ok(Filter {
        filter: filter.to_owned(),
        qos,
        no_local,
        retain_as_published: opts & 0x08 != 0,
        retain_handling,
        valid: topic::filter_valid(filter),
    })
}

/// Encodes a SUBSCRIBE; in 5.0 with a Subscription Identifier and user properties if given.
pub fn encode_subscribe(
    proto: Protocol,
    pkid: u16,
    subs: &[Subscription],
    sub_id: Option<u32>,
    user_properties: &[(String, String)],
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    let v5 = proto == Protocol::V5;
    let mut strings: Vec<&[u8]> = subs.iter().map(|s| s.filter.as_bytes()).collect();
    for (k, v) in user_properties {
        strings.extend([k.as_bytes(), v.as_bytes()]);
    }
    if let Some(n) = props::too_long(&strings) {
        anyhow::bail!("cannot encode SUBSCRIBE: a {n}-byte string, longer than MQTT allows");
    }
    let mut body = BytesMut::new();
    body.put_u16(pkid);
    if v5 {
        let id_len = sub_id.map_or(0, |i| 1 + varint_len(i as usize));
        put_varint(
            &mut body,
            id_len + props::user_properties_len(user_properties),
        );
        if let Some(i) = sub_id {
            body.put_u8(id::SUBSCRIPTION_ID);
            put_varint(&mut body, i as usize);
        }
        props::write_user_properties(&mut body, user_properties);
    }
    for s in subs {
        put_str(&mut body, &s.filter);
        let mut opts = s.qos.min(2);
        if v5 {
            opts |= u8::from(s.no_local) << 2
                | u8::from(s.retain_as_published) << 3
                | (s.retain_handling.min(2) << 4);
        }
        body.put_u8(opts);
    }
    if body.len() > super::wire::MAX_REMAINING_LENGTH {
        anyhow::bail!("cannot encode SUBSCRIBE: larger than MQTT can express");
    }
    put_packet(buf, 0x82, &body);
    Ok(())
}

/// SUBACK: one code per filter. 3.1.1 has the granted QoS or 0x80 for any refusal.
pub fn encode_suback(proto: Protocol, pkid: u16, codes: &[SubAckCode], buf: &mut BytesMut) {
    let v311 = |c: &SubAckCode| {
        if c.is_error() {
            ReasonCode::UnspecifiedError.number()
        } else {
            c.number()
        }
    };
    let bytes: Vec<u8> = match proto {
        Protocol::V311 => codes.iter().map(v311).collect(),
        Protocol::V5 => codes.iter().map(|c| c.number()).collect(),
    };
    sub_ack(0x90, proto, pkid, &bytes, buf);
}

/// SUBACK and UNSUBACK share a shape: packet id, v5 properties (none), one code per filter.
pub(super) fn sub_ack(byte1: u8, proto: Protocol, pkid: u16, codes: &[u8], buf: &mut BytesMut) {
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

/// The body of a SUBACK or UNSUBACK as a client reads it: (packet id, codes). `T` is the
/// codes the packet may carry; `v311` says which bytes 3.1.1 allows, if it has codes at all.
pub(super) fn parse_ack<T: TryFrom<u8>>(
    proto: Protocol,
    pkt: &'static str,
    body: &[u8],
    v311: Option<fn(u8) -> bool>,
) -> Result<(u16, Vec<T>), Violation> {
    let mut r = Reader::new(body, pkt);
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(Violation::protocol(format!(
            "{pkt} with packet identifier 0 [MQTT-2.3.1-1]"
        )));
    }
    let v5 = proto == Protocol::V5;
    if v5 {
        props::read(&mut r, props::ACK, |_, _| Ok(()))?;
    } else if v311.is_none() {
        // 3.1.1's UNSUBACK is the packet id alone.
        r.end()?;
        return Ok((pkid, Vec::new()));
    }
    let mut codes = Vec::with_capacity(r.len());
    while !r.is_empty() {
        let b = r.u8()?;
        let allowed = v5 || v311.is_some_and(|ok| ok(b));
        let code = T::try_from(b).ok().filter(|_| allowed).ok_or_else(|| {
            Violation::protocol(format!(
                "{pkt} with reason code {b:#04x}, not one defined for it"
            ))
        })?;
        codes.push(code);
    }
    if codes.is_empty() {
        return Err(Violation::protocol(format!(
            "{pkt} without a reason code [MQTT-3.9.3-1]"
        )));
    }
    Ok((pkid, codes))
}
