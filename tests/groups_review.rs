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

/// The committed offsets that `broker` holds for group `g` in memory, by partition
/// (empty when the group is gone).
fn committed_in_memory(broker: &Broker) -> Vec<(i32, i64)> {
    match broker.describe_group("g") {
        Ok(d) => d
            .partitions
            .iter()
            .filter_map(|p| Some((p.partition.partition, p.committed?)))
            .collect(),
        Err(Error::UnknownGroup { .. }) => Vec::new(),
        Err(e) => panic!("describe_group: {e}"),
    }
}

/// `delete_group` racing a commit: whichever comes first, the offsets the broker holds
/// in memory afterwards are the ones a reopen reads back from `__consumer_offsets`. Each
/// round commits a partition the group has no offset for yet, beside one it has. A
/// commit that looked the group up before the deletion, and got its lock after, used to
/// land in the log but in the forgotten group: gone from memory, back after a reopen;
/// and a commit between the deletion's choice of tombstones and its write got none (a
/// narrow window, which this test meets in some runs only).
#[test]
fn delete_group_racing_a_commit_leaves_memory_and_log_alike() {
    const ROUNDS: i32 = 40;
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("t", ROUNDS + 1, TopicConfig::default())
        .unwrap();
    let commit = |broker: &Broker, partition: i32, offset: i64| {
        let tp = TopicPartition::new("t", partition);
        let mut c = broker.consumer(ConsumerConfig {
            group_id: Some("g".into()),
            ..ConsumerConfig::default()
        });
        c.assign(std::slice::from_ref(&tp)).unwrap();
        c.commit_sync_offsets(&HashMap::from([(tp, offset)]))
            .unwrap();
    };
    for round in 1..=ROUNDS {
        commit(&broker, 0, 0);
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                commit(&broker, round, i64::from(round));
            });
            start.wait();
            match broker.delete_group("g") {
                Ok(()) | Err(Error::UnknownGroup { .. }) => {}
                Err(e) => panic!("delete_group: {e}"),
            }
        });
        let before = committed_in_memory(&broker);
        assert!(
            before.is_empty() || before == vec![(round, i64::from(round))],
            "round {round}: {before:?}"
        );
        broker.close().unwrap();
        broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        assert_eq!(
            committed_in_memory(&broker),
            before,
            "round {round}: the reopened broker reads other offsets than it held"
        );
    }
}
