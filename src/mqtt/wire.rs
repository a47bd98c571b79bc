//! The wire's building blocks, once for every packet: the bounds-checked reader, the
//! Variable Byte Integer, UTF-8 strings, the fixed header (framing) and their encoders.

use bytes::{BufMut, BytesMut};

use super::violation::Violation;

/// MQTT's largest Remaining Length (four varint bytes).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
/// The largest packet MQTT can express: a fixed header of 5 bytes and the largest remaining length.
pub const MAX_PACKET: usize = MAX_REMAINING_LENGTH + 5;

/// A bounds-checked cursor over one packet's bytes; every read fails cleanly at the end.
pub(super) struct Reader<'a> {
    pub(super) b: &'a [u8],
    /// The packet's name, for error messages.
    pub(super) pkt: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn new(b: &'a [u8], pkt: &'static str) -> Reader<'a> {
        Reader { b, pkt }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.b.len()
    }

    fn short(&self) -> Violation {
        Violation::malformed(format!("{} ends early", self.pkt))
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Violation> {
        if n > self.b.len() {
            return Err(self.short());
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, Violation> {
        let (&b, tail) = self.b.split_first().ok_or_else(|| self.short())?;
        self.b = tail;
        Ok(b)
    }

    pub(super) fn u16(&mut self) -> Result<u16, Violation> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self) -> Result<u32, Violation> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Variable Byte Integer (§1.5.5 in 5.0): at most 4 bytes.
    pub(super) fn varint(&mut self) -> Result<u32, Violation> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Violation::malformed(format!(
            "{}: variable byte integer longer than 4 bytes",
            self.pkt
        )))
    }

    /// Binary Data: a 2-byte length, then that many bytes.
    pub(super) fn binary(&mut self) -> Result<&'a [u8], Violation> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A UTF-8 Encoded String: well-formed UTF-8 (which excludes the surrogates U+D800..U+DFFF)
    /// [MQTT-1.5.3-1] (5.0: MQTT-1.5.4-1) and no U+0000 [MQTT-1.5.3-2] (5.0: MQTT-1.5.4-2).
    /// A byte-order mark is kept as it is [MQTT-1.5.3-3].
    pub(super) fn string(&mut self) -> Result<&'a str, Violation> {
        let b = self.binary()?;
        utf8_string(b).map_err(|why| Violation::malformed(format!("{}: {why}", self.pkt)))
    }

    /// The next `n` bytes as their own reader (a property list, say).
    pub(super) fn sub(&mut self, n: usize) -> Result<Reader<'a>, Violation> {
        Ok(Reader::new(self.take(n)?, self.pkt))
    }

    /// Fails unless everything has been read: trailing bytes mean the lengths disagree.
    pub(super) fn end(&self) -> Result<(), Violation> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(Violation::malformed(format!(
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
pub fn frame(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, Violation> {
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
                    super::reason::ReasonCode::PacketTooLarge,
                    format!("a {size}-byte packet, larger than the {max} bytes allowed"),
                ));
            }
            return Ok(Some((header, size)));
        }
    }
    Err(Violation::malformed("remaining length longer than 4 bytes"))
}

/// The whole packet at the front of `buf`, or None (having reserved room for more of it) until
/// it is all there.
pub(super) fn whole_packet(
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<(usize, usize)>, Violation> {
    let Some((header, size)) = frame(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < size {
        // Room for the rest, but at most RESERVE_STEP at a time: a peer announcing a huge
        // packet gets memory only as its bytes arrive (the buffer still grows by doubling).
        buf.reserve((size - buf.len()).min(RESERVE_STEP));
        return Ok(None);
    }
    Ok(Some((header, size)))
}

const RESERVE_STEP: usize = 64 * 1024;

/// Whether `buf` starts with a whole packet, i.e. decoding will not wait for the network.
pub fn has_whole_packet(buf: &[u8]) -> bool {
    matches!(frame(buf, usize::MAX), Ok(Some((_, size))) if buf.len() >= size)
}

/// The size of a whole packet with this remaining length.
pub fn packet_size(remaining: usize) -> usize {
    1 + varint_len(remaining) + remaining
}

pub(super) fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

pub(super) fn put_varint(buf: &mut BytesMut, mut n: usize) {
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
pub(super) fn put_str(buf: &mut BytesMut, s: &str) {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    buf.put_u16(end as u16);
    buf.put_slice(&s.as_bytes()[..end]);
}

/// Binary Data (or a string already known to fit): the caller has checked the length.
pub(super) fn put_binary(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

pub(super) fn put_packet(buf: &mut BytesMut, byte1: u8, body: &[u8]) {
    buf.reserve(5 + body.len());
    buf.put_u8(byte1);
    put_varint(buf, body.len());
    buf.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_what_is_written() {
        for n in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MAX_REMAINING_LENGTH,
        ] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, n);
            assert_eq!(buf.len(), varint_len(n), "{n}");
            let mut r = Reader::new(&buf, "test");
            assert_eq!(r.varint().unwrap() as usize, n);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn framing_and_whole_packets() {
        assert!(!has_whole_packet(&[0x40, 2, 0]));
        assert!(has_whole_packet(&[0x40, 2, 0, 1]));
        assert!(!has_whole_packet(&[0x40]));
        assert!(!has_whole_packet(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert_eq!(packet_size(0), 2);
        assert_eq!(packet_size(128), 131);
        let v = frame(&[0x30, 0x80, 0x01], 100).unwrap_err();
        assert_eq!(v.code, super::super::reason::ReasonCode::PacketTooLarge);
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let mut buf = BytesMut::new();
        put_str(&mut buf, &"é".repeat(40_000));
        assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), 65534);
    }
}
