//! Retention deletes whole segments from the oldest (reference §5.1):
//!
//! - by time, judged by each segment's largest timestamp under an injected clock, at the
//!   exact boundary `now − largest > retention.ms`;
//! - by size, at the exact boundary `total − segment ≥ retention.bytes`;
//! - never the active segment: when every segment qualifies, the log rolls first and
//!   keeps an empty active segment at the log end offset, and appends go on from there;
//! - `delete_records` moves the log start offset into a segment without deleting it,
//!   reads below it fail naming the valid range, and a broker reopen keeps it;
//! - `Broker::clean_topic` applies the topic's retention with the broker's clock.

use std::sync::Arc;

use partlog::{
    BatchBuilder, Broker, BrokerConfig, CleanerConfig, Codecs, Compression, Error, Log, LogConfig,
    LogOptions, ManualClock, TopicConfig,
};

const T0: i64 = 1_700_000_000_000;

/// Appends one single-record batch at timestamp `ts`, then rolls, so each batch is a
/// segment of its own (the same size for the same key and value lengths).
fn append_segment(log: &Log, ts: i64, value: &[u8]) -> i64 {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(ts, Some(b"k"), Some(value), &[]);
    let info = log.append(b.build(&Codecs::default()).unwrap()).unwrap();
    log.roll_now().unwrap();
    info.base_offset
}

fn open_log(dir: &std::path::Path, clock: Arc<ManualClock>) -> Log {
    let options = LogOptions {
        clock,
        ..LogOptions::default()
    };
    Log::open_with(dir.join("t-0"), LogConfig::default(), options).unwrap()
}

/// Every record from `from` to the log end, reading segment by segment.
fn values(log: &Log, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.log_end_offset() {
        for b in log.read(next, 1 << 20).unwrap() {
            for r in b.records(log.codecs()).unwrap() {
                let r = r.unwrap();
                if r.offset >= from {
                    out.push((r.offset, r.value.unwrap().to_vec()));
                }
            }
            next = b.next_offset();
        }
    }
    out
}

#[test]
fn time_retention_at_the_exact_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = open_log(dir.path(), clock.clone());
    for i in 0..4 {
        append_segment(&log, T0 + i * 1000, b"v");
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 1, 2, 3, 4]);
    let retention = 10_000;
    // Segment 1's largest timestamp is T0 + 1000: exactly retention old is kept.
    clock.set(T0 + 1000 + retention);
    let r = log.apply_retention(retention, -1).unwrap();
    assert_eq!(r.deleted_segments, vec![0]);
    assert_eq!(log.log_start_offset(), 1);
    assert_eq!(log.segment_base_offsets(), vec![1, 2, 3, 4]);
    clock.advance(1);
    let r = log.apply_retention(retention, -1).unwrap();
    assert_eq!(r.deleted_segments, vec![1]);
    assert_eq!((r.log_start_offset, log.log_start_offset()), (2, 2));
    assert!(!dir.path().join("t-0/00000000000000000001.log").exists());
    let err = log.read(1, 1 << 20).unwrap_err();
    assert!(matches!(
        err,
        Error::OffsetOutOfRange {
            offset: 1,
            log_start_offset: 2,
            log_end_offset: 4,
            ..
        }
    ));
    assert!(err.to_string().contains("valid offsets are 2..=4"), "{err}");
    assert_eq!(
        values(&log, 2),
        vec![(2, b"v".to_vec()), (3, b"v".to_vec())]
    );
    // -1 disables the rule.
    clock.advance(1_000_000);
    assert!(
        log.apply_retention(-1, -1)
            .unwrap()
            .deleted_segments
            .is_empty()
    );
}

#[test]
fn when_everything_expires_the_log_rolls_and_keeps_an_empty_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = open_log(dir.path(), clock.clone());
    append_segment(&log, T0, b"a");
    let mut b = BatchBuilder::new(Compression::None);
    b.push(T0, Some(b"k"), Some(b"b"), &[]);
    log.append(b.build(&Codecs::default()).unwrap()).unwrap(); // into the active segment
    clock.set(T0 + 100);
    let r = log.apply_retention(50, -1).unwrap();
    assert_eq!(r.deleted_segments, vec![0, 1]);
    assert_eq!(log.segment_base_offsets(), vec![2]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 2));
    assert_eq!(append_segment(&log, T0 + 100, b"c"), 2);
    assert_eq!(values(&log, 2), vec![(2, b"c".to_vec())]);
}

#[test]
fn size_retention_at_the_exact_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = open_log(dir.path(), clock.clone());
    for i in 0..4 {
        append_segment(&log, T0 + i, b"same-size");
    }
    let seg = log.size_bytes() as i64 / 4;
    let total = log.size_bytes() as i64;
    // One byte short of room for deleting a segment: nothing goes.
    assert!(
        log.apply_retention(-1, total - seg + 1)
            .unwrap()
            .deleted_segments
            .is_empty()
    );
    assert!(
        log.apply_retention(-1, total)
            .unwrap()
            .deleted_segments
            .is_empty()
    );
    // Exactly one segment over: the oldest goes.
    assert_eq!(
        log.apply_retention(-1, total - seg)
            .unwrap()
            .deleted_segments,
        vec![0]
    );
    assert_eq!(log.size_bytes() as i64, total - seg);
    // Two and a half segments over: two go, the rest stays over by half a segment.
    let total = log.size_bytes() as i64;
    let r = log.apply_retention(-1, total - 2 * seg - seg / 2).unwrap();
    assert_eq!(r.deleted_segments, vec![1, 2]);
    assert_eq!(r.deleted_bytes as i64, 2 * seg);
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(values(&log, 3), vec![(3, b"same-size".to_vec())]);
}

#[test]
fn delete_records_moves_the_start_inside_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = open_log(dir.path(), clock);
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..5u8 {
        b.push(T0, Some(b"k"), Some(&[i]), &[]);
    }
    log.append(b.build(&Codecs::default()).unwrap()).unwrap();
    log.roll_now().unwrap();
    append_segment(&log, T0, &[5]);
    assert_eq!(log.delete_records(3).unwrap(), 3);
    assert_eq!(
        log.segment_base_offsets(),
        vec![0, 5, 6],
        "segment 0 keeps its bytes"
    );
    assert!(matches!(
        log.read(2, 100),
        Err(Error::OffsetOutOfRange {
            log_start_offset: 3,
            ..
        })
    ));
    assert_eq!(
        values(&log, 3),
        vec![(3, vec![3]), (4, vec![4]), (5, vec![5])]
    );
    // Never backwards; past the end is an error naming the range.
    assert_eq!(log.delete_records(1).unwrap(), 3);
    let err = log.delete_records(7).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OffsetOutOfRange {
                offset: 7,
                log_end_offset: 6,
                ..
            }
        ),
        "{err}"
    );
    // At the next segment's base the whole first segment goes.
    assert_eq!(log.delete_records(5).unwrap(), 5);
    assert_eq!(log.segment_base_offsets(), vec![5, 6]);
}

#[test]
fn broker_retention_uses_its_clock_and_delete_records_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let config = || BrokerConfig {
        clock: clock.clone(),
        cleaner: CleanerConfig {
            enable: false,
            ..CleanerConfig::default()
        },
        ..BrokerConfig::default()
    };
    let broker = Broker::open(dir.path(), config()).unwrap();
    let topic = TopicConfig {
        retention_ms: 1000,
        ..TopicConfig::default()
    };
    broker.create_topic("t", 1, topic).unwrap();
    let log = broker.partition("t", 0).unwrap().log().clone();
    for i in 0..3 {
        append_segment(&log, T0 + i * 600, b"v");
    }
    clock.set(T0 + 1601);
    let reports = broker.clean_topic("t").unwrap();
    assert_eq!(reports[0].retention.deleted_segments, vec![0, 1]);
    assert_eq!(reports[0].retention.log_start_offset, 2);
    assert_eq!(broker.delete_records("t", 0, 3).unwrap(), 3);
    drop(log);
    broker.close().unwrap();
    let broker = Broker::open(dir.path(), config()).unwrap();
    let p = broker.partition("t", 0).unwrap();
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (3, 3));
    let d = broker.describe_topic("t").unwrap();
    assert_eq!(d.partitions[0].log_start_offset, 3);
    broker.close().unwrap();
}

#[test]
fn a_closed_log_refuses_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Arc::new(ManualClock::new(T0)));
    append_segment(&log, T0, b"v");
    log.close().unwrap();
    assert!(matches!(log.apply_retention(0, 0), Err(Error::Closed(_))));
    assert!(matches!(log.delete_records(1), Err(Error::Closed(_))));
    let compaction = partlog::CompactionConfig::default();
    assert!(matches!(log.compact(&compaction), Err(Error::Closed(_))));
    assert_eq!(log.segment_base_offsets(), vec![0, 1]);
}
