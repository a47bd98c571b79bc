//! A tree of topic levels (the bytes between `/`s), used twice: keyed by filter for the
//! subscriptions, keyed by topic for the retained store, as Mosquitto's subs.c and retain.c
//! are. What differs between the two is only the walk that finds what matches: a topic down
//! a tree of filters (`+` and `#` are children like any other level), or a filter down a tree
//! of topics (`+` takes every child, `#` the whole subtree). Either walk visits only branches
//! that can match, so a PUBLISH or a SUBSCRIBE costs what matches, not what exists.
//!
//! Levels are bytes, never assumed UTF-8. Every walk, insert, removal and drop is a loop over
//! an explicit stack rather than recursion: a 64 KiB topic can have 65,536 levels, deeper than
//! a worker thread's stack.

use std::collections::HashMap;
use std::collections::hash_map;

/// A node's value that holds nothing: a node with a vacant value and no children is removed.
pub trait Vacant {
    fn is_vacant(&self) -> bool;
}

impl<T> Vacant for Option<T> {
    fn is_vacant(&self) -> bool {
        self.is_none()
    }
}

pub struct Trie<V> {
    /// Zero levels: never a key (`""` is one empty level), so its value stays vacant.
    root: Node<V>,
}

struct Node<V> {
    children: Children<V>,
    value: V,
}

impl<V: Default> Default for Trie<V> {
    fn default() -> Self {
        Trie {
            root: Node::default(),
        }
    }
}

impl<V: Default> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: Children::Few(Vec::new()),
            value: V::default(),
        }
    }
}

impl<V> Drop for Node<V> {
    // The default drop recurses once per level; this one keeps the nodes still to drop on the
    // heap. Leaves (most nodes) are dropped at once and never stacked.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        self.children.drain_into(&mut stack);
        while let Some(mut n) = stack.pop() {
            n.children.drain_into(&mut stack);
        }
    }
}

/// A node's children: a short list searched in order while there are few of them (most nodes
/// have one or two, and a hash table of one costs a whole table), a hash table past that.
enum Children<V> {
    Few(Vec<(Box<[u8]>, Node<V>)>),
    // Boxed so that every node, wide or not, is 24 bytes here rather than a table's 48.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<Box<[u8]>, Node<V>>>),
}

/// The most children kept in a list; a table that shrinks to half this becomes a list again.
const FEW: usize = 8;

impl<V> Children<V> {
    fn len(&self) -> usize {
        match self {
            Children::Few(v) => v.len(),
            Children::Many(m) => m.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, level: &[u8]) -> Option<&Node<V>> {
        match self {
            Children::Few(v) => v.iter().find(|(k, _)| **k == *level).map(|(_, n)| n),
            Children::Many(m) => m.get(level),
        }
    }

    fn get_mut(&mut self, level: &[u8]) -> Option<&mut Node<V>> {
        match self {
            Children::Few(v) => v.iter_mut().find(|(k, _)| **k == *level).map(|(_, n)| n),
            Children::Many(m) => m.get_mut(level),
        }
    }

    /// Adds a child the caller knows is not there.
    fn insert(&mut self, level: &[u8], node: Node<V>) {
        match self {
            Children::Few(v) if v.len() < FEW => {
                if v.is_empty() {
                    // One child is the common case: room for just that one.
                    v.reserve_exact(1);
                }
                v.push((Box::from(level), node));
            }
            Children::Few(v) => {
                let mut m = HashMap::with_capacity(FEW * 2);
                m.extend(v.drain(..));
                m.insert(Box::from(level), node);
                *self = Children::Many(Box::new(m));
            }
            Children::Many(m) => {
                m.insert(Box::from(level), node);
            }
        }
    }

    /// Removes a child, giving back the memory its place took.
    fn remove(&mut self, level: &[u8]) -> Option<Node<V>> {
        match self {
            Children::Few(v) => {
                let i = v.iter().position(|(k, _)| **k == *level)?;
                let (_, node) = v.swap_remove(i);
                if v.is_empty() {
                    *v = Vec::new();
                }
                Some(node)
            }
            Children::Many(m) => {
                let node = m.remove(level)?;
                let (len, cap) = (m.len(), m.capacity());
                if len <= FEW / 2 {
                    *self = Children::Few(m.drain().collect());
                } else if len * 4 < cap {
                    // Amortised O(1): only once three quarters of the table are unused.
                    m.shrink_to(len * 2);
                }
                Some(node)
            }
        }
    }

    fn iter(&self) -> ChildIter<'_, V> {
        match self {
            Children::Few(v) => ChildIter::Few(v.iter()),
            Children::Many(m) => ChildIter::Many(m.iter()),
        }
    }

    /// Moves the children that have children of their own onto `stack`; drops the others.
    fn drain_into(&mut self, stack: &mut Vec<Node<V>>) {
        let inner = |n: &Node<V>| !n.children.is_empty();
        match self {
            Children::Few(v) => stack.extend(v.drain(..).map(|(_, n)| n).filter(inner)),
            Children::Many(m) => stack.extend(m.drain().map(|(_, n)| n).filter(inner)),
        }
    }
}

enum ChildIter<'a, V> {
    Few(std::slice::Iter<'a, (Box<[u8]>, Node<V>)>),
    Many(hash_map::Iter<'a, Box<[u8]>, Node<V>>),
}

impl<'a, V> Iterator for ChildIter<'a, V> {
    type Item = (&'a [u8], &'a Node<V>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ChildIter::Few(it) => it.next().map(|(k, n)| (&**k, n)),
            ChildIter::Many(it) => it.next().map(|(k, n)| (&**k, n)),
        }
    }
}

fn levels(key: &[u8]) -> std::slice::Split<'_, u8, impl FnMut(&u8) -> bool> {
    key.split(|&b| b == b'/')
}

/// The first level of `rest` and what follows it: None when it was the last level.
fn split_level(rest: &[u8]) -> (&[u8], Option<&[u8]>) {
    match rest.iter().position(|&b| b == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

/// [MQTT-4.7.2-1]: a wildcard in the first level does not match a topic starting with `$`.
fn hidden_from_wildcards(first: bool, level: &[u8]) -> bool {
    first && level.first() == Some(&b'$')
}

impl<V: Default + Vacant> Trie<V> {
    /// The value at exactly `key`, if its node exists.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let mut node = &self.root;
        for level in levels(key) {
            node = node.children.get(level)?;
        }
        Some(&node.value)
    }

    /// The value at exactly `key`, its node (and those above it) made if missing. A level
    /// that exists costs a lookup and no allocation. (Always `Some`: the Option only spares
    /// the borrow checker a lookup it cannot follow.)
    pub fn entry(&mut self, key: &[u8]) -> Option<&mut V> {
        let mut node = &mut self.root;
        for level in levels(key) {
            if node.children.get(level).is_none() {
                node.children.insert(level, Node::default());
            }
            node = node.children.get_mut(level)?;
        }
        Some(&mut node.value)
    }

    /// Applies `f` to the value at exactly `key` (None if there is no such node), then removes
    /// the nodes it left holding nothing, so the memory goes back.
    pub fn update<R>(&mut self, key: &[u8], f: impl FnOnce(&mut V) -> R) -> Option<R> {
        // The depth of the deepest node above the target that stays however the target ends:
        // the root, or one with a value or with another child.
        let mut keep = 0;
        let mut node = &mut self.root;
        for (depth, level) in levels(key).enumerate() {
            if !node.value.is_vacant() || node.children.len() > 1 {
                keep = depth;
            }
            node = node.children.get_mut(level)?;
        }
        let r = f(&mut node.value);
        if node.value.is_vacant() && node.children.is_empty() {
            let mut at = &mut self.root;
            let mut path = levels(key);
            for level in path.by_ref().take(keep) {
                at = at.children.get_mut(level)?;
            }
            if let Some(level) = path.next() {
                at.children.remove(level);
            }
        }
        Some(r)
    }

    /// Calls `f` with the value of every filter in the tree that `topic` matches (MQTT §4.7),
    /// each at most once.
    pub fn filters_matching<'a>(&'a self, topic: &[u8], mut f: impl FnMut(&'a V)) {
        let dollar = hidden_from_wildcards(true, topic);
        // (node, the topic levels still to match or None when all are, at the first level)
        let mut stack = vec![(&self.root, Some(topic), true)];
        while let Some((node, rest, first)) = stack.pop() {
            let wildcards = !(first && dollar);
            if wildcards {
                // `#` matches the rest, however many levels it has, none included: `a/#`
                // matches `a`.
                if let Some(hash) = node.children.get(b"#") {
                    f(&hash.value);
                }
            }
            let Some(rest) = rest else {
                f(&node.value);
                continue;
            };
            let (level, tail) = split_level(rest);
            // A `+` or `#` in a topic name is refused before it gets here; were one to come,
            // the wildcard branches below already cover it, and looking it up literally as
            // well would visit those filters twice.
            if level != b"+" && level != b"#" {
                if let Some(child) = node.children.get(level) {
                    stack.push((child, tail, false));
                }
            }
            if wildcards {
                if let Some(plus) = node.children.get(b"+") {
                    stack.push((plus, tail, false));
                }
            }
        }
    }

    /// Calls `f` with the value of every topic in the tree that `filter` matches (MQTT §4.7):
    /// an exact filter costs one lookup per level, `+` walks every child of its level, `#`
    /// the whole subtree.
    pub fn topics_matching<'a>(&'a self, filter: &[u8], mut f: impl FnMut(&'a V)) {
        let mut stack = vec![(&self.root, Some(filter), true)];
        while let Some((node, rest, first)) = stack.pop() {
            let Some(rest) = rest else {
                f(&node.value);
                continue;
            };
            let (level, tail) = split_level(rest);
            match level {
                b"#" => {
                    f(&node.value);
                    // Depth first, a children iterator per level below.
                    let mut below: Vec<ChildIter<'a, V>> = vec![node.children.iter()];
                    loop {
                        let depth = below.len();
                        let Some(it) = below.last_mut() else { break };
                        let Some((key, child)) = it.next() else {
                            below.pop();
                            continue;
                        };
                        if hidden_from_wildcards(first && depth == 1, key) {
                            continue;
                        }
                        f(&child.value);
                        if !child.children.is_empty() {
                            below.push(child.children.iter());
                        }
                    }
                }
                b"+" => {
                    for (key, child) in node.children.iter() {
                        if !hidden_from_wildcards(first, key) {
                            stack.push((child, tail, false));
                        }
                    }
                }
                _ => {
                    if let Some(child) = node.children.get(level) {
                        stack.push((child, tail, false));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
impl<V> Trie<V> {
    /// Every node, the root included: what pruning is measured by.
    pub fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(n) = stack.pop() {
            count += 1;
            stack.extend(n.children.iter().map(|(_, c)| c));
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic;

    /// Topics and filters from a small alphabet, so that random ones often match: `$`
    /// levels, empty levels, a non-UTF-8 byte and a non-ASCII letter among them; enough of
    /// them that a node's children outgrow a short list.
    const LEVELS: [&[u8]; 12] = [
        b"a",
        b"b",
        b"",
        b"$s",
        b"\xff",
        "é".as_bytes(),
        b"a$",
        b"c",
        b"d",
        b"e",
        b"f",
        b"g",
    ];

    fn random_topic(rng: &mut fastrand::Rng) -> Vec<u8> {
        let n = rng.usize(1..=4);
        let levels: Vec<&[u8]> = (0..n).map(|_| LEVELS[rng.usize(..LEVELS.len())]).collect();
        levels.join(&b'/')
    }

    fn random_filter(rng: &mut fastrand::Rng) -> String {
        let n = rng.usize(1..=4);
        let mut levels: Vec<String> = (0..n)
            .map(|_| match rng.u8(..10) {
                0..=2 => "+".to_owned(),
                // Valid UTF-8 levels only: a filter is a string.
                _ => String::from_utf8_lossy(LEVELS[rng.usize(..LEVELS.len())]).into_owned(),
            })
            .collect();
        if rng.bool() {
            levels.push("#".to_owned());
        }
        if levels.len() > 1 && rng.u8(..8) == 0 {
            levels.remove(0); // `#` alone sometimes, and filters that start with `#`
        }
        levels.join("/")
    }

    #[test]
    fn both_walks_agree_with_topic_matches() {
        let mut rng = fastrand::Rng::with_seed(12);
        for round in 0..200 {
            let filters: Vec<String> = (0..30).map(|_| random_filter(&mut rng)).collect();
            let topics: Vec<Vec<u8>> = (0..30).map(|_| random_topic(&mut rng)).collect();
            let mut by_filter: Trie<Option<usize>> = Trie::default();
            for (i, f) in filters.iter().enumerate() {
                *by_filter.entry(f.as_bytes()).unwrap() = Some(i);
            }
            let mut by_topic: Trie<Option<usize>> = Trie::default();
            for (i, t) in topics.iter().enumerate() {
                *by_topic.entry(t).unwrap() = Some(i);
            }
            // Later duplicates replaced earlier ones: the brute force keeps the last too.
            let last = |v: &[String], i: usize| v.iter().rposition(|x| *x == v[i]) == Some(i);
            for t in &topics {
                let mut got = Vec::new();
                by_filter.filters_matching(t, |v| got.extend(*v));
                got.sort();
                let want: Vec<usize> = (0..filters.len())
                    .filter(|&i| last(&filters, i) && topic::matches(&filters[i], t))
                    .collect();
                assert_eq!(
                    got,
                    want,
                    "round {round}: topic {:?}",
                    String::from_utf8_lossy(t)
                );
            }
            for f in &filters {
                let mut got = Vec::new();
                by_topic.topics_matching(f.as_bytes(), |v| got.extend(*v));
                got.sort();
                let want: Vec<usize> = (0..topics.len())
                    .filter(|&i| {
                        topics.iter().rposition(|x| *x == topics[i]) == Some(i)
                            && topic::matches(f, &topics[i])
                    })
                    .collect();
                assert_eq!(got, want, "round {round}: filter {f:?}");
            }
        }
    }

    #[test]
    fn the_mqtt_rules_hold() {
        let mut t: Trie<Option<&str>> = Trie::default();
        for f in ["a/#", "#", "+/x", "$SYS/#", "a//b", "/a", "+/+"] {
            *t.entry(f.as_bytes()).unwrap() = Some(f);
        }
        let hits = |topic: &str| {
            let mut v = Vec::new();
            t.filters_matching(topic.as_bytes(), |x| v.extend(*x));
            v.sort();
            v
        };
        assert_eq!(hits("a"), ["#", "a/#"]);
        assert_eq!(hits("$SYS/x"), ["$SYS/#"]);
        assert_eq!(hits("a//b"), ["#", "a/#", "a//b"]);
        assert_eq!(hits("/a"), ["#", "+/+", "/a"]);
        assert_eq!(hits("ü/x"), ["#", "+/+", "+/x"]);
    }

    #[test]
    fn removal_prunes_what_holds_nothing() {
        let mut t: Trie<Option<u8>> = Trie::default();
        *t.entry(b"a/b/c/d").unwrap() = Some(1);
        *t.entry(b"a/b").unwrap() = Some(2);
        *t.entry(b"a/x").unwrap() = Some(3);
        assert_eq!(t.node_count(), 6);
        assert_eq!(t.update(b"a/b/c/d", Option::take), Some(Some(1)));
        // c and d are gone; b stays for its own value.
        assert_eq!(t.node_count(), 4);
        assert_eq!(t.update(b"a/b", Option::take), Some(Some(2)));
        assert_eq!(t.update(b"a/x", Option::take), Some(Some(3)));
        assert_eq!(t.node_count(), 1);
        assert!(matches!(&t.root.children, Children::Few(v) if v.capacity() == 0));
        assert_eq!(
            t.update(b"a/x", Option::take),
            None,
            "no node, nothing done"
        );
        // A value-less update (an unsubscribe that found nothing) leaves no node behind either.
        *t.entry(b"k").unwrap() = Some(4);
        t.update(b"k", |_| ());
        assert_eq!(t.node_count(), 2);
    }

    #[test]
    fn wide_tables_shrink_as_they_empty() {
        let mut t: Trie<Option<u32>> = Trie::default();
        for i in 0..10_000u32 {
            *t.entry(format!("w/{i}").as_bytes()).unwrap() = Some(i);
        }
        let w = |t: &Trie<Option<u32>>| match t.root.children.get(b"w").map(|n| &n.children) {
            Some(Children::Many(m)) => m.capacity(),
            Some(Children::Few(v)) => v.capacity(),
            None => 0,
        };
        let full = w(&t);
        for i in 0..9_900u32 {
            t.update(format!("w/{i}").as_bytes(), Option::take);
        }
        assert!(w(&t) * 8 < full, "{} of {full}", w(&t));
        for i in 9_900..9_998u32 {
            t.update(format!("w/{i}").as_bytes(), Option::take);
        }
        assert!(
            matches!(&t.root.children.get(b"w").unwrap().children, Children::Few(v) if v.capacity() <= FEW / 2),
            "two left: a short list again"
        );
    }

    #[test]
    fn deep_topics_do_not_overflow_the_stack() {
        // 65,535 bytes: the most a topic can hold, nearly all of it levels. Run on a thread
        // with a small stack so a recursive walk or drop would fail here rather than pass by luck.
        let deep = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let topic = vec![b'/'; 65_534];
                let mut t: Trie<Option<u8>> = Trie::default();
                *t.entry(&topic).unwrap() = Some(1);
                let mut filter = topic.clone();
                filter.extend_from_slice(b"#");
                let mut n = 0;
                t.topics_matching(&filter, |v| n += usize::from(v.is_some()));
                t.topics_matching(b"#", |v| n += usize::from(v.is_some()));
                let mut subs: Trie<Option<u8>> = Trie::default();
                *subs.entry(&filter).unwrap() = Some(2);
                subs.filters_matching(&topic, |v| n += usize::from(v.is_some()));
                let mut copy: Trie<Option<u8>> = Trie::default();
                *copy.entry(&topic).unwrap() = Some(3);
                drop(copy);
                assert_eq!(t.update(&topic, Option::take), Some(Some(1)));
                assert_eq!(t.node_count(), 1);
                n
            })
            .unwrap();
        assert_eq!(deep.join().unwrap(), 3);
    }
}
