//! A sleep with microsecond precision for paced publishers. tokio's timer rounds every
//! deadline up to its next millisecond tick, so a publisher at 2,000 msg/s would send each
//! message up to 1 ms late, and the latency measured from the scheduled time would be mostly
//! the bench's own; a timerfd wakes the same reactor when the deadline is due.

use std::io;
use std::os::fd::OwnedFd;

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use rustix::time::{timerfd_create, timerfd_settime};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

pub struct Timer {
    fd: AsyncFd<OwnedFd>,
}

impl Timer {
    pub fn new() -> io::Result<Timer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // `AsyncFd::new` is deprecated because a registered fd that its owner closes or
        // replaces is unsound; this OwnedFd lives, unshared, exactly as long as the AsyncFd.
        // The replacement, `register`, is `unsafe`, which smq forbids.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(Timer { fd })
    }

    /// Returns at `due`. Cancel-safe: the next call sets the timer again.
    pub async fn sleep_until(&self, due: Instant) -> io::Result<()> {
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Ok(());
        }
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = Timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos().into(),
        };
        // Setting the timer also forgets an expiry nobody read.
        timerfd_settime(
            self.fd.get_ref(),
            TimerfdTimerFlags::empty(),
            &Itimerspec {
                it_interval: zero,
                it_value: value,
            },
        )?;
        loop {
            let mut ready = self.fd.readable().await?;
            let mut count = [0u8; 8];
            match rustix::io::read(self.fd.get_ref(), &mut count) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
