//! The broker's shared state, as types: a message as held ([`Published`]), one on its way to
//! one session ([`Delivery`]), a subscription's options, a session's queue ([`Inbox`], bounded
//! by [`QueueLimits`]) and the router's handle on it ([`Mailbox`]), a session as the router
//! knows it ([`SessionEntry`]) and what it keeps between connections ([`State`]). The router,
//! the topic trees, persistence and the sessions all use them; this file uses none of those.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::task::AtomicWaker;

use crate::mqtt::{Protocol, PublishHead, PublishProperties};

/// A message as the broker holds it: shared by every subscriber it goes to.
#[derive(Debug)]
pub struct Published {
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub props: Option<PublishProperties>,
    pub received: Instant,
    /// The publishing client, for no-local.
    pub from: Option<Arc<str>>,
}

impl Published {
    /// Bytes charged to a queue that holds this message: its topic and payload.
    pub fn size(&self) -> usize {
        self.topic.len() + self.payload.len()
    }

    /// Whether the v5 message expiry interval has passed.
    pub fn expired(&self) -> bool {
        self.remaining_expiry() == Some(0)
    }

    /// Seconds of message expiry left, if the message expires.
    pub fn remaining_expiry(&self) -> Option<u32> {
        let interval = self.props.as_ref()?.message_expiry_interval?;
        let spent = u32::try_from(self.received.elapsed().as_secs()).unwrap_or(u32::MAX);
        Some(interval.saturating_sub(spent))
    }
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub msg: Arc<Published>,
    pub qos: u8,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    /// The delivery's queue entry in the persistence log, for a persistent session.
    pub stored: Option<u64>,
    /// The PUBLISH heads shared by every delivery of a message routed to several sessions.
    pub wire: Option<Arc<SharedWire>>,
}

/// A routed message's PUBLISH, encoded once by the first connection that sends it and copied
/// by the others with their own packet id. It holds one shape (protocol, QoS, retain), the
/// first one sent: a fan-out's subscribers mostly share one. Every routed message queued for
/// a slow subscriber carries this, so until it is first sent it is a pointer. Only deliveries
/// whose properties are the message's own share it: a subscription identifier or a message
/// expiry (counted down to the moment of sending) makes a packet of its own.
#[derive(Debug, Default)]
pub struct SharedWire {
    head: OnceLock<Box<(u8, Option<PublishHead>)>>,
}

impl SharedWire {
    /// The head for this shape, made by `make` if it is the first shape asked for; Ok(None)
    /// when the message cannot be encoded in it, Err when another shape was first. `make`
    /// runs at most once.
    pub fn head(
        &self,
        proto: Protocol,
        qos: u8,
        retain: bool,
        make: impl FnOnce() -> Option<PublishHead>,
    ) -> Result<Option<&PublishHead>, NotShared> {
        let shape = (u8::from(proto == Protocol::V5) << 3) | (qos.min(2) << 1) | u8::from(retain);
        let (first, head) = &**self.head.get_or_init(|| Box::new((shape, make())));
        if *first == shape {
            Ok(head.as_ref())
        } else {
            Err(NotShared)
        }
    }
}

/// A delivery in a shape other than the shared one: it is encoded on its own.
#[derive(Debug)]
pub struct NotShared;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub sub_id: Option<u32>,
}

/// How much a session's queue may hold before new deliveries are dropped: messages
/// (`--max-queued`, mosquitto's `max_queued_messages`) and bytes of topic and payload
/// (`--max-queued-bytes`, mosquitto's `max_queued_bytes`); `usize::MAX` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub messages: usize,
    pub bytes: usize,
}

/// A session's queue of deliveries, bounded by [`QueueLimits`]. Lighter than a channel: an
/// idle session's queue allocates nothing, which matters with thousands of idle clients.
#[derive(Debug)]
pub struct Inbox {
    queue: Mutex<Queue>,
    /// The one reader's waker (see `next`): a wait is then a poll that holds nothing, where a
    /// `Notify` would have every idle connection hold its 64-byte `Notified`.
    ready: AtomicWaker,
    limits: QueueLimits,
    /// A client is connected to the session. Here rather than in an allocation of its own:
    /// every session has an inbox, and these are as long-lived.
    pub online: AtomicBool,
    /// The session outlives its connection and the broker persists: its QoS 1/2 deliveries
    /// are written to the log.
    pub durable: AtomicBool,
    /// Connections of a lower generation are to close: a takeover raises it to the new
    /// connection's generation. Woken through `ready`, so an idle connection waits for its
    /// deliveries and its end in one.
    kicked_below: AtomicU64,
    /// The broker is shutting down: every connection is to close. Apart from `kicked_below`,
    /// so that a connection taken over just before still ends as taken over.
    stopping: AtomicBool,
    /// The reader has room for a delivery: only then does a push wake it. A connection whose
    /// receive window is full still waits (for a kick), and is not woken by every message.
    wants: AtomicBool,
    /// For the keep-alive check (keepalive.rs): the generation of the connection it watches,
    /// with `SILENT` set once that connection's client has been silent too long; 0 for none.
    live: AtomicU64,
    /// When that connection last heard from its client, on the keep-alive clock.
    heard: AtomicU32,
}

/// `live`'s mark of a connection whose keep-alive ran out. Generations count up from 1.
const SILENT: u64 = 1 << 63;

#[derive(Debug, Default)]
struct Queue {
    deliveries: VecDeque<Delivery>,
    /// What `deliveries` hold, by [`Published::size`]: each queue is charged in full for a
    /// message it shares with others, so one session's share is bounded whatever the rest do.
    bytes: usize,
}

impl Inbox {
    pub fn new(limits: QueueLimits) -> Arc<Inbox> {
        Arc::new(Inbox {
            queue: Mutex::new(Queue::default()),
            ready: AtomicWaker::new(),
            limits: QueueLimits {
                messages: limits.messages.max(1),
                bytes: limits.bytes,
            },
            online: AtomicBool::new(false),
            durable: AtomicBool::new(false),
            kicked_below: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            wants: AtomicBool::new(false),
            live: AtomicU64::new(0),
            heard: AtomicU32::new(0),
        })
    }

    /// Queues a delivery; false when the queue is full and the delivery is dropped. As in
    /// mosquitto, the byte limit is checked before the message is added, so a message larger
    /// than the limit still reaches a session whose queue is empty.
    pub(super) fn push(&self, d: Delivery) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.deliveries.len() >= self.limits.messages || q.bytes >= self.limits.bytes {
            return false;
        }
        q.bytes += d.msg.size();
        q.deliveries.push_back(d);
        drop(q);
        // After the queue's lock: a reader that set `wants` before taking the lock either
        // found this delivery or is seen wanting here.
        if self.wants.load(Ordering::SeqCst) {
            self.ready.wake();
        }
        true
    }

    /// How many deliveries wait.
    pub fn len(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .deliveries
            .len()
    }

    pub fn pop(&self) -> Option<Delivery> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let d = q.deliveries.pop_front()?;
        q.bytes -= d.msg.size();
        // A drained burst gives its memory back.
        if q.deliveries.is_empty() && q.deliveries.capacity() > 64 {
            q.deliveries.shrink_to_fit();
        }
        Some(d)
    }

    /// Tells the connections below generation `below` to close: they were taken over.
    pub fn kick(&self, below: u64) {
        self.kicked_below.fetch_max(below, Ordering::Relaxed);
        self.ready.wake();
    }

    /// Tells every connection to close: the broker is shutting down.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.ready.wake();
    }

    /// The connection of `generation` is gone. Its waker goes too: a task's waker keeps the
    /// task's memory, which an offline session would otherwise hold until its next delivery or
    /// connection. Its keep-alive is no longer watched, unless a newer connection's is.
    pub fn detach(&self, generation: u64) {
        drop(self.ready.take());
        let _ = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |l| {
                (l & !SILENT == generation).then_some(0)
            });
    }

    /// The keep-alive of the connection of `generation` is watched from `now` on.
    pub fn attend(&self, generation: u64, now: u32) {
        self.heard.store(now, Ordering::Relaxed);
        self.live.store(generation, Ordering::Release);
    }

    /// The connection heard from its client at `now`.
    pub fn heard(&self, now: u32) {
        self.heard.store(now, Ordering::Relaxed);
    }

    /// The keep-alive check of the connection of `generation`, allowed `allowed` seconds of
    /// silence: the second to check again, or None when it is done with (it is gone, or its
    /// time ran out and it was told).
    pub fn check_silence(&self, generation: u64, allowed: u32, now: u32) -> Option<u32> {
        if self.live.load(Ordering::Acquire) != generation {
            return None;
        }
        let due = self.heard.load(Ordering::Relaxed).saturating_add(allowed);
        if due > now {
            return Some(due);
        }
        let marked = self.live.compare_exchange(
            generation,
            generation | SILENT,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        if marked.is_ok() {
            self.ready.wake();
        }
        None
    }

    /// Whether the connection of `generation` is to close for its client's silence.
    pub fn silent(&self, generation: u64) -> bool {
        self.live.load(Ordering::Relaxed) == generation | SILENT
    }

    /// Whether the connection of `generation` is to close: taken over, stopped, or silent.
    pub fn ends(&self, generation: u64) -> bool {
        self.taken_over(generation)
            || self.stopping.load(Ordering::Relaxed)
            || self.silent(generation)
    }

    /// Whether the connection of `generation` was taken over (rather than stopped).
    pub fn taken_over(&self, generation: u64) -> bool {
        generation < self.kicked_below.load(Ordering::Relaxed)
    }

    /// Waits for a delivery, for a reader that neither a takeover nor `stop` ends (a bridge,
    /// whose task the broker ends itself; a restored bridge session is in the session table,
    /// which shutdown stops). Cancel-safe.
    pub fn recv(&self) -> impl Future<Output = Delivery> + '_ {
        poll_fn(|cx| {
            self.ready.register(cx.waker());
            self.wants.store(true, Ordering::SeqCst);
            self.pop().map_or(Poll::Pending, Poll::Ready)
        })
    }

    /// Waits for a delivery (only when `take`), or until the connection of `generation` is
    /// kicked, stopped or silent too long: then None. Cancel-safe: a cancelled wait takes
    /// nothing off the queue.
    /// One reader at a time: `wants` and the one waker `ready` holds are its alone. That
    /// holds because a connection keeps its session's state lock, and the inbox with it, for
    /// its whole life, and a bridge's inbox has an id no client can take.
    pub fn next(&self, take: bool, generation: u64) -> impl Future<Output = Option<Delivery>> + '_ {
        poll_fn(move |cx| self.poll_next(cx, take, generation))
    }

    fn poll_next(&self, cx: &Context<'_>, take: bool, generation: u64) -> Poll<Option<Delivery>> {
        if self.poll_kicked(cx, take, generation) {
            return Poll::Ready(None);
        }
        match take.then(|| self.pop()).flatten() {
            Some(d) => Poll::Ready(Some(d)),
            None => Poll::Pending,
        }
    }

    /// Ready when `next` would be, taking nothing: for an idle connection, which has let go
    /// of the loop that takes its deliveries until there is one.
    pub fn poll_due(&self, cx: &Context<'_>, take: bool, generation: u64) -> Poll<()> {
        let due = self.poll_kicked(cx, take, generation) || take && self.len() > 0;
        if due { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Registers the reader's waker, then says whether the connection of `generation` is to
    /// close; if not, a push wakes it from now on when it can `take` a delivery.
    fn poll_kicked(&self, cx: &Context<'_>, take: bool, generation: u64) -> bool {
        // Registered before anything is checked: a push or a kick after the checks wakes it.
        self.ready.register(cx.waker());
        if self.ends(generation) {
            return true;
        }
        self.wants.store(take, Ordering::SeqCst);
        false
    }
}

/// The router's handle on a session: where its messages go, whether someone is connected.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub client_id: Arc<str>,
    pub inbox: Arc<Inbox>,
}

/// A session known to the broker, connected or not.
pub struct SessionEntry {
    pub mailbox: Mailbox,
    /// Bumped on every connection, so a late expiry or will timer can tell it is stale.
    pub generation: u64,
    pub state: Arc<tokio::sync::Mutex<State>>,
    /// The user the session logged in as: another user's CONNECT with its client id starts
    /// afresh rather than resume it.
    pub owner: Option<Arc<str>>,
}

/// What a session keeps between connections.
pub struct State {
    pub inbox: Arc<Inbox>,
    /// Ordered maps, not hashed: every session holds these two, mostly near-empty, and a
    /// `HashMap` is twice the size of a `BTreeMap` before it holds anything.
    pub subscriptions: BTreeMap<String, SubOptions>,
    /// Deliveries the client has not acknowledged yet, by packet id.
    pub outgoing: BTreeMap<u16, (Delivery, Stage)>,
    /// Incoming QoS 2 packet ids between PUBREC and PUBREL.
    pub incoming_qos2: PacketIds,
    pub next_pkid: u16,
}

/// A set of packet ids, boxed and only while it holds any: every session's state has one, most
/// never see QoS 2, and 16 bytes less puts the state and its lock in a smaller allocation.
#[derive(Debug, Default)]
#[expect(
    clippy::box_collection,
    reason = "8 bytes in every session's state, not 24"
)]
pub struct PacketIds(Option<Box<BTreeSet<u16>>>);

impl PacketIds {
    pub fn contains(&self, id: &u16) -> bool {
        self.0.as_ref().is_some_and(|s| s.contains(id))
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.len())
    }

    pub fn insert(&mut self, id: u16) -> bool {
        self.0.get_or_insert_default().insert(id)
    }

    /// Whether it was there. The last one out gives the set's memory back.
    pub fn remove(&mut self, id: &u16) -> bool {
        let Some(s) = &mut self.0 else { return false };
        let known = s.remove(id);
        if s.is_empty() {
            self.0 = None;
        }
        known
    }

    pub fn iter(&self) -> impl Iterator<Item = &u16> {
        self.0.iter().flat_map(|s| s.iter())
    }
}

impl FromIterator<u16> for PacketIds {
    fn from_iter<I: IntoIterator<Item = u16>>(ids: I) -> PacketIds {
        let s: BTreeSet<u16> = ids.into_iter().collect();
        PacketIds((!s.is_empty()).then(|| Box::new(s)))
    }
}

/// Which acknowledgement an outgoing QoS 1/2 message waits for: PUBACK, PUBREC or PUBCOMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Ack,
    Rec,
    Comp,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll, Wake, Waker};

    use super::*;

    fn sized(payload: &'static [u8]) -> Delivery {
        Delivery {
            msg: Arc::new(Published {
                topic: Bytes::from_static(b"t"),
                payload: Bytes::from_static(payload),
                qos: 0,
                retain: false,
                props: None,
                received: Instant::now(),
                from: None,
            }),
            qos: 0,
            retain: false,
            sub_ids: Vec::new(),
            stored: None,
            wire: None,
        }
    }

    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An inbox of 100 messages, and a waker that counts its wakes.
    fn watched() -> (Arc<Inbox>, Arc<Wakes>, Waker) {
        let inbox = Inbox::new(QueueLimits {
            messages: 100,
            bytes: usize::MAX,
        });
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        (inbox, wakes, waker)
    }

    #[test]
    fn a_reader_is_woken_by_kicks_always_and_by_deliveries_only_with_room() {
        let (inbox, wakes, waker) = watched();
        let mut cx = Context::from_waker(&waker);
        let woken = || wakes.0.load(Ordering::SeqCst);
        {
            let mut full = std::pin::pin!(inbox.next(false, 1));
            assert!(full.as_mut().poll(&mut cx).is_pending());
            assert!(inbox.push(sized(b"x")));
            assert_eq!(woken(), 0, "a delivery wakes no reader without room");
            // The new connection of a takeover is generation 2: the one waiting ends.
            inbox.kick(2);
            assert_eq!(woken(), 1);
            assert!(matches!(full.as_mut().poll(&mut cx), Poll::Ready(None)));
            assert!(inbox.taken_over(1));
        }
        // The new connection, with room: not kicked, and it takes what waited.
        let mut room = std::pin::pin!(inbox.next(true, 2));
        assert!(matches!(room.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
        let mut room = std::pin::pin!(inbox.next(true, 2));
        assert!(room.as_mut().poll(&mut cx).is_pending());
        let before = woken();
        assert!(inbox.push(sized(b"y")));
        assert_eq!(woken(), before + 1, "a delivery wakes a reader with room");
        assert!(matches!(room.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
        // Shutdown ends every connection, and each still knows whether it was taken over.
        let mut stopped = std::pin::pin!(inbox.next(true, 2));
        assert!(stopped.as_mut().poll(&mut cx).is_pending());
        inbox.stop();
        assert!(matches!(stopped.as_mut().poll(&mut cx), Poll::Ready(None)));
        assert!(!inbox.taken_over(2), "stopped, not taken over");
        assert!(inbox.taken_over(1));
        // A bridge's reader is not ended by it: it still gets its deliveries.
        assert!(inbox.push(sized(b"z")));
        let mut bridge = std::pin::pin!(inbox.recv());
        assert!(bridge.as_mut().poll(&mut cx).is_ready());
        let mut bridge = std::pin::pin!(inbox.recv());
        assert!(
            bridge.as_mut().poll(&mut cx).is_pending(),
            "waits, not spins"
        );
        // A reader that goes away leaves no waker behind.
        let held = Arc::strong_count(&wakes);
        inbox.detach(2);
        assert_eq!(Arc::strong_count(&wakes), held - 1);
    }

    #[test]
    fn a_parked_reader_is_told_what_next_would_take_and_nothing_is_taken() {
        let (inbox, wakes, waker) = watched();
        let cx = Context::from_waker(&waker);
        assert!(inbox.poll_due(&cx, true, 1).is_pending());
        assert!(inbox.push(sized(b"x")));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken by a delivery");
        assert!(inbox.poll_due(&cx, true, 1).is_ready());
        assert!(inbox.poll_due(&cx, false, 1).is_pending(), "no room");
        assert_eq!(inbox.len(), 1, "still queued for the loop to take");
        inbox.kick(2);
        assert!(inbox.poll_due(&cx, false, 1).is_ready(), "kicked");
        assert!(inbox.ends(1) && !inbox.ends(2));
    }

    #[test]
    fn packet_ids_give_their_memory_back_with_the_last_one() {
        let mut ids = PacketIds::default();
        assert!(!ids.remove(&1));
        assert!(ids.insert(7) && !ids.insert(7) && ids.insert(9));
        assert!(ids.contains(&7) && !ids.contains(&8));
        assert_eq!(ids.iter().copied().collect::<Vec<_>>(), [7, 9]);
        assert!(ids.remove(&7) && ids.remove(&9));
        assert!(ids.0.is_none());
        assert!(PacketIds::from_iter([]).0.is_none());
        assert_eq!(PacketIds::from_iter([3, 2]).len(), 2);
    }

    #[test]
    fn inbox_is_bounded_in_bytes_and_admits_a_large_message_when_empty() {
        let inbox = Inbox::new(QueueLimits {
            messages: 100,
            bytes: 10,
        });
        // Checked before adding: a message over the limit gets into an empty queue only.
        assert!(inbox.push(sized(b"twenty bytes of data")));
        assert!(!inbox.push(sized(b"x")));
        assert!(inbox.pop().is_some());
        for _ in 0..5 {
            assert!(inbox.push(sized(b"x")), "2 bytes each, topic included");
        }
        assert!(!inbox.push(sized(b"x")), "10 bytes queued");
        while inbox.pop().is_some() {}
        assert!(inbox.push(sized(b"x")), "popping gave the bytes back");
    }

    #[test]
    fn a_shared_wire_encodes_each_shape_once() {
        let wire = SharedWire::default();
        let msg = crate::mqtt::Message {
            topic: Bytes::from_static(b"t"),
            payload: Bytes::from_static(b"x"),
            qos: 1,
            retain: false,
            props: None,
        };
        let made = std::cell::Cell::new(0);
        let make = |proto| {
            made.set(made.get() + 1);
            PublishHead::new(proto, &msg, 1, false).ok()
        };
        for _ in 0..3 {
            let head = wire.head(Protocol::V5, 1, false, || make(Protocol::V5));
            assert!(matches!(head, Ok(Some(_))));
            // Another shape is not shared, and makes nothing here.
            for (proto, qos, retain) in [(Protocol::V311, 1, false), (Protocol::V5, 0, false)] {
                let other = wire.head(proto, qos, retain, || make(proto));
                assert!(other.is_err());
            }
        }
        assert_eq!(made.get(), 1, "once");
        // A shape that cannot be encoded stays so, without trying again.
        let wire = SharedWire::default();
        assert!(matches!(
            wire.head(Protocol::V5, 2, true, || None),
            Ok(None)
        ));
        let again = wire.head(Protocol::V5, 2, true, || make(Protocol::V5));
        assert!(matches!(again, Ok(None)));
        assert_eq!(made.get(), 1);
        // Small: every message queued for a slow subscriber carries one.
        assert!(std::mem::size_of::<SharedWire>() <= 16);
    }
}
