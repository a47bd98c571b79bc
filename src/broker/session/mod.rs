//! One client connection, from CONNECT to the end of the session: this file has the
//! connection's loop (reading, dispatching each packet, filling the client's receive window,
//! keep-alive, takeover, shutdown), the acknowledgement halves of the QoS flows, and the
//! end (the will, parking or ending the session). `open.rs` lets the client in and opens the
//! session; `flows.rs` takes PUBLISH and SUBSCRIBE in and sends deliveries out; `out.rs`
//! stages output behind the persistence log; `read.rs` reads without holding a buffer idle.

mod aliases;
mod flows;
mod open;
mod out;
mod read;

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::OwnedMutexGuard;
use tokio::time::timeout;

use super::Config;
use super::auth::{Auth, acl::ClientAcl};
use super::log::Gone;
use super::persist::Store;
use super::persist::record::{Record, unix_now};
use super::router::{Router, Shared};
use super::state::{Delivery, Mailbox, Published, Stage, State};
use crate::mqtt::{
    self, ClientDisconnectCode, ClientPacket, Protocol, PubRelCode, ServerDisconnectCode,
    UnsubAckCode, Violation, Will,
};
use crate::transport::{Reader, Writer};
use aliases::Aliases;
use open::{read_connect, refuse_connect};
pub(super) use out::{Out, synced};

/// How long a connection may take to send its CONNECT: a real client sends it at once, and a
/// connection that has not logged in must not be held open (and its buffer with it) for long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new connection waits for the one it takes over to hand the session back.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Topic aliases a client may set up with us (v5 CONNACK Topic Alias Maximum).
pub const TOPIC_ALIAS_MAX: u16 = 10;
/// A session expiry interval that never ends (3.1.1's clean session 0).
pub(in crate::broker) use crate::mqtt::SESSION_NEVER as NEVER;
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
    /// How, for the log.
    Abnormal(Gone),
    /// The broker is shutting down.
    Shutdown,
}

/// A failed read or write ends the connection as a socket error.
impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> End {
        End::Abnormal(Gone::Socket(e.kind()))
    }
}

/// Output going out: written to the socket, or waiting for the log to make it sendable.
/// Boxed, and only while there is some: the loop keeps no room for these while it only reads.
enum Drain<'a> {
    Idle,
    Busy(Pin<Box<dyn Future<Output = Drained> + Send + 'a>>),
}

enum Drained {
    Wrote(std::io::Result<()>),
    Synced,
}

impl<'a> Drain<'a> {
    fn new(
        writer: &'a mut Writer,
        ready: &'a mut BytesMut,
        store: Option<&'a Store>,
        waiting: Option<u64>,
    ) -> Drain<'a> {
        if ready.is_empty() && !writer.unflushed() && waiting.is_none() {
            return Drain::Idle;
        }
        Drain::Busy(Box::pin(async move {
            tokio::select! {
                r = writer.write(ready), if !ready.is_empty() || writer.unflushed() => Drained::Wrote(r),
                () = synced(store, waiting), if waiting.is_some() => Drained::Synced,
                else => Drained::Synced,
            }
        }))
    }
}

impl Future for Drain<'_> {
    type Output = Drained;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Drained> {
        match self.get_mut() {
            Drain::Idle => std::task::Poll::Pending,
            Drain::Busy(f) => f.as_mut().poll(cx),
        }
    }
}

/// How a connection is being closed (`Connection::close`).
enum Closing {
    /// The client ended it (DISCONNECT).
    End(End),
    Violation(Violation),
    /// We end it, saying why to a v5 client.
    Server(ServerDisconnectCode, Gone),
    Shutdown,
}

/// Who is on the other end, before CONNECT says more.
pub struct Client {
    pub auth: Arc<Auth>,
    pub addr: std::net::IpAddr,
    /// The client's port, for the log.
    pub port: u16,
    /// On TLS listeners: the client certificate's subject CN, if it sent one.
    pub tls_cn: Option<Option<String>>,
    /// On WebSocket listeners: what lifts the cap on bytes before CONNECT.
    pub gate: Option<super::listener::Gate>,
}

/// Serves one connection. The future is a block made here, not an async fn's: that would keep
/// the reader and writer twice, as they came and moved into the body, for the connection's life.
pub fn serve(
    shared: Arc<Shared>,
    config: Arc<Config>,
    client: Box<Client>,
    mut reader: Reader,
    mut writer: Writer,
) -> impl Future<Output = ()> + Send {
    // One pointer: what the block captures it keeps for its whole life, and these three are
    // for the handshake only.
    let start = Box::new((shared, config, client));
    async move {
        // Moved into a block of its own, the box is freed here, not when the task ends.
        let (shared, config, client) = {
            let start = start;
            *start
        };
        // Boxed: the task is as large as its largest state for as long as the connection lives,
        // and the handshake's states end with it.
        let Some((mut conn, mut state_guard, mut rbuf, mut wbuf)) =
            open(shared, config, client, &mut reader, &mut writer).await
        else {
            return;
        };
        conn.mailbox.inbox.online.store(true, Ordering::Relaxed);
        conn.shared
            .counters
            .clients_connected
            .fetch_add(1, Ordering::Relaxed);
        // The buffers are moved, never borrowed, here: this task then keeps no room for them
        // while the connection is idle, when they are empty.
        let end = loop {
            let ran = conn.run(&mut state_guard, &mut reader, &mut writer, rbuf, wbuf);
            if let Some(end) = ran.await {
                break end;
            }
            // Idle: the loop's future is given back until the client or the inbox wakes it.
            match conn.parked(&state_guard, &mut reader).await {
                Ok(read) => (rbuf, wbuf) = (read, BytesMut::new()),
                Err(end) => break end,
            }
        };
        conn.mailbox.inbox.online.store(false, Ordering::Relaxed);
        conn.mailbox.inbox.detach(conn.generation);
        let how = match end {
            End::Disconnect { .. } => Gone::Disconnected,
            End::Abnormal(how) => how,
            End::Shutdown => Gone::Silent,
        };
        conn.config.log.gone(Some(&conn.mailbox.client_id), how);
        // The session is ended or parked before the client can see the close: a client that
        // reconnects at once must find it in its new state.
        conn.finish(end, &state_guard);
        let _ = writer.shutdown().await;
    }
}

/// The connection, its session's state, what was read past CONNECT and what is to be sent.
type Opened = Option<(Connection, OwnedMutexGuard<State>, BytesMut, BytesMut)>;

/// CONNECT read and admitted, and the session's state taken: the connection can start.
/// Boxed, and made outside any async fn: the task is as large as its largest state for as
/// long as the connection lives, and a future built inside an async fn keeps its room in
/// it even when boxed.
fn open<'a>(
    shared: Arc<Shared>,
    config: Arc<Config>,
    client: Box<Client>,
    reader: &'a mut Reader,
    writer: &'a mut Writer,
) -> Pin<Box<dyn Future<Output = Opened> + Send + 'a>> {
    Box::pin(handshake(shared, config, client, reader, writer))
}

async fn handshake(
    shared: Arc<Shared>,
    config: Arc<Config>,
    client: Box<Client>,
    reader: &mut Reader,
    writer: &mut Writer,
) -> Opened {
    // Empty: most connections are idle most of the time, and an idle one holds no buffer.
    let mut rbuf = BytesMut::new();
    let mut wbuf = BytesMut::new();
    let connect = match timeout(
        CONNECT_TIMEOUT,
        read_connect(reader, &mut rbuf, config.max_packet),
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
            refuse_connect(writer, &v).await;
            config.log.gone(None, gone_by(&v));
            return None;
        }
        // Closed before or while sending CONNECT, or too slow: nothing to answer.
        Ok(Ok(None)) => {
            config.log.gone(None, Gone::Closed);
            return None;
        }
        Err(_) => {
            config.log.gone(None, Gone::Keepalive);
            return None;
        }
    };
    let mut conn = Connection::open(shared, config, client, connect, writer, &mut wbuf).await?;
    let mut guard = timeout(TAKEOVER_TIMEOUT, conn.entry_state.clone().lock_owned())
        .await
        .ok()?;
    conn.resume(&mut guard, &mut wbuf);
    Some((conn, guard, rbuf, wbuf))
}

struct Connection {
    shared: Arc<Shared>,
    config: Arc<Config>,
    proto: Protocol,
    /// Its client id is the connection's.
    mailbox: Mailbox,
    generation: u64,
    entry_state: Arc<tokio::sync::Mutex<State>>,
    /// Seconds; 0 for none.
    keepalive: u16,
    /// Boxed: it is rare, and large, and the connection holds this for its life.
    will: Option<Box<Will>>,
    session_expiry: u32,
    /// The client's limits on what we send it, in the widths MQTT gives them: every idle
    /// connection holds these.
    receive_max: u16,
    max_packet: u32,
    /// Topic aliases, the client's and ours.
    aliases: Aliases,
    /// Retained messages owed to new subscriptions, sent ahead of the mailbox. Boxed, and
    /// only while it holds any: most connections never have one.
    #[expect(clippy::box_collection, reason = "8 bytes in every connection, not 32")]
    backlog: Option<Box<VecDeque<Delivery>>>,
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
    /// The session taken up by this connection: what it still owes the client is encoded into
    /// `wbuf`, and its keep-alive is watched.
    fn resume(&mut self, state: &mut State, wbuf: &mut BytesMut) {
        // What the client may no longer read (the ACL file changed since these were sent) is
        // dropped, not sent again.
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
                Stage::Comp => mqtt::encode_pubrel(pkid, PubRelCode::Success, wbuf),
                _ => {
                    self.encode_delivery(d, pkid, true, wbuf);
                }
            }
        }
        // Watched by the broker's one keep-alive task, which kicks it through the inbox.
        if self.keepalive > 0 {
            let keepalives = &self.shared.keepalives;
            keepalives.watch(&self.mailbox.inbox, self.generation, self.keepalive);
        }
    }

    /// The connection at work: until it ends (Some), or has nothing to do (None): nothing to
    /// write or wait for on disk, and no partial packet read. Then the caller waits in
    /// `parked`, and most connections, which are idle most of the time, hold no loop at all.
    /// Boxed, and made outside an async fn, like `open`: the caller's task then keeps a
    /// pointer to it, not its room beside the caller's own.
    fn run<'a>(
        &'a mut self,
        state: &'a mut State,
        reader: &'a mut Reader,
        writer: &'a mut Writer,
        mut rbuf: BytesMut,
        mut wbuf: BytesMut,
    ) -> Pin<Box<dyn Future<Output = Option<End>> + Send + 'a>> {
        // A block, not an async fn: an async fn's future keeps its arguments twice, as they
        // came and moved into the body.
        Box::pin(async move {
            let (rbuf, wbuf) = (&mut rbuf, &mut wbuf);
            // Packets are encoded into `wbuf`, then staged into `out`, which the socket drains.
            let mut out = Out::default();
            loop {
                // Decode everything already read. The packet that ends the connection comes out of
                // a call, not a local: the future then keeps no room for it while it waits.
                let (mut large, mut got) = (false, false);
                if let Some(how) = self.take_packets(state, rbuf, wbuf, &mut large, &mut got) {
                    return Some(self.close(how, &mut out, wbuf, writer).await);
                }
                if got && self.keepalive > 0 {
                    let now = self.shared.keepalives.now();
                    self.mailbox.inbox.heard(now);
                }
                // Everything read was taken: the buffer goes back until the socket is readable
                // again. It grew to hold a large packet: what is left moves to a small one.
                if rbuf.is_empty() {
                    if rbuf.capacity() > 0 {
                        *rbuf = BytesMut::new();
                    }
                } else if large {
                    *rbuf = BytesMut::from(&rbuf[..]);
                }
                // Fill the client's receive window from the backlog, then the mailbox.
                while state.outgoing.len() < self.window() && out.len() + wbuf.len() < 256 * 1024 {
                    let owed = self.backlog.as_mut().and_then(|b| b.pop_front());
                    let Some(d) = owed.or_else(|| state.inbox.pop()) else {
                        break;
                    };
                    self.deliver(d, state, wbuf);
                }
                // What a subscription owed is sent: its memory goes back.
                if self.backlog.as_ref().is_some_and(|b| b.is_empty()) {
                    self.backlog = None;
                }
                // Acknowledgements go out only once what they acknowledge is on disk; reading
                // goes on meanwhile, so one fsync covers a whole window of messages.
                out.stage(wbuf, std::mem::take(&mut self.sync_to));
                // Only held output waits for the disk: a clean session never reads the position.
                if let (Some(s), false) = (self.store.as_deref(), out.held.is_empty()) {
                    out.release(s.durable());
                }
                let waiting = out.held.front().map(|h| h.0);
                let idle = waiting.is_none() && out.ready.is_empty() && !writer.unflushed();
                // A kick is taken below: `parked` would wake at once for it. Retained messages
                // still owed wait here too: `parked` wakes for the inbox only.
                let owed = self.backlog.is_some();
                if idle && rbuf.is_empty() && !owed && !state.inbox.ends(self.generation) {
                    // `out` goes with the loop; the buffers go back too.
                    out.trim(wbuf);
                    return None;
                }
                let can_take = state.outgoing.len() < self.window() && out.len() < 256 * 1024;
                // What the select decides is a byte, and the close is awaited after it: a value
                // held across an await inside an arm would take room in every working loop.
                let kicked = tokio::select! {
                    drained = Drain::new(writer, &mut out.ready, self.store.as_deref(), waiting) => {
                        if let Drained::Wrote(Err(e)) = drained {
                            return Some(e.into());
                        }
                        out.trim(wbuf);
                        false
                    }
                    // A client that sends without reading what we answer is not read from
                    // until it catches up, so its acknowledgements cannot pile up without bound.
                    r = read::read(reader, rbuf), if out.len() < MAX_UNREAD_ANSWERS => {
                        if let Err(end) = self.took(r) {
                            return Some(end);
                        }
                        false
                    }
                    // A delivery (when there is room for one), or the end: a takeover, the
                    // keep-alive running out, or the broker shutting down, each of which kicks
                    // the connection through its inbox, so that it waits for one signal rather
                    // than four.
                    d = state.inbox.next(can_take, self.generation) => match d {
                        Some(d) => {
                            self.deliver(d, state, wbuf);
                            false
                        }
                        None => true,
                    },
                };
                if kicked {
                    let inbox = &state.inbox;
                    // Taken over first, then the broker stopped: it ends as taken over.
                    let how = if inbox.taken_over(self.generation) {
                        Closing::Server(ServerDisconnectCode::SessionTakenOver, Gone::Silent)
                    } else if inbox.silent(self.generation) {
                        // [MQTT-3.1.2-22]: 1.5 times the keep alive without a packet.
                        Closing::Server(ServerDisconnectCode::KeepAliveTimeout, Gone::Keepalive)
                    } else {
                        Closing::Shutdown
                    };
                    return Some(self.close(how, &mut out, wbuf, writer).await);
                }
            }
        })
    }

    /// An idle connection's wait, holding only its references: until the client sends (what
    /// arrived, in a buffer of its size), or the inbox has a delivery the window has room for,
    /// or a kick (an empty buffer); then `run` takes over again. The end, if the client closed
    /// or the socket failed.
    fn parked<'a>(
        &'a self,
        state: &'a State,
        reader: &'a mut Reader,
    ) -> impl Future<Output = Result<BytesMut, End>> + 'a {
        let take = state.outgoing.len() < self.window();
        poll_fn(move |cx| {
            if state.inbox.poll_due(cx, take, self.generation).is_ready() {
                return Poll::Ready(Ok(BytesMut::new()));
            }
            read::poll_fresh(reader, cx).map(|read| {
                let buf = read?;
                self.took(Ok(buf.len())).map(|()| buf)
            })
        })
    }

    /// What a read means: the end when the client closed or the socket failed.
    fn took(&self, read: std::io::Result<usize>) -> Result<(), End> {
        match read {
            Ok(0) => Err(End::Abnormal(Gone::Closed)),
            Err(e) => Err(e.into()),
            Ok(n) => {
                let counters = &self.shared.counters;
                counters
                    .bytes_received
                    .fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// How many QoS 1/2 deliveries may await acknowledgement: the client's Receive Maximum and
    /// ours. A method, not a local of the loop, which would take room in every working loop.
    fn window(&self) -> usize {
        usize::from(self.receive_max.min(self.config.max_inflight))
    }

    /// Decodes and handles every whole packet in `rbuf`; what ends the connection, if one
    /// does. `got`: a packet came; `large`: one was larger than `KEEP_BUFFER`.
    fn take_packets(
        &mut self,
        state: &mut State,
        rbuf: &mut BytesMut,
        wbuf: &mut BytesMut,
        large: &mut bool,
        got: &mut bool,
    ) -> Option<Closing> {
        loop {
            let before = rbuf.len();
            match mqtt::decode_client(self.proto, rbuf, self.config.max_packet) {
                Ok(Some(p)) => {
                    *large |= before - rbuf.len() > KEEP_BUFFER;
                    *got = true;
                    match self.handle(p, state, wbuf) {
                        Ok(None) => {}
                        Ok(Some(end)) => return Some(Closing::End(end)),
                        Err(v) => return Some(Closing::Violation(v)),
                    }
                }
                Ok(None) => return None,
                Err(v) => return Some(Closing::Violation(v)),
            }
        }
    }

    /// Ends the connection: what is held goes out once on disk, then `how` says the rest.
    /// Boxed, and made outside an async fn: these are the rare states of a connection, which
    /// would otherwise take room in the loop of every connection at work.
    fn close<'a>(
        &'a mut self,
        how: Closing,
        out: &'a mut Out,
        wbuf: &'a mut BytesMut,
        writer: &'a mut Writer,
    ) -> Pin<Box<dyn Future<Output = End> + Send + 'a>> {
        Box::pin(async move {
            self.settle(out, wbuf).await;
            match how {
                Closing::End(end) => {
                    let _ = writer.write_all(&mut out.ready).await;
                    end
                }
                Closing::Violation(v) => self.violation(v, writer, &mut out.ready).await,
                Closing::Server(code, gone) => {
                    self.server_disconnect(code, gone, writer, &mut out.ready)
                        .await
                }
                Closing::Shutdown => {
                    if self.proto == Protocol::V5 {
                        mqtt::encode_disconnect(
                            ServerDisconnectCode::ServerShuttingDown,
                            None,
                            &mut out.ready,
                        );
                    }
                    let _ = writer.write_all(&mut out.ready).await;
                    End::Shutdown
                }
            }
        })
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
                client: self.mailbox.client_id.clone(),
                entry,
            });
        }
    }

    /// Sends a v5 DISCONNECT with `code` (3.1.1 has none: the connection just closes).
    async fn server_disconnect(
        &self,
        code: ServerDisconnectCode,
        how: Gone,
        writer: &mut Writer,
        wbuf: &mut BytesMut,
    ) -> End {
        if self.proto == Protocol::V5 {
            mqtt::encode_disconnect(code, None, wbuf);
        }
        let _ = writer.write_all(wbuf).await;
        End::Abnormal(how)
    }

    async fn violation(&self, v: Violation, writer: &mut Writer, wbuf: &mut BytesMut) -> End {
        if self.proto == Protocol::V5 {
            let reason = self.problem_info.then_some(v.why.as_str());
            let code = ServerDisconnectCode::try_from(v.code.number())
                .unwrap_or(ServerDisconnectCode::UnspecifiedError);
            mqtt::encode_disconnect(code, reason, wbuf);
        }
        let _ = writer.write_all(wbuf).await;
        End::Abnormal(gone_by(&v))
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
                            client: self.mailbox.client_id.clone(),
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
                        client: self.mailbox.client_id.clone(),
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
                    let existed = router.unsubscribe(&f, &self.mailbox.client_id);
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
                        client: self.mailbox.client_id.clone(),
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

    /// Publishes the will if owed, and ends or parks the session.
    fn finish(self, end: End, state: &State) {
        self.shared
            .counters
            .clients_connected
            .fetch_sub(1, Ordering::Relaxed);
        let will = match end {
            End::Disconnect { with_will: false } | End::Shutdown => None,
            End::Disconnect { with_will: true } | End::Abnormal(_) => self.will,
        };
        let still_ours = |router: &Router| {
            router
                .sessions
                .get(&self.mailbox.client_id)
                .is_some_and(|e| e.generation == self.generation)
        };
        let log = self.store.clone().filter(|_| self.durable);
        if let Some(w) = will.map(|w| *w) {
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
                from: Some(self.mailbox.client_id.clone()),
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
                            client: self.mailbox.client_id.clone(),
                            at: unix_now() + u64::from(delay),
                            msg: msg.clone(),
                        });
                    }
                }
                will_later(
                    self.shared.clone(),
                    self.mailbox.client_id.clone(),
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
            forget(&mut router, &self.mailbox.client_id);
            router.unsubscribe_all(&self.mailbox.client_id, state.subscriptions.keys().cloned());
            if let Some(s) = &log {
                s.append(Record::Gone {
                    client: self.mailbox.client_id.clone(),
                });
            }
            return;
        }
        if let Some(s) = &log {
            s.append(Record::Offline {
                client: self.mailbox.client_id.clone(),
                at: unix_now(),
                expiry: self.session_expiry,
            });
        }
        if self.session_expiry != NEVER {
            expire_later(
                self.shared.clone(),
                self.mailbox.client_id.clone(),
                self.generation,
                Duration::from_secs(self.session_expiry.into()),
                state.subscriptions.keys().cloned().collect(),
            );
        }
    }
}

/// The log's words for a broken rule.
fn gone_by(v: &Violation) -> Gone {
    match v.code {
        mqtt::ReasonCode::MalformedPacket => Gone::Malformed,
        mqtt::ReasonCode::PacketTooLarge => Gone::Oversize,
        _ => Gone::Protocol,
    }
}

/// Publishes a delayed will unless the session has been taken up again by then.
pub(in crate::broker) fn will_later(
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
pub(in crate::broker) fn expire_later(
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
