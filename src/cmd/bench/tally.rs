//! What one subscriber saw of each publisher: distinct messages, duplicates, reordering and
//! gaps, from the sequence numbers in the payload header.
//!
//! Memory is bounded per publisher heard: a window of the last `WINDOW` sequence numbers tells
//! a duplicate from a late arrival. A message older than the window cannot be told apart; it
//! is counted as reordered (and distinct), which can only make `lost` too small by the number
//! of such duplicates.

use std::collections::HashMap;

use super::payload::Header;

const WINDOW: u32 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

#[derive(Debug, Default)]
pub struct Tally {
    streams: HashMap<(u32, u32), Stream>,
    pub duplicates: u64,
    pub reordered: u64,
}

#[derive(Debug)]
struct Stream {
    first: u32,
    highest: u32,
    last: u32,
    distinct: u64,
    /// Bit k: sequence number `highest - k` has arrived.
    seen: [u64; WORDS],
}

impl Stream {
    fn new(seq: u32) -> Stream {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        Stream {
            first: seq,
            highest: seq,
            last: seq,
            distinct: 1,
            seen,
        }
    }

    /// Moves the window up by `by` sequence numbers.
    fn advance(&mut self, by: u32) {
        if by >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        let mut next = [0u64; WORDS];
        for (i, word) in next.iter_mut().enumerate().skip(words) {
            *word = self.seen[i - words] << bits;
            if bits > 0 && i > words {
                *word |= self.seen[i - words - 1] >> (64 - bits);
            }
        }
        self.seen = next;
    }

    /// Records `seq`; true if it had already arrived.
    fn see(&mut self, seq: u32) -> bool {
        if seq > self.highest {
            self.advance(seq - self.highest);
            self.highest = seq;
            self.seen[0] |= 1;
            self.distinct += 1;
            return false;
        }
        let back = self.highest - seq;
        if back < WINDOW {
            let (word, bit) = ((back / 64) as usize, back % 64);
            if self.seen[word] & (1 << bit) != 0 {
                return true;
            }
            self.seen[word] |= 1 << bit;
        }
        self.first = self.first.min(seq);
        self.distinct += 1;
        false
    }
}

impl Tally {
    pub fn see(&mut self, h: &Header) {
        let key = (h.run, h.publisher);
        let Some(stream) = self.streams.get_mut(&key) else {
            self.streams.insert(key, Stream::new(h.seq));
            return;
        };
        if stream.see(h.seq) {
            self.duplicates += 1;
            return;
        }
        // MQTT keeps one publisher's messages on one topic in order; a publisher with a topic
        // per message (%n) has no order to keep.
        if h.seq < stream.last && !h.per_message_topic {
            self.reordered += 1;
        }
        stream.last = stream.last.max(h.seq);
    }

    /// Messages missing between the first and the highest sequence number of each publisher.
    pub fn gaps(&self) -> u64 {
        self.streams
            .values()
            .map(|s| (u64::from(s.highest - s.first) + 1).saturating_sub(s.distinct))
            .sum()
    }

    /// Distinct messages from publisher `(run, publisher)`.
    pub fn distinct(&self, run: u32, publisher: u32) -> u64 {
        self.streams
            .get(&(run, publisher))
            .map_or(0, |s| s.distinct)
    }

    pub fn publishers(&self) -> usize {
        self.streams.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(publisher: u32, seq: u32) -> Header {
        Header {
            run: 1,
            publisher,
            seq,
            sched_ns: 0,
            per_message_topic: false,
        }
    }

    #[test]
    fn counts_gaps_duplicates_and_reordering() {
        let mut t = Tally::default();
        for seq in [0, 1, 2, 4, 3, 3, 7] {
            t.see(&h(1, seq));
        }
        for seq in 10..20 {
            t.see(&h(2, seq));
        }
        // Publisher 1: 5 and 6 missing; 3 came after 4 and then again.
        assert_eq!(t.gaps(), 2);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1);
        assert_eq!(t.distinct(1, 1), 6);
        assert_eq!(t.distinct(1, 2), 10);
        assert_eq!(t.publishers(), 2);
    }

    #[test]
    fn the_window_slides_over_word_boundaries() {
        let mut t = Tally::default();
        for seq in (0..5000).step_by(2) {
            t.see(&h(1, seq));
        }
        for seq in (1..5000).step_by(2).rev().take(300) {
            t.see(&h(1, seq));
        }
        // The last 300 odd numbers are inside the window: late, not duplicates.
        assert_eq!(t.duplicates, 0);
        for seq in (4400..5000).step_by(2) {
            t.see(&h(1, seq));
        }
        assert_eq!(t.duplicates, 300);
        // 0..=4999 is 5000 numbers; 2500 even and 300 odd ones arrived.
        assert_eq!(t.gaps(), 2200);
    }

    #[test]
    fn a_big_jump_clears_the_window() {
        let mut t = Tally::default();
        t.see(&h(1, 0));
        t.see(&h(1, 100_000));
        t.see(&h(1, 100_000));
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.gaps(), 99_999);
    }
}
