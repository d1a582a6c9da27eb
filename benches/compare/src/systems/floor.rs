//! The machine's floor: a plain sequential `write` of the bytes partlog would store for
//! the same records (RecordBatch v2 batches of 1,000), in 1 MiB chunks, and a plain
//! `read` of them back in 1 MiB chunks; for the durable rows, one `write` of a batch's
//! bytes and an `fdatasync` per batch. No framing, no index, no offsets: what is left
//! once a log does nothing but move the bytes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use partlog::{BatchBuilder, Codecs, Compression};

use crate::data::{BATCH, Res, sync_all, timed};

const CHUNK: usize = 1 << 20;

/// The stored bytes of one batch of 1,000 records (the contents do not change what a
/// `write` costs, so every batch of the run reuses them).
fn batch_bytes(values: &[Vec<u8>]) -> Res<Vec<u8>> {
    let mut b = BatchBuilder::new(Compression::None);
    for v in values.iter().cycle().take(BATCH) {
        b.push(1_700_000_000_000, None, Some(v), &[]);
    }
    Ok(b.into_encoded(&Codecs::default())?.as_bytes().to_vec())
}

/// 1 MiB of back-to-back batches, and the total bytes of `n` records.
fn chunk_and_total(n: usize, values: &[Vec<u8>]) -> Res<(Vec<u8>, usize)> {
    let one = batch_bytes(values)?;
    let chunk: Vec<u8> = one.iter().copied().cycle().take(CHUNK).collect();
    Ok((chunk, one.len() * n.div_ceil(BATCH)))
}

fn write_all(file: &mut File, chunk: &[u8], total: usize) -> Res<()> {
    let mut left = total;
    while left > 0 {
        let len = left.min(chunk.len());
        file.write_all(&chunk[..len])?;
        left -= len;
    }
    Ok(())
}

/// `write` of the bytes of `n` records in 1 MiB chunks, no fsync.
pub fn append_batched(dir: &Path, n: usize, values: &[Vec<u8>]) -> Res<f64> {
    let (chunk, total) = chunk_and_total(n, values)?;
    let mut file = File::create(dir.join("floor"))?;
    let (secs, ()) = timed(|| write_all(&mut file, &chunk, total))?;
    Ok(secs)
}

/// Writes the bytes of `n` records (not timed), then times `passes` sequential reads of
/// the whole file in 1 MiB chunks.
pub fn read(dir: &Path, n: usize, passes: usize, values: &[Vec<u8>]) -> Res<f64> {
    let (chunk, total) = chunk_and_total(n, values)?;
    let path = dir.join("floor");
    write_all(&mut File::create(&path)?, &chunk, total)?;
    sync_all();
    let mut file = File::open(&path)?;
    let mut buf = vec![0u8; CHUNK];
    let (secs, read) = timed(|| {
        let mut read = 0;
        for _ in 0..passes {
            file.seek(SeekFrom::Start(0))?;
            loop {
                let got = file.read(&mut buf)?;
                if got == 0 {
                    break;
                }
                read += got;
            }
        }
        Ok(read)
    })?;
    if read != total * passes {
        return Err(format!("floor read {read} of {} bytes", total * passes).into());
    }
    Ok(secs)
}

/// `threads` threads appending one batch's bytes at a time to one file (`O_APPEND`),
/// each followed by `fdatasync`: what durability costs with no group commit of its own
/// beyond what the kernel and filesystem merge.
pub fn durable(dir: &Path, n: usize, threads: usize, values: &[Vec<u8>]) -> Res<f64> {
    let one = Arc::new(batch_bytes(values)?);
    let file = Arc::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("floor"))?,
    );
    let per_thread = n / threads;
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (file, one, start) = (file.clone(), one.clone(), start.clone());
            thread::spawn(move || -> Res<()> {
                start.wait();
                for _ in 0..per_thread / BATCH {
                    (&*file).write_all(&one)?;
                    file.sync_data()?;
                }
                Ok(())
            })
        })
        .collect();
    start.wait();
    let begun = Instant::now();
    for w in workers {
        w.join().map_err(|_| "floor writer panicked")??;
    }
    Ok(begun.elapsed().as_secs_f64())
}
