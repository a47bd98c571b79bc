//! The connections of a bench run, one task each: holding a connection open (`conn`),
//! publishing (`pub`, `latency`) and subscribing (`sub`, `latency`). Every task reports into
//! the shared `Meter` as it goes and returns what only it knows when it ends.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::meter::Meter;
use super::payload::Header;
use super::tally::Tally;
use super::template::Template;
use crate::conn::props::SubscribeProperties;
use crate::conn::{Client, ConnectOptions, Event, Message};
use crate::mqtt::{PublishProperties, Subscription};

/// After the stop, how long a publisher waits for its last acknowledgements.
const ACK_DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Conn,
    Pub,
    Sub,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Conn => "conn",
            Role::Pub => "pub",
            Role::Sub => "sub",
        }
    }
}

/// Makes each connection's options from the validated ones: its client id and source address.
pub struct Connector {
    pub base: ConnectOptions,
    pub id_prefix: String,
    pub ifaddr: Vec<IpAddr>,
    /// Handshakes at once, when connections are not paced by `conn --rate`.
    pub handshakes: Option<Arc<Semaphore>>,
    /// Connections made so far, to pick the next source address.
    next: std::sync::atomic::AtomicUsize,
}

impl Connector {
    pub fn new(
        base: ConnectOptions,
        id_prefix: String,
        ifaddr: Vec<IpAddr>,
        cap: Option<usize>,
    ) -> Connector {
        Connector {
            base,
            id_prefix,
            ifaddr,
            handshakes: cap.map(|n| Arc::new(Semaphore::new(n))),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn client_id(&self, role: Role, index: u32) -> String {
        format!("{}{}-{index}", self.id_prefix, role.name())
    }

    fn options(&self, id: String) -> ConnectOptions {
        let mut opts = self.base.clone();
        opts.client_id = id;
        if !self.ifaddr.is_empty() {
            let n = self.next.fetch_add(1, Relaxed);
            for b in &mut opts.brokers {
                b.transport.bind = Some(self.ifaddr[n % self.ifaddr.len()]);
            }
        }
        opts
    }

    /// Connects as `id`; a failure is counted by its reason and gives None.
    pub async fn open(&self, meter: &Meter, id: String) -> Option<Client> {
        let opts = self.options(id);
        let _permit = match &self.handshakes {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        meter.attempted.fetch_add(1, Relaxed);
        let started = Instant::now();
        match crate::conn::Connector::new(Arc::new(opts)).first().await {
            Ok(client) => {
                meter.connected(started);
                Some(client)
            }
            Err(e) => {
                meter.failed.fetch_add(1, Relaxed);
                meter.failure(format!("{e:#}"));
                None
            }
        }
    }
}

/// Returns once `flag` is true (or its sender is gone). The guard `wait_for` returns is not
/// Send, so it never lives across the caller's awaits.
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await;
}

/// The common start time, once it is set; None if its sender is gone.
async fn started(start: &mut watch::Receiver<Option<Instant>>) -> Option<Instant> {
    start.wait_for(Option::is_some).await.ok().and_then(|t| *t)
}

/// A connection was up and then broke.
fn dropped(meter: &Meter, e: &anyhow::Error) {
    meter.dropped.fetch_add(1, Relaxed);
    meter.failure(format!("connection lost: {e:#}"));
}

/// Keeps a connection alive until `close` turns true.
pub async fn hold(mut client: Client, meter: Arc<Meter>, mut close: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            ev = client.poll() => if let Err(e) = ev {
                dropped(&meter, &e);
                return;
            },
            () = stopped(&mut close) => break,
        }
    }
    let _ = client.disconnect(None).await;
}

/// What every publisher sends, and how fast.
pub struct PubPlan {
    pub topic: Template,
    pub size: usize,
    pub qos: u8,
    pub retain: bool,
    pub props: Option<PublishProperties>,
    /// Between two messages of one publisher; None is flat out.
    pub interval: Option<Duration>,
    pub count: Option<u64>,
    pub run: u32,
}

/// One publisher's own count, for the expected deliveries in `latency`.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub index: u32,
    /// Messages the broker took: written at QoS 0, acknowledged (not refused) at QoS 1/2.
    pub delivered: u64,
}

/// Publishes from `start` (all publishers of a `latency` run share it) until the count is
/// reached or `stop` turns true, then waits for the outstanding acknowledgements.
pub async fn publish(
    mut client: Client,
    index: u32,
    id: String,
    plan: Arc<PubPlan>,
    meter: Arc<Meter>,
    mut start: watch::Receiver<Option<Instant>>,
    mut stop: watch::Receiver<bool>,
) -> Published {
    let mut done = Published {
        index,
        delivered: 0,
    };
    let t0 = tokio::select! {
        t = started(&mut start) => match t {
            Some(t) => t,
            None => return done,
        },
        () = stopped(&mut stop) => {
            let _ = client.disconnect(None).await;
            return done;
        }
    };
    // Only paced publishers sleep; a timer that cannot be made falls back to tokio's.
    let timer = plan.interval.and_then(|_| super::timer::Timer::new().ok());
    let fixed_topic =
        (!plan.topic.per_message()).then(|| Bytes::from(plan.topic.render(index, &id, 0)));
    let mut number: u64 = 0;
    let mut stopping = false;
    let mut give_up: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut wake = None;
        while !stopping {
            if plan.count.is_some_and(|c| number >= c) {
                stopping = true;
                break;
            }
            if client.write_backlog() || (plan.qos > 0 && !client.has_window()) {
                break;
            }
            // Paced messages carry the time they were due, not the time they went out: a
            // publisher held up by the broker shows it as latency (no coordinated omission).
            let due = plan.interval.map(|iv| t0 + iv.mul_f64(number as f64));
            if let Some(due) = due.filter(|d| *d > now) {
                wake = Some(due);
                break;
            }
            let header = Header {
                run: plan.run,
                publisher: index,
                seq: number as u32,
                sched_ns: meter.clock.at_ns(due.unwrap_or(now)),
                per_message_topic: fixed_topic.is_none(),
            };
            number += 1;
            let msg = Message {
                topic: fixed_topic
                    .clone()
                    .unwrap_or_else(|| Bytes::from(plan.topic.render(index, &id, number))),
                payload: header.payload(plan.size),
                qos: plan.qos,
                retain: plan.retain,
                props: plan.props.clone(),
            };
            if let Err(e) = client.publish(&msg) {
                meter.failure(format!("publishing: {e:#}"));
                stopping = true;
                break;
            }
            meter.sent();
            if plan.qos == 0 {
                done.delivered += 1;
            }
        }
        if stopping && client.in_flight() == 0 && !client.unwritten() {
            break;
        }
        if stopping && give_up.is_none() {
            give_up = Some(now + ACK_DRAIN);
        }
        let far = now + Duration::from_secs(86_400);
        tokio::select! {
            biased;
            ev = client.poll() => match ev {
                Ok(Event::Delivered { code, .. }) => {
                    meter.done(code >= 0x80);
                    if code < 0x80 {
                        done.delivered += 1;
                    }
                }
                Ok(Event::Written) => meter.written(),
                Ok(_) => {}
                Err(e) => {
                    dropped(&meter, &e);
                    return done;
                }
            },
            () = stopped(&mut stop), if !stopping => stopping = true,
            _ = pace(timer.as_ref(), wake.unwrap_or(far)), if wake.is_some() => {}
            _ = sleep_until(give_up.unwrap_or(far)), if give_up.is_some() => break,
        }
    }
    let _ = client.disconnect(None).await;
    done
}

/// Sleeps until `due` on the precise timer if there is one.
async fn pace(timer: Option<&super::timer::Timer>, due: Instant) {
    if let Some(t) = timer {
        if t.sleep_until(due).await.is_ok() {
            return;
        }
    }
    sleep_until(due).await;
}

pub struct SubPlan {
    pub filter: Template,
    pub qos: u8,
    pub props: Option<SubscribeProperties>,
    pub count: Option<u64>,
}

/// Subscribes, sends once on `ready` (true: subscribed), and takes messages until the count
/// is reached or `stop` turns true. None if the subscription failed.
pub async fn subscribe(
    mut client: Client,
    index: u32,
    id: String,
    plan: Arc<SubPlan>,
    meter: Arc<Meter>,
    ready: mpsc::UnboundedSender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Option<Tally> {
    let filter = plan.filter.render(index, &id, 0);
    let sub = Subscription {
        filter: filter.clone(),
        qos: plan.qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    };
    if let Err(e) = client.subscribe(&[sub], plan.props.clone()) {
        meter.failure(format!("subscribing to '{filter}': {e:#}"));
        let _ = ready.send(false);
        return None;
    }
    let mut tally = Tally::default();
    let mut taken: u64 = 0;
    let mut subscribed = false;
    loop {
        tokio::select! {
            biased;
            ev = client.poll() => match ev {
                Ok(Event::SubAck { codes }) if !subscribed => {
                    if codes.first().is_none_or(|&c| c >= 0x80) {
                        meter.failure(format!("the broker refused the subscription to '{filter}'"));
                        meter.failed.fetch_add(1, Relaxed);
                        let _ = ready.send(false);
                        let _ = client.disconnect(None).await;
                        return None;
                    }
                    subscribed = true;
                    meter.ready.fetch_add(1, Relaxed);
                    let _ = ready.send(true);
                }
                Ok(Event::Message { msg, .. }) => {
                    let now = meter.clock.now_ns();
                    let header = Header::read(&msg.payload);
                    meter.received(now, header.map(|h| now.saturating_sub(h.sched_ns)));
                    if let Some(h) = header {
                        tally.see(&h);
                    }
                    taken += 1;
                    if plan.count.is_some_and(|c| taken >= c) {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    dropped(&meter, &e);
                    if !subscribed {
                        let _ = ready.send(false);
                    }
                    return Some(tally);
                }
            },
            () = stopped(&mut stop) => break,
        }
    }
    let _ = client.disconnect(None).await;
    Some(tally)
}
