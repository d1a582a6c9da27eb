//! The consumer keeps positions the way Kafka's consumer does (reference §7.2):
//!
//! - `auto_offset_reset` earliest starts at the log start, latest at the log end, and an
//!   out-of-range position is reset by the same rule;
//! - after a poll the position is the last returned offset + 1;
//! - `seek` (also into the middle of a batch), `seek_to_beginning` and `seek_to_end`
//!   decide what the next poll returns;
//! - paused partitions return nothing and resume where they were;
//! - `max_poll_records` bounds every poll;
//! - `beginning_offsets`, `end_offsets` and `offsets_for_times` report the log's values;
//! - a poll with nothing to read returns empty at its timeout, and a parked poll is woken
//!   by a send from another thread;
//! - a subscription picks up partitions added later;
//! - on a LogAppendTime topic the stored timestamp is the append time, the same in the
//!   send's metadata and in the record read back;
//! - two consumers reading the same uncompressed record get values that point into the
//!   same memory (the segment's map), not copies;
//! - a poll that meets an error on one partition after taking records of another returns
//!   those records, and the next poll returns the error;
//! - a damaged batch or a malformed record ends the records before it, with the
//!   position past them, and the polls after it return the error, the position staying.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerRecord, ManualClock, OffsetReset,
    Producer, ProducerConfig, ProducerRecord, TimestampType, TopicConfig, TopicPartition,
    WaitStrategy,
};

const BASE_TS: i64 = 1_700_000_000_000;

fn open() -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    (dir, broker)
}

fn consumer(broker: &Broker, reset: OffsetReset) -> Consumer {
    broker.consumer(ConsumerConfig {
        auto_offset_reset: reset,
        ..ConsumerConfig::default()
    })
}

/// Sends `count` records to `partition` as one batch; record i has value `v<i>` and
/// timestamp `BASE_TS + 1000 * i`.
fn produce_batch(broker: &Broker, topic: &str, partition: i32, first: i64, count: i64) {
    let producer = broker.producer(ProducerConfig {
        linger: Duration::from_secs(3600),
        ..ProducerConfig::default()
    });
    let handles: Vec<_> = (first..first + count)
        .map(|i| {
            let value = format!("v{i}");
            producer
                .send(
                    ProducerRecord::new(topic, value.as_bytes())
                        .partition(partition)
                        .timestamp(BASE_TS + 1000 * i),
                )
                .unwrap()
        })
        .collect();
    producer.flush().unwrap();
    for (i, h) in (first..).zip(handles) {
        assert_eq!(h.wait().unwrap().offset, i, "offsets follow the sends");
    }
}

fn offsets(records: &[ConsumerRecord]) -> Vec<i64> {
    records.iter().map(|r| r.offset).collect()
}

fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.as_deref().unwrap().to_vec()).unwrap())
        .collect()
}

/// Polls until `n` records came (each poll may return fewer).
fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        let records = consumer.poll(Duration::from_secs(10)).unwrap();
        assert!(
            !records.is_empty(),
            "only {} of {n} records came",
            out.len()
        );
        out.extend(records);
    }
    assert_eq!(out.len(), n, "more records than expected");
    out
}

#[test]
fn earliest_starts_at_the_log_start_and_latest_at_the_log_end() {
    let (_dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 10);
    let tp = TopicPartition::new("t", 0);

    let mut earliest = consumer(&broker, OffsetReset::Earliest);
    earliest.assign(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(earliest.position(&tp).unwrap(), 0);
    let records = poll_n(&mut earliest, 10);
    assert_eq!(offsets(&records), (0..10).collect::<Vec<_>>());
    assert_eq!(values(&records)[3], "v3");

    let mut latest = consumer(&broker, OffsetReset::Latest);
    latest.assign(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(latest.position(&tp).unwrap(), 10);
    assert!(latest.poll(Duration::ZERO).unwrap().is_empty());
    produce_batch(&broker, "t", 0, 10, 2);
    let records = poll_n(&mut latest, 2);
    assert_eq!(offsets(&records), vec![10, 11]);

    // The default is latest, as in Kafka.
    assert_eq!(
        ConsumerConfig::default().auto_offset_reset,
        OffsetReset::Latest
    );
}

#[test]
fn an_out_of_range_position_is_reset_by_auto_offset_reset() {
    let (_dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 5);
    let tp = TopicPartition::new("t", 0);
    for (reset, expected) in [(OffsetReset::Earliest, 0), (OffsetReset::Latest, 5)] {
        let mut c = consumer(&broker, reset);
        c.assign(std::slice::from_ref(&tp)).unwrap();
        c.seek(&tp, 50).unwrap();
        assert_eq!(c.position(&tp).unwrap(), expected, "{reset:?}");
        c.seek(&tp, -7).unwrap();
        let records = c.poll(Duration::ZERO).unwrap();
        assert_eq!(
            records.first().map(|r| r.offset),
            (expected < 5).then_some(expected),
            "{reset:?}"
        );
    }
}

#[test]
fn the_position_after_a_poll_is_the_last_returned_offset_plus_one() {
    let (_dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 10);
    let tp = TopicPartition::new("t", 0);
    let mut c = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records: 3,
        ..ConsumerConfig::default()
    });
    c.assign(std::slice::from_ref(&tp)).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let records = c.poll(Duration::from_secs(10)).unwrap();
        let last = records.last().expect("records are there").offset;
        assert_eq!(
            c.position(&tp).unwrap(),
            last + 1,
            "after {:?}",
            offsets(&records)
        );
        seen.extend(offsets(&records));
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert!(c.poll(Duration::ZERO).unwrap().is_empty());
    assert_eq!(c.position(&tp).unwrap(), 10);
}

#[test]
fn seek_into_the_middle_of_a_batch_returns_from_the_seek_offset() {
    let (_dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 10);
    produce_batch(&broker, "t", 0, 10, 10);
    let partition = broker.partition("t", 0).unwrap();
    let batches = partition.read(0, 1 << 20).unwrap();
    let bounds: Vec<(i64, i64)> = batches
        .iter()
        .map(|b| (b.base_offset(), b.last_offset()))
        .collect();
    assert_eq!(bounds, vec![(0, 9), (10, 19)], "two batches of ten");

    let tp = TopicPartition::new("t", 0);
    let mut c = consumer(&broker, OffsetReset::Earliest);
    c.assign(std::slice::from_ref(&tp)).unwrap();
    c.seek(&tp, 5).unwrap();
    assert_eq!(c.position(&tp).unwrap(), 5);
    let records = poll_n(&mut c, 15);
    assert_eq!(offsets(&records), (5..20).collect::<Vec<_>>());
    assert_eq!(values(&records)[0], "v5");

    // Backwards into the second batch, and after reading part of it.
    c.seek(&tp, 13).unwrap();
    let records = poll_n(&mut c, 7);
    assert_eq!(offsets(&records), (13..20).collect::<Vec<_>>());
    assert_eq!(c.position(&tp).unwrap(), 20);
}

#[test]
fn seek_to_beginning_and_seek_to_end_move_to_the_log_bounds() {
    let (_dir, broker) = open();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 6);
    produce_batch(&broker, "t", 1, 0, 4);
    let tps = [TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
    let mut c = consumer(&broker, OffsetReset::Latest);
    c.assign(&tps).unwrap();
    assert!(
        c.poll(Duration::ZERO).unwrap().is_empty(),
        "latest: nothing yet"
    );

    c.seek_to_beginning(&tps).unwrap();
    assert_eq!(c.position(&tps[0]).unwrap(), 0);
    assert_eq!(c.position(&tps[1]).unwrap(), 0);
    let records = poll_n(&mut c, 10);
    let mut per_partition: HashMap<i32, Vec<i64>> = HashMap::new();
    for r in &records {
        per_partition.entry(r.partition).or_default().push(r.offset);
    }
    assert_eq!(per_partition[&0], (0..6).collect::<Vec<_>>());
    assert_eq!(per_partition[&1], (0..4).collect::<Vec<_>>());

    // Only the first partition goes back.
    c.seek_to_beginning(&tps[..1]).unwrap();
    let records = poll_n(&mut c, 6);
    assert!(records.iter().all(|r| r.partition == 0));

    c.seek(&tps[0], 2).unwrap();
    c.seek(&tps[1], 1).unwrap();
    c.seek_to_end(&tps).unwrap();
    assert_eq!(c.position(&tps[0]).unwrap(), 6);
    assert_eq!(c.position(&tps[1]).unwrap(), 4);
    assert!(c.poll(Duration::ZERO).unwrap().is_empty());
    produce_batch(&broker, "t", 1, 4, 1);
    let records = poll_n(&mut c, 1);
    assert_eq!((records[0].partition, records[0].offset), (1, 4));
}

#[test]
fn paused_partitions_return_nothing_and_resume_where_they_were() {
    let (_dir, broker) = open();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 10);
    produce_batch(&broker, "t", 1, 0, 10);
    let p0 = TopicPartition::new("t", 0);
    let p1 = TopicPartition::new("t", 1);
    let mut c = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records: 4,
        ..ConsumerConfig::default()
    });
    c.assign(&[p0.clone(), p1.clone()]).unwrap();
    // Read part of partition 0 first.
    c.pause(std::slice::from_ref(&p1)).unwrap();
    let records = c.poll(Duration::from_secs(10)).unwrap();
    assert_eq!(offsets(&records), vec![0, 1, 2, 3]);
    assert!(records.iter().all(|r| r.partition == 0));

    c.resume(std::slice::from_ref(&p1)).unwrap();
    c.pause(std::slice::from_ref(&p0)).unwrap();
    assert_eq!(c.paused(), vec![p0.clone()]);
    let mut from_p1 = Vec::new();
    while from_p1.len() < 10 {
        let records = c.poll(Duration::from_secs(10)).unwrap();
        assert!(!records.is_empty());
        assert!(
            records.iter().all(|r| r.partition == 1),
            "paused partition 0 returned records: {records:?}"
        );
        from_p1.extend(offsets(&records));
    }
    assert_eq!(from_p1, (0..10).collect::<Vec<_>>());
    // Everything of partition 1 is read and partition 0 is paused: nothing to return,
    // even when partition 0 gets more records.
    produce_batch(&broker, "t", 0, 10, 1);
    assert!(c.poll(Duration::from_millis(20)).unwrap().is_empty());
    assert_eq!(c.position(&p0).unwrap(), 4, "paused where it was");

    c.resume(std::slice::from_ref(&p0)).unwrap();
    assert!(c.paused().is_empty());
    let records = poll_n(&mut c, 7);
    assert_eq!(offsets(&records), (4..11).collect::<Vec<_>>());
    assert!(records.iter().all(|r| r.partition == 0));
}

#[test]
fn max_poll_records_bounds_every_poll() {
    let (_dir, broker) = open();
    broker.create_topic("t", 3, TopicConfig::default()).unwrap();
    for p in 0..3 {
        produce_batch(&broker, "t", p, 0, 100);
    }
    let mut c = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records: 7,
        ..ConsumerConfig::default()
    });
    c.subscribe(&["t"]).unwrap();
    let mut per_partition: HashMap<i32, Vec<i64>> = HashMap::new();
    let mut total = 0;
    let mut full_polls = 0;
    while total < 300 {
        let records = c.poll(Duration::from_secs(10)).unwrap();
        assert!(!records.is_empty());
        assert!(
            records.len() <= 7,
            "a poll returned {} records",
            records.len()
        );
        if records.len() == 7 {
            full_polls += 1;
        }
        total += records.len();
        for r in records {
            per_partition.entry(r.partition).or_default().push(r.offset);
        }
    }
    assert_eq!(total, 300);
    assert!(
        full_polls >= 300 / 7 - 3,
        "{full_polls} full polls: polls return too little"
    );
    for p in 0..3 {
        assert_eq!(
            per_partition[&p],
            (0..100).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
}

#[test]
fn beginning_end_and_time_offsets_report_the_log() {
    let (_dir, broker) = open();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    // Timestamps BASE_TS + 1000 * offset, in three batches.
    produce_batch(&broker, "t", 0, 0, 4);
    produce_batch(&broker, "t", 0, 4, 4);
    produce_batch(&broker, "t", 0, 8, 2);
    let p0 = TopicPartition::new("t", 0);
    let p1 = TopicPartition::new("t", 1);
    let tps = [p0.clone(), p1.clone()];
    // Not assigned: these are lookups, not positions.
    let c = consumer(&broker, OffsetReset::Latest);
    let begin = c.beginning_offsets(&tps).unwrap();
    let end = c.end_offsets(&tps).unwrap();
    assert_eq!(begin, HashMap::from([(p0.clone(), 0), (p1.clone(), 0)]));
    assert_eq!(end, HashMap::from([(p0.clone(), 10), (p1.clone(), 0)]));

    for (ts, expected) in [
        (0, Some((0, BASE_TS))),
        (BASE_TS, Some((0, BASE_TS))),
        (BASE_TS + 1, Some((1, BASE_TS + 1000))),
        (BASE_TS + 4500, Some((5, BASE_TS + 5000))),
        (BASE_TS + 8000, Some((8, BASE_TS + 8000))),
        (BASE_TS + 9000, Some((9, BASE_TS + 9000))),
        (BASE_TS + 9001, None),
    ] {
        let found = c
            .offsets_for_times(&HashMap::from([(p0.clone(), ts), (p1.clone(), ts)]))
            .unwrap();
        assert_eq!(
            found[&p0].map(|o| (o.offset, o.timestamp)),
            expected,
            "timestamp {ts}"
        );
        assert_eq!(
            found[&p1], None,
            "an empty partition has no offset for {ts}"
        );
    }
}

#[test]
fn a_poll_with_nothing_to_read_returns_empty_after_its_timeout() {
    let (_dir, broker) = open();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    for strategy in [
        WaitStrategy::Park,
        WaitStrategy::SpinThenPark { spins: 1000 },
        WaitStrategy::BusySpin,
    ] {
        let mut c = broker.consumer(ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            wait_strategy: strategy,
            ..ConsumerConfig::default()
        });
        c.subscribe(&["t"]).unwrap();
        let records = c.poll(Duration::from_millis(50)).unwrap();
        assert!(records.is_empty(), "{strategy:?}: {records:?}");
        assert!(c.poll(Duration::ZERO).unwrap().is_empty(), "{strategy:?}");
    }
    // No subscription at all: still just empty.
    let mut idle = broker.consumer(ConsumerConfig::default());
    assert!(idle.poll(Duration::from_millis(10)).unwrap().is_empty());
}

#[test]
fn a_parked_poll_is_woken_by_a_send_from_another_thread() {
    let (_dir, broker) = open();
    broker.create_topic("t", 3, TopicConfig::default()).unwrap();
    // Generous: a poll that returns before this can only have been woken by the append.
    let timeout = Duration::from_secs(60);
    for strategy in [
        WaitStrategy::Park,
        WaitStrategy::SpinThenPark { spins: 100 },
    ] {
        let mut c = broker.consumer(ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            wait_strategy: strategy,
            ..ConsumerConfig::default()
        });
        c.subscribe(&["t"]).unwrap();
        assert!(
            c.poll(Duration::ZERO).unwrap().is_empty(),
            "positions set at the end"
        );
        let ready = Arc::new(Barrier::new(2));
        let sender = {
            let broker = broker.clone();
            let ready = ready.clone();
            std::thread::spawn(move || {
                ready.wait();
                broker
                    .producer(ProducerConfig::default())
                    .send_blocking(ProducerRecord::new("t", b"wake up").partition(2))
                    .unwrap()
            })
        };
        ready.wait();
        let started = Instant::now();
        let records = c.poll(timeout).unwrap();
        let waited = started.elapsed();
        let sent = sender
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        assert_eq!(records.len(), 1, "{strategy:?}");
        assert_eq!(records[0].value.as_deref(), Some(&b"wake up"[..]));
        assert_eq!((records[0].partition, records[0].offset), (2, sent.offset));
        assert!(
            waited < timeout,
            "{strategy:?}: the poll ran to its timeout"
        );
    }
}

#[test]
fn a_subscription_picks_up_partitions_added_later() {
    let (_dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let mut c = consumer(&broker, OffsetReset::Earliest);
    c.subscribe(&["t"]).unwrap();
    assert_eq!(c.assignment(), vec![TopicPartition::new("t", 0)]);
    produce_batch(&broker, "t", 0, 0, 1);
    assert_eq!(poll_n(&mut c, 1)[0].partition, 0);

    broker.add_partitions("t", 3).unwrap();
    produce_batch(&broker, "t", 2, 0, 2);
    produce_batch(&broker, "t", 1, 0, 1);
    let records = poll_n(&mut c, 3);
    let mut got: Vec<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    got.sort();
    assert_eq!(got, vec![(1, 0), (2, 0), (2, 1)]);
    let mut assignment = c.assignment();
    assignment.sort();
    assert_eq!(
        assignment,
        (0..3)
            .map(|p| TopicPartition::new("t", p))
            .collect::<Vec<_>>()
    );
    // Partition 0 kept its position through the change.
    assert_eq!(c.position(&TopicPartition::new("t", 0)).unwrap(), 1);
}

/// A parked poll is also woken by a partition added while it waits.
#[test]
fn a_parked_poll_sees_a_partition_added_while_it_waits() {
    let (_dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let mut c = consumer(&broker, OffsetReset::Earliest);
    c.subscribe(&["t"]).unwrap();
    let ready = Arc::new(Barrier::new(2));
    let admin = {
        let broker = broker.clone();
        let ready = ready.clone();
        std::thread::spawn(move || {
            ready.wait();
            broker.add_partitions("t", 2).unwrap();
            broker
                .producer(ProducerConfig::default())
                .send_blocking(ProducerRecord::new("t", b"new partition").partition(1))
                .unwrap()
        })
    };
    ready.wait();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Polls with a short timeout, as applications do: each poll refreshes the
    // subscription.
    while records.is_empty() && Instant::now() < deadline {
        records = c.poll(Duration::from_millis(100)).unwrap();
    }
    admin
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].partition, records[0].offset), (1, 0));
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn log_append_time_is_the_stored_timestamp_in_metadata_and_read_back() {
    let (_dir, broker) = open();
    let config = TopicConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..TopicConfig::default()
    };
    broker.create_topic("lat", 1, config).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let before = now_ms();
    let sent: Vec<_> = (0..3)
        .map(|i| {
            // The producer's own timestamp is old; the log replaces it.
            producer
                .send_blocking(ProducerRecord::new("lat", b"v").timestamp(1000 + i))
                .unwrap()
        })
        .collect();
    let after = now_ms();
    let mut c = consumer(&broker, OffsetReset::Earliest);
    c.subscribe(&["lat"]).unwrap();
    let records = poll_n(&mut c, 3);
    for (m, r) in sent.iter().zip(&records) {
        assert!(
            (before..=after).contains(&m.timestamp),
            "metadata timestamp {} not in {before}..={after}",
            m.timestamp
        );
        assert_eq!(r.offset, m.offset);
        assert_eq!(r.timestamp, m.timestamp, "read back = metadata");
        assert_eq!(r.timestamp_type, TimestampType::LogAppendTime);
    }
}

#[test]
fn log_append_time_comes_from_the_broker_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(5_000_000));
    let broker = Broker::open(
        dir.path(),
        BrokerConfig {
            clock: clock.clone(),
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    let config = TopicConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..TopicConfig::default()
    };
    broker.create_topic("lat", 1, config).unwrap();
    broker
        .create_topic("ct", 1, TopicConfig::default())
        .unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let a = producer
        .send_blocking(ProducerRecord::new("lat", b"a").timestamp(7))
        .unwrap();
    clock.advance(250);
    let b = producer
        .send_blocking(ProducerRecord::new("lat", b"b").timestamp(8))
        .unwrap();
    let create = producer
        .send_blocking(ProducerRecord::new("ct", b"c").timestamp(9))
        .unwrap();
    let unstamped = producer
        .send_blocking(ProducerRecord::new("ct", b"d"))
        .unwrap();
    assert_eq!(a.timestamp, 5_000_000);
    assert_eq!(b.timestamp, 5_000_250);
    assert_eq!(
        create.timestamp, 9,
        "CreateTime keeps the producer's timestamp"
    );
    assert_eq!(
        unstamped.timestamp, 5_000_250,
        "no timestamp: the clock's time at send"
    );

    let mut c = consumer(&broker, OffsetReset::Earliest);
    c.subscribe(&["lat", "ct"]).unwrap();
    let mut records = poll_n(&mut c, 4);
    records.sort_by_key(|r| (r.topic.to_string(), r.offset));
    let got: Vec<(&str, i64, TimestampType)> = records
        .iter()
        .map(|r| (&*r.topic, r.timestamp, r.timestamp_type))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ct", 9, TimestampType::CreateTime),
            ("ct", 5_000_250, TimestampType::CreateTime),
            ("lat", 5_000_000, TimestampType::LogAppendTime),
            ("lat", 5_000_250, TimestampType::LogAppendTime),
        ]
    );
}

#[test]
fn consumers_of_an_uncompressed_record_share_its_bytes_with_the_segment() {
    let (_dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let value = vec![b'z'; 4096];
    let producer: Producer = broker.producer(ProducerConfig::default());
    producer
        .send_blocking(ProducerRecord::new("t", &value).key(b"k"))
        .unwrap();
    let read = || {
        let mut c = consumer(&broker, OffsetReset::Earliest);
        c.subscribe(&["t"]).unwrap();
        poll_n(&mut c, 1).remove(0)
    };
    let first = read();
    let second = read();
    let (v1, v2) = (first.value.unwrap(), second.value.unwrap());
    assert_eq!(&v1[..], &value[..]);
    assert_eq!(v1, v2);
    assert_eq!(
        v1.as_ptr(),
        v2.as_ptr(),
        "two reads of one record point at the same bytes: the segment's map"
    );
    // And the value lies inside the batch bytes that Partition::read hands out.
    let batch = broker
        .partition("t", 0)
        .unwrap()
        .read(0, 1 << 20)
        .unwrap()
        .remove(0);
    let raw = batch.as_bytes();
    let range = raw.as_ptr() as usize..raw.as_ptr() as usize + raw.len();
    assert!(range.contains(&(v1.as_ptr() as usize)));
    assert_eq!(
        first.key.unwrap().as_ptr(),
        second.key.unwrap().as_ptr(),
        "the key too"
    );
}

/// Kafka's `assign` and `subscribe` take sets: naming a partition or topic twice reads it
/// once (`KafkaConsumer.assign` copies the collection into a `HashSet`).
#[test]
fn a_partition_or_topic_named_twice_is_read_once() {
    let (_dir, broker) = open();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 3);
    produce_batch(&broker, "t", 1, 0, 3);
    let tp = TopicPartition::new("t", 0);

    let mut assigned = consumer(&broker, OffsetReset::Earliest);
    assigned.assign(&[tp.clone(), tp.clone()]).unwrap();
    assert_eq!(assigned.assignment(), vec![tp.clone()]);
    let mut records = Vec::new();
    loop {
        let batch = assigned.poll(Duration::from_millis(20)).unwrap();
        if batch.is_empty() {
            break;
        }
        records.extend(batch);
    }
    assert_eq!(offsets(&records), vec![0, 1, 2], "each record once");

    let mut subscribed = consumer(&broker, OffsetReset::Earliest);
    subscribed.subscribe(&["t", "t"]).unwrap();
    let mut assignment = subscribed.assignment();
    assignment.sort();
    assert_eq!(assignment, vec![tp, TopicPartition::new("t", 1)]);
    let mut records = Vec::new();
    loop {
        let batch = subscribed.poll(Duration::from_millis(20)).unwrap();
        if batch.is_empty() {
            break;
        }
        records.extend(batch);
    }
    let mut got: Vec<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    got.sort();
    assert_eq!(got, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
}

/// A subscription keeps reading its other topics when one of them is deleted, as Kafka's
/// consumer does: the deleted topic's partitions leave the assignment (Kafka logs the
/// missing topic; `poll` does not fail).
#[test]
fn a_subscription_keeps_reading_after_one_of_its_topics_is_deleted() {
    let (_dir, broker) = open();
    broker
        .create_topic("stays", 1, TopicConfig::default())
        .unwrap();
    broker
        .create_topic("goes", 1, TopicConfig::default())
        .unwrap();
    let mut c = consumer(&broker, OffsetReset::Earliest);
    c.subscribe(&["stays", "goes"]).unwrap();
    produce_batch(&broker, "goes", 0, 0, 1);
    produce_batch(&broker, "stays", 0, 0, 1);
    assert_eq!(poll_n(&mut c, 2).len(), 2);

    broker.delete_topic("goes").unwrap();
    produce_batch(&broker, "stays", 0, 1, 1);
    let records = c
        .poll(Duration::from_secs(10))
        .expect("a deleted topic must not stop the subscription");
    assert_eq!(offsets(&records), vec![1]);
    assert_eq!(&*records[0].topic, "stays");
    assert_eq!(c.assignment(), vec![TopicPartition::new("stays", 0)]);
}

/// A poll that has taken records of one partition and then meets an error on another
/// returns the records it took, and the error comes with the next poll, as Kafka's
/// consumer returns the records it collected and raises the error on the next poll. The
/// taken records' position has moved past them, so dropping them with the error would
/// lose them for good.
#[test]
fn an_error_on_one_partition_does_not_lose_records_taken_from_another() {
    let (_dir, broker) = open();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 3);
    produce_batch(&broker, "t", 1, 0, 2);
    let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    let mut c = consumer(&broker, OffsetReset::None);
    c.assign(&[p0.clone(), p1.clone()]).unwrap();
    c.seek(&p0, 0).unwrap();
    // Partition 1 has no position and no reset rule: reading it is an error.
    let first = c
        .poll(Duration::ZERO)
        .expect("the records taken from partition 0");
    assert_eq!(values(&first), vec!["v0", "v1", "v2"]);
    assert!(first.iter().all(|r| r.partition == 0));
    assert_eq!(c.position(&p0).unwrap(), 3);
    let err = c.poll(Duration::ZERO).unwrap_err();
    assert!(
        matches!(&err, partlog::Error::NoOffset { topic, partition: 1 } if topic == "t"),
        "{err:?}"
    );
    c.seek(&p1, 0).unwrap();
    let rest = poll_n(&mut c, 2);
    assert_eq!(
        rest.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        vec![(1, 0), (1, 1)]
    );
}

/// Overwrites `at` in partition 0's first segment of `topic` with `bytes`, through the
/// file (the writer's shared map sees it at once). With `batch`, the position of the batch
/// holding `at`, its CRC-32C is stored again, so that only the change itself is wrong.
fn damage_segment(
    dir: &std::path::Path,
    topic: &str,
    at: usize,
    bytes: &[u8],
    batch: Option<usize>,
) {
    use std::os::unix::fs::FileExt;
    let path = dir
        .join(format!("{topic}-0"))
        .join("00000000000000000000.log");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.write_all_at(bytes, at as u64).unwrap();
    if let Some(start) = batch {
        let mut header = [0u8; 12];
        file.read_exact_at(&mut header, start as u64).unwrap();
        let length = i32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
        let mut rest = vec![0u8; length - 9];
        file.read_exact_at(&mut rest, start as u64 + 21).unwrap();
        let crc = crc32c::crc32c(&rest);
        file.write_all_at(&crc.to_be_bytes(), start as u64 + 17)
            .unwrap();
    }
}

/// Where `needle` first occurs in partition 0's first segment of `topic`.
fn find_in_segment(dir: &std::path::Path, topic: &str, needle: &[u8]) -> usize {
    let path = dir
        .join(format!("{topic}-0"))
        .join("00000000000000000000.log");
    let data = std::fs::read(path).unwrap();
    data.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the segment"))
}

/// A consumer of `tp` alone, from the earliest offset, taking up to `max_poll_records`.
fn assigned_from_earliest(
    broker: &Broker,
    tp: &TopicPartition,
    max_poll_records: usize,
) -> Consumer {
    let mut c = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records,
        ..ConsumerConfig::default()
    });
    c.assign(std::slice::from_ref(tp)).unwrap();
    c
}

/// A batch whose checksum fails, after good ones: the polls return every record before
/// it, one by one when `max_poll_records` is 1, with the position moving past each; then
/// the error, naming the batch's offset, and it stays put, at the damaged batch.
#[test]
fn a_damaged_batch_ends_the_records_before_it_and_then_is_the_error() {
    let (dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 2);
    produce_batch(&broker, "t", 0, 2, 2);
    produce_batch(&broker, "t", 0, 4, 2);
    // Change the value of record 2 (`v2` → `x2`) without its CRC.
    let at = find_in_segment(dir.path(), "t", b"v2");
    damage_segment(dir.path(), "t", at, b"x", None);
    let tp = TopicPartition::new("t", 0);
    for max_poll_records in [500, 1] {
        let mut c = assigned_from_earliest(&broker, &tp, max_poll_records);
        let mut got = Vec::new();
        let err = loop {
            match c.poll(Duration::ZERO) {
                Ok(records) => {
                    assert!(
                        !records.is_empty(),
                        "a poll before the error returned nothing"
                    );
                    assert!(records.len() <= max_poll_records);
                    got.extend(records);
                    assert_eq!(c.position(&tp).unwrap(), got.last().unwrap().offset + 1);
                }
                Err(e) => break e,
            }
        };
        assert_eq!(
            values(&got),
            vec!["v0", "v1"],
            "max_poll_records {max_poll_records}"
        );
        assert!(
            matches!(&err, partlog::Error::CorruptRecords { offset: 2, partition, .. }
                if partition == "t-0"),
            "{err:?}"
        );
        assert_eq!(c.position(&tp).unwrap(), 2);
        let again = c.poll(Duration::ZERO).unwrap_err();
        assert!(
            matches!(again, partlog::Error::CorruptRecords { offset: 2, .. }),
            "{again:?}"
        );
    }
}

/// A record that does not decode, in a batch whose checksum holds: the records of the
/// batch before it are returned and the position moves past them; the next poll is the
/// error, and the position stays at the bad record, however the polls are cut.
#[test]
fn a_malformed_record_inside_a_batch_returns_the_records_before_it_then_the_error() {
    let (dir, broker) = open();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    produce_batch(&broker, "t", 0, 0, 3);
    // Record 1's value length (zigzag 2 = 0x04) becomes 50 (0x64): beyond its record.
    let at = find_in_segment(dir.path(), "t", b"\x04v1");
    damage_segment(dir.path(), "t", at, &[0x64], Some(0));
    let tp = TopicPartition::new("t", 0);
    for max_poll_records in [500, 1] {
        let mut c = assigned_from_earliest(&broker, &tp, max_poll_records);
        let first = c.poll(Duration::ZERO).unwrap();
        assert_eq!(
            values(&first),
            vec!["v0"],
            "max_poll_records {max_poll_records}"
        );
        assert_eq!(c.position(&tp).unwrap(), 1);
        for _ in 0..2 {
            let err = c.poll(Duration::ZERO).unwrap_err();
            assert!(
                matches!(&err, partlog::Error::CorruptRecords { offset: 0, .. }),
                "{err:?}"
            );
            assert_eq!(c.position(&tp).unwrap(), 1);
        }
    }
}
