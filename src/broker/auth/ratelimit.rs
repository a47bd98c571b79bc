//! Failed logins per source address (IPv6 by its /64, which one host usually holds whole).
//! After a failure the address is locked for a while (100 ms, doubling with each failure
//! within `WINDOW` of the last one, up to 5 s): a CONNECT that arrives meanwhile is refused
//! unchecked, and the one that is let in starts the next lock before its password is
//! checked. So parallel connections get no more guesses than serial ones. A quiet `WINDOW`
//! forgets the address. The table is bounded: when full, the entry with the fewest failures
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
    /// No CONNECT from the address is checked before this.
    locked_until: Instant,
}

#[derive(Debug, Default)]
pub struct Failures {
    by_addr: Mutex<HashMap<IpAddr, Entry>>,
}

/// The address is locked out: refuse without checking.
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
    pub fn attempt(&self, addr: IpAddr) -> Result<(), Locked> {
        self.attempt_at(addr, Instant::now())
    }

    pub fn failed(&self, addr: IpAddr) {
        self.failed_at(addr, Instant::now());
    }

    /// Lets a login from `addr` be checked now, or not; one that is let in locks the address
    /// for as long as its failure would, so the next one waits its turn whatever this one's
    /// outcome.
    fn attempt_at(&self, addr: IpAddr, now: Instant) -> Result<(), Locked> {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = map.get_mut(&key(addr)) else {
            return Ok(());
        };
        if now.duration_since(e.last_failure) >= WINDOW {
            map.remove(&key(addr));
            return Ok(());
        }
        if now < e.locked_until {
            return Err(Locked);
        }
        e.locked_until = now + lock_for(e.failures);
        Ok(())
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
            locked_until: now,
        });
        if now.duration_since(e.last_failure) >= WINDOW {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.locked_until = e.locked_until.max(now + lock_for(e.failures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_per_address_and_is_forgotten() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let t0 = Instant::now();
        assert_eq!(f.attempt_at(a, t0), Ok(()));
        f.failed_at(a, t0);
        assert_eq!(f.attempt_at(a, t0), Err(Locked));
        assert_eq!(f.attempt_at(a, t0 + FIRST), Ok(()));
        f.failed_at(a, t0 + FIRST);
        assert_eq!(f.attempt_at(a, t0 + FIRST * 2), Err(Locked), "doubled");
        assert_eq!(f.attempt_at(a, t0 + FIRST * 3), Ok(()));
        assert_eq!(
            f.attempt_at(b, t0),
            Ok(()),
            "other addresses are not locked"
        );
        for _ in 0..20 {
            f.failed_at(a, t0 + FIRST * 3);
        }
        let t1 = t0 + FIRST * 3;
        assert_eq!(f.attempt_at(a, t1 + MOST - FIRST), Err(Locked));
        assert_eq!(f.attempt_at(a, t1 + MOST), Ok(()), "at most 5 s");
        let later = t1 + WINDOW;
        assert_eq!(f.attempt_at(a, later), Ok(()));
        f.failed_at(a, later);
        assert_eq!(f.attempt_at(a, later + FIRST), Ok(()), "starts over");
    }

    #[test]
    fn parallel_attempts_get_no_more_guesses_than_serial_ones() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let t0 = Instant::now();
        for _ in 0..8 {
            f.failed_at(a, t0);
        }
        // 200 CONNECTs at once, and again over the next 5 s: one is checked per lock.
        let t = t0 + MOST;
        let let_in = (0..200).filter(|_| f.attempt_at(a, t).is_ok()).count();
        assert_eq!(let_in, 1);
        let mut checked = 0;
        for ms in (0..5000).step_by(10) {
            let now = t + Duration::from_millis(ms);
            checked += (0..200).filter(|_| f.attempt_at(a, now).is_ok()).count();
        }
        assert_eq!(
            checked, 0,
            "the one let in locked the address even before failing"
        );
        // A success does not unlock it either: the next check waits its turn.
        assert_eq!(f.attempt_at(a, t + MOST), Ok(()));
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix() {
        let f = Failures::default();
        let t0 = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host: IpAddr = "2001:db8:1:2:ffff::7".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        f.failed_at(one, t0);
        assert_eq!(f.attempt_at(other_host, t0), Err(Locked));
        assert_eq!(f.attempt_at(other_net, t0), Ok(()));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        f.failed_at(mapped, t0);
        assert_eq!(f.attempt_at(IpAddr::from([10, 0, 0, 1]), t0), Err(Locked));
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
        assert_eq!(f.attempt_at(guesser, t0 + FIRST), Err(Locked), "not wiped");
    }
}
