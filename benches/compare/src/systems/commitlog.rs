//! commitlog 0.2: `append_msg` per record, or `append` of a `MessageBuf` of 1,000; reads
//! with `read(offset, ReadLimit::max_bytes(1 MiB))` (its default limit is 8 KiB). Its
//! `flush` writes the index and segment out of user space but never fsyncs them, and
//! there is no call that does, so it has no durable row.

use std::path::Path;

use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};

use crate::data::{BATCH, Res, sync_all, timed};

fn open(dir: &Path) -> Res<CommitLog> {
    let mut opts = LogOptions::new(dir);
    // A batch of 1,000 records of 1 KiB is over its default 1 MB message limit.
    opts.message_max_bytes(8 << 20);
    Ok(CommitLog::new(opts)?)
}

fn expect_next(log: &CommitLog, n: usize) -> Res<()> {
    if log.next_offset() != n as u64 {
        return Err(format!("commitlog next offset {} after {n}", log.next_offset()).into());
    }
    Ok(())
}

/// `append_msg` of each record, then `flush`.
pub fn append_one(dir: &Path, n: usize, values: &[Vec<u8>]) -> Res<f64> {
    let mut log = open(dir)?;
    let (secs, ()) = timed(|| {
        for i in 0..n {
            log.append_msg(&values[i % values.len()])?;
        }
        Ok(log.flush()?)
    })?;
    expect_next(&log, n)?;
    Ok(secs)
}

fn write_batches(log: &mut CommitLog, n: usize, values: &[Vec<u8>]) -> Res<()> {
    let mut buf = MessageBuf::default();
    for first in (0..n).step_by(BATCH) {
        for i in first..first + BATCH {
            buf.push(&values[i % values.len()])
                .map_err(|e| format!("commitlog MessageBuf::push: {e:?}"))?;
        }
        log.append(&mut buf)?;
        buf.clear();
    }
    Ok(log.flush()?)
}

/// `MessageBuf` of 1,000 per `append`, then `flush`.
pub fn append_batched(dir: &Path, n: usize, values: &[Vec<u8>]) -> Res<f64> {
    let mut log = open(dir)?;
    let (secs, ()) = timed(|| write_batches(&mut log, n, values))?;
    expect_next(&log, n)?;
    Ok(secs)
}

/// Writes `n` records in batches (not timed), then times `passes` full reads, touching
/// every payload.
pub fn read(dir: &Path, n: usize, passes: usize, values: &[Vec<u8>]) -> Res<f64> {
    let mut log = open(dir)?;
    write_batches(&mut log, n, values)?;
    sync_all();
    let end = log.next_offset();
    let (secs, (count, bytes)) = timed(|| {
        let (mut count, mut bytes) = (0usize, 0usize);
        for _ in 0..passes {
            let mut offset = 0;
            while offset < end {
                let msgs = log.read(offset, ReadLimit::max_bytes(1 << 20))?;
                if msgs.is_empty() {
                    break;
                }
                for m in msgs.iter() {
                    count += 1;
                    bytes += m.payload().len();
                    offset = m.offset() + 1;
                }
            }
        }
        Ok((count, bytes))
    })?;
    if count != n * passes || bytes != n * passes * values[0].len() {
        return Err(format!("commitlog read {count} records, {bytes} bytes").into());
    }
    Ok(secs)
}
