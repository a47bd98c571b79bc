//! The QoS flows' halves that carry messages: a client's PUBLISH into the broker (topic
//! aliases, limits, the acknowledgement that waits for the log), SUBSCRIBE (with the retained
//! messages it is owed), and deliveries out to the client, each encoded for its PUBLISH.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};

use super::aliases::Alias;
use super::{Connection, TOPIC_ALIAS_MAX};
use crate::broker::auth::reserved_for_broker;
use crate::broker::persist::record::Record;
use crate::broker::state::{Delivery, Published, Stage, State, SubOptions};
use crate::mqtt::{
    self, Filter, Message, Protocol, PubAckCode, PubRelCode, PublishHead, PublishProperties,
    ReasonCode, SubAckCode, Violation,
};
use crate::topic::shared_parts;

impl Connection {
    /// `code` for a v5 client; 3.1.1 has no way to say no, so its client gets success.
    pub(super) fn v5_code(&self, code: PubAckCode) -> PubAckCode {
        if self.proto == Protocol::V5 {
            code
        } else {
            PubAckCode::Success
        }
    }

    /// PUBREL or PUBCOMP for a packet id we do not know.
    pub(super) fn pid_not_found(&self) -> PubRelCode {
        if self.proto == Protocol::V5 {
            PubRelCode::PacketIdentifierNotFound
        } else {
            PubRelCode::Success
        }
    }

    pub(super) fn on_publish(
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
                msg.topic = self.aliases.incoming(alias).cloned().ok_or_else(|| {
                    Violation::protocol(format!("topic alias {alias} was never set"))
                })?;
            } else {
                self.aliases.learn(alias, msg.topic.clone());
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
            from: Some(self.mailbox.client_id.clone()),
        });
        // A QoS 2 packet id is logged with what the message wrote (see `publish_then`).
        let then = (published.qos == 2 && self.log().is_some()).then(|| Record::InQos2 {
            client: self.mailbox.client_id.clone(),
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

    pub(super) fn on_subscribe(
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
                    client: self.mailbox.client_id.clone(),
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
                        s.enqueue(
                            self.mailbox.client_id.clone(),
                            id,
                            qos,
                            true,
                            sub_ids.clone(),
                        )
                    });
                    if let Some((_, pos)) = logged {
                        self.sync_to = pos;
                    }
                    self.backlog.get_or_insert_default().push_back(Delivery {
                        msg: m,
                        qos,
                        // Retained messages sent because of a subscription keep the flag
                        // [MQTT-3.3.1-9].
                        retain: true,
                        sub_ids,
                        stored: logged.map(|(entry, _)| entry),
                        wire: None,
                    });
                }
            }
        }
        drop(router);
        mqtt::encode_suback(self.proto, pkid, &codes, wbuf);
        Ok(())
    }

    /// Queues one delivery for the client, taking a packet id for QoS 1/2.
    pub(super) fn deliver(&mut self, d: Delivery, state: &mut State, wbuf: &mut BytesMut) {
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
                client: self.mailbox.client_id.clone(),
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
    /// it (the message is then dropped for this client [MQTT-3.1.2-25]). A message routed to
    /// several sessions is encoded once and copied (`state::SharedWire`); another shape, a resend (DUP),
    /// a subscription identifier or an expiry makes the packet here.
    pub(super) fn encode_delivery(
        &mut self,
        d: &Delivery,
        pkid: u16,
        dup: bool,
        wbuf: &mut BytesMut,
    ) -> bool {
        let own_props = !d.sub_ids.is_empty() || d.msg.remaining_expiry().is_some();
        let alias = self.aliases.lookup(&d.msg.topic);
        let start = wbuf.len();
        let shared = d
            .wire
            .as_deref()
            .filter(|_| !dup && !own_props && alias.is_none())
            .map(|wire| {
                wire.head(self.proto, d.qos, d.retain, || {
                    PublishHead::new(self.proto, &self.publish_of(d), 1, false).ok()
                })
            });
        match shared {
            Some(Ok(head)) => match head {
                Some(h) if h.packet_len(d.msg.payload.len()) <= self.max_packet as usize => {
                    h.write(pkid, &d.msg.payload, wbuf);
                }
                _ => return false,
            },
            None | Some(Err(_)) => {
                let mut msg = self.publish_of(d);
                if let Some(a) = alias {
                    let (Alias::Known(n) | Alias::New(n)) = a;
                    msg.props.get_or_insert_default().topic_alias = Some(n);
                    if let Alias::Known(_) = a {
                        msg.topic = Bytes::new();
                    }
                }
                let max = self.max_packet as usize;
                let fits = |msg: &Message, wbuf: &mut BytesMut| {
                    let ok = mqtt::encode_publish(self.proto, msg, pkid, dup, wbuf).is_ok()
                        && wbuf.len() - start <= max;
                    if !ok {
                        wbuf.truncate(start);
                    }
                    ok
                };
                if fits(&msg, wbuf) {
                    if let Some(Alias::New(n)) = alias {
                        self.aliases.set(&d.msg.topic, n);
                    }
                } else if !(matches!(alias, Some(Alias::New(_))) && fits(&self.publish_of(d), wbuf))
                {
                    // Only a new alias makes a packet longer (by its 3 bytes): without it,
                    // the message may still fit the client's maximum packet size.
                    return false;
                }
            }
        }
        let counters = &self.shared.counters;
        counters.messages_sent.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes_sent
            .fetch_add((wbuf.len() - start) as u64, Ordering::Relaxed);
        true
    }

    /// The PUBLISH this client gets for `d`: v5 properties without the publisher's topic
    /// alias, with the expiry left and this delivery's subscription identifiers.
    fn publish_of(&self, d: &Delivery) -> Message {
        let props = match self.proto {
            Protocol::V311 => None,
            // Most messages carry no properties: none to build, copy or compare.
            Protocol::V5 if d.msg.props.is_none() && d.sub_ids.is_empty() => None,
            Protocol::V5 => {
                let mut p = d.msg.props.clone().unwrap_or_default();
                p.topic_alias = None;
                p.message_expiry_interval = d.msg.remaining_expiry();
                p.subscription_identifiers = d.sub_ids.iter().map(|&i| i as usize).collect();
                (p != PublishProperties::default()).then_some(p)
            }
        };
        Message {
            topic: d.msg.topic.clone(),
            payload: d.msg.payload.clone(),
            qos: d.qos,
            retain: d.retain,
            props,
        }
    }
}
