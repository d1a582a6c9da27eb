//! Transactional throughput: 100-byte records sent in transactions of 1, 100 and 10,000
//! records (begin, sends, commit, which flushes and writes the markers with fsyncs), next
//! to the same records sent by an idempotent, non-transactional producer with one flush
//! per group of the same size. 10,000 records per measurement (200 with one record per
//! transaction, where each commit's fsyncs dominate).
//!
//! `cargo bench --bench transactions`

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use partlog::{Broker, BrokerConfig, ProducerConfig, ProducerRecord, TopicConfig};

fn scratch() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// Sends `RECORDS` records in groups of `per_group`; transactional or not. Returns the
/// time from the first send to the last commit or flush.
fn run(values: &[Vec<u8>], records: u64, per_group: u64, transactional: bool) -> Duration {
    let tmp = scratch();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let producer = broker.producer(ProducerConfig {
        transactional_id: transactional.then(|| "bench".to_string()),
        ..ProducerConfig::default()
    });
    if transactional {
        producer.init_transactions().unwrap();
    }
    let start = Instant::now();
    let mut i = 0;
    while i < records {
        if transactional {
            producer.begin_transaction().unwrap();
        }
        for _ in 0..per_group.min(records - i) {
            let v = &values[(i % 1024) as usize];
            let record = ProducerRecord::new("t", v).timestamp(1_700_000_000_000);
            drop(producer.send(record).unwrap());
            i += 1;
        }
        if transactional {
            producer.commit_transaction().unwrap();
        } else {
            producer.flush().unwrap();
        }
    }
    let elapsed = start.elapsed();
    let end = broker.partition("t", 0).unwrap().log_end_offset();
    assert!(end >= records as i64, "every record written");
    elapsed
}

fn transactions(c: &mut Criterion) {
    let values: Vec<Vec<u8>> = (0..1024).map(|i| common::value(i, 100)).collect();
    let mut g = c.benchmark_group("transactions");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for per in [1u64, 100, 10_000] {
        let records = if per == 1 { 200 } else { 10_000 };
        g.throughput(Throughput::Elements(records));
        for (name, transactional) in [("transactional", true), ("plain", false)] {
            g.bench_function(format!("{name}_{per}_per_commit"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| run(&values, records, per, transactional))
                        .sum()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, transactions);
criterion_main!(benches);
