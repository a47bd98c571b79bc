//! The QoS 1/2 messages a publisher has sent and the broker has not acknowledged yet, kept so
//! that a lost connection loses none of them.
//!
//! After a reconnect they go out again, oldest first. MQTT (3.1.1 and 5, §4.4) asks for a
//! resend only when the session is resumed (`-c`, and the broker's CONNACK says Session
//! Present): then each goes with its old packet id and DUP set, or, if its PUBREC had arrived,
//! as PUBREL only, and QoS 2 stays exactly once. On a new session the broker kept nothing of
//! the old one, so they are new publishes, with new ids and DUP clear; a message the broker
//! had taken just before the connection dropped then arrives twice, once from each session.

use std::collections::{HashMap, VecDeque};

use super::client::{Client, Stage};
use crate::mqtt::Message;

struct Held {
    /// Which message of the run this is, to name it in warnings.
    number: u64,
    msg: Message,
}

#[derive(Default)]
pub struct Outbox {
    /// On the current connection, by packet id.
    by_pkid: HashMap<u16, Held>,
    /// From a lost connection, to send on the next one, oldest first, with their old packet
    /// id and how far each got.
    again: VecDeque<(Held, u16, Stage)>,
    /// Topic and payload bytes held.
    bytes: usize,
    /// QoS 2 messages held.
    qos2: usize,
    /// An acknowledgement arrived on the current connection.
    answered: bool,
    /// Connections in a row that were lost while messages waited, before any was acknowledged.
    unanswered: u32,
}

/// After this many connections in a row lost before any acknowledgement, a resend is not
/// tried again: the broker is dropping the connection because of what it is sent.
pub const MAX_UNANSWERED: u32 = 3;

impl Outbox {
    /// `msg`, message `number` of the run, went out as `pkid`.
    pub fn sent(&mut self, pkid: u16, number: u64, msg: Message) {
        self.bytes += size(&msg);
        self.qos2 += usize::from(msg.qos == 2);
        self.by_pkid.insert(pkid, Held { number, msg });
    }

    /// The message under `pkid` is done with (acknowledged, refused or given up): its number.
    pub fn done(&mut self, pkid: u16) -> Option<u64> {
        let held = self.by_pkid.remove(&pkid)?;
        self.answered = true;
        self.bytes -= size(&held.msg);
        self.qos2 -= usize::from(held.msg.qos == 2);
        Some(held.number)
    }

    pub fn is_empty(&self) -> bool {
        self.by_pkid.is_empty() && self.again.is_empty()
    }

    /// Topic and payload bytes of the messages held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a QoS 2 message is still unacknowledged, or waits to be sent again.
    pub fn holds_qos2(&self) -> bool {
        self.qos2 > 0
    }

    /// Whether messages from a lost connection still wait to be sent: new ones wait for them.
    pub fn resending(&self) -> bool {
        !self.again.is_empty()
    }

    /// Whether the connection was lost while messages waited and before the broker had
    /// acknowledged any: a broker that drops clients publishing at a QoS it does not have (NATS
    /// 2.9 with QoS 2) does that.
    pub fn unanswered(&self) -> bool {
        !self.answered && !self.by_pkid.is_empty()
    }

    /// The error of a connection lost that way: `lost`, and what it may mean.
    pub fn unanswered_error(&self, lost: &anyhow::Error, broker: &str) -> anyhow::Error {
        anyhow::anyhow!("{lost:#}; {}", self.unanswered_hint(broker, 1))
    }

    fn unanswered_hint(&self, broker: &str, times: u32) -> String {
        let qos = self.by_pkid.values().map(|h| h.msg.qos).max().unwrap_or(1);
        let times = if times > 1 {
            format!(" on {times} connections in a row")
        } else {
            String::new()
        };
        format!(
            "{broker} acknowledged no QoS {qos} message before that{times}: some brokers drop a client that publishes at a QoS they do not support (NATS has no QoS 2); try a lower -q"
        )
    }

    /// The connection of `client` was lost: what it left unacknowledged is to be sent again.
    /// An error when that has happened `MAX_UNANSWERED` times in a row with nothing
    /// acknowledged.
    pub fn lost(&mut self, client: &Client, broker: &str) -> anyhow::Result<()> {
        if self.unanswered() {
            self.unanswered += 1;
            if self.unanswered >= MAX_UNANSWERED {
                return Err(anyhow::anyhow!(
                    "the broker closed the connection; {}",
                    self.unanswered_hint(broker, self.unanswered)
                ));
            }
        } else if self.answered {
            self.unanswered = 0;
        }
        self.answered = false;
        let stages: HashMap<u16, Stage> = client.outstanding().into_iter().collect();
        let mut left: Vec<(Held, u16, Stage)> = self
            .by_pkid
            .drain()
            .map(|(pkid, held)| {
                let stage = stages.get(&pkid).copied().unwrap_or(Stage::Sent);
                (held, pkid, stage)
            })
            .collect();
        left.sort_by_key(|(held, ..)| held.number);
        // Anything still waiting from an earlier loss is older still.
        self.again.extend(left);
        Ok(())
    }

    /// A new connection is up. On a resumed session, everything goes again at once, as the
    /// session had it (the broker counts it within its receive maximum already); otherwise
    /// `feed` sends it as the window allows.
    pub fn reconnected(&mut self, client: &mut Client, resumed: bool) -> anyhow::Result<()> {
        if !resumed {
            return Ok(());
        }
        while let Some((held, pkid, stage)) = self.again.pop_front() {
            client.resend(&held.msg, pkid, stage)?;
            self.by_pkid.insert(pkid, held);
        }
        Ok(())
    }

    /// Sends what a lost connection left, as new publishes, while the window has room.
    pub fn feed(&mut self, client: &mut Client) -> anyhow::Result<()> {
        while client.has_window() && !client.write_backlog() {
            let Some((held, ..)) = self.again.pop_front() else {
                break;
            };
            let pkid = client.publish(&held.msg)?;
            self.by_pkid.insert(pkid, held);
        }
        Ok(())
    }
}

fn size(msg: &Message) -> usize {
    msg.topic.len() + msg.payload.len()
}
