//! Output on its way to a client (or a bridge's remote), staged behind the log: what acknowledges a message
//! goes out only once the message is on disk.

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::broker::persist::Store;

/// Output on its way to the client: `ready` is written as the socket takes it; each `held`
/// segment waits, in order, for the log position that makes what it acknowledges durable.
#[derive(Default)]
pub(in crate::broker) struct Out {
    pub(in crate::broker) ready: BytesMut,
    pub(in crate::broker) held: VecDeque<(u64, BytesMut)>,
}

impl Out {
    pub(in crate::broker) fn len(&self) -> usize {
        self.ready.len() + self.held.iter().map(|h| h.1.len()).sum::<usize>()
    }

    /// Takes what was just encoded: held until the log reaches `pos` (0: no need), and in
    /// any case behind what is held already.
    pub(in crate::broker) fn stage(&mut self, fresh: &mut BytesMut, pos: u64) {
        if fresh.is_empty() {
            return;
        }
        let pos = self.held.back().map_or(pos, |h| h.0.max(pos));
        if pos > 0 {
            self.held.push_back((pos, fresh.split()));
        } else if self.ready.is_empty() {
            std::mem::swap(&mut self.ready, fresh);
        } else {
            self.ready.extend_from_slice(fresh);
            fresh.clear();
        }
    }

    /// Once everything is written, gives back both buffers (`ready`, and `wbuf`, which it
    /// swaps with): an idle connection holds no output buffer at all, and the next packet
    /// allocates one of the size it needs.
    pub(in crate::broker) fn trim(&mut self, wbuf: &mut BytesMut) {
        let drained = self.ready.is_empty() && self.held.is_empty() && wbuf.is_empty();
        if drained && (self.ready.capacity() > 0 || wbuf.capacity() > 0) {
            self.ready = BytesMut::new();
            *wbuf = BytesMut::new();
        }
    }

    /// Lets go of the segments the log now covers.
    pub(in crate::broker) fn release(&mut self, durable: u64) {
        while let Some((pos, seg)) = self.held.pop_front() {
            if pos > durable {
                self.held.push_front((pos, seg));
                break;
            }
            self.ready.extend_from_slice(&seg);
        }
    }
}

/// Waits for the log to reach `pos`.
pub(in crate::broker) async fn synced(store: Option<&Store>, pos: Option<u64>) {
    if let (Some(s), Some(pos)) = (store, pos) {
        s.synced(pos).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> BytesMut {
        BytesMut::from(s.as_bytes())
    }

    #[test]
    fn output_waits_for_the_log_in_order() {
        let mut out = Out::default();
        let mut fresh = bytes("a");
        out.stage(&mut fresh, 0);
        assert_eq!((&out.ready[..], fresh.is_empty()), (&b"a"[..], true));
        // Held until position 5 is on disk; what follows waits behind it, even with no
        // position of its own.
        out.stage(&mut bytes("b"), 5);
        out.stage(&mut bytes("c"), 0);
        out.stage(&mut bytes("d"), 3);
        assert_eq!(out.len(), 4);
        out.release(4);
        assert_eq!(&out.ready[..], b"a");
        out.release(5);
        assert_eq!(&out.ready[..], b"abcd");
        assert!(out.held.is_empty());
    }

    #[test]
    fn buffers_are_given_back_once_drained() {
        let mut out = Out::default();
        let mut wbuf = BytesMut::from(&vec![0u8; 128 * 1024][..]);
        out.stage(&mut wbuf, 0);
        out.trim(&mut wbuf);
        assert!(out.ready.capacity() >= 128 * 1024, "not yet written");
        out.ready.clear();
        out.trim(&mut wbuf);
        assert_eq!((out.ready.capacity(), wbuf.capacity()), (0, 0));
        // A small CONNACK's buffers too: idle connections hold none.
        let mut wbuf = BytesMut::with_capacity(256);
        wbuf.extend_from_slice(b"ack");
        out.stage(&mut wbuf, 0);
        out.ready.clear();
        out.trim(&mut wbuf);
        assert_eq!((out.ready.capacity(), wbuf.capacity()), (0, 0));
    }
}
