//! One client connection: CONNECT, the QoS flows in both directions, keep-alive, topic
//! aliases, flow control, wills and the end of the session.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep_until, timeout};

use super::Config;
use super::auth::{Admitted, Auth, acl::ClientAcl, reserved_for_broker};
use super::persist::Store;
use super::persist::model::{Record, unix_now};
use super::router::{Router, Shared};
use super::state::{Delivery, Inbox, Mailbox, Published, SessionEntry, Stage, State, SubOptions};
use crate::conn::transport::{Reader, Writer};
use crate::mqtt::ReasonCode;
use crate::mqtt::{
    self, ClientDisconnectCode, ClientPacket, ConnAck, ConnAckCode, Connect, Filter, Message,
    Protocol, PubAckCode, PubRelCode, PublishProperties, ServerDisconnectCode, SubAckCode,
    UnsubAckCode, Violation, Will,
};
use crate::topic::shared_parts;

/// How long a connection may take to send its CONNECT: a real client sends it at once, and a
/// connection that has not logged in must not be held open (and its buffer with it) for long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new connection waits for the one it takes over to hand the session back.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Topic aliases a client may set up with us (v5 CONNACK Topic Alias Maximum).
pub const TOPIC_ALIAS_MAX: u16 = 10;
pub(super) const NEVER: u32 = u32::MAX;
/// Bytes of answers (PUBACKs and the like) a client may leave unread before we stop reading
/// its packets; deliveries stop at a quarter of this.
const MAX_UNREAD_ANSWERS: usize = 1024 * 1024;
/// A buffer that grew past this for a large packet or a burst is given back once it has
/// drained, rather than kept for the rest of the connection: ordinary traffic stays below it.
const KEEP_BUFFER: usize = 64 * 1024;

/// Why a connection ended, which decides the will.
enum End {
    /// DISCONNECT 0x00: no will. 0x04 asks for the will.
    Disconnect { with_will: bool },
    /// Keep-alive timeout, protocol violation, network error, takeover: the will is published.
    Abnormal,
    /// The broker is shutting down.
    Shutdown,
}

/// Who is on the other end, before CONNECT says more.
pub struct Client {
    pub auth: Arc<Auth>,
    pub addr: std::net::IpAddr,
    /// On TLS listeners: the client certificate's subject CN, if it sent one.
    pub tls_cn: Option<Option<String>>,
    /// On WebSocket listeners: what lifts the cap on bytes before CONNECT.
    pub gate: Option<super::listener::Gate>,
}

pub async fn serve(
    shared: Arc<Shared>,
    config: Arc<Config>,
    client: Client,
    mut reader: Reader,
    mut writer: Writer,
    mut shutdown: watch::Receiver<bool>,
) {
    // Small to start with: most connections are idle most of the time.
    let mut rbuf = BytesMut::with_capacity(512);
    let mut wbuf = BytesMut::with_capacity(256);
    let connect = match timeout(
        CONNECT_TIMEOUT,
        read_connect(&mut reader, &mut rbuf, config.max_packet),
    )
    .await
    {
        Ok(Ok(Some(c))) => {
            if let Some(gate) = &client.gate {
                gate.open();
            }
            c
        }
        Ok(Err(v)) => {
            refuse_connect(&mut writer, &v).await;
            return;
        }
        // Closed before or while sending CONNECT, or too slow: nothing to answer.
        Ok(Ok(None)) | Err(_) => return,
    };
    let mut conn =
        match Connection::open(shared, config, client, connect, &mut writer, &mut wbuf).await {
            Some(c) => c,
            None => return,
        };
    let mut state_guard =
        match timeout(TAKEOVER_TIMEOUT, conn.entry_state.clone().lock_owned()).await {
            Ok(g) => g,
            Err(_) => return,
        };
    conn.online.store(true, Ordering::Relaxed);
    conn.shared
        .counters
        .clients_connected
        .fetch_add(1, Ordering::Relaxed);
    let end = conn
        .run(
            &mut state_guard,
            &mut reader,
            &mut writer,
            rbuf,
            wbuf,
            &mut shutdown,
        )
        .await;
    conn.online.store(false, Ordering::Relaxed);
    // The session is ended or parked before the client can see the close: a client that
    // reconnects at once must find it in its new state.
    conn.finish(end, &state_guard);
    let _ = writer.shutdown().await;
}

async fn read_connect(
    reader: &mut Reader,
    rbuf: &mut BytesMut,
    max: usize,
) -> Result<Option<Connect>, Violation> {
    loop {
        if let Some(c) = mqtt::decode_connect(rbuf, max)? {
            return Ok(Some(c));
        }
        match reader.read(rbuf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

async fn refuse_connect(writer: &mut Writer, v: &Violation) {
    if let (Some(proto), Some(code)) = (v.answer, v.connack_code()) {
        send_connack(writer, proto, code).await;
    }
}

/// A refusing CONNACK (in 3.1.1 with the closest return code), then the close.
async fn send_connack(writer: &mut Writer, proto: Protocol, code: ConnAckCode) {
    let mut buf = BytesMut::new();
    mqtt::encode_connack(proto, &ConnAck::refused(code), &mut buf);
    while !buf.is_empty() {
        if writer.write(&mut buf).await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

struct Connection {
    shared: Arc<Shared>,
    config: Arc<Config>,
    proto: Protocol,
    client_id: Arc<str>,
    mailbox: Mailbox,
    online: Arc<AtomicBool>,
    kick: Arc<Notify>,
    generation: u64,
    entry_state: Arc<tokio::sync::Mutex<State>>,
    keepalive: Option<Duration>,
    will: Option<Will>,
    session_expiry: u32,
    /// The client's limits on what we send it.
    receive_max: usize,
    max_packet: usize,
    aliases: HashMap<u16, Bytes>,
    /// Retained messages owed to new subscriptions, sent ahead of the mailbox.
    backlog: VecDeque<Delivery>,
    problem_info: bool,
    /// None without an ACL file: then nothing is checked.
    acl: Option<Arc<ClientAcl>>,
    /// `--persist`: the broker's log, and whether this session is written to it.
    store: Option<Arc<Store>>,
    durable: bool,
    /// Log position that must be on disk before anything more is sent: what we are about to
    /// acknowledge was written there.
    sync_to: u64,
}

impl Connection {
    /// Registers the session (taking over or resuming one with the same client id) and sends
    /// CONNACK. None when the connection was refused.
    async fn open(
        shared: Arc<Shared>,
        config: Arc<Config>,
        client: Client,
        c: Connect,
        writer: &mut Writer,
        wbuf: &mut BytesMut,
    ) -> Option<Connection> {
        let proto = c.proto;
        if c.auth_method.is_some() {
            send_connack(writer, proto, ConnAckCode::BadAuthenticationMethod).await;
            return None;
        }
        // Assigned before the login, so that `%c` in the ACL means the id the client gets.
        let assigned = c.client_id.is_empty();
        let client_id: Arc<str> = if assigned {
            Arc::from(format!("smq-{:016x}", fastrand::u64(..)))
        } else {
            Arc::from(c.client_id.as_str())
        };
        let Admitted { username, acl } = match client
            .auth
            .admit(
                &c,
                &client_id,
                client.addr,
                client.tls_cn.as_ref().map(Option::as_deref),
            )
            .await
        {
            Ok(admitted) => admitted,
            Err(code) => {
                send_connack(writer, proto, code).await;
                return None;
            }
        };
        if !config.retain_available && c.will.as_ref().is_some_and(|w| w.retain) {
            // v5 says why; 3.1.1 has no code for it and just closes (as mosquitto).
            if proto == Protocol::V5 {
                send_connack(writer, proto, ConnAckCode::RetainNotSupported).await;
            }
            return None;
        }
        let connected = shared.counters.clients_connected.load(Ordering::Relaxed);
        if connected >= config.max_connections as u64 {
            // 3.1.1: server unavailable.
            send_connack(writer, proto, ConnAckCode::QuotaExceeded).await;
            return None;
        }
        // 3.1.1: clean session 0 keeps the session forever; v5: the expiry interval decides.
        let session_expiry = match proto {
            Protocol::V311 if c.clean => 0,
            Protocol::V311 => NEVER,
            Protocol::V5 => c.session_expiry,
        };
        // v5 lets the server impose its keep-alive (Server Keep Alive); a 3.1.1 client keeps
        // its own, 0 included.
        let too_long = c.keepalive > config.max_keepalive
            || (c.keepalive == 0 && config.max_keepalive < u16::MAX);
        let (keepalive, server_keepalive) = if too_long && proto == Protocol::V5 {
            (config.max_keepalive, Some(config.max_keepalive))
        } else {
            (c.keepalive, None)
        };

        let (mailbox, kick, generation, entry_state, session_present, store, durable, sync_to) = {
            let mut router = shared.lock();
            let generation = router.next_generation();
            let old = router.sessions.remove(&client_id);
            let store = router.store.clone();
            let durable = store.is_some() && session_expiry > 0;
            let was_durable = old
                .as_ref()
                .is_some_and(|o| o.mailbox.durable.load(Ordering::Relaxed));
            if let Some(old) = &old {
                // Takeover: the old connection gets DISCONNECT 0x8E and closes [MQTT-3.1.4-3].
                old.kick.notify_one();
            }
            // Only the user who owns a session resumes it: anyone else who takes its client
            // id gets a clean start, as if they had asked for one.
            let resume = old.filter(|o| !c.clean && o.owner == username);
            let (mailbox, state, present) = match resume {
                Some(old) => (old.mailbox, old.state, true),
                None => {
                    // A clean start drops what the old session subscribed to [MQTT-3.1.2-4].
                    router.remove_client(&client_id);
                    let inbox = Inbox::new(config.max_queued);
                    let mailbox = Mailbox {
                        client_id: client_id.clone(),
                        inbox: inbox.clone(),
                        online: Arc::new(AtomicBool::new(false)),
                        durable: Arc::new(AtomicBool::new(false)),
                    };
                    let state = State {
                        inbox,
                        subscriptions: HashMap::new(),
                        outgoing: BTreeMap::new(),
                        incoming_qos2: HashSet::new(),
                        next_pkid: 0,
                    };
                    (mailbox, Arc::new(tokio::sync::Mutex::new(state)), false)
                }
            };
            let kick = Arc::new(Notify::new());
            router.sessions.insert(
                client_id.clone(),
                SessionEntry {
                    mailbox: mailbox.clone(),
                    kick: kick.clone(),
                    generation,
                    state: state.clone(),
                    owner: username.clone(),
                },
            );
            mailbox.durable.store(durable, Ordering::Relaxed);
            // CONNACK waits for this: a session reported present must be on disk.
            let sync_to = match &store {
                Some(s) if durable => {
                    // A temporary session resumed as a persistent one: the log has nothing
                    // of it yet, so it gets what the session subscribed to, in one frame.
                    let adopted = present && !was_durable;
                    let _group = adopted.then(|| s.group());
                    let mut pos = s.append(Record::Session {
                        client: client_id.clone(),
                        expiry: session_expiry,
                        clean: !present || adopted,
                        owner: username,
                    });
                    if adopted {
                        for (filter, opts) in router.subscriptions_of(&client_id) {
                            pos = s.append(Record::Sub {
                                client: client_id.clone(),
                                filter,
                                opts,
                            });
                        }
                    }
                    pos
                }
                Some(s) if was_durable => s.append(Record::Gone {
                    client: client_id.clone(),
                }),
                _ => 0,
            };
            (
                mailbox, kick, generation, state, present, store, durable, sync_to,
            )
        };
        let ack = ConnAck {
            session_present,
            code: ConnAckCode::Success,
            assigned_client_id: (assigned && proto == Protocol::V5).then(|| client_id.to_string()),
            receive_max: Some(config.max_inflight),
            max_packet: u32::try_from(config.max_packet).ok(),
            topic_alias_max: Some(TOPIC_ALIAS_MAX),
            retain_available: Some(config.retain_available),
            wildcard_available: Some(true),
            sub_ids_available: Some(true),
            shared_available: Some(true),
            server_keepalive,
            ..ConnAck::default()
        };
        mqtt::encode_connack(proto, &ack, wbuf);
        let online = mailbox.online.clone();
        Some(Connection {
            shared,
            config,
            proto,
            client_id,
            mailbox,
            online,
            kick,
            generation,
            entry_state,
            keepalive: (keepalive > 0).then(|| Duration::from_millis(u64::from(keepalive) * 1500)),
            // Accepted and never published, as Mosquitto does with a will it would not let
            // the client publish.
            will: c.will.filter(|w| !reserved_for_broker(w.topic.as_bytes())),
            session_expiry,
            receive_max: usize::from(c.receive_max.max(1)),
            max_packet: c.max_packet.map_or(mqtt::MAX_PACKET, |m| m as usize),
            aliases: HashMap::new(),
            backlog: VecDeque::new(),
            problem_info: c.request_problem_info,
            acl,
            durable,
            store,
            sync_to,
        })
    }

    async fn run(
        &mut self,
        state: &mut State,
        reader: &mut Reader,
        writer: &mut Writer,
        mut rbuf: BytesMut,
        mut wbuf: BytesMut,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        // What the client may no longer read (the ACL file changed since these were sent)
        // is dropped, not sent again.
        if let Some(acl) = &self.acl {
            let revoked: Vec<u16> = state
                .outgoing
                .iter()
                .filter(|(_, (d, stage))| *stage != Stage::Comp && !acl.may_read(&d.msg.topic))
                .map(|(&pkid, _)| pkid)
                .collect();
            for pkid in revoked {
                if let Some((d, _)) = state.outgoing.remove(&pkid) {
                    self.done(&d);
                }
            }
        }
        // Unacknowledged messages of a resumed session go out again, PUBLISH with DUP set
        // [MQTT-4.4.0-1].
        for (&pkid, (d, stage)) in &state.outgoing {
            match stage {
                Stage::Comp => mqtt::encode_pubrel(pkid, PubRelCode::Success, &mut wbuf),
                _ => {
                    self.encode_delivery(d, pkid, true, &mut wbuf);
                }
            }
        }
        let window = self.receive_max.min(usize::from(self.config.max_inflight));
        let mut deadline = self.keepalive.map(|k| Instant::now() + k);
        // Packets are encoded into `wbuf`, then staged into `out`, which the socket drains.
        let mut out = Out::default();
        let store = self.store.clone();
        loop {
            // Decode everything already read.
            let mut large = false;
            loop {
                let before = rbuf.len();
                match mqtt::decode_client(self.proto, &mut rbuf, self.config.max_packet) {
                    Ok(Some(p)) => {
                        large |= before - rbuf.len() > KEEP_BUFFER;
                        if let Some(k) = self.keepalive {
                            deadline = Some(Instant::now() + k);
                        }
                        match self.handle(p, state, &mut wbuf) {
                            Ok(None) => {}
                            Ok(Some(end)) => {
                                self.settle(&mut out, &mut wbuf).await;
                                flush(writer, &mut out.ready).await;
                                return end;
                            }
                            Err(v) => {
                                self.settle(&mut out, &mut wbuf).await;
                                return self.violation(v, writer, &mut out.ready).await;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(v) => {
                        self.settle(&mut out, &mut wbuf).await;
                        return self.violation(v, writer, &mut out.ready).await;
                    }
                }
            }
            // The buffer grew to hold that packet: what is left moves to a small one.
            if large {
                rbuf = BytesMut::from(&rbuf[..]);
            }
            // Fill the client's receive window from the backlog, then the mailbox.
            while state.outgoing.len() < window && out.len() + wbuf.len() < 256 * 1024 {
                let Some(d) = self.backlog.pop_front().or_else(|| state.inbox.pop()) else {
                    break;
                };
                self.deliver(d, state, &mut wbuf);
            }
            // A subscription to many retained messages grew it; they are sent.
            if self.backlog.is_empty() && self.backlog.capacity() > 64 {
                self.backlog = VecDeque::new();
            }
            // Acknowledgements go out only once what they acknowledge is on disk; reading
            // goes on meanwhile, so one fsync covers a whole window of messages.
            out.stage(&mut wbuf, std::mem::take(&mut self.sync_to));
            // Only held output waits for the disk: a clean session never reads the position.
            if let (Some(s), false) = (&store, out.held.is_empty()) {
                out.release(s.durable());
            }
            let waiting = out.held.front().map(|h| h.0);
            let can_take = state.outgoing.len() < window && out.len() < 256 * 1024;
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                r = writer.write(&mut out.ready), if !out.ready.is_empty() => {
                    if r.is_err() {
                        return End::Abnormal;
                    }
                    out.trim(&mut wbuf);
                }
                () = synced(store.as_deref(), waiting), if waiting.is_some() => {}
                // A client that sends without reading what we answer is not read from
                // until it catches up, so its acknowledgements cannot pile up without bound.
                r = reader.read(&mut rbuf), if out.len() < MAX_UNREAD_ANSWERS => match r {
                    Ok(0) | Err(_) => return End::Abnormal,
                    Ok(n) => {
                        self.shared.counters.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                },
                d = state.inbox.recv(), if can_take => {
                    self.deliver(d, state, &mut wbuf);
                }
                _ = sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    // [MQTT-3.1.2-22]: 1.5 times the keep alive without a packet.
                    self.settle(&mut out, &mut wbuf).await;
                    return self
                        .server_disconnect(ServerDisconnectCode::KeepAliveTimeout, writer, &mut out.ready)
                        .await;
                }
                _ = self.kick.notified() => {
                    self.settle(&mut out, &mut wbuf).await;
                    return self
                        .server_disconnect(ServerDisconnectCode::SessionTakenOver, writer, &mut out.ready)
                        .await;
                }
                _ = shutdown.changed() => {
                    self.settle(&mut out, &mut wbuf).await;
                    if self.proto == Protocol::V5 {
                        mqtt::encode_disconnect(
                            ServerDisconnectCode::ServerShuttingDown,
                            None,
                            &mut out.ready,
                        );
                    }
                    flush(writer, &mut out.ready).await;
                    return End::Shutdown;
                }
            }
        }
    }

    /// Stages `wbuf` and waits until everything held can go: before the connection ends.
    async fn settle(&mut self, out: &mut Out, wbuf: &mut BytesMut) {
        out.stage(wbuf, std::mem::take(&mut self.sync_to));
        if let (Some(s), Some(&(pos, _))) = (&self.store, out.held.back()) {
            s.synced(pos).await;
        }
        out.release(u64::MAX);
    }

    /// The log, when this session is persistent.
    fn log(&self) -> Option<&Store> {
        self.store.as_deref().filter(|_| self.durable)
    }

    /// Appends a session record that must be on disk before the next packet goes out.
    fn log_synced(&mut self, r: Record) {
        if let Some(s) = self.log() {
            self.sync_to = s.append(r);
        }
    }

    /// A persisted delivery is finished: acknowledged, or dropped.
    fn done(&self, d: &Delivery) {
        if let (Some(s), Some(entry)) = (self.log(), d.stored) {
            s.append(Record::Done {
                client: self.client_id.clone(),
                entry,
            });
        }
    }

    /// Sends a v5 DISCONNECT with `code` (3.1.1 has none: the connection just closes).
    async fn server_disconnect(
        &self,
        code: ServerDisconnectCode,
        writer: &mut Writer,
        wbuf: &mut BytesMut,
    ) -> End {
        if self.proto == Protocol::V5 {
            mqtt::encode_disconnect(code, None, wbuf);
        }
        flush(writer, wbuf).await;
        End::Abnormal
    }

    async fn violation(&self, v: Violation, writer: &mut Writer, wbuf: &mut BytesMut) -> End {
        if self.proto == Protocol::V5 {
            let reason = self.problem_info.then_some(v.why.as_str());
            let code = ServerDisconnectCode::try_from(v.code.number())
                .unwrap_or(ServerDisconnectCode::UnspecifiedError);
            mqtt::encode_disconnect(code, reason, wbuf);
        }
        flush(writer, wbuf).await;
        End::Abnormal
    }

    fn handle(
        &mut self,
        p: ClientPacket,
        state: &mut State,
        wbuf: &mut BytesMut,
    ) -> Result<Option<End>, Violation> {
        match p {
            ClientPacket::Publish { msg, pkid, dup: _ } => {
                self.on_publish(msg, pkid, state, wbuf)?
            }
            ClientPacket::PubAck { pkid, .. } => {
                if matches!(state.outgoing.get(&pkid), Some((_, Stage::Ack))) {
                    if let Some((d, _)) = state.outgoing.remove(&pkid) {
                        self.done(&d);
                    }
                }
            }
            ClientPacket::PubRec { pkid, code } => match state.outgoing.get_mut(&pkid) {
                Some((d, stage @ Stage::Rec)) if !code.is_error() => {
                    *stage = Stage::Comp;
                    // PUBREL waits for this: a client that completes the flow forgets the
                    // packet id, and would take the PUBLISH resent after a crash as new.
                    if d.stored.is_some() {
                        self.log_synced(Record::Released {
                            client: self.client_id.clone(),
                            pkid,
                        });
                    }
                    mqtt::encode_pubrel(pkid, PubRelCode::Success, wbuf);
                }
                Some((_, Stage::Rec)) => {
                    if let Some((d, _)) = state.outgoing.remove(&pkid) {
                        self.done(&d);
                    }
                }
                // Not ours: a v5 client still gets its PUBREL, saying so.
                _ => mqtt::encode_pubrel(pkid, self.pid_not_found(), wbuf),
            },
            ClientPacket::PubComp { pkid, .. } => {
                if matches!(state.outgoing.get(&pkid), Some((_, Stage::Comp))) {
                    if let Some((d, _)) = state.outgoing.remove(&pkid) {
                        self.done(&d);
                    }
                }
            }
            ClientPacket::PubRel { pkid, .. } => {
                let known = state.incoming_qos2.remove(&pkid);
                if known {
                    // Before PUBCOMP: a packet id still held after a crash would swallow the
                    // client's next message under it as a resend.
                    self.log_synced(Record::InRel {
                        client: self.client_id.clone(),
                        pkid,
                    });
                }
                let code = if known {
                    PubRelCode::Success
                } else {
                    self.pid_not_found()
                };
                mqtt::encode_pubcomp(pkid, code, wbuf);
            }
            ClientPacket::Subscribe {
                pkid,
                filters,
                sub_id,
            } => self.on_subscribe(pkid, filters, sub_id, state, wbuf)?,
            ClientPacket::Unsubscribe { pkid, filters } => {
                let mut codes = Vec::with_capacity(filters.len());
                let mut gone = Vec::with_capacity(filters.len());
                let mut router = self.shared.lock();
                for f in filters {
                    let existed = router.unsubscribe(&f, &self.client_id);
                    state.subscriptions.remove(&f);
                    codes.push(if existed {
                        UnsubAckCode::Success
                    } else {
                        UnsubAckCode::NoSubscriptionExisted
                    });
                    // A filter that was not subscribed changes nothing on disk.
                    if existed {
                        gone.push(f);
                    }
                }
                drop(router);
                for f in gone {
                    self.log_synced(Record::Unsub {
                        client: self.client_id.clone(),
                        filter: f,
                    });
                }
                mqtt::encode_unsuback(self.proto, pkid, &codes, wbuf);
            }
            ClientPacket::PingReq => mqtt::encode_pingresp(wbuf),
            ClientPacket::Disconnect(d) => {
                if let Some(e) = d.session_expiry {
                    // Setting an expiry on a session that had none is a protocol error
                    // [MQTT-3.14.2-2].
                    if self.session_expiry == 0 && e != 0 {
                        return Err(Violation::protocol(
                            "session expiry set in DISCONNECT after 0 in CONNECT",
                        ));
                    }
                    self.session_expiry = e;
                }
                return Ok(Some(End::Disconnect {
                    with_will: d.code == ClientDisconnectCode::DisconnectWithWill,
                }));
            }
            ClientPacket::Auth(_) => {
                return Err(Violation::protocol("AUTH without an authentication method"));
            }
            ClientPacket::Connect => {
                // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
                return Err(Violation::protocol("a second CONNECT"));
            }
        }
        Ok(None)
    }

    /// `code` for a v5 client; 3.1.1 has no way to say no, so its client gets success.
    fn v5_code(&self, code: PubAckCode) -> PubAckCode {
        if self.proto == Protocol::V5 {
            code
        } else {
            PubAckCode::Success
        }
    }

    /// PUBREL or PUBCOMP for a packet id we do not know.
    fn pid_not_found(&self) -> PubRelCode {
        if self.proto == Protocol::V5 {
            PubRelCode::PacketIdentifierNotFound
        } else {
            PubRelCode::Success
        }
    }

    fn on_publish(
        &mut self,
        mut msg: Message,
        pkid: u16,
        state: &mut State,
        wbuf: &mut BytesMut,
    ) -> Result<(), Violation> {
        if let Some(alias) = msg.props.as_mut().and_then(|p| p.topic_alias.take()) {
            if alias == 0 || alias > TOPIC_ALIAS_MAX {
                return Err(Violation::new(
                    ReasonCode::TopicAliasInvalid,
                    format!("topic alias {alias} is not between 1 and {TOPIC_ALIAS_MAX}"),
                ));
            }
            if msg.topic.is_empty() {
                msg.topic = self.aliases.get(&alias).cloned().ok_or_else(|| {
                    Violation::protocol(format!("topic alias {alias} was never set"))
                })?;
            } else {
                self.aliases.insert(alias, msg.topic.clone());
            }
        }
        let counters = &self.shared.counters;
        counters.messages_received.fetch_add(1, Ordering::Relaxed);
        if msg.qos == 2 && state.incoming_qos2.contains(&pkid) {
            // A resent QoS 2 PUBLISH: acknowledged again, not delivered twice [MQTT-4.3.3-9].
            // Its InQos2 may be a previous connection's, not on disk yet: PUBREC waits for it.
            if let Some(s) = self.log() {
                self.sync_to = self.sync_to.max(s.position());
            }
            mqtt::encode_pubrec(pkid, PubAckCode::Success, wbuf);
            return Ok(());
        }
        if msg.qos == 2 && state.incoming_qos2.len() >= usize::from(self.config.max_inflight) {
            return Err(Violation::new(
                ReasonCode::ReceiveMaximumExceeded,
                "more QoS 2 messages in flight than the receive maximum",
            ));
        }
        if msg.retain && !self.config.retain_available {
            return Err(Violation::new(
                ReasonCode::RetainNotSupported,
                "retained messages are not available on this broker",
            ));
        }
        let refused = if self
            .config
            .max_payload
            .is_some_and(|max| msg.payload.len() > max)
        {
            Some(PubAckCode::PacketTooLarge)
        } else if reserved_for_broker(&msg.topic)
            || self.acl.as_ref().is_some_and(|a| !a.may_write(&msg.topic))
        {
            Some(PubAckCode::NotAuthorized)
        } else {
            None
        };
        if let Some(code) = refused {
            // Dropped. v5 says so in the acknowledgement; 3.1.1 has no way to say no, so the
            // message is acknowledged as usual (as mosquitto does).
            match msg.qos {
                1 => mqtt::encode_puback(pkid, self.v5_code(code), wbuf),
                2 => {
                    // A v5 PUBREC with an error ends the flow; 3.1.1 goes on to PUBREL.
                    if self.proto == Protocol::V311 {
                        state.incoming_qos2.insert(pkid);
                    }
                    mqtt::encode_pubrec(pkid, self.v5_code(code), wbuf);
                }
                _ => {}
            }
            return Ok(());
        }
        let published = Arc::new(Published {
            topic: msg.topic,
            payload: msg.payload,
            qos: msg.qos,
            retain: msg.retain,
            props: msg.props,
            received: std::time::Instant::now(),
            from: Some(self.client_id.clone()),
        });
        // A QoS 2 packet id is logged with what the message wrote (see `publish_then`).
        let then = (published.qos == 2 && self.log().is_some()).then(|| Record::InQos2 {
            client: self.client_id.clone(),
            pkid,
        });
        let (delivered, dropped, synced) = self.shared.publish_then(&published, then);
        // The PUBACK/PUBREC below waits for what this message wrote to be on disk.
        if let (Some(pos), true) = (synced, published.qos > 0) {
            self.sync_to = self.sync_to.max(pos);
        }
        // v5: "no matching subscribers" is worth telling a publisher [MQTT-3.4.2.1].
        let code = if delivered == 0 && dropped == 0 {
            self.v5_code(PubAckCode::NoMatchingSubscribers)
        } else {
            PubAckCode::Success
        };
        match published.qos {
            1 => mqtt::encode_puback(pkid, code, wbuf),
            2 => {
                state.incoming_qos2.insert(pkid);
                mqtt::encode_pubrec(pkid, code, wbuf);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_subscribe(
        &mut self,
        pkid: u16,
        filters: Vec<Filter>,
        sub_id: Option<u32>,
        state: &mut State,
        wbuf: &mut BytesMut,
    ) -> Result<(), Violation> {
        let mut codes = Vec::with_capacity(filters.len());
        let mut router = self.shared.lock();
        for f in filters {
            // 3.1.1 has one code for every refusal: the encoder sends 0x80.
            if !f.valid {
                codes.push(SubAckCode::TopicFilterInvalid);
                continue;
            }
            let shared = shared_parts(&f.filter);
            let inner = shared.map_or(f.filter.as_str(), |(_, inner)| inner);
            if self.acl.as_ref().is_some_and(|a| !a.may_subscribe(inner)) {
                codes.push(SubAckCode::NotAuthorized);
                continue;
            }
            if shared.is_some() && f.no_local {
                // [MQTT-3.8.3-4]
                return Err(Violation::protocol("no local on a shared subscription"));
            }
            let opts = SubOptions {
                qos: f.qos,
                no_local: f.no_local,
                retain_as_published: f.retain_as_published,
                sub_id,
            };
            let existed = router.subscribe(&f.filter, &self.mailbox, opts);
            state.subscriptions.insert(f.filter.clone(), opts);
            let logged = self.log().map(|s| {
                s.append(Record::Sub {
                    client: self.client_id.clone(),
                    filter: f.filter.clone(),
                    opts,
                })
            });
            self.sync_to = logged.unwrap_or(self.sync_to);
            codes.push(SubAckCode::granted(f.qos));
            // Retained messages: never for shared subscriptions; per retain handling otherwise.
            let send_retained = shared.is_none()
                && match f.retain_handling {
                    0 => true,
                    1 => !existed,
                    _ => false,
                };
            if send_retained {
                for m in router.retained_matching(&f.filter) {
                    let qos = m.qos.min(f.qos);
                    let sub_ids: Vec<u32> = sub_id.into_iter().collect();
                    // Owed to a persistent session like any queued message: SUBACK waits
                    // for it to be on disk, and a restart before the ack sends it again.
                    let logged = self.log().filter(|_| qos > 0).map(|s| {
                        let id = s.add_message(&m);
                        s.enqueue(self.client_id.clone(), id, qos, true, sub_ids.clone())
                    });
                    if let Some((_, pos)) = logged {
                        self.sync_to = pos;
                    }
                    self.backlog.push_back(Delivery {
                        msg: m,
                        qos,
                        // Retained messages sent because of a subscription keep the flag
                        // [MQTT-3.3.1-9].
                        retain: true,
                        sub_ids,
                        stored: logged.map(|(entry, _)| entry),
                    });
                }
            }
        }
        drop(router);
        mqtt::encode_suback(self.proto, pkid, &codes, wbuf);
        Ok(())
    }

    /// Queues one delivery for the client, taking a packet id for QoS 1/2.
    fn deliver(&mut self, d: Delivery, state: &mut State, wbuf: &mut BytesMut) {
        if d.msg.expired() {
            self.done(&d);
            return;
        }
        if self.acl.as_ref().is_some_and(|a| !a.may_read(&d.msg.topic)) {
            // Never to be sent: the log must not keep it queued for ever.
            self.done(&d);
            return;
        }
        let pkid = if d.qos > 0 {
            loop {
                state.next_pkid = state.next_pkid.wrapping_add(1).max(1);
                if !state.outgoing.contains_key(&state.next_pkid) {
                    break state.next_pkid;
                }
            }
        } else {
            0
        };
        if !self.encode_delivery(&d, pkid, false, wbuf) {
            self.done(&d);
            return;
        }
        if let (2, Some(entry)) = (d.qos, d.stored) {
            // Sent only once its packet id is on disk: after a crash the client, which may
            // have it already, gets it again under the same id and so not twice.
            self.log_synced(Record::Assign {
                client: self.client_id.clone(),
                entry,
                pkid,
            });
        }
        if d.qos > 0 {
            let stage = if d.qos == 1 { Stage::Ack } else { Stage::Rec };
            state.outgoing.insert(pkid, (d, stage));
        }
    }

    /// Encodes a PUBLISH for this client; false if the client's maximum packet size forbids
    /// it (the message is then dropped for this client [MQTT-3.1.2-25]).
    fn encode_delivery(&self, d: &Delivery, pkid: u16, dup: bool, wbuf: &mut BytesMut) -> bool {
        let props = match self.proto {
            Protocol::V311 => None,
            Protocol::V5 => {
                let mut p = d.msg.props.clone().unwrap_or_default();
                p.topic_alias = None;
                p.message_expiry_interval = d.msg.remaining_expiry();
                p.subscription_identifiers = d.sub_ids.iter().map(|&i| i as usize).collect();
                (p != PublishProperties::default()).then_some(p)
            }
        };
        let msg = Message {
            topic: d.msg.topic.clone(),
            payload: d.msg.payload.clone(),
            qos: d.qos,
            retain: d.retain,
            props,
        };
        let start = wbuf.len();
        if mqtt::encode_publish(self.proto, &msg, pkid, dup, wbuf).is_err()
            || wbuf.len() - start > self.max_packet
        {
            wbuf.truncate(start);
            return false;
        }
        let counters = &self.shared.counters;
        counters.messages_sent.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes_sent
            .fetch_add((wbuf.len() - start) as u64, Ordering::Relaxed);
        true
    }

    /// Publishes the will if owed, and ends or parks the session.
    fn finish(self, end: End, state: &State) {
        self.shared
            .counters
            .clients_connected
            .fetch_sub(1, Ordering::Relaxed);
        let will = match end {
            End::Disconnect { with_will: false } | End::Shutdown => None,
            End::Disconnect { with_will: true } | End::Abnormal => self.will,
        };
        let still_ours = |router: &Router| {
            router
                .sessions
                .get(&self.client_id)
                .is_some_and(|e| e.generation == self.generation)
        };
        let log = self.store.clone().filter(|_| self.durable);
        if let Some(w) = will {
            // The will waits for its delay, but no longer than the session lives
            // [MQTT-3.1.3-9].
            let delay = w.delay.min(self.session_expiry);
            let msg = Arc::new(Published {
                topic: Bytes::from(w.topic.into_bytes()),
                payload: w.payload,
                qos: w.qos,
                retain: w.retain,
                props: w.props,
                received: std::time::Instant::now(),
                from: Some(self.client_id.clone()),
            });
            if delay == 0 {
                self.shared.publish(&msg);
            } else {
                if let Some(s) = &log {
                    // Under the router lock, so a reconnect's Session record (which cancels
                    // the will) cannot come before it.
                    let router = self.shared.lock();
                    if still_ours(&router) {
                        s.append(Record::Will {
                            client: self.client_id.clone(),
                            at: unix_now() + u64::from(delay),
                            msg: msg.clone(),
                        });
                    }
                }
                will_later(
                    self.shared.clone(),
                    self.client_id.clone(),
                    self.generation,
                    Duration::from_secs(delay.into()),
                    msg,
                );
            }
        }
        let mut router = self.shared.lock();
        if !still_ours(&router) {
            return;
        }
        if self.session_expiry == 0 {
            forget(&mut router, &self.client_id);
            router.unsubscribe_all(&self.client_id, state.subscriptions.keys().cloned());
            if let Some(s) = &log {
                s.append(Record::Gone {
                    client: self.client_id.clone(),
                });
            }
            return;
        }
        if let Some(s) = &log {
            s.append(Record::Offline {
                client: self.client_id.clone(),
                at: unix_now(),
                expiry: self.session_expiry,
            });
        }
        if self.session_expiry != NEVER {
            expire_later(
                self.shared.clone(),
                self.client_id.clone(),
                self.generation,
                Duration::from_secs(self.session_expiry.into()),
                state.subscriptions.keys().cloned().collect(),
            );
        }
    }
}

/// Publishes a delayed will unless the session has been taken up again by then.
pub(super) fn will_later(
    shared: Arc<Shared>,
    client_id: Arc<str>,
    generation: u64,
    delay: Duration,
    msg: Arc<Published>,
) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let reconnected = shared
            .lock()
            .sessions
            .get(&client_id)
            .is_some_and(|e| e.generation != generation);
        if !reconnected {
            // In one log frame with what the will wrote: a crash cannot publish it twice.
            shared.publish_then(&msg, Some(Record::WillDone { client: client_id }));
        }
    });
}

/// Ends a parked session once its expiry interval has passed, unless it was taken up again.
pub(super) fn expire_later(
    shared: Arc<Shared>,
    client_id: Arc<str>,
    generation: u64,
    expiry: Duration,
    filters: Vec<String>,
) {
    tokio::spawn(async move {
        tokio::time::sleep(expiry).await;
        let mut router = shared.lock();
        let expired = router
            .sessions
            .get(&client_id)
            .is_some_and(|e| e.generation == generation);
        if expired {
            forget(&mut router, &client_id);
            router.unsubscribe_all(&client_id, filters.into_iter());
            if let Some(s) = &router.store {
                s.append(Record::Gone { client: client_id });
            }
        }
    });
}

/// Ends a session for good. The table gives back what a crowd of clients that left grew it to.
fn forget(router: &mut Router, client_id: &str) {
    let sessions = &mut router.sessions;
    sessions.remove(client_id);
    if sessions.capacity() > 4 * sessions.len() + 1024 {
        sessions.shrink_to(2 * sessions.len());
    }
}

/// Output on its way to the client: `ready` is written as the socket takes it; each `held`
/// segment waits, in order, for the log position that makes what it acknowledges durable.
#[derive(Default)]
struct Out {
    ready: BytesMut,
    held: VecDeque<(u64, BytesMut)>,
    /// The most output (encoded, staged and unwritten) since the buffers were last given back.
    peak: usize,
}

impl Out {
    fn len(&self) -> usize {
        self.ready.len() + self.held.iter().map(|h| h.1.len()).sum::<usize>()
    }

    /// Takes what was just encoded: held until the log reaches `pos` (0: no need), and in
    /// any case behind what is held already.
    fn stage(&mut self, fresh: &mut BytesMut, pos: u64) {
        if fresh.is_empty() {
            return;
        }
        self.peak = self.peak.max(self.len() + fresh.len());
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

    /// Once everything is written, gives back the buffers a burst or a large message grew:
    /// `ready`, and `wbuf`, which it swaps with.
    fn trim(&mut self, wbuf: &mut BytesMut) {
        let drained = self.ready.is_empty() && self.held.is_empty() && wbuf.is_empty();
        if self.peak > KEEP_BUFFER && drained {
            self.ready = BytesMut::new();
            *wbuf = BytesMut::with_capacity(256);
            self.peak = 0;
        }
    }

    /// Lets go of the segments the log now covers.
    fn release(&mut self, durable: u64) {
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
pub(super) async fn synced(store: Option<&Store>, pos: Option<u64>) {
    if let (Some(s), Some(pos)) = (store, pos) {
        s.synced(pos).await;
    }
}

async fn flush(writer: &mut Writer, wbuf: &mut BytesMut) {
    while !wbuf.is_empty() {
        if writer.write(wbuf).await.is_err() {
            return;
        }
    }
}
