//! Compaction follows Kafka's cleaner (reference §5.2):
//!
//! - the latest record per key survives, at its original offset; batches keep their base
//!   offset and `lastOffsetDelta`, so reads and consumers step over the gaps;
//! - a tombstone survives its first pass with the delete-horizon bit set and
//!   `baseTimestamp` = now + `delete.retention.ms`, and goes in the first pass after it;
//! - records of an aborted transaction go (the golden Kafka segment has one), and its
//!   ABORT marker goes once its horizon passed, leaving Kafka's empty batch at the end;
//! - the active segment is never touched, and a dedupe buffer too small for the dirty
//!   range makes several passes that end in the same state;
//! - keyless records are refused on compacted topics.

use std::collections::BTreeMap;
use std::sync::Arc;

use partlog::{
    BatchBuilder, Broker, BrokerConfig, CleanerConfig, CleanupPolicy, Codecs, CompactionConfig,
    Compression, ConsumerConfig, Error, Log, LogConfig, LogOptions, ManualClock, OffsetReset,
    ProducerConfig, ProducerRecord, TopicConfig, TopicPartition,
};

const T0: i64 = 1_700_000_000_000;

fn open_log(dir: &std::path::Path, clock: Arc<ManualClock>) -> Log {
    let options = LogOptions {
        clock,
        ..LogOptions::default()
    };
    Log::open_with(dir.join("t-0"), LogConfig::default(), options).unwrap()
}

/// Every record from the log start to the log end: (offset, key, value).
type Rec = (i64, Vec<u8>, Option<Vec<u8>>);
fn all(log: &Log) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let batches = log.read(next, 1 << 20).unwrap();
        assert!(!batches.is_empty(), "no batch at {next}");
        for b in batches {
            for r in b.records(log.codecs()).unwrap() {
                let r = r.unwrap();
                if r.offset >= next && !b.is_control() {
                    out.push((
                        r.offset,
                        r.key.unwrap().to_vec(),
                        r.value.map(|v| v.to_vec()),
                    ));
                }
            }
            next = b.next_offset();
        }
    }
    out
}

fn put(log: &Log, records: &[(&str, Option<&str>)], compression: Compression) {
    let mut b = BatchBuilder::new(compression);
    for (k, v) in records {
        b.push(T0, Some(k.as_bytes()), v.map(str::as_bytes), &[]);
    }
    log.append(b.build(&Codecs::default()).unwrap()).unwrap();
}

#[test]
fn latest_value_per_key_with_offsets_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = open_log(dir.path(), clock.clone());
    put(
        &log,
        &[("a", Some("a0")), ("b", Some("b0")), ("c", Some("c0"))],
        Compression::None,
    );
    log.roll_now().unwrap();
    put(&log, &[("a", Some("a1")), ("b", None)], Compression::Lz4);
    put(&log, &[("d", Some("d0"))], Compression::Gzip);
    log.roll_now().unwrap();
    put(&log, &[("a", Some("active"))], Compression::None); // active: untouched
    let config = CompactionConfig {
        delete_retention_ms: 1000,
        ..CompactionConfig::default()
    };
    let r = log.compact(&config).unwrap();
    assert_eq!((r.first_dirty_offset, r.end_offset), (0, 6));
    assert_eq!(r.records_removed, 2);
    let expect = vec![
        (2, b"c".to_vec(), Some(b"c0".to_vec())),
        (3, b"a".to_vec(), Some(b"a1".to_vec())),
        (4, b"b".to_vec(), None),
        (5, b"d".to_vec(), Some(b"d0".to_vec())),
        (6, b"a".to_vec(), Some(b"active".to_vec())),
    ];
    assert_eq!(all(&log), expect);
    // The first batch kept its base offset and last offset delta: a read at 0 or 1 lands
    // on it and goes on at 3.
    let first = &log.read(0, 1).unwrap()[0];
    assert_eq!(
        (
            first.base_offset(),
            first.last_offset(),
            first.records_count()
        ),
        (0, 2, 1)
    );
    let tomb = &log.read(4, 1).unwrap()[0];
    assert!(tomb.has_delete_horizon());
    assert_eq!(tomb.base_timestamp(), T0 + 1000);
    // Before the horizon the tombstone stays; after it, it goes.
    clock.set(T0 + 999);
    log.compact(&config).unwrap();
    assert_eq!(all(&log), expect);
    clock.set(T0 + 1000);
    log.compact(&config).unwrap();
    let mut expect2 = expect.clone();
    expect2.remove(2);
    assert_eq!(all(&log), expect2);
    // A reopen reads the same.
    log.close().unwrap();
    drop(log);
    let log = open_log(dir.path(), clock);
    assert_eq!(all(&log), expect2);
    assert_eq!(log.log_end_offset(), 7);
}

#[test]
fn aborted_transaction_of_the_golden_segment_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("t-0");
    std::fs::create_dir_all(&part).unwrap();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-golden/00000000000000000000.log");
    std::fs::copy(golden, part.join("00000000000000000000.log")).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = open_log(dir.path(), clock.clone());
    assert_eq!(log.log_end_offset(), 29);
    log.roll_now().unwrap();
    let config = CompactionConfig::default();
    let r = log.compact(&config).unwrap();
    assert_eq!(r.end_offset, 29);
    let got = all(&log);
    let keys: Vec<(i64, String, bool)> = got
        .iter()
        .map(|(o, k, v)| (*o, String::from_utf8(k.clone()).unwrap(), v.is_some()))
        .collect();
    let expect: Vec<(i64, String, bool)> = (0..5)
        .map(|i| (20 + i, format!("key-{i}"), i != 1))
        .collect();
    assert_eq!(
        keys, expect,
        "the zstd batch's records are the latest; 25-27 aborted"
    );
    let batches = log.read(25, 1 << 20).unwrap();
    assert_eq!(batches.len(), 1, "the aborted data batch is gone");
    assert!(batches[0].is_control() && batches[0].has_delete_horizon());
    // After the horizon, the marker and the tombstone go; the marker's batch stays empty
    // as the last batch of the round, so the log still ends at 29.
    clock.set(T0 + config.delete_retention_ms);
    log.compact(&config).unwrap();
    let last = log.read(28, 1 << 20).unwrap();
    assert_eq!((last[0].base_offset(), last[0].records_count()), (28, 0));
    assert_eq!(all(&log).len(), 4);
    log.close().unwrap();
    drop(log);
    let log = open_log(dir.path(), clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 29));
    assert_eq!(all(&log).len(), 4);
}

#[test]
fn a_small_dedupe_buffer_takes_several_passes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = open_log(dir.path(), clock);
    for round in 0..4 {
        for k in 0..10 {
            let v = format!("{round}");
            put(&log, &[(&format!("k{k}"), Some(&v))], Compression::None);
        }
        log.roll_now().unwrap();
    }
    let config = CompactionConfig {
        // Five two-byte keys and their per-entry overhead.
        dedupe_buffer_bytes: 5 * (2 + partlog::MAP_ENTRY_OVERHEAD),
        ..CompactionConfig::default()
    };
    let mut passes = 0;
    while log.first_dirty_offset() < 40 {
        let r = log.compact(&config).unwrap();
        assert!(r.end_offset > r.first_dirty_offset, "every pass progresses");
        passes += 1;
    }
    assert!(passes > 1, "the buffer holds 5 keys, not 10");
    let got: BTreeMap<Vec<u8>, Vec<u8>> = all(&log)
        .into_iter()
        .map(|(_, k, v)| (k, v.unwrap()))
        .collect();
    assert_eq!(got.len(), 10);
    assert!(got.values().all(|v| v == b"3"));
    assert_eq!(all(&log).len(), 10);
}

#[test]
fn compacted_topics_refuse_keyless_records_and_consumers_skip_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        cleaner: CleanerConfig {
            enable: false,
            ..CleanerConfig::default()
        },
        ..BrokerConfig::default()
    };
    let broker = Broker::open(dir.path(), config).unwrap();
    let topic = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..TopicConfig::default()
    };
    broker.create_topic("c", 1, topic).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let err = producer.send(ProducerRecord::new("c", b"v")).unwrap_err();
    assert!(matches!(err, Error::KeylessRecordOnCompactedTopic { ref topic } if topic == "c"));
    assert!(err.to_string().contains("without a key"), "{err}");
    for i in 0..20 {
        let v = format!("v{i}");
        let rec =
            ProducerRecord::new("c", v.as_bytes()).key(if i % 2 == 0 { b"even" } else { b"odd" });
        producer.send_blocking(rec).unwrap();
    }
    producer.flush().unwrap();
    let log = broker.partition("c", 0).unwrap().log().clone();
    log.roll_now().unwrap();
    let reports = broker.clean_topic("c").unwrap();
    assert_eq!(reports[0].compaction.as_ref().unwrap().records_removed, 18);
    let d = broker.describe_topic("c").unwrap();
    assert_eq!(d.partitions[0].dirty_ratio.get(), 0.0);
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    consumer.assign(&[TopicPartition::new("c", 0)]).unwrap();
    let got: Vec<(i64, Vec<u8>)> = consumer
        .poll(std::time::Duration::from_millis(100))
        .unwrap()
        .into_iter()
        .map(|r| (r.offset, r.value.unwrap().to_vec()))
        .collect();
    assert_eq!(got, vec![(18, b"v18".to_vec()), (19, b"v19".to_vec())]);
    // A position inside a gap continues at the next offset that exists.
    consumer.seek(&TopicPartition::new("c", 0), 5).unwrap();
    let got = consumer
        .poll(std::time::Duration::from_millis(100))
        .unwrap();
    assert_eq!(got.first().map(|r| r.offset), Some(18));
    drop(consumer);
    drop(producer);
    broker.close().unwrap();
}
