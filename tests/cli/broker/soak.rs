//! `--persist` under concurrency: several QoS 1/2 publishers and persistent subscribers on one
//! broker for a bounded time, with session takeovers on both sides, then a kill -9. The log
//! must reopen, and every message the broker acknowledged must reach every subscriber (QoS 2
//! ones exactly once to the QoS 2 subscriber).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::raw::{
    Client, Connect, PUBACK, PUBCOMP, PUBREC, Packet, Read, V4, V5, disconnect, packet,
    parse_publish, prop_u32, puback, publish_raw, pubrel,
};
use crate::support::smq_broker::SmqBroker;

/// How long publishers run.
const SOAK: Duration = Duration::from_secs(20);
const PUBLISHERS: usize = 3;
/// QoS 1/2 messages each publisher keeps in flight.
const WINDOW: usize = 8;
/// (client id, protocol, granted QoS) of the persistent subscribers, all on `soak/#`.
const SUBSCRIBERS: [(&str, u8, u8); 2] = [("soak-sub-2", V4, 2), ("soak-sub-1", V5, 1)];

fn broker(dir: &Path) -> SmqBroker {
    SmqBroker::start_with_listeners(
        &["mqtt://127.0.0.1:0"],
        &[
            "--persist",
            dir.to_str().expect("a UTF-8 temp dir"),
            "--sys-interval",
            "0",
            // An offline subscriber's queue must not drop what the test counts on.
            "--max-queued",
            "10000000",
        ],
    )
}

fn pid_of(p: &Packet) -> u16 {
    u16::from_be_bytes([p.body[0], p.body[1]])
}

/// A persistent session: 3.1.1 clean session 0, or v5 with a session expiry.
fn persistent(version: u8, id: &str) -> Connect<'_> {
    let c = Connect::new(version, id).clean(false);
    if version == V5 {
        c.props(prop_u32(0x11, 3600))
    } else {
        c
    }
}

/// A short random pause, so takeovers land at different points of the flows.
fn jitter(max_ms: u64) -> Duration {
    Duration::from_millis(fastrand::u64(0..max_ms))
}

/// What a publisher has sent and not yet finished, by packet id.
enum Flight {
    /// Sent; waiting for PUBACK or PUBREC.
    Sent { seq: u64, qos: u8 },
    /// PUBREC came (acknowledged); waiting for PUBCOMP.
    Released,
}

struct Publisher {
    id: String,
    version: u8,
    next_seq: u64,
    next_pid: u16,
    flights: HashMap<u16, Flight>,
    /// Sequence numbers the broker acknowledged, with their QoS.
    acked: Vec<(u64, u8)>,
}

impl Publisher {
    fn new(n: usize) -> Publisher {
        Publisher {
            id: format!("soak-pub-{n}"),
            version: if n % 2 == 0 { V4 } else { V5 },
            next_seq: 0,
            next_pid: 0,
            flights: HashMap::new(),
            acked: Vec::new(),
        }
    }

    fn topic(&self) -> String {
        format!("soak/{}", self.id)
    }

    fn publish(&self, pid: u16, seq: u64, qos: u8, dup: bool) -> Vec<u8> {
        let first = 0x30 | (qos << 1) | if dup { 0x08 } else { 0 };
        let props = (self.version == V5).then(Vec::new);
        publish_raw(
            first,
            self.topic().as_bytes(),
            Some(pid),
            props.as_deref(),
            format!("{}:{seq}", self.id).as_bytes(),
        )
    }

    fn handle(&mut self, c: &mut Client, p: &Packet) {
        // A v5 DISCONNECT 0x8E: the session was taken over.
        if p.kind() == 0xE0 {
            return;
        }
        let pid = pid_of(p);
        match (p.kind(), self.flights.get(&pid)) {
            (PUBACK, Some(&Flight::Sent { seq, qos: 1 })) => {
                self.acked.push((seq, 1));
                self.flights.remove(&pid);
            }
            (PUBREC, Some(&Flight::Sent { seq, qos: 2 })) => {
                self.acked.push((seq, 2));
                self.flights.insert(pid, Flight::Released);
                c.send(&pubrel(pid));
            }
            // A PUBREC resent for a PUBLISH we resent: PUBREL again.
            (PUBREC, Some(Flight::Released)) => c.send(&pubrel(pid)),
            (PUBCOMP, Some(Flight::Released)) => {
                self.flights.remove(&pid);
            }
            (kind, _) => panic!("{}: unexpected packet {kind:02x} for {pid}", self.id),
        }
    }

    /// Resumes the session on a new connection (taking it over if the old one is still open)
    /// and sends again what is in flight [MQTT-4.4.0-1].
    fn takeover(&mut self, port: u16, old: Option<Client>) -> Client {
        let mut c = resume(port, self.version, &self.id);
        if let Some(mut old) = old {
            // The old connection is being closed by the broker: what it still delivers counts.
            while let Read::Packet(p) = old.read(Duration::from_secs(5)) {
                self.handle(&mut old, &p);
            }
        }
        let mut pids: Vec<u16> = self.flights.keys().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            match self.flights[&pid] {
                Flight::Sent { seq, qos } => c.send(&self.publish(pid, seq, qos, true)),
                Flight::Released => c.send(&pubrel(pid)),
            }
        }
        c
    }

    /// Publishes until `stop`, taking its own session over now and then; then finishes every
    /// flow in flight.
    fn run(mut self, port: u16, stop: &AtomicBool) -> Publisher {
        let mut c = self.takeover(port, None);
        let mut next_takeover = Instant::now() + jitter(2000);
        while !stop.load(Ordering::Relaxed) {
            while self.flights.len() < WINDOW {
                self.next_pid = self.next_pid % 60_000 + 1;
                let pid = self.next_pid;
                if self.flights.contains_key(&pid) {
                    break;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                // Mostly QoS 2: its log frames are the ones that group records.
                let qos = if seq % 3 == 0 { 1 } else { 2 };
                c.send(&self.publish(pid, seq, qos, false));
                self.flights.insert(pid, Flight::Sent { seq, qos });
            }
            match c.read(Duration::from_secs(5)) {
                Read::Packet(p) => self.handle(&mut c, &p),
                other => panic!("{}: waiting for acknowledgements: {other:?}", self.id),
            }
            if Instant::now() >= next_takeover {
                c = self.takeover(port, Some(c));
                next_takeover = Instant::now() + jitter(2000);
            }
        }
        while !self.flights.is_empty() {
            let p = c.expect("the acknowledgements still owed");
            self.handle(&mut c, &p);
        }
        c.send(&disconnect(self.version, 0));
        self
    }
}

/// A subscriber that remembers the QoS 2 packet ids it answered with PUBREC until PUBREL,
/// across connections, as a real client does, so a resent QoS 2 message counts once.
struct Subscriber {
    id: &'static str,
    version: u8,
    awaiting_rel: HashSet<u16>,
    /// Payloads handed to the application.
    delivered: Vec<String>,
}

impl Subscriber {
    fn handle(&mut self, c: &mut Client, p: &Packet) {
        match p.kind() {
            0x30 => {
                let m = parse_publish(self.version, p);
                let payload = String::from_utf8(m.payload).expect("a UTF-8 payload");
                match (m.qos, m.pid) {
                    (1, Some(pid)) => c.send(&puback(pid)),
                    (2, Some(pid)) => {
                        c.send(&packet(PUBREC, &pid.to_be_bytes()));
                        if !self.awaiting_rel.insert(pid) {
                            return;
                        }
                    }
                    other => panic!("{}: unexpected delivery {other:?}", self.id),
                }
                self.delivered.push(payload);
            }
            0x60 => {
                let pid = pid_of(p);
                self.awaiting_rel.remove(&pid);
                c.send(&packet(PUBCOMP, &pid.to_be_bytes()));
            }
            0xE0 => {}
            kind => panic!("{}: unexpected packet {kind:02x}", self.id),
        }
    }

    /// Reads until the broker goes away, taking the session over now and then, or going
    /// offline for a moment so that messages queue for it.
    fn run(mut self, port: u16) -> Subscriber {
        let mut c = resume(port, self.version, self.id);
        let mut next_move = Instant::now() + jitter(3000);
        loop {
            match c.read(Duration::from_millis(100)) {
                Read::Packet(p) => self.handle(&mut c, &p),
                Read::Closed => return self,
                Read::TimedOut => {}
            }
            if Instant::now() < next_move {
                continue;
            }
            next_move = Instant::now() + jitter(3000);
            if fastrand::bool() {
                let Some(new) = try_resume(port, self.version, self.id) else {
                    return self;
                };
                while let Read::Packet(p) = c.read(Duration::from_secs(5)) {
                    self.handle(&mut c, &p);
                }
                c = new;
            } else {
                c.send(&disconnect(self.version, 0));
                while let Read::Packet(p) = c.read(Duration::from_secs(5)) {
                    self.handle(&mut c, &p);
                }
                thread::sleep(jitter(500));
                match try_resume(port, self.version, self.id) {
                    Some(new) => c = new,
                    None => return self,
                }
            }
        }
    }
}

fn resume(port: u16, version: u8, id: &str) -> Client {
    Client::connect(port, &persistent(version, id)).0
}

/// `resume`, or None once the broker is gone.
fn try_resume(port: u16, version: u8, id: &str) -> Option<Client> {
    Client::try_connect(port, &persistent(version, id)).map(|(c, _)| c)
}

#[test]
fn concurrent_qos_1_and_2_with_takeovers_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = broker(dir.path());
    let mut subs: Vec<Subscriber> = SUBSCRIBERS
        .iter()
        .map(|&(id, version, qos)| {
            let (mut c, _) = Client::connect(b.port(), &persistent(version, id));
            c.subscribe(1, &[("soak/#", qos)]);
            c.send(&disconnect(version, 0));
            Subscriber {
                id,
                version,
                awaiting_rel: HashSet::new(),
                delivered: Vec::new(),
            }
        })
        .collect();

    let port = b.port();
    let stop = Arc::new(AtomicBool::new(false));
    let sub_threads: Vec<_> = std::mem::take(&mut subs)
        .into_iter()
        .map(|s| thread::spawn(move || s.run(port)))
        .collect();
    let pub_threads: Vec<_> = (0..PUBLISHERS)
        .map(|n| {
            let stop = stop.clone();
            thread::spawn(move || Publisher::new(n).run(port, &stop))
        })
        .collect();
    thread::sleep(SOAK);
    stop.store(true, Ordering::Relaxed);
    let publishers: Vec<Publisher> = pub_threads
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap_or_else(|_| panic!("a publisher failed; the broker's log:\n{}", b.log()))
        })
        .collect();
    // Deliveries are still in flight to the subscribers: crash through them.
    b.signal("KILL");
    let log = b.log();
    assert!(!log.contains("panicked"), "the broker panicked:\n{log}");
    subs = sub_threads
        .into_iter()
        .map(|t| t.join().expect("a subscriber thread"))
        .collect();

    let b = broker(dir.path());
    {
        // Queued behind everything restored: its arrival means the queue has been drained.
        let mut c = Client::connected(b.port(), V4, "soak-end");
        c.send(&publish_raw(0x32, b"soak/end", Some(1), None, b"end"));
        assert_eq!(c.expect("PUBACK for the end marker").kind(), PUBACK);
        c.send(&disconnect(V4, 0));
    }
    for s in &mut subs {
        let mut c = resume(b.port(), s.version, s.id);
        while s.delivered.last().map(String::as_str) != Some("end") {
            let p = c.expect("the rest of the queue, then the end marker");
            s.handle(&mut c, &p);
        }
        c.send(&disconnect(s.version, 0));
    }

    let acked: Vec<(String, u8)> = publishers
        .iter()
        .flat_map(|p| {
            p.acked
                .iter()
                .map(|&(seq, qos)| (format!("{}:{seq}", p.id), qos))
        })
        .collect();
    assert!(
        acked.len() > 1000 * PUBLISHERS,
        "too few acknowledged to test anything: {}",
        acked.len()
    );
    for s in &subs {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for p in &s.delivered {
            *seen.entry(p.as_str()).or_default() += 1;
        }
        let lost: Vec<&str> = acked
            .iter()
            .filter(|(m, _)| !seen.contains_key(m.as_str()))
            .map(|(m, _)| m.as_str())
            .collect();
        assert!(
            lost.is_empty(),
            "{}: {} of {} acknowledged messages never delivered, e.g. {:?}",
            s.id,
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(10)]
        );
        let granted = SUBSCRIBERS.iter().find(|x| x.0 == s.id).unwrap().2;
        if granted == 2 {
            let twice: Vec<&str> = acked
                .iter()
                .filter(|(m, qos)| *qos == 2 && seen[m.as_str()] > 1)
                .map(|(m, _)| m.as_str())
                .collect();
            assert!(
                twice.is_empty(),
                "{}: QoS 2 messages delivered more than once: {twice:?}",
                s.id
            );
        }
    }
}
