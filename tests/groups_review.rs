//! Review of consumer groups: commits that would make `__consumer_offsets` unreadable.

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
