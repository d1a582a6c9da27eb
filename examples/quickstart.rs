//! The README's first command: `cargo run --release --example quickstart`.
//!
//! Creates a topic in a temporary directory, produces records, consumes them, prints
//! offsets, and shows that the data survives a restart.

use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, ConsumerConfig, OffsetReset, ProducerConfig, ProducerRecord, TopicConfig,
};

fn main() -> partlog::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broker = Broker::open(dir.path(), BrokerConfig::default())?;
    broker.create_topic("orders", 3, TopicConfig::default())?;

    // Produce: keyed records go to the partition Kafka's Java client would pick.
    let producer = broker.producer(ProducerConfig::default());
    let mut handles = Vec::new();
    for i in 0..9 {
        let key = format!("customer-{}", i % 3);
        let value = format!("order #{i}");
        let record = ProducerRecord::new("orders", value.as_bytes()).key(key.as_bytes());
        handles.push(producer.send(record)?);
    }
    producer.flush()?;
    for h in handles {
        let m = h.wait()?;
        println!(
            "produced to partition {} at offset {}",
            m.partition, m.offset
        );
    }

    // Consume everything from the beginning.
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    consumer.subscribe(&["orders"])?;
    let mut seen = 0;
    while seen < 9 {
        for r in consumer.poll(Duration::from_secs(1))? {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default());
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
            println!(
                "consumed {}-{}@{}: {key} = {value}",
                r.topic, r.partition, r.offset
            );
            seen += 1;
        }
    }

    // Offsets, read programmatically.
    for p in broker.describe_topic("orders")?.partitions {
        println!(
            "orders-{}: log start {}, log end {}, {} bytes in {} segment(s)",
            p.partition, p.log_start_offset, p.log_end_offset, p.size_bytes, p.segments
        );
    }

    // Close cleanly and reopen: every record is still there, at the same offset.
    drop((producer, consumer));
    broker.close()?;
    let broker = Broker::open(dir.path(), BrokerConfig::default())?;
    let total: i64 = (0..3)
        .map(|p| broker.partition("orders", p).map(|p| p.log_end_offset()))
        .sum::<partlog::Result<i64>>()?;
    println!("after reopening: {total} records in topic orders");
    broker.close()
}
