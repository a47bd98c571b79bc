//! The bytes HTTP Push holds for requests in flight (bodies as they arrive, their gzip
//! decoding, their `--split` messages), charged to one shared budget as they are taken.
//!
//! A `Content-Length` is a promise, not bytes: reserving it up front let four connections that
//! announce 16 MiB and send a byte now and then take the whole budget, and left a gzip body's
//! decoding out of it. Charged as buffers grow, the budget bounds what is really held, and a
//! request that finds it spent is refused (503) instead of waiting: requests waiting for each
//! other's bytes could all wait at once.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// The budget: its free bytes are a semaphore's permits.
pub struct Budget {
    free: Arc<Semaphore>,
    max: usize,
}

/// Not that many bytes free: the answer is 503.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Budget {
    pub fn new(max: usize) -> Budget {
        let max = max.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Budget {
            free: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The most one request can ever hold: past this it is too large (413), not early (503).
    pub fn max(&self) -> usize {
        self.max
    }

    /// A new request's account, holding nothing yet.
    pub fn charge(&self) -> Charge {
        Charge {
            free: self.free.clone(),
            held: 0,
        }
    }
}

/// What one request holds; given back to the budget when it is dropped.
pub struct Charge {
    free: Arc<Semaphore>,
    held: usize,
}

impl Charge {
    pub fn held(&self) -> usize {
        self.held
    }

    /// Takes `n` more bytes, or none when the budget has not that many free.
    pub fn take(&mut self, n: usize) -> Result<(), Busy> {
        if n == 0 {
            return Ok(());
        }
        let permits = u32::try_from(n).map_err(|_| Busy)?;
        self.free
            .try_acquire_many(permits)
            .map_err(|_| Busy)?
            .forget();
        self.held += n;
        Ok(())
    }

    /// Makes room in `buf` for `additional` more bytes, charging the capacity it grows by:
    /// doubling, but never past `limit` unless `additional` needs it. (The old allocation
    /// outlives the new one's making only while it is copied, on this thread: not charged, so
    /// that four bodies of `--http-max-body` fit the budget exactly.)
    pub fn grow(&mut self, buf: &mut Vec<u8>, additional: usize, limit: usize) -> Result<(), Busy> {
        let need = buf.len().saturating_add(additional);
        let old = buf.capacity();
        if need <= old {
            return Ok(());
        }
        let new = old.saturating_mul(2).min(limit).max(need);
        self.take(new - old)?;
        buf.reserve_exact(new - buf.len());
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.free.add_permits(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_what_buffers_hold_and_gives_it_back() {
        let budget = Budget::new(300 << 10);
        let mut a = budget.charge();
        let mut buf = Vec::new();
        a.grow(&mut buf, 10, 1 << 20).expect("fits");
        assert_eq!((a.held(), buf.capacity()), (10, 10), "a byte costs a byte");
        a.grow(&mut buf, 64 << 10, 1 << 20).expect("fits");
        assert_eq!((a.held(), buf.capacity()), (64 << 10, 64 << 10));
        buf.resize(64 << 10, 0);
        a.grow(&mut buf, 1, 1 << 20).expect("fits");
        // Doubled.
        assert_eq!((a.held(), buf.capacity()), (128 << 10, 128 << 10));
        buf.resize(100 << 10, 0);
        a.grow(&mut buf, 20 << 10, 150 << 10).expect("room left");
        assert_eq!(a.held(), 128 << 10, "no growth needed");
        a.grow(&mut buf, 40 << 10, 150 << 10)
            .expect("capped at the limit");
        assert_eq!((a.held(), buf.capacity()), (150 << 10, 150 << 10));

        let mut b = budget.charge();
        assert_eq!(b.take(150 << 10), Ok(()));
        assert_eq!(b.take(1), Err(Busy), "the budget is spent");
        assert_eq!(b.held(), 150 << 10, "a refused take takes nothing");
        drop(a);
        assert_eq!(b.take(150 << 10), Ok(()), "a's bytes came back");
        drop(b);
        assert_eq!(budget.charge().take(300 << 10), Ok(()));
    }

    #[test]
    fn a_growth_that_does_not_fit_keeps_the_buffer() {
        let budget = Budget::new(100 << 10);
        let mut c = budget.charge();
        let mut buf = vec![1u8; 60 << 10];
        c.take(buf.capacity()).expect("fits");
        // Doubling to 120 KiB needs 60 KiB more.
        assert_eq!(c.grow(&mut buf, 10 << 10, 1 << 20), Err(Busy));
        assert_eq!(
            (c.held(), buf.capacity(), buf.len()),
            (60 << 10, 60 << 10, 60 << 10)
        );
    }
}
