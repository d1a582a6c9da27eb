//! `send_blocking` appends a record on its own when its partition has nothing waiting,
//! and through the partition's batch otherwise. Either way, records keep the order they
//! were sent in, an idempotent producer's sequence numbers run on without a gap (the log
//! refuses a gap), and a record no batch could hold is refused at `send` without using
//! up a sequence number.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Error, ProducerConfig, ProducerRecord, RecordBatch, TopicConfig,
};

fn broker(dir: &std::path::Path) -> Broker {
    Broker::open(dir, BrokerConfig::default()).unwrap()
}

/// Every batch of partition `p`, from offset 0.
fn batches(broker: &Broker, topic: &str, p: i32) -> Vec<RecordBatch> {
    let log = broker.partition(topic, p).unwrap();
    let mut out = Vec::new();
    let mut next = 0;
    while next < log.log_end_offset() {
        let read = log.read(next, 1 << 20).unwrap();
        next = read.last().unwrap().next_offset();
        out.extend(read);
    }
    out
}

/// The values of partition `p` in offset order.
fn values(broker: &Broker, topic: &str, p: i32) -> Vec<Vec<u8>> {
    let log = broker.partition(topic, p).unwrap();
    let mut out = Vec::new();
    for b in batches(broker, topic, p) {
        for r in b.records(log.log().codecs()).unwrap() {
            out.push(r.unwrap().value.unwrap().to_vec());
        }
    }
    out
}

/// Each batch's base sequence is the count of the producer's records before it.
fn assert_sequences_run_on(batches: &[RecordBatch]) {
    let mut expected = 0;
    for b in batches {
        assert!(b.producer_id() >= 0, "an idempotent producer's batch");
        assert_eq!(b.base_sequence(), expected, "batch at {}", b.base_offset());
        expected += b.records_count();
    }
}

#[test]
fn lone_and_batched_sends_keep_their_order_and_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let producer = broker.producer(ProducerConfig {
        linger: Duration::from_secs(3600),
        ..ProducerConfig::default()
    });
    let send = |v: &str| {
        producer
            .send(ProducerRecord::new("t", v.as_bytes()))
            .unwrap()
    };
    let blocking = |v: &str| {
        producer
            .send_blocking(ProducerRecord::new("t", v.as_bytes()))
            .unwrap()
            .offset
    };
    // Lone appends on an empty partition.
    assert_eq!(blocking("a"), 0);
    assert_eq!(blocking("b"), 1);
    // Records waiting in the open batch go first: this one joins their batch.
    let waiting = [send("c"), send("d")];
    assert_eq!(blocking("e"), 4);
    let offsets: Vec<i64> = waiting.map(|h| h.wait().unwrap().offset).into();
    assert_eq!(offsets, [2, 3]);
    // Alone again, then a batch flushed after it.
    assert_eq!(blocking("f"), 5);
    let later = [send("g"), send("h")];
    producer.flush().unwrap();
    let offsets: Vec<i64> = later.map(|h| h.wait().unwrap().offset).into();
    assert_eq!(offsets, [6, 7]);

    let expected: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"];
    assert_eq!(values(&broker, "t", 0), expected);
    let batches = batches(&broker, "t", 0);
    let counts: Vec<i32> = batches.iter().map(RecordBatch::records_count).collect();
    assert_eq!(counts, [1, 1, 3, 1, 2]);
    assert_sequences_run_on(&batches);
}

#[test]
fn a_record_no_segment_could_hold_is_refused_at_send_and_uses_no_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let config = TopicConfig {
        segment_bytes: 1000,
        ..TopicConfig::default()
    };
    broker.create_topic("tiny", 1, config).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let big = vec![7u8; 5000];
    let m = producer
        .send_blocking(ProducerRecord::new("tiny", b"before"))
        .unwrap();
    assert_eq!(m.offset, 0);
    for err in [
        producer
            .send_blocking(ProducerRecord::new("tiny", &big))
            .unwrap_err(),
        producer
            .send(ProducerRecord::new("tiny", &big))
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                &err,
                Error::RecordTooLarge { topic, size: 5070, limit: 1000, limit_name: "segment.bytes" }
                    if topic == "tiny"
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "record of 5070 bytes for tiny exceeds segment.bytes = 1000 (with the 61-byte batch header)"
        );
    }
    // The partition takes the producer's next records, sent either way.
    let m = producer
        .send_blocking(ProducerRecord::new("tiny", b"after"))
        .unwrap();
    assert_eq!(m.offset, 1);
    let h = producer
        .send(ProducerRecord::new("tiny", b"batched"))
        .unwrap();
    producer.flush().unwrap();
    assert_eq!(h.wait().unwrap().offset, 2);
    let expected: Vec<&[u8]> = vec![b"before", b"after", b"batched"];
    assert_eq!(values(&broker, "tiny", 0), expected);
    assert_sequences_run_on(&batches(&broker, "tiny", 0));
}

#[test]
fn threads_mixing_lone_and_batched_sends_lose_nothing_and_keep_order() {
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    broker
        .create_topic("mix", 2, TopicConfig::default())
        .unwrap();
    let producer = Arc::new(broker.producer(ProducerConfig {
        linger: Duration::from_millis(1),
        ..ProducerConfig::default()
    }));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let producer = producer.clone();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let value = [t.to_be_bytes(), i.to_be_bytes()].concat();
                    let record = ProducerRecord::new("mix", &value).partition((i % 2) as i32);
                    // Thread t sends every (t + 2)th record blocking, the rest batched.
                    if i % (t + 2) == 0 {
                        producer.send_blocking(record).unwrap();
                    } else {
                        drop(producer.send(record).unwrap());
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    producer.flush().unwrap();
    for p in 0..2 {
        // Per thread, the partition holds its records in the order sent.
        let mut next = vec![p as u32; THREADS as usize];
        let values = values(&broker, "mix", p);
        assert_eq!(values.len(), (THREADS * PER_THREAD / 2) as usize);
        for v in values {
            let t = u32::from_be_bytes(v[..4].try_into().unwrap()) as usize;
            let i = u32::from_be_bytes(v[4..].try_into().unwrap());
            assert_eq!(i, next[t], "thread {t} on partition {p}");
            next[t] += 2;
        }
        assert_sequences_run_on(&batches(&broker, "mix", p));
    }
}
