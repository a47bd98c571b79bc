//! Who gets which message: sessions by client id, subscriptions (plain and `$share`d, in
//! subscriptions.rs), the retained store (retained.rs), and the counters `$SYS` reports. The
//! types it hands around (messages, deliveries, queues, sessions) are in state.rs. One
//! mutex guards it all; the work done under it is walking the two topic trees and
//! non-blocking queue pushes, never I/O, and it costs what matches, not what exists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use super::keepalive::KeepAlives;
use super::persist::Store;
use super::persist::record::Record;
use super::retained::Retained;
use super::state::{Delivery, Mailbox, Published, SessionEntry, SharedWire, SubOptions};
use super::subscriptions::{Subscriptions, Target};

#[derive(Default)]
pub struct Counters {
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub dropped: AtomicU64,
    pub clients_connected: AtomicU64,
}

#[derive(Default)]
pub struct Router {
    pub sessions: HashMap<Arc<str>, SessionEntry>,
    subscriptions: Subscriptions,
    retained: Retained,
    next_generation: u64,
    /// `--persist`: where retained messages and persistent sessions are written.
    pub store: Option<Arc<Store>>,
    /// The broker is shutting down: a session registered from now on is stopped at once.
    pub stopping: bool,
}

pub struct Shared {
    router: Mutex<Router>,
    pub counters: Counters,
    pub started: Instant,
    pub keepalives: Arc<KeepAlives>,
}

impl Shared {
    pub fn new() -> Shared {
        let started = Instant::now();
        Shared {
            router: Mutex::new(Router::default()),
            counters: Counters::default(),
            started,
            keepalives: Arc::new(KeepAlives::new(started)),
        }
    }

    /// The router, even if a panicking thread poisoned the lock: its data stays consistent
    /// because no code under the lock leaves it half-updated across a panic point.
    pub fn lock(&self) -> MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message into the broker, from whichever source (client PUBLISH, will, HTTP Push):
    /// retained when asked, routed, and its dropped deliveries counted. Returns (delivered,
    /// dropped, the `--persist` log position that holds what it wrote, if anything).
    pub fn publish(&self, msg: &Arc<Published>) -> (u64, u64, Option<u64>) {
        self.publish_then(msg, None)
    }

    /// `publish`, and with `--persist` then `record` (the publisher's QoS 2 packet id, a
    /// will's end) in the same log frame as what the message wrote: a crash keeps both or
    /// neither, so the message is neither routed twice nor lost.
    pub fn publish_then(
        &self,
        msg: &Arc<Published>,
        record: Option<Record>,
    ) -> (u64, u64, Option<u64>) {
        let (delivered, dropped, synced) = {
            let mut router = self.lock();
            let store = router.store.clone().filter(|_| record.is_some());
            let group = store.as_deref().map(Store::group);
            let retained = if msg.retain { router.retain(msg) } else { None };
            let (delivered, dropped, synced) = router.route_synced(msg);
            let then = store.as_ref().zip(record).map(|(s, r)| s.append(r));
            drop(group);
            (delivered, dropped, synced.max(retained).max(then))
        };
        self.counters.dropped.fetch_add(dropped, Ordering::Relaxed);
        (delivered, dropped, synced)
    }
}

impl Router {
    pub fn next_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Adds or replaces one subscription; returns whether it existed before (for retain
    /// handling 1).
    pub fn subscribe(&mut self, filter: &str, mailbox: &Mailbox, opts: SubOptions) -> bool {
        // A connection taken over a moment ago may still be reading a SUBSCRIBE. Its mailbox
        // is no longer the session's, and a client's subscriptions share one mailbox: taking
        // it would send the new session's messages to a queue nobody reads.
        let stale = self
            .sessions
            .get(&mailbox.client_id)
            .is_some_and(|e| !Arc::ptr_eq(&e.mailbox.inbox, &mailbox.inbox));
        if stale {
            return false;
        }
        self.subscriptions.subscribe(filter, mailbox, opts)
    }

    /// Removes one subscription; returns whether it existed.
    pub fn unsubscribe(&mut self, filter: &str, client_id: &str) -> bool {
        self.subscriptions.unsubscribe(filter, client_id)
    }

    /// Every subscription of a client id, wherever it is: for a clean start, whose old
    /// session state may still be held by the connection being taken over.
    pub fn remove_client(&mut self, client_id: &str) {
        self.subscriptions.remove_client(client_id);
    }

    /// Every subscription of a client id, as it subscribed.
    pub fn subscriptions_of(&self, client_id: &str) -> Vec<(String, SubOptions)> {
        self.subscriptions.of(client_id)
    }

    /// Every subscription of a session that ends for good.
    pub fn unsubscribe_all(&mut self, client_id: &str, filters: impl Iterator<Item = String>) {
        for f in filters {
            self.unsubscribe(&f, client_id);
        }
    }

    /// Stores (or with an empty payload, clears) a retained message. The stored copy owns
    /// its bytes: a decoded message is a slice of a whole receive buffer, which a retained
    /// message would otherwise keep alive for as long as it is retained. With `--persist`,
    /// returns the log position that makes the change durable.
    pub fn retain(&mut self, msg: &Arc<Published>) -> Option<u64> {
        // $SYS topics are the broker's own, rewritten every interval: not worth a write.
        let store = self
            .store
            .as_ref()
            .filter(|_| !msg.topic.starts_with(b"$SYS/"));
        if msg.payload.is_empty() {
            self.retained.remove(&msg.topic)?;
            return store.map(|s| {
                s.append(Record::Unretain {
                    topic: msg.topic.clone(),
                })
            });
        }
        let topic = Bytes::copy_from_slice(&msg.topic);
        let owned = Published {
            topic: topic.clone(),
            payload: Bytes::copy_from_slice(&msg.payload),
            qos: msg.qos,
            retain: msg.retain,
            props: msg.props.clone(),
            received: msg.received,
            from: msg.from.clone(),
        };
        let owned = Arc::new(owned);
        self.retained.insert(owned.clone());
        store.map(|s| s.append(Record::Retain { msg: owned }))
    }

    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Subscriptions held, by every session: one count per client and filter.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.count()
    }

    /// Messages waiting in every session's queue (online or not).
    pub fn queued_count(&self) -> usize {
        self.sessions.values().map(|s| s.mailbox.inbox.len()).sum()
    }

    /// Retained messages matching a (non-shared) filter, for delivery on subscribe.
    pub fn retained_matching(&self, filter: &str) -> Vec<Arc<Published>> {
        self.retained.matching(filter)
    }

    /// Hands `msg` to every matching session: once per session, at the highest granted QoS
    /// of its matching subscriptions, with all their subscription identifiers; one member of
    /// each matching shared group. Returns (delivered, dropped).
    pub fn route(&mut self, msg: &Arc<Published>) -> (u64, u64) {
        let (delivered, dropped, _) = self.route_synced(msg);
        (delivered, dropped)
    }

    /// `route`, plus the log position to wait for when the message was written for a
    /// persistent session.
    pub fn route_synced(&mut self, msg: &Arc<Published>) -> (u64, u64, Option<u64>) {
        let targets = self.subscriptions.matching(&msg.topic, msg.from.as_deref());
        // Encoded once for all of them, the first time each shape is sent.
        let wire = (targets.len() > 1).then(|| Arc::new(SharedWire::default()));
        let mut delivered = 0;
        let mut dropped = 0;
        let mut stored: Option<u64> = None;
        let mut synced = None;
        for Target {
            mailbox,
            opts,
            sub_ids,
        } in targets
        {
            let qos = msg.qos.min(opts.qos);
            // QoS 0 is not queued for a session nobody is connected to (as mosquitto).
            if qos == 0 && !mailbox.inbox.online.load(Ordering::Relaxed) {
                continue;
            }
            let retain = msg.retain && opts.retain_as_published;
            // Written before it is queued, so its Done can only come after it in the log.
            let store = self
                .store
                .as_ref()
                .filter(|_| qos > 0 && mailbox.inbox.durable.load(Ordering::Relaxed));
            let entry = store.map(|s| {
                let id = *stored.get_or_insert_with(|| s.add_message(msg));
                let (entry, pos) =
                    s.enqueue(mailbox.client_id.clone(), id, qos, retain, sub_ids.clone());
                synced = Some(pos);
                entry
            });
            let d = Delivery {
                msg: msg.clone(),
                qos,
                retain,
                sub_ids,
                stored: entry,
                wire: wire.clone(),
            };
            // A full queue (max queued messages) drops the delivery, as mosquitto does.
            if mailbox.inbox.push(d) {
                delivered += 1;
            } else {
                dropped += 1;
                if let (Some(s), Some(entry)) = (store, entry) {
                    s.append(Record::Done {
                        client: mailbox.client_id.clone(),
                        entry,
                    });
                }
            }
        }
        (delivered, dropped, synced)
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::broker::state::{Inbox, QueueLimits, State};

    fn mailbox(id: &str) -> (Mailbox, Arc<Inbox>) {
        let inbox = Inbox::new(QueueLimits {
            messages: 16,
            bytes: usize::MAX,
        });
        inbox.online.store(true, Ordering::Relaxed);
        (
            Mailbox {
                client_id: Arc::from(id),
                inbox: inbox.clone(),
            },
            inbox,
        )
    }

    fn msg(topic: &str, qos: u8) -> Arc<Published> {
        Arc::new(Published {
            topic: Bytes::copy_from_slice(topic.as_bytes()),
            payload: Bytes::from_static(b"x"),
            qos,
            retain: true,
            props: None,
            received: Instant::now(),
            from: Some(Arc::from("pub")),
        })
    }

    fn opts(qos: u8, sub_id: Option<u32>) -> SubOptions {
        SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            sub_id,
        }
    }

    #[test]
    fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
        let mut r = Router::default();
        let (a, rx) = mailbox("a");
        r.subscribe("t/+", &a, opts(1, Some(1)));
        r.subscribe("t/#", &a, opts(2, Some(2)));
        r.subscribe("t/x", &a, opts(0, None));
        assert_eq!(r.route(&msg("t/x", 2)), (1, 0));
        let d = rx.pop().unwrap();
        assert_eq!(d.qos, 2);
        assert!(!d.retain, "retain is cleared without retain-as-published");
        let mut ids = d.sub_ids.clone();
        ids.sort();
        assert_eq!(ids, [1, 2]);
        assert!(rx.pop().is_none());
    }

    #[test]
    fn delivered_qos_is_the_minimum_of_published_and_granted() {
        for published in 0..=2 {
            for granted in 0..=2 {
                let mut r = Router::default();
                let (a, rx) = mailbox("a");
                r.subscribe("q", &a, opts(granted, None));
                r.route(&msg("q", published));
                assert_eq!(rx.pop().unwrap().qos, published.min(granted));
            }
        }
    }

    #[test]
    fn no_local_dollar_topics_and_shared_groups() {
        let mut r = Router::default();
        let (p, prx) = mailbox("pub");
        let mut o = opts(0, None);
        o.no_local = true;
        r.subscribe("#", &p, o);
        assert_eq!(r.route(&msg("a", 0)), (0, 0));
        assert!(prx.pop().is_none());
        assert_eq!(r.route(&msg("$SYS/x", 0)), (0, 0));
        let (a, arx) = mailbox("a");
        let (b, brx) = mailbox("b");
        r.subscribe("$share/g/s/+", &a, opts(1, None));
        r.subscribe("$share/g/s/+", &b, opts(1, None));
        for _ in 0..4 {
            r.route(&msg("s/1", 1));
        }
        let count = |rx: &Inbox| std::iter::from_fn(|| rx.pop()).count();
        assert_eq!((count(&arx), count(&brx)), (2, 2));
        assert!(r.unsubscribe("$share/g/s/+", "a"));
        r.route(&msg("s/1", 1));
        assert_eq!((count(&arx), count(&brx)), (0, 1));
    }

    #[test]
    fn a_taken_over_connection_cannot_subscribe_the_new_session_away() {
        let mut r = Router::default();
        let (new, new_rx) = mailbox("c");
        let (old, old_rx) = mailbox("c");
        let state = State {
            inbox: new.inbox.clone(),
            subscriptions: Default::default(),
            outgoing: Default::default(),
            incoming_qos2: Default::default(),
            next_pkid: 0,
        };
        r.sessions.insert(
            Arc::from("c"),
            SessionEntry {
                mailbox: new.clone(),
                generation: 2,
                state: Arc::new(tokio::sync::Mutex::new(state)),
                owner: None,
            },
        );
        r.subscribe("t", &new, opts(1, None));
        // The old connection's SUBSCRIBE, processed after the takeover.
        assert!(!r.subscribe("t", &old, opts(1, None)));
        assert!(!r.subscribe("u/#", &old, opts(1, None)));
        assert_eq!(r.route(&msg("t", 1)), (1, 0));
        assert!(new_rx.pop().is_some());
        assert!(old_rx.pop().is_none());
        assert_eq!(r.subscriptions_of("c").len(), 1);
    }

    #[test]
    fn retained_store_replaces_and_clears() {
        let mut r = Router::default();
        r.retain(&msg("r/1", 0));
        r.retain(&msg("r/2", 0));
        assert_eq!(r.retained_matching("r/+").len(), 2);
        let empty = Published {
            topic: Bytes::from_static(b"r/1"),
            payload: Bytes::new(),
            qos: 0,
            retain: true,
            props: None,
            received: Instant::now(),
            from: None,
        };
        r.retain(&Arc::new(empty));
        assert_eq!(r.retained_count(), 1);
    }
}
