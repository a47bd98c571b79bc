//! The state the log's records (`record.rs`) add up to (`Model`). The same `apply` runs when
//! a record is written (so compaction can snapshot the live state without touching the
//! router) and when the log is read back at start. How a record is written as bytes is
//! `codec.rs`'s.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::codec::encode;
use super::record::Record;
use crate::broker::state::{Published, SubOptions};

/// One delivery owed to a session, in queue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The message.
    pub id: u64,
    /// This delivery of it (`Record::Enqueue`).
    pub entry: u64,
    pub qos: u8,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    /// QoS 2 sent: the packet id, and whether PUBREC came back.
    pub sent: Option<(u16, bool)>,
}

#[derive(Debug, Default)]
pub struct StoredSession {
    pub expiry: u32,
    pub owner: Option<Arc<str>>,
    /// None while connected (or when the broker stopped with it connected).
    pub offline_since: Option<u64>,
    pub subs: HashMap<String, SubOptions>,
    pub queue: VecDeque<Entry>,
    pub incoming_qos2: BTreeSet<u16>,
    pub will: Option<(u64, Arc<Published>)>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub next_id: u64,
    /// Messages some queue refers to, with the number of queue entries that do.
    pub messages: BTreeMap<u64, (Arc<Published>, usize)>,
    pub retained: HashMap<Bytes, Arc<Published>>,
    pub sessions: HashMap<Arc<str>, StoredSession>,
}

impl Model {
    pub fn apply(&mut self, r: &Record) {
        match r {
            Record::Msg { id, msg } => {
                self.next_id = self.next_id.max(id + 1);
                self.messages.insert(*id, (msg.clone(), 0));
            }
            Record::Retain { msg } => {
                self.retained.insert(msg.topic.clone(), msg.clone());
            }
            Record::Unretain { topic } => {
                self.retained.remove(topic);
            }
            Record::Session {
                client,
                expiry,
                clean,
                owner,
            } => {
                if *clean {
                    self.drop_session(client);
                }
                let s = self.sessions.entry(client.clone()).or_default();
                s.expiry = *expiry;
                s.owner = owner.clone();
                s.offline_since = None;
                s.will = None;
            }
            Record::Offline { client, at, expiry } => {
                if let Some(s) = self.sessions.get_mut(client) {
                    s.offline_since = Some(*at);
                    s.expiry = *expiry;
                }
            }
            Record::Gone { client } => self.drop_session(client),
            Record::Sub {
                client,
                filter,
                opts,
            } => {
                if let Some(s) = self.sessions.get_mut(client) {
                    s.subs.insert(filter.clone(), *opts);
                }
            }
            Record::Unsub { client, filter } => {
                if let Some(s) = self.sessions.get_mut(client) {
                    s.subs.remove(filter);
                }
            }
            Record::Enqueue {
                client,
                id,
                entry,
                qos,
                retain,
                sub_ids,
            } => {
                self.next_id = self.next_id.max(entry + 1);
                let (Some(s), Some(m)) = (self.sessions.get_mut(client), self.messages.get_mut(id))
                else {
                    return;
                };
                m.1 += 1;
                s.queue.push_back(Entry {
                    id: *id,
                    entry: *entry,
                    qos: *qos,
                    retain: *retain,
                    sub_ids: sub_ids.clone(),
                    sent: None,
                });
            }
            Record::Assign {
                client,
                entry,
                pkid,
            } => {
                if let Some(e) = self
                    .sessions
                    .get_mut(client)
                    .and_then(|s| s.queue.iter_mut().find(|e| e.entry == *entry))
                {
                    e.sent = Some((*pkid, false));
                }
            }
            Record::Released { client, pkid } => {
                if let Some(e) = self.sessions.get_mut(client).and_then(|s| {
                    s.queue
                        .iter_mut()
                        .find(|e| e.sent.is_some_and(|(p, _)| p == *pkid))
                }) {
                    e.sent = Some((*pkid, true));
                }
            }
            Record::Done { client, entry } => {
                let Some(s) = self.sessions.get_mut(client) else {
                    return;
                };
                if let Some(at) = s.queue.iter().position(|e| e.entry == *entry) {
                    if let Some(e) = s.queue.remove(at) {
                        self.release(e.id);
                    }
                }
            }
            Record::InQos2 { client, pkid } => {
                if let Some(s) = self.sessions.get_mut(client) {
                    s.incoming_qos2.insert(*pkid);
                }
            }
            Record::InRel { client, pkid } => {
                if let Some(s) = self.sessions.get_mut(client) {
                    s.incoming_qos2.remove(pkid);
                }
            }
            Record::Will { client, at, msg } => {
                if let Some(s) = self.sessions.get_mut(client) {
                    s.will = Some((*at, msg.clone()));
                }
            }
            Record::WillDone { client } => {
                if let Some(s) = self.sessions.get_mut(client) {
                    s.will = None;
                }
            }
        }
    }

    fn drop_session(&mut self, client: &str) {
        if let Some(s) = self.sessions.remove(client) {
            for e in s.queue {
                self.release(e.id);
            }
        }
    }

    fn release(&mut self, id: u64) {
        if let Some(m) = self.messages.get_mut(&id) {
            m.1 = m.1.saturating_sub(1);
            if m.1 == 0 {
                self.messages.remove(&id);
            }
        }
    }

    /// The records that rebuild this state, framed, for a compacted log.
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let mut put = |r: &Record| {
            body.clear();
            encode(r, &mut body);
            super::log::frame(&body, out);
        };
        for (&id, (msg, _)) in &self.messages {
            put(&Record::Msg {
                id,
                msg: msg.clone(),
            });
        }
        for msg in self.retained.values() {
            put(&Record::Retain { msg: msg.clone() });
        }
        for (client, s) in &self.sessions {
            let client = client.clone();
            put(&Record::Session {
                client: client.clone(),
                expiry: s.expiry,
                clean: true,
                owner: s.owner.clone(),
            });
            if let Some(at) = s.offline_since {
                put(&Record::Offline {
                    client: client.clone(),
                    at,
                    expiry: s.expiry,
                });
            }
            for (filter, opts) in &s.subs {
                put(&Record::Sub {
                    client: client.clone(),
                    filter: filter.clone(),
                    opts: *opts,
                });
            }
            for e in &s.queue {
                put(&Record::Enqueue {
                    client: client.clone(),
                    id: e.id,
                    entry: e.entry,
                    qos: e.qos,
                    retain: e.retain,
                    sub_ids: e.sub_ids.clone(),
                });
                if let Some((pkid, released)) = e.sent {
                    put(&Record::Assign {
                        client: client.clone(),
                        entry: e.entry,
                        pkid,
                    });
                    if released {
                        put(&Record::Released {
                            client: client.clone(),
                            pkid,
                        });
                    }
                }
            }
            for &pkid in &s.incoming_qos2 {
                put(&Record::InQos2 {
                    client: client.clone(),
                    pkid,
                });
            }
            if let Some((at, msg)) = &s.will {
                put(&Record::Will {
                    client,
                    at: *at,
                    msg: msg.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::broker::persist::codec::{decode_each, encode};
    use crate::mqtt::PublishProperties;
    use std::time::Instant;

    pub(in crate::broker::persist) fn msg(
        topic: &str,
        payload: &str,
        props: Option<PublishProperties>,
    ) -> Arc<Published> {
        Arc::new(Published {
            topic: Bytes::copy_from_slice(topic.as_bytes()),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            qos: 2,
            retain: true,
            props,
            received: Instant::now(),
            from: None,
        })
    }

    fn opts(qos: u8) -> SubOptions {
        SubOptions {
            qos,
            no_local: true,
            retain_as_published: true,
            sub_id: Some(7),
        }
    }

    /// A model as comparable text: what a restart would restore.
    fn summary(m: &Model) -> Vec<String> {
        let show = |p: &Published| {
            format!(
                "{}={} q{} r{} {:?}",
                String::from_utf8_lossy(&p.topic),
                String::from_utf8_lossy(&p.payload),
                p.qos,
                p.retain,
                p.props
            )
        };
        let mut out: Vec<String> = m
            .retained
            .values()
            .map(|p| format!("retained {}", show(p)))
            .collect();
        for (c, s) in &m.sessions {
            let mut subs: Vec<_> = s.subs.iter().map(|(f, o)| format!("{f}:{o:?}")).collect();
            subs.sort();
            let queue: Vec<_> = s
                .queue
                .iter()
                .map(|e| format!("{} {e:?}", show(&m.messages[&e.id].0)))
                .collect();
            out.push(format!(
                "session {c} owner {:?} expiry {} offline {:?} subs {subs:?} queue {queue:?} in {:?} will {:?}",
                s.owner,
                s.expiry,
                s.offline_since,
                s.incoming_qos2,
                s.will.as_ref().map(|(at, p)| (at, show(p)))
            ));
        }
        out.sort();
        out
    }

    fn reload(framed: &[u8]) -> Model {
        let mut data = super::super::log::MAGIC.to_vec();
        data.extend_from_slice(framed);
        let (bodies, _) = super::super::log::parse(&data).unwrap();
        let mut m = Model::default();
        for b in bodies {
            decode_each(b, |r| m.apply(&r)).unwrap();
        }
        m
    }

    #[test]
    fn every_record_survives_encoding_and_a_snapshot_rebuilds_the_state() {
        let c: Arc<str> = Arc::from("client");
        let props = PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(3600),
            topic_alias: None,
            response_topic: Some("re/ply".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\xff")),
            user_properties: vec![("k".into(), "v".into())],
            subscription_identifiers: Vec::new(),
            content_type: Some("text/plain".into()),
        };
        let records = vec![
            Record::Retain {
                msg: msg("r/1", "one", Some(props.clone())),
            },
            Record::Retain {
                msg: msg("r/2", "two", None),
            },
            Record::Unretain {
                topic: Bytes::from_static(b"r/2"),
            },
            Record::Session {
                client: c.clone(),
                expiry: 300,
                clean: true,
                owner: Some(Arc::from("alice")),
            },
            Record::Sub {
                client: c.clone(),
                filter: "a/#".into(),
                opts: opts(2),
            },
            Record::Sub {
                client: c.clone(),
                filter: "gone".into(),
                opts: opts(1),
            },
            Record::Unsub {
                client: c.clone(),
                filter: "gone".into(),
            },
            Record::Msg {
                id: 1,
                msg: msg("a/1", "first", Some(props)),
            },
            Record::Msg {
                id: 2,
                msg: msg("a/2", "second", None),
            },
            Record::Msg {
                id: 3,
                msg: msg("a/3", "third", None),
            },
            Record::Enqueue {
                client: c.clone(),
                id: 1,
                entry: 11,
                qos: 2,
                retain: false,
                sub_ids: vec![7, 9],
            },
            Record::Enqueue {
                client: c.clone(),
                id: 2,
                entry: 12,
                qos: 2,
                retain: true,
                sub_ids: vec![],
            },
            Record::Enqueue {
                client: c.clone(),
                id: 3,
                entry: 13,
                qos: 1,
                retain: false,
                sub_ids: vec![],
            },
            Record::Assign {
                client: c.clone(),
                entry: 11,
                pkid: 11,
            },
            Record::Assign {
                client: c.clone(),
                entry: 12,
                pkid: 12,
            },
            Record::Released {
                client: c.clone(),
                pkid: 12,
            },
            Record::Done {
                client: c.clone(),
                entry: 13,
            },
            Record::InQos2 {
                client: c.clone(),
                pkid: 5,
            },
            Record::InQos2 {
                client: c.clone(),
                pkid: 6,
            },
            Record::InRel {
                client: c.clone(),
                pkid: 5,
            },
            Record::Offline {
                client: c.clone(),
                at: 1_700_000_000,
                expiry: 600,
            },
            Record::Will {
                client: c.clone(),
                at: 1_700_000_060,
                msg: msg("will", "bye", None),
            },
        ];
        let mut live = Model::default();
        let mut framed = Vec::new();
        let mut body = Vec::new();
        for r in &records {
            live.apply(r);
            body.clear();
            encode(r, &mut body);
            super::super::log::frame(&body, &mut framed);
        }
        assert_eq!(live.messages.len(), 2, "an acknowledged message is let go");
        let replayed = reload(&framed);
        assert_eq!(summary(&replayed), summary(&live));
        let mut snapshot = Vec::new();
        live.snapshot(&mut snapshot);
        assert!(snapshot.len() < framed.len());
        assert_eq!(summary(&reload(&snapshot)), summary(&live));
        let s = &live.sessions[&c];
        assert_eq!(s.queue[0].sent, Some((11, false)));
        assert_eq!(s.queue[1].sent, Some((12, true)));
        assert_eq!(s.incoming_qos2.iter().copied().collect::<Vec<_>>(), [6]);
        assert!(live.retained.contains_key(&b"r/1"[..]) && live.retained.len() == 1);
    }

    #[test]
    fn a_clean_start_or_an_end_drops_the_session_and_its_messages() {
        let c: Arc<str> = Arc::from("c");
        let mut m = Model::default();
        for r in [
            Record::Session {
                client: c.clone(),
                expiry: u32::MAX,
                clean: true,
                owner: None,
            },
            Record::Msg {
                id: 1,
                msg: msg("t", "x", None),
            },
            Record::Enqueue {
                client: c.clone(),
                id: 1,
                entry: 2,
                qos: 1,
                retain: false,
                sub_ids: vec![],
            },
            Record::Session {
                client: c.clone(),
                expiry: 10,
                clean: false,
                owner: None,
            },
        ] {
            m.apply(&r);
        }
        assert_eq!(
            m.sessions[&c].queue.len(),
            1,
            "a resumed session keeps its queue"
        );
        m.apply(&Record::Session {
            client: c.clone(),
            expiry: 10,
            clean: true,
            owner: None,
        });
        assert!(m.sessions[&c].queue.is_empty() && m.messages.is_empty());
        m.apply(&Record::Gone { client: c.clone() });
        assert!(m.sessions.is_empty());
        assert_eq!(m.next_id, 3, "ids are never reused");
    }

    #[test]
    fn two_entries_of_one_message_are_finished_apart() {
        // A shared group's pick at QoS 2 and the client's own subscription at QoS 1.
        let c: Arc<str> = Arc::from("c");
        let mut m = Model::default();
        let enqueue = |entry, qos| Record::Enqueue {
            client: c.clone(),
            id: 1,
            entry,
            qos,
            retain: false,
            sub_ids: vec![],
        };
        for r in [
            Record::Session {
                client: c.clone(),
                expiry: u32::MAX,
                clean: true,
                owner: None,
            },
            Record::Msg {
                id: 1,
                msg: msg("t", "x", None),
            },
            enqueue(2, 2),
            enqueue(3, 1),
            Record::Assign {
                client: c.clone(),
                entry: 2,
                pkid: 9,
            },
            // The QoS 1 copy's PUBACK: the first entry of the message is not the one.
            Record::Done {
                client: c.clone(),
                entry: 3,
            },
        ] {
            m.apply(&r);
        }
        let q: Vec<_> = m.sessions[&c]
            .queue
            .iter()
            .map(|e| (e.qos, e.sent))
            .collect();
        assert_eq!(
            q,
            [(2, Some((9, false)))],
            "the QoS 2 copy is still in flight"
        );
        assert_eq!(m.messages[&1].1, 1);
        assert_eq!(m.next_id, 4);
    }
}
