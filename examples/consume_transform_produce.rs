//! Exactly-once consume-transform-produce: reads `input`, writes an upper-cased copy of
//! each record to `output`, and commits the input offsets of group `transformer` in the
//! same transaction as the output records. Killed at any moment and run again, it
//! continues from the last committed transaction: a read_committed reader of `output`
//! sees each input record's copy exactly once.
//!
//! ```text
//! cargo run --release --example consume_transform_produce -- [DIR]
//! ```
//!
//! Without `DIR` it works in a temporary directory. The first run fills `input` with
//! 1,000 records over 2 partitions; every run then transforms what is left, 50 records
//! per transaction, and prints what a read_committed consumer of `output` sees.

use std::collections::HashMap;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, ConsumerConfig, IsolationLevel, OffsetReset, ProducerConfig,
    ProducerRecord, TopicConfig, TopicPartition,
};

const GROUP: &str = "transformer";
const PARTITIONS: i32 = 2;
const RECORDS: usize = 1000;
const PER_TRANSACTION: usize = 50;

fn main() -> partlog::Result<()> {
    let tmp;
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("a temporary directory");
            tmp.path().to_path_buf()
        }
    };
    let broker = Broker::open(&dir, BrokerConfig::default())?;
    if !broker.topics().iter().any(|t| t == "input") {
        broker.create_topic("input", PARTITIONS, TopicConfig::default())?;
        broker.create_topic("output", PARTITIONS, TopicConfig::default())?;
        let producer = broker.producer(ProducerConfig::default());
        for i in 0..RECORDS {
            let value = format!("record {i}");
            let partition = (i % PARTITIONS as usize) as i32;
            drop(
                producer
                    .send(ProducerRecord::new("input", value.as_bytes()).partition(partition))?,
            );
        }
        producer.flush()?;
    }
    let moved = transform(&broker)?;
    println!("transformed {moved} records in this run");

    let output: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new("output", p))
        .collect();
    let mut reader = broker.consumer(ConsumerConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    reader.assign(&output)?;
    let mut seen = 0;
    loop {
        let records = reader.poll(Duration::from_millis(50))?;
        if records.is_empty() {
            break;
        }
        seen += records.len();
    }
    println!("output holds {seen} committed records (input: {RECORDS})");
    broker.close()
}

/// Moves every input record not yet committed by the group to `output`, one transaction
/// per `PER_TRANSACTION` records; returns how many it moved.
fn transform(broker: &Broker) -> partlog::Result<usize> {
    let producer = broker.producer(ProducerConfig {
        transactional_id: Some("transformer-1".into()),
        ..ProducerConfig::default()
    });
    // Fences an earlier instance and aborts what it left open.
    producer.init_transactions()?;
    let input: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new("input", p))
        .collect();
    let mut consumer = broker.consumer(ConsumerConfig {
        group_id: Some(GROUP.into()),
        enable_auto_commit: false,
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records: PER_TRANSACTION,
        isolation_level: IsolationLevel::ReadCommitted,
        ..ConsumerConfig::default()
    });
    consumer.assign(&input)?;
    for (tp, committed) in consumer.committed(&input)? {
        consumer.seek(&tp, committed.offset)?;
    }
    let mut moved = 0;
    loop {
        let records = consumer.poll(Duration::from_millis(50))?;
        if records.is_empty() {
            return Ok(moved);
        }
        producer.begin_transaction()?;
        let mut next: HashMap<TopicPartition, i64> = HashMap::new();
        for r in &records {
            let value = r.value.as_deref().unwrap_or_default().to_ascii_uppercase();
            let out = ProducerRecord::new("output", &value).partition(r.partition);
            drop(producer.send(out)?);
            next.insert(TopicPartition::new("input", r.partition), r.offset + 1);
        }
        // The group's metadata rather than its bare id: with a subscribed consumer, the
        // coordinator would refuse offsets from a member that has lost its partitions.
        producer.send_offsets_to_transaction(&next, &consumer.group_metadata()?)?;
        producer.commit_transaction()?;
        moved += records.len();
    }
}
