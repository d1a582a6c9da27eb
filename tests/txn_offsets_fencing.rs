//! Offsets sent to a transaction with a consumer's group metadata are checked as Kafka's
//! coordinator checks a `TxnOffsetCommit`: a member removed from its group, or one that
//! has not synced since a rebalance, is refused, and its transaction can then only be
//! aborted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerGroupMetadata, Error, IsolationLevel,
    ManualClock, OffsetReset, Producer, ProducerConfig, ProducerRecord, RangeAssignor, TopicConfig,
    TopicPartition,
};

const NO_WAIT: Duration = Duration::ZERO;

/// A broker on a manual clock with topics `in` (2 partitions, 3 records each) and `out`.
fn setup(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Broker {
    let broker = Broker::open(
        dir,
        BrokerConfig {
            clock: clock.clone(),
            offsets_topic_partitions: 3,
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    broker
        .create_topic("in", 2, TopicConfig::default())
        .unwrap();
    broker
        .create_topic("out", 1, TopicConfig::default())
        .unwrap();
    let p = broker.producer(ProducerConfig::default());
    for partition in 0..2 {
        for i in 0..3 {
            let value = format!("in-{partition}-{i}");
            p.send_blocking(ProducerRecord::new("in", value.as_bytes()).partition(partition))
                .unwrap();
        }
    }
    broker
}

fn member(broker: &Broker, max_poll_interval: Duration) -> Consumer {
    let mut c = broker.consumer(ConsumerConfig {
        group_id: Some("g".into()),
        partition_assignment_strategy: vec![Arc::new(RangeAssignor)],
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        max_poll_interval,
        ..ConsumerConfig::default()
    });
    c.subscribe(&["in"]).unwrap();
    c
}

fn txn_producer(broker: &Broker, id: &str) -> Producer {
    let p = broker.producer(ProducerConfig {
        transactional_id: Some(id.into()),
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("in", partition)
}

/// The group's committed offsets of `in`, partition by partition (-1 for none).
fn committed(c: &Consumer) -> [i64; 2] {
    let got = c.committed(&[tp(0), tp(1)]).unwrap();
    [0, 1].map(|p| got.get(&tp(p)).map_or(-1, |o| o.offset))
}

/// Every committed value of `out`, in order.
fn committed_output(broker: &Broker) -> Vec<String> {
    let mut c = broker.consumer(ConsumerConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    c.assign(&[TopicPartition::new("out", 0)]).unwrap();
    let mut out = Vec::new();
    loop {
        let records = c.poll(NO_WAIT).unwrap();
        if records.is_empty() {
            return out;
        }
        for r in records {
            out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
}

/// One transaction: `value` to `out` and `offsets` for the group by `meta`; commits.
fn transact(
    p: &Producer,
    value: &str,
    offsets: &HashMap<TopicPartition, i64>,
    meta: &ConsumerGroupMetadata,
) {
    p.begin_transaction().unwrap();
    drop(
        p.send(ProducerRecord::new("out", value.as_bytes()))
            .unwrap(),
    );
    p.send_offsets_to_transaction(offsets, meta).unwrap();
    p.commit_transaction().unwrap();
}

#[test]
fn group_metadata_names_the_member_and_the_generation_it_synced_at() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = setup(dir.path(), &clock);

    let plain = broker.consumer(ConsumerConfig::default());
    assert!(matches!(
        plain.group_metadata(),
        Err(Error::NoGroupId {
            operation: "group_metadata"
        })
    ));
    let mut assigned = broker.consumer(ConsumerConfig {
        group_id: Some("g".into()),
        ..ConsumerConfig::default()
    });
    assigned.assign(&[tp(0)]).unwrap();
    assert_eq!(
        assigned.group_metadata().unwrap(),
        ConsumerGroupMetadata::new("g")
    );
    assert_eq!(
        ConsumerGroupMetadata::from("g"),
        ConsumerGroupMetadata::new("g")
    );

    let mut a = member(&broker, Duration::from_secs(60));
    let before = a.group_metadata().unwrap();
    assert_eq!((before.member_id(), before.generation_id()), ("", -1));
    a.poll(NO_WAIT).unwrap();
    let first = a.group_metadata().unwrap();
    assert_eq!(first.group_id(), "g");
    assert_eq!(Some(first.member_id()), a.member_id());
    assert_eq!(first.generation_id(), 1);
    assert_eq!(first.group_instance_id(), None);

    // b joins: a new generation, which a takes at its next poll.
    let mut b = member(&broker, Duration::from_secs(60));
    b.poll(NO_WAIT).unwrap();
    assert_eq!(a.group_metadata().unwrap().generation_id(), 1);
    a.poll(NO_WAIT).unwrap();
    b.poll(NO_WAIT).unwrap();
    assert_eq!(a.group_metadata().unwrap().generation_id(), 2);
    assert_eq!(b.group_metadata().unwrap().generation_id(), 2);
    assert_ne!(
        a.group_metadata().unwrap().member_id(),
        b.group_metadata().unwrap().member_id()
    );
}

#[test]
fn a_member_removed_after_max_poll_interval_cannot_commit_offsets_in_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = setup(dir.path(), &clock);
    let mut a = member(&broker, Duration::from_millis(100));
    assert_eq!(a.poll(NO_WAIT).unwrap().len(), 6);
    let meta_a = a.group_metadata().unwrap();
    let pa = txn_producer(&broker, "tx-a");
    transact(
        &pa,
        "first",
        &HashMap::from([(tp(0), 1), (tp(1), 1)]),
        &meta_a,
    );
    assert_eq!(committed(&a), [1, 1]);

    // a stalls past max_poll_interval; b's poll removes it and takes both partitions.
    clock.advance(101);
    let mut b = member(&broker, Duration::from_secs(60));
    b.poll(NO_WAIT).unwrap();
    assert_eq!(b.assignment().len(), 2);

    // The zombie's transaction: its offsets are refused, nothing of them is written, and
    // the transaction cannot commit.
    pa.begin_transaction().unwrap();
    drop(pa.send(ProducerRecord::new("out", b"zombie")).unwrap());
    let refused = pa
        .send_offsets_to_transaction(&HashMap::from([(tp(0), 3), (tp(1), 3)]), &meta_a)
        .unwrap_err();
    match &refused {
        Error::CommitFailed {
            group,
            member,
            generation,
            topic,
            partition,
            reason,
        } => {
            assert_eq!(group, "g");
            assert_eq!(member, meta_a.member_id());
            assert_eq!(*generation, 1);
            assert_eq!((topic.as_str(), *partition), ("in", 0));
            assert!(reason.contains("no longer in the group"), "{reason}");
        }
        other => panic!("expected CommitFailed, got {other:?}"),
    }
    let commit = pa.commit_transaction().unwrap_err();
    assert!(
        matches!(&commit, Error::InvalidTxnState { reason, .. } if reason.contains("refused")),
        "{commit:?}"
    );
    pa.abort_transaction().unwrap();
    assert_eq!(committed(&b), [1, 1]);
    assert_eq!(committed_output(&broker), ["first"]);

    // The member that owns the partitions now commits with its own metadata; the
    // zombie's producer can run a new transaction once it aborted the refused one.
    let pb = txn_producer(&broker, "tx-b");
    transact(
        &pb,
        "second",
        &HashMap::from([(tp(0), 2), (tp(1), 2)]),
        &b.group_metadata().unwrap(),
    );
    assert_eq!(committed(&b), [2, 2]);
    pa.begin_transaction().unwrap();
    drop(pa.send(ProducerRecord::new("out", b"after")).unwrap());
    pa.commit_transaction().unwrap();
    assert_eq!(committed_output(&broker), ["first", "second", "after"]);
}

#[test]
fn offsets_from_before_a_rebalance_are_refused_until_the_member_polls() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = setup(dir.path(), &clock);
    let mut a = member(&broker, Duration::from_secs(60));
    a.poll(NO_WAIT).unwrap();
    let stale = a.group_metadata().unwrap();
    let pa = txn_producer(&broker, "tx-a");

    // b joins: generation 2. a still owns both partitions until it polls, but its
    // metadata is from generation 1.
    let mut b = member(&broker, Duration::from_secs(60));
    b.poll(NO_WAIT).unwrap();
    pa.begin_transaction().unwrap();
    let refused = pa
        .send_offsets_to_transaction(&HashMap::from([(tp(0), 2)]), &stale)
        .unwrap_err();
    match &refused {
        Error::CommitFailed {
            generation, reason, ..
        } => {
            assert_eq!(*generation, 1);
            assert!(reason.contains("rebalanced to generation 2"), "{reason}");
        }
        other => panic!("expected CommitFailed, got {other:?}"),
    }
    assert!(pa.commit_transaction().is_err());
    pa.abort_transaction().unwrap();
    assert_eq!(committed(&a), [-1, -1]);

    // After its poll a is at generation 2 and owns partition 0 (range): accepted there,
    // refused for partition 1, which is b's.
    a.poll(NO_WAIT).unwrap();
    b.poll(NO_WAIT).unwrap();
    let current = a.group_metadata().unwrap();
    assert_eq!(current.generation_id(), 2);
    transact(&pa, "a", &HashMap::from([(tp(0), 2)]), &current);
    assert_eq!(committed(&a), [2, -1]);
    pa.begin_transaction().unwrap();
    let not_owned = pa
        .send_offsets_to_transaction(&HashMap::from([(tp(1), 2)]), &current)
        .unwrap_err();
    assert!(
        matches!(&not_owned, Error::CommitFailed { partition: 1, reason, .. } if reason.contains("owned by member")),
        "{not_owned:?}"
    );
    pa.abort_transaction().unwrap();

    // A bare group id is not checked (Kafka's deprecated form), even with members.
    transact(
        &pa,
        "bare",
        &HashMap::from([(tp(1), 3)]),
        &ConsumerGroupMetadata::new("g"),
    );
    assert_eq!(committed(&b), [2, 3]);
    assert_eq!(committed_output(&broker), ["a", "bare"]);
}

#[test]
fn a_static_member_replaced_by_its_successor_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = setup(dir.path(), &clock);
    let static_member = || {
        let mut c = broker.consumer(ConsumerConfig {
            group_id: Some("g".into()),
            group_instance_id: Some("w1".into()),
            partition_assignment_strategy: vec![Arc::new(RangeAssignor)],
            auto_offset_reset: OffsetReset::Earliest,
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        });
        c.subscribe(&["in"]).unwrap();
        c
    };
    let mut first = static_member();
    first.poll(NO_WAIT).unwrap();
    let old = first.group_metadata().unwrap();
    assert_eq!(old.group_instance_id(), Some("w1"));
    // A second consumer with the same instance id takes the member's place.
    let mut second = static_member();
    second.poll(NO_WAIT).unwrap();
    let p = txn_producer(&broker, "tx");
    p.begin_transaction().unwrap();
    let err = p
        .send_offsets_to_transaction(&HashMap::from([(tp(0), 1)]), &old)
        .unwrap_err();
    match &err {
        Error::FencedInstanceId {
            group,
            instance_id,
            member,
        } => {
            assert_eq!((group.as_str(), instance_id.as_str()), ("g", "w1"));
            assert_eq!(member, old.member_id());
        }
        other => panic!("expected FencedInstanceId, got {other:?}"),
    }
    p.abort_transaction().unwrap();
    transact(
        &p,
        "ok",
        &HashMap::from([(tp(0), 1)]),
        &second.group_metadata().unwrap(),
    );
    assert_eq!(committed(&second), [1, -1]);
}
