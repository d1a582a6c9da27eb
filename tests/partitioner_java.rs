//! The producer picks partitions exactly as Kafka's Java producer does (reference §7.1):
//!
//! - `murmur2` matches Java's `Utils.murmur2` on the golden vectors, and
//!   `partition_for_key` masks the sign bit (`& 0x7fffffff`) rather than taking `abs`;
//! - a keyed record lands in `partition_for_key(key, partitions)`, as its metadata says and
//!   as reading the partitions back shows, with the topic's *current* partition count;
//! - an empty key is hashed like any other key; only a null key takes the sticky path;
//! - keyless records stick to one partition until `batch_size` bytes went to it, then
//!   move to another;
//! - a custom partitioner overrides the key hash, and an out-of-range answer from it is
//!   `Error::UnknownPartition`;
//! - an explicit partition wins over the custom partitioner and the key hash.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use partlog::{
    BatchBuilder, Broker, BrokerConfig, Compression, ConsumerConfig, Error, OffsetReset,
    Partitioner, Producer, ProducerConfig, ProducerRecord, RecordMetadata, SendHandle, TopicConfig,
    TopicPartition, murmur2, partition_for_key,
};

/// Java's `Utils.murmur2` of these UTF-8 strings (shared/fixtures/kafka-golden/README.md).
const GOLDEN_MURMUR2: [(&str, i32); 7] = [
    ("", 275_646_681),
    ("a", -1_563_381_124),
    ("ab", 316_155_434),
    ("abc", 479_470_107),
    ("abcd", -1_323_649_548),
    ("key-0", 29_210_041),
    ("hello world", 1_221_641_059),
];

fn open() -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    (dir, broker)
}

/// A producer whose batches are appended only by `flush` (or by filling up), so the
/// partition choice alone decides where records go.
fn producer(broker: &Broker, config: ProducerConfig) -> Producer {
    broker.producer(ProducerConfig {
        linger: Duration::from_secs(3600),
        ..config
    })
}

fn wait_all(producer: &Producer, handles: Vec<SendHandle>) -> Vec<RecordMetadata> {
    producer.flush().unwrap();
    handles.into_iter().map(|h| h.wait().unwrap()).collect()
}

/// Every (key, partition) stored in the topic, read back through a consumer.
fn read_back_keys(broker: &Broker, topic: &str) -> Vec<(Vec<u8>, i32)> {
    let partitions = broker.partition_count(topic).unwrap();
    let total: i64 = (0..partitions)
        .map(|p| broker.partition(topic, p).unwrap().log_end_offset())
        .sum();
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&tps).unwrap();
    let mut out = Vec::new();
    while (out.len() as i64) < total {
        let batch = consumer.poll(Duration::from_secs(10)).unwrap();
        assert!(!batch.is_empty(), "records stored but not returned");
        for r in batch {
            out.push((
                r.key.expect("every record here is keyed").to_vec(),
                r.partition,
            ));
        }
    }
    out
}

#[test]
fn murmur2_matches_javas_golden_vectors() {
    for (key, hash) in GOLDEN_MURMUR2 {
        assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
    }
}

#[test]
fn partition_for_key_masks_the_sign_bit_for_every_partition_count() {
    // Expected values computed as Java does: (murmur2 & 0x7fffffff) % n. For "a" with 7
    // partitions and "abcd" with 3, `abs` would give 4 and 0 instead.
    let expected: [(&str, [i32; 5]); 7] = [
        ("", [0, 0, 2, 9, 81]),
        ("a", [0, 1, 5, 12, 24]),
        ("ab", [0, 2, 0, 10, 34]),
        ("abc", [0, 0, 4, 11, 7]),
        ("abcd", [0, 2, 5, 4, 0]),
        ("key-0", [0, 1, 0, 9, 41]),
        ("hello world", [0, 1, 2, 3, 59]),
    ];
    for (key, partitions) in expected {
        for (n, want) in [1, 3, 7, 16, 100].into_iter().zip(partitions) {
            assert_eq!(
                partition_for_key(key.as_bytes(), n),
                want,
                "partition_for_key({key:?}, {n})"
            );
        }
    }
    // The reference's worked example: "key-0" is partition 1 of 3.
    assert_eq!(partition_for_key(b"key-0", 3), 1);
}

#[test]
fn keyed_records_land_in_partition_for_key() {
    let (_dir, broker) = open();
    for n in [1, 3, 7, 16] {
        let topic = format!("keyed-{n}");
        broker
            .create_topic(&topic, n, TopicConfig::default())
            .unwrap();
        let producer = producer(&broker, ProducerConfig::default());
        let keys: Vec<String> = (0..300)
            .map(|i| format!("key-{i}"))
            .chain(GOLDEN_MURMUR2.iter().map(|(k, _)| k.to_string()))
            .collect();
        let handles = keys
            .iter()
            .map(|k| {
                producer
                    .send(ProducerRecord::new(&topic, b"v").key(k.as_bytes()))
                    .unwrap()
            })
            .collect();
        let metadata = wait_all(&producer, handles);
        for (key, m) in keys.iter().zip(&metadata) {
            assert_eq!(
                m.partition,
                partition_for_key(key.as_bytes(), n),
                "metadata partition of {key:?} with {n} partitions"
            );
        }
        let stored = read_back_keys(&broker, &topic);
        assert_eq!(stored.len(), keys.len(), "{topic}");
        for (key, partition) in stored {
            assert_eq!(
                partition,
                partition_for_key(&key, n),
                "{topic}: key {:?} stored in partition {partition}",
                String::from_utf8_lossy(&key)
            );
        }
        if n > 1 {
            let used: std::collections::BTreeSet<i32> =
                metadata.iter().map(|m| m.partition).collect();
            assert_eq!(
                used.len(),
                n as usize,
                "300 keys should reach all {n} partitions"
            );
        }
    }
}

#[test]
fn keyed_records_follow_the_new_partition_count_after_add_partitions() {
    let (_dir, broker) = open();
    broker
        .create_topic("grow", 3, TopicConfig::default())
        .unwrap();
    let producer = producer(&broker, ProducerConfig::default());
    // Created before the topic grows: it must still see the new count.
    let before = producer
        .send_blocking(ProducerRecord::new("grow", b"v").key(b"a"))
        .unwrap();
    assert_eq!(before.partition, 1, "\"a\" with 3 partitions");
    broker.add_partitions("grow", 7).unwrap();
    let after = producer
        .send_blocking(ProducerRecord::new("grow", b"v").key(b"a"))
        .unwrap();
    assert_eq!(after.partition, 5, "\"a\" with 7 partitions");
    for i in 0..100 {
        let key = format!("k{i}");
        let m = producer
            .send_blocking(ProducerRecord::new("grow", b"v").key(key.as_bytes()))
            .unwrap();
        assert_eq!(m.partition, partition_for_key(key.as_bytes(), 7), "{key}");
    }
}

#[test]
fn an_empty_key_is_hashed_not_sticky() {
    let (_dir, broker) = open();
    broker
        .create_topic("empty", 7, TopicConfig::default())
        .unwrap();
    // A small batch size: were the empty key treated as null, the sticky partitioner
    // would move to another partition every few records.
    let producer = producer(
        &broker,
        ProducerConfig {
            batch_size: 200,
            ..ProducerConfig::default()
        },
    );
    let value = [7u8; 50];
    let handles = (0..100)
        .map(|_| {
            producer
                .send(ProducerRecord::new("empty", &value).key(b""))
                .unwrap()
        })
        .collect();
    let metadata = wait_all(&producer, handles);
    // murmur2("") = 275646681, and 275646681 % 7 = 2.
    assert_eq!(partition_for_key(b"", 7), 2);
    for (i, m) in metadata.iter().enumerate() {
        assert_eq!(m.partition, 2, "record {i} with an empty key");
    }
    assert_eq!(broker.partition("empty", 2).unwrap().log_end_offset(), 100);
    let stored = read_back_keys(&broker, "empty");
    assert!(stored.iter().all(|(k, p)| k.is_empty() && *p == 2));
}

#[test]
fn keyless_records_stick_to_one_partition_until_batch_size_bytes() {
    let (_dir, broker) = open();
    broker
        .create_topic("sticky", 4, TopicConfig::default())
        .unwrap();
    let batch_size = 1000;
    let producer = producer(
        &broker,
        ProducerConfig {
            batch_size,
            ..ProducerConfig::default()
        },
    );
    let value = [b'x'; 90];
    let ts = 1_700_000_000_000;
    let record_size = BatchBuilder::new(Compression::None).record_size(ts, None, Some(&value), &[]);
    // The partition switches once at least batch_size bytes went to it, so each stay
    // holds the smallest count of records reaching batch_size.
    let per_stay = batch_size.div_ceil(record_size);
    assert!(per_stay > 1, "the test needs several records per stay");
    let stays = 20;
    let handles = (0..per_stay * stays)
        .map(|_| {
            producer
                .send(ProducerRecord::new("sticky", &value).timestamp(ts))
                .unwrap()
        })
        .collect();
    let metadata = wait_all(&producer, handles);
    let runs: Vec<(i32, usize)> = metadata.iter().fold(Vec::new(), |mut runs, m| {
        match runs.last_mut() {
            Some((p, n)) if *p == m.partition => *n += 1,
            _ => runs.push((m.partition, 1)),
        }
        runs
    });
    assert_eq!(
        runs.len(),
        stays,
        "{record_size}-byte records, batch size {batch_size}: expected {stays} stays of \
         {per_stay} records, got {runs:?}"
    );
    for (i, (partition, n)) in runs.iter().enumerate() {
        assert_eq!(*n, per_stay, "stay {i} on partition {partition}: {runs:?}");
        if i > 0 {
            assert_ne!(
                runs[i - 1].0,
                *partition,
                "a switch moves to another partition"
            );
        }
    }
    // Offsets within each partition are dense: the stays were appended, nothing lost.
    let mut per_partition: HashMap<i32, Vec<i64>> = HashMap::new();
    for m in &metadata {
        per_partition.entry(m.partition).or_default().push(m.offset);
    }
    for (p, offsets) in per_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "offsets of partition {p}");
    }
}

/// Sends every record to `target`, counting its calls.
#[derive(Debug)]
struct Fixed {
    target: i32,
    calls: AtomicUsize,
}

impl Partitioner for Fixed {
    fn partition(
        &self,
        topic: &str,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        partitions: i32,
    ) -> i32 {
        assert_eq!(topic, "custom");
        assert_eq!(partitions, 5, "the partitioner is told the partition count");
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.target
    }
}

#[test]
fn a_custom_partitioner_overrides_the_key_hash() {
    let (_dir, broker) = open();
    broker
        .create_topic("custom", 5, TopicConfig::default())
        .unwrap();
    let fixed = Arc::new(Fixed {
        target: 3,
        calls: AtomicUsize::new(0),
    });
    let producer = producer(
        &broker,
        ProducerConfig {
            partitioner: Some(fixed.clone()),
            ..ProducerConfig::default()
        },
    );
    let keys: Vec<String> = (0..50).map(|i| format!("key-{i}")).collect();
    let mut handles: Vec<SendHandle> = keys
        .iter()
        .map(|k| {
            producer
                .send(ProducerRecord::new("custom", b"v").key(k.as_bytes()))
                .unwrap()
        })
        .collect();
    handles.push(
        producer
            .send(ProducerRecord::new("custom", b"keyless"))
            .unwrap(),
    );
    let metadata = wait_all(&producer, handles);
    assert!(
        keys.iter().any(|k| partition_for_key(k.as_bytes(), 5) != 3),
        "some key must hash elsewhere for this test to mean anything"
    );
    assert!(metadata.iter().all(|m| m.partition == 3), "{metadata:?}");
    assert_eq!(fixed.calls.load(Ordering::SeqCst), 51);
    assert_eq!(broker.partition("custom", 3).unwrap().log_end_offset(), 51);
    for p in [0, 1, 2, 4] {
        assert_eq!(broker.partition("custom", p).unwrap().log_end_offset(), 0);
    }
}

#[test]
fn a_custom_partitioner_answering_out_of_range_is_unknown_partition() {
    let (_dir, broker) = open();
    broker
        .create_topic("custom", 5, TopicConfig::default())
        .unwrap();
    for target in [5, 99, -1] {
        let producer = producer(
            &broker,
            ProducerConfig {
                partitioner: Some(Arc::new(Fixed {
                    target,
                    calls: AtomicUsize::new(0),
                })),
                ..ProducerConfig::default()
            },
        );
        let err = producer
            .send(ProducerRecord::new("custom", b"v").key(b"k"))
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::UnknownPartition { topic, partition, partitions: 5 }
                    if topic == "custom" && *partition == target
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("topic \"custom\" has no partition {target}: valid partitions are 0..5")
        );
    }
    for p in 0..5 {
        assert_eq!(broker.partition("custom", p).unwrap().log_end_offset(), 0);
    }
}

#[test]
fn an_explicit_partition_wins_over_everything() {
    let (_dir, broker) = open();
    broker
        .create_topic("custom", 5, TopicConfig::default())
        .unwrap();
    let fixed = Arc::new(Fixed {
        target: 3,
        calls: AtomicUsize::new(0),
    });
    let with_custom = producer(
        &broker,
        ProducerConfig {
            partitioner: Some(fixed.clone()),
            ..ProducerConfig::default()
        },
    );
    let plain = producer(&broker, ProducerConfig::default());
    // "key-0" hashes to partition 1 of 5 and the custom partitioner says 3.
    assert_eq!(partition_for_key(b"key-0", 5), 1);
    let mut sent = Vec::new();
    for p in [0, 2, 4] {
        let keyed = ProducerRecord::new("custom", b"v")
            .key(b"key-0")
            .partition(p);
        sent.push((p, with_custom.send_blocking(keyed).unwrap()));
        sent.push((p, plain.send_blocking(keyed).unwrap()));
        let keyless = ProducerRecord::new("custom", b"v").partition(p);
        sent.push((p, with_custom.send_blocking(keyless).unwrap()));
        sent.push((p, plain.send_blocking(keyless).unwrap()));
    }
    for (want, m) in &sent {
        assert_eq!(m.partition, *want, "{m:?}");
    }
    assert_eq!(fixed.calls.load(Ordering::SeqCst), 0, "never asked");
    for (p, expected) in [(0, 4), (1, 0), (2, 4), (3, 0), (4, 4)] {
        assert_eq!(
            broker.partition("custom", p).unwrap().log_end_offset(),
            expected,
            "partition {p}"
        );
    }
}
