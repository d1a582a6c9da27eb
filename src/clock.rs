//! Wall-clock time, injectable so that tests can drive time-based rules.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `d` in whole milliseconds, as the broker's clock counts them (`i64::MAX` past it).
pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A source of the current time in milliseconds since the Unix epoch.
///
/// The log reads it for LogAppendTime stamps, time-based roll of segments whose first
/// batch has no timestamp, and the `Interval` fsync policy.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        realtime_ms().unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
    }
}

/// `CLOCK_REALTIME` in milliseconds (0 before the epoch, as `SystemTime` gives), read
/// with one `clock_gettime`: an append reads the clock, and `SystemTime`'s arithmetic on
/// top of the same call runs through two more pages of code, which a producer that has
/// just slept pays for in cache and TLB misses. `None` if the call fails.
#[cfg(unix)]
#[allow(unsafe_code)]
fn realtime_ms() -> Option<i64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable `timespec` for the whole call, which only writes
    // it; the clock id is a constant every unix has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc != 0 {
        return None;
    }
    // Both fields are 32 bits wide on some targets.
    #[allow(clippy::useless_conversion)]
    let ms = i64::from(ts.tv_sec) * 1000 + i64::from(ts.tv_nsec) / 1_000_000;
    Some(ms.max(0))
}

#[cfg(not(unix))]
fn realtime_ms() -> Option<i64> {
    None
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock {
            now: AtomicI64::new(now_ms),
        }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: i64) {
        self.now.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}
