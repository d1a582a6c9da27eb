//! The cleaner: compaction throughput, and what a running compaction costs appends.
//!
//! - `compact/throughput`: MB/s of sealed log compacted (offset map, rewrite, swap), for
//!   100-byte records in 16 KiB batches over 10 000 keys, so most records are superseded;
//! - `append/idle` and `append/while_compacting`: the time of one 16 KiB `append` on the
//!   same partition, alone and with another thread compacting it over and over (appends
//!   roll 1 MiB segments, so every pass has fresh sealed segments to clean).
//!
//! `PARTLOG_BENCH_CLEANER_MB` sets the compacted log's size (default 16).
//!
//! `cargo bench --bench cleaner`

mod common;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use partlog::{BatchBuilder, Codecs, CompactionConfig, Compression, EncodedBatch, Log, LogConfig};

const BATCH: usize = 16 << 10;
const RECORD: usize = 100;
const KEYS: u64 = 10_000;

fn scratch() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn total_bytes() -> usize {
    std::env::var("PARTLOG_BENCH_CLEANER_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(16)
        << 20
}

/// Keyed batches, `total` bytes in all; record `i` has key `i % KEYS`.
fn keyed_batches(total: usize, first: u64) -> Vec<EncodedBatch> {
    let codecs = Codecs::default();
    let (mut out, mut size, mut i) = (Vec::new(), 0, first);
    while size < total {
        let mut b = BatchBuilder::with_capacity(Compression::None, BATCH);
        while b.estimated_size() + RECORD + 24 <= BATCH {
            let key = format!("key-{:08}", i % KEYS);
            b.push(
                1_700_000_000_000,
                Some(key.as_bytes()),
                Some(&common::value(i, RECORD)),
                &[],
            );
            i += 1;
        }
        let e = b.build(&codecs).unwrap();
        size += e.size();
        out.push(e);
    }
    out
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    }
}

fn sealed_log(dir: &Path, batches: &[EncodedBatch]) -> Log {
    let log = Log::open(dir.join("c-0"), config()).unwrap();
    log.append_batches(batches.to_vec()).unwrap();
    log.roll_now().unwrap();
    log
}

fn compact_throughput(c: &mut Criterion) {
    let total = total_bytes();
    let batches = keyed_batches(total, 0);
    let mut g = c.benchmark_group("compact");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10);
    g.bench_function("throughput", |b| {
        b.iter_batched(
            || {
                let dir = scratch();
                let log = sealed_log(dir.path(), &batches);
                (dir, log)
            },
            |(dir, log)| {
                let r = log.compact(&CompactionConfig::default()).unwrap();
                black_box(r);
                (dir, log)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Mean time of `iters` appends, with or without a thread compacting meanwhile.
fn timed_appends(iters: u64, compacting: bool) -> Duration {
    let dir = scratch();
    let log = Arc::new(Log::open(dir.path().join("a-0"), config()).unwrap());
    let batches = keyed_batches(BATCH * 256, 0);
    for b in &batches {
        log.append(b.clone()).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cleaner = compacting.then(|| {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                log.compact(&CompactionConfig::default()).unwrap();
            }
        })
    });
    let mut spent = Duration::ZERO;
    for i in 0..iters {
        let b = batches[i as usize % batches.len()].clone();
        let t = Instant::now();
        log.append(b).unwrap();
        spent += t.elapsed();
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = cleaner {
        h.join().unwrap();
    }
    spent
}

fn append_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Bytes(BATCH as u64));
    g.bench_function("idle", |b| {
        b.iter_custom(|iters| timed_appends(iters, false))
    });
    g.bench_function("while_compacting", |b| {
        b.iter_custom(|iters| timed_appends(iters, true))
    });
    g.finish();
}

criterion_group!(benches, compact_throughput, append_latency);
criterion_main!(benches);
