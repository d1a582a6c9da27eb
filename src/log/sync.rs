//! Group commit and append notification.
//!
//! fsync: the first thread that needs one becomes the leader, fsyncs everything written
//! so far and publishes how far that reaches; threads that queued behind it wait on a
//! condition variable and return without an fsync of their own when the leader's covered
//! them (the idea of raft-engine's write barrier, built from `Mutex` + `Condvar`).
//!
//! Appends: waiting readers park on a second condition variable that every append
//! notifies, so a consumer wakes as soon as the OS schedules it, without polling.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Log;
use crate::error::{Error, IoContext, Result};
use crate::segment::Segment;

#[derive(Debug, Default)]
struct Barrier {
    /// Every offset below this has been fsynced.
    synced: i64,
    /// A leader is fsyncing now.
    syncing: bool,
}

/// The log's fsync barrier and append notifier.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    barrier: Mutex<Barrier>,
    synced_cv: Condvar,
    appended: Mutex<u64>,
    appended_cv: Condvar,
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

    /// Wakes every thread in [`SyncState::wait_for`].
    pub(super) fn notify_appended(&self) {
        *self.appended.lock() += 1;
        self.appended_cv.notify_all();
    }

    /// Parks until `ready()` holds or `timeout` passes.
    pub(super) fn wait_for(&self, ready: impl Fn() -> bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = self.appended.lock();
        while !ready() {
            if self.appended_cv.wait_until(&mut seen, deadline).timed_out() {
                return;
            }
        }
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

    fn check_not_poisoned(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(cause) => Err(Error::Poisoned {
                partition: self.name.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
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
