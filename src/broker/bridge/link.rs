//! One bridge at work: a session inside this broker for the `out` topics, and an MQTT client
//! connection to the remote (over `crate::mqtt`) for everything that crosses.
//!
//! Outbound messages wait in the bridge's own [`Inbox`], bounded in bytes: while the remote is
//! away the inbox is marked offline, so QoS 0 is dropped (as for any offline session) and QoS
//! 1/2 is kept, to be sent on reconnect; a QoS 1/2 message sent but not yet acknowledged is
//! sent again (DUP) on the next connection. With `--persist` the bridge's session is a
//! persistent one in the log, so a crash of this broker loses nothing it acknowledged. Loops are cut three ways: this broker never hands
//! the bridge back what the bridge itself published here (no-local on its subscriptions); an
//! MQTT 5 remote is asked for no-local too; and on a 3.1.1 connection without the bridge bit,
//! where the remote echoes what the bridge sent on `both` topics, the echo is recognised and
//! dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as StdInstant};

use anyhow::anyhow;
use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};

use super::Ready;
use super::spec::Bridge;
use crate::broker::persist::Store;
use crate::broker::persist::record::Record;
use crate::broker::router::Shared;
use crate::broker::session::{NEVER, Out as Output, synced};
use crate::broker::state::{Delivery, Inbox, Mailbox, Published, QueueLimits, SubOptions};
use crate::mqtt::{
    self, ClientDisconnectCode, ConnAckCode, Connect, Message, Protocol, PubRelCode, ServerPacket,
    Subscription, Will,
};
use crate::topic;
use crate::transport::setup::TransportSetup;
use crate::transport::{Reader, Writer, dial};

/// How long a remote may take to accept the TCP connection, and then to answer CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// QoS 1/2 messages in flight to a 3.1.1 remote: mosquitto's `max_inflight_messages`.
const INFLIGHT_V311: usize = 20;
/// Bytes of PUBLISH packets gathered for one write.
const BATCH_BYTES: usize = 64 * 1024;
/// Fingerprints of sent messages kept for recognising their echo; a remote that never echoes
/// would otherwise grow the set without end.
const ECHO_MAX: usize = 10_000;
/// Bytes of output held for the `--persist` log before the remote is read from again.
const HELD_MAX: usize = 256 * 1024;

/// Starts the bridge's session in this broker and keeps its remote connection up until `stop`.
pub async fn run(
    ready: Ready,
    shared: Arc<Shared>,
    queue_bytes: usize,
    mut stop: watch::Receiver<bool>,
) {
    let Ready { bridge, transports } = ready;
    // U+0000 cannot be in an MQTT client id, so no client can take this session over.
    let id: Arc<str> = Arc::from(format!("\u{0}bridge/{}", bridge.name));
    let (mailbox, awaiting_rel) = session_here(&bridge, &shared, &id, queue_bytes);
    let store = shared.lock().store.clone();
    let mut link = Link {
        bridge,
        transports,
        shared,
        store,
        id,
        mailbox,
        inflight: VecDeque::new(),
        awaiting_rel,
        sync_to: 0,
        logged: 0,
        echo: HashMap::new(),
        next_pkid: 0,
        plain: Vec::new(),
    };
    link.plain = vec![false; link.bridge.addresses.len()];
    let mut at = 0;
    let mut backoff = Backoff::new(link.bridge.restart_timeout, link.bridge.restart_cap);
    loop {
        let (host, port) = link.bridge.addresses[at].clone();
        let result = tokio::select! {
            r = link.connect(at) => r,
            _ = stop.changed() => return,
        };
        let connected = match result {
            Ok(Connected::Up(conn)) => {
                backoff.reset();
                let end = link
                    .session(conn, &format!("{host}:{port}"), &mut stop)
                    .await;
                link.went_down();
                match end {
                    Ok(()) => return,
                    Err(e) => link.note(&format!("lost {host}:{port}: {e:#}")),
                }
                true
            }
            Ok(Connected::Retry) => continue,
            Err(e) => {
                link.note(&format!("cannot connect to {host}:{port}: {e:#}"));
                false
            }
        };
        // Without round_robin the first address is the main one: back to it after a loss.
        at = if connected && !link.bridge.round_robin {
            0
        } else {
            (at + 1) % link.bridge.addresses.len()
        };
        let until = Instant::now() + backoff.next();
        tokio::select! {
            _ = sleep_until(until) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The bridge's session in this broker: its queue, and its subscriptions to the `out` topics.
/// With `--persist` it is a persistent session in the log, so that what the broker
/// acknowledged to a publisher survives a crash until the remote has it: the one the log
/// restored is taken up again, else one is started there. Returns it with the incoming QoS 2
/// packet ids the log holds, whose resends from the remote are not to be published again.
fn session_here(
    bridge: &Bridge,
    shared: &Arc<Shared>,
    id: &Arc<str>,
    queue_bytes: usize,
) -> (Mailbox, HashSet<u16>) {
    let mut router = shared.lock();
    let store = router.store.clone();
    let restored = router.sessions.get(id).map(|e| {
        // Nothing else holds a session's state at start-up.
        let qos2 = e
            .state
            .try_lock()
            .map(|s| s.incoming_qos2.iter().copied().collect());
        (e.mailbox.clone(), qos2.unwrap_or_default())
    });
    let (mailbox, awaiting_rel) = restored.unwrap_or_else(|| {
        let mailbox = Mailbox {
            client_id: id.clone(),
            inbox: Inbox::new(QueueLimits {
                messages: usize::MAX,
                bytes: queue_bytes,
            }),
        };
        (mailbox, HashSet::new())
    });
    if let Some(store) = &store {
        store.append(Record::Session {
            client: id.clone(),
            expiry: NEVER,
            clean: false,
            owner: None,
        });
    }
    for t in bridge.topics.iter().filter(|t| t.direction.outbound()) {
        let opts = SubOptions {
            qos: t.qos,
            no_local: true,
            retain_as_published: true,
            sub_id: None,
        };
        router.subscribe(&t.local(), &mailbox, opts);
        if let Some(store) = &store {
            store.append(Record::Sub {
                client: id.clone(),
                filter: t.local(),
                opts,
            });
        }
    }
    mailbox
        .inbox
        .durable
        .store(store.is_some(), Ordering::Relaxed);
    (mailbox, awaiting_rel)
}

enum Connected {
    Up(Conn),
    /// The bridge bit was refused: try the same address again without it, at once.
    Retry,
}

struct Conn {
    proto: Protocol,
    /// The bridge bit was accepted: a Mosquitto remote sends back nothing the bridge sent.
    private: bool,
    /// The remote kept the bridge's session: its QoS 2 exchanges carry on.
    session_present: bool,
    reader: Reader,
    writer: Writer,
    rbuf: BytesMut,
    max_inflight: usize,
}

/// A QoS 1/2 message sent to the remote and not yet acknowledged.
struct Sent {
    pkid: u16,
    msg: Message,
    /// Its queue entry in the `--persist` log, done once the remote has it.
    stored: Option<u64>,
    /// PUBREC came: PUBREL is what is resent.
    released: bool,
}

struct Link {
    bridge: Bridge,
    /// How to reach each of `bridge.addresses`, in the same order.
    transports: Vec<TransportSetup>,
    shared: Arc<Shared>,
    /// `--persist`: the bridge's queue is a persistent session in the log.
    store: Option<Arc<Store>>,
    id: Arc<str>,
    mailbox: Mailbox,
    inflight: VecDeque<Sent>,
    /// Incoming QoS 2 ids between PUBREC and PUBREL: a resent PUBLISH is not published twice.
    /// With `--persist` they are in the log too, so they outlast a crash of this broker.
    awaiting_rel: HashSet<u16>,
    /// The `--persist` log position that what was last read from the remote wrote: its
    /// PUBACK or PUBREC goes out only once the log is on disk that far.
    sync_to: u64,
    /// The furthest position anything from the remote wrote, on this connection or an
    /// earlier one: a new connection's first acknowledgements (of a resent QoS 2 PUBLISH, or a
    /// PUBREL) may rest on a record the last one logged, not yet on disk.
    logged: u64,
    /// Sent messages whose echo from the remote is to be dropped, by fingerprint, with counts.
    echo: HashMap<u64, u32>,
    next_pkid: u16,
    /// Per address: it refused the bridge bit, so it gets a plain CONNECT.
    plain: Vec<bool>,
}

impl Link {
    fn note(&self, what: &str) {
        let _ = writeln!(
            io::stderr().lock(),
            "smq: bridge {}: {what}",
            self.bridge.name
        );
    }

    async fn connect(&mut self, at: usize) -> anyhow::Result<Connected> {
        let (host, port) = &self.bridge.addresses[at];
        let (mut reader, mut writer) = timeout(CONNECT_TIMEOUT, dial::open(&self.transports[at]))
            .await
            .map_err(|_| anyhow!("no answer in {} s", CONNECT_TIMEOUT.as_secs()))?
            .map_err(in_bridge_words)?;
        let b = &self.bridge;
        let proto = b.protocol;
        let private = b.try_private && !self.plain[at];
        let mut connect = Connect::new(proto, b.client_id());
        connect.clean = b.cleansession;
        connect.keepalive = b.keepalive;
        connect.username = b.remote_username.clone();
        connect.password = b.remote_password.clone().map(Bytes::from);
        if proto == Protocol::V5 && !b.cleansession {
            // A session that outlives the connection, as 3.1.1's clean session false does.
            connect.session_expiry = u32::MAX;
        }
        if b.notifications {
            connect.will = Some(Will {
                topic: b.notification_topic(),
                payload: Bytes::from_static(b"0"),
                qos: 1,
                retain: true,
                delay: 0,
                props: None,
            });
        }
        let mut buf = BytesMut::new();
        mqtt::encode_connect(&connect, &mut buf)?;
        if private {
            set_bridge_bit(&mut buf);
        }
        writer.write_all(&mut buf).await?;
        let mut rbuf = BytesMut::with_capacity(4096);
        let answer = timeout(CONNECT_TIMEOUT, async {
            loop {
                if let Some(p) = mqtt::decode_server(proto, &mut rbuf, mqtt::MAX_PACKET)? {
                    return Ok::<_, anyhow::Error>(Some(p));
                }
                if reader.read(&mut rbuf).await? == 0 {
                    return Ok(None);
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no CONNACK in {} s", CONNECT_TIMEOUT.as_secs()));
        let refused = match answer {
            Ok(Ok(Some(ServerPacket::ConnAck(ack)))) if ack.code == ConnAckCode::Success => {
                let max_inflight = match proto {
                    Protocol::V5 => usize::from(ack.receive_max.unwrap_or(u16::MAX)).min(100),
                    Protocol::V311 => INFLIGHT_V311,
                };
                return Ok(Connected::Up(Conn {
                    proto,
                    private,
                    session_present: ack.session_present,
                    reader,
                    writer,
                    rbuf,
                    max_inflight,
                }));
            }
            Ok(Ok(Some(ServerPacket::ConnAck(ack)))) => {
                anyhow!(
                    "CONNACK refused: {}",
                    mqtt::ReasonCode::from(ack.code).words()
                )
            }
            Ok(Ok(Some(_))) => anyhow!("answered CONNECT with something other than CONNACK"),
            Ok(Ok(None)) => anyhow!("closed the connection before CONNACK"),
            Ok(Err(e)) | Err(e) => e,
        };
        if private {
            // RabbitMQ 3.10 drops such a CONNECT; anything but a Mosquitto may refuse it.
            self.plain[at] = true;
            self.note(&format!(
                "{host}:{port} refused a CONNECT with the bridge bit ({refused:#}): connecting without it (try_private false does so from the start)"
            ));
            return Ok(Connected::Retry);
        }
        Err(refused)
    }

    /// Serves one connection until it is lost (Err) or the broker stops (Ok).
    /// Says "connected" once the `in` subscriptions are acknowledged (at once without any):
    /// from then on the remote's messages reach this broker.
    async fn session(
        &mut self,
        mut conn: Conn,
        remote: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut wbuf = BytesMut::with_capacity(4096);
        let mut out = Output::default();
        self.sync_to = self.logged;
        if !conn.session_present {
            // A fresh session at the remote: the packet ids it had sent are its no more.
            for pkid in std::mem::take(&mut self.awaiting_rel) {
                self.log(Record::InRel {
                    client: self.id.clone(),
                    pkid,
                });
            }
        }
        self.mailbox.inbox.online.store(true, Ordering::Relaxed);
        self.notify(&mut conn, &mut wbuf, b"1")?;
        let subs: Vec<Subscription> = self
            .bridge
            .topics
            .iter()
            .filter(|t| t.direction.inbound())
            .map(|t| Subscription {
                filter: t.remote(),
                qos: t.qos,
                no_local: true,
                retain_as_published: true,
                retain_handling: 0,
            })
            .collect();
        let mut announce = Some(format!("connected to {remote}"));
        if subs.is_empty() {
            if let Some(a) = announce.take() {
                self.note(&a);
            }
        } else {
            let pkid = self.pkid();
            mqtt::encode_subscribe(conn.proto, pkid, &subs, None, &[], &mut wbuf)?;
        }
        // What the last connection left unacknowledged goes first, in the order it was sent.
        for out in &self.inflight {
            if out.released {
                mqtt::encode_pubrel(out.pkid, PubRelCode::Success, &mut wbuf);
            } else {
                mqtt::encode_publish(conn.proto, &out.msg, out.pkid, true, &mut wbuf)?;
            }
        }
        let keepalive = Duration::from_secs(self.bridge.keepalive.into());
        let mut last_sent = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        loop {
            // What acknowledges a message of the remote waits until the message is on disk.
            out.stage(&mut wbuf, std::mem::take(&mut self.sync_to));
            if let (Some(s), false) = (&self.store, out.held.is_empty()) {
                out.release(s.durable());
            }
            if !out.ready.is_empty() {
                conn.writer.write_all(&mut out.ready).await?;
                out.trim(&mut wbuf);
                last_sent = Instant::now();
            }
            let waiting = out.held.front().map(|h| h.0);
            let room = self.inflight.len() < conn.max_inflight;
            let ping_at = match ping_sent {
                Some(sent) => sent + keepalive,
                None => last_sent + keepalive,
            };
            tokio::select! {
                _ = stop.changed() => {
                    synced(self.store.as_deref(), out.held.back().map(|h| h.0)).await;
                    out.release(u64::MAX);
                    // No reason string and no properties: nothing that could be too long to encode.
                    let _ = mqtt::encode_client_disconnect(conn.proto == Protocol::V5, ClientDisconnectCode::Success, None, None, &[], &mut out.ready);
                    let _ = conn.writer.write_all(&mut out.ready).await;
                    let _ = conn.writer.shutdown().await;
                    return Ok(());
                }
                () = synced(self.store.as_deref(), waiting), if waiting.is_some() => {}
                // Not read from while a window of acknowledgements waits for the disk.
                read = conn.reader.read(&mut conn.rbuf), if out.len() < HELD_MAX => {
                    if read? == 0 {
                        return Err(anyhow!("the remote closed the connection"));
                    }
                    while let Some(p) = mqtt::decode_server(conn.proto, &mut conn.rbuf, mqtt::MAX_PACKET)? {
                        // Mosquitto resends a session's queue before the SUBACK.
                        if let ServerPacket::SubAck { .. } = p
                            && let Some(a) = announce.take()
                        {
                            self.note(&a);
                        }
                        self.incoming(p, &mut wbuf)?;
                        ping_sent = None;
                    }
                }
                d = self.mailbox.inbox.recv(), if room => {
                    self.outgoing(&conn, d, &mut wbuf)?;
                    // What else is queued goes in the same write, up to the window.
                    while self.inflight.len() < conn.max_inflight && wbuf.len() < BATCH_BYTES {
                        let Some(d) = self.mailbox.inbox.pop() else { break };
                        self.outgoing(&conn, d, &mut wbuf)?;
                    }
                }
                _ = sleep_until(ping_at) => {
                    if ping_sent.is_some() {
                        return Err(anyhow!("no answer to PINGREQ within the keep-alive"));
                    }
                    mqtt::encode_pingreq(&mut wbuf);
                    ping_sent = Some(Instant::now());
                }
            }
        }
    }

    /// The connection's state, retained: here always, and at the remote (whose copy the
    /// will turns to 0 when the bridge drops).
    fn notify(&mut self, conn: &mut Conn, wbuf: &mut BytesMut, state: &[u8]) -> anyhow::Result<()> {
        if !self.bridge.notifications {
            return Ok(());
        }
        let topic = Bytes::from(self.bridge.notification_topic());
        self.publish_here(
            topic.clone(),
            Bytes::copy_from_slice(state),
            0,
            true,
            None,
            None,
        );
        let msg = Message {
            topic,
            payload: Bytes::copy_from_slice(state),
            qos: 0,
            retain: true,
            props: None,
        };
        mqtt::encode_publish(conn.proto, &msg, 0, false, wbuf)
    }

    fn went_down(&mut self) {
        self.mailbox.inbox.online.store(false, Ordering::Relaxed);
        if self.bridge.notifications {
            let topic = Bytes::from(self.bridge.notification_topic());
            self.publish_here(topic, Bytes::from_static(b"0"), 0, true, None, None);
        }
    }

    /// Returns the `--persist` log position that holds what the message wrote.
    fn publish_here(
        &self,
        topic: Bytes,
        payload: Bytes,
        qos: u8,
        retain: bool,
        props: Option<mqtt::PublishProperties>,
        then: Option<Record>,
    ) -> Option<u64> {
        let msg = Arc::new(Published {
            topic,
            payload,
            qos,
            retain,
            props,
            received: StdInstant::now(),
            from: Some(self.id.clone()),
        });
        self.shared.publish_then(&msg, then).2
    }

    /// Appends to the `--persist` log, if any; what is sent next waits for it.
    fn log(&mut self, r: Record) {
        if let Some(pos) = self.append(Some(r)) {
            self.wait_for(pos);
        }
    }

    /// Appends `r` to the `--persist` log, if both; returns its position.
    fn append(&self, r: Option<Record>) -> Option<u64> {
        self.store.as_ref().zip(r).map(|(s, r)| s.append(r))
    }

    /// What is sent next waits until the log is on disk up to `pos`.
    fn wait_for(&mut self, pos: u64) {
        self.sync_to = self.sync_to.max(pos);
        self.logged = self.logged.max(pos);
    }

    fn incoming(&mut self, p: ServerPacket, wbuf: &mut BytesMut) -> anyhow::Result<()> {
        match p {
            ServerPacket::Publish { msg, pkid, .. } => {
                let qos = msg.qos;
                let fresh = qos < 2 || self.awaiting_rel.insert(pkid);
                // A QoS 2 packet id is logged with what the message wrote (`publish_then`).
                let then = (qos == 2 && fresh && self.store.is_some()).then(|| Record::InQos2 {
                    client: self.id.clone(),
                    pkid,
                });
                let pos = if !fresh {
                    None
                } else if self.echoed(&msg) {
                    self.append(then)
                } else {
                    self.inbound(msg, then)
                };
                if qos > 0 {
                    self.wait_for(pos.unwrap_or(0));
                }
                match qos {
                    1 => mqtt::encode_puback(pkid, mqtt::PubAckCode::Success, wbuf),
                    2 => mqtt::encode_pubrec(pkid, mqtt::PubAckCode::Success, wbuf),
                    _ => {}
                }
            }
            ServerPacket::PubRel { pkid, .. } => {
                if self.awaiting_rel.remove(&pkid) {
                    // Before PUBCOMP: an id still held after a crash would swallow the
                    // remote's next message under it as a resend.
                    self.log(Record::InRel {
                        client: self.id.clone(),
                        pkid,
                    });
                }
                mqtt::encode_pubcomp(pkid, PubRelCode::Success, wbuf);
            }
            ServerPacket::PubAck { pkid, .. } | ServerPacket::PubComp { pkid, .. } => {
                self.acked(pkid);
            }
            ServerPacket::PubRec { pkid, code } => {
                if code.is_error() {
                    self.acked(pkid);
                } else {
                    if let Some(o) = self.inflight.iter_mut().find(|o| o.pkid == pkid) {
                        o.released = true;
                    }
                    mqtt::encode_pubrel(pkid, PubRelCode::Success, wbuf);
                }
            }
            ServerPacket::SubAck { codes, .. } => {
                let refused = codes.iter().filter(|c| c.is_error()).count();
                if refused > 0 {
                    self.note(&format!(
                        "the remote refused {refused} of the bridge's {} in subscriptions",
                        codes.len()
                    ));
                }
            }
            ServerPacket::Disconnect(d) => {
                return Err(anyhow!(
                    "the remote disconnected: {}",
                    mqtt::ReasonCode::from(d.code).words()
                ));
            }
            ServerPacket::PingResp | ServerPacket::UnsubAck { .. } | ServerPacket::Auth(_) => {}
            ServerPacket::ConnAck(_) => {
                return Err(anyhow!("a second CONNACK from the remote"));
            }
        }
        Ok(())
    }

    /// A message from the remote, published here under its local topic, and `then` logged
    /// with it; returns the log position that holds both.
    fn inbound(&self, msg: Message, then: Option<Record>) -> Option<u64> {
        let Some(map) = self
            .bridge
            .topics
            .iter()
            .filter(|t| t.direction.inbound())
            .find(|t| topic::matches(&t.remote(), &msg.topic))
        else {
            return self.append(then);
        };
        let topic = swap_prefix(&msg.topic, &map.remote_prefix, &map.local_prefix);
        self.publish_here(topic, msg.payload, msg.qos, msg.retain, msg.props, then)
    }

    /// The remote has the message sent as `pkid` (or refused it): it is done here.
    fn acked(&mut self, pkid: u16) {
        if let Some(i) = self.inflight.iter().position(|o| o.pkid == pkid) {
            let out = self.inflight.remove(i);
            self.done(out.and_then(|o| o.stored));
        }
    }

    fn done(&self, stored: Option<u64>) {
        if let (Some(store), Some(entry)) = (&self.store, stored) {
            store.append(Record::Done {
                client: self.id.clone(),
                entry,
            });
        }
    }

    /// A message of this broker, sent to the remote under its remote topic.
    fn outgoing(&mut self, conn: &Conn, d: Delivery, wbuf: &mut BytesMut) -> anyhow::Result<()> {
        let map = self
            .bridge
            .topics
            .iter()
            .filter(|t| t.direction.outbound())
            .find(|t| topic::matches(&t.local(), &d.msg.topic));
        let Some(map) = map.filter(|_| !d.msg.expired()) else {
            self.done(d.stored);
            return Ok(());
        };
        let topic = swap_prefix(&d.msg.topic, &map.local_prefix, &map.remote_prefix);
        let msg = Message {
            topic,
            payload: d.msg.payload.clone(),
            qos: d.qos,
            retain: d.retain,
            props: (conn.proto == Protocol::V5)
                .then(|| d.msg.props.clone())
                .flatten(),
        };
        // Only a 3.1.1 remote that does not know this is a bridge sends it back.
        if conn.proto == Protocol::V311 && !conn.private && self.comes_back(&msg) {
            if self.echo.len() >= ECHO_MAX {
                self.echo.clear();
            }
            *self.echo.entry(fingerprint(&msg)).or_default() += 1;
        }
        let pkid = if msg.qos > 0 { self.pkid() } else { 0 };
        mqtt::encode_publish(conn.proto, &msg, pkid, false, wbuf)?;
        if msg.qos > 0 {
            self.inflight.push_back(Sent {
                pkid,
                msg,
                stored: d.stored,
                released: false,
            });
        } else {
            self.done(d.stored);
        }
        Ok(())
    }

    /// Whether the remote will send `msg` back: the bridge subscribes there to its topic.
    fn comes_back(&self, msg: &Message) -> bool {
        self.bridge
            .topics
            .iter()
            .any(|t| t.direction.inbound() && topic::matches(&t.remote(), &msg.topic))
    }

    /// Takes one expected echo of a message the bridge sent, if `msg` is one.
    fn echoed(&mut self, msg: &Message) -> bool {
        if self.echo.is_empty() {
            return false;
        }
        let key = fingerprint(msg);
        match self.echo.get_mut(&key) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.echo.remove(&key);
                }
                true
            }
            None => false,
        }
    }

    fn pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            let id = self.next_pkid;
            if !self.inflight.iter().any(|o| o.pkid == id) {
                return id;
            }
        }
    }
}

/// A connection failure in the words of a bridge section: the explanations are shared with
/// the clients, whose fixes are flags, where a bridge's are its `bridge_` keys.
fn in_bridge_words(e: anyhow::Error) -> anyhow::Error {
    let mut text = format!("{e:#}");
    for (flag, key) in [
        ("--cafile", "bridge_cafile"),
        ("--capath", "bridge_capath"),
        (
            "--cert FILE and --key FILE",
            "bridge_certfile and bridge_keyfile",
        ),
        ("--cert and --key", "bridge_certfile and bridge_keyfile"),
        ("--insecure", "bridge_insecure true"),
    ] {
        text = text.replace(flag, key);
    }
    anyhow!(text)
}

/// The wait between connection attempts: `restart_timeout BASE`, or with `CAP` Mosquitto's
/// decorrelated jitter (each wait drawn from BASE to three times the last, at most CAP), so
/// that many edges whose remote went away do not all come back at the same instant.
struct Backoff {
    base: Duration,
    cap: Option<Duration>,
    last: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    fn new(base: Duration, cap: Option<Duration>) -> Backoff {
        Backoff {
            base,
            cap,
            last: base,
            rng: fastrand::Rng::new(),
        }
    }

    fn next(&mut self) -> Duration {
        let Some(cap) = self.cap else {
            return self.base;
        };
        let (low, high) = (self.base.as_millis(), (self.last * 3).as_millis());
        let ms = self.rng.u128(low..=high.max(low));
        self.last = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)).min(cap);
        self.last
    }

    fn reset(&mut self) {
        self.last = self.base;
    }
}

fn fingerprint(msg: &Message) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    msg.topic.hash(&mut h);
    msg.payload.hash(&mut h);
    h.finish()
}

/// `topic` with `from` at its start replaced by `to`.
fn swap_prefix(topic: &[u8], from: &str, to: &str) -> Bytes {
    let rest = topic.strip_prefix(from.as_bytes()).unwrap_or(topic);
    let mut t = Vec::with_capacity(to.len() + rest.len());
    t.extend_from_slice(to.as_bytes());
    t.extend_from_slice(rest);
    Bytes::from(t)
}

/// Mosquitto's bridge bit: 0x80 on the protocol level byte, after the fixed header and the
/// protocol name ("MQTT", 6 bytes with its length).
fn set_bridge_bit(connect: &mut BytesMut) {
    let header = 1 + connect[1..].iter().take_while(|&&b| b & 0x80 != 0).count() + 1;
    if let Some(level) = connect.get_mut(header + 6) {
        *level |= 0x80;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_bit_is_on_the_protocol_level() {
        let mut buf = BytesMut::new();
        mqtt::encode_connect(&Connect::new(Protocol::V311, "x"), &mut buf).unwrap();
        set_bridge_bit(&mut buf);
        assert_eq!(&buf[2..9], b"\0\x04MQTT\x84");
    }

    #[test]
    fn backoff_grows_to_the_cap_and_starts_again_after_a_connection() {
        let (base, cap) = (Duration::from_secs(2), Duration::from_secs(30));
        let mut b = Backoff::new(base, Some(cap));
        b.rng.seed(7);
        let waits: Vec<Duration> = (0..20).map(|_| b.next()).collect();
        assert!(waits.iter().all(|w| (base..=cap).contains(w)), "{waits:?}");
        assert!(waits.iter().any(|w| *w > base * 3), "{waits:?}");
        b.reset();
        assert!(b.next() <= base * 3);
        let mut fixed = Backoff::new(base, None);
        assert_eq!([fixed.next(), fixed.next()], [base, base]);
    }

    #[test]
    fn prefixes_swap() {
        assert_eq!(swap_prefix(b"edge/a/b", "edge/", "site1/"), "site1/a/b");
        assert_eq!(swap_prefix(b"a/b", "", "r/"), "r/a/b");
    }

    #[test]
    fn map_is_used() {
        let t = super::super::TopicMap::parse("a/# both 1 l/ r/").unwrap();
        assert_eq!(
            swap_prefix(b"r/a/x", &t.remote_prefix, &t.local_prefix),
            "l/a/x"
        );
    }
}
