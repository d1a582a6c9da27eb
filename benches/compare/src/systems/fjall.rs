//! fjall 3 used as a log: one keyspace, big-endian u64 offsets as keys (so iteration is
//! in offset order), values as given. Writes reach only the journal's OS buffers until
//! `persist`; the durable rows call `persist(PersistMode::SyncAll)` after every batch,
//! the others never. Its background flush and compaction threads share the machine's
//! cores with the writer, as they would in an application.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::data::{BATCH, Res, sync_all, timed};

fn open(dir: &Path) -> Res<(Database, Keyspace)> {
    let db = Database::builder(dir).open()?;
    let ks = db.keyspace("log", KeyspaceCreateOptions::default)?;
    Ok((db, ks))
}

/// `insert` of each record.
pub fn append_one(dir: &Path, n: usize, values: &[Vec<u8>]) -> Res<f64> {
    let (_db, ks) = open(dir)?;
    let (secs, ()) = timed(|| {
        for i in 0..n {
            ks.insert(
                (i as u64).to_be_bytes(),
                values[i % values.len()].as_slice(),
            )?;
        }
        Ok(())
    })?;
    Ok(secs)
}

/// One write batch of 1,000 records starting at key `first`, committed.
fn commit_batch(db: &Database, ks: &Keyspace, first: u64, values: &[Vec<u8>]) -> Res<()> {
    let mut b = db.batch();
    for i in first..first + BATCH as u64 {
        b.insert(
            ks,
            i.to_be_bytes(),
            values[i as usize % values.len()].as_slice(),
        );
    }
    Ok(b.commit()?)
}

/// A write batch of 1,000 per `commit`, no `persist`.
pub fn append_batched(dir: &Path, n: usize, values: &[Vec<u8>]) -> Res<f64> {
    let (db, ks) = open(dir)?;
    let (secs, ()) = timed(|| {
        for first in (0..n as u64).step_by(BATCH) {
            commit_batch(&db, &ks, first, values)?;
        }
        Ok(())
    })?;
    Ok(secs)
}

/// Writes `n` records in batches (not timed), then times `passes` iterations over the
/// keyspace, touching every value. Just-written data is served from the memtable and
/// whatever fjall has flushed, as it would be for an application reading its own writes.
pub fn read(dir: &Path, n: usize, passes: usize, values: &[Vec<u8>]) -> Res<f64> {
    let (db, ks) = open(dir)?;
    for first in (0..n as u64).step_by(BATCH) {
        commit_batch(&db, &ks, first, values)?;
    }
    sync_all();
    let (secs, (count, bytes)) = timed(|| {
        let (mut count, mut bytes) = (0usize, 0usize);
        for _ in 0..passes {
            for guard in ks.iter() {
                let (_key, value) = guard.into_inner()?;
                count += 1;
                bytes += value.len();
            }
        }
        Ok((count, bytes))
    })?;
    if count != n * passes || bytes != n * passes * values[0].len() {
        return Err(format!("fjall read {count} records, {bytes} bytes").into());
    }
    Ok(secs)
}

/// `threads` threads, each committing batches of 1,000 (keys from a shared offset
/// counter) and calling `persist(SyncAll)` after each.
pub fn durable(dir: &Path, n: usize, threads: usize, values: &[Vec<u8>]) -> Res<f64> {
    let (db, ks) = open(dir)?;
    let next = Arc::new(AtomicU64::new(0));
    let per_thread = n / threads;
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (db, ks, next, start) = (db.clone(), ks.clone(), next.clone(), start.clone());
            let values = values.to_vec();
            thread::spawn(move || -> Res<()> {
                start.wait();
                for _ in 0..per_thread / BATCH {
                    let first = next.fetch_add(BATCH as u64, Ordering::Relaxed);
                    commit_batch(&db, &ks, first, &values)?;
                    db.persist(PersistMode::SyncAll)?;
                }
                Ok(())
            })
        })
        .collect();
    start.wait();
    let begun = Instant::now();
    for w in workers {
        w.join().map_err(|_| "fjall writer panicked")??;
    }
    Ok(begun.elapsed().as_secs_f64())
}
