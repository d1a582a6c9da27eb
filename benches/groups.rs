//! Consumer groups: `commit_sync` throughput (each commit fsynced to
//! `__consumer_offsets`), and the duration of a rebalance of 16 members over 256
//! partitions — a member leaves and a new one joins, and every member polls until the
//! new one holds its share — with the eager range assignor and with cooperative-sticky.
//!
//! `cargo bench --bench groups`

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, OffsetReset, TopicConfig, TopicPartition,
    assignor_by_name,
};

const MEMBERS: usize = 16;
const PARTITIONS: i32 = 256;

fn scratch() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn config(assignor: &str) -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some("bench".into()),
        partition_assignment_strategy: vec![assignor_by_name(assignor).unwrap()],
        enable_auto_commit: false,
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    }
}

fn commit(c: &mut Criterion) {
    let tmp = scratch();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let mut consumer = broker.consumer(config("range"));
    consumer.subscribe(&["t"]).unwrap();
    consumer.poll(Duration::ZERO).unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut g = c.benchmark_group("group_commit");
    g.throughput(Throughput::Elements(1));
    let mut offset = 0i64;
    g.bench_function("commit_sync_one_partition_fsynced", |b| {
        b.iter(|| {
            offset += 1;
            let offsets: HashMap<TopicPartition, i64> = [(tp.clone(), offset)].into();
            consumer.commit_sync_offsets(&offsets).unwrap();
        })
    });
    g.finish();
}

/// Polls every member until the partitions are all held and the last member has some.
fn settle(members: &mut [Consumer]) {
    loop {
        for m in members.iter_mut() {
            m.poll(Duration::ZERO).unwrap();
        }
        let held: usize = members.iter().map(|m| m.assignment().len()).sum();
        let newest = members.last().map_or(0, |m| m.assignment().len());
        if held == PARTITIONS as usize && newest > 0 {
            return;
        }
    }
}

fn rebalance(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_rebalance_16_members_256_partitions");
    for assignor in ["range", "cooperative-sticky"] {
        let tmp = scratch();
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        broker
            .create_topic("t", PARTITIONS, TopicConfig::default())
            .unwrap();
        let mut members: Vec<Consumer> = (0..MEMBERS)
            .map(|_| {
                let mut m = broker.consumer(config(assignor));
                m.subscribe(&["t"]).unwrap();
                m
            })
            .collect();
        settle(&mut members);
        g.bench_function(assignor, |b| {
            b.iter(|| {
                members.remove(0).close().unwrap();
                let mut m = broker.consumer(config(assignor));
                m.subscribe(&["t"]).unwrap();
                members.push(m);
                settle(&mut members);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, commit, rebalance);
criterion_main!(benches);
