//! A panic while a batch is appended (here in a user's `Clock`, which the log reads for
//! `LogAppendTime`) fails that batch's handles with `Error::AppendPanicked`: none waits
//! forever, the producer's next `flush` reports it, and the batches after it are appended
//! as usual, the sender thread included, with no gap in the idempotent sequence. A panic
//! once the append has begun to write (here during a roll) poisons the partition instead,
//! until it is reopened.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use partlog::{
    Broker, BrokerConfig, Clock, Error, ProducerConfig, ProducerRecord, RecordMetadata, SendHandle,
    TimestampType, TopicConfig,
};

/// A clock that panics when read on the thread named `panic_on`, after `skip` more
/// reads there.
#[derive(Debug, Default)]
struct PanickyClock {
    now: AtomicI64,
    panic_on: Mutex<Option<String>>,
    skip: AtomicI64,
}

impl Clock for PanickyClock {
    fn now_ms(&self) -> i64 {
        let name = thread::current().name().map(str::to_string);
        if name.is_some()
            && *self.panic_on.lock() == name
            && self.skip.fetch_sub(1, Ordering::SeqCst) <= 0
        {
            panic!("the clock broke");
        }
        self.now.fetch_add(1, Ordering::SeqCst)
    }
}

fn open(dir: &std::path::Path, clock: &Arc<PanickyClock>) -> Broker {
    let config = BrokerConfig {
        clock: clock.clone(),
        ..BrokerConfig::default()
    };
    Broker::open(dir, config).unwrap()
}

/// A broker on `dir` with topic `t` of one partition, stamped with `LogAppendTime`.
fn setup(dir: &std::path::Path, clock: &Arc<PanickyClock>) -> Broker {
    let broker = open(dir, clock);
    let config = TopicConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..TopicConfig::default()
    };
    broker.create_topic("t", 1, config).unwrap();
    broker
}

fn record(value: &[u8]) -> ProducerRecord<'_> {
    // An explicit timestamp, so that `send` itself does not read the clock.
    ProducerRecord::new("t", value).partition(0).timestamp(1)
}

/// `handle.wait()`, failing the test instead of hanging if it never resolves.
fn wait(handle: SendHandle) -> partlog::Result<RecordMetadata> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(handle.wait()));
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the handle never resolved")
}

/// Asserts that `r` is the failure of a batch whose append panicked in the clock.
fn assert_panicked<T: std::fmt::Debug>(r: partlog::Result<T>) {
    match r {
        Err(Error::BatchFailed(e)) => match &*e {
            Error::AppendPanicked { partition, message } => {
                assert_eq!(partition, "t-0");
                assert_eq!(message, "the clock broke");
            }
            other => panic!("expected AppendPanicked, got {other:?}"),
        },
        other => panic!("expected a failed batch, got {other:?}"),
    }
}

/// The values of partition 0 with their offsets.
fn log_values(broker: &Broker) -> Vec<(i64, Vec<u8>)> {
    let log = broker.partition("t", 0).unwrap();
    let mut out = Vec::new();
    let mut next = 0;
    while next < log.log_end_offset() {
        // One read returns batches of one segment at most.
        let batches = log.read(next, 1 << 20).unwrap();
        next = batches.last().unwrap().next_offset();
        for b in batches {
            for r in b.records(log.log().codecs()).unwrap() {
                let r = r.unwrap();
                out.push((r.offset, r.value.unwrap().to_vec()));
            }
        }
    }
    out
}

#[test]
fn a_panic_on_the_sender_thread_fails_the_batch_and_the_sender_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(PanickyClock::default());
    let broker = setup(dir.path(), &clock);
    let producer = broker.producer(ProducerConfig {
        linger: Duration::from_millis(20),
        ..ProducerConfig::default()
    });
    *clock.panic_on.lock() = Some("partlog-sender".into());
    let handles: Vec<SendHandle> = [b"a", b"b", b"c"]
        .iter()
        .map(|v| producer.send(record(*v)).unwrap())
        .collect();
    // The linger expires on the sender thread, whose append panics.
    for h in handles {
        assert_panicked(wait(h));
    }
    assert_panicked(producer.flush());
    *clock.panic_on.lock() = None;
    // The sender thread is still there: this batch goes after its linger, no flush.
    let h = producer.send(record(b"d")).unwrap();
    assert_eq!(wait(h).unwrap().offset, 0);
    producer.flush().unwrap();
    assert_eq!(log_values(&broker), vec![(0, b"d".to_vec())]);
}

#[test]
fn a_panic_in_a_flush_fails_the_batch_and_reaches_the_flush() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(PanickyClock::default());
    let broker = setup(dir.path(), &clock);
    let producer = broker.producer(ProducerConfig {
        linger: Duration::from_secs(3600),
        ..ProducerConfig::default()
    });
    let first = producer.send(record(b"a")).unwrap();
    let second = producer.send(record(b"b")).unwrap();
    *clock.panic_on.lock() = thread::current().name().map(str::to_string);
    assert_panicked(producer.flush());
    assert_panicked(wait(first));
    assert_panicked(wait(second));
    *clock.panic_on.lock() = None;
    // Nothing was written and no sequence number was used up: the next batch is
    // accepted at offset 0 by the log's sequence check.
    let third = producer.send(record(b"c")).unwrap();
    producer.flush().unwrap();
    assert_eq!(wait(third).unwrap().offset, 0);
    assert_eq!(log_values(&broker), vec![(0, b"c".to_vec())]);
}

#[test]
fn a_panic_while_writing_poisons_the_partition_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(PanickyClock::default());
    let broker = open(dir.path(), &clock);
    // Room for one batch per segment: the second append rolls.
    let config = TopicConfig {
        segment_bytes: 100,
        ..TopicConfig::default()
    };
    broker.create_topic("t", 1, config).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    assert_eq!(producer.send_blocking(record(b"a")).unwrap().offset, 0);
    // The second append reads the clock once for its producer state (before writing),
    // then again in the roll, after sealing the first segment: that read panics.
    clock.skip.store(1, Ordering::SeqCst);
    *clock.panic_on.lock() = thread::current().name().map(str::to_string);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        producer.send_blocking(record(b"b"))
    }));
    assert!(unwound.is_err(), "the append should have panicked");
    *clock.panic_on.lock() = None;
    match producer.send_blocking(record(b"c")) {
        Err(Error::BatchFailed(e)) => match &*e {
            Error::Poisoned { partition, cause } => {
                assert_eq!(partition, "t-0");
                assert_eq!(cause, "an append panicked while writing");
            }
            other => panic!("expected Poisoned, got {other:?}"),
        },
        other => panic!("expected the partition to be poisoned, got {other:?}"),
    }
    drop(producer);
    drop(broker);
    // Reopened, the partition holds what was written before the panic and takes appends.
    let broker = open(dir.path(), &clock);
    assert_eq!(log_values(&broker), vec![(0, b"a".to_vec())]);
    let producer = broker.producer(ProducerConfig::default());
    assert_eq!(producer.send_blocking(record(b"d")).unwrap().offset, 1);
    assert_eq!(
        log_values(&broker),
        vec![(0, b"a".to_vec()), (1, b"d".to_vec())]
    );
}
