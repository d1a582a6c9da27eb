//! Regression tests for bugs found reviewing the cleanup code (retention, delete_records,
//! compaction, the swap protocol and the broker's cleaner).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use partlog::{
    BatchBuilder, Broker, BrokerConfig, CleanerConfig, CleanupPolicy, Codecs, CompactionConfig,
    Compression, Error, Log, LogConfig, LogOptions, ManualClock, SwapStep, TopicConfig,
};

const T0: i64 = 1_700_000_000_000;

fn open(dir: &Path, log_start_offset: i64) -> Log {
    let options = LogOptions {
        clock: Arc::new(ManualClock::new(T0)),
        log_start_offset,
        ..LogOptions::default()
    };
    Log::open_with(dir.join("t-0"), LogConfig::default(), options).unwrap()
}

fn put(log: &Log, key: &str, value: &str) {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(T0, Some(key.as_bytes()), Some(value.as_bytes()), &[]);
    log.append(b.build(&Codecs::default()).unwrap()).unwrap();
}

/// Three sealed segments, `k0` overwritten in the last one (so compaction changes the
/// first), and an empty active segment.
fn three_segments(log: &Log) {
    put(log, "k0", "a");
    put(log, "k1", "a");
    log.roll_now().unwrap();
    put(log, "k2", "a");
    put(log, "k3", "a");
    log.roll_now().unwrap();
    put(log, "k0", "b");
    put(log, "k4", "a");
    log.roll_now().unwrap();
}

/// key → (offset, value) of the latest record per key at or above the log start.
fn latest(log: &Log) -> BTreeMap<String, (i64, String)> {
    let mut out = BTreeMap::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        for b in log.read(next, 1 << 20).unwrap() {
            for r in b.records(log.codecs()).unwrap() {
                let r = r.unwrap();
                if r.offset >= next {
                    let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                    let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                    out.insert(key, (r.offset, value));
                }
            }
            next = b.next_offset();
        }
    }
    out
}

fn fail_at_swap_list(log: &Log) {
    log.set_swap_hook(Some(Arc::new(|step: &SwapStep| match step {
        SwapStep::SwapList => Err(Error::Closed("injected swap failure".into())),
        _ => Ok(()),
    })));
}

/// After a swap failed past its renames, the segments listed in memory no longer match
/// the files on disk: deleting the oldest one by name used to unlink the cleaner's output
/// (which holds every cleaned segment's records), so the reopened log lost the records of
/// the other cleaned segments.
#[test]
fn delete_records_after_a_failed_swap_loses_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 0);
    three_segments(&log);
    let before = latest(&log);
    fail_at_swap_list(&log);
    assert!(log.compact(&CompactionConfig::default()).is_err());
    let result = log.delete_records(2);
    let start = log.log_start_offset();
    drop(log);
    let log = open(dir.path(), start);
    let after = latest(&log);
    let expected: BTreeMap<_, _> = before
        .into_iter()
        .filter(|(_, (offset, _))| *offset >= start)
        .collect();
    assert_eq!(after, expected);
    assert_eq!(log.log_end_offset(), 6);
    assert!(
        matches!(result, Err(Error::CleanerDisabled { .. })),
        "{result:?}"
    );
}

/// The same with retention by size deleting the oldest segment.
#[test]
fn retention_after_a_failed_swap_loses_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 0);
    three_segments(&log);
    let before = latest(&log);
    fail_at_swap_list(&log);
    assert!(log.compact(&CompactionConfig::default()).is_err());
    let result = log.apply_retention(-1, 1);
    let start = log.log_start_offset();
    drop(log);
    let log = open(dir.path(), start);
    let after = latest(&log);
    let expected: BTreeMap<_, _> = before
        .into_iter()
        .filter(|(_, (offset, _))| *offset >= start)
        .collect();
    assert_eq!(after, expected);
    assert!(
        matches!(result, Err(Error::CleanerDisabled { .. })),
        "{result:?}"
    );
    assert_eq!(start, 0);
}

fn broker_config() -> BrokerConfig {
    BrokerConfig {
        cleaner: CleanerConfig {
            enable: false,
            ..CleanerConfig::default()
        },
        ..BrokerConfig::default()
    }
}

/// One partition whose cleaning fails (here: its swap fails, so its cleaning is
/// disabled) used to stop the pass over its topic, so the topic's later partitions were
/// never compacted nor had retention applied.
#[test]
fn a_failing_partition_does_not_stop_cleaning_of_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), broker_config()).unwrap();
    let topic = TopicConfig {
        cleanup_policy: CleanupPolicy::CompactDelete,
        retention_ms: -1,
        ..TopicConfig::default()
    };
    broker.create_topic("t", 2, topic).unwrap();
    let logs: Vec<Arc<Log>> = (0..2)
        .map(|p| broker.partition("t", p).unwrap().log().clone())
        .collect();
    for log in &logs {
        three_segments(log);
    }
    fail_at_swap_list(&logs[0]);
    assert!(broker.clean_now().is_err());
    // Partition 1 was compacted: k0's first record is gone, its first dirty offset moved.
    assert_eq!(logs[1].first_dirty_offset(), 6);
    let p1 = latest(&logs[1]);
    assert_eq!(p1["k0"], (4, "b".to_string()));
    assert_eq!(logs[1].read(0, 1 << 20).unwrap()[0].base_offset(), 1);
    // And the next pass still reports partition 0's failure.
    assert!(broker.clean_now().is_err());
    broker.close().unwrap();
}

fn put_at(log: &Log, ts: i64, value: &str) -> i64 {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(ts, Some(b"k"), Some(value.as_bytes()), &[]);
    log.append(b.build(&Codecs::default()).unwrap())
        .unwrap()
        .base_offset
}

/// Retention by time decided on a snapshot of the segment list that the whole log was
/// expired, then rolled the active segment and deleted it — with whatever an append had
/// written to it in between: a fresh record, acknowledged, vanished at once. Appends race
/// the pass here; every fresh record must stay.
#[test]
fn retention_never_deletes_a_record_appended_during_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let now = T0 + 3_600_000;
    let options = LogOptions {
        clock: Arc::new(ManualClock::new(now)),
        ..LogOptions::default()
    };
    let log =
        Arc::new(Log::open_with(dir.path().join("t-0"), LogConfig::default(), options).unwrap());
    for i in 0..120 {
        put_at(&log, T0, "old");
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let appender = {
            let (log, barrier) = (log.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..i % 7 {
                    std::hint::spin_loop();
                }
                put_at(&log, now, "fresh")
            })
        };
        barrier.wait();
        log.apply_retention(60_000, -1).unwrap();
        let fresh = appender.join().unwrap();
        assert!(
            log.log_start_offset() <= fresh,
            "round {i}: the fresh record at {fresh} was deleted (log start {})",
            log.log_start_offset()
        );
        let batches = log.read(fresh, 1 << 20).unwrap();
        assert_eq!(batches[0].base_offset(), fresh);
        // The fresh record would stop the next pass at its segment: drop everything so
        // the next round starts with an expired log again.
        log.roll_now().unwrap();
        log.delete_records(log.log_end_offset()).unwrap();
    }
}

/// A marker emptied after its delete horizon stays as an empty control batch (the last
/// batch of its group). Every later pass used to "rebuild" it — to the same bytes — and
/// so rewrote and swapped its whole segment again, forever: compaction never settled.
#[test]
fn an_emptied_marker_does_not_make_every_pass_rewrite_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("t-0");
    std::fs::create_dir_all(&part).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-golden/00000000000000000000.log");
    std::fs::copy(golden, part.join("00000000000000000000.log")).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let options = LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    };
    let log = Log::open_with(&part, LogConfig::default(), options).unwrap();
    log.roll_now().unwrap();
    let config = CompactionConfig::default();
    log.compact(&config).unwrap();
    clock.set(T0 + config.delete_retention_ms);
    log.compact(&config).unwrap();
    let last = log.read(28, 1 << 20).unwrap();
    assert!(last[0].is_control());
    assert_eq!((last[0].base_offset(), last[0].records_count()), (28, 0));
    let before = std::fs::read(part.join("00000000000000000000.log")).unwrap();
    for _ in 0..2 {
        let r = log.compact(&config).unwrap();
        assert_eq!((r.segments_cleaned, r.bytes_written), (0, 0), "{r:?}");
    }
    let after = std::fs::read(part.join("00000000000000000000.log")).unwrap();
    assert_eq!(after, before);
}

/// The records a read_committed consumer would take from `log.read(from)`, as the
/// consumer filters them: aborted transactions first, then the batches.
fn committed_offsets(log: &Log, from: i64) -> Vec<i64> {
    let end = log.log_end_offset();
    let aborted = log.aborted_transactions(from, end).unwrap();
    let mut out = Vec::new();
    for b in log.read(from, 1 << 20).unwrap() {
        let is_aborted = b.is_transactional()
            && aborted.iter().any(|t| {
                t.producer_id == b.producer_id()
                    && t.first_offset <= b.base_offset()
                    && b.last_offset() < t.last_offset
            });
        if b.is_control() || is_aborted {
            continue;
        }
        out.extend(b.records(log.codecs()).unwrap().map(|r| r.unwrap().offset));
    }
    out
}

/// While a swap is under way the segment list still holds the old segments (with the
/// aborted records), but their `.txnindex` files are already renamed `.deleted`:
/// `aborted_transactions` read them by name, found nothing, and a read_committed
/// consumer got the aborted records.
#[test]
fn read_committed_never_sees_aborted_records_during_a_swap() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("t-0");
    std::fs::create_dir_all(&part).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-golden/00000000000000000000.log");
    std::fs::copy(golden, part.join("00000000000000000000.log")).unwrap();
    let log = Arc::new(open(dir.path(), 0));
    log.roll_now().unwrap();
    let before = committed_offsets(&log, 0);
    assert!(!before.iter().any(|o| (25..=27).contains(o)), "{before:?}");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (weak, sink) = (Arc::downgrade(&log), seen.clone());
    log.set_swap_hook(Some(Arc::new(move |step: &SwapStep| {
        if let (SwapStep::ToFinal(_) | SwapStep::SwapList, Some(log)) = (step, weak.upgrade()) {
            sink.lock().unwrap().push(committed_offsets(&log, 0));
        }
        Ok(())
    })));
    log.compact(&CompactionConfig::default()).unwrap();
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    for offsets in seen.iter() {
        assert!(
            !offsets.iter().any(|o| (25..=27).contains(o)),
            "{offsets:?}"
        );
    }
}

/// Dropping the broker (its last handle) while the background cleaner was in a pass left
/// the cleaner thread holding the broker, and with it the directory lock, until the pass
/// ended: opening the directory again right away failed with `Error::Locked`.
#[test]
fn reopening_right_after_a_drop_during_a_cleaner_pass_works() {
    let dir = tempfile::tempdir().unwrap();
    let config = || BrokerConfig {
        cleaner: CleanerConfig {
            backoff: std::time::Duration::from_millis(10),
            ..CleanerConfig::default()
        },
        ..BrokerConfig::default()
    };
    let broker = Broker::open(dir.path(), config()).unwrap();
    let topic = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: partlog::Ratio::new(0.0).unwrap(),
        ..TopicConfig::default()
    };
    broker.create_topic("t", 1, topic).unwrap();
    let log = broker.partition("t", 0).unwrap().log().clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    log.set_swap_hook(Some(Arc::new(move |step: &SwapStep| {
        if *step == SwapStep::SwapList {
            let _ = tx.lock().unwrap().send(());
            std::thread::sleep(std::time::Duration::from_millis(700));
        }
        Ok(())
    })));
    three_segments(&log);
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the cleaner compacts by itself");
    drop(log);
    drop(broker);
    let broker = Broker::open(dir.path(), config()).unwrap();
    let log = broker.partition("t", 0).unwrap().log().clone();
    assert_eq!(latest(&log)["k0"], (4, "b".to_string()));
    broker.close().unwrap();
}

/// A log start offset checkpointed above the log end offset (delete_records up to records
/// a crash then lost before they were fsynced) was clamped down to the log end, so the
/// offsets below the deleted point were handed out again. Kafka's loader deletes every
/// segment and starts the log empty at the checkpointed start.
#[test]
fn a_checkpointed_start_above_the_log_end_starts_an_empty_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 0);
    for i in 0..3 {
        put(&log, "k", &format!("v{i}"));
    }
    log.roll_now().unwrap();
    for i in 3..5 {
        put(&log, "k", &format!("v{i}"));
    }
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), 8);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 8));
    assert!(matches!(
        log.read(4, 1 << 20),
        Err(Error::OffsetOutOfRange {
            log_start_offset: 8,
            log_end_offset: 8,
            ..
        })
    ));
    let mut b = BatchBuilder::new(Compression::None);
    b.push(T0, Some(b"k"), Some(b"new"), &[]);
    assert_eq!(
        log.append(b.build(&Codecs::default()).unwrap())
            .unwrap()
            .base_offset,
        8
    );
    assert_eq!(latest(&log)["k"], (8, "new".to_string()));
    drop(log);
    let log = open(dir.path(), 8);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 9));
    assert_eq!(latest(&log)["k"], (8, "new".to_string()));
}

/// The indexes the cleaner writes for its output are the ones recovery would rebuild
/// from the cleaned `.log` (byte for byte), and a clean reopen accepts them.
#[test]
fn cleaned_indexes_match_the_rebuilt_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let options = || LogOptions {
        clock: Arc::new(ManualClock::new(T0)),
        ..LogOptions::default()
    };
    let part = dir.path().join("t-0");
    let log = Log::open_with(&part, config.clone(), options()).unwrap();
    for round in 0..6 {
        for k in 0..8 {
            let mut b = BatchBuilder::new(Compression::None);
            let key = format!("key-{k}");
            let value = format!("value-{round}-{k}");
            let tombstone = (round + k) % 5 == 0;
            b.push(
                T0 + round * 1000 + k,
                Some(key.as_bytes()),
                (!tombstone).then_some(value.as_bytes()),
                &[],
            );
            log.append(b.build(&Codecs::default()).unwrap()).unwrap();
        }
        if round % 2 == 1 {
            log.roll_now().unwrap();
        }
    }
    let r = log.compact(&CompactionConfig::default()).unwrap();
    assert!(r.segments_written > 0, "{r:?}");
    log.close().unwrap();
    drop(log);
    let name = |ext: &str| part.join(format!("{:020}.{ext}", 0));
    let cleaned = (
        std::fs::read(name("index")).unwrap(),
        std::fs::read(name("timeindex")).unwrap(),
    );
    assert!(!cleaned.0.is_empty() && !cleaned.1.is_empty());
    std::fs::remove_file(name("index")).unwrap();
    std::fs::remove_file(name("timeindex")).unwrap();
    let log = Log::open_with(&part, config.clone(), options()).unwrap();
    log.close().unwrap();
    drop(log);
    let rebuilt = (
        std::fs::read(name("index")).unwrap(),
        std::fs::read(name("timeindex")).unwrap(),
    );
    assert_eq!(cleaned, rebuilt);
}

/// Kafka refuses DeleteRecords on a partition whose `cleanup.policy` does not include
/// `delete` (`PolicyViolationException`): a compacted-only topic keeps every key's latest
/// value. The broker moved its log start offset anyway.
#[test]
fn delete_records_is_refused_on_a_compact_only_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), broker_config()).unwrap();
    for (name, policy) in [
        ("c", CleanupPolicy::Compact),
        ("cd", CleanupPolicy::CompactDelete),
    ] {
        let topic = TopicConfig {
            cleanup_policy: policy,
            ..TopicConfig::default()
        };
        broker.create_topic(name, 1, topic).unwrap();
        three_segments(broker.partition(name, 0).unwrap().log());
    }
    let err = broker.delete_records("c", 0, 2).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyViolation { topic, partition: 0, .. } if topic == "c"),
        "{err:?}"
    );
    assert_eq!(broker.partition("c", 0).unwrap().log_start_offset(), 0);
    assert_eq!(broker.delete_records("cd", 0, 2).unwrap(), 2);
    broker.close().unwrap();
}
