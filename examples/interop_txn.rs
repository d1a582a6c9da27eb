//! Writes a data directory with idempotent and transactional batches, COMMIT and ABORT
//! markers, `.txnindex` and `.snapshot` files and the `__transaction_state` and
//! `__consumer_offsets` topics, for checking by an independent reader; then reopens it
//! and checks the read_committed view.
//!
//! ```text
//! cargo run --release --example interop_txn -- DIR
//! python3 shared/tools/kafka_verify.py DIR --expect-records N
//! ```
//!
//! `DIR` must be missing or empty. Topic `interop-txn` (2 partitions) gets plain
//! idempotent records, a committed transaction (with the input offsets of group
//! `interop` sent in it), an aborted one and another committed one. The last line printed
//! is `records: N`, the number of data records in every partition of the directory
//! (control records excluded, aborted ones included), for `--expect-records`. Any
//! mismatch exits with status 1.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, ConsumerConfig, IsolationLevel, OffsetReset, ProducerConfig,
    ProducerRecord, TopicConfig, TopicPartition,
};

const TOPIC: &str = "interop-txn";

type Failure = Box<dyn std::error::Error>;

fn send_all(p: &partlog::Producer, values: &[&str]) -> partlog::Result<()> {
    for (i, v) in values.iter().enumerate() {
        let record = ProducerRecord::new(TOPIC, v.as_bytes()).partition((i % 2) as i32);
        drop(p.send(record)?);
    }
    Ok(())
}

fn write(broker: &Broker) -> partlog::Result<()> {
    broker.create_topic(TOPIC, 2, TopicConfig::default())?;
    let plain = broker.producer(ProducerConfig::default());
    send_all(&plain, &["plain-0", "plain-1", "plain-2", "plain-3"])?;
    plain.flush()?;
    let txn = broker.producer(ProducerConfig {
        transactional_id: Some("interop".into()),
        ..ProducerConfig::default()
    });
    txn.init_transactions()?;
    txn.begin_transaction()?;
    send_all(&txn, &["commit-0", "commit-1", "commit-2"])?;
    let offsets = HashMap::from([(TopicPartition::new(TOPIC, 0), 2)]);
    txn.send_offsets_to_transaction(&offsets, "interop")?;
    txn.commit_transaction()?;
    txn.begin_transaction()?;
    send_all(&txn, &["abort-0", "abort-1", "abort-2", "abort-3"])?;
    txn.abort_transaction()?;
    txn.begin_transaction()?;
    send_all(&txn, &["commit-3", "commit-4"])?;
    txn.commit_transaction()
}

/// The read_committed values of the topic, sorted.
fn committed(broker: &Broker) -> partlog::Result<Vec<String>> {
    let mut c = broker.consumer(ConsumerConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    c.assign(&[TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1)])?;
    let mut out = Vec::new();
    loop {
        let records = c.poll(Duration::from_millis(50))?;
        if records.is_empty() {
            break;
        }
        for r in records {
            out.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into());
        }
    }
    out.sort();
    Ok(out)
}

/// Data records (control batches excluded) in every partition of the broker.
fn data_records(broker: &Broker) -> partlog::Result<u64> {
    let mut total = 0;
    for topic in broker.topics() {
        for p in 0..broker.partition_count(&topic)? {
            let part = broker.partition(&topic, p)?;
            let mut at = part.log_start_offset();
            while at < part.log_end_offset() {
                let batches = part.read(at, 1 << 20)?;
                let Some(last) = batches.last() else { break };
                at = last.next_offset();
                for b in batches.iter().filter(|b| !b.is_control()) {
                    total += b.records_count() as u64;
                }
            }
        }
    }
    Ok(total)
}

fn run(dir: &std::path::Path) -> Result<u64, Failure> {
    let broker = Broker::open(dir, BrokerConfig::default())?;
    write(&broker)?;
    broker.close()?;
    drop(broker);
    let broker = Broker::open(dir, BrokerConfig::default())?;
    let expected = vec![
        "commit-0", "commit-1", "commit-2", "commit-3", "commit-4", "plain-0", "plain-1",
        "plain-2", "plain-3",
    ];
    let got = committed(&broker)?;
    if got != expected {
        return Err(format!("read_committed view {got:?}, expected {expected:?}").into());
    }
    let log = broker.partition(TOPIC, 0)?.log().clone();
    let aborted = log.aborted_transactions(0, log.log_end_offset())?;
    if aborted.len() != 1 {
        return Err(format!("partition 0 should hold one aborted transaction: {aborted:?}").into());
    }
    let total = data_records(&broker)?;
    broker.close()?;
    Ok(total)
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: interop_txn DIR");
        return ExitCode::from(2);
    };
    let dir = std::path::PathBuf::from(dir);
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        eprintln!("{} is not empty", dir.display());
        return ExitCode::from(2);
    }
    match run(&dir) {
        Ok(total) => {
            println!("records: {total}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
