//! Live pub/sub between threads: producer threads publish, consumer threads (each with
//! its own pace and wait strategy) receive every record as it is appended.
//!
//! `cargo run --release --example pubsub`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use partlog::{
    Broker, BrokerConfig, ConsumerConfig, OffsetReset, ProducerConfig, ProducerRecord, TopicConfig,
    WaitStrategy,
};

const PRODUCERS: u64 = 2;
const PER_PRODUCER: u64 = 200_000;

fn main() -> partlog::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broker = Broker::open(dir.path(), BrokerConfig::default())?;
    broker.create_topic("events", 2, TopicConfig::default())?;
    let total = PRODUCERS * PER_PRODUCER;
    let done = Arc::new(AtomicBool::new(false));

    // Consumers first: they park until the producers' appends wake them.
    let strategies = [
        ("parked", WaitStrategy::Park),
        (
            "spin-then-park",
            WaitStrategy::SpinThenPark { spins: 10_000 },
        ),
    ];
    let consumers: Vec<_> = strategies
        .into_iter()
        .map(|(name, wait_strategy)| {
            let mut consumer = broker.consumer(ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                wait_strategy,
                ..ConsumerConfig::default()
            });
            consumer.subscribe(&["events"]).expect("topic exists");
            thread::spawn(move || {
                let start = Instant::now();
                let mut received = 0u64;
                while received < total {
                    received += consumer.poll(Duration::from_millis(100))?.len() as u64;
                }
                println!(
                    "{name} consumer: {received} records in {:?}",
                    start.elapsed()
                );
                Ok::<_, partlog::Error>(received)
            })
        })
        .collect();

    let producer = broker.producer(ProducerConfig::default());
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let producer = producer.clone();
            thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let key = format!("producer-{id}");
                    let value = format!("{id}:{seq}");
                    let record =
                        ProducerRecord::new("events", value.as_bytes()).key(key.as_bytes());
                    // The handle resolves when the batch is appended; a fire-and-forget
                    // producer may drop it, and errors then surface in `flush`-time logs.
                    drop(producer.send(record)?);
                }
                Ok::<_, partlog::Error>(())
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer thread")?;
    }
    producer.flush()?;
    println!("produced {total} records in {:?}", start.elapsed());
    for c in consumers {
        let received = c.join().expect("consumer thread")?;
        assert_eq!(received, total);
    }
    done.store(true, Ordering::Relaxed);
    drop(producer);
    broker.close()
}
