//! Every bad input to the public API is an error value naming what was wrong, never a
//! panic and never a side effect: each case checks the `Error` variant with its fields
//! and the exact message a person would read.
//!
//! Covered: unknown topics and partitions, records over `max.message.bytes`, topic names
//! that break Kafka's rules (and that nothing is created for them, inside or outside the
//! data directory), duplicate topics, bad partition counts, use after close, a second
//! open of a locked directory, consumer positions that are missing or out of range,
//! calls on unassigned partitions, auto-creation on and off, and a write failure that
//! poisons a partition (provoked with `RLIMIT_FSIZE` in a child process).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use partlog::record::BATCH_HEADER_SIZE;
use partlog::{
    BatchBuilder, Broker, BrokerConfig, Compression, ConsumerConfig, Error, FsyncPolicy,
    OffsetReset, ProducerConfig, ProducerRecord, TopicConfig, TopicPartition,
};

fn open(dir: &Path) -> Broker {
    Broker::open(dir, BrokerConfig::default()).unwrap()
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn assert_unknown_topic(err: Error, name: &str) {
    assert!(
        matches!(&err, Error::UnknownTopic { topic } if topic == name),
        "{err:?}"
    );
    assert_eq!(err.to_string(), format!("unknown topic {name:?}"));
}

fn assert_unknown_partition(err: Error, name: &str, partition: i32, partitions: i32) {
    assert!(
        matches!(
            &err,
            Error::UnknownPartition { topic, partition: p, partitions: n }
                if topic == name && *p == partition && *n == partitions
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "topic {name:?} has no partition {partition}: valid partitions are 0..{partitions}"
        )
    );
}

fn none_reset_consumer(broker: &Broker) -> partlog::Consumer {
    broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::None,
        ..ConsumerConfig::default()
    })
}

#[test]
fn an_unknown_topic_is_unknown_topic_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker
        .create_topic("known", 1, TopicConfig::default())
        .unwrap();
    let producer = broker.producer(ProducerConfig::default());

    assert_unknown_topic(
        producer
            .send(ProducerRecord::new("nope", b"v"))
            .unwrap_err(),
        "nope",
    );
    assert_unknown_topic(
        producer
            .send_blocking(ProducerRecord::new("nope", b"v"))
            .unwrap_err(),
        "nope",
    );
    assert_unknown_topic(broker.partition("nope", 0).unwrap_err(), "nope");
    assert_unknown_topic(broker.describe_topic("nope").unwrap_err(), "nope");
    assert_unknown_topic(broker.partition_count("nope").unwrap_err(), "nope");
    assert_unknown_topic(broker.delete_topic("nope").unwrap_err(), "nope");
    assert_unknown_topic(broker.add_partitions("nope", 2).unwrap_err(), "nope");

    let mut consumer = broker.consumer(ConsumerConfig::default());
    assert_unknown_topic(consumer.subscribe(&["known", "nope"]).unwrap_err(), "nope");
    assert!(
        consumer.assignment().is_empty(),
        "a failed subscribe changes nothing"
    );
    assert_unknown_topic(
        consumer
            .assign(&[TopicPartition::new("nope", 0)])
            .unwrap_err(),
        "nope",
    );
    assert_unknown_topic(
        consumer
            .end_offsets(&[TopicPartition::new("nope", 0)])
            .unwrap_err(),
        "nope",
    );
    assert_eq!(broker.topics(), vec!["known".to_string()]);
}

#[test]
fn a_partition_out_of_range_is_unknown_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker
        .create_topic("three", 3, TopicConfig::default())
        .unwrap();
    let producer = broker.producer(ProducerConfig::default());
    for p in [3, 100, -1] {
        assert_unknown_partition(
            producer
                .send(ProducerRecord::new("three", b"v").partition(p))
                .unwrap_err(),
            "three",
            p,
            3,
        );
        assert_unknown_partition(broker.partition("three", p).unwrap_err(), "three", p, 3);
    }
    let mut consumer = broker.consumer(ConsumerConfig::default());
    consumer.assign(&[TopicPartition::new("three", 0)]).unwrap();
    let err = consumer
        .assign(&[
            TopicPartition::new("three", 1),
            TopicPartition::new("three", 3),
        ])
        .unwrap_err();
    assert_unknown_partition(err, "three", 3, 3);
    assert_eq!(
        consumer.assignment(),
        vec![TopicPartition::new("three", 0)],
        "a failed assign changes nothing"
    );
    for p in 0..3 {
        assert_eq!(broker.partition("three", p).unwrap().log_end_offset(), 0);
    }
}

/// The value length whose keyless record makes a one-record batch of exactly `batch` bytes.
fn value_len_for_batch(batch: usize) -> usize {
    (0..batch)
        .find(|&v| {
            let value = vec![0u8; v];
            BatchBuilder::new(Compression::None).record_size(0, None, Some(&value), &[])
                + BATCH_HEADER_SIZE
                == batch
        })
        .expect("some value length fits exactly")
}

#[test]
fn a_record_over_max_message_bytes_is_record_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let config = TopicConfig {
        max_message_bytes: 1000,
        ..TopicConfig::default()
    };
    broker.create_topic("small", 1, config).unwrap();
    let producer = broker.producer(ProducerConfig::default());

    let fits = vec![b'f'; value_len_for_batch(1000)];
    let too_big = vec![b'x'; value_len_for_batch(1001)];
    let err = producer
        .send(ProducerRecord::new("small", &too_big).timestamp(0))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::RecordTooLarge { topic, size: 1001, limit: 1000, limit_name: "max.message.bytes" } if topic == "small"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "record of 1001 bytes for small exceeds max.message.bytes = 1000 \
         (with the 61-byte batch header)"
    );
    let huge = vec![0u8; 2 << 20];
    let err = producer
        .send(ProducerRecord::new("small", &huge))
        .unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("max.message.bytes = 1000"),
        "{err}"
    );
    assert_eq!(broker.partition("small", 0).unwrap().log_end_offset(), 0);

    // Exactly at the limit is accepted.
    let m = producer
        .send_blocking(ProducerRecord::new("small", &fits).timestamp(0))
        .unwrap();
    assert_eq!((m.partition, m.offset), (0, 0));
    let batches = broker
        .partition("small", 0)
        .unwrap()
        .read(0, 1 << 20)
        .unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].size(), 1000);
}

/// Kafka's producer never fails records that each fit `max.message.bytes` because the
/// batch it put them in does not: the broker answers MESSAGE_TOO_LARGE and the producer
/// splits the batch and sends again (`RecordAccumulator.splitAndReenqueue`). Here the
/// producer's `batch_size` (16384) is larger than the topic's `max.message.bytes`.
#[test]
fn records_under_max_message_bytes_are_accepted_even_when_batch_size_is_larger() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let config = TopicConfig {
        max_message_bytes: 1000,
        ..TopicConfig::default()
    };
    broker.create_topic("small", 1, config).unwrap();
    let producer = broker.producer(ProducerConfig {
        linger: Duration::from_secs(3600),
        ..ProducerConfig::default()
    });
    let value = vec![b'v'; 600];
    let handles: Vec<_> = (0..3)
        .map(|_| producer.send(ProducerRecord::new("small", &value)).unwrap())
        .collect();
    producer.flush().unwrap();
    let results: Vec<_> = handles.into_iter().map(|h| h.wait()).collect();
    for (i, r) in results.iter().enumerate() {
        assert!(
            r.is_ok(),
            "record {i} (a {}-byte value: under max.message.bytes = 1000 in a batch of its \
             own) failed: {}",
            value.len(),
            r.as_ref().unwrap_err()
        );
    }
    assert_eq!(broker.partition("small", 0).unwrap().log_end_offset(), 3);
}

#[test]
fn topic_names_breaking_kafkas_rules_are_invalid_config_and_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let broker = Broker::open(
        &data,
        BrokerConfig {
            auto_create_topics: true,
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    let root_before = entries(root.path());
    let data_before = entries(&data);
    assert_eq!(root_before, BTreeSet::from(["data".to_string()]));

    let length = "a topic name has 1 to 249 characters";
    let dots = "a topic name cannot be \".\" or \"..\"";
    let chars = "a topic name may hold only ASCII letters, digits, '.', '_' and '-'";
    let long = "a".repeat(250);
    let cases: [(&str, &str); 9] = [
        ("", length),
        (&long, length),
        (".", dots),
        ("..", dots),
        ("a/b", chars),
        ("a b", chars),
        ("../escape", chars),
        ("/abs", chars),
        ("caf\u{e9}", chars),
    ];
    let producer = broker.producer(ProducerConfig::default());
    for (name, reason) in cases {
        let check = |err: Error, via: &str| {
            assert!(
                matches!(
                    &err,
                    Error::InvalidConfig { name: "topic", value, reason: r }
                        if value == name && *r == reason
                ),
                "{via} {name:?}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("invalid config topic = {name}: {reason}"),
                "{via}"
            );
        };
        check(
            broker
                .create_topic(name, 1, TopicConfig::default())
                .unwrap_err(),
            "create_topic",
        );
        // With auto-creation on, a send or subscribe would create the topic: the name is
        // checked there too.
        check(
            producer.send(ProducerRecord::new(name, b"v")).unwrap_err(),
            "send",
        );
        let mut consumer = broker.consumer(ConsumerConfig::default());
        check(consumer.subscribe(&[name]).unwrap_err(), "subscribe");
    }
    assert!(broker.topics().is_empty(), "{:?}", broker.topics());
    assert_eq!(
        entries(root.path()),
        root_before,
        "nothing beside the data dir"
    );
    assert_eq!(entries(&data), data_before, "nothing inside the data dir");

    // The longest legal name works, and so do the legal special characters.
    let longest = "b".repeat(249);
    broker
        .create_topic(&longest, 1, TopicConfig::default())
        .unwrap();
    broker
        .create_topic("a.b_c-D9", 1, TopicConfig::default())
        .unwrap();
    assert!(data.join(format!("{longest}-0")).is_dir());
    assert!(data.join("a.b_c-D9-0").is_dir());
    assert_eq!(broker.topics().len(), 2);
}

#[test]
fn topic_config_values_out_of_kafkas_ranges_are_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let d = TopicConfig::default;
    let cases = [
        (
            TopicConfig {
                segment_bytes: 13,
                ..d()
            },
            "segment.bytes",
            "invalid config segment.bytes = 13: must be in 14..=2147483647",
        ),
        (
            TopicConfig {
                segment_bytes: 1 << 31,
                ..d()
            },
            "segment.bytes",
            "invalid config segment.bytes = 2147483648: must be in 14..=2147483647",
        ),
        (
            TopicConfig {
                max_message_bytes: 0,
                ..d()
            },
            "max.message.bytes",
            "invalid config max.message.bytes = 0: must be in 1..=2147483647",
        ),
        (
            TopicConfig {
                segment_ms: 0,
                ..d()
            },
            "segment.ms",
            "invalid config segment.ms = 0: must be at least 1",
        ),
        (
            TopicConfig {
                segment_index_bytes: 23,
                ..d()
            },
            "segment.index.bytes",
            "invalid config segment.index.bytes = 23: must hold at least two time-index \
             entries (24 bytes) and fit an int",
        ),
        (
            TopicConfig {
                fsync: FsyncPolicy::EveryRecords(0),
                ..d()
            },
            "flush.messages",
            "invalid config flush.messages = 0: must be at least 1",
        ),
        (
            TopicConfig {
                fsync: FsyncPolicy::Interval(Duration::ZERO),
                ..d()
            },
            "flush.ms",
            "invalid config flush.ms = 0: must be at least 1 ms",
        ),
    ];
    for (config, setting, message) in cases {
        let err = broker.create_topic("cfg", 1, config).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { name, .. } if *name == setting),
            "{err:?}"
        );
        assert_eq!(err.to_string(), message);
    }
    assert!(broker.topics().is_empty());
    assert!(!dir.path().join("cfg-0").exists());
}

/// A record that fits `max.message.bytes` but not `segment.bytes` cannot be stored: the
/// error names `segment.bytes`, whether `send` returns it or the record's handle does,
/// and nothing is written.
#[test]
fn a_record_over_segment_bytes_is_an_error_naming_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let config = TopicConfig {
        segment_bytes: 1000,
        ..TopicConfig::default()
    };
    broker.create_topic("tiny", 1, config).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let value = vec![1u8; 5000];
    let err = match producer.send(ProducerRecord::new("tiny", &value)) {
        Err(e) => e,
        Ok(handle) => {
            producer.flush().ok();
            handle
                .wait()
                .expect_err("a 5 KB record in 1000-byte segments")
        }
    };
    assert!(err.to_string().contains("segment.bytes = 1000"), "{err}");
    assert_eq!(broker.partition("tiny", 0).unwrap().log_end_offset(), 0);
    // The partition still takes records that fit.
    let m = producer
        .send_blocking(ProducerRecord::new("tiny", b"fits"))
        .unwrap();
    assert_eq!(m.offset, 0);
}

#[test]
fn creating_an_existing_topic_is_topic_exists_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker
        .create_topic("dup", 2, TopicConfig::default())
        .unwrap();
    broker
        .producer(ProducerConfig::default())
        .send_blocking(ProducerRecord::new("dup", b"kept").partition(1))
        .unwrap();
    let other = TopicConfig {
        segment_bytes: 1 << 20,
        ..TopicConfig::default()
    };
    let err = broker.create_topic("dup", 5, other).unwrap_err();
    assert!(
        matches!(&err, Error::TopicExists { topic } if topic == "dup"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "topic \"dup\" already exists");
    let d = broker.describe_topic("dup").unwrap();
    assert_eq!(d.partitions.len(), 2);
    assert_eq!(d.config, TopicConfig::default());
    assert_eq!(d.partitions[1].log_end_offset, 1);
}

#[test]
fn fewer_than_one_partition_and_shrinking_are_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    for n in [0, -3] {
        let err = broker
            .create_topic("p", n, TopicConfig::default())
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidConfig { name: "partitions", value, .. } if *value == n.to_string()
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("invalid config partitions = {n}: a topic needs at least 1 partition")
        );
    }
    assert!(broker.topics().is_empty());
    assert!(
        entries(dir.path()).iter().all(|e| !e.starts_with("p-")),
        "{:?}",
        entries(dir.path())
    );

    broker.create_topic("p", 3, TopicConfig::default()).unwrap();
    for total in [3, 2, 0, -1] {
        let err = broker.add_partitions("p", total).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidConfig { name: "partitions", value, .. }
                    if *value == total.to_string()
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "invalid config partitions = {total}: partitions can only be added: the new \
                 count must exceed the current one"
            )
        );
    }
    assert_eq!(broker.partition_count("p").unwrap(), 3);
    assert!(!dir.path().join("p-3").exists());
}

#[test]
fn a_closed_broker_or_producer_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();

    let closed_producer = broker.producer(ProducerConfig::default());
    closed_producer.close().unwrap();
    let err = closed_producer
        .send(ProducerRecord::new("t", b"v"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Closed(what) if what == "producer"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "producer is closed");
    assert!(matches!(closed_producer.flush(), Err(Error::Closed(_))));

    let producer = broker.producer(ProducerConfig::default());
    producer
        .send_blocking(ProducerRecord::new("t", b"before"))
        .unwrap();
    broker.close().unwrap();
    assert!(broker.is_closed());
    let expected = format!("broker at {} is closed", dir.path().display());
    let err = producer
        .send(ProducerRecord::new("t", b"after"))
        .unwrap_err();
    assert!(matches!(&err, Error::Closed(_)), "{err:?}");
    assert_eq!(err.to_string(), expected);
    let err = producer
        .send_blocking(ProducerRecord::new("t", b"after"))
        .unwrap_err();
    assert_eq!(err.to_string(), expected);
    // A producer made after the close, and the admin calls, are refused too.
    let err = broker
        .producer(ProducerConfig::default())
        .send(ProducerRecord::new("t", b"after"))
        .unwrap_err();
    assert_eq!(err.to_string(), expected);
    for err in [
        broker
            .create_topic("u", 1, TopicConfig::default())
            .unwrap_err(),
        broker.add_partitions("t", 2).unwrap_err(),
        broker.delete_topic("t").unwrap_err(),
    ] {
        assert!(matches!(&err, Error::Closed(_)), "{err:?}");
        assert_eq!(err.to_string(), expected);
    }
    assert!(broker.close().is_ok(), "closing twice is a no-op");
    assert_eq!(broker.partition("t", 0).unwrap().log_end_offset(), 1);
}

#[test]
fn a_second_open_of_an_open_directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    first.create_topic("t", 1, TopicConfig::default()).unwrap();
    let lock = dir.path().join(".lock");
    let err = Broker::open(dir.path(), BrokerConfig::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Locked { path } if *path == lock),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} is locked by another process or handle; only one may open a data directory",
            lock.display()
        )
    );
    // The failed open touched nothing: the first handle still works.
    first
        .producer(ProducerConfig::default())
        .send_blocking(ProducerRecord::new("t", b"v"))
        .unwrap();

    // Closing releases the lock even while the handle lives on.
    first.close().unwrap();
    let second = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    assert_eq!(second.partition("t", 0).unwrap().log_end_offset(), 1);
    let err = Broker::open(dir.path(), BrokerConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    // So does dropping an unclosed broker.
    drop(second);
    let third = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    assert_eq!(third.partition("t", 0).unwrap().log_end_offset(), 1);
    drop(first);
}

#[test]
fn a_seek_outside_the_log_with_reset_none_is_offset_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    for i in 0..10 {
        producer
            .send_blocking(ProducerRecord::new("t", format!("{i}").as_bytes()))
            .unwrap();
    }
    let tp = TopicPartition::new("t", 0);
    let mut consumer = none_reset_consumer(&broker);
    consumer.assign(std::slice::from_ref(&tp)).unwrap();
    for offset in [11, 1_000, -1] {
        consumer.seek(&tp, offset).unwrap();
        let err = consumer.poll(Duration::ZERO).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::OffsetOutOfRange {
                    partition,
                    offset: o,
                    log_start_offset: 0,
                    log_end_offset: 10,
                } if partition == "t-0" && *o == offset
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("offset {offset} is out of range for t-0: valid offsets are 0..=10")
        );
        let err = consumer.position(&tp).unwrap_err();
        assert!(matches!(err, Error::OffsetOutOfRange { .. }), "{err:?}");
    }
    // The log end offset itself is in range: reading there returns nothing yet.
    consumer.seek(&tp, 10).unwrap();
    assert!(consumer.poll(Duration::ZERO).unwrap().is_empty());
    consumer.seek(&tp, 9).unwrap();
    let records = consumer.poll(Duration::ZERO).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].offset, 9);
}

#[test]
fn no_position_with_reset_none_is_no_offset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    broker
        .producer(ProducerConfig::default())
        .send_blocking(ProducerRecord::new("t", b"v").partition(1))
        .unwrap();
    let tp = TopicPartition::new("t", 1);
    let mut consumer = none_reset_consumer(&broker);
    consumer.assign(std::slice::from_ref(&tp)).unwrap();
    let check = |err: Error| {
        assert!(
            matches!(&err, Error::NoOffset { topic, partition: 1 } if topic == "t"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "no offset for t-1 and auto_offset_reset is none"
        );
    };
    check(consumer.poll(Duration::ZERO).unwrap_err());
    check(consumer.position(&tp).unwrap_err());
    // A seek gives it a position.
    consumer.seek(&tp, 0).unwrap();
    assert_eq!(consumer.position(&tp).unwrap(), 0);
    let records = consumer.poll(Duration::ZERO).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"v"[..]));
}

#[test]
fn calls_on_an_unassigned_partition_are_not_assigned() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let mut consumer = broker.consumer(ConsumerConfig::default());
    consumer.assign(&[TopicPartition::new("t", 0)]).unwrap();
    for tp in [
        TopicPartition::new("t", 1),
        TopicPartition::new("t", 5),
        TopicPartition::new("other", 0),
    ] {
        let expected = format!(
            "{}-{} is not assigned to this consumer",
            tp.topic, tp.partition
        );
        let errors = [
            consumer.position(&tp).unwrap_err(),
            consumer.seek(&tp, 0).unwrap_err(),
            consumer.pause(std::slice::from_ref(&tp)).unwrap_err(),
            consumer.resume(std::slice::from_ref(&tp)).unwrap_err(),
            consumer
                .seek_to_beginning(std::slice::from_ref(&tp))
                .unwrap_err(),
            consumer.seek_to_end(std::slice::from_ref(&tp)).unwrap_err(),
        ];
        for err in errors {
            assert!(
                matches!(
                    &err,
                    Error::NotAssigned { topic, partition }
                        if *topic == tp.topic && *partition == tp.partition
                ),
                "{err:?}"
            );
            assert_eq!(err.to_string(), expected);
        }
    }
    assert!(consumer.paused().is_empty());
}

#[test]
fn auto_create_topics_on_creates_and_off_is_unknown_topic() {
    let off_dir = tempfile::tempdir().unwrap();
    let off = open(off_dir.path());
    assert_unknown_topic(
        off.producer(ProducerConfig::default())
            .send(ProducerRecord::new("auto", b"v"))
            .unwrap_err(),
        "auto",
    );
    assert_unknown_topic(
        off.consumer(ConsumerConfig::default())
            .subscribe(&["auto"])
            .unwrap_err(),
        "auto",
    );
    assert!(off.topics().is_empty());
    assert!(!off_dir.path().join("auto-0").exists());

    let on_dir = tempfile::tempdir().unwrap();
    let default_topic_config = TopicConfig {
        segment_bytes: 1 << 20,
        ..TopicConfig::default()
    };
    let on = Broker::open(
        on_dir.path(),
        BrokerConfig {
            auto_create_topics: true,
            default_partitions: 4,
            default_topic_config: default_topic_config.clone(),
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    let m = on
        .producer(ProducerConfig::default())
        .send_blocking(ProducerRecord::new("auto", b"v").partition(3))
        .unwrap();
    assert_eq!((m.partition, m.offset), (3, 0));
    let d = on.describe_topic("auto").unwrap();
    assert_eq!(d.partitions.len(), 4);
    assert_eq!(d.config, default_topic_config);
    assert_eq!(d.partitions[3].log_end_offset, 1);

    let mut consumer = on.consumer(ConsumerConfig::default());
    consumer.subscribe(&["by-subscribe"]).unwrap();
    assert_eq!(on.partition_count("by-subscribe").unwrap(), 4);
    assert_eq!(consumer.assignment().len(), 4);
    assert_eq!(
        on.topics(),
        vec!["auto".to_string(), "by-subscribe".to_string()]
    );
}

/// A producer that wrote to a topic before it was deleted gets `UnknownTopic` from `send`
/// (its documented error), and writes to the new topic once one of that name is created:
/// Kafka's producer refreshes its metadata and does the same.
#[test]
fn a_send_to_a_deleted_topic_is_unknown_topic_and_reaches_it_once_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    producer
        .send_blocking(ProducerRecord::new("t", b"before").partition(1))
        .unwrap();
    broker.delete_topic("t").unwrap();

    let err = producer
        .send(ProducerRecord::new("t", b"deleted").partition(1))
        .map(|handle| handle.wait())
        .expect_err("a send to a deleted topic must fail at once");
    assert_unknown_topic(err, "t");

    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let m = producer
        .send_blocking(ProducerRecord::new("t", b"recreated").partition(1))
        .unwrap();
    assert_eq!((m.partition, m.offset), (1, 0));
    let batches = broker.partition("t", 1).unwrap().read(0, 1 << 20).unwrap();
    assert_eq!(batches.len(), 1);
}

/// `Duration::MAX` is the natural "wait as long as it takes" in Rust (Kafka's idiom is
/// `poll(Duration.ofMillis(Long.MAX_VALUE))`); a poll with it returns what is there
/// instead of overflowing `Instant + Duration` and panicking.
#[test]
fn a_poll_with_an_unbounded_timeout_returns_available_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    broker
        .producer(ProducerConfig::default())
        .send_blocking(ProducerRecord::new("t", b"there"))
        .unwrap();
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    consumer.subscribe(&["t"]).unwrap();
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        consumer.poll(Duration::MAX)
    }));
    let records = polled.expect("poll(Duration::MAX) panicked").unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"there"[..]));
}

/// A producer configured never to append by time (`linger: Duration::MAX`: batches go
/// when full or flushed) sends without panicking.
#[test]
fn a_producer_with_an_unbounded_linger_sends_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let producer = broker.producer(ProducerConfig {
        linger: Duration::MAX,
        ..ProducerConfig::default()
    });
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        producer.send(ProducerRecord::new("t", b"v"))
    }));
    let handle = sent
        .expect("send with linger = Duration::MAX panicked")
        .unwrap();
    assert!(!handle.is_done(), "nothing appends it before a flush");
    producer.flush().unwrap();
    assert_eq!(handle.wait().unwrap().offset, 0);
}

// ---------------------------------------------------------------------------------------
// A write error poisons its partition.
//
// Root ignores file permissions, so the write error comes from `RLIMIT_FSIZE` instead: a
// child process (this test binary again) runs under `ulimit -f` with SIGXFSZ ignored, so
// a write past the limit fails with EFBIG as a full disk would fail it with ENOSPC. The
// limit is per file, so the other partition of the topic keeps working.

#[cfg(unix)]
const POISON_CHILD_ENV: &str = "PARTLOG_POISON_CHILD";
#[cfg(unix)]
const POISON_TEST: &str = "a_failed_write_poisons_its_partition_until_reopened";
/// 64 blocks of 512 bytes (dash) or 1024 bytes (bash): 32 or 64 KiB per file.
#[cfg(unix)]
const FSIZE_BLOCKS: u32 = 64;

#[cfg(unix)]
fn poison_topic_config() -> TopicConfig {
    TopicConfig {
        // Small preallocated indexes: their files must fit under the limit too.
        segment_index_bytes: 1024,
        ..TopicConfig::default()
    }
}

#[cfg(unix)]
fn poison_value(i: u32) -> Vec<u8> {
    let mut v = format!("record-{i}-").into_bytes();
    v.resize(1000, b'0' + (i % 10) as u8);
    v
}

#[cfg(unix)]
#[test]
fn a_failed_write_poisons_its_partition_until_reopened() {
    if let Some(dir) = std::env::var_os(POISON_CHILD_ENV) {
        poison_child(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {FSIZE_BLOCKS} && exec \"$0\" \"$@\""
        ))
        .arg(&exe)
        .args([POISON_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(POISON_CHILD_ENV, &data)
        .output()
        .expect("run /bin/sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let acked: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("acked "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        stdout.lines().any(|l| l == "child done"),
        "the child did not finish:\n{stdout}\n{stderr}"
    );
    assert!(
        acked.len() > 5,
        "too few appends before the limit: {acked:?}"
    );

    // Reopened without the limit: the poison is gone, every acknowledged record is there,
    // and the torn write (if any) was cut.
    let broker = open(&data);
    assert!(
        !broker.had_clean_shutdown(),
        "a poisoned close writes no marker"
    );
    let p0 = broker.partition("full", 0).unwrap();
    assert_eq!(p0.log().poisoned(), None);
    assert_eq!(p0.log_end_offset(), acked.len() as i64);
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    consumer.assign(&[TopicPartition::new("full", 0)]).unwrap();
    let mut read = Vec::new();
    while read.len() < acked.len() {
        let records = consumer.poll(Duration::from_secs(10)).unwrap();
        assert!(!records.is_empty());
        read.extend(records);
    }
    for (i, r) in read.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(&poison_value(acked[i])[..]));
    }
    let m = broker
        .producer(ProducerConfig::default())
        .send_blocking(ProducerRecord::new("full", b"after reopen").partition(0))
        .unwrap();
    assert_eq!(m.offset, acked.len() as i64);
    assert_eq!(broker.partition("full", 1).unwrap().log_end_offset(), 1);
    broker.close().unwrap();
}

/// Runs under `ulimit -f`: fills partition 0 until a write fails and checks what the
/// caller sees; prints `acked <i>` for each record appended to partition 0.
#[cfg(unix)]
fn poison_child(data: &Path) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    let broker = open(data);
    broker
        .create_topic("full", 2, poison_topic_config())
        .unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let segment: PathBuf = data.join("full-0").join("00000000000000000000.log");
    let mut i = 0u32;
    let first_error = loop {
        let value = poison_value(i);
        match producer.send_blocking(ProducerRecord::new("full", &value).partition(0)) {
            Ok(m) => {
                assert_eq!(m.offset, i64::from(i));
                writeln!(out, "acked {i}").unwrap();
                out.flush().unwrap();
            }
            Err(e) => break e,
        }
        i += 1;
        assert!(i < 10_000, "the file size limit never stopped the writes");
    };

    // The failed append reaches the caller, naming the file and the OS error.
    let Error::BatchFailed(cause) = &first_error else {
        panic!("expected BatchFailed, got {first_error:?}");
    };
    match &**cause {
        Error::Io { path, source } => {
            assert_eq!(path, &segment);
            assert_eq!(source.raw_os_error(), Some(27), "EFBIG: {source}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let io_message = cause.to_string();
    assert!(
        io_message.starts_with(&format!("I/O error on {}: ", segment.display())),
        "{io_message}"
    );
    assert_eq!(
        first_error.to_string(),
        format!("the batch holding this record failed: {io_message}")
    );

    // The partition now refuses writes, even small ones, naming the first failure.
    let p0 = broker.partition("full", 0).unwrap();
    assert_eq!(p0.log().poisoned().as_deref(), Some(io_message.as_str()));
    let poisoned =
        format!("full-0 is poisoned by an earlier failure ({io_message}); reopen it to recover");
    let err = producer
        .send_blocking(ProducerRecord::new("full", b"tiny").partition(0))
        .unwrap_err();
    match &err {
        Error::BatchFailed(inner) => {
            assert!(
                matches!(&**inner, Error::Poisoned { partition, cause }
                    if partition == "full-0" && *cause == io_message),
                "{inner:?}"
            );
            assert_eq!(inner.to_string(), poisoned);
        }
        other => panic!("expected BatchFailed(Poisoned), got {other:?}"),
    }
    assert_eq!(
        p0.log_end_offset(),
        i64::from(i),
        "nothing published after the failure"
    );
    let err = broker.flush().unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err:?}");
    assert_eq!(err.to_string(), poisoned);

    // Partition 1 is not affected.
    let m = producer
        .send_blocking(ProducerRecord::new("full", b"other partition").partition(1))
        .unwrap();
    assert_eq!((m.partition, m.offset), (1, 0));

    // Close reports the poison and leaves no clean-shutdown marker.
    let err = broker.close().unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err:?}");
    assert!(!data.join(".kafka_cleanshutdown").exists());
    writeln!(out, "child done").unwrap();
    out.flush().unwrap();
}
