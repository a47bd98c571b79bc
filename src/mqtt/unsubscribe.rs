//! UNSUBSCRIBE and UNSUBACK (3.1.1 §3.10-3.11, 5.0 §3.10-3.11).

use bytes::{BufMut, BytesMut};

use super::props;
use super::protocol::Protocol;
use super::reason::UnsubAckCode;
use super::subscribe::sub_ack;
use super::violation::Violation;
use super::wire::{Reader, put_packet, put_str, put_varint};

/// An UNSUBSCRIBE's body: (packet id, filters).
pub(super) fn parse(v5: bool, body: &[u8]) -> Result<(u16, Vec<String>), Violation> {
    let mut r = Reader::new(body, "UNSUBSCRIBE");
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(Violation::protocol(
            "UNSUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]",
        ));
    }
    if v5 {
        props::read(&mut r, props::UNSUBSCRIBE, |_, _| Ok(()))?;
    }
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?.to_owned()); // [MQTT-3.10.3-1]
    }
    if filters.is_empty() {
        return Err(Violation::protocol(
            "UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]",
        ));
    }
    Ok((pkid, filters))
}

/// Encodes an UNSUBSCRIBE; in 5.0 with user properties if given.
pub fn encode_unsubscribe(
    proto: Protocol,
    pkid: u16,
    filters: &[String],
    user_properties: &[(String, String)],
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    let mut strings: Vec<&[u8]> = filters.iter().map(|f| f.as_bytes()).collect();
    for (k, v) in user_properties {
        strings.extend([k.as_bytes(), v.as_bytes()]);
    }
    if let Some(n) = props::too_long(&strings) {
        anyhow::bail!("cannot encode UNSUBSCRIBE: a {n}-byte string, longer than MQTT allows");
    }
    let mut body = BytesMut::new();
    body.put_u16(pkid);
    if proto == Protocol::V5 {
        put_varint(&mut body, props::user_properties_len(user_properties));
        props::write_user_properties(&mut body, user_properties);
    }
    for f in filters {
        put_str(&mut body, f);
    }
    if body.len() > super::wire::MAX_REMAINING_LENGTH {
        anyhow::bail!("cannot encode UNSUBSCRIBE: larger than MQTT can express");
    }
    put_packet(buf, 0xA2, &body);
    Ok(())
}

/// UNSUBACK: 3.1.1 has only the packet id; 5.0 one reason code per filter.
pub fn encode_unsuback(proto: Protocol, pkid: u16, codes: &[UnsubAckCode], buf: &mut BytesMut) {
    if proto == Protocol::V311 {
        buf.put_u8(0xB0);
        buf.put_u8(2);
        buf.put_u16(pkid);
        return;
    }
    let bytes: Vec<u8> = codes.iter().map(|c| c.number()).collect();
    sub_ack(0xB0, proto, pkid, &bytes, buf);
}
