//! The broker's background cleaner and concurrency:
//!
//! - with a short backoff, the cleaner thread compacts a compacted topic whose dirty
//!   ratio exceeds `min.cleanable.dirty.ratio` (0 here, so that it ends fully clean
//!   however the passes interleave with the sends) by itself, writes
//!   `cleaner-offset-checkpoint`, and `close` stops it; the next open reads the
//!   checkpoint back (the dirty ratio stays 0);
//! - appends and reads go on while compactions run over and over on another thread:
//!   every read sees offsets increasing and, per key, values in the order they were
//!   written, and at the end each key's latest value is the last one appended.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use partlog::{
    BatchBuilder, Broker, BrokerConfig, CleanerConfig, CleanupPolicy, Codecs, CompactionConfig,
    Compression, Log, LogConfig, ProducerConfig, ProducerRecord, TopicConfig,
};

#[test]
fn the_background_thread_compacts_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let config = || BrokerConfig {
        cleaner: CleanerConfig {
            backoff: Duration::from_millis(20),
            ..CleanerConfig::default()
        },
        ..BrokerConfig::default()
    };
    let broker = Broker::open(dir.path(), config()).unwrap();
    let topic = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: partlog::Ratio::new(0.0).unwrap(),
        segment_bytes: 300,
        ..TopicConfig::default()
    };
    broker.create_topic("bg", 1, topic).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    for i in 0..40 {
        let v = format!("v{i}");
        let k = format!("k{}", i % 3);
        producer
            .send_blocking(ProducerRecord::new("bg", v.as_bytes()).key(k.as_bytes()))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = broker.partition("bg", 0).unwrap();
    while broker.describe_topic("bg").unwrap().partitions[0]
        .dirty_ratio
        .get()
        > 0.0
    {
        assert!(Instant::now() < deadline, "the cleaner never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(broker.cleaner_error(), None);
    let first_dirty = p.log().first_dirty_offset();
    assert!(first_dirty > 0);
    let size = p.size_bytes();
    drop(p);
    drop(producer);
    broker.close().unwrap();
    let text = std::fs::read_to_string(dir.path().join("cleaner-offset-checkpoint")).unwrap();
    assert_eq!(text, format!("0\n1\nbg 0 {first_dirty}\n"));

    let broker = Broker::open(dir.path(), config()).unwrap();
    let p = broker.partition("bg", 0).unwrap();
    assert_eq!(p.log().first_dirty_offset(), first_dirty);
    assert_eq!(p.size_bytes(), size);
    broker.close().unwrap();
}

#[test]
fn appends_and_reads_go_on_during_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2048,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(dir.path().join("c-0"), config).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let cleaner = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut passes = 0;
            while !stop.load(Ordering::Relaxed) {
                log.compact(&CompactionConfig::default()).unwrap();
                passes += 1;
            }
            passes
        })
    };
    let reader = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                check_read(&log);
                reads += 1;
            }
            reads
        })
    };
    for seq in 0..600u32 {
        let mut b = BatchBuilder::new(Compression::None);
        let key = format!("k{}", seq % 7);
        b.push(0, Some(key.as_bytes()), Some(&seq.to_be_bytes()), &[]);
        log.append(b.build(&Codecs::default()).unwrap()).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(cleaner.join().unwrap() > 0);
    assert!(reader.join().unwrap() > 0);
    let latest = check_read(&log);
    for k in 0..7u32 {
        let last = (0..600u32).filter(|s| s % 7 == k).max().unwrap();
        assert_eq!(latest[format!("k{k}").as_bytes()], last);
    }
}

/// Reads the whole log, checks order, returns each key's last value.
fn check_read(log: &Log) -> HashMap<Vec<u8>, u32> {
    let mut last: HashMap<Vec<u8>, u32> = HashMap::new();
    let (mut next, end) = (log.log_start_offset(), log.log_end_offset());
    let mut prev = -1;
    while next < end {
        let batches = log.read(next, 1 << 16).unwrap();
        assert!(!batches.is_empty(), "no batch at {next} (end {end})");
        for b in batches {
            for r in b.records(log.codecs()).unwrap() {
                let r = r.unwrap();
                assert!(r.offset > prev);
                prev = r.offset;
                let v = u32::from_be_bytes(r.value.unwrap()[..].try_into().unwrap());
                let k = r.key.unwrap().to_vec();
                assert_eq!(v % 7, u32::from(k[1] - b'0'), "value {v} under key {k:?}");
                if let Some(p) = last.insert(k, v) {
                    assert!(p < v, "values of a key out of order: {p} then {v}");
                }
            }
            next = b.next_offset();
        }
    }
    last
}
