//! Topic aliases this broker sets up with an MQTT 5 client (5.0 §3.3.2.3.4): a topic sent
//! again goes as a two-byte alias and an empty topic name. Aliases last as long as the
//! connection; the first topics sent get them, up to the client's Topic Alias Maximum and this
//! broker's own bounds, and later topics go in full. The aliases the client sets up with us
//! (up to our `TOPIC_ALIAS_MAX`) are kept here too.

use std::collections::HashMap;

use bytes::Bytes;

/// Aliases per connection, whatever larger maximum a client allows.
const MOST: u16 = 256;
/// Bytes of topic names remembered per connection.
const MOST_BYTES: usize = 16 * 1024;
/// Shorter topics are sent in full: the alias property itself takes 3 bytes.
const SHORTEST: usize = 6;

/// Both directions' aliases of one connection. The tables are boxed and made on first use:
/// most connections never use an alias, and every idle connection holds this for its life.
#[derive(Debug, Default)]
pub(super) struct Aliases {
    max: u16,
    tables: Option<Box<Tables>>,
}

#[derive(Debug, Default)]
struct Tables {
    /// Bytes of topic names in `by_topic`.
    bytes: usize,
    by_topic: HashMap<Bytes, u16>,
    /// The client's aliases for the topics it sends us.
    incoming: HashMap<u16, Bytes>,
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
        let (used, bytes) = match &self.tables {
            Some(t) => {
                if let Some(&n) = t.by_topic.get(topic) {
                    return Some(Alias::Known(n));
                }
                (t.by_topic.len(), t.bytes)
            }
            None => (0, 0),
        };
        let next = u16::try_from(used + 1).ok()?;
        (next <= self.max && bytes + topic.len() <= MOST_BYTES).then_some(Alias::New(next))
    }

    /// The client was sent `topic` with alias `n` (a `New` from `lookup`).
    pub(super) fn set(&mut self, topic: &Bytes, n: u16) {
        let t = self.tables();
        // Its own copy: a delivered topic is a slice of the publisher's whole packet.
        if t.by_topic
            .insert(Bytes::copy_from_slice(topic), n)
            .is_none()
        {
            t.bytes += topic.len();
        }
    }

    /// The topic the client set up alias `n` for.
    pub(super) fn incoming(&self, n: u16) -> Option<&Bytes> {
        self.tables.as_ref()?.incoming.get(&n)
    }

    /// The client sent `topic` with alias `n`: the alias means it from now on.
    pub(super) fn learn(&mut self, n: u16, topic: Bytes) {
        self.tables().incoming.insert(n, topic);
    }

    fn tables(&mut self) -> &mut Tables {
        self.tables.get_or_insert_default()
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
        assert!(a.tables.as_ref().is_some_and(|t| t.bytes <= MOST_BYTES));
    }

    #[test]
    fn the_clients_aliases_are_kept_apart_from_ours() {
        let mut a = Aliases::new(10);
        assert_eq!(a.incoming(1), None);
        assert!(
            a.tables.is_none(),
            "nothing allocated before an alias is used"
        );
        a.learn(1, Bytes::from("phone/accelerometer"));
        assert_eq!(a.incoming(1), Some(&Bytes::from("phone/accelerometer")));
        // The client's alias 1 is not ours: our first alias is still to be given.
        assert_eq!(
            a.lookup(&Bytes::from("phone/gyroscope")),
            Some(Alias::New(1))
        );
    }
}
