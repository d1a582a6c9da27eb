//! The append target, measured the way this machine allows a fair answer: partlog's
//! append of 100-byte records in 16 KiB batches (one `append` per batch, and one
//! `append_batches` per 64 batches) against a plain sequential `write` of the same bytes
//! in 1 MiB chunks, **interleaved round by round** (page-cache writeback and dirty-page
//! throttling drift over seconds here, so rows measured minutes apart are not
//! comparable), no fsync, 64 MiB per round into a fresh directory, after warm-up rounds.
//! Prints the median of each row and the ratios of the medians.
//!
//! `cargo bench --bench append_vs_floor`

mod common;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use partlog::{Compression, EncodedBatch, Log, LogConfig};

const TOTAL: usize = 64 << 20;
const ROUNDS: usize = 15;
const WARMUP: usize = 3;

fn scratch() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn one_at_a_time(batches: &[EncodedBatch]) -> Duration {
    let tmp = scratch();
    let input = batches.to_vec();
    let log = Log::open(tmp.path().join("t-0"), LogConfig::default()).unwrap();
    let start = Instant::now();
    for b in input {
        log.append(b).unwrap();
    }
    start.elapsed()
}

fn chunked(batches: &[EncodedBatch]) -> Duration {
    let tmp = scratch();
    let chunks: Vec<Vec<EncodedBatch>> = batches.chunks(64).map(<[_]>::to_vec).collect();
    let log = Log::open(tmp.path().join("t-0"), LogConfig::default()).unwrap();
    let start = Instant::now();
    for c in chunks {
        log.append_batches(c).unwrap();
    }
    start.elapsed()
}

fn floor(flat: &[u8]) -> Duration {
    let tmp = scratch();
    let input = flat.to_vec();
    let mut f = File::create(tmp.path().join("floor")).unwrap();
    let start = Instant::now();
    for c in input.chunks(1 << 20) {
        f.write_all(c).unwrap();
    }
    start.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let batches = common::batches(TOTAL, 16 << 10, 100, Compression::None);
    let bytes: usize = batches.iter().map(EncodedBatch::size).sum();
    let flat: Vec<u8> = batches.iter().flat_map(|b| b.as_bytes().to_vec()).collect();
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    let (mut a, mut c, mut f) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..WARMUP + ROUNDS {
        // Rotate the order too, so no row always runs first after a quiet moment.
        let mut results = [0.0; 3];
        for k in 0..3 {
            let row = (round + k) % 3;
            results[row] = match row {
                0 => rate(one_at_a_time(&batches)),
                1 => rate(chunked(&batches)),
                _ => rate(floor(&flat)),
            };
        }
        if round >= WARMUP {
            a.push(results[0]);
            c.push(results[1]);
            f.push(results[2]);
        }
    }
    let (a, c, f) = (median(a), median(c), median(f));
    println!(
        "append, 100-byte records in 16 KiB batches, no fsync, {} MiB per round, median of {ROUNDS} interleaved rounds",
        bytes >> 20
    );
    println!(
        "{:<44} {:>8.0} MB/s  {:>5.0}% of floor",
        "partlog append (one batch per call)",
        a,
        100.0 * a / f
    );
    println!(
        "{:<44} {:>8.0} MB/s  {:>5.0}% of floor",
        "partlog append_batches (64 batches per call)",
        c,
        100.0 * c / f
    );
    println!(
        "{:<44} {:>8.0} MB/s",
        "floor: write of the same bytes, 1 MiB chunks", f
    );
}
