//! Review of exactly-once: transactions whose end fails half-way (a marker write
//! refused), the last stable offset seen by concurrent readers, and what a reopen
//! makes of them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, Error, IsolationLevel, ManualClock,
    OffsetReset, Producer, ProducerConfig, ProducerRecord, TopicConfig, TopicPartition,
    TransactionState,
};

fn txn_producer(broker: &Broker, id: &str, timeout: Duration) -> Producer {
    let p = broker.producer(ProducerConfig {
        transactional_id: Some(id.into()),
        transaction_timeout: timeout,
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p
}

fn send(p: &Producer, topic: &str, value: &str) {
    let h = p
        .send(ProducerRecord::new(topic, value.as_bytes()).partition(0))
        .unwrap();
    drop(h);
}

/// Every value a read_committed consumer of `topic`-0 can read now.
fn read_committed(broker: &Broker, topic: &str) -> Vec<String> {
    let mut c: Consumer = broker.consumer(ConsumerConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    });
    c.assign(&[TopicPartition::new(topic, 0)]).unwrap();
    let mut out = Vec::new();
    loop {
        let got = c.poll(Duration::from_millis(20)).unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(
            got.into_iter()
                .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()),
        );
    }
}

/// A broker with topics `a` and `b` (one partition each) and a transaction of `tx`
/// that wrote `x` to `a`-0 and `y` to `b`-0; `b`-0's log is then closed, so every
/// marker write there fails (as a disk error would) while `a`-0 still takes them.
fn broker_with_failing_partition(dir: &Path, clock: Arc<ManualClock>) -> (Broker, Producer) {
    let broker = Broker::open(
        dir,
        BrokerConfig {
            clock,
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    for t in ["a", "b"] {
        broker.create_topic(t, 1, TopicConfig::default()).unwrap();
    }
    let p = txn_producer(&broker, "tx", Duration::from_secs(10));
    p.begin_transaction().unwrap();
    send(&p, "a", "x");
    send(&p, "b", "y");
    p.flush().unwrap();
    broker.partition("b", 0).unwrap().log().close().unwrap();
    (broker, p)
}

#[test]
fn a_commit_retried_after_a_failed_marker_write_does_not_report_success() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (broker, p) = broker_with_failing_partition(tmp.path(), clock);
    assert!(matches!(p.commit_transaction(), Err(Error::Closed(_))));
    assert_eq!(
        broker.transactions()[0].state,
        TransactionState::PrepareCommit
    );
    // The retry must not claim the commit happened: b-0 still has no COMMIT marker.
    let retry = p.commit_transaction();
    assert!(matches!(retry, Err(Error::Closed(_))), "{retry:?}");
    let b = broker.partition("b", 0).unwrap().log().clone();
    assert_eq!(b.last_stable_offset(), 0, "b-0's transaction is still open");
    // Commit was decided: an abort now is refused, not silently accepted.
    let abort = p.abort_transaction();
    assert!(
        matches!(abort, Err(Error::InvalidTxnState { .. })),
        "{abort:?}"
    );
    assert_eq!(
        broker.transactions()[0].state,
        TransactionState::PrepareCommit
    );
    drop(p);
    drop(broker);
    // Reopening finishes the decided commit on both partitions.
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    assert_eq!(
        broker.transactions()[0].state,
        TransactionState::CompleteCommit
    );
    assert_eq!(read_committed(&broker, "a"), vec!["x"]);
    assert_eq!(read_committed(&broker, "b"), vec!["y"]);
}

#[test]
fn a_timeout_abort_that_fails_half_way_still_fences_the_producer_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (broker, p) = broker_with_failing_partition(tmp.path(), clock.clone());
    clock.advance(11_000);
    // The broker's timeout thread may try first; either way the abort fails at b-0.
    let _failed_at_b = broker.abort_expired_transactions();
    let t = &broker.transactions()[0];
    assert_eq!(
        (t.state, t.producer_epoch),
        (TransactionState::PrepareAbort, 1),
        "the abort was decided (durably) with the bumped epoch"
    );
    // The producer is fenced: it cannot turn the decided abort into a commit.
    let commit = p.commit_transaction();
    assert!(
        matches!(commit, Err(Error::TransactionFenced { .. })),
        "{commit:?}"
    );
    drop(p);
    drop(broker);
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    let t = &broker.transactions()[0];
    assert_eq!(
        (t.state, t.producer_epoch),
        (TransactionState::CompleteAbort, 1)
    );
    assert_eq!(read_committed(&broker, "a"), Vec::<String>::new());
    assert_eq!(read_committed(&broker, "b"), Vec::<String>::new());
    for t in ["a", "b"] {
        let log = broker.partition(t, 0).unwrap().log().clone();
        assert_eq!(log.last_stable_offset(), log.log_end_offset(), "{t}");
    }
}

#[test]
fn a_fencing_init_that_fails_half_way_still_fences_the_zombie() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (broker, zombie) = broker_with_failing_partition(tmp.path(), clock);
    let successor = broker.producer(ProducerConfig {
        transactional_id: Some("tx".into()),
        ..ProducerConfig::default()
    });
    assert!(matches!(
        successor.init_transactions(),
        Err(Error::Closed(_))
    ));
    let t = &broker.transactions()[0];
    assert_eq!(
        (t.state, t.producer_epoch),
        (TransactionState::PrepareAbort, 1)
    );
    let commit = zombie.commit_transaction();
    assert!(
        matches!(commit, Err(Error::TransactionFenced { .. })),
        "{commit:?}"
    );
    drop((zombie, successor));
    drop(broker);
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    assert_eq!(
        broker.transactions()[0].state,
        TransactionState::CompleteAbort
    );
    assert_eq!(read_committed(&broker, "a"), Vec::<String>::new());
    assert_eq!(read_committed(&broker, "b"), Vec::<String>::new());
}

#[test]
fn offsets_sent_for_an_invalid_group_id_are_refused_and_the_broker_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("in", 1, TopicConfig::default())
        .unwrap();
    let p = txn_producer(&broker, "tx", Duration::from_secs(60));
    let offsets = std::collections::HashMap::from([(TopicPartition::new("in", 0), 5)]);
    for group in [String::new(), "g".repeat(40_000)] {
        p.begin_transaction().unwrap();
        let sent = p.send_offsets_to_transaction(&offsets, &group);
        assert!(
            matches!(
                sent,
                Err(Error::InvalidConfig {
                    name: "group.id",
                    ..
                })
            ),
            "group of {} bytes: {sent:?}",
            group.len()
        );
        p.commit_transaction().unwrap();
    }
    drop(p);
    drop(broker);
    // Nothing undecodable reached __consumer_offsets: the directory opens again.
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    assert!(broker.transactions()[0].state == TransactionState::CompleteCommit);
}
