//! Growing active segments ahead of their writers, on a thread of their own.
//!
//! A small append stores into the segment's map, which needs the file extended over the
//! range (`fallocate`) and the pages faulted in (`MADV_POPULATE_WRITE`) first. Done by
//! the appending thread, that is a fraction of a millisecond once per growth step: the
//! slowest sends of a quiet producer. So when an append finds less than half of
//! `POPULATE_AHEAD` ready past its end, it hands the next stretch to the preparer, one
//! thread for the whole process, started on first use, which serves every segment in
//! turn and parks when there is nothing to do. At most one job per segment is queued.
//!
//! The preparer only ever runs ahead: an append that outruns it (or finds no thread,
//! when one could not be started) reserves and faults in what it needs itself, as it
//! did before, and a failure there is the append's error. After a job of a segment
//! fails, that segment's writer does all its growing itself. Jobs hold their segment only
//! while queued or running; `seal` waits for a running one and stops later ones.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};

use super::Segment;
use super::map::LogMap;

/// Reserve `segment`'s file up to `upto`, and fault `map` in up to there if `populate`.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) segment: Arc<Segment>,
    pub(super) map: Arc<LogMap>,
    pub(super) upto: u64,
    pub(super) populate: bool,
    /// Run without a failure.
    pub(super) done: bool,
}

impl Drop for Job {
    /// Done: the segment may queue its next job. A job that failed (a full disk, say) or
    /// was never run leaves the segment's writer to grow its file itself from then on,
    /// rather than queue a job on every append that could only fail again.
    fn drop(&mut self) {
        if self.done {
            self.segment
                .written
                .preparing
                .store(false, Ordering::Release);
        }
    }
}

/// Queues `job` for the preparer; without a preparer it is dropped and the writer does
/// the work itself when it gets there.
pub(super) fn submit(job: Job) {
    static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("partlog-prepare".into())
            .spawn(move || {
                for mut job in rx {
                    job.done = job.segment.prepare(&job.map, job.upto, job.populate);
                }
            })
            .ok()?;
        Some(tx)
    });
    if let Some(tx) = queue {
        // A send fails only if the preparer is gone; the job is then dropped.
        let _ = tx.send(job);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::super::{MIN_GROWTH, POPULATE_AHEAD, PendingBatch, Segment};

    /// A fresh active segment of up to 16 MiB in `dir`, with one run of `len` bytes.
    fn segment_with_run(dir: &std::path::Path, base: i64, len: usize) -> Arc<Segment> {
        let seg = Arc::new(Segment::create(dir, base, 4096, 16 << 20).unwrap());
        let bytes = vec![7u8; len];
        let run = [PendingBatch {
            bytes: &bytes,
            last_offset: base,
            max_timestamp: 1,
            index_entry: false,
        }];
        seg.append(&run).unwrap();
        seg
    }

    /// Waits until no job of `seg` is queued or running (and none failed).
    fn settle(seg: &Segment) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seg.written.preparing.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "the preparer never finished");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn file_len(seg: &Segment) -> u64 {
        std::fs::metadata(seg.log_path()).unwrap().len()
    }

    #[test]
    fn the_preparer_reserves_and_faults_in_past_what_the_writer_needed() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment_with_run(dir.path(), 0, 1000);
        if !seg.map_stores {
            return; // appends are writes on this file system: nothing to prepare
        }
        settle(&seg);
        // The append itself reserved one step (64 KiB); the preparer went on in whole
        // doubling steps (128, 256, 512 KiB) to a full POPULATE_AHEAD past the run's end,
        // and faulted the map in exactly that far.
        let ahead = 1000 + POPULATE_AHEAD;
        assert_eq!(MIN_GROWTH, 64 * 1024);
        assert_eq!(seg.written.allocated.load(Ordering::Acquire), 512 * 1024);
        assert_eq!(file_len(&seg), 512 * 1024);
        assert_eq!(seg.written.map.lock().populated(), ahead);
        assert_eq!(seg.size(), 1000);
    }

    #[test]
    fn a_sealed_segment_keeps_exactly_its_data_whenever_its_job_runs() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..20 {
            let seg = segment_with_run(dir.path(), i * 10, 1000 + i as usize);
            // Sealed while its job is likely queued or running.
            seg.seal().unwrap();
            settle(&seg);
            assert_eq!(file_len(&seg), 1000 + i as u64, "segment {i}");
            assert_eq!(
                seg.written.allocated.load(Ordering::Acquire),
                1000 + i as u64
            );
        }
    }
}
