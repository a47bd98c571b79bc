//! Which broker to talk to, and in which MQTT version: the -h/-L brokers in the order given, at
//! start and after every lost connection, with back-off between rounds; and `-V auto`, which
//! offers MQTT 5 and falls back to 3.1.1 once for a broker that does not speak 5.
//!
//! A round tries every broker once, in order, so a preferred first broker is used again as
//! soon as it is back. Back-off grows between rounds (0.1 s doubling to 5 s, with jitter, so
//! that many clients of one broker do not all come back at the same instant) and starts over
//! after a connection that lasted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use tokio::time::{Instant, sleep, sleep_until};

use super::client::Client;
use super::{ConnectOptions, Version};
use crate::exit::Failure;
use crate::mqtt::Protocol;
use crate::transport::explain::{self, ClosedBeforeConnack};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that lasted this long resets the back-off: the outage it ended was over.
const STABLE: Duration = Duration::from_secs(10);

pub struct Connector {
    opts: Arc<ConnectOptions>,
    /// What each broker turned out to speak under `-V auto`, so a reconnect asks in that
    /// version at once.
    spoke: Vec<Option<Protocol>>,
    backoff: Duration,
}

impl Connector {
    pub fn new(opts: Arc<ConnectOptions>) -> Connector {
        Connector {
            spoke: vec![None; opts.brokers.len()],
            opts,
            backoff: FIRST_BACKOFF,
        }
    }

    pub fn opts(&self) -> &Arc<ConnectOptions> {
        &self.opts
    }

    /// How a broker is named in notes: `mqtt://host:1883`, and `(2 of 3)` when there are several.
    pub fn describe(&self, broker: usize) -> String {
        let name = self.opts.brokers[broker].describe();
        match self.opts.brokers.len() {
            1 => name,
            n => format!("{name} ({} of {n})", broker + 1),
        }
    }

    /// The first connection. With one broker, its error is the error; with several, each is
    /// tried in order. `--connect-retry` keeps trying, with back-off, for that long.
    pub async fn first(&mut self) -> anyhow::Result<Client> {
        self.first_try().await.map_err(|e| self.exit_as_311(e))
    }

    /// Under `-V auto` a refusal in MQTT 5 exits with the 3.1.1 code mosquitto_pub would
    /// (5, not 135, for "not authorized"); the message keeps the broker's own code.
    fn exit_as_311(&self, mut err: anyhow::Error) -> anyhow::Error {
        if self.opts.version != Version::Auto {
            return err;
        }
        match err.downcast_mut::<Failure>() {
            Some(Failure::Refused { code, reason }) if *code >= 0x80 => {
                *reason = format!("{reason}, MQTT 5 reason code {code:#04x}");
                *code = super::reason::connack_v311(*code);
            }
            Some(Failure::Brokers { code, .. }) if *code >= 0x80 => {
                *code = super::reason::connack_v311(*code);
            }
            _ => {}
        }
        err
    }

    async fn first_try(&mut self) -> anyhow::Result<Client> {
        let give_up = self.opts.connect_retry.map(|d| Instant::now() + d);
        loop {
            match self.round().await {
                Ok(client) => {
                    if client.broker() > 0 {
                        self.opts
                            .note(&format!("connected to {}", self.describe(client.broker())));
                    }
                    return Ok(client);
                }
                Err(e) if is_final(&e) => return Err(e),
                Err(e) => match give_up {
                    Some(at) if Instant::now() < at => {
                        let pause = self.next_backoff();
                        sleep_until((Instant::now() + pause).min(at)).await;
                    }
                    _ => return Err(e),
                },
            }
        }
    }

    /// After the connection to broker `from` was lost (it had lasted `lived`): rounds over the
    /// brokers until one takes the connection. Only an answer that retrying cannot change,
    /// such as a refused password from every broker, ends it.
    pub async fn again(
        &mut self,
        from: usize,
        lost: &anyhow::Error,
        lived: Duration,
    ) -> anyhow::Result<Client> {
        if lived >= STABLE {
            self.backoff = FIRST_BACKOFF;
        }
        let mut pause = self.next_backoff();
        self.opts.warn(&format!(
            "lost the connection to {}: {lost:#}; reconnecting in {:.1} s",
            self.describe(from),
            pause.as_secs_f64()
        ));
        loop {
            sleep(pause).await;
            match self.round().await {
                Ok(client) => {
                    self.opts.note(&format!(
                        "reconnected to {}",
                        self.describe(client.broker())
                    ));
                    return Ok(client);
                }
                Err(e) if is_final(&e) => return Err(e),
                Err(_) => pause = self.next_backoff(),
            }
        }
    }

    /// The pause before the next round: the current back-off less up to a quarter of it, at
    /// random; the back-off then doubles, up to its cap.
    fn next_backoff(&mut self) -> Duration {
        let pause = self.backoff.mul_f64(1.0 - fastrand::f64() / 4.0);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        pause
    }

    /// Every broker once, in order.
    async fn round(&mut self) -> anyhow::Result<Client> {
        let mut failed = Vec::new();
        for broker in 0..self.opts.brokers.len() {
            match self.attempt(broker).await {
                Ok(client) => return Ok(client),
                Err(e) => failed.push(e),
            }
        }
        Err(all_failed(&self.opts, failed))
    }

    /// One broker, with `-V auto`'s one fallback to 3.1.1.
    async fn attempt(&mut self, broker: usize) -> anyhow::Result<Client> {
        let auto = self.opts.version == Version::Auto;
        let proto = match self.opts.version {
            Version::Only(p) => p,
            Version::Auto => self.spoke[broker].unwrap_or(Protocol::V5),
        };
        let err = match Client::connect(&self.opts, broker, proto).await {
            Ok(client) => {
                self.spoke[broker] = Some(proto);
                return Ok(client);
            }
            Err(e) => e,
        };
        if !auto || proto != Protocol::V5 {
            return Err(err);
        }
        let Some(why) = refuses_v5(&err) else {
            return Err(err);
        };
        let name = self.opts.brokers[broker].describe();
        if !self.opts.needs_v5.is_empty() {
            let features = self.opts.needs_v5.join(" and ");
            let (need, them) = if self.opts.needs_v5.len() > 1 {
                ("need", "them")
            } else {
                ("needs", "it")
            };
            let msg = format!(
                "{name} does not speak MQTT 5 ({why}), and {features} {need} MQTT 5: drop {them}, or use a broker that speaks MQTT 5"
            );
            return Err(match refused_code(&err) {
                Some(code) => Failure::Refused { code, reason: msg }.into(),
                None => Failure::Unsupported(msg).into(),
            });
        }
        match Client::connect(&self.opts, broker, Protocol::V311).await {
            Ok(client) => {
                self.spoke[broker] = Some(Protocol::V311);
                self.opts.note(&format!(
                    "{name} does not speak MQTT 5 ({why}): connected with MQTT 3.1.1"
                ));
                Ok(client)
            }
            Err(e) if e.is::<ClosedBeforeConnack>() && err.is::<ClosedBeforeConnack>() => {
                Err(explain::closed_to_both(&self.opts.brokers[broker].transport).into())
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether a failed MQTT 5 CONNECT says the broker does not speak MQTT 5, and how it said so:
/// it closed the connection before CONNACK, or answered "unacceptable protocol version"
/// (0x01, the 3.1.1 code, from NATS and Mosquitto 1.x) or "unsupported protocol version" (0x84).
fn refuses_v5(err: &anyhow::Error) -> Option<&'static str> {
    if err.is::<ClosedBeforeConnack>() {
        return Some("it closed the connection before CONNACK");
    }
    match refused_code(err) {
        Some(0x01) => Some("CONNACK 1, unacceptable protocol version"),
        Some(0x84) => Some("CONNACK 0x84, unsupported protocol version"),
        _ => None,
    }
}

fn refused_code(err: &anyhow::Error) -> Option<u8> {
    match err.downcast_ref::<Failure>() {
        Some(Failure::Refused { code, .. }) => Some(*code),
        _ => None,
    }
}

/// Whether retrying cannot help: every broker refused us for a reason that stays (bad
/// credentials, a client id it will not take) rather than a passing one (server unavailable
/// or busy, quota or rate exceeded: what a broker says while it starts or stops).
fn is_final(err: &anyhow::Error) -> bool {
    match err.downcast_ref::<Failure>() {
        Some(Failure::Refused { code, .. } | Failure::Brokers { code, .. }) => {
            !matches!(code, 3 | 0x88 | 0x89 | 0x97 | 0x9F)
        }
        Some(Failure::Unsupported(_)) => true,
        _ => false,
    }
}

/// One error for a round in which every broker failed: with one broker, its own; with several,
/// one line naming each. The exit code is the refusal code only when every broker refused.
fn all_failed(opts: &ConnectOptions, mut failed: Vec<anyhow::Error>) -> anyhow::Error {
    if failed.len() == 1 {
        return failed.remove(0);
    }
    let codes: Vec<Option<u8>> = failed.iter().map(refused_code).collect();
    let every: Vec<String> = opts
        .brokers
        .iter()
        .zip(&failed)
        .map(|(b, e)| format!("{}: {e:#}", b.describe()))
        .collect();
    let msg = format!(
        "none of the {} brokers took the connection: {}",
        failed.len(),
        every.join("; ")
    );
    let unsupported = failed
        .iter()
        .all(|e| matches!(e.downcast_ref::<Failure>(), Some(Failure::Unsupported(_))));
    match codes.first().copied().flatten() {
        Some(code) if codes.iter().all(Option::is_some) => Failure::Brokers { code, msg }.into(),
        _ if unsupported => Failure::Unsupported(msg).into(),
        _ => anyhow!(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options with no broker: enough for the back-off, which names none.
    fn connector() -> Connector {
        Connector::new(Arc::new(ConnectOptions {
            brokers: Vec::new(),
            version: Version::Auto,
            needs_v5: Vec::new(),
            mqtt31: false,
            client_id: String::new(),
            keepalive: 60,
            clean: true,
            will: None,
            props: Default::default(),
            max_inflight: 20,
            debug: false,
            quiet: true,
            url_topic: None,
            ack_timeout: Duration::from_secs(10),
            connect_retry: None,
        }))
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let mut c = connector();
        let mut base = FIRST_BACKOFF;
        for _ in 0..12 {
            let pause = c.next_backoff();
            assert!(
                pause <= base && pause >= base.mul_f64(0.75),
                "{pause:?} for {base:?}"
            );
            base = (base * 2).min(MAX_BACKOFF);
        }
        assert_eq!(c.backoff, MAX_BACKOFF);
    }

    #[test]
    fn which_answers_mean_mqtt_3_1_1_and_which_end_retrying() {
        let refused = |code| {
            anyhow::Error::from(Failure::Refused {
                code,
                reason: String::new(),
            })
        };
        let closed = anyhow::Error::from(ClosedBeforeConnack("closed".into()));
        assert!(refuses_v5(&closed).is_some());
        assert!(refuses_v5(&refused(0x01)).is_some());
        assert!(refuses_v5(&refused(0x84)).is_some());
        assert!(refuses_v5(&refused(0x86)).is_none());
        assert!(refuses_v5(&anyhow!("connection refused")).is_none());
        assert!(is_final(&refused(4)) && is_final(&refused(0x87)));
        assert!(!is_final(&refused(3)) && !is_final(&refused(0x88)));
        assert!(!is_final(&closed) && !is_final(&anyhow!("connection refused")));
    }
}
