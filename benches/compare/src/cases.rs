//! The systems, the workloads, and which system runs which workload.

use std::fmt;

/// A row's system, named exactly as in the CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// partlog, no fsync (page cache only until close).
    Partlog,
    /// partlog with `FsyncPolicy::EveryAppend`: one fsync per batch of 1,000, shared by
    /// concurrent appenders (group commit).
    PartlogFsync,
    /// partlog, lz4-compressed batches.
    PartlogLz4,
    /// partlog, zstd-compressed batches.
    PartlogZstd,
    /// commitlog 0.2.
    Commitlog,
    /// okaywal 0.3.
    Okaywal,
    /// fjall 3 used as a log.
    Fjall,
    /// crossbeam-channel: the in-memory hand-off floor.
    Crossbeam,
    /// Plain `write`/`read` of the same bytes: the page-cache (or disk) floor.
    Floor,
}

impl System {
    /// The CSV name.
    pub fn name(self) -> &'static str {
        match self {
            System::Partlog => "partlog",
            System::PartlogFsync => "partlog-fsync",
            System::PartlogLz4 => "partlog-lz4",
            System::PartlogZstd => "partlog-zstd",
            System::Commitlog => "commitlog",
            System::Okaywal => "okaywal",
            System::Fjall => "fjall",
            System::Crossbeam => "crossbeam",
            System::Floor => "floor",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A workload, named exactly as in the CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// Append N records one call per record (the system's own batching, if any).
    AppendOne,
    /// Append N records in batches of 1,000.
    AppendBatched,
    /// Read back N records just written by the same system, in the same round.
    Read,
    /// Durable appends, fsync per batch of 1,000, from one thread.
    Durable1t,
    /// Durable appends, fsync per batch of 1,000, from four threads.
    Durable4t,
    /// Producer thread to consumer thread latency.
    E2e,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 6] = [
        Workload::AppendOne,
        Workload::AppendBatched,
        Workload::Read,
        Workload::Durable1t,
        Workload::Durable4t,
        Workload::E2e,
    ];

    /// The CSV name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::AppendOne => "append-one",
            Workload::AppendBatched => "append-batched",
            Workload::Read => "read",
            Workload::Durable1t => "append-durable-1t",
            Workload::Durable4t => "append-durable-4t",
            Workload::E2e => "e2e-latency",
        }
    }

    /// Whether the workload fsyncs per batch.
    pub fn durable(self) -> bool {
        matches!(self, Workload::Durable1t | Workload::Durable4t)
    }

    /// Writer threads.
    pub fn threads(self) -> usize {
        if self == Workload::Durable4t { 4 } else { 1 }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which systems run a workload. A system missing from a workload has no way to do it
/// that means the same thing: commitlog cannot fsync its data (its `flush` does not), the
/// partlog codecs and crossbeam have no durable mode, okaywal fsyncs every commit and so
/// only runs the batched and durable workloads (and its read needs a reopen and
/// recovery, not a read API).
pub fn systems_for(workload: Workload) -> &'static [System] {
    use System::*;
    match workload {
        Workload::AppendOne => &[
            Partlog,
            PartlogLz4,
            PartlogZstd,
            Commitlog,
            Fjall,
            Crossbeam,
        ],
        Workload::AppendBatched => &[
            Partlog,
            PartlogLz4,
            PartlogZstd,
            Commitlog,
            Okaywal,
            Fjall,
            Crossbeam,
            Floor,
        ],
        Workload::Read => &[Partlog, PartlogLz4, PartlogZstd, Commitlog, Fjall, Floor],
        Workload::Durable1t | Workload::Durable4t => &[PartlogFsync, Okaywal, Fjall, Floor],
        Workload::E2e => &[Partlog, Crossbeam],
    }
}

/// What survives what, for a system running a workload: the column that keeps fsyncing
/// rows and non-fsyncing rows from being compared unawares.
pub fn durability(system: System, workload: Workload) -> &'static str {
    match (system, workload) {
        (System::PartlogFsync, _) => "fsync per batch of 1,000 (group commit)",
        (System::Okaywal, _) => "fsync per commit of 1,000 chunks (always on)",
        (System::Fjall, w) if w.durable() => "fsync per batch of 1,000 (persist SyncAll)",
        (System::Fjall, _) => "none: journal in page cache (no persist)",
        (System::Floor, w) if w.durable() => "fdatasync per 1,000 records' bytes",
        (System::Floor, _) => "none: page cache",
        (System::Commitlog, _) => "none: page cache (its flush never fsyncs)",
        (System::Crossbeam, _) => "none: memory only",
        (System::Partlog | System::PartlogLz4 | System::PartlogZstd, _) => {
            "none: page cache (fsync at close)"
        }
    }
}

/// One measured cell: a system running a workload on records of one size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Case {
    /// The workload.
    pub workload: Workload,
    /// Bytes per record value.
    pub record_bytes: usize,
    /// The system.
    pub system: System,
}

/// Record sizes of the throughput workloads.
pub const SIZES: [usize; 2] = [100, 1024];

/// Bytes per record in the latency workload.
pub const E2E_BYTES: usize = 100;

/// Every case, grouped by (workload, record size): the groups run in this order in every
/// round, the systems inside a group in an order that rotates from round to round.
pub fn groups() -> Vec<Vec<Case>> {
    let mut out = Vec::new();
    for workload in Workload::ALL {
        let sizes: &[usize] = if workload == Workload::E2e {
            &[E2E_BYTES]
        } else {
            &SIZES
        };
        for &record_bytes in sizes {
            out.push(
                systems_for(workload)
                    .iter()
                    .map(|&system| Case {
                        workload,
                        record_bytes,
                        system,
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The size of one measurement: `records` records, read `passes` times (reads only; a
/// full read of data this size is over before 100 ms on a fast page cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// Records written (and read).
    pub records: usize,
    /// Full read passes over them (1 for every other workload).
    pub passes: usize,
}

/// What one measurement returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Records appended, read or delivered in the timed part.
    pub records: u64,
    /// Seconds the timed part took.
    pub secs: f64,
    /// p50, p99, p99.9 in microseconds, for the latency workload.
    pub latency_us: Option<[u64; 3]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_issues() {
        let systems: Vec<&str> = groups().iter().flatten().map(|c| c.system.name()).collect();
        for s in [
            "partlog",
            "partlog-fsync",
            "partlog-lz4",
            "partlog-zstd",
            "commitlog",
            "okaywal",
            "fjall",
            "crossbeam",
            "floor",
        ] {
            assert!(systems.contains(&s), "{s} runs no workload");
        }
        let workloads: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        assert_eq!(
            workloads,
            [
                "append-one",
                "append-batched",
                "read",
                "append-durable-1t",
                "append-durable-4t",
                "e2e-latency"
            ]
        );
    }

    #[test]
    fn fsyncing_rows_say_so() {
        for c in groups().iter().flatten() {
            let d = durability(c.system, c.workload);
            let fsyncs = c.workload.durable() || c.system == System::Okaywal;
            assert_eq!(
                d.contains("sync per"),
                fsyncs,
                "{} {}: {d}",
                c.system,
                c.workload
            );
        }
    }

    #[test]
    fn groups_cover_both_sizes_and_one_latency_size() {
        let g = groups();
        assert_eq!(g.len(), 5 * SIZES.len() + 1);
        assert!(g.iter().all(|g| {
            g.iter()
                .all(|c| c.workload == g[0].workload && c.record_bytes == g[0].record_bytes)
        }));
        assert_eq!(g.last().unwrap()[0].record_bytes, E2E_BYTES);
    }
}
