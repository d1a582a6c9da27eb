//! `partlog perf`: throughput and latency, in the manner of Kafka's perf-test tools.
//!
//! The result is one line on stdout shaped like `kafka-producer-perf-test`'s summary:
//! `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
//! P ms 50th, ...`, then a line saying what the latency measures. MB is 2^20 bytes, as in
//! Kafka's tools. Latencies are recorded in microseconds in an HDR histogram (3
//! significant digits) and printed in ms. On a terminal a progress line on stderr is
//! rewritten in place every half second.

mod consume;
mod produce;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use partlog::Compression;

use crate::{CliError, print, with_broker};

/// `partlog perf ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PerfCommand {
    /// Send records as fast as allowed; report records/sec, MB/sec and per-record latency.
    Produce(PerfProduceArgs),
    /// Read records from the beginning; report records/sec, MB/sec and per-poll latency.
    Consume(PerfConsumeArgs),
}

/// `partlog perf produce`.
#[derive(Debug, Args)]
pub(crate) struct PerfProduceArgs {
    /// The topic (it must exist).
    topic: String,
    /// Records to send.
    #[arg(long, value_name = "N")]
    num_records: u64,
    /// Value size in bytes (random uppercase letters, as Kafka's tool sends; no key).
    #[arg(long, value_name = "B")]
    record_size: usize,
    /// Records per second to throttle to; -1 sends unthrottled.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    throughput: f64,
    /// The producer's compression.type (a topic codec overrides it).
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
}

/// `partlog perf consume`.
#[derive(Debug, Args)]
pub(crate) struct PerfConsumeArgs {
    /// The topic.
    topic: String,
    /// Records to read (fewer if the topic holds fewer: a warning says so).
    #[arg(long, value_name = "N")]
    num_records: u64,
}

/// Parses Kafka's codec names.
fn parse_compression(s: &str) -> Result<Compression, String> {
    Compression::from_name(s).ok_or_else(|| {
        format!("unknown compression {s:?}: expected none, gzip, snappy, lz4 or zstd")
    })
}

/// Runs a `perf` subcommand.
pub(crate) fn run(dir: &Path, cmd: &PerfCommand) -> Result<(), CliError> {
    match cmd {
        PerfCommand::Produce(args) => {
            if args.throughput == 0.0 || args.throughput.is_nan() {
                return Err(CliError::Usage(
                    "--throughput must be positive, or -1 for no limit".into(),
                ));
            }
            let report = with_broker(dir, false, |broker| produce::run(broker, args))?;
            print(&report)
        }
        PerfCommand::Consume(args) => {
            let report = with_broker(dir, false, |broker| consume::run(broker, args))?;
            print(&report)
        }
    }
}

/// A latency histogram in microseconds, from 1 µs to one hour.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` in `h`, in µs.
fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(d.as_micros().min(u128::from(u64::MAX)) as u64);
}

/// The summary line: counts, rates and latency percentiles, like Kafka's perf tools.
fn summary(
    verb: &str,
    what: &str,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    h: &Histogram<u64>,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "{records} records {verb}, {:.1} records/sec ({:.2} MB/sec), {:.3} ms avg {what}, \
         {:.3} ms max {what}, {:.3} ms 50th, {:.3} ms 95th, {:.3} ms 99th, {:.3} ms 99.9th.\n",
        records as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0),
        h.mean() / 1000.0,
        ms(h.max()),
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
    )
}

/// A progress line on stderr, rewritten in place, when stderr is a terminal.
struct Progress {
    enabled: bool,
    start: Instant,
    last: Instant,
    verb: &'static str,
}

impl Progress {
    fn new(verb: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            enabled: std::io::stderr().is_terminal(),
            start: now,
            last: now,
            verb,
        }
    }

    /// Rewrites the line if half a second passed since the last time.
    fn tick(&mut self, done: u64, total: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        let mut err = std::io::stderr().lock();
        // Progress is decoration: a failed write to the terminal is not worth failing for.
        let _shown = write!(
            err,
            "\r{done}/{total} records {}, {rate:.1} records/sec ",
            self.verb
        )
        .and_then(|()| err.flush());
    }

    /// Clears the line.
    fn finish(&self) {
        if self.enabled {
            let _cleared = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// Paces sends to a target rate by sleeping whenever ahead of schedule, as Kafka's
/// `ThroughputThrottler` does.
struct Throttle {
    per_second: Option<f64>,
    start: Instant,
}

impl Throttle {
    fn new(throughput: f64) -> Throttle {
        Throttle {
            per_second: (throughput > 0.0).then_some(throughput),
            start: Instant::now(),
        }
    }

    /// Sleeps until `sent` records are due.
    fn pace(&self, sent: u64) {
        let Some(rate) = self.per_second else {
            return;
        };
        let due = Duration::from_secs_f64(sent as f64 / rate);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}
