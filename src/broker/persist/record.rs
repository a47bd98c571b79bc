//! What the log says, record by record: one change to the persistent state each. What they
//! add up to is `model.rs`'s; their bytes are `codec.rs`'s.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::broker::state::{Published, SubOptions};

/// One change to the persistent state.
#[derive(Debug)]
pub enum Record {
    /// A message queued for at least one persistent session; `Enqueue` refers to it by id.
    Msg {
        id: u64,
        msg: Arc<Published>,
    },
    Retain {
        msg: Arc<Published>,
    },
    Unretain {
        topic: Bytes,
    },
    /// A persistent session connected; `clean` drops what it had. Cancels a pending will.
    /// `owner` is the user it logged in as: only that user resumes it.
    Session {
        client: Arc<str>,
        expiry: u32,
        clean: bool,
        owner: Option<Arc<str>>,
    },
    /// The session's connection ended at `at` (Unix seconds), with this expiry.
    Offline {
        client: Arc<str>,
        at: u64,
        expiry: u32,
    },
    Gone {
        client: Arc<str>,
    },
    Sub {
        client: Arc<str>,
        filter: String,
        opts: SubOptions,
    },
    Unsub {
        client: Arc<str>,
        filter: String,
    },
    /// Message `id` queued for `client`, as queue entry `entry`: a client can hold two
    /// entries of one message (a shared group's pick and its own subscription), so later
    /// records name the entry, not the message.
    Enqueue {
        client: Arc<str>,
        id: u64,
        entry: u64,
        qos: u8,
        retain: bool,
        sub_ids: Vec<u32>,
    },
    /// A QoS 2 delivery went out under `pkid`: after a restart it is resent with that id.
    Assign {
        client: Arc<str>,
        entry: u64,
        pkid: u16,
    },
    /// PUBREC came back for `pkid`: after a restart only PUBREL is owed.
    Released {
        client: Arc<str>,
        pkid: u16,
    },
    /// A delivery is finished (acknowledged, or dropped).
    Done {
        client: Arc<str>,
        entry: u64,
    },
    /// An incoming QoS 2 packet id was answered with PUBREC, or released by PUBREL.
    InQos2 {
        client: Arc<str>,
        pkid: u16,
    },
    InRel {
        client: Arc<str>,
        pkid: u16,
    },
    /// A will waiting for its delay, due at `at` (Unix seconds).
    Will {
        client: Arc<str>,
        at: u64,
        msg: Arc<Published>,
    },
    WillDone {
        client: Arc<str>,
    },
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
