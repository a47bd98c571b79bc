//! Counters and histograms shared by every connection of a bench run, read once a second for
//! the live line and once at the end for the summary.
//!
//! Latencies go into HDR histograms (the `hdrhistogram` crate) in nanoseconds with three
//! significant digits: a fixed ~270 KiB each, whatever the number of samples.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// The longest latency told apart from longer ones: an hour.
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// Wall-clock nanoseconds that never step back within a run: the epoch time at start plus a
/// monotonic clock. Two bench processes on one machine agree to within the time it takes to
/// read the clock, so a subscriber can time a publisher's messages.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    epoch_ns: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let epoch_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            base: Instant::now(),
            epoch_ns,
        }
    }

    pub fn at_ns(&self, t: Instant) -> u64 {
        self.epoch_ns + t.saturating_duration_since(self.base).as_nanos() as u64
    }

    pub fn now_ns(&self) -> u64 {
        self.at_ns(Instant::now())
    }
}

fn histogram() -> Histogram<u64> {
    // Constant bounds and precision, which hdrhistogram accepts: no input can make this fail.
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

struct Latencies {
    all: Histogram<u64>,
    /// Since the last live line.
    recent: Histogram<u64>,
}

pub struct Meter {
    pub clock: Clock,
    pub attempted: AtomicU64,
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    /// Connections that were up and then dropped.
    pub dropped: AtomicU64,
    pub ready: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub refused: AtomicU64,
    pub received: AtomicU64,
    /// Received messages without a bench header.
    pub foreign: AtomicU64,
    first_sent: AtomicU64,
    last_done: AtomicU64,
    first_received: AtomicU64,
    last_received: AtomicU64,
    first_connect: AtomicU64,
    last_connect: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    connect: Mutex<Histogram<u64>>,
    latency: Mutex<Latencies>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub dropped: u64,
    pub sent: u64,
    pub acked: u64,
    pub refused: u64,
    pub received: u64,
}

/// A time span in nanoseconds on the meter's clock, as a rate denominator.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub first: u64,
    pub last: u64,
}

impl Span {
    pub fn secs(&self) -> f64 {
        self.last.saturating_sub(self.first) as f64 / 1e9
    }

    /// `n` per second over this span, or None when the span is empty.
    pub fn rate(&self, n: u64) -> Option<f64> {
        let s = self.secs();
        (s > 0.0 && n > 0).then(|| n as f64 / s)
    }
}

impl Meter {
    pub fn new() -> Meter {
        Meter {
            clock: Clock::new(),
            attempted: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            received: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            first_sent: AtomicU64::new(u64::MAX),
            last_done: AtomicU64::new(0),
            first_received: AtomicU64::new(u64::MAX),
            last_received: AtomicU64::new(0),
            first_connect: AtomicU64::new(u64::MAX),
            last_connect: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            connect: Mutex::new(histogram()),
            latency: Mutex::new(Latencies {
                all: histogram(),
                recent: histogram(),
            }),
        }
    }

    pub fn connected(&self, started: Instant) {
        let now = Instant::now();
        self.connected.fetch_add(1, Relaxed);
        self.first_connect
            .fetch_min(self.clock.at_ns(started), Relaxed);
        self.last_connect.fetch_max(self.clock.at_ns(now), Relaxed);
        let ns = now.saturating_duration_since(started).as_nanos() as u64;
        lock(&self.connect).saturating_record(ns.max(1));
    }

    /// A connection that could not be made, or broke; counted by its reason.
    pub fn failure(&self, why: String) {
        *lock(&self.failures).entry(why).or_insert(0) += 1;
    }

    pub fn sent(&self) {
        self.sent.fetch_add(1, Relaxed);
        self.first_sent.fetch_min(self.clock.now_ns(), Relaxed);
    }

    /// A message handed over: written at QoS 0, acknowledged at QoS 1/2.
    pub fn done(&self, refused: bool) {
        if refused {
            self.refused.fetch_add(1, Relaxed);
        } else {
            self.acked.fetch_add(1, Relaxed);
        }
        self.last_done.fetch_max(self.clock.now_ns(), Relaxed);
    }

    /// Written at QoS 0: the end of the span `sent` is measured over.
    pub fn written(&self) {
        self.last_done.fetch_max(self.clock.now_ns(), Relaxed);
    }

    pub fn received(&self, now_ns: u64, latency_ns: Option<u64>) {
        self.received.fetch_add(1, Relaxed);
        self.first_received.fetch_min(now_ns, Relaxed);
        self.last_received.fetch_max(now_ns, Relaxed);
        match latency_ns {
            Some(ns) => {
                let mut l = lock(&self.latency);
                l.all.saturating_record(ns.max(1));
                l.recent.saturating_record(ns.max(1));
            }
            None => {
                self.foreign.fetch_add(1, Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            attempted: self.attempted.load(Relaxed),
            connected: self.connected.load(Relaxed),
            failed: self.failed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            sent: self.sent.load(Relaxed),
            acked: self.acked.load(Relaxed),
            refused: self.refused.load(Relaxed),
            received: self.received.load(Relaxed),
        }
    }

    /// Latency percentiles since the last call, and for the whole run so far.
    pub fn take_recent(&self) -> (Percentiles, Percentiles) {
        let mut l = lock(&self.latency);
        let recent = Percentiles::of(&l.recent);
        l.recent.reset();
        (recent, Percentiles::of(&l.all))
    }

    pub fn latency(&self) -> Percentiles {
        Percentiles::of(&lock(&self.latency).all)
    }

    pub fn connect_latency(&self) -> Percentiles {
        Percentiles::of(&lock(&self.connect))
    }

    pub fn failures(&self) -> BTreeMap<String, u64> {
        lock(&self.failures).clone()
    }

    /// From the first publish to the last message handed over.
    pub fn send_span(&self) -> Span {
        Span {
            first: self.first_sent.load(Relaxed),
            last: self.last_done.load(Relaxed),
        }
    }

    pub fn receive_span(&self) -> Span {
        Span {
            first: self.first_received.load(Relaxed),
            last: self.last_received.load(Relaxed),
        }
    }

    pub fn connect_span(&self) -> Span {
        Span {
            first: self.first_connect.load(Relaxed),
            last: self.last_connect.load(Relaxed),
        }
    }

    /// How long ago the last message arrived.
    pub fn since_last_received(&self) -> Duration {
        let last = self.last_received.load(Relaxed);
        Duration::from_nanos(self.clock.now_ns().saturating_sub(last))
    }
}

/// A poisoned lock only means another task panicked mid-update of a counter: keep counting.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
