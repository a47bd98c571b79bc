//! Keep-alive [MQTT-3.1.2-22]: every connection's, checked in one place. A connection stamps
//! the second it last heard from its client in its session's inbox; one task, once a second,
//! looks at the connections whose allowed silence may have run out, and closes those whose has
//! (through the inbox, as a takeover does). Each connection is looked at once per allowed
//! silence or every `LOOK_EVERY` seconds, whichever is sooner, not every second. A timer per
//! connection (a tokio `Sleep`) would be 112 bytes, boxed, for the connection's life; an entry
//! here is 24.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::state::Inbox;

/// The longest an entry waits for its next look. A connection that ended leaves its entry (and
/// its inbox's allocation, through the `Weak`) until then: with keep-alives of up to 65,535 s
/// (27 hours of silence allowed), a storm of short connections would otherwise leave its
/// entries for a day.
const LOOK_EVERY: u32 = 10;

pub struct KeepAlives {
    /// The keep-alive clock's zero.
    start: Instant,
    /// The connections to look at, by the second they are due.
    due: Mutex<BTreeMap<u32, Vec<Entry>>>,
}

struct Entry {
    /// Weak: a connection that ends leaves its entry to be dropped when it is due.
    inbox: Weak<Inbox>,
    generation: u64,
    allowed: u32,
}

impl KeepAlives {
    /// A clock whose zero is `start`: the broker's start, which its uptime counts from too.
    pub fn new(start: std::time::Instant) -> KeepAlives {
        KeepAlives {
            start: start.into(),
            due: Mutex::default(),
        }
    }

    /// The keep-alive clock, in whole seconds: what a connection stamps when it hears from its
    /// client. Read from the system clock, not advanced by the task, so that a late tick can
    /// never make a stamp old.
    pub fn now(&self) -> u32 {
        u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// Watches the connection of `generation` reading `inbox`: it is told to close once its
    /// client has sent nothing for 1.5 times `keepalive` seconds.
    pub fn watch(&self, inbox: &Arc<Inbox>, generation: u64, keepalive: u16) {
        let allowed = allowed_silence(keepalive);
        let now = self.now();
        inbox.attend(generation, now);
        let entry = Entry {
            inbox: Arc::downgrade(inbox),
            generation,
            allowed,
        };
        self.lock()
            .entry(now + allowed.min(LOOK_EVERY))
            .or_default()
            .push(entry);
    }

    /// Looks at every connection due by `now`.
    fn tick(&self, now: u32) {
        let due = {
            let mut due = self.lock();
            let later = due.split_off(&(now + 1));
            std::mem::replace(&mut *due, later)
        };
        // Checked without the lock: connecting clients add entries meanwhile.
        let mut again: Vec<(u32, Entry)> = Vec::new();
        for entry in due.into_values().flatten() {
            let Some(inbox) = entry.inbox.upgrade() else {
                continue;
            };
            if let Some(at) = inbox.check_silence(entry.generation, entry.allowed, now) {
                again.push((at.min(now + LOOK_EVERY), entry));
            }
        }
        if !again.is_empty() {
            let mut due = self.lock();
            for (at, entry) in again {
                due.entry(at).or_default().push(entry);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Vec<Entry>>> {
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Seconds on the keep-alive clock a client may be silent: 1.5 times its keep-alive, rounded
/// up, and one more: a stamp (whole seconds) is up to a second behind its packet, so no client
/// is closed before 1.5 x; the looks come once a second, so none more than about two after.
fn allowed_silence(keepalive: u16) -> u32 {
    (u32::from(keepalive) * 3).div_ceil(2) + 1
}

/// The once-a-second look, until the broker stops.
pub async fn run(keepalives: Arc<KeepAlives>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        keepalives.tick(keepalives.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::state::QueueLimits;

    fn inbox() -> Arc<Inbox> {
        Inbox::new(QueueLimits {
            messages: 10,
            bytes: usize::MAX,
        })
    }

    #[test]
    fn the_allowance_is_at_least_one_and_a_half_keep_alives() {
        assert_eq!(allowed_silence(1), 3);
        assert_eq!(allowed_silence(10), 16);
        assert_eq!(allowed_silence(u16::MAX), 98_304);
    }

    #[test]
    fn a_silent_connection_is_told_after_its_allowance_and_a_talking_one_is_not() {
        let k = KeepAlives::new(std::time::Instant::now());
        let (quiet, talking, gone, taken) = (inbox(), inbox(), inbox(), inbox());
        // Keep-alive 2 s: 3 s of silence allowed, plus the clock's second.
        for i in [&quiet, &talking, &gone, &taken] {
            k.watch(i, 1, 2);
        }
        gone.detach(1);
        // Ended too, with the longest keep-alive there is.
        let long = inbox();
        k.watch(&long, 1, u16::MAX);
        long.detach(1);
        // The session taken over by a connection of generation 2, which watches its own.
        k.watch(&taken, 2, 60);
        for now in 1..=3 {
            talking.heard(now);
            k.tick(now);
        }
        assert!(!quiet.silent(1), "not before 1.5 x the keep-alive");
        k.tick(4);
        assert!(quiet.silent(1), "silent since 0, told at 4");
        assert!(!talking.silent(1), "heard at 3, due at 7");
        assert!(!gone.silent(1) && !taken.silent(1) && !taken.silent(2));
        k.tick(7);
        assert!(talking.silent(1));
        // What is done with leaves the wheel, the long keep-alive's within `LOOK_EVERY`: only
        // the generation-2 connection is left.
        k.tick(LOOK_EVERY);
        let left: usize = k.lock().values().map(Vec::len).sum();
        assert_eq!(left, 1);
        assert!(!taken.silent(2));
    }
}
