//! At start: the persisted state (`persist/`) back into the router, with the timers it had
//! running. It stands above both, so that neither needs the other.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Config;
use super::persist::Store;
use super::persist::record::{Record, unix_now};
use super::router::Shared;
use super::session::{self, NEVER};
use super::state::{Delivery, Inbox, Mailbox, Published, SessionEntry, Stage, State};

/// Loads what `store` holds into `shared`'s router and hands the router the store. Sessions
/// whose expiry passed while the broker was down end now (publishing a will still owed);
/// the others resume their expiry and will-delay timers with the time that is left. A
/// session that was connected when the broker stopped counts as offline from now.
pub fn restore(shared: &Arc<Shared>, config: &Config, store: &Arc<Store>) {
    let now = unix_now();
    let (retained, sessions) = store.with_model(|m| {
        let retained: Vec<Arc<Published>> = m.retained.values().cloned().collect();
        let sessions: Vec<_> = m
            .sessions
            .iter()
            .map(|(client, s)| {
                let queue: Vec<_> = s
                    .queue
                    .iter()
                    .filter_map(|e| Some((e.clone(), m.messages.get(&e.id)?.0.clone())))
                    .collect();
                (
                    client.clone(),
                    s.expiry,
                    s.owner.clone(),
                    s.offline_since.unwrap_or(now),
                    s.subs.clone(),
                    queue,
                    s.incoming_qos2.clone(),
                    s.will.clone(),
                )
            })
            .collect();
        (retained, sessions)
    });
    let mut due_wills = Vec::new();
    let mut router = shared.lock();
    // Before the router has the store: these are on disk already.
    for msg in &retained {
        router.retain(msg);
    }
    router.store = Some(store.clone());
    for (client, expiry, owner, offline_since, subs, queue, incoming_qos2, will) in sessions {
        // Capped: a clock set back while the broker was down must not stretch the expiry.
        let left = (expiry != NEVER).then(|| {
            (offline_since + u64::from(expiry))
                .saturating_sub(now)
                .min(u64::from(expiry))
        });
        if left == Some(0) {
            due_wills.extend(will.map(|(_, msg)| (client.clone(), msg)));
            store.append(Record::Gone { client });
            continue;
        }
        let inbox = Inbox::new(config.max_queued);
        let mailbox = Mailbox {
            client_id: client.clone(),
            inbox: inbox.clone(),
        };
        inbox.durable.store(true, Ordering::Relaxed);
        for (filter, opts) in &subs {
            router.subscribe(filter, &mailbox, *opts);
        }
        let mut outgoing = BTreeMap::new();
        for (e, msg) in queue {
            let d = Delivery {
                wire: None,
                msg,
                qos: e.qos,
                retain: e.retain,
                sub_ids: e.sub_ids,
                stored: Some(e.entry),
            };
            match e.sent {
                Some((pkid, released)) => {
                    let stage = if released { Stage::Comp } else { Stage::Rec };
                    outgoing.insert(pkid, (d, stage));
                }
                None => {
                    if !inbox.push(d) {
                        store.append(Record::Done {
                            client: client.clone(),
                            entry: e.entry,
                        });
                    }
                }
            }
        }
        let filters: Vec<String> = subs.keys().cloned().collect();
        let state = State {
            inbox,
            next_pkid: outgoing.keys().next_back().copied().unwrap_or(0),
            subscriptions: subs.into_iter().collect(),
            outgoing,
            incoming_qos2: incoming_qos2.into_iter().collect(),
        };
        let generation = router.next_generation();
        router.sessions.insert(
            client.clone(),
            SessionEntry {
                mailbox,
                generation,
                state: Arc::new(tokio::sync::Mutex::new(state)),
                owner,
            },
        );
        if let Some(left) = left {
            session::expire_later(
                shared.clone(),
                client.clone(),
                generation,
                Duration::from_secs(left),
                filters,
            );
        }
        if let Some((at, msg)) = will {
            // A will is never delayed past its session's end [MQTT-3.1.3-9].
            match left.map_or(at.saturating_sub(now), |l| at.saturating_sub(now).min(l)) {
                0 => due_wills.push((client, msg)),
                wait => session::will_later(
                    shared.clone(),
                    client,
                    generation,
                    Duration::from_secs(wait),
                    msg,
                ),
            }
        }
    }
    drop(router);
    for (client, msg) in due_wills {
        shared.publish_then(&msg, Some(Record::WillDone { client }));
    }
}
