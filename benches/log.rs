//! Partition-log hot paths, each beside its floor on this machine, in the same run:
//!
//! - `append/*`: 100-byte records in 16 KiB batches, no fsync, one `append` per batch and
//!   one `append_batches` per 64 batches, against a plain sequential `write` of the same
//!   bytes in 1 MiB chunks;
//! - `read/*`: every record decoded back, against a plain `read` of the segment files;
//! - `lookup/*`: a read at a random offset and a lookup at a random timestamp;
//! - `recovery/*`: opening after an unclean shutdown (every batch CRC-checked, indexes
//!   rebuilt), against CRC-32C alone over the same bytes in memory.
//!
//! `cargo bench --bench log`

mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use partlog::{Compression, EncodedBatch, Log, LogConfig};

const TOTAL: usize = 64 << 20;
const BATCH: usize = 16 << 10;
const RECORD: usize = 100;

fn scratch() -> tempfile::TempDir {
    // The benches' data lives on the same filesystem as the crate (not a tmpfs), like a
    // real log's.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn write_log(dir: &Path, batches: &[EncodedBatch]) -> Log {
    let log = Log::open(dir, LogConfig::default()).unwrap();
    for b in batches {
        log.append(b.clone()).unwrap();
    }
    log
}

fn append(c: &mut Criterion) {
    let batches = common::batches(TOTAL, BATCH, RECORD, Compression::None);
    let bytes: usize = batches.iter().map(|b| b.size()).sum();
    let flat: Vec<u8> = batches.iter().flat_map(|b| b.as_bytes().to_vec()).collect();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("partlog_16KiB_batches", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tmp = scratch();
                let input = batches.clone();
                let log = Log::open(tmp.path().join("t-0"), LogConfig::default()).unwrap();
                let start = Instant::now();
                for batch in input {
                    log.append(batch).unwrap();
                }
                total += start.elapsed();
                drop(log);
            }
            total
        })
    });
    g.bench_function("partlog_append_batches_64x16KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tmp = scratch();
                let mut input = batches.clone();
                let mut chunks = Vec::new();
                while !input.is_empty() {
                    let rest = input.split_off(input.len().min(64));
                    chunks.push(std::mem::replace(&mut input, rest));
                }
                let log = Log::open(tmp.path().join("t-0"), LogConfig::default()).unwrap();
                let start = Instant::now();
                for chunk in chunks {
                    log.append_batches(chunk).unwrap();
                }
                total += start.elapsed();
                drop(log);
            }
            total
        })
    });
    g.bench_function("floor_write_1MiB_chunks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tmp = scratch();
                // A fresh copy per iteration, as partlog's rows clone their batches, so
                // both start from the same state of memory.
                let input = flat.clone();
                let mut f = File::create(tmp.path().join("floor")).unwrap();
                let start = Instant::now();
                for chunk in input.chunks(1 << 20) {
                    f.write_all(chunk).unwrap();
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let batches = common::batches(TOTAL, BATCH, RECORD, Compression::None);
    let records: i64 = batches.iter().map(|b| i64::from(b.records_count())).sum();
    let tmp = scratch();
    let log = write_log(&tmp.path().join("t-0"), &batches);
    log.close().unwrap();
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(records as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("partlog_all_records", |b| {
        b.iter(|| {
            let (mut offset, mut n, mut bytes) = (0i64, 0u64, 0usize);
            while offset < log.log_end_offset() {
                for batch in log.read(offset, 1 << 20).unwrap() {
                    for r in batch.records(log.codecs()).unwrap() {
                        let r = r.unwrap();
                        bytes += r.value.map_or(0, |v| v.len());
                        n += 1;
                    }
                    offset = batch.next_offset();
                }
            }
            assert_eq!(n as i64, records);
            black_box(bytes)
        })
    });
    let seg = tmp.path().join("t-0/00000000000000000000.log");
    g.bench_function("floor_read_1MiB_chunks", |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut f = File::open(&seg).unwrap();
            let mut total = 0;
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
            black_box(total)
        })
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let batches = common::batches(TOTAL, BATCH, RECORD, Compression::None);
    let tmp = scratch();
    let log = write_log(&tmp.path().join("t-0"), &batches);
    let end = log.log_end_offset();
    let mut g = c.benchmark_group("lookup");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    g.bench_function("by_offset", |b| {
        b.iter(|| {
            let off = (next() % end as u64) as i64;
            let got = log.read(off, 1).unwrap();
            assert!(got[0].base_offset() <= off && got[0].last_offset() >= off);
        })
    });
    g.bench_function("by_timestamp", |b| {
        b.iter(|| {
            let t = 1_700_000_000_000 + (next() % end as u64) as i64;
            let got = log.offset_for_timestamp(t).unwrap().unwrap();
            assert_eq!(got.timestamp, t);
        })
    });
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let batches = common::batches(4 * TOTAL, BATCH, RECORD, Compression::None);
    let tmp = scratch();
    let dir = tmp.path().join("t-0");
    let log = write_log(&dir, &batches);
    let size = log.size_bytes();
    drop(log); // no close: the next open recovers every batch
    let mut g = c.benchmark_group("recovery");
    g.throughput(Throughput::Bytes(size));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function(BenchmarkId::new("partlog_unclean_open", size), |b| {
        b.iter(|| {
            let log = Log::open(&dir, LogConfig::default()).unwrap();
            assert_eq!(log.recovery_report().bytes_recovered, size);
            black_box(log.log_end_offset())
        })
    });
    let data = std::fs::read(dir.join("00000000000000000000.log")).unwrap();
    g.bench_function(BenchmarkId::new("floor_crc32c", size), |b| {
        b.iter(|| black_box(crc32c::crc32c(&data)))
    });
    g.finish();
}

criterion_group!(benches, append, read, lookup, recovery);
criterion_main!(benches);
