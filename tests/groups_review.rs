//! Review of consumer groups: commits that would make `__consumer_offsets` unreadable,
//! and a commit racing `delete_group`.

use std::collections::HashMap;

use partlog::{Broker, BrokerConfig, ConsumerConfig, Error, TopicConfig, TopicPartition};

#[test]
fn a_commit_with_an_invalid_group_id_is_refused_and_the_broker_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let tp = TopicPartition::new("t", 0);
    for group in [String::new(), "g".repeat(40_000)] {
        let mut c = broker.consumer(ConsumerConfig {
            group_id: Some(group.clone()),
            ..ConsumerConfig::default()
        });
        c.assign(std::slice::from_ref(&tp)).unwrap();
        let committed = c.commit_sync_offsets(&HashMap::from([(tp.clone(), 3)]));
        assert!(
            matches!(
                committed,
                Err(Error::InvalidConfig {
                    name: "group.id",
                    ..
                })
            ),
            "group of {} bytes: {committed:?}",
            group.len()
        );
    }
    let mut ok = broker.consumer(ConsumerConfig {
        group_id: Some("g".into()),
        ..ConsumerConfig::default()
    });
    ok.assign(std::slice::from_ref(&tp)).unwrap();
    ok.commit_sync_offsets(&HashMap::from([(tp.clone(), 3)]))
        .unwrap();
    drop(ok);
    drop(broker);
    // Nothing undecodable reached __consumer_offsets: the directory opens again, with
    // the valid group's offset.
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    let c = broker.consumer(ConsumerConfig {
        group_id: Some("g".into()),
        ..ConsumerConfig::default()
    });
    let committed = c.committed(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(committed[&tp].offset, 3);
}

/// The committed offset of `tp` that `broker` holds for group `g` in memory, `None` when
/// the group or its offset is gone.
fn committed_in_memory(broker: &Broker, tp: &TopicPartition) -> Option<i64> {
    match broker.describe_group("g") {
        Ok(d) => d
            .partitions
            .iter()
            .find(|p| &p.partition == tp)
            .and_then(|p| p.committed),
        Err(Error::UnknownGroup { .. }) => None,
        Err(e) => panic!("describe_group: {e}"),
    }
}

/// `delete_group` racing a commit: whichever comes first, the offset the broker holds in
/// memory afterwards is the one a reopen reads back from `__consumer_offsets`. A commit
/// that looked the group up before the deletion, and got its lock after, used to land in
/// the log but in the forgotten group: gone from memory, back after a reopen.
#[test]
fn delete_group_racing_a_commit_leaves_memory_and_log_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let commit = |broker: &Broker, offset: i64| {
        let mut c = broker.consumer(ConsumerConfig {
            group_id: Some("g".into()),
            ..ConsumerConfig::default()
        });
        c.assign(std::slice::from_ref(&tp)).unwrap();
        c.commit_sync_offsets(&HashMap::from([(tp.clone(), offset)]))
            .unwrap();
    };
    for round in 1..=40 {
        commit(&broker, 0);
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                commit(&broker, round);
            });
            start.wait();
            match broker.delete_group("g") {
                Ok(()) | Err(Error::UnknownGroup { .. }) => {}
                Err(e) => panic!("delete_group: {e}"),
            }
        });
        let before = committed_in_memory(&broker, &tp);
        assert!(
            before.is_none_or(|r| r == round),
            "round {round}: {before:?}"
        );
        broker.close().unwrap();
        broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        assert_eq!(
            committed_in_memory(&broker, &tp),
            before,
            "round {round}: the reopened broker reads another offset than it held"
        );
    }
}
