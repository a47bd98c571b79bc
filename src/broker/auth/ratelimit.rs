//! Failed logins per source address (IPv6 by its /64, which one host usually holds whole).
//! After a failure, logins from the address are checked one at a time, each a while after
//! the one before (100 ms, doubling with each failure within `WINDOW` of the last one, up to
//! 5 s): a CONNECT waits for its turn, and one whose turn is more than 5 s away is refused
//! unchecked. So parallel connections get no more guesses than serial ones, and a user
//! behind the same address as a guesser still gets in, later. A quiet `WINDOW` forgets the
//! address. The table is bounded: when full, the entry with the fewest failures
//! (the oldest among equals) makes room, so a spray of addresses cannot grow it nor wipe the
//! record of an address that keeps failing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const FIRST: Duration = Duration::from_millis(100);
const MOST: Duration = Duration::from_secs(5);
const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    /// The next CONNECT from the address is checked no earlier than this.
    next_turn: Instant,
}

#[derive(Debug, Default)]
pub struct Failures {
    by_addr: Mutex<HashMap<IpAddr, Entry>>,
}

/// The address's turns are taken for longer than `MOST`: refuse without checking.
#[derive(Debug, PartialEq, Eq)]
pub struct Locked;

/// The table's key: IPv4 addresses whole, IPv6 addresses by their /64 prefix.
fn key(addr: IpAddr) -> IpAddr {
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
    /// How long a login from `addr` waits before it is checked, or Locked.
    pub fn attempt(&self, addr: IpAddr) -> Result<Duration, Locked> {
        self.attempt_at(addr, Instant::now())
    }

    pub fn failed(&self, addr: IpAddr) {
        self.failed_at(addr, Instant::now());
    }

    /// Gives a login from `addr` the next turn, which moves the one after on by as long as
    /// this one's failure would, whatever its outcome.
    fn attempt_at(&self, addr: IpAddr, now: Instant) -> Result<Duration, Locked> {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = map.get_mut(&key(addr)) else {
            return Ok(Duration::ZERO);
        };
        if now.duration_since(e.last_failure) >= WINDOW {
            map.remove(&key(addr));
            return Ok(Duration::ZERO);
        }
        let turn = e.next_turn.max(now);
        let wait = turn - now;
        if wait > MOST {
            return Err(Locked);
        }
        e.next_turn = turn + lock_for(e.failures);
        Ok(wait)
    }

    fn failed_at(&self, addr: IpAddr, now: Instant) {
        let key = key(addr);
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&key) {
            map.retain(|_, e| now.duration_since(e.last_failure) < WINDOW);
            if map.len() >= MAX_ADDRESSES {
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

    #[test]
    fn turns_per_address_and_forgotten() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let t0 = Instant::now();
        assert_eq!(f.attempt_at(a, t0), NOW);
        f.failed_at(a, t0);
        assert_eq!(f.attempt_at(a, t0), Ok(FIRST), "waits its turn");
        f.failed_at(a, t0 + FIRST);
        // The next turn: after the one taken (FIRST), and FIRST * 2 after that failure.
        assert_eq!(f.attempt_at(a, t0 + FIRST), Ok(FIRST * 2));
        assert_eq!(f.attempt_at(b, t0), NOW, "other addresses do not wait");
        for _ in 0..20 {
            f.failed_at(a, t0 + FIRST);
        }
        let t1 = t0 + FIRST;
        assert_eq!(f.attempt_at(a, t1), Ok(MOST), "at most 5 s");
        assert_eq!(f.attempt_at(a, t1), Err(Locked), "the turns are taken");
        let later = t1 + WINDOW;
        assert_eq!(f.attempt_at(a, later), NOW);
        f.failed_at(a, later);
        assert_eq!(f.attempt_at(a, later + FIRST), NOW, "starts over");
    }

    #[test]
    fn parallel_attempts_get_no_more_guesses_than_serial_ones() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let t0 = Instant::now();
        for _ in 0..8 {
            f.failed_at(a, t0);
        }
        // 200 CONNECTs at once, then 200 more every 10 ms: about one is checked per 5 s.
        let mut checked_at = Vec::new();
        for ms in (0..20_000).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            for _ in 0..200 {
                if let Ok(wait) = f.attempt_at(a, now) {
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
    fn ipv6_counts_by_its_64_prefix() {
        let f = Failures::default();
        let t0 = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host: IpAddr = "2001:db8:1:2:ffff::7".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        f.failed_at(one, t0);
        assert_eq!(f.attempt_at(other_host, t0), Ok(FIRST));
        assert_eq!(f.attempt_at(other_net, t0), NOW);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        f.failed_at(mapped, t0);
        assert_eq!(f.attempt_at(IpAddr::from([10, 0, 0, 1]), t0), Ok(FIRST));
    }

    #[test]
    fn a_spray_of_addresses_evicts_the_least_failed_and_keeps_the_persistent() {
        let f = Failures::default();
        let t0 = Instant::now();
        let guesser = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..5 {
            f.failed_at(guesser, t0);
        }
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            f.failed_at(IpAddr::from((10 << 24 | i).to_be_bytes()), t0);
        }
        assert!(f.by_addr.lock().unwrap().len() <= MAX_ADDRESSES);
        assert_eq!(
            f.attempt_at(guesser, t0),
            Ok(FIRST * 16),
            "its record was not wiped"
        );
    }
}
