//! Who subscribed to what: a tree of filter levels holding each filter's subscribers and its
//! `$share` groups, and per client the filters it holds. A PUBLISH walks only the branches
//! its topic can match; a client's own subscriptions are found from its entry, never by
//! scanning everyone's.
//!
//! Each client with a subscription has a slot, a small integer its subscribers carry: the
//! slot holds the client's mailbox once for all its subscriptions, and while a message is
//! routed, where the client's delivery is, so overlapping subscriptions merge into one
//! delivery in O(1) each rather than by searching the deliveries found so far.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::state::{Mailbox, SubOptions};
use super::trie::Trie;
use crate::topic::shared_parts;

#[derive(Default)]
pub struct Subscriptions {
    /// Boxed: most nodes are levels on the way to a filter and hold no subscriber.
    trie: Trie<Option<Box<Subscribers>>>,
    clients: Clients,
    /// Bumped for every message routed, so a slot's mark from an earlier one is stale.
    epoch: u64,
}

/// One delivery a message owes: once per session, at the highest QoS its matching
/// subscriptions granted, with all their subscription identifiers.
pub struct Target<'a> {
    pub mailbox: &'a Mailbox,
    pub opts: SubOptions,
    pub sub_ids: Vec<u32>,
}

/// What one filter holds.
#[derive(Default)]
struct Subscribers {
    plain: Vec<Subscriber>,
    groups: Vec<Group>,
}

struct Subscriber {
    slot: usize,
    opts: SubOptions,
}

/// `$share/{name}/{filter}`: each message goes to one member, round robin.
struct Group {
    name: Box<str>,
    members: Vec<Subscriber>,
    /// Where the round robin goes on; a Cell because matching reads the tree shared.
    next: Cell<usize>,
}

#[derive(Default)]
struct Clients {
    slot_of: HashMap<Arc<str>, usize>,
    /// None: free, and on the free list. Boxed, so a slot left free after a crowd of clients
    /// has gone costs a pointer, not a client.
    slots: Vec<Option<Box<Client>>>,
    free: Vec<usize>,
}

struct Client {
    mailbox: Mailbox,
    /// Every filter the client holds, as it subscribed (`$share/…` included).
    filters: HashSet<Box<str>>,
    /// The epoch of the last message that found this client, and its delivery's index then.
    seen: Cell<u64>,
    target: Cell<usize>,
}

impl Clients {
    /// The client's slot, made if it has none; the mailbox replaces the one it had.
    fn slot_for(&mut self, mailbox: &Mailbox) -> usize {
        if let Some(&slot) = self.slot_of.get(&mailbox.client_id) {
            if let Some(Some(c)) = self.slots.get_mut(slot) {
                c.mailbox = mailbox.clone();
                return slot;
            }
        }
        let client = Box::new(Client {
            mailbox: mailbox.clone(),
            filters: HashSet::new(),
            seen: Cell::new(0),
            target: Cell::new(0),
        });
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(client);
                slot
            }
            None => {
                self.slots.push(Some(client));
                self.slots.len() - 1
            }
        };
        self.slot_of.insert(mailbox.client_id.clone(), slot);
        slot
    }

    fn get(&self, client_id: &str) -> Option<(usize, &Client)> {
        let slot = *self.slot_of.get(client_id)?;
        Some((slot, self.slots.get(slot)?.as_deref()?))
    }

    fn get_mut(&mut self, client_id: &str) -> Option<(usize, &mut Client)> {
        let slot = *self.slot_of.get(client_id)?;
        Some((slot, self.slots.get_mut(slot)?.as_deref_mut()?))
    }

    /// Frees a client's slot, and with it the mailbox it held.
    fn release(&mut self, client_id: &str) -> Option<(usize, Box<Client>)> {
        let slot = self.slot_of.remove(client_id)?;
        let client = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some((slot, client))
    }
}

impl Subscriptions {
    /// Adds or replaces one subscription; returns whether it existed before.
    pub fn subscribe(&mut self, filter: &str, mailbox: &Mailbox, opts: SubOptions) -> bool {
        let (key, group) = key_of(filter);
        let Some(subs) = self.trie.entry(key.as_bytes()) else {
            return false;
        };
        let subs = subs.get_or_insert_with(Box::default);
        let slot = self.clients.slot_for(mailbox);
        let list = match group {
            None => &mut subs.plain,
            Some(name) => {
                let i = match subs.groups.iter().position(|g| &*g.name == name) {
                    Some(i) => i,
                    None => {
                        subs.groups.push(Group {
                            name: name.into(),
                            members: Vec::new(),
                            next: Cell::new(0),
                        });
                        subs.groups.len() - 1
                    }
                };
                &mut subs.groups[i].members
            }
        };
        let existed = match list.iter_mut().find(|s| s.slot == slot) {
            Some(s) => {
                s.opts = opts;
                true
            }
            None => {
                if list.is_empty() {
                    // Most filters have one subscriber: room for just that one.
                    list.reserve_exact(1);
                }
                list.push(Subscriber { slot, opts });
                false
            }
        };
        if let Some(Some(c)) = self.clients.slots.get_mut(slot) {
            c.filters.insert(filter.into());
        }
        existed
    }

    /// Removes one subscription; returns whether it existed.
    pub fn unsubscribe(&mut self, filter: &str, client_id: &str) -> bool {
        let Some((slot, client)) = self.clients.get_mut(client_id) else {
            return false;
        };
        if !client.filters.remove(filter) {
            return false;
        }
        if client.filters.is_empty() {
            self.clients.release(client_id);
        }
        self.remove_subscriber(filter, slot)
    }

    /// Every client's subscriptions, counted: for `$SYS` and `/metrics`, not per message.
    pub fn count(&self) -> usize {
        self.clients
            .slots
            .iter()
            .flatten()
            .map(|c| c.filters.len())
            .sum()
    }

    /// Every subscription of a client, found from its own list of filters.
    pub fn remove_client(&mut self, client_id: &str) {
        if let Some((slot, client)) = self.clients.release(client_id) {
            for filter in &client.filters {
                self.remove_subscriber(filter, slot);
            }
        }
    }

    /// Every subscription of a client, as it subscribed.
    pub fn of(&self, client_id: &str) -> Vec<(String, SubOptions)> {
        let Some((slot, client)) = self.clients.get(client_id) else {
            return Vec::new();
        };
        let opts_of = |filter: &str| {
            let (key, group) = key_of(filter);
            let subs = self.trie.get(key.as_bytes())?.as_deref()?;
            let list = match group {
                None => &subs.plain,
                Some(name) => &subs.groups.iter().find(|g| &*g.name == name)?.members,
            };
            Some(list.iter().find(|s| s.slot == slot)?.opts)
        };
        client
            .filters
            .iter()
            .filter_map(|f| Some((f.to_string(), opts_of(f)?)))
            .collect()
    }

    /// Where a message on `topic` goes (`from`: its publisher, for no-local): one delivery
    /// per session for the plain subscriptions it matches, then one per matching `$share`
    /// group, to the next member in turn that is connected, if any is.
    pub fn matching(&mut self, topic: &[u8], from: Option<&str>) -> Vec<Target<'_>> {
        self.epoch += 1;
        let epoch = self.epoch;
        let slots = &self.clients.slots;
        let client = |slot: usize| slots.get(slot).and_then(Option::as_deref);
        let mut targets: Vec<Target<'_>> = Vec::new();
        let mut picks: Vec<Target<'_>> = Vec::new();
        self.trie.filters_matching(topic, |subs| {
            let Some(subs) = subs else { return };
            for s in &subs.plain {
                let Some(c) = client(s.slot) else { continue };
                if s.opts.no_local && from == Some(&*c.mailbox.client_id) {
                    continue;
                }
                if c.seen.get() == epoch {
                    if let Some(t) = targets.get_mut(c.target.get()) {
                        t.opts.qos = t.opts.qos.max(s.opts.qos);
                        t.opts.retain_as_published |= s.opts.retain_as_published;
                        t.sub_ids.extend(s.opts.sub_id);
                    }
                    continue;
                }
                c.seen.set(epoch);
                c.target.set(targets.len());
                targets.push(Target {
                    mailbox: &c.mailbox,
                    opts: s.opts,
                    sub_ids: s.opts.sub_id.into_iter().collect(),
                });
            }
            for g in &subs.groups {
                let n = g.members.len();
                let online = |i: usize| {
                    client(g.members[i].slot)
                        .is_some_and(|c| c.mailbox.inbox.online.load(Ordering::Relaxed))
                };
                let start = g.next.get();
                let Some(pick) = (0..n)
                    .map(|i| (start + i) % n)
                    .find(|&i| online(i))
                    .or((n > 0).then(|| start % n))
                else {
                    continue;
                };
                g.next.set((pick + 1) % n);
                let m = &g.members[pick];
                if let Some(c) = client(m.slot) {
                    picks.push(Target {
                        mailbox: &c.mailbox,
                        opts: m.opts,
                        sub_ids: m.opts.sub_id.into_iter().collect(),
                    });
                }
            }
        });
        // Plain deliveries first, then one per group (as the router did before the tree).
        targets.append(&mut picks);
        targets
    }

    fn remove_subscriber(&mut self, filter: &str, slot: usize) -> bool {
        let (key, group) = key_of(filter);
        let gone = |list: &mut Vec<Subscriber>| match list.iter().position(|s| s.slot == slot) {
            Some(i) => {
                // In order: a shared group's round robin goes on where it was.
                list.remove(i);
                true
            }
            None => false,
        };
        self.trie
            .update(key.as_bytes(), |node| {
                let Some(subs) = node else { return false };
                let removed = match group {
                    None => gone(&mut subs.plain),
                    Some(name) => match subs.groups.iter().position(|g| &*g.name == name) {
                        Some(i) => {
                            let removed = gone(&mut subs.groups[i].members);
                            if subs.groups[i].members.is_empty() {
                                subs.groups.swap_remove(i);
                            }
                            removed
                        }
                        None => false,
                    },
                };
                if subs.plain.is_empty() && subs.groups.is_empty() {
                    // Leaves the node vacant, so the tree prunes it.
                    *node = None;
                }
                removed
            })
            .unwrap_or(false)
    }
}

/// Where a filter lives in the tree, and its `$share` group if it is shared.
fn key_of(filter: &str) -> (&str, Option<&str>) {
    match shared_parts(filter) {
        Some((group, inner)) => (inner, Some(group)),
        None => (filter, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::state::{Inbox, QueueLimits};
    use crate::topic;
    use std::collections::BTreeMap;

    fn mailbox(id: &str, online: bool) -> Mailbox {
        let mailbox = Mailbox {
            client_id: Arc::from(id),
            inbox: Inbox::new(QueueLimits {
                messages: 16,
                bytes: usize::MAX,
            }),
        };
        mailbox.inbox.online.store(online, Ordering::Relaxed);
        mailbox
    }

    fn opts(qos: u8, sub_id: Option<u32>, no_local: bool) -> SubOptions {
        SubOptions {
            qos,
            no_local,
            retain_as_published: false,
            sub_id,
        }
    }

    /// With `+` last: topics take the others. Enough levels that a node's children outgrow
    /// a short list, and removals shrink them back.
    const LEVELS: [&str; 12] = ["a", "b", "", "$s", "ü", "c", "d", "e", "f", "g", "h", "+"];

    fn random_filter(rng: &mut fastrand::Rng) -> String {
        let mut levels: Vec<&str> = (0..rng.usize(1..=3))
            .map(|_| LEVELS[rng.usize(..LEVELS.len())])
            .collect();
        if rng.u8(..3) == 0 {
            levels.push("#");
        }
        let filter = levels.join("/");
        match rng.u8(..5) {
            0 => format!("$share/g{}/{filter}", rng.u8(..2)),
            _ => filter,
        }
    }

    fn random_topic(rng: &mut fastrand::Rng) -> String {
        (0..rng.usize(1..=3))
            .map(|_| LEVELS[rng.usize(..LEVELS.len() - 1)])
            .collect::<Vec<_>>()
            .join("/")
    }

    /// A brute-force model: every subscription in a map, each message matched against all.
    type Model = BTreeMap<(String, String), SubOptions>;

    #[test]
    fn matching_agrees_with_a_brute_force_model() {
        let mut rng = fastrand::Rng::with_seed(4);
        let ids = ["c0", "c1", "c2", "c3"];
        for round in 0..300 {
            let mut subs = Subscriptions::default();
            let mut model = Model::new();
            let boxes: Vec<Mailbox> = ids.iter().map(|id| mailbox(id, rng.bool())).collect();
            for _ in 0..rng.usize(1..60) {
                let (c, f) = (rng.usize(..ids.len()), random_filter(&mut rng));
                let o = opts(
                    rng.u8(..3),
                    rng.bool().then(|| rng.u32(1..100)),
                    rng.u8(..4) == 0,
                );
                let o = SubOptions {
                    no_local: o.no_local && shared_parts(&f).is_none(),
                    ..o
                };
                let existed = model.insert((ids[c].to_owned(), f.clone()), o).is_some();
                assert_eq!(
                    subs.subscribe(&f, &boxes[c], o),
                    existed,
                    "round {round}: {f}"
                );
            }
            // Some go again: by filter (often one that exists), and a whole client at a time.
            let held: Vec<(String, String)> = model.keys().cloned().collect();
            for _ in 0..rng.usize(0..30) {
                let (c, f) = match rng.bool() {
                    true if !held.is_empty() => {
                        let (c, f) = &held[rng.usize(..held.len())];
                        (c.as_str(), f.clone())
                    }
                    _ => (ids[rng.usize(..ids.len())], random_filter(&mut rng)),
                };
                let existed = model.remove(&(c.to_owned(), f.clone())).is_some();
                assert_eq!(subs.unsubscribe(&f, c), existed, "round {round}: {f}");
            }
            if rng.u8(..4) == 0 {
                let c = ids[rng.usize(..ids.len())];
                model.retain(|(id, _), _| id != c);
                subs.remove_client(c);
            }
            for id in ids {
                let mut got = subs.of(id);
                got.sort_by(|a, b| a.0.cmp(&b.0));
                let want: Vec<(String, SubOptions)> = model
                    .iter()
                    .filter(|((c, _), _)| c == id)
                    .map(|((_, f), o)| (f.clone(), *o))
                    .collect();
                assert_eq!(got, want, "round {round}: subscriptions of {id}");
            }
            for _ in 0..10 {
                let t = random_topic(&mut rng);
                let from = ids[rng.usize(..ids.len())];
                check_one(&mut subs, &model, &t, from, round);
            }
            for id in ids {
                subs.remove_client(id);
            }
            assert_eq!(subs.trie.node_count(), 1, "round {round}: all pruned");
        }
    }

    /// The deliveries for one message against the model: per client once, at the highest
    /// QoS, with every subscription id, for its plain subscriptions; then one per matching
    /// group, to a member, a connected one if the group has any.
    fn check_one(subs: &mut Subscriptions, model: &Model, t: &str, from: &str, round: usize) {
        let mut want_plain: BTreeMap<String, (u8, Vec<u32>)> = BTreeMap::new();
        let mut groups: BTreeMap<(String, String), Vec<(String, bool)>> = BTreeMap::new();
        let online: BTreeMap<String, bool> = subs
            .clients
            .slots
            .iter()
            .flatten()
            .map(|c| {
                let on = c.mailbox.inbox.online.load(Ordering::Relaxed);
                (c.mailbox.client_id.to_string(), on)
            })
            .collect();
        for ((c, f), o) in model {
            match shared_parts(f) {
                Some((g, inner)) if topic::matches(inner, t.as_bytes()) => groups
                    .entry((g.to_owned(), inner.to_owned()))
                    .or_default()
                    .push((c.clone(), online[c])),
                None if topic::matches(f, t.as_bytes()) && !(o.no_local && c == from) => {
                    let e = want_plain.entry(c.clone()).or_insert((0, Vec::new()));
                    e.0 = e.0.max(o.qos);
                    e.1.extend(o.sub_id);
                    e.1.sort();
                }
                _ => {}
            }
        }
        let targets = subs.matching(t.as_bytes(), Some(from));
        assert_eq!(
            targets.len(),
            want_plain.len() + groups.len(),
            "round {round}: {t}"
        );
        let (plain, shared) = targets.split_at(want_plain.len());
        let mut got_plain = BTreeMap::new();
        for target in plain {
            let mut ids = target.sub_ids.clone();
            ids.sort();
            let id = target.mailbox.client_id.to_string();
            let dup = got_plain.insert(id, (target.opts.qos, ids));
            assert!(
                dup.is_none(),
                "round {round}: {t}: two deliveries to one client"
            );
        }
        assert_eq!(got_plain, want_plain, "round {round}: {t}");
        // Each group's pick: one of its members, connected if any member is.
        let allowed: Vec<Vec<String>> = groups
            .values()
            .map(|members| {
                let any_online = members.iter().any(|(_, on)| *on);
                members
                    .iter()
                    .filter(|(_, on)| *on || !any_online)
                    .map(|(c, _)| c.clone())
                    .collect()
            })
            .collect();
        let picks: Vec<String> = shared
            .iter()
            .map(|t| t.mailbox.client_id.to_string())
            .collect();
        assert!(
            assignable(&allowed, &picks, &mut vec![false; picks.len()]),
            "round {round}: {t}: picks {picks:?} for groups {groups:?}"
        );
    }

    /// Whether every group can be given a distinct pick among those it allows.
    fn assignable(groups: &[Vec<String>], picks: &[String], used: &mut Vec<bool>) -> bool {
        let Some((first, rest)) = groups.split_first() else {
            return true;
        };
        for i in 0..picks.len() {
            if !used[i] && first.contains(&picks[i]) {
                used[i] = true;
                if assignable(rest, picks, used) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }

    #[test]
    fn overlapping_subscriptions_of_many_clients_merge_per_client() {
        let mut subs = Subscriptions::default();
        let boxes: Vec<Mailbox> = (0..1000).map(|i| mailbox(&format!("c{i}"), true)).collect();
        for (i, b) in boxes.iter().enumerate() {
            let id = u32::try_from(i).unwrap();
            subs.subscribe("t/x", b, opts(0, Some(id + 1), false));
            subs.subscribe("t/+", b, opts(1, Some(id + 5000), false));
            subs.subscribe("#", b, opts(2, None, false));
        }
        let targets = subs.matching(b"t/x", None);
        assert_eq!(targets.len(), 1000);
        for t in &targets {
            assert_eq!(t.opts.qos, 2);
            assert_eq!(t.sub_ids.len(), 2);
        }
        // The next message starts afresh.
        assert_eq!(subs.matching(b"t/y", None).len(), 1000);
    }

    #[test]
    fn a_group_prefers_its_connected_members_in_turn() {
        let mut subs = Subscriptions::default();
        let (a, b, c) = (mailbox("a", true), mailbox("b", false), mailbox("c", true));
        for m in [&a, &b, &c] {
            subs.subscribe("$share/g/s/#", m, opts(1, None, false));
        }
        let picks: Vec<String> = (0..4)
            .map(|_| subs.matching(b"s/1", None)[0].mailbox.client_id.to_string())
            .collect();
        assert_eq!(picks, ["a", "c", "a", "c"]);
        a.inbox.online.store(false, Ordering::Relaxed);
        c.inbox.online.store(false, Ordering::Relaxed);
        // Nobody connected: still one of them, in turn (queued for when it comes back).
        let picks: Vec<String> = (0..3)
            .map(|_| subs.matching(b"s/1", None)[0].mailbox.client_id.to_string())
            .collect();
        assert_eq!(picks, ["a", "b", "c"]);
    }

    #[test]
    fn everything_removed_leaves_an_empty_tree_and_no_slots() {
        let mut subs = Subscriptions::default();
        let boxes: Vec<Mailbox> = (0..50).map(|i| mailbox(&format!("c{i}"), true)).collect();
        for (i, b) in boxes.iter().enumerate() {
            for f in [
                format!("w/{i}/+"),
                "a//b/#".to_owned(),
                format!("$share/g{i}/x/{i}"),
            ] {
                subs.subscribe(&f, b, opts(0, None, false));
            }
        }
        assert!(subs.trie.node_count() > 100);
        for (i, b) in boxes.iter().enumerate() {
            if i % 2 == 0 {
                subs.remove_client(&b.client_id);
            } else {
                for f in [
                    format!("w/{i}/+"),
                    "a//b/#".to_owned(),
                    format!("$share/g{i}/x/{i}"),
                ] {
                    assert!(subs.unsubscribe(&f, &b.client_id));
                }
            }
        }
        assert_eq!(subs.trie.node_count(), 1);
        assert!(subs.clients.slot_of.is_empty());
        assert!(
            subs.clients.slots.iter().all(Option::is_none),
            "mailboxes released"
        );
        assert!(subs.matching(b"a//b", None).is_empty());
    }
}
