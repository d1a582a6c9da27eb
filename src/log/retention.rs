//! Retention (reference §5.1, Kafka's `UnifiedLog.deleteOldSegments`): whole segments
//! are deleted from the oldest, by time, by size, and below the log start offset that
//! [`Log::delete_records`] moves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Log;
use super::checkpoint::sync_dir;
use crate::error::{Error, Result};
use crate::record::NO_TIMESTAMP;
use crate::segment::Segment;
use crate::segment::cleaned::{DELETED, SEGMENT_EXTS};

/// What a retention pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Base offsets of the segments deleted, oldest first.
    pub deleted_segments: Vec<i64>,
    /// Bytes of `.log` data deleted.
    pub deleted_bytes: u64,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

/// The segment's largest record timestamp, from its time index; a segment without
/// timestamps falls back to its `.log` file's modification time, as Kafka does.
fn largest_timestamp(seg: &Segment) -> i64 {
    let ts = seg.max_timestamp();
    if ts != NO_TIMESTAMP {
        return ts;
    }
    std::fs::metadata(seg.log_path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(NO_TIMESTAMP, |d| d.as_millis() as i64)
}

impl Log {
    /// Applies `retention.ms` and `retention.bytes` (-1 disables either) and deletes the
    /// segments wholly below the log start offset.
    ///
    /// Each rule deletes a prefix of the segments, oldest first, stopping at the first
    /// segment it keeps: by time while `now − largest timestamp > retention_ms` (the
    /// clock is the log's), by size while the partition minus the segment is still at
    /// least `retention_bytes`. When every segment qualifies, the active one is rolled
    /// first (as Kafka does), so the log keeps an empty active segment at the log end
    /// offset; an append that reaches the active segment during the pass keeps it (and
    /// its fresh records) until the next pass. The log start offset moves to the first surviving segment's base.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Log::close`]; [`Error::CleanerDisabled`] after a
    /// compaction's swap failed in this session (until reopened); [`Error::Io`] naming
    /// the file that could not be renamed or deleted; a roll's errors.
    pub fn apply_retention(
        &self,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Result<RetentionReport> {
        let _pass = self.cleanup.pass.lock();
        if self.is_closed() {
            return Err(Error::Closed(self.name.clone()));
        }
        self.check_cleanup_enabled()?;
        let now = self.clock.now_ms();
        let by_time = |segs: &[Arc<Segment>]| {
            if retention_ms < 0 {
                return 0;
            }
            segs.iter()
                .take_while(|s| now.saturating_sub(largest_timestamp(s)) > retention_ms)
                .count()
        };
        let by_size = |segs: &[Arc<Segment>]| {
            if retention_bytes < 0 {
                return 0;
            }
            let mut diff = segs.iter().map(|s| s.size() as i64).sum::<i64>() - retention_bytes;
            segs.iter()
                .take_while(|s| {
                    let keep = diff - (s.size() as i64) < 0;
                    diff -= s.size() as i64;
                    !keep
                })
                .count()
        };
        let segs = self.segments.read().clone();
        // Read before the timestamps and sizes the rules look at, so an append after it
        // shows as a change of size when the active segment is rolled below.
        let active_size = segs.last().map_or(0, |s| s.size());
        let mut n = by_time(&segs);
        n = n.max(by_size(&segs[n..]) + n);
        if n > 0 && n == segs.len() && !self.roll_if_unchanged(&segs[n - 1], active_size)? {
            n -= 1;
        }
        let mut report = self.delete_prefix(n)?;
        let more = self.delete_below_start()?;
        report.deleted_segments.extend(more.deleted_segments);
        report.deleted_bytes += more.deleted_bytes;
        report.log_start_offset = self.log_start_offset();
        Ok(report)
    }

    /// Rolls the active segment so that retention can delete it, provided it is still
    /// `seg`, holding `size` bytes: the segment the rules found expired, with nothing
    /// appended since (Kafka decides and rolls under the log's lock, which appends take
    /// too). `false` when an append got there first; the segment then stays this pass.
    fn roll_if_unchanged(&self, seg: &Arc<Segment>, size: u64) -> Result<bool> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        if !Arc::ptr_eq(&w.active, seg) || w.active.size() != size {
            return Ok(false);
        }
        if size == 0 {
            return Ok(true);
        }
        let result = self.roll(&mut w, self.log_end_offset());
        if let Err(e) = &result {
            self.poison(e);
        }
        result.map(|()| true)
    }

    /// Kafka's DeleteRecords: moves the log start offset up to `before_offset` (never
    /// down) and deletes the segments wholly below it; a segment it cuts keeps its bytes
    /// until it all falls below. Reads below the new start get
    /// [`Error::OffsetOutOfRange`]. Returns the log start offset.
    ///
    /// A bare `Log` does not persist its start offset: [`LogDir`](crate::LogDir) (and so
    /// [`Broker::delete_records`](crate::Broker::delete_records)) writes it to
    /// `log-start-offset-checkpoint`.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Log::close`];
    /// [`Error::CleanerDisabled`] after a compaction's swap failed in this session (until
    /// reopened);
    /// [`Error::OffsetOutOfRange`] when `before_offset` is above the log end offset;
    /// [`Error::Io`] naming a file that could not be deleted.
    pub fn delete_records(&self, before_offset: i64) -> Result<i64> {
        let _pass = self.cleanup.pass.lock();
        if self.is_closed() {
            return Err(Error::Closed(self.name.clone()));
        }
        self.check_cleanup_enabled()?;
        let end = self.log_end_offset();
        if before_offset > end || before_offset < 0 {
            return Err(Error::OffsetOutOfRange {
                partition: self.name.clone(),
                offset: before_offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: end,
            });
        }
        self.log_start_offset
            .fetch_max(before_offset, Ordering::AcqRel);
        self.delete_below_start()?;
        Ok(self.log_start_offset())
    }

    /// Deletes the sealed segments whose next segment begins at or below the log start.
    fn delete_below_start(&self) -> Result<RetentionReport> {
        let start = self.log_start_offset();
        let n = self
            .segments
            .read()
            .windows(2)
            .take_while(|p| p[1].base_offset() <= start)
            .count();
        self.delete_prefix(n)
    }

    /// Deletes the oldest `n` segments, never the active one: the start offset moves
    /// first, then they leave the list (readers holding them keep their maps), then
    /// their files are renamed `.deleted` and unlinked, each step fsynced.
    fn delete_prefix(&self, n: usize) -> Result<RetentionReport> {
        let mut report = RetentionReport::default();
        if n == 0 {
            return Ok(report);
        }
        let removed: Vec<Arc<Segment>> = {
            let mut segs = self.segments.write();
            let n = n.min(segs.len() - 1);
            if n == 0 {
                return Ok(report);
            }
            self.log_start_offset
                .fetch_max(segs[n].base_offset(), Ordering::AcqRel);
            segs.drain(..n).collect()
        };
        let dir = self.dir.clone();
        for seg in &removed {
            for ext in SEGMENT_EXTS {
                let from = dir.join(crate::segment::file_name(seg.base_offset(), ext));
                let to = dir.join(format!(
                    "{}{DELETED}",
                    crate::segment::file_name(seg.base_offset(), ext)
                ));
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(from, e)),
                }
            }
            report.deleted_segments.push(seg.base_offset());
            report.deleted_bytes += seg.size();
        }
        sync_dir(&dir)?;
        for seg in &removed {
            for ext in SEGMENT_EXTS {
                let p = dir.join(format!(
                    "{}{DELETED}",
                    crate::segment::file_name(seg.base_offset(), ext)
                ));
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(p, e)),
                }
            }
        }
        sync_dir(&dir)?;
        report.log_start_offset = self.log_start_offset();
        Ok(report)
    }
}
