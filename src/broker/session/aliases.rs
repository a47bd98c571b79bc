//! Topic aliases this broker sets up with an MQTT 5 client (5.0 §3.3.2.3.4): a topic sent
//! again goes as a two-byte alias and an empty topic name. Aliases last as long as the
//! connection; the first topics sent get them, up to the client's Topic Alias Maximum and this
//! broker's own bounds, and later topics go in full.

use std::collections::HashMap;

use bytes::Bytes;

/// Aliases per connection, whatever larger maximum a client allows.
const MOST: u16 = 256;
/// Bytes of topic names remembered per connection.
const MOST_BYTES: usize = 16 * 1024;
/// Shorter topics are sent in full: the alias property itself takes 3 bytes.
const SHORTEST: usize = 6;

#[derive(Debug, Default)]
pub(super) struct Aliases {
    max: u16,
    bytes: usize,
    by_topic: HashMap<Bytes, u16>,
}

/// How a topic goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alias {
    /// The client knows this alias: an empty topic name and the alias.
    Known(u16),
    /// The topic name and this alias, which the client learns from it (then `set`).
    New(u16),
}

impl Aliases {
    /// For a client whose CONNECT said Topic Alias Maximum `client_max` (0: none).
    pub(super) fn new(client_max: u16) -> Aliases {
        Aliases {
            max: client_max.min(MOST),
            ..Aliases::default()
        }
    }

    pub(super) fn lookup(&self, topic: &Bytes) -> Option<Alias> {
        if self.max == 0 || topic.len() < SHORTEST {
            return None;
        }
        if let Some(&n) = self.by_topic.get(topic) {
            return Some(Alias::Known(n));
        }
        let next = u16::try_from(self.by_topic.len() + 1).ok()?;
        (next <= self.max && self.bytes + topic.len() <= MOST_BYTES).then_some(Alias::New(next))
    }

    /// The client was sent `topic` with alias `n` (a `New` from `lookup`).
    pub(super) fn set(&mut self, topic: &Bytes, n: u16) {
        // Its own copy: a delivered topic is a slice of the publisher's whole packet.
        if self
            .by_topic
            .insert(Bytes::copy_from_slice(topic), n)
            .is_none()
        {
            self.bytes += topic.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_get_aliases_in_turn_up_to_the_clients_maximum() {
        let mut a = Aliases::new(2);
        let (x, y, z) = (
            Bytes::from("sensor-logger/d1/accelerometer"),
            Bytes::from("sensor-logger/d1/gyroscope"),
            Bytes::from("sensor-logger/d1/gravity"),
        );
        assert_eq!(a.lookup(&x), Some(Alias::New(1)));
        a.set(&x, 1);
        assert_eq!(a.lookup(&x), Some(Alias::Known(1)));
        assert_eq!(a.lookup(&y), Some(Alias::New(2)));
        a.set(&y, 2);
        // The client's maximum is reached: the rest go in full.
        assert_eq!(a.lookup(&z), None);
        assert_eq!(a.lookup(&y), Some(Alias::Known(2)));
    }

    #[test]
    fn no_alias_without_the_clients_consent_or_for_short_topics() {
        assert_eq!(Aliases::new(0).lookup(&Bytes::from("a/long/topic")), None);
        assert_eq!(Aliases::new(10).lookup(&Bytes::from("a/b")), None);
    }

    #[test]
    fn remembered_topics_are_bounded_in_bytes() {
        let mut a = Aliases::new(u16::MAX);
        let long = |i: usize| Bytes::from(format!("{i:0>4}/{}", "x".repeat(4000)));
        for i in 0..4 {
            let Some(Alias::New(n)) = a.lookup(&long(i)) else {
                panic!("topic {i} got no alias");
            };
            a.set(&long(i), n);
        }
        assert_eq!(a.lookup(&long(4)), None);
        assert!(a.bytes <= MOST_BYTES);
    }
}
