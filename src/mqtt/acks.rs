//! PUBACK, PUBREC, PUBREL and PUBCOMP (3.1.1 §3.4-3.7, 5.0 §3.4-3.7): the QoS 1 and 2 flows'
//! acknowledgements, the same in both directions.

use bytes::{BufMut, BytesMut};

use super::props;
use super::reason::{PubAckCode, PubRelCode};
use super::violation::Violation;
use super::wire::Reader;

/// A packet id; in 5.0 optionally a reason code (`T` and `in_spec` say which the packet may
/// carry), then optionally properties. 3.1.1 allows exactly the packet id.
pub(super) fn parse<T: TryFrom<u8> + Copy>(
    v5: bool,
    pkt: &'static str,
    body: &[u8],
    success: T,
    in_spec: fn(T) -> bool,
) -> Result<(u16, T), Violation> {
    let mut r = Reader::new(body, pkt);
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(Violation::protocol(format!(
            "{pkt} with packet identifier 0, which no PUBLISH can have [MQTT-2.3.1-1]"
        )));
    }
    let mut code = success;
    if v5 && !r.is_empty() {
        let b = r.u8()?;
        code = T::try_from(b).ok().filter(|&c| in_spec(c)).ok_or_else(|| {
            Violation::protocol(format!(
                "{pkt} with reason code {b:#04x}, not one defined for it"
            ))
        })?;
        if !r.is_empty() {
            props::read(&mut r, props::ACK, |_, _| Ok(()))?;
        }
    }
    r.end()?;
    Ok((pkid, code))
}

/// Success is the short form both versions read; any other code is v5's reason code
/// (3.1.1 callers always pass success).
fn encode(byte1: u8, pkid: u16, code: u8, buf: &mut BytesMut) {
    let [hi, lo] = pkid.to_be_bytes();
    if code == 0 {
        buf.put_slice(&[byte1, 2, hi, lo]);
    } else {
        // The property length may be omitted when there are none (5.0 §3.4.2.2).
        buf.put_slice(&[byte1, 3, hi, lo, code]);
    }
}

pub fn encode_puback(pkid: u16, code: PubAckCode, buf: &mut BytesMut) {
    encode(0x40, pkid, code.number(), buf);
}

pub fn encode_pubrec(pkid: u16, code: PubAckCode, buf: &mut BytesMut) {
    encode(0x50, pkid, code.number(), buf);
}

/// PUBREL's reserved flags are 0010 [MQTT-3.6.1-1].
pub fn encode_pubrel(pkid: u16, code: PubRelCode, buf: &mut BytesMut) {
    encode(0x62, pkid, code.number(), buf);
}

pub fn encode_pubcomp(pkid: u16, code: PubRelCode, buf: &mut BytesMut) {
    encode(0x70, pkid, code.number(), buf);
}
