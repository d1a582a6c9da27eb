//! A work queue: worker threads in one consumer group share a topic's partitions, commit
//! in the revoke callback so a partition's next owner continues exactly where the last
//! stopped, and a worker joining halfway takes over part of the work. Then the broker is
//! reopened and the group resumes at its committed offsets.
//!
//! `cargo run --release --example work_queue`

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerRebalanceListener, OffsetReset,
    ProducerConfig, ProducerRecord, TopicConfig, TopicPartition,
};

const JOBS: u64 = 20_000;

/// Commits each revoked partition's position: the next owner starts there.
struct CommitOnRevoke;

impl ConsumerRebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> partlog::Result<()> {
        let mut offsets = HashMap::new();
        for tp in partitions {
            offsets.insert(tp.clone(), consumer.position(tp)?);
        }
        consumer.commit_sync_offsets(&offsets)
    }
}

fn worker_config() -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some("workers".into()),
        enable_auto_commit: false,
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    }
}

/// A worker: processes jobs until `limit` are done in all, committing after each poll.
fn work(broker: Broker, done: Arc<AtomicU64>, limit: u64) -> partlog::Result<u64> {
    let mut consumer = broker.consumer(worker_config());
    consumer.subscribe_with_listener(&["jobs"], Box::new(CommitOnRevoke))?;
    let mut mine = 0;
    while done.load(Ordering::SeqCst) < limit {
        let records = consumer.poll(Duration::from_millis(50))?;
        mine += records.len() as u64;
        done.fetch_add(records.len() as u64, Ordering::SeqCst);
        consumer.commit_sync()?;
    }
    consumer.close()?;
    Ok(mine)
}

fn main() -> partlog::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broker = Broker::open(dir.path(), BrokerConfig::default())?;
    broker.create_topic("jobs", 8, TopicConfig::default())?;
    let producer = broker.producer(ProducerConfig::default());
    for i in 0..JOBS {
        let job = format!("job {i}");
        // A failed send of a dropped handle is reported by `flush`.
        drop(producer.send(ProducerRecord::new("jobs", job.as_bytes()).key(job.as_bytes()))?);
    }
    producer.flush()?;

    // Two workers take the first half; a third joins while they run.
    let done = Arc::new(AtomicU64::new(0));
    let half = JOBS / 2;
    let mut workers: Vec<_> = (0..2)
        .map(|_| {
            let (broker, done) = (broker.clone(), done.clone());
            thread::spawn(move || work(broker, done, half))
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    let (b, d) = (broker.clone(), done.clone());
    workers.push(thread::spawn(move || work(b, d, half)));
    for (i, w) in workers.into_iter().enumerate() {
        println!("worker {i} processed {} jobs", w.join().expect("no panic")?);
    }
    let first = done.load(Ordering::SeqCst);
    let d = broker.describe_group("workers")?;
    let lag: i64 = d.partitions.iter().filter_map(|p| p.lag).sum();
    println!("processed {first}; lag {lag} (= {JOBS} - {first})");
    assert_eq!(lag as u64, JOBS - first);
    broker.close()?;

    // After a restart the group continues at its committed offsets: the rest, once each.
    let broker = Broker::open(dir.path(), BrokerConfig::default())?;
    let rest = work(broker.clone(), Arc::new(AtomicU64::new(0)), JOBS - first)?;
    println!("after reopening, one worker processed the remaining {rest}");
    assert_eq!(first + rest, JOBS);
    broker.close()
}
