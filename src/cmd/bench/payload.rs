//! The first 24 bytes of every bench payload: who sent it, its sequence number and when it was
//! scheduled to go out, so a subscriber in another process can count loss, duplicates and
//! reordering per publisher and measure latency. The rest of the payload is zeros.
//!
//! ```text
//! 0..3   "smq"
//! 3      flags: bit 0 = each message has its own topic (%n), so order is not checked
//! 4..8   run id (random per `smq bench` process), big-endian
//! 8..12  publisher index
//! 12..16 sequence number, from 0
//! 16..24 scheduled send time, nanoseconds since the Unix epoch
//! ```

use bytes::{BufMut, Bytes, BytesMut};

pub const HEADER: usize = 24;
const MAGIC: &[u8; 3] = b"smq";
const PER_MESSAGE_TOPIC: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub run: u32,
    pub publisher: u32,
    pub seq: u32,
    pub sched_ns: u64,
    pub per_message_topic: bool,
}

impl Header {
    /// The whole payload: this header, then zeros up to `size` (at least `HEADER`).
    pub fn payload(&self, size: usize) -> Bytes {
        let mut buf = BytesMut::with_capacity(size.max(HEADER));
        buf.put_slice(MAGIC);
        buf.put_u8(if self.per_message_topic {
            PER_MESSAGE_TOPIC
        } else {
            0
        });
        buf.put_u32(self.run);
        buf.put_u32(self.publisher);
        buf.put_u32(self.seq);
        buf.put_u64(self.sched_ns);
        buf.put_bytes(0, size.saturating_sub(HEADER));
        buf.freeze()
    }

    /// The header of a bench payload; None for anything else.
    pub fn read(payload: &[u8]) -> Option<Header> {
        let head = payload.get(..HEADER)?;
        if &head[..3] != MAGIC {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let mut time = [0u8; 8];
        time.copy_from_slice(&head[16..24]);
        Some(Header {
            per_message_topic: head[3] & PER_MESSAGE_TOPIC != 0,
            run: u32_at(4),
            publisher: u32_at(8),
            seq: u32_at(12),
            sched_ns: u64::from_be_bytes(time),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let h = Header {
            run: 0xDEAD_BEEF,
            publisher: 7,
            seq: 123_456,
            sched_ns: 1_700_000_000_123_456_789,
            per_message_topic: true,
        };
        let p = h.payload(100);
        assert_eq!(p.len(), 100);
        assert!(p[HEADER..].iter().all(|&b| b == 0));
        assert_eq!(Header::read(&p), Some(h));
        assert_eq!(h.payload(HEADER).len(), HEADER);
    }

    #[test]
    fn other_payloads_are_not_headers() {
        assert_eq!(Header::read(b"hello"), None);
        assert_eq!(Header::read(&[b'x'; 40]), None);
    }
}
