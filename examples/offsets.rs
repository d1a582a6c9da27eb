//! Reading offsets programmatically: log start and end offsets, offsets by timestamp,
//! sizes and segment counts, and direct reads from an offset.
//!
//! `cargo run --release --example offsets`

use partlog::{Broker, BrokerConfig, ProducerConfig, ProducerRecord, TopicConfig};

fn main() -> partlog::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broker = Broker::open(dir.path(), BrokerConfig::default())?;
    let config = TopicConfig {
        segment_bytes: 4096, // small segments, to show several
        ..TopicConfig::default()
    };
    broker.create_topic("metrics", 1, config)?;
    let producer = broker.producer(ProducerConfig::default());
    let t0 = 1_700_000_000_000i64;
    for i in 0..500i64 {
        let value = format!("sample {i}");
        let record = ProducerRecord::new("metrics", value.as_bytes()).timestamp(t0 + i * 1000);
        drop(producer.send(record)?);
    }
    producer.flush()?;

    let p = broker.partition("metrics", 0)?;
    println!("log start offset: {}", p.log_start_offset());
    println!("log end offset:   {}", p.log_end_offset());
    println!(
        "size: {} bytes in {} segments",
        p.size_bytes(),
        p.segment_count()
    );

    // Which offset was current at a given time? (Kafka's offsetsForTimes.)
    let at = t0 + 250_500;
    if let Some(found) = p.offset_for_timestamp(at)? {
        println!(
            "first record at or after {at}: offset {} (timestamp {})",
            found.offset, found.timestamp
        );
    }

    // Read directly from an offset: whole batches, the first may start earlier.
    let batches = p.read(300, 1024)?;
    let codecs = broker.config().codecs.clone();
    for batch in &batches {
        for r in batch.records(&codecs)? {
            let r = r?;
            if r.offset >= 300 && r.offset < 305 {
                println!(
                    "offset {}: {}",
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                );
            }
        }
    }
    drop(producer);
    broker.close()
}
