//! `partlog perf consume`: read N records from the beginning of every partition.
//!
//! Latency is per `poll()` call that returned records (each up to `max.poll.records`,
//! 500): the time to fetch, decompress and decode a poll's worth of records. Bytes count
//! keys and values, as `kafka-consumer-perf-test` does.

use std::time::{Duration, Instant};

use partlog::{Broker, ConsumerConfig, OffsetReset, TopicPartition};

use super::{PerfConsumeArgs, Progress, histogram, record, summary};
use crate::CliError;
use crate::consume::reached;

/// What the latency of `perf consume` measures, printed under the summary.
const LATENCY: &str = "latency: per poll() call that returned records (up to 500 records each)";

/// Runs the test and returns the report.
pub(super) fn run(broker: &Broker, args: &PerfConsumeArgs) -> Result<String, CliError> {
    let tps: Vec<TopicPartition> = (0..broker.partition_count(&args.topic)?)
        .map(|p| TopicPartition::new(args.topic.as_str(), p))
        .collect();
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    consumer.assign(&tps)?;
    consumer.seek_to_beginning(&tps)?;
    // No other process can append (the directory is locked): these ends are final.
    let ends = consumer.end_offsets(&tps)?;
    let mut h = histogram();
    let mut progress = Progress::new("received");
    let (mut records, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while records < args.num_records && !reached(&mut consumer, &ends)? {
        let at = Instant::now();
        let batch = consumer.poll(Duration::from_millis(100))?;
        if batch.is_empty() {
            continue;
        }
        record(&mut h, at.elapsed());
        for r in batch.iter().take((args.num_records - records) as usize) {
            records += 1;
            bytes += (r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())) as u64;
        }
        progress.tick(records, args.num_records);
    }
    let elapsed = start.elapsed();
    progress.finish();
    if records < args.num_records {
        eprintln!(
            "WARNING: exiting before consuming the expected number of records: the topic holds {records}, not {}",
            args.num_records
        );
    }
    let line = summary("received", "poll latency", records, bytes, elapsed, &h);
    Ok(format!("{line}{LATENCY}\n"))
}
