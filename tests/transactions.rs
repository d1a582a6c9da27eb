//! Transactions: commit and abort visibility under both isolation levels, the last stable
//! offset, `.txnindex`, zombie fencing, the broker's timeout, transactional offset
//! commits, recovery of a transaction left open by a crash, and the read_committed view of
//! Kafka's golden segment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, Error, IsolationLevel, ManualClock,
    OffsetReset, Producer, ProducerConfig, ProducerRecord, TopicConfig, TopicPartition,
    TransactionState,
};

fn open(dir: &Path) -> Broker {
    Broker::open(dir, BrokerConfig::default()).unwrap()
}

fn txn_producer(broker: &Broker, id: &str) -> Producer {
    let p = broker.producer(ProducerConfig {
        transactional_id: Some(id.into()),
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p
}

fn consumer(broker: &Broker, isolation: IsolationLevel, tps: &[TopicPartition]) -> Consumer {
    let mut c = broker.consumer(ConsumerConfig {
        isolation_level: isolation,
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    });
    c.assign(tps).unwrap();
    c
}

/// Every record value the consumer can read now, as text, in offset order per partition.
fn read_all(c: &mut Consumer) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = c.poll(Duration::from_millis(20)).unwrap();
        if got.is_empty() {
            return out;
        }
        for r in got {
            out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
}

fn send(p: &Producer, topic: &str, partition: i32, value: &str) {
    let h = p
        .send(ProducerRecord::new(topic, value.as_bytes()).partition(partition))
        .unwrap();
    drop(h);
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn committed_records_appear_at_commit_and_aborted_ones_never() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = open(tmp.path());
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let tps = [TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
    let p = txn_producer(&broker, "tx");
    let plain = broker.producer(ProducerConfig::default());

    p.begin_transaction().unwrap();
    send(&p, "t", 0, "c1");
    send(&p, "t", 1, "c2");
    p.flush().unwrap();
    plain
        .send_blocking(ProducerRecord::new("t", b"plain").partition(0))
        .unwrap();
    let log0 = broker.partition("t", 0).unwrap().log().clone();
    assert_eq!(log0.last_stable_offset(), 0, "held at the open transaction");
    assert_eq!(log0.log_end_offset(), 2);
    let mut committed = consumer(&broker, IsolationLevel::ReadCommitted, &tps);
    let mut uncommitted = consumer(&broker, IsolationLevel::ReadUncommitted, &tps);
    // Lag follows the isolation level: the open transaction holds read_committed's end.
    assert_eq!(committed.current_lag(&tps[0]).unwrap(), 0);
    assert_eq!(uncommitted.current_lag(&tps[0]).unwrap(), 2);
    assert_eq!(read_all(&mut committed), Vec::<String>::new());
    assert_eq!(
        committed.end_offsets(&tps[..1]).unwrap()[&tps[0]],
        0,
        "end offsets follow the LSO"
    );
    assert_eq!(uncommitted.end_offsets(&tps[..1]).unwrap()[&tps[0]], 2);
    assert_eq!(
        sorted(read_all(&mut uncommitted)),
        vec!["c1", "c2", "plain"]
    );
    let listed = broker.transactions();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, TransactionState::Ongoing);
    assert_eq!(listed[0].partitions, tps.to_vec());

    p.commit_transaction().unwrap();
    assert_eq!(log0.last_stable_offset(), 3, "past the COMMIT marker");
    assert_eq!(committed.current_lag(&tps[0]).unwrap(), 3);
    assert_eq!(sorted(read_all(&mut committed)), vec!["c1", "c2", "plain"]);
    assert_eq!(
        broker.transactions()[0].state,
        TransactionState::CompleteCommit
    );

    p.begin_transaction().unwrap();
    send(&p, "t", 0, "a1");
    send(&p, "t", 0, "a2");
    p.abort_transaction().unwrap();
    p.begin_transaction().unwrap();
    send(&p, "t", 0, "c3");
    p.commit_transaction().unwrap();
    assert_eq!(read_all(&mut committed), vec!["c3"]);
    assert_eq!(read_all(&mut uncommitted), vec!["a1", "a2", "c3"]);

    // The abort is in the active segment's .txnindex: first offset 3, marker at 5.
    let (pid, _) = p.producer_id().unwrap();
    let aborted = log0.aborted_transactions(0, log0.log_end_offset()).unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset,
            aborted[0].last_stable_offset
        ),
        (pid, 3, 5, 6)
    );
    let index = log0.dir().join(format!("{:020}.txnindex", 0));
    assert_eq!(std::fs::metadata(&index).unwrap().len(), 34);

    // Reopened, the view is the same (the index and producer state come back).
    drop((committed, uncommitted, p, plain, log0));
    broker.close().unwrap();
    drop(broker);
    let broker = open(tmp.path());
    let mut committed = consumer(&broker, IsolationLevel::ReadCommitted, &tps);
    assert_eq!(
        sorted(read_all(&mut committed)),
        vec!["c1", "c2", "c3", "plain"]
    );
}

#[test]
fn a_zombie_is_fenced_when_a_new_producer_initialises_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = open(tmp.path());
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let tps = [TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
    let zombie = txn_producer(&broker, "app");
    zombie.begin_transaction().unwrap();
    send(&zombie, "t", 0, "zombie-1");
    zombie.flush().unwrap();

    let fresh = txn_producer(&broker, "app");
    let (zid, zepoch) = zombie.producer_id().unwrap();
    assert_eq!(fresh.producer_id().unwrap(), (zid, zepoch + 1));
    // Its open transaction was aborted with the new epoch.
    assert_eq!(broker.transactions()[0].state, TransactionState::Empty);

    // Writes to a partition the zombie had: refused by the partition (epoch fenced)
    // or by the coordinator; to a new partition: refused by the coordinator.
    send(&zombie, "t", 0, "zombie-2");
    send(&zombie, "t", 1, "zombie-3");
    let err = zombie.flush().unwrap_err();
    assert!(
        matches!(&err, Error::BatchFailed(e) if matches!(**e,
            Error::ProducerFenced { .. } | Error::TransactionFenced { .. })),
        "{err}"
    );
    match zombie.commit_transaction() {
        Err(Error::TransactionFenced {
            producer_id,
            epoch,
            current_epoch,
            ..
        }) => assert_eq!(
            (producer_id, epoch, current_epoch),
            (zid, zepoch, zepoch + 1)
        ),
        Err(Error::BatchFailed(_)) => {}
        other => panic!("a zombie's commit must fail, got {other:?}"),
    }
    assert!(matches!(
        zombie.abort_transaction(),
        Err(Error::TransactionFenced { .. })
    ));

    fresh.begin_transaction().unwrap();
    send(&fresh, "t", 0, "fresh-1");
    send(&fresh, "t", 1, "fresh-2");
    fresh.commit_transaction().unwrap();
    let mut c = consumer(&broker, IsolationLevel::ReadCommitted, &tps);
    assert_eq!(sorted(read_all(&mut c)), vec!["fresh-1", "fresh-2"]);
}

#[test]
fn sends_outside_a_transaction_and_before_init_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = open(tmp.path());
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = broker.producer(ProducerConfig {
        transactional_id: Some("x".into()),
        ..ProducerConfig::default()
    });
    assert!(matches!(
        p.send(ProducerRecord::new("t", b"v")),
        Err(Error::InvalidTxnState { .. })
    ));
    assert!(matches!(
        p.begin_transaction(),
        Err(Error::InvalidTxnState { .. })
    ));
    p.init_transactions().unwrap();
    assert!(matches!(
        p.init_transactions(),
        Err(Error::InvalidTxnState { .. })
    ));
    assert!(matches!(
        p.commit_transaction(),
        Err(Error::InvalidTxnState { .. })
    ));
    // Outside a transaction a send fails at once, as Kafka's does.
    assert!(matches!(
        p.send(ProducerRecord::new("t", b"outside").partition(0)),
        Err(Error::InvalidTxnState { .. })
    ));
    p.flush().unwrap();
    assert_eq!(broker.partition("t", 0).unwrap().log_end_offset(), 0);
    let plain = broker.producer(ProducerConfig::default());
    assert!(matches!(
        plain.begin_transaction(),
        Err(Error::InvalidTxnState { .. })
    ));
}

#[test]
fn the_broker_aborts_a_transaction_past_its_timeout_and_fences_its_producer() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let broker = Broker::open(
        tmp.path(),
        BrokerConfig {
            clock: clock.clone(),
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = broker.producer(ProducerConfig {
        transactional_id: Some("slow".into()),
        transaction_timeout: Duration::from_secs(10),
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    send(&p, "t", 0, "late");
    p.flush().unwrap();
    clock.advance(5_000);
    assert_eq!(
        broker.abort_expired_transactions().unwrap(),
        Vec::<String>::new()
    );
    clock.advance(6_000);
    // The broker's own timeout thread may get there first.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while broker.transactions()[0].state != TransactionState::CompleteAbort {
        assert!(std::time::Instant::now() < deadline, "never aborted");
        broker.abort_expired_transactions().unwrap();
    }
    assert_eq!(broker.transactions()[0].producer_epoch, 1, "bumped: fenced");
    let log = broker.partition("t", 0).unwrap().log().clone();
    assert_eq!(
        log.last_stable_offset(),
        2,
        "aborted: the LSO is past the marker"
    );
    assert_eq!(log.aborted_transactions(0, 2).unwrap().len(), 1);
    assert!(matches!(
        p.commit_transaction(),
        Err(Error::TransactionFenced { .. })
    ));
}

#[test]
fn offsets_sent_in_a_transaction_count_only_when_it_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = open(tmp.path());
    broker
        .create_topic("in", 1, TopicConfig::default())
        .unwrap();
    broker
        .create_topic("out", 1, TopicConfig::default())
        .unwrap();
    let input = TopicPartition::new("in", 0);
    let group_consumer = |broker: &Broker| {
        broker.consumer(ConsumerConfig {
            group_id: Some("g".into()),
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        })
    };
    let p = txn_producer(&broker, "ctp");
    p.begin_transaction().unwrap();
    send(&p, "out", 0, "o1");
    p.send_offsets_to_transaction(&HashMap::from([(input.clone(), 7)]), "g")
        .unwrap();
    let c = group_consumer(&broker);
    assert_eq!(
        c.committed(std::slice::from_ref(&input))
            .unwrap()
            .get(&input),
        None
    );
    p.commit_transaction().unwrap();
    assert_eq!(
        c.committed(std::slice::from_ref(&input)).unwrap()[&input].offset,
        7
    );

    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction(&HashMap::from([(input.clone(), 9)]), "g")
        .unwrap();
    p.abort_transaction().unwrap();
    assert_eq!(
        c.committed(std::slice::from_ref(&input)).unwrap()[&input].offset,
        7
    );

    // A transaction left open by a "crash" (the broker dropped without closing).
    p.begin_transaction().unwrap();
    send(&p, "out", 0, "o-open");
    p.send_offsets_to_transaction(&HashMap::from([(input.clone(), 11)]), "g")
        .unwrap();
    p.flush().unwrap();
    drop((c, p));
    drop(broker);
    let broker = open(tmp.path());
    let c = group_consumer(&broker);
    assert_eq!(
        c.committed(std::slice::from_ref(&input)).unwrap()[&input].offset,
        7,
        "the reloaded group honours the markers"
    );
    let t = &broker.transactions()[0];
    assert_eq!(t.state, TransactionState::CompleteAbort);
    let out = [TopicPartition::new("out", 0)];
    let mut rc = consumer(&broker, IsolationLevel::ReadCommitted, &out);
    assert_eq!(read_all(&mut rc), vec!["o1"]);
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/kafka-golden")
}

#[test]
fn read_committed_hides_the_golden_segments_aborted_batch_and_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("golden-0");
    std::fs::create_dir_all(&part).unwrap();
    let name = "00000000000000000000.log";
    std::fs::copy(golden_dir().join(name), part.join(name)).unwrap();
    let broker = open(tmp.path());
    let tp = [TopicPartition::new("golden", 0)];
    let offsets = |isolation| {
        let mut c = consumer(&broker, isolation, &tp);
        let mut out = Vec::new();
        loop {
            let got = c.poll(Duration::from_millis(20)).unwrap();
            if got.is_empty() {
                return out;
            }
            out.extend(got.iter().map(|r| r.offset));
        }
    };
    assert_eq!(
        offsets(IsolationLevel::ReadCommitted),
        (0..25).collect::<Vec<i64>>()
    );
    assert_eq!(
        offsets(IsolationLevel::ReadUncommitted),
        (0..28).collect::<Vec<i64>>()
    );
    let log = broker.partition("golden", 0).unwrap().log().clone();
    assert_eq!(log.last_stable_offset(), 29);
    let aborted = log.aborted_transactions(0, 29).unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset,
            aborted[0].last_stable_offset
        ),
        (1234, 25, 28, 29)
    );
}

#[test]
fn the_timeout_thread_aborts_without_being_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let broker = Broker::open(
        tmp.path(),
        BrokerConfig {
            clock: clock.clone(),
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = broker.producer(ProducerConfig {
        transactional_id: Some("idle".into()),
        transaction_timeout: Duration::from_secs(1),
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    send(&p, "t", 0, "forgotten");
    p.flush().unwrap();
    clock.advance(1_001);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while broker.transactions()[0].state != TransactionState::CompleteAbort {
        assert!(
            std::time::Instant::now() < deadline,
            "the broker never aborted it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = broker.partition("t", 0).unwrap().log().clone();
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    let mut c = consumer(
        &broker,
        IsolationLevel::ReadCommitted,
        &[TopicPartition::new("t", 0)],
    );
    assert_eq!(read_all(&mut c), Vec::<String>::new());
}
