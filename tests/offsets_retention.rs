//! Committed offsets expire as Kafka's `offsets.retention.minutes` says: a group without
//! members loses them `offsets_retention` after the later of their commit and the last
//! time it had members; members keep them; a transaction's pending offsets are kept; the
//! expiry is durable (tombstones in `__consumer_offsets`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, ManualClock, OffsetReset, ProducerConfig,
    ProducerRecord, TopicConfig, TopicPartition,
};

const DAY: i64 = 24 * 3600 * 1000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Broker {
    Broker::open(
        dir,
        BrokerConfig {
            clock: clock.clone(),
            offsets_topic_partitions: 2,
            offsets_retention: Duration::from_millis(7 * DAY as u64),
            ..BrokerConfig::default()
        },
    )
    .unwrap()
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// A consumer of group `group` that assigns both partitions of `t` itself.
fn assigned(broker: &Broker, group: &str) -> Consumer {
    let mut c = broker.consumer(ConsumerConfig {
        group_id: Some(group.into()),
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    });
    c.assign(&[tp(0), tp(1)]).unwrap();
    c
}

/// Committed offsets of `group` for partitions 0 and 1 (-1 for none).
fn committed(broker: &Broker, group: &str) -> [i64; 2] {
    let got = assigned(broker, group).committed(&[tp(0), tp(1)]).unwrap();
    [0, 1].map(|p| got.get(&tp(p)).map_or(-1, |o| o.offset))
}

fn setup(broker: &Broker) {
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let p = broker.producer(ProducerConfig::default());
    for partition in 0..2 {
        for _ in 0..5 {
            p.send_blocking(ProducerRecord::new("t", b"v").partition(partition))
                .unwrap();
        }
    }
}

#[test]
fn offsets_of_a_group_without_members_expire_from_their_commit_and_stay_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    {
        let broker = open(tmp.path(), &clock);
        setup(&broker);
        let mut c = assigned(&broker, "g");
        c.commit_sync_offsets(&HashMap::from([(tp(0), 3)])).unwrap();
        clock.advance(DAY);
        c.commit_sync_offsets(&HashMap::from([(tp(1), 4)])).unwrap();
        assigned(&broker, "other")
            .commit_sync_offsets(&HashMap::from([(tp(0), 1)]))
            .unwrap();

        // Partition 0 was committed a day before partition 1: it expires first.
        clock.advance(6 * DAY - 1);
        assert_eq!(broker.expire_group_offsets().unwrap(), 0);
        clock.advance(1);
        assert_eq!(broker.expire_group_offsets().unwrap(), 1);
        assert_eq!(committed(&broker, "g"), [-1, 4]);
        assert_eq!(committed(&broker, "other"), [1, -1]);
        assert_eq!(broker.list_groups(), ["g", "other"]);
        clock.advance(DAY);
        assert_eq!(broker.expire_group_offsets().unwrap(), 2);
        assert_eq!(committed(&broker, "g"), [-1, -1]);
        assert_eq!(committed(&broker, "other"), [-1, -1]);
        assert_eq!(broker.list_groups(), Vec::<String>::new());
        broker.close().unwrap();
    }
    // The tombstones are on disk: a reopened broker has nothing to expire or load.
    let broker = open(tmp.path(), &clock);
    assert_eq!(committed(&broker, "g"), [-1, -1]);
    assert_eq!(broker.list_groups(), Vec::<String>::new());
    assert_eq!(broker.expire_group_offsets().unwrap(), 0);
}

#[test]
fn members_keep_their_groups_offsets_and_the_clock_starts_when_the_last_one_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(tmp.path(), &clock);
    setup(&broker);
    let mut c = broker.consumer(ConsumerConfig {
        group_id: Some("g".into()),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        max_poll_interval: Duration::from_millis((30 * DAY) as u64),
        ..ConsumerConfig::default()
    });
    c.subscribe(&["t"]).unwrap();
    assert_eq!(c.poll(Duration::ZERO).unwrap().len(), 10);
    c.commit_sync().unwrap();
    // Twenty days with a member: nothing expires, however old the commits.
    for _ in 0..20 {
        clock.advance(DAY);
        assert_eq!(broker.expire_group_offsets().unwrap(), 0);
    }
    assert_eq!(committed(&broker, "g"), [5, 5]);
    // The member leaves: seven days from now, not from the commit.
    c.close().unwrap();
    clock.advance(7 * DAY - 1);
    assert_eq!(broker.expire_group_offsets().unwrap(), 0);
    assert_eq!(committed(&broker, "g"), [5, 5]);
    clock.advance(1);
    assert_eq!(broker.expire_group_offsets().unwrap(), 2);
    assert_eq!(committed(&broker, "g"), [-1, -1]);
}

#[test]
fn after_a_restart_offsets_count_from_the_open() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    {
        let broker = open(tmp.path(), &clock);
        setup(&broker);
        assigned(&broker, "g")
            .commit_sync_offsets(&HashMap::from([(tp(0), 2), (tp(1), 2)]))
            .unwrap();
        broker.close().unwrap();
    }
    clock.advance(30 * DAY);
    let broker = open(tmp.path(), &clock);
    assert_eq!(broker.expire_group_offsets().unwrap(), 0);
    assert_eq!(committed(&broker, "g"), [2, 2]);
    clock.advance(7 * DAY);
    assert_eq!(broker.expire_group_offsets().unwrap(), 2);
    assert_eq!(committed(&broker, "g"), [-1, -1]);
}

#[test]
fn offsets_a_transaction_has_pending_are_kept_until_it_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(tmp.path(), &clock);
    setup(&broker);
    assigned(&broker, "g")
        .commit_sync_offsets(&HashMap::from([(tp(0), 1), (tp(1), 1)]))
        .unwrap();
    let p = broker.producer(ProducerConfig {
        transactional_id: Some("tx".into()),
        transaction_timeout: Duration::from_millis((60 * DAY) as u64),
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction(&HashMap::from([(tp(0), 4)]), "g")
        .unwrap();
    clock.advance(8 * DAY);
    // Partition 1 expires; partition 0 has offsets pending in the open transaction.
    assert_eq!(broker.expire_group_offsets().unwrap(), 1);
    assert_eq!(committed(&broker, "g"), [1, -1]);
    p.commit_transaction().unwrap();
    assert_eq!(committed(&broker, "g"), [4, -1]);
    // Once committed, it counts from when it was sent, as in Kafka (whose
    // `TxnOffsetCommit` stamps the offsets when it receives them): eight days ago.
    assert_eq!(broker.expire_group_offsets().unwrap(), 1);
    assert_eq!(committed(&broker, "g"), [-1, -1]);
}

#[test]
fn the_background_thread_expires_offsets_even_with_the_cleaner_off() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = Broker::open(
        tmp.path(),
        BrokerConfig {
            clock: clock.clone(),
            offsets_topic_partitions: 2,
            offsets_retention: Duration::from_millis(7 * DAY as u64),
            offsets_retention_check_interval: Duration::from_millis(20),
            cleaner: partlog::CleanerConfig {
                enable: false,
                ..partlog::CleanerConfig::default()
            },
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    setup(&broker);
    assigned(&broker, "g")
        .commit_sync_offsets(&HashMap::from([(tp(0), 2)]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(committed(&broker, "g"), [2, -1]);
    clock.advance(7 * DAY);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while committed(&broker, "g") != [-1, -1] {
        assert!(std::time::Instant::now() < deadline, "not expired in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(broker.cleaner_error(), None);
}

/// Expiry runs over and over while a transaction commits a new offset for a partition
/// whose old offset is due to expire; each round then compacts the offsets topic and
/// reopens the broker: the transaction's offset is what memory and disk hold. (The
/// ordering that keeps a tombstone from following a transaction's offset is argued in
/// `Coordinator::send_txn_offsets` and `TxnCoordinator::settle_offsets`; its windows are
/// too narrow, and compaction leaves the active segment alone, for this to hit them
/// reliably.)
#[test]
fn expiry_beside_transactional_commits_keeps_their_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    setup(&open(tmp.path(), &clock));
    for round in 0..20 {
        let broker = open(tmp.path(), &clock);
        // A plain commit, made old at once: due to expire.
        assigned(&broker, "g")
            .commit_sync_offsets(&HashMap::from([(tp(0), 1)]))
            .unwrap();
        clock.advance(8 * DAY);
        let p = broker.producer(ProducerConfig {
            transactional_id: Some("tx".into()),
            ..ProducerConfig::default()
        });
        p.init_transactions().unwrap();
        let offset = 2 + round;
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    broker.expire_group_offsets().unwrap();
                }
            });
            p.begin_transaction().unwrap();
            p.send_offsets_to_transaction(&HashMap::from([(tp(0), offset)]), "g")
                .unwrap();
            p.commit_transaction().unwrap();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(
            committed(&broker, "g")[0],
            offset,
            "round {round}, in memory"
        );
        broker.clean_topic("__consumer_offsets").unwrap();
        drop(p);
        broker.close().unwrap();
        let broker = open(tmp.path(), &clock);
        assert_eq!(
            committed(&broker, "g")[0],
            offset,
            "round {round}, after a reopen"
        );
        broker.close().unwrap();
    }
}
