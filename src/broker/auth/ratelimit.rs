//! Failed logins per source address. Each failure within `WINDOW` of the last one doubles
//! the wait before that address's next CONNACK (from 100 ms up to 5 s); a quiet `WINDOW`
//! forgets the address. The table is bounded, so a spray of addresses cannot grow it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const FIRST: Duration = Duration::from_millis(100);
const MOST: Duration = Duration::from_secs(5);
const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Default)]
pub struct Failures {
    by_addr: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Failures {
    pub fn delay(&self, addr: IpAddr) -> Duration {
        self.delay_at(addr, Instant::now())
    }

    pub fn failed(&self, addr: IpAddr) {
        self.failed_at(addr, Instant::now());
    }

    fn delay_at(&self, addr: IpAddr, now: Instant) -> Duration {
        let map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&addr) {
            Some(&(n, last)) if now.duration_since(last) < WINDOW => {
                FIRST.saturating_mul(1 << (n - 1).min(6)).min(MOST)
            }
            _ => Duration::ZERO,
        }
    }

    fn failed_at(&self, addr: IpAddr, now: Instant) {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, (_, last)| now.duration_since(*last) < WINDOW);
            if map.len() >= MAX_ADDRESSES {
                // Under a spray of addresses: forget them all rather than grow.
                map.clear();
            }
        }
        let entry = map.entry(addr).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_per_address_and_is_forgotten() {
        let f = Failures::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let t0 = Instant::now();
        assert_eq!(f.delay_at(a, t0), Duration::ZERO);
        f.failed_at(a, t0);
        assert_eq!(f.delay_at(a, t0), FIRST);
        f.failed_at(a, t0);
        f.failed_at(a, t0);
        assert_eq!(f.delay_at(a, t0), FIRST * 4);
        assert_eq!(
            f.delay_at(b, t0),
            Duration::ZERO,
            "other addresses are not slowed"
        );
        for _ in 0..20 {
            f.failed_at(a, t0);
        }
        assert_eq!(f.delay_at(a, t0), MOST);
        let later = t0 + WINDOW;
        assert_eq!(f.delay_at(a, later), Duration::ZERO);
        f.failed_at(a, later);
        assert_eq!(
            f.delay_at(a, later),
            FIRST,
            "starts over after a quiet window"
        );
    }

    #[test]
    fn bounded() {
        let f = Failures::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            f.failed_at(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(f.by_addr.lock().unwrap().len() <= MAX_ADDRESSES);
    }
}
