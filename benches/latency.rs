//! End-to-end latency from a producer thread's `send_blocking` to a consumer thread
//! receiving the record, for each wait strategy, beside the floor of a bare
//! condition-variable wake-up between two threads, all in the same run. Prints p50, p99
//! and p99.9 in microseconds (hdrhistogram).
//!
//! `cargo bench --bench latency`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::{Condvar, Mutex};
use partlog::{
    Broker, BrokerConfig, ConsumerConfig, OffsetReset, ProducerConfig, ProducerRecord, TopicConfig,
    WaitStrategy,
};

const SAMPLES: usize = 20_000;
const WARMUP: usize = 2_000;
/// Pause between messages, so that each one finds the consumer waiting.
const GAP: Duration = Duration::from_micros(50);

/// Nanoseconds since `base`, carried in the record so the consumer can time it.
fn stamp(base: Instant) -> [u8; 8] {
    (base.elapsed().as_nanos() as u64).to_be_bytes()
}

/// Sleeps between messages, leaving the CPU to the threads under test (a spinning pause
/// would occupy one of this machine's two cores).
fn pause(gap: Duration) {
    thread::sleep(gap);
}

fn partlog_latency(strategy: WaitStrategy) -> Histogram<u64> {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("lat", 1, TopicConfig::default())
        .unwrap();
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        wait_strategy: strategy,
        ..ConsumerConfig::default()
    });
    consumer.subscribe(&["lat"]).unwrap();
    let base = Instant::now();
    let reader = thread::spawn(move || {
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut n = 0;
        while n < SAMPLES + WARMUP {
            for r in consumer.poll(Duration::from_secs(5)).unwrap() {
                let sent = u64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
                let now = base.elapsed().as_nanos() as u64;
                if n >= WARMUP {
                    h.record((now - sent) / 1000).unwrap();
                }
                n += 1;
            }
        }
        h
    });
    let producer = broker.producer(ProducerConfig::default());
    for _ in 0..SAMPLES + WARMUP {
        let v = stamp(base);
        producer
            .send_blocking(ProducerRecord::new("lat", &v))
            .unwrap();
        pause(GAP);
    }
    let h = reader.join().unwrap();
    drop(producer);
    broker.close().unwrap();
    h
}

/// The floor: one thread sets a value under a mutex and notifies; the other waits on the
/// condition variable and timestamps the wake-up.
fn condvar_floor() -> Histogram<u64> {
    let pair = Arc::new((Mutex::new(None::<u64>), Condvar::new()));
    let done = Arc::new(AtomicBool::new(false));
    let base = Instant::now();
    let (p2, d2) = (pair.clone(), done.clone());
    let reader = thread::spawn(move || {
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut n = 0;
        let (m, cv) = &*p2;
        let mut slot = m.lock();
        while n < SAMPLES + WARMUP && !d2.load(Ordering::Relaxed) {
            match slot.take() {
                Some(sent) => {
                    let now = base.elapsed().as_nanos() as u64;
                    if n >= WARMUP {
                        h.record((now - sent) / 1000).unwrap();
                    }
                    n += 1;
                }
                None => cv.wait(&mut slot),
            }
        }
        h
    });
    for _ in 0..SAMPLES + WARMUP {
        let (m, cv) = &*pair;
        *m.lock() = Some(base.elapsed().as_nanos() as u64);
        cv.notify_one();
        pause(GAP);
    }
    done.store(true, Ordering::Relaxed);
    pair.1.notify_one();
    reader.join().unwrap()
}

/// One measured row: a run that returns its latency histogram.
type Run = Box<dyn Fn() -> Histogram<u64>>;

fn main() {
    // Criterion passes flags such as `--bench`; this harness takes none.
    let rows: Vec<(&str, Run)> = vec![
        ("condvar floor", Box::new(condvar_floor)),
        (
            "partlog park",
            Box::new(|| partlog_latency(WaitStrategy::Park)),
        ),
        (
            "partlog spin-then-park",
            Box::new(|| partlog_latency(WaitStrategy::SpinThenPark { spins: 100_000 })),
        ),
        (
            "partlog busy-spin",
            Box::new(|| partlog_latency(WaitStrategy::BusySpin)),
        ),
    ];
    println!("end-to-end latency, {SAMPLES} messages each, {GAP:?} apart (µs)");
    println!("{:<24} {:>8} {:>8} {:>8}", "", "p50", "p99", "p99.9");
    // Two rounds, interleaved, so drift hits every row alike; each round prints.
    for round in 1..=2 {
        for (name, run) in &rows {
            let h = run();
            println!(
                "{:<24} {:>8} {:>8} {:>8}   (round {round})",
                name,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999)
            );
        }
    }
}
