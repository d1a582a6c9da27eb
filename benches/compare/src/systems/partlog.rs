//! partlog, driven through the fastest public path a user would take for each workload:
//! `Producer::send` for one record at a time (the library batches, 16 KiB batches,
//! 5 ms linger, then `flush`); a `BatchBuilder` of 1,000 records per `Log::append` for
//! the batched and durable workloads; `Log::read` plus `RecordBatch::records` for the
//! read; `send_blocking` to a parked `Consumer::poll` for latency.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use partlog::{
    BatchBuilder, Broker, BrokerConfig, Codecs, Compression, ConsumerConfig, FsyncPolicy, Log,
    LogConfig, OffsetReset, ProducerConfig, ProducerRecord, TopicConfig, WaitStrategy,
};

use crate::data::{BATCH, Res, age_us, now_ms, stamped, sync_all, timed};

/// Batches of 1,000 records of 1 KiB exceed Kafka's default `max.message.bytes`
/// (1 MiB + 12); the harness raises it, as a user batching that much would.
const MAX_MESSAGE_BYTES: u32 = 8 << 20;

fn log_config(fsync: FsyncPolicy) -> LogConfig {
    LogConfig {
        max_message_bytes: MAX_MESSAGE_BYTES,
        fsync,
        ..LogConfig::default()
    }
}

/// One batch of `BATCH` records, starting at value `first` of the pool, encoded as a
/// user would: a builder sized for it, the current time, then `into_encoded`.
fn batch(
    values: &[Vec<u8>],
    first: usize,
    compression: Compression,
    codecs: &Codecs,
) -> Res<partlog::EncodedBatch> {
    let size = values[0].len();
    let mut b = BatchBuilder::with_capacity(compression, BATCH * (size + 16) + 64);
    let ts = now_ms();
    for i in first..first + BATCH {
        b.push(ts, None, Some(&values[i % values.len()]), &[]);
    }
    Ok(b.into_encoded(codecs)?)
}

fn expect_end(log: &Log, records: usize) -> Res<()> {
    if log.log_end_offset() != records as i64 {
        return Err(format!(
            "partlog log end offset {} after appending {records}",
            log.log_end_offset()
        )
        .into());
    }
    Ok(())
}

/// `Producer::send` of each record, then `flush`.
pub fn append_one(dir: &Path, n: usize, values: &[Vec<u8>], compression: Compression) -> Res<f64> {
    let broker = Broker::open(dir, BrokerConfig::default())?;
    broker.create_topic("t", 1, TopicConfig::default())?;
    let producer = broker.producer(ProducerConfig {
        compression,
        ..ProducerConfig::default()
    });
    let (secs, ()) = timed(|| {
        for i in 0..n {
            drop(producer.send(ProducerRecord::new("t", &values[i % values.len()]))?);
        }
        Ok(producer.flush()?)
    })?;
    expect_end(broker.partition("t", 0)?.log(), n)?;
    producer.close()?;
    broker.close()?;
    Ok(secs)
}

fn write_batches(log: &Log, n: usize, values: &[Vec<u8>], compression: Compression) -> Res<()> {
    let codecs = Codecs::default();
    for first in (0..n).step_by(BATCH) {
        log.append(batch(values, first, compression, &codecs)?)?;
    }
    Ok(())
}

/// Batches of 1,000 built with `BatchBuilder`, one `Log::append` each, no fsync.
pub fn append_batched(
    dir: &Path,
    n: usize,
    values: &[Vec<u8>],
    compression: Compression,
) -> Res<f64> {
    let log = Log::open(dir.join("t-0"), log_config(FsyncPolicy::Never))?;
    let (secs, ()) = timed(|| write_batches(&log, n, values, compression))?;
    expect_end(&log, n)?;
    log.close()?;
    Ok(secs)
}

/// Writes `n` records in batches (not timed), then times `passes` full reads through
/// `Log::read` (1 MiB per call) and `RecordBatch::records`, touching every value.
pub fn read(
    dir: &Path,
    n: usize,
    passes: usize,
    values: &[Vec<u8>],
    compression: Compression,
) -> Res<f64> {
    let log = Log::open(dir.join("t-0"), log_config(FsyncPolicy::Never))?;
    write_batches(&log, n, values, compression)?;
    sync_all();
    let codecs = Codecs::default();
    let (secs, (count, bytes)) = timed(|| {
        let (mut count, mut bytes) = (0usize, 0usize);
        for _ in 0..passes {
            let mut offset = 0;
            loop {
                let batches = log.read(offset, 1 << 20)?;
                if batches.is_empty() {
                    break;
                }
                for b in &batches {
                    // Borrowed records: no reference count per field.
                    let mut records = b.records(&codecs)?;
                    while let Some(r) = records.next_ref() {
                        let r = r?;
                        if r.offset >= offset {
                            count += 1;
                            bytes += r.value.map_or(0, <[u8]>::len);
                        }
                    }
                    offset = b.last_offset() + 1;
                }
            }
        }
        Ok((count, bytes))
    })?;
    if count != n * passes || bytes != n * passes * values[0].len() {
        return Err(format!("partlog read {count} records, {bytes} bytes").into());
    }
    log.close()?;
    Ok(secs)
}

/// `threads` threads appending batches of 1,000 to one log with
/// `FsyncPolicy::EveryAppend`: every append returns after an fsync covering it, and
/// appends that queue behind a running fsync share the next one (group commit).
pub fn durable(dir: &Path, n: usize, threads: usize, values: &[Vec<u8>]) -> Res<f64> {
    let log = Arc::new(Log::open(
        dir.join("t-0"),
        log_config(FsyncPolicy::EveryAppend),
    )?);
    let per_thread = n / threads;
    let start = Arc::new(Barrier::new(threads + 1));
    let codecs = Codecs::default();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (log, start, codecs) = (log.clone(), start.clone(), codecs.clone());
            let values = values.to_vec();
            thread::spawn(move || -> Res<()> {
                start.wait();
                for first in (t * per_thread..(t + 1) * per_thread).step_by(BATCH) {
                    log.append(batch(&values, first, Compression::None, &codecs)?)?;
                }
                Ok(())
            })
        })
        .collect();
    start.wait();
    let begun = Instant::now();
    for w in workers {
        w.join().map_err(|_| "partlog durable writer panicked")??;
    }
    let secs = begun.elapsed().as_secs_f64();
    expect_end(&log, n)?;
    log.close()?;
    Ok(secs)
}

/// `samples` records (after `warmup` unrecorded ones) sent with `send_blocking`, `gap`
/// apart, each received by a consumer thread parked in `poll` (`WaitStrategy::Park`).
pub fn e2e(
    dir: &Path,
    warmup: usize,
    samples: usize,
    gap: Duration,
    bytes: usize,
) -> Res<[u64; 3]> {
    let broker = Broker::open(dir, BrokerConfig::default())?;
    broker.create_topic("lat", 1, TopicConfig::default())?;
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        wait_strategy: WaitStrategy::Park,
        ..ConsumerConfig::default()
    });
    consumer.subscribe(&["lat"])?;
    let base = Instant::now();
    let total = warmup + samples;
    let reader = thread::spawn(move || -> Res<Histogram<u64>> {
        let mut h = Histogram::<u64>::new(3)?;
        let mut seen = 0;
        while seen < total {
            let records = consumer.poll(Duration::from_secs(30))?;
            if records.is_empty() {
                return Err(
                    format!("partlog e2e: nothing for 30 s after {seen} of {total}").into(),
                );
            }
            for r in records {
                let value = r.value.ok_or("partlog e2e: record without a value")?;
                if seen >= warmup {
                    h.record(age_us(base, &value))?;
                }
                seen += 1;
            }
        }
        Ok(h)
    });
    let producer = broker.producer(ProducerConfig::default());
    for _ in 0..total {
        let v = stamped(base, bytes);
        producer.send_blocking(ProducerRecord::new("lat", &v))?;
        thread::sleep(gap);
    }
    let h = reader
        .join()
        .map_err(|_| "partlog e2e consumer panicked")??;
    producer.close()?;
    broker.close()?;
    Ok(crate::systems::quantiles(&h))
}
