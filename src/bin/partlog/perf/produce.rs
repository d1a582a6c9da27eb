//! `partlog perf produce`: send N records of B bytes and time each one's append.
//!
//! Latency is per record, from the `send()` call to the moment its batch was appended to
//! the log (its `SendHandle` resolved), so it includes the producer's batching
//! (`linger.ms` 5, `batch.size` 16384, Kafka's defaults): the analogue of Kafka's
//! send-to-acknowledgement latency. A waiter thread takes the handles in send order and
//! waits on each, recording the time at which it saw the record done.

use std::sync::mpsc;
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use partlog::{Broker, ProducerConfig, ProducerRecord, SendHandle};

use super::{PerfProduceArgs, Progress, Throttle, histogram, record, summary};
use crate::CliError;

/// Handles queued for the waiter thread before `send` blocks.
const QUEUE: usize = 64 * 1024;

/// What the latency of `perf produce` measures, printed under the summary.
const LATENCY: &str = "latency: per record, from the send() call until its batch was appended to \
                       the log (SendHandle resolved), observed in send order";

/// Runs the test and returns the report.
pub(super) fn run(broker: &Broker, args: &PerfProduceArgs) -> Result<String, CliError> {
    broker.partition_count(&args.topic)?;
    let producer = broker.producer(ProducerConfig {
        compression: args.compression,
        ..ProducerConfig::default()
    });
    let payload = payload(args.record_size);
    let (tx, rx) = mpsc::sync_channel::<(Instant, SendHandle)>(QUEUE);
    let waiter = thread::spawn(move || wait_all(rx));
    let mut progress = Progress::new("sent");
    let throttle = Throttle::new(args.throughput);
    let start = Instant::now();
    let mut sent = Ok(());
    for i in 0..args.num_records {
        let at = Instant::now();
        match producer.send(ProducerRecord::new(&args.topic, &payload)) {
            Ok(handle) => tx
                .send((at, handle))
                .expect("the waiter outlives the sender"),
            Err(e) => {
                sent = Err(e);
                break;
            }
        }
        throttle.pace(i + 1);
        progress.tick(i + 1, args.num_records);
    }
    let closed = producer.close();
    drop(tx);
    let (latency, failed) = waiter.join().expect("the waiter thread does not panic");
    let elapsed = start.elapsed();
    progress.finish();
    sent?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    closed?;
    let bytes = args.num_records * args.record_size as u64;
    let line = summary(
        "sent",
        "latency",
        args.num_records,
        bytes,
        elapsed,
        &latency,
    );
    Ok(format!("{line}{LATENCY}\n"))
}

/// The waiter thread: waits on each handle in order, recording its latency; returns the
/// histogram and the first failure.
fn wait_all(rx: mpsc::Receiver<(Instant, SendHandle)>) -> (Histogram<u64>, Option<partlog::Error>) {
    let mut h = histogram();
    let mut failed = None;
    for (at, handle) in rx {
        match handle.wait() {
            Ok(_) => record(&mut h, at.elapsed()),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    (h, failed)
}

/// `size` random uppercase letters, like Kafka's perf tool's payload.
fn payload(size: usize) -> Vec<u8> {
    let mut state = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
        | 1;
    (0..size)
        .map(|_| {
            // xorshift64: statistically fine for filler bytes, no crate needed.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}
