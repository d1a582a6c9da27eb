//! One module per system; `run` dispatches a case to the call that measures it.

mod commitlog;
mod crossbeam;
mod fjall;
mod floor;
mod okaywal;
mod partlog;

use std::path::Path;
use std::time::Duration;

use ::partlog::Compression;
use hdrhistogram::Histogram;

use crate::cases::{Case, Job, Sample, System, Workload};
use crate::data::Res;

/// Settings of the latency workload.
#[derive(Clone, Copy, Debug)]
pub struct E2eSettings {
    /// Messages sent and not recorded first.
    pub warmup: usize,
    /// Messages recorded.
    pub samples: usize,
    /// Pause between messages, so that each finds the consumer waiting.
    pub gap: Duration,
}

/// p50, p99, p99.9.
pub fn quantiles(h: &Histogram<u64>) -> [u64; 3] {
    [0.5, 0.99, 0.999].map(|q| h.value_at_quantile(q))
}

fn compression(system: System) -> Compression {
    match system {
        System::PartlogLz4 => Compression::Lz4,
        System::PartlogZstd => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Runs one measurement of `case` in the fresh directory `dir`.
pub fn run(case: Case, job: Job, dir: &Path, values: &[Vec<u8>], e2e: E2eSettings) -> Res<Sample> {
    use System as S;
    use Workload as W;
    let (n, passes) = (job.records, job.passes);
    let threads = case.workload.threads();
    let secs = match (case.workload, case.system) {
        (W::E2e, s) => {
            let q = match s {
                S::Partlog => {
                    partlog::e2e(dir, e2e.warmup, e2e.samples, e2e.gap, case.record_bytes)?
                }
                S::Crossbeam => {
                    crossbeam::e2e(e2e.warmup, e2e.samples, e2e.gap, case.record_bytes)?
                }
                _ => return Err(format!("{s} has no e2e-latency run").into()),
            };
            return Ok(Sample {
                records: e2e.samples as u64,
                secs: 0.0,
                latency_us: Some(q),
            });
        }
        (W::AppendOne, S::Partlog | S::PartlogLz4 | S::PartlogZstd) => {
            partlog::append_one(dir, n, values, compression(case.system))?
        }
        (W::AppendOne, S::Commitlog) => commitlog::append_one(dir, n, values)?,
        (W::AppendOne, S::Fjall) => fjall::append_one(dir, n, values)?,
        (W::AppendOne, S::Crossbeam) => crossbeam::append_one(n, values)?,
        (W::AppendBatched, S::Partlog | S::PartlogLz4 | S::PartlogZstd) => {
            partlog::append_batched(dir, n, values, compression(case.system))?
        }
        (W::AppendBatched, S::Commitlog) => commitlog::append_batched(dir, n, values)?,
        (W::AppendBatched, S::Okaywal) => okaywal::durable(dir, n, 1, values)?,
        (W::AppendBatched, S::Fjall) => fjall::append_batched(dir, n, values)?,
        (W::AppendBatched, S::Crossbeam) => crossbeam::append_batched(n, values)?,
        (W::AppendBatched, S::Floor) => floor::append_batched(dir, n, values)?,
        (W::Read, S::Partlog | S::PartlogLz4 | S::PartlogZstd) => {
            partlog::read(dir, n, passes, values, compression(case.system))?
        }
        (W::Read, S::Commitlog) => commitlog::read(dir, n, passes, values)?,
        (W::Read, S::Fjall) => fjall::read(dir, n, passes, values)?,
        (W::Read, S::Floor) => floor::read(dir, n, passes, values)?,
        (W::Durable1t | W::Durable4t, S::PartlogFsync) => {
            partlog::durable(dir, n, threads, values)?
        }
        (W::Durable1t | W::Durable4t, S::Okaywal) => okaywal::durable(dir, n, threads, values)?,
        (W::Durable1t | W::Durable4t, S::Fjall) => fjall::durable(dir, n, threads, values)?,
        (W::Durable1t | W::Durable4t, S::Floor) => floor::durable(dir, n, threads, values)?,
        (w, s) => return Err(format!("{s} has no {w} run").into()),
    };
    let records = if case.workload == W::Read {
        n * passes
    } else {
        n
    };
    Ok(Sample {
        records: records as u64,
        secs,
        latency_us: None,
    })
}
