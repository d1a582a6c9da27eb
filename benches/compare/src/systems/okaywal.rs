//! okaywal 0.3: one entry per batch of 1,000 chunks, `commit` each. Every commit fsyncs
//! (there is no way to turn that off), and concurrent committers share fsyncs. The WAL
//! is opened with a checkpoint threshold beyond the data written, so nothing leaves it
//! for a checkpoint during the run.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use okaywal::{Configuration, LogVoid};

use crate::data::{BATCH, Res};

/// `threads` threads, each committing its own entries of 1,000 chunks.
pub fn durable(dir: &Path, n: usize, threads: usize, values: &[Vec<u8>]) -> Res<f64> {
    let wal = Configuration::default_for(dir)
        .checkpoint_after_bytes(1 << 40)
        .open(LogVoid)?;
    let per_thread = n / threads;
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (wal, start, values) = (wal.clone(), start.clone(), values.to_vec());
            thread::spawn(move || -> Res<()> {
                start.wait();
                for first in (t * per_thread..(t + 1) * per_thread).step_by(BATCH) {
                    let mut entry = wal.begin_entry()?;
                    for i in first..first + BATCH {
                        entry.write_chunk(&values[i % values.len()])?;
                    }
                    entry.commit()?;
                }
                Ok(())
            })
        })
        .collect();
    start.wait();
    let begun = Instant::now();
    for w in workers {
        w.join().map_err(|_| "okaywal writer panicked")??;
    }
    let secs = begun.elapsed().as_secs_f64();
    wal.shutdown()?;
    Ok(secs)
}
