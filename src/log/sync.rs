//! Group commit and append notification.
//!
//! fsync: the first thread that needs one becomes the leader, fsyncs everything written
//! so far and publishes how far that reaches; threads that queued behind it wait on a
//! condition variable and return without an fsync of their own when the leader's covered
//! them (the idea of raft-engine's write barrier, built from `Mutex` + `Condvar`).
//!
//! Appends: waiting readers register a [`Waiter`]; an append unparks the registered
//! waiters that are parked, so a consumer wakes as soon as the OS schedules it, without
//! polling. A waiter that is busy costs the appender one atomic load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use super::Log;
use crate::error::{IoContext, Result};
use crate::segment::Segment;

#[derive(Debug, Default)]
struct Barrier {
    /// Every offset below this has been fsynced.
    synced: i64,
    /// A leader is fsyncing now.
    syncing: bool,
}

/// A thread that may park until an append (on any of the logs it registered with).
#[derive(Debug)]
pub(crate) struct Waiter {
    thread: Mutex<Thread>,
    parked: AtomicBool,
}

impl Default for Waiter {
    fn default() -> Waiter {
        Waiter::new()
    }
}

impl Waiter {
    /// A waiter for the current thread (updated by `park_until` if it moves).
    pub(crate) fn new() -> Waiter {
        Waiter {
            thread: Mutex::new(std::thread::current()),
            parked: AtomicBool::new(false),
        }
    }

    /// Parks the current thread until `ready()` or `deadline`. `ready` is re-checked
    /// after announcing the park, so an append between the check and the park is not
    /// missed: the appender stores the log end offset, then reads `parked` (both SeqCst);
    /// this thread stores `parked`, then reads the log end offset.
    /// `deadline` `None` waits without a time limit.
    pub(crate) fn park_until(&self, deadline: Option<Instant>, ready: impl Fn() -> bool) {
        {
            let me = std::thread::current();
            let mut t = self.thread.lock();
            if t.id() != me.id() {
                *t = me;
            }
        }
        while !ready() {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return;
            }
            self.parked.store(true, Ordering::SeqCst);
            if ready() {
                self.parked.store(false, Ordering::SeqCst);
                return;
            }
            match deadline {
                Some(d) => std::thread::park_timeout(d - now),
                None => std::thread::park(),
            }
            self.parked.store(false, Ordering::SeqCst);
        }
    }

    pub(crate) fn wake(&self) {
        if self.parked.load(Ordering::SeqCst) {
            self.thread.lock().unpark();
        }
    }
}

/// The log's fsync barrier and append notifier.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    barrier: Mutex<Barrier>,
    synced_cv: Condvar,
    waiters: RwLock<Vec<Arc<Waiter>>>,
}

impl SyncState {
    pub(super) fn new(synced: i64) -> SyncState {
        SyncState {
            barrier: Mutex::new(Barrier {
                synced,
                syncing: false,
            }),
            ..SyncState::default()
        }
    }

    /// Unparks every registered waiter that is parked.
    pub(super) fn notify_appended(&self) {
        for w in self.waiters.read().iter() {
            w.wake();
        }
    }

    pub(super) fn add_waiter(&self, w: &Arc<Waiter>) {
        self.waiters.write().push(w.clone());
    }

    pub(super) fn remove_waiter(&self, w: &Arc<Waiter>) {
        self.waiters.write().retain(|x| !Arc::ptr_eq(x, w));
    }
}

impl Log {
    /// Returns once every offset below `target` is fsynced, fsyncing as the group's
    /// leader if no other thread is already doing it.
    pub(super) fn sync_to(&self, target: i64) -> Result<()> {
        let state = &self.sync;
        let mut b = state.barrier.lock();
        loop {
            if b.synced >= target {
                return Ok(());
            }
            self.check_not_poisoned()?;
            if b.syncing {
                state.synced_cv.wait(&mut b);
                continue;
            }
            b.syncing = true;
            drop(b);
            let upto = self.log_end_offset();
            let result = self.fsync_unflushed();
            b = state.barrier.lock();
            b.syncing = false;
            match result {
                Ok(()) => {
                    b.synced = b.synced.max(upto);
                    self.recovery_point.fetch_max(upto, Ordering::AcqRel);
                    self.last_flush_ms
                        .store(self.clock.now_ms(), Ordering::Relaxed);
                    state.synced_cv.notify_all();
                }
                Err(e) => {
                    self.poison(&e);
                    state.synced_cv.notify_all();
                    return Err(e);
                }
            }
        }
    }

    /// fsyncs every segment holding offsets at or above the recovery point (the sealed
    /// ones with their indexes), then the directory if files were created.
    fn fsync_unflushed(&self) -> Result<()> {
        let rp = self.recovery_point();
        let segs: Vec<Arc<Segment>> = {
            let all = self.segments.read();
            let first = all
                .partition_point(|s| s.base_offset() <= rp)
                .saturating_sub(1);
            all[first..].to_vec()
        };
        let last = segs.len().saturating_sub(1);
        for (i, seg) in segs.iter().enumerate() {
            seg.sync_log()?;
            if i < last {
                seg.sync_indexes()?;
            }
        }
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            let r = std::fs::File::open(&self.dir).and_then(|d| d.sync_all());
            if let Err(e) = r.at(&self.dir) {
                self.dir_dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }
}
