//! Failed logins per source address (IPv6 by its /64, which one host usually holds whole).
//! After a failure, logins from the address are checked one at a time, each a while after
//! the one before (100 ms, doubling with each failure within `WINDOW` of the last one, up to
//! 5 s): a CONNECT waits for its turn, and one whose turn is more than 5 s away is refused
//! unchecked. So parallel connections get no more guesses than serial ones. A quiet `WINDOW`
//! forgets the address. The table is bounded: when full, the entry with the fewest failures
//! (the oldest among equals) makes room, so a spray of addresses cannot grow it nor wipe the
//! record of an address that keeps failing.
//!
//! Before the first failure is known, a burst of parallel CONNECTs would all be checked at
//! once, each one a guess: so at most `PARALLEL` logins of one key are checked at a time, and
//! the others ask again a moment later, by when a failure among those has started the brake.
//!
//! A guesser keeps its address's turns taken, so a real user behind the same address would be
//! refused as long as the guessing goes on. Checking a password out of turn because it might
//! be right would give the guesser the same: nothing in a CONNECT tells the two apart but the
//! password. What does is history, as OWASP's "device cookies" have it: a client that logged
//! in from the address before, with the same user name and client id, has turns of its own
//! (a *device*), which the guesses on the address do not touch. A guesser who also knows that
//! client id gets one more queue of turns, braked the same way, per device: the guess rate
//! stays bounded by the devices that really logged in.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const FIRST: Duration = Duration::from_millis(100);
const MOST: Duration = Duration::from_secs(5);
/// Addresses and devices with failures.
const MAX_ENTRIES: usize = 4096;
/// Devices remembered; past this the one that logged in longest ago is forgotten.
const MAX_DEVICES: usize = 4096;
/// Logins of one key checked at the same time.
const PARALLEL: u32 = 4;
/// How soon a login that found `PARALLEL` others being checked asks again.
pub const BUSY_RETRY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    /// The next CONNECT from the address is checked no earlier than this.
    next_turn: Instant,
    /// Turns given to logins not checked yet: each may be one more failure, so each spaces
    /// the next turn out as one would. Otherwise a burst that arrives after the first failure
    /// gets turns 100 ms apart, fifty guesses in the 5 s before the brake catches up.
    reserved: u32,
}

#[derive(Debug, Default)]
pub struct Failures {
    by_key: Mutex<HashMap<Key, Entry>>,
    /// Logins being checked, by key; an entry lives only while one is.
    checking: Mutex<HashMap<Key, u32>>,
    /// Devices that logged in, by a keyed hash of (address, user name, client id): fixed-size
    /// entries whatever the names' lengths, and no collisions a client could aim for.
    devices: Mutex<HashMap<u64, Instant>>,
    hasher: RandomState,
}

/// Whose turns a login takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Address(IpAddr),
    Device(u64),
}

/// The address's turns are taken for longer than `MOST`: refuse without checking.
#[derive(Debug, PartialEq, Eq)]
pub struct Locked;

/// What a login may do now.
#[derive(Debug)]
pub enum Attempt<'a> {
    /// Check it after this wait; it counts as being checked until the `Check` drops.
    Go(Duration, Check<'a>),
    /// `PARALLEL` logins of its key are being checked: ask again after `BUSY_RETRY`.
    Busy,
}

/// A login being checked (see `PARALLEL`), holding its turn (see `Entry::reserved`).
#[derive(Debug)]
pub struct Check<'a> {
    failures: &'a Failures,
    key: Key,
    reserved: bool,
}

impl Drop for Check<'_> {
    fn drop(&mut self) {
        let mut checking = self
            .failures
            .checking
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = checking.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                checking.remove(&self.key);
            }
        }
        drop(checking);
        if self.reserved {
            let mut map = self
                .failures
                .by_key
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(e) = map.get_mut(&self.key) {
                e.reserved = e.reserved.saturating_sub(1);
            }
        }
    }
}

/// IPv4 addresses whole, IPv6 addresses by their /64 prefix.
fn network(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
        v4 => v4,
    }
}

fn lock_for(failures: u32) -> Duration {
    FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(6))
        .min(MOST)
}

impl Failures {
    /// The turns a login takes: its device's when this client logged in from this address
    /// before, else the address's. An empty `client_id` (the broker picks one) is no device.
    pub fn key(&self, addr: IpAddr, user: Option<&str>, client_id: &str) -> Key {
        let Some(device) = self.device(addr, user, client_id) else {
            return Key::Address(network(addr));
        };
        let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if devices.contains_key(&device) {
            Key::Device(device)
        } else {
            Key::Address(network(addr))
        }
    }

    fn device(&self, addr: IpAddr, user: Option<&str>, client_id: &str) -> Option<u64> {
        let user = user?;
        (!client_id.is_empty()).then(|| self.hasher.hash_one((network(addr), user, client_id)))
    }

    /// How long a login waits before it is checked, whether to ask again, or Locked.
    pub fn attempt(&self, key: Key) -> Result<Attempt<'_>, Locked> {
        let now = Instant::now();
        let mut checking = self.checking.lock().unwrap_or_else(|e| e.into_inner());
        // Once the brake is on, its turns space the checks out (and refuse the excess at
        // once, without a task that keeps asking).
        let busy = checking.get(&key).is_some_and(|&n| n >= PARALLEL);
        if busy && !self.braked(key, now) {
            return Ok(Attempt::Busy);
        }
        let braked = self.braked(key, now);
        let wait = self.attempt_at(key, now)?;
        *checking.entry(key).or_insert(0) += 1;
        Ok(Attempt::Go(
            wait,
            Check {
                failures: self,
                key,
                reserved: braked,
            },
        ))
    }

    /// Whether a failure of `key` is recent enough to brake it.
    fn braked(&self, key: Key, now: Instant) -> bool {
        let map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&key)
            .is_some_and(|e| now.duration_since(e.last_failure) < WINDOW)
    }

    pub fn failed(&self, key: Key) {
        self.failed_at(key, Instant::now());
    }

    /// A password login that succeeded: the client is a device of the address from now on.
    pub fn logged_in(&self, addr: IpAddr, user: &str, client_id: &str) {
        self.logged_in_at(addr, user, client_id, Instant::now());
    }

    fn logged_in_at(&self, addr: IpAddr, user: &str, client_id: &str, now: Instant) {
        let Some(device) = self.device(addr, Some(user), client_id) else {
            return;
        };
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if devices.len() >= MAX_DEVICES && !devices.contains_key(&device) {
            let oldest = devices.iter().min_by_key(|(_, at)| **at).map(|(d, _)| *d);
            if let Some(oldest) = oldest {
                devices.remove(&oldest);
            }
        }
        devices.insert(device, now);
    }

    /// Gives a login the key's next turn, which moves the one after on by as long as this
    /// one's failure would, whatever its outcome.
    fn attempt_at(&self, key: Key, now: Instant) -> Result<Duration, Locked> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = map.get_mut(&key) else {
            return Ok(Duration::ZERO);
        };
        if now.duration_since(e.last_failure) >= WINDOW {
            map.remove(&key);
            return Ok(Duration::ZERO);
        }
        let turn = e.next_turn.max(now);
        let wait = turn - now;
        if wait > MOST {
            return Err(Locked);
        }
        e.next_turn = turn + lock_for(e.failures.saturating_add(e.reserved));
        e.reserved = e.reserved.saturating_add(1);
        Ok(wait)
    }

    fn failed_at(&self, key: Key, now: Instant) {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            map.retain(|_, e| now.duration_since(e.last_failure) < WINDOW);
            if map.len() >= MAX_ENTRIES {
                let evict = map
                    .iter()
                    .min_by_key(|(_, e)| (e.failures, e.last_failure))
                    .map(|(k, _)| *k);
                if let Some(k) = evict {
                    map.remove(&k);
                }
            }
        }
        let e = map.entry(key).or_insert(Entry {
            failures: 0,
            last_failure: now,
            next_turn: now,
            reserved: 0,
        });
        if now.duration_since(e.last_failure) >= WINDOW {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.next_turn = e.next_turn.max(now + lock_for(e.failures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Result<Duration, Locked> = Ok(Duration::ZERO);

    fn at(addr: IpAddr) -> Key {
        Key::Address(network(addr))
    }

    #[test]
    fn turns_per_address_and_forgotten() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let t0 = Instant::now();
        assert_eq!(f.attempt_at(at(a), t0), NOW);
        f.failed_at(at(a), t0);
        assert_eq!(f.attempt_at(at(a), t0), Ok(FIRST), "waits its turn");
        f.failed_at(at(a), t0 + FIRST);
        // The next turn: after the one taken (FIRST), and FIRST * 2 after that failure.
        assert_eq!(f.attempt_at(at(a), t0 + FIRST), Ok(FIRST * 2));
        assert_eq!(f.attempt_at(at(b), t0), NOW, "other addresses do not wait");
        for _ in 0..20 {
            f.failed_at(at(a), t0 + FIRST);
        }
        let t1 = t0 + FIRST;
        assert_eq!(f.attempt_at(at(a), t1), Ok(MOST), "at most 5 s");
        assert_eq!(f.attempt_at(at(a), t1), Err(Locked), "the turns are taken");
        let later = t1 + WINDOW;
        assert_eq!(f.attempt_at(at(a), later), NOW);
        f.failed_at(at(a), later);
        assert_eq!(f.attempt_at(at(a), later + FIRST), NOW, "starts over");
    }

    #[test]
    fn parallel_attempts_get_no_more_guesses_than_serial_ones() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let t0 = Instant::now();
        for _ in 0..8 {
            f.failed_at(at(a), t0);
        }
        // 200 CONNECTs at once, then 200 more every 10 ms: about one is checked per 5 s.
        let mut checked_at = Vec::new();
        for ms in (0..20_000).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            for _ in 0..200 {
                if let Ok(wait) = f.attempt_at(at(a), now) {
                    checked_at.push(now + wait);
                }
            }
        }
        let offsets: Vec<Duration> = checked_at.iter().map(|t| *t - t0).collect();
        assert_eq!(
            offsets,
            [MOST, MOST * 2, MOST * 3, MOST * 4],
            "one check per turn, whatever the concurrency"
        );
    }

    #[test]
    fn a_burst_before_the_first_failure_is_checked_a_few_at_a_time() {
        let f = Failures::default();
        let a = at(IpAddr::from([10, 0, 0, 1]));
        let mut checks = Vec::new();
        for _ in 0..1000 {
            match f.attempt(a) {
                Ok(Attempt::Go(wait, check)) => {
                    assert_eq!(wait, Duration::ZERO);
                    checks.push(check);
                }
                Ok(Attempt::Busy) => {}
                Err(Locked) => panic!("locked before any failure"),
            }
        }
        assert_eq!(checks.len(), PARALLEL as usize, "the rest ask again later");
        // Those checks fail: the ones that ask again wait for the brake's turns.
        for c in checks.drain(..) {
            f.failed(a);
            drop(c);
        }
        let Ok(Attempt::Go(wait, check)) = f.attempt(a) else {
            panic!("a turn after the failures")
        };
        assert!(wait >= FIRST * 4, "{wait:?}");
        // Braked, the excess is refused at once rather than told to ask again.
        let mut outcomes = Vec::new();
        for _ in 0..1000 {
            outcomes.push(f.attempt(a));
        }
        assert!(outcomes.iter().all(|o| !matches!(o, Ok(Attempt::Busy))));
        assert!(outcomes.iter().any(|o| matches!(o, Err(Locked))));
        drop(outcomes);
        drop(check);
        assert!(f.checking.lock().unwrap().is_empty(), "nothing left behind");
    }

    #[test]
    fn turns_given_and_not_yet_checked_space_the_next_ones_as_failures_would() {
        let f = Failures::default();
        let a = at(IpAddr::from([10, 0, 0, 1]));
        let t0 = Instant::now();
        f.failed_at(a, t0);
        let waits: Vec<Result<Duration, Locked>> = (0..8).map(|_| f.attempt_at(a, t0)).collect();
        let ms = |n| Ok(Duration::from_millis(n));
        // Each turn twice as far from the one before as that one's: the seventh is past 5 s.
        // (Spaced by the one recorded failure alone, they came every 100 ms.)
        assert_eq!(
            waits,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                Err(Locked),
                Err(Locked)
            ]
        );
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix() {
        let f = Failures::default();
        let t0 = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host: IpAddr = "2001:db8:1:2:ffff::7".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        f.failed_at(at(one), t0);
        assert_eq!(f.attempt_at(at(other_host), t0), Ok(FIRST));
        assert_eq!(f.attempt_at(at(other_net), t0), NOW);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        f.failed_at(at(mapped), t0);
        assert_eq!(f.attempt_at(at(IpAddr::from([10, 0, 0, 1])), t0), Ok(FIRST));
    }

    #[test]
    fn a_spray_of_addresses_evicts_the_least_failed_and_keeps_the_persistent() {
        let f = Failures::default();
        let t0 = Instant::now();
        let guesser = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..5 {
            f.failed_at(at(guesser), t0);
        }
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            f.failed_at(at(IpAddr::from((10 << 24 | i).to_be_bytes())), t0);
        }
        assert!(f.by_key.lock().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(
            f.attempt_at(at(guesser), t0),
            Ok(FIRST * 16),
            "its record was not wiped"
        );
    }

    #[test]
    fn a_device_that_logged_in_keeps_its_own_turns() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let t0 = Instant::now();
        f.logged_in_at(a, "alice", "phone", t0);
        let phone = f.key(a, Some("alice"), "phone");
        assert!(matches!(phone, Key::Device(_)), "{phone:?}");
        for (addr, user, id) in [
            (a, Some("alice"), "laptop"),
            (a, Some("bob"), "phone"),
            (a, None, "phone"),
            (a, Some("alice"), ""),
            (IpAddr::from([10, 0, 0, 2]), Some("alice"), "phone"),
        ] {
            assert_eq!(f.key(addr, user, id), at(addr), "{addr} {user:?} {id}");
        }
        // Guesses on the address, however many, leave the device's turns alone.
        for _ in 0..20 {
            f.failed_at(at(a), t0);
        }
        assert_eq!(f.attempt_at(at(a), t0), Ok(MOST));
        assert_eq!(f.attempt_at(at(a), t0), Err(Locked));
        assert_eq!(f.attempt_at(phone, t0), NOW);
        // Guesses with the device's client id are braked on the device, as on an address.
        f.failed_at(phone, t0);
        assert_eq!(f.attempt_at(phone, t0), Ok(FIRST));
        for _ in 0..20 {
            f.failed_at(phone, t0);
        }
        assert_eq!(f.attempt_at(phone, t0), Ok(MOST));
        assert_eq!(f.attempt_at(phone, t0), Err(Locked));
    }

    #[test]
    fn devices_are_bounded_and_the_longest_unseen_goes_first() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let t0 = Instant::now();
        f.logged_in_at(a, "alice", "first", t0);
        f.logged_in_at(a, "alice", "kept", t0);
        for i in 0..MAX_DEVICES {
            let later = t0 + Duration::from_millis(1 + i as u64);
            f.logged_in_at(a, "bob", &format!("device-{i}"), later);
            // Logging in again refreshes a device.
            f.logged_in_at(a, "alice", "kept", later);
        }
        assert!(f.devices.lock().unwrap().len() <= MAX_DEVICES);
        assert_eq!(f.key(a, Some("alice"), "first"), at(a), "forgotten");
        assert!(matches!(f.key(a, Some("alice"), "kept"), Key::Device(_)));
    }
}
