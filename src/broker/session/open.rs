//! Opening a session: reading the CONNECT, letting the client in (or refusing it with a
//! CONNACK that says why), taking over or resuming the session its client id names, writing
//! that to the log, and the CONNACK that accepts it. The decisions are small functions of
//! their inputs, tested below; `Connection::open` strings them together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;

use super::aliases::Aliases;
use super::{Client, Connection, NEVER, TOPIC_ALIAS_MAX};
use crate::broker::Config;
use crate::broker::auth::{Admitted, reserved_for_broker};
use crate::broker::log::Gone;
use crate::broker::persist::Store;
use crate::broker::persist::record::Record;
use crate::broker::router::{Router, Shared};
use crate::broker::state::{Inbox, Mailbox, SessionEntry, State};
use crate::mqtt::{self, ConnAck, ConnAckCode, Connect, Protocol, Violation};
use crate::transport::{Reader, Writer};

/// Reads until a whole CONNECT is in. None: the connection closed first.
pub(super) async fn read_connect(
    reader: &mut Reader,
    rbuf: &mut BytesMut,
    max: usize,
) -> Result<Option<Connect>, Violation> {
    loop {
        if let Some(c) = mqtt::decode_connect(rbuf, max)? {
            return Ok(Some(c));
        }
        match super::read::read(reader, rbuf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Answers a CONNECT that would not decode, if the decoder says an answer is owed.
pub(super) async fn refuse_connect(writer: &mut Writer, v: &Violation) {
    if let (Some(proto), Some(code)) = (v.answer, v.connack_code()) {
        send_connack(writer, proto, code).await;
    }
}

/// A refusing CONNACK (in 3.1.1 with the closest return code), then the close.
async fn send_connack(writer: &mut Writer, proto: Protocol, code: ConnAckCode) {
    let mut buf = BytesMut::new();
    mqtt::encode_connack(proto, &ConnAck::refused(code), &mut buf);
    if writer.write_all(&mut buf).await.is_err() {
        return;
    }
    let _ = writer.shutdown().await;
}

/// Why a CONNECT that decoded is not let in: a CONNACK code, or None where the client's
/// protocol has no code for it and the connection just closes.
type Refusal = Option<ConnAckCode>;

/// What the broker's settings refuse before the login is looked at: enhanced authentication,
/// which smq has not.
fn refused_unseen(c: &Connect) -> Option<Refusal> {
    c.auth_method
        .is_some()
        .then_some(Some(ConnAckCode::BadAuthenticationMethod))
}

/// What the broker's settings refuse once the client is known: a retained will where retain
/// is off, and one connection more than `max_connections`.
fn refused_by_limits(config: &Config, c: &Connect, connected: u64) -> Option<Refusal> {
    if !config.retain_available && c.will.as_ref().is_some_and(|w| w.retain) {
        // v5 says why; 3.1.1 has no code for it and just closes (as mosquitto).
        return Some((c.proto == Protocol::V5).then_some(ConnAckCode::RetainNotSupported));
    }
    // 3.1.1's CONNACK says "server unavailable".
    (connected >= config.max_connections as u64).then_some(Some(ConnAckCode::QuotaExceeded))
}

/// The session expiry interval: 3.1.1's clean session 0 keeps the session forever, clean
/// session 1 not past the connection; in v5 the client says.
fn session_expiry(c: &Connect) -> u32 {
    match c.proto {
        Protocol::V311 if c.clean => 0,
        Protocol::V311 => NEVER,
        Protocol::V5 => c.session_expiry,
    }
}

/// The keep-alive the connection runs with, and the Server Keep Alive to announce: v5 lets
/// the server impose its maximum on a client that asks for more (0, "none", included); a
/// 3.1.1 client keeps its own.
fn keepalive(c: &Connect, max: u16) -> (u16, Option<u16>) {
    let too_long = c.keepalive > max || (c.keepalive == 0 && max < u16::MAX);
    if too_long && c.proto == Protocol::V5 {
        (max, Some(max))
    } else {
        (c.keepalive, None)
    }
}

/// The client id the session has: the client's, or one the broker picks for an empty one.
fn client_id_for(c: &Connect) -> (Arc<str>, bool) {
    if c.client_id.is_empty() {
        (Arc::from(format!("smq-{:016x}", fastrand::u64(..))), true)
    } else {
        (Arc::from(c.client_id.as_str()), false)
    }
}

/// The CONNACK that lets a client in: what the broker allows, and the client id it picked.
fn accepting_connack(
    config: &Config,
    proto: Protocol,
    assigned: Option<&str>,
    session_present: bool,
    server_keepalive: Option<u16>,
) -> ConnAck {
    ConnAck {
        session_present,
        code: ConnAckCode::Success,
        assigned_client_id: assigned
            .filter(|_| proto == Protocol::V5)
            .map(str::to_owned),
        receive_max: Some(config.max_inflight),
        max_packet: u32::try_from(config.max_packet).ok(),
        topic_alias_max: Some(TOPIC_ALIAS_MAX),
        retain_available: Some(config.retain_available),
        wildcard_available: Some(true),
        sub_ids_available: Some(true),
        shared_available: Some(true),
        server_keepalive,
        ..ConnAck::default()
    }
}

/// The session a connection gets, registered with the router.
struct Taken {
    mailbox: Mailbox,
    generation: u64,
    state: Arc<tokio::sync::Mutex<State>>,
    /// Resumed rather than started afresh.
    present: bool,
    /// The session the client id had was written to the log.
    was_durable: bool,
}

/// Registers a session for `client_id` with the router. A connection still serving the id
/// is kicked (it sends DISCONNECT 0x8E and closes [MQTT-3.1.4-3]). Without a clean start the
/// old session is resumed, but only by the user who owns it: anyone else who takes its
/// client id gets a clean start, as if they had asked for one.
fn take_session(
    router: &mut Router,
    config: &Config,
    client_id: &Arc<str>,
    clean: bool,
    owner: Option<Arc<str>>,
) -> Taken {
    let generation = router.next_generation();
    let old = router.sessions.remove(client_id);
    let was_durable = old
        .as_ref()
        .is_some_and(|o| o.mailbox.inbox.durable.load(Ordering::Relaxed));
    if let Some(old) = &old {
        old.mailbox.inbox.kick(generation);
    }
    let resume = old.filter(|o| !clean && o.owner == owner);
    let (mailbox, state, present) = match resume {
        Some(old) => (old.mailbox, old.state, true),
        None => {
            // A clean start drops what the old session subscribed to [MQTT-3.1.2-4].
            router.remove_client(client_id);
            let (mailbox, state) = fresh_session(client_id, config);
            (mailbox, Arc::new(tokio::sync::Mutex::new(state)), false)
        }
    };
    if router.stopping {
        mailbox.inbox.stop();
    }
    router.sessions.insert(
        client_id.clone(),
        SessionEntry {
            mailbox: mailbox.clone(),
            generation,
            state: state.clone(),
            owner,
        },
    );
    Taken {
        mailbox,
        generation,
        state,
        present,
        was_durable,
    }
}

fn fresh_session(client_id: &Arc<str>, config: &Config) -> (Mailbox, State) {
    let inbox = Inbox::new(config.max_queued);
    let mailbox = Mailbox {
        client_id: client_id.clone(),
        inbox: inbox.clone(),
    };
    let state = State {
        inbox,
        subscriptions: BTreeMap::new(),
        outgoing: BTreeMap::new(),
        incoming_qos2: Default::default(),
        next_pkid: 0,
    };
    (mailbox, state)
}

/// Writes the session's opening to the log: a persistent session's record (with what it
/// subscribed to, when a temporary session is resumed as a persistent one, since the log has
/// nothing of it yet), or the end of a persistent session that a temporary one replaces.
/// Returns the position CONNACK must wait for: a session reported present must be on disk.
fn log_opening(
    store: &Store,
    router: &Router,
    client_id: &Arc<str>,
    taken: &Taken,
    durable: bool,
    expiry: u32,
    owner: Option<Arc<str>>,
) -> u64 {
    if !durable {
        return if taken.was_durable {
            store.append(Record::Gone {
                client: client_id.clone(),
            })
        } else {
            0
        };
    }
    let adopted = taken.present && !taken.was_durable;
    // In one frame: the session and its subscriptions.
    let _group = adopted.then(|| store.group());
    let mut pos = store.append(Record::Session {
        client: client_id.clone(),
        expiry,
        clean: !taken.present || adopted,
        owner,
    });
    if adopted {
        for (filter, opts) in router.subscriptions_of(client_id) {
            pos = store.append(Record::Sub {
                client: client_id.clone(),
                filter,
                opts,
            });
        }
    }
    pos
}

impl Connection {
    /// Lets the client in, registers its session (taking over or resuming one with the same
    /// client id) and encodes the CONNACK into `wbuf`. None when the connection was refused
    /// (the refusing CONNACK has been sent).
    pub(super) async fn open(
        shared: Arc<Shared>,
        config: Arc<Config>,
        client: Box<Client>,
        c: Connect,
        writer: &mut Writer,
        wbuf: &mut BytesMut,
    ) -> Option<Connection> {
        let proto = c.proto;
        // Assigned before the login, so that `%c` in the ACL means the id the client gets.
        let (client_id, assigned) = client_id_for(&c);
        let admitted = match admit(&shared, &config, &client, &c, &client_id).await {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let how = match refusal {
                    Some(ConnAckCode::NotAuthorized | ConnAckCode::BadUserNameOrPassword) => {
                        Gone::NotAuthorised
                    }
                    _ => Gone::Protocol,
                };
                if let Some(code) = refusal {
                    send_connack(writer, proto, code).await;
                }
                config.log.gone(None, how);
                return None;
            }
        };
        let Admitted { username, acl } = admitted;
        let log = &config.log;
        let session_expiry = session_expiry(&c);
        let (keepalive, server_keepalive) = keepalive(&c, config.max_keepalive);

        let (taken, store, durable, sync_to) = {
            let mut router = shared.lock();
            if log.on()
                && router
                    .sessions
                    .get(&client_id)
                    .is_some_and(|s| s.mailbox.inbox.online.load(Ordering::Relaxed))
            {
                log.line(format_args!(
                    "Client {client_id} already connected, closing old connection."
                ));
            }
            let taken = take_session(&mut router, &config, &client_id, c.clean, username.clone());
            let store = router.store.clone();
            let durable = store.is_some() && session_expiry > 0;
            taken
                .mailbox
                .inbox
                .durable
                .store(durable, Ordering::Relaxed);
            let sync_to = store.as_deref().map_or(0, |s| {
                let owner = username;
                log_opening(
                    s,
                    &router,
                    &client_id,
                    &taken,
                    durable,
                    session_expiry,
                    owner,
                )
            });
            (taken, store, durable, sync_to)
        };
        if log.on() {
            let user = match &c.username {
                Some(u) => format!(", u'{u}'"),
                None => String::new(),
            };
            let p = match proto {
                Protocol::V311 => 2,
                Protocol::V5 => 5,
            };
            log.line(format_args!(
                "New client connected from {}:{} as {client_id} (p{p}, c{}, k{}{user}).",
                client.addr,
                client.port,
                u8::from(c.clean),
                c.keepalive
            ));
        }
        let assigned_id = assigned.then_some(&*client_id);
        let ack = accepting_connack(&config, proto, assigned_id, taken.present, server_keepalive);
        mqtt::encode_connack(proto, &ack, wbuf);
        Some(Connection {
            shared,
            config,
            proto,
            mailbox: taken.mailbox,
            generation: taken.generation,
            entry_state: taken.state,
            keepalive,
            // Accepted and never published, as Mosquitto does with a will it would not let
            // the client publish.
            will: c
                .will
                .filter(|w| !reserved_for_broker(w.topic.as_bytes()))
                .map(Box::new),
            session_expiry,
            receive_max: c.receive_max.max(1),
            max_packet: c.max_packet.unwrap_or(mqtt::MAX_PACKET as u32),
            aliases: Aliases::new(c.topic_alias_max),
            backlog: None,
            problem_info: c.request_problem_info,
            acl,
            durable,
            store,
            sync_to,
        })
    }
}

/// Lets a client in or says why not: the broker's settings, then the login (password file,
/// certificate, ACL on the will), then the limits.
async fn admit(
    shared: &Shared,
    config: &Config,
    client: &Client,
    c: &Connect,
    client_id: &str,
) -> Result<Admitted, Refusal> {
    if let Some(refusal) = refused_unseen(c) {
        return Err(refusal);
    }
    let tls_cn = client.tls_cn.as_ref().map(Option::as_deref);
    let admitted = client
        .auth
        .admit(c, client_id, client.addr, tls_cn)
        .await
        .map_err(Some)?;
    let connected = shared.counters.clients_connected.load(Ordering::Relaxed);
    match refused_by_limits(config, c, connected) {
        Some(refusal) => Err(refusal),
        None => Ok(admitted),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::broker::state::SubOptions;
    use crate::mqtt::Will;

    fn connect(proto: Protocol) -> Connect {
        Connect::new(proto, "c")
    }

    fn config() -> Config {
        Config::with_listeners(Vec::new())
    }

    #[test]
    fn session_expiry_by_version() {
        let mut c = connect(Protocol::V311);
        assert_eq!(session_expiry(&c), 0);
        c.clean = false;
        assert_eq!(session_expiry(&c), NEVER);
        let mut c = connect(Protocol::V5);
        c.clean = false;
        assert_eq!(session_expiry(&c), 0, "v5: clean start does not decide");
        c.session_expiry = 300;
        assert_eq!(session_expiry(&c), 300);
    }

    #[test]
    fn keepalive_is_capped_only_for_v5() {
        let mut c = connect(Protocol::V5);
        c.keepalive = 60;
        assert_eq!(keepalive(&c, u16::MAX), (60, None));
        assert_eq!(keepalive(&c, 60), (60, None));
        assert_eq!(keepalive(&c, 30), (30, Some(30)));
        c.keepalive = 0;
        assert_eq!(keepalive(&c, u16::MAX), (0, None), "no maximum: 0 stays");
        assert_eq!(
            keepalive(&c, 120),
            (120, Some(120)),
            "0 is longer than any maximum"
        );
        let mut c = connect(Protocol::V311);
        c.keepalive = 600;
        assert_eq!(
            keepalive(&c, 30),
            (600, None),
            "3.1.1 has no Server Keep Alive"
        );
    }

    #[test]
    fn refusals_before_and_after_the_login() {
        let mut c = connect(Protocol::V5);
        assert_eq!(refused_unseen(&c), None);
        c.auth_method = Some("SCRAM-SHA-1".into());
        assert_eq!(
            refused_unseen(&c),
            Some(Some(ConnAckCode::BadAuthenticationMethod))
        );
        let mut config = config();
        config.max_connections = 2;
        let c = connect(Protocol::V311);
        assert_eq!(refused_by_limits(&config, &c, 1), None);
        assert_eq!(
            refused_by_limits(&config, &c, 2),
            Some(Some(ConnAckCode::QuotaExceeded))
        );
        config.retain_available = false;
        for (proto, answer) in [
            (Protocol::V5, Some(ConnAckCode::RetainNotSupported)),
            (Protocol::V311, None),
        ] {
            let mut c = connect(proto);
            assert_eq!(refused_by_limits(&config, &c, 0), None);
            c.will = Some(Will {
                topic: "w".into(),
                payload: Bytes::new(),
                qos: 0,
                retain: true,
                delay: 0,
                props: None,
            });
            assert_eq!(refused_by_limits(&config, &c, 0), Some(answer), "{proto:?}");
        }
    }

    #[test]
    fn client_ids_are_assigned_to_empty_ones_only() {
        let (id, assigned) = client_id_for(&connect(Protocol::V5));
        assert_eq!((&*id, assigned), ("c", false));
        let (id, assigned) = client_id_for(&Connect::new(Protocol::V5, ""));
        assert!(assigned && id.starts_with("smq-") && id.len() == 20, "{id}");
    }

    #[test]
    fn the_accepting_connack_says_what_the_broker_allows() {
        let mut config = config();
        config.max_inflight = 20;
        config.max_packet = 1 << 20;
        config.retain_available = false;
        let ack = accepting_connack(&config, Protocol::V5, Some("smq-1"), true, Some(30));
        assert_eq!(
            ack,
            ConnAck {
                session_present: true,
                code: ConnAckCode::Success,
                assigned_client_id: Some("smq-1".into()),
                receive_max: Some(20),
                max_packet: Some(1 << 20),
                topic_alias_max: Some(TOPIC_ALIAS_MAX),
                retain_available: Some(false),
                wildcard_available: Some(true),
                sub_ids_available: Some(true),
                shared_available: Some(true),
                server_keepalive: Some(30),
                ..ConnAck::default()
            }
        );
        // 3.1.1 has no property to carry an assigned id.
        let ack = accepting_connack(&config, Protocol::V311, Some("smq-1"), false, None);
        assert_eq!(ack.assigned_client_id, None);
        // The largest packet MQTT can express does not fit the property: it is left out.
        config.max_packet = crate::mqtt::MAX_PACKET;
        let ack = accepting_connack(&config, Protocol::V5, None, false, None);
        assert_eq!(ack.max_packet, u32::try_from(config.max_packet).ok());
    }

    #[test]
    fn taking_a_session_resumes_only_the_owners() {
        let config = config();
        let mut router = Router::default();
        let id: Arc<str> = Arc::from("c");
        let alice: Option<Arc<str>> = Some(Arc::from("alice"));
        let first = take_session(&mut router, &config, &id, true, alice.clone());
        assert!(!first.present);
        let opts = SubOptions {
            qos: 1,
            no_local: false,
            retain_as_published: false,
            sub_id: None,
        };
        router.subscribe("t/#", &first.mailbox, opts);
        // The same user without a clean start: resumed, the old connection kicked.
        let second = take_session(&mut router, &config, &id, false, alice.clone());
        assert!(second.present);
        assert!(Arc::ptr_eq(&first.mailbox.inbox, &second.mailbox.inbox));
        assert!(second.generation > first.generation);
        let inbox = &second.mailbox.inbox;
        assert!(
            kicked(inbox, first.generation),
            "the connection taken over is told"
        );
        assert!(!kicked(inbox, second.generation), "the new one is not");
        assert_eq!(router.subscriptions_of("c").len(), 1);
        // Another user: a clean start, whatever it asked for, and the subscriptions go.
        let third = take_session(&mut router, &config, &id, false, Some(Arc::from("bob")));
        assert!(!third.present);
        assert!(!Arc::ptr_eq(&second.mailbox.inbox, &third.mailbox.inbox));
        assert!(router.subscriptions_of("c").is_empty());
        // The owner asking for a clean start gets one too.
        let fourth = take_session(&mut router, &config, &id, true, Some(Arc::from("bob")));
        assert!(!fourth.present);
        assert_eq!(router.sessions.len(), 1);
        assert_eq!(router.sessions["c"].generation, fourth.generation);
    }

    /// Whether the connection of `generation` is told to close (its wait ends at once).
    fn kicked(inbox: &Inbox, generation: u64) -> bool {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let fut = inbox.next(false, generation);
        let mut fut = std::pin::pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(fut.as_mut().poll(&mut cx), Poll::Ready(None))
    }

    #[test]
    fn the_log_records_what_the_session_became() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = config();
        let mut router = Router::default();
        let id: Arc<str> = Arc::from("c");
        let before = store.position();
        // A temporary session: nothing to write.
        let t = take_session(&mut router, &config, &id, true, None);
        assert_eq!(log_opening(&store, &router, &id, &t, false, 0, None), 0);
        assert_eq!(store.position(), before);
        // Resumed as a persistent one: a session record, then its subscriptions.
        let opts = SubOptions {
            qos: 0,
            no_local: false,
            retain_as_published: false,
            sub_id: None,
        };
        router.subscribe("a", &t.mailbox, opts);
        let t = take_session(&mut router, &config, &id, false, None);
        let pos = log_opening(&store, &router, &id, &t, true, 60, None);
        assert!(pos > before);
        // A persistent session replaced by a temporary one: it is gone from the log.
        t.mailbox.inbox.durable.store(true, Ordering::Relaxed);
        let t = take_session(&mut router, &config, &id, true, None);
        assert!(t.was_durable);
        assert!(log_opening(&store, &router, &id, &t, false, 0, None) > pos);
    }
}
