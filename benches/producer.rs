//! `send` of 100-byte records one at a time from one thread, the library batching
//! (16 KiB batches, no fsync), measured over 1 M records including the final `flush`.
//!
//! `cargo bench --bench producer`

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use partlog::{Broker, BrokerConfig, Compression, ProducerConfig, ProducerRecord, TopicConfig};

const RECORDS: u64 = 1_000_000;

fn scratch() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn send(c: &mut Criterion) {
    let values: Vec<Vec<u8>> = (0..1024).map(|i| common::value(i, 100)).collect();
    let mut g = c.benchmark_group("send");
    g.throughput(Throughput::Elements(RECORDS));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for compression in [Compression::None, Compression::Lz4] {
        g.bench_function(format!("one_at_a_time_100B_{compression}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let tmp = scratch();
                    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
                    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
                    let producer = broker.producer(ProducerConfig {
                        compression,
                        ..ProducerConfig::default()
                    });
                    let start = Instant::now();
                    for i in 0..RECORDS {
                        let v = &values[(i % 1024) as usize];
                        let record = ProducerRecord::new("t", v).timestamp(1_700_000_000_000);
                        drop(producer.send(record).unwrap());
                    }
                    producer.flush().unwrap();
                    total += start.elapsed();
                    assert_eq!(
                        broker.partition("t", 0).unwrap().log_end_offset(),
                        RECORDS as i64
                    );
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
