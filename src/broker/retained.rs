//! The retained store: the last retained message of each topic, in a tree of topic levels,
//! so that a SUBSCRIBE finds its retained messages by walking the branches its filter can
//! match (one lookup per level for an exact filter) rather than testing every topic.

use std::sync::Arc;

use super::state::Published;
use super::trie::Trie;

#[derive(Default)]
pub struct Retained {
    trie: Trie<Option<Arc<Published>>>,
    len: usize,
}

impl Retained {
    /// Stores `msg` as its topic's retained message, replacing the one before.
    pub fn insert(&mut self, msg: Arc<Published>) {
        if let Some(slot) = self.trie.entry(&msg.topic) {
            if slot.replace(msg).is_none() {
                self.len += 1;
            }
        }
    }

    /// Clears a topic's retained message; returns it, if there was one.
    pub fn remove(&mut self, topic: &[u8]) -> Option<Arc<Published>> {
        let old = self.trie.update(topic, Option::take).flatten()?;
        self.len -= 1;
        Some(old)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The unexpired retained messages that a (non-shared) filter matches.
    pub fn matching(&self, filter: &str) -> Vec<Arc<Published>> {
        let mut found = Vec::new();
        self.trie.topics_matching(filter.as_bytes(), |m| {
            found.extend(m.as_ref().filter(|m| !m.expired()).cloned());
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::PublishProperties;
    use bytes::Bytes;
    use std::time::{Duration, Instant};

    fn msg(topic: &[u8], expiry: Option<u32>, age: u64) -> Arc<Published> {
        Arc::new(Published {
            topic: Bytes::copy_from_slice(topic),
            payload: Bytes::from_static(b"x"),
            qos: 0,
            retain: true,
            props: expiry.map(|e| PublishProperties {
                message_expiry_interval: Some(e),
                ..PublishProperties::default()
            }),
            received: Instant::now()
                .checked_sub(Duration::from_secs(age))
                .unwrap_or_else(Instant::now),
            from: None,
        })
    }

    fn topics(r: &Retained, filter: &str) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = r
            .matching(filter)
            .iter()
            .map(|m| m.topic.to_vec())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn counts_replaces_clears_and_skips_expired() {
        let mut r = Retained::default();
        r.insert(msg(b"a/b", None, 0));
        r.insert(msg(b"a/b", None, 0));
        r.insert(msg(b"a", None, 0));
        r.insert(msg("a/ü/\u{1F600}".as_bytes(), None, 0));
        r.insert(msg(b"$SYS/up", None, 0));
        r.insert(msg(b"a/old", Some(5), 10));
        assert_eq!(r.len(), 5);
        assert_eq!(
            topics(&r, "a/#").len(),
            3,
            "a, a/b and the non-ASCII one; not the expired"
        );
        assert_eq!(topics(&r, "#").len(), 3, "no $SYS for #");
        assert_eq!(topics(&r, "$SYS/+"), [b"$SYS/up".to_vec()]);
        assert_eq!(topics(&r, "a/ü/+"), ["a/ü/\u{1F600}".as_bytes().to_vec()]);
        assert!(r.remove(b"a/b").is_some());
        assert!(r.remove(b"a/b").is_none());
        assert!(r.remove(b"nothing/here").is_none());
        assert_eq!(r.len(), 4);
        assert_eq!(topics(&r, "a/b"), Vec::<Vec<u8>>::new());
    }
}
