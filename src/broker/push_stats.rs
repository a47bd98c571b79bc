//! Per-device counts of Sensor Logger pushes, for the status line: messages and readings per
//! second, when each device was last heard from, and batches lost (gaps in `messageId`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Devices kept; past this the one heard from longest ago is forgotten. Ids come from the
/// network: a client making up a new one per push must not grow the table without end.
const MAX_DEVICES: usize = 64;

/// Recordings kept per device; past this the one with the lowest `messageId`s is forgotten.
const MAX_SESSIONS: usize = 16;

#[derive(Default)]
pub struct PushStats {
    devices: BTreeMap<String, Device>,
}

struct Device {
    messages: u64,
    readings: u64,
    last_seen: Instant,
    sessions: HashMap<String, Session>,
    /// Counts and time at the previous `lines` call, for the rates.
    shown: (u64, u64, Instant),
}

/// `messageId`s of one recording: they count up by one, but may arrive out of order
/// (SENSORS.md §1.1), so what is missing is the span seen minus the distinct ids received.
struct Session {
    lowest: i64,
    highest: i64,
    received: u64,
}

impl Session {
    fn lost(&self) -> u64 {
        // i128: ids at both ends of i64 are a span of 2^64, not an overflow.
        let span = i128::from(self.highest) - i128::from(self.lowest) + 1;
        u64::try_from(span.saturating_sub(i128::from(self.received))).unwrap_or(u64::MAX)
    }
}

impl PushStats {
    /// One pushed batch of `readings` readings.
    pub fn record(
        &mut self,
        device: &str,
        session: Option<&str>,
        message_id: Option<i64>,
        readings: u64,
        now: Instant,
    ) {
        if !self.devices.contains_key(device) && self.devices.len() >= MAX_DEVICES {
            let idle = self
                .devices
                .iter()
                .min_by_key(|(_, d)| d.last_seen)
                .map(|(id, _)| id.clone());
            if let Some(idle) = idle {
                self.devices.remove(&idle);
            }
        }
        let d = match self.devices.get_mut(device) {
            Some(d) => d,
            None => self.devices.entry(device.to_owned()).or_insert(Device {
                messages: 0,
                readings: 0,
                last_seen: now,
                sessions: HashMap::new(),
                shown: (0, 0, now),
            }),
        };
        d.messages += 1;
        d.readings += readings;
        d.last_seen = now;
        if let Some(id) = message_id {
            let key = session.unwrap_or_default();
            match d.sessions.get_mut(key) {
                Some(s) => {
                    s.lowest = s.lowest.min(id);
                    s.highest = s.highest.max(id);
                    s.received += 1;
                }
                None => {
                    if d.sessions.len() >= MAX_SESSIONS {
                        let oldest = d
                            .sessions
                            .iter()
                            .min_by_key(|(_, s)| s.highest)
                            .map(|(k, _)| k.clone());
                        if let Some(oldest) = oldest {
                            d.sessions.remove(&oldest);
                        }
                    }
                    d.sessions.insert(
                        key.to_owned(),
                        Session {
                            lowest: id,
                            highest: id,
                            received: 1,
                        },
                    );
                }
            }
        }
    }

    /// One line per device, rates since the previous call:
    /// `4e7b1d2a: 5.0 msg/s, 575.0 readings/s, last seen 0.2 s ago, 0 lost`.
    pub fn lines(&mut self, now: Instant) -> Vec<(String, String)> {
        self.devices
            .iter_mut()
            .map(|(id, d)| {
                let (messages, readings, since) = d.shown;
                // At least a second: a device first heard a moment ago has no rate yet, and
                // one message in a millisecond is not 1,000 msg/s.
                let secs = now.saturating_duration_since(since).as_secs_f64().max(1.0);
                let rate = |n: u64| n as f64 / secs;
                let lost: u64 = d.sessions.values().map(Session::lost).sum();
                let line = format!(
                    "{}: {:.1} msg/s, {:.1} readings/s, last seen {:.1} s ago, {lost} lost ({} session{})",
                    printable(short(id)),
                    rate(d.messages - messages),
                    rate(d.readings - readings),
                    now.saturating_duration_since(d.last_seen).as_secs_f64(),
                    d.sessions.len(),
                    if d.sessions.len() == 1 { "" } else { "s" },
                );
                d.shown = (d.messages, d.readings, now);
                (id.clone(), line)
            })
            .collect()
    }
}

/// An id as it may be shown on a terminal: control characters (escape sequences) become `?`,
/// and a long one is cut.
fn printable(id: &str) -> String {
    id.chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The first block of a UUID is enough to tell a few phones apart.
fn short(id: &str) -> &str {
    match id.split_once('-') {
        Some((head, _)) if head.len() >= 4 => head,
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rates_last_seen_and_lost_batches_per_device() {
        let t0 = Instant::now();
        let mut stats = PushStats::default();
        let mut at = |ms: u64, device: &str, session: &str, id: i64, readings: u64| {
            stats.record(
                device,
                Some(session),
                Some(id),
                readings,
                t0 + Duration::from_millis(ms),
            );
        };
        // Phone A: ids 1, 2, 4 and 3 late (reordered, not lost), then 7: 5 and 6 are lost.
        at(0, "4e7b1d2a-8c3f", "s1", 1, 10);
        at(200, "4e7b1d2a-8c3f", "s1", 2, 10);
        at(400, "4e7b1d2a-8c3f", "s1", 4, 10);
        at(500, "4e7b1d2a-8c3f", "s1", 3, 10);
        at(900, "4e7b1d2a-8c3f", "s1", 7, 10);
        // Phone B: a new recording restarts the ids; nothing is lost.
        at(0, "phone-b", "r1", 40, 3);
        at(300, "phone-b", "r2", 1, 3);
        let lines = stats.lines(t0 + Duration::from_secs(2));
        assert_eq!(
            lines,
            [
                (
                    "4e7b1d2a-8c3f".to_owned(),
                    "4e7b1d2a: 2.5 msg/s, 25.0 readings/s, last seen 1.1 s ago, 2 lost (1 session)"
                        .to_owned()
                ),
                (
                    "phone-b".to_owned(),
                    "phone: 1.0 msg/s, 3.0 readings/s, last seen 1.7 s ago, 0 lost (2 sessions)"
                        .to_owned()
                ),
            ]
        );
        // Rates count only what arrived since the previous line.
        stats.record(
            "phone-b",
            Some("r2"),
            Some(2),
            3,
            t0 + Duration::from_secs(3),
        );
        let lines = stats.lines(t0 + Duration::from_secs(4));
        assert_eq!(
            lines[0].1,
            "4e7b1d2a: 0.0 msg/s, 0.0 readings/s, last seen 3.1 s ago, 2 lost (1 session)"
        );
        assert_eq!(
            lines[1].1,
            "phone: 0.5 msg/s, 1.5 readings/s, last seen 1.0 s ago, 0 lost (2 sessions)"
        );
    }

    #[test]
    fn hostile_ids_neither_overflow_nor_reach_the_terminal_nor_pile_up() {
        let t0 = Instant::now();
        let mut stats = PushStats::default();
        stats.record("d", Some("s"), Some(i64::MIN), 1, t0);
        stats.record("d", Some("s"), Some(i64::MAX), 1, t0);
        let lines = stats.lines(t0);
        assert!(
            lines[0].1.contains(&format!(", {} lost", u64::MAX - 1)),
            "{lines:?}"
        );

        let mut stats = PushStats::default();
        stats.record("\x1b]0;owned\x07\x1b[2J", None, None, 1, t0);
        assert_eq!(
            stats.lines(t0)[0].1,
            "?]0;owned??[2J: 1.0 msg/s, 1.0 readings/s, last seen 0.0 s ago, 0 lost (0 sessions)"
        );

        let mut stats = PushStats::default();
        for i in 0..1000u64 {
            let at = t0 + std::time::Duration::from_millis(i);
            stats.record(
                &format!("device {i}"),
                Some(&format!("s{i}")),
                Some(1),
                1,
                at,
            );
            stats.record("steady", Some(&format!("s{i}")), Some(i as i64), 1, at);
        }
        let lines = stats.lines(t0);
        assert_eq!(lines.len(), MAX_DEVICES);
        assert!(lines.iter().any(|(id, _)| id == "steady"), "still heard");
        assert!(
            !lines.iter().any(|(id, _)| id == "device 0"),
            "idle, forgotten"
        );
        assert_eq!(stats.devices["steady"].sessions.len(), MAX_SESSIONS);
    }

    #[test]
    fn a_device_just_heard_has_no_inflated_rate() {
        let t0 = Instant::now();
        let mut stats = PushStats::default();
        stats.record("d", None, None, 5, t0);
        let lines = stats.lines(t0 + Duration::from_millis(1));
        assert!(
            lines[0].1.starts_with("d: 1.0 msg/s, 5.0 readings/s"),
            "{lines:?}"
        );
    }

    #[test]
    fn messages_without_ids_count_but_track_no_session() {
        let t0 = Instant::now();
        let mut stats = PushStats::default();
        stats.record("d", None, None, 5, t0);
        let lines = stats.lines(t0 + Duration::from_secs(1));
        assert_eq!(
            lines[0].1,
            "d: 1.0 msg/s, 5.0 readings/s, last seen 1.0 s ago, 0 lost (0 sessions)"
        );
    }
}
