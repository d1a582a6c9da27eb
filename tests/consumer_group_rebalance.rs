//! Consumer groups: members split a topic's partitions, hand them over on join, leave,
//! drop and expiry (by the broker's clock), static members come back without a
//! rebalance, stale members are fenced, cooperative-sticky revokes only what moves, and
//! admin calls report and change committed offsets.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partlog::{
    Assignor, Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerRebalanceListener,
    CooperativeStickyAssignor, Error, ManualClock, OffsetReset, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord, RangeAssignor, TopicConfig, TopicPartition,
};

const NO_WAIT: Duration = Duration::ZERO;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Broker {
    Broker::open(
        dir,
        BrokerConfig {
            clock: clock.clone(),
            offsets_topic_partitions: 3,
            ..BrokerConfig::default()
        },
    )
    .unwrap()
}

fn config(group: &str, assignor: Arc<dyn Assignor>) -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some(group.into()),
        partition_assignment_strategy: vec![assignor],
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    }
}

fn tps(topic: &str, ps: &[i32]) -> BTreeSet<TopicPartition> {
    ps.iter().map(|p| TopicPartition::new(topic, *p)).collect()
}

fn owned(c: &Consumer) -> BTreeSet<TopicPartition> {
    c.assignment().into_iter().collect()
}

fn poll_all(cs: &mut [&mut Consumer], rounds: usize) {
    for _ in 0..rounds {
        for c in cs.iter_mut() {
            c.poll(NO_WAIT).unwrap();
        }
    }
}

fn produce(broker: &Broker, topic: &str, partitions: i32, per_partition: i64) {
    let producer: Producer = broker.producer(ProducerConfig::default());
    for p in 0..partitions {
        for i in 0..per_partition {
            let value = format!("{p}-{i}");
            producer
                .send_blocking(ProducerRecord::new(topic, value.as_bytes()).partition(p))
                .unwrap();
        }
    }
    producer.flush().unwrap();
}

/// Records each callback, for assertions on what was revoked and assigned.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

/// A callback's name and partitions.
type Event = (String, Vec<TopicPartition>);

/// A describe row: partition, committed, log end offset, lag.
type Row = (i32, Option<i64>, Option<i64>, Option<i64>);

impl Events {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl ConsumerRebalanceListener for Events {
    fn on_partitions_revoked(
        &mut self,
        _: &mut Consumer,
        tps: &[TopicPartition],
    ) -> partlog::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(("revoked".into(), tps.to_vec()));
        Ok(())
    }
    fn on_partitions_assigned(
        &mut self,
        _: &mut Consumer,
        tps: &[TopicPartition],
    ) -> partlog::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(("assigned".into(), tps.to_vec()));
        Ok(())
    }
    fn on_partitions_lost(
        &mut self,
        _: &mut Consumer,
        tps: &[TopicPartition],
    ) -> partlog::Result<()> {
        self.0.lock().unwrap().push(("lost".into(), tps.to_vec()));
        Ok(())
    }
}

#[test]
fn two_range_members_split_and_hand_over_on_leave() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 4, TopicConfig::default()).unwrap();
    let mut a = broker.consumer(config("g", Arc::new(RangeAssignor)));
    let mut b = broker.consumer(config("g", Arc::new(RangeAssignor)));
    a.subscribe(&["t"]).unwrap();
    a.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&a), tps("t", &[0, 1, 2, 3]));
    b.subscribe(&["t"]).unwrap();
    poll_all(&mut [&mut b, &mut a], 3);
    // Range by member id order: the first member takes 0-1, the second 2-3.
    let (first, second) = if a.member_id() < b.member_id() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert_eq!(owned(first), tps("t", &[0, 1]));
    assert_eq!(owned(second), tps("t", &[2, 3]));
    let d = broker.describe_group("g").unwrap();
    assert_eq!(d.assignor.as_deref(), Some("range"));
    assert_eq!(d.members.len(), 2);
    b.close().unwrap();
    a.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&a), tps("t", &[0, 1, 2, 3]));
}

#[test]
fn commits_are_fenced_after_the_partition_moves() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    produce(&broker, "t", 2, 5);
    let mut a = broker.consumer(ConsumerConfig {
        max_poll_interval: Duration::from_millis(100),
        ..config("g", Arc::new(RangeAssignor))
    });
    a.subscribe(&["t"]).unwrap();
    let got = a.poll(NO_WAIT).unwrap();
    assert!(!got.is_empty());
    a.commit_sync().unwrap();
    // a stops polling; b's poll after max_poll_interval removes it and takes everything.
    clock.advance(101);
    let mut b = broker.consumer(config("g", Arc::new(RangeAssignor)));
    b.subscribe(&["t"]).unwrap();
    b.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&b), tps("t", &[0, 1]));
    let stale: HashMap<TopicPartition, i64> = [(TopicPartition::new("t", 0), 5)].into();
    let err = a.commit_sync_offsets(&stale).unwrap_err();
    match &err {
        Error::CommitFailed {
            group,
            topic,
            partition,
            ..
        } => {
            assert_eq!((group.as_str(), topic.as_str(), *partition), ("g", "t", 0));
        }
        other => panic!("expected CommitFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("no longer in the group"), "{err}");
    // b resumes where a committed: a's poll returned records up to some position.
    let committed = b
        .committed(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
        .unwrap();
    let total: i64 = committed.values().map(|o| o.offset).sum();
    assert_eq!(total as usize, got.len());
    // a, polling again, loses its partitions and rejoins as a new member.
    let events = Events::default();
    drop(a);
    let mut c = broker.consumer(config("g", Arc::new(RangeAssignor)));
    c.subscribe_with_listener(&["t"], Box::new(events.clone()))
        .unwrap();
    poll_all(&mut [&mut c, &mut b], 3);
    assert_eq!(owned(&b).len() + owned(&c).len(), 2);
    assert!(owned(&b).is_disjoint(&owned(&c)));
}

#[test]
fn expired_member_gets_partitions_lost_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let events = Events::default();
    let mut a = broker.consumer(ConsumerConfig {
        max_poll_interval: Duration::from_millis(50),
        ..config("g", Arc::new(RangeAssignor))
    });
    a.subscribe_with_listener(&["t"], Box::new(events.clone()))
        .unwrap();
    a.poll(NO_WAIT).unwrap();
    assert_eq!(
        events.take(),
        vec![(
            "assigned".to_string(),
            tps("t", &[0, 1]).into_iter().collect()
        )]
    );
    let first_id = a.member_id().unwrap().to_string();
    clock.advance(51);
    a.poll(NO_WAIT).unwrap();
    let ev = events.take();
    assert_eq!(
        ev[0],
        ("lost".to_string(), tps("t", &[0, 1]).into_iter().collect())
    );
    assert_eq!(ev.last().unwrap().0, "assigned");
    assert_ne!(a.member_id().unwrap(), first_id);
    assert_eq!(owned(&a), tps("t", &[0, 1]));
}

#[test]
fn static_member_returns_within_session_without_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 4, TopicConfig::default()).unwrap();
    let static_config = |id: &str| ConsumerConfig {
        group_instance_id: Some(id.into()),
        session_timeout: Duration::from_millis(1_000),
        ..config("g", Arc::new(RangeAssignor))
    };
    let mut a = broker.consumer(static_config("a"));
    let mut b = broker.consumer(static_config("b"));
    a.subscribe(&["t"]).unwrap();
    b.subscribe(&["t"]).unwrap();
    poll_all(&mut [&mut a, &mut b], 3);
    let (a_owned, b_owned) = (owned(&a), owned(&b));
    assert_eq!(a_owned.len() + b_owned.len(), 4);
    let generation = broker.describe_group("g").unwrap().generation;
    drop(b);
    clock.advance(500);
    a.poll(NO_WAIT).unwrap();
    // b's partitions wait for it; nobody else takes them.
    assert_eq!(owned(&a), a_owned);
    let mut b2 = broker.consumer(static_config("b"));
    b2.subscribe(&["t"]).unwrap();
    b2.poll(NO_WAIT).unwrap();
    a.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&b2), b_owned);
    assert_eq!(owned(&a), a_owned);
    assert_eq!(broker.describe_group("g").unwrap().generation, generation);
    // Away past the session timeout, the member is removed and a takes over.
    drop(b2);
    clock.advance(1_001);
    poll_all(&mut [&mut a], 2);
    assert_eq!(owned(&a), tps("t", &[0, 1, 2, 3]));
}

#[test]
fn cooperative_sticky_revokes_only_moved_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 6, TopicConfig::default()).unwrap();
    let (ea, eb) = (Events::default(), Events::default());
    let mut a = broker.consumer(config("g", Arc::new(CooperativeStickyAssignor)));
    a.subscribe_with_listener(&["t"], Box::new(ea.clone()))
        .unwrap();
    a.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&a).len(), 6);
    ea.take();
    let mut b = broker.consumer(config("g", Arc::new(CooperativeStickyAssignor)));
    b.subscribe_with_listener(&["t"], Box::new(eb.clone()))
        .unwrap();
    poll_all(&mut [&mut b, &mut a], 4);
    assert_eq!(owned(&a).len(), 3);
    assert_eq!(owned(&b).len(), 3);
    // a revoked exactly the three partitions that moved to b, and nothing it kept.
    let a_events = ea.take();
    let revoked: BTreeSet<TopicPartition> = a_events
        .iter()
        .filter(|(k, _)| k == "revoked")
        .flat_map(|(_, t)| t.clone())
        .collect();
    assert_eq!(revoked, owned(&b));
    let b_assigned: BTreeSet<TopicPartition> = eb
        .take()
        .into_iter()
        .filter(|(k, _)| k == "assigned")
        .flat_map(|(_, t)| t)
        .collect();
    assert_eq!(b_assigned, owned(&b));
}

#[test]
fn admin_describes_resets_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    produce(&broker, "t", 2, 10);
    let mut a = broker.consumer(config("g", Arc::new(RangeAssignor)));
    a.subscribe(&["t"]).unwrap();
    a.poll(NO_WAIT).unwrap();
    let commit: HashMap<TopicPartition, i64> = [
        (TopicPartition::new("t", 0), 4),
        (TopicPartition::new("t", 1), 7),
    ]
    .into();
    a.commit_sync_offsets(&commit).unwrap();
    let negative: HashMap<TopicPartition, i64> = [(TopicPartition::new("t", 1), -1)].into();
    let err = a.commit_sync_offsets(&negative).unwrap_err();
    assert!(
        matches!(err, Error::CommitFailed { partition: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("offset -1 is negative"), "{err}");
    let d = broker.describe_group("g").unwrap();
    let rows: Vec<Row> = d
        .partitions
        .iter()
        .map(|p| (p.partition.partition, p.committed, p.log_end_offset, p.lag))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, Some(4), Some(10), Some(6)),
            (1, Some(7), Some(10), Some(3))
        ]
    );
    assert_eq!(broker.list_groups(), vec!["g".to_string()]);
    match broker.reset_group_offsets("g", "t", OffsetSpec::Earliest) {
        Err(Error::GroupNotEmpty { members: 1, .. }) => {}
        other => panic!("expected GroupNotEmpty, got {other:?}"),
    }
    assert!(matches!(
        broker.delete_group("g"),
        Err(Error::GroupNotEmpty { .. })
    ));
    a.close().unwrap();
    let reset = broker
        .reset_group_offsets("g", "t", OffsetSpec::Offset(8))
        .unwrap();
    assert_eq!(
        reset,
        vec![
            (TopicPartition::new("t", 0), 8),
            (TopicPartition::new("t", 1), 8)
        ]
    );
    broker
        .reset_group_offsets("g", "t", OffsetSpec::Latest)
        .unwrap();
    let d = broker.describe_group("g").unwrap();
    assert!(
        d.partitions
            .iter()
            .all(|p| p.committed == Some(10) && p.lag == Some(0))
    );
    broker.delete_group("g").unwrap();
    assert!(broker.list_groups().is_empty());
    assert!(matches!(
        broker.describe_group("g"),
        Err(Error::UnknownGroup { .. })
    ));
    // Deleted offsets stay deleted after a reopen (tombstones), others come back.
    broker
        .reset_group_offsets("h", "t", OffsetSpec::Offset(3))
        .unwrap();
    broker.close().unwrap();
    drop(broker);
    let broker = open(dir.path(), &clock);
    assert_eq!(broker.list_groups(), vec!["h".to_string()]);
    let d = broker.describe_group("h").unwrap();
    assert!(d.partitions.iter().all(|p| p.committed == Some(3)));
}

#[test]
fn group_operations_need_a_group_id() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let mut c = broker.consumer(ConsumerConfig::default());
    assert!(matches!(c.commit_sync(), Err(Error::NoGroupId { .. })));
    assert!(matches!(c.committed(&[]), Err(Error::NoGroupId { .. })));
    let err = c
        .subscribe_with_listener(&["t"], Box::new(Events::default()))
        .unwrap_err();
    assert!(matches!(err, Error::NoGroupId { .. }));
    let mut e = broker.consumer(ConsumerConfig {
        group_id: Some(String::new()),
        ..ConsumerConfig::default()
    });
    e.subscribe(&["t"]).unwrap();
    assert!(matches!(
        e.poll(NO_WAIT),
        Err(Error::InvalidConfig {
            name: "group.id",
            ..
        })
    ));
}

#[test]
fn a_second_consumer_with_the_same_instance_id_fences_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let static_config = ConsumerConfig {
        group_instance_id: Some("worker-1".into()),
        ..config("g", Arc::new(RangeAssignor))
    };
    let mut a = broker.consumer(static_config.clone());
    a.subscribe(&["t"]).unwrap();
    a.poll(NO_WAIT).unwrap();
    let mut b = broker.consumer(static_config);
    b.subscribe(&["t"]).unwrap();
    b.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&b), tps("t", &[0, 1]));
    let old = a.member_id().unwrap().to_string();
    match a.poll(NO_WAIT) {
        Err(Error::FencedInstanceId {
            group,
            instance_id,
            member,
        }) => assert_eq!(
            (group, instance_id, member),
            ("g".into(), "worker-1".into(), old)
        ),
        other => panic!("expected FencedInstanceId, got {other:?}"),
    }
}

#[test]
fn commits_are_kafka_records_in_the_groups_offsets_partition() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let mut a = broker.consumer(config("g", Arc::new(RangeAssignor)));
    a.subscribe(&["t"]).unwrap();
    a.poll(NO_WAIT).unwrap();
    a.commit_sync_offsets(&[(TopicPartition::new("t", 0), 42)].into())
        .unwrap();
    // "g".hashCode() = 103 in Java; 103 % 3 = 1.
    let part = broker.partition("__consumer_offsets", 1).unwrap();
    assert_eq!(part.log_end_offset(), 1);
    assert_eq!(
        broker
            .partition("__consumer_offsets", 0)
            .unwrap()
            .log_end_offset(),
        0
    );
    let batches = part.read(0, 1 << 20).unwrap();
    let records: Vec<_> = batches[0]
        .records(&partlog::Codecs::default())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key: &[u8] = &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 0];
    assert_eq!(records[0].key.as_deref(), Some(key));
    let mut value = vec![0, 3];
    value.extend_from_slice(&42i64.to_be_bytes());
    value.extend_from_slice(&(-1i32).to_be_bytes());
    value.extend_from_slice(&[0, 0]);
    value.extend_from_slice(&1_000i64.to_be_bytes());
    assert_eq!(records[0].value.as_deref(), Some(&value[..]));
    let config = broker.describe_topic("__consumer_offsets").unwrap().config;
    assert_eq!(config.cleanup_policy, partlog::CleanupPolicy::Compact);
    assert_eq!(config.fsync, partlog::FsyncPolicy::EveryAppend);
}

#[test]
fn a_member_waiting_in_poll_hands_partitions_over_without_returning() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let cfg = config("g", Arc::new(RangeAssignor));
    let mut a = broker.consumer(cfg.clone());
    a.subscribe(&["t"]).unwrap();
    a.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&a), tps("t", &[0, 1]));
    // a waits for records for up to a minute: b's join must wake it to revoke.
    let waiting = std::thread::spawn(move || {
        let records = a.poll(Duration::from_secs(60)).unwrap();
        (records.len(), a)
    });
    let mut b = broker.consumer(cfg);
    b.subscribe(&["t"]).unwrap();
    let mut got = Vec::new();
    for _ in 0..600 {
        got = b.poll(Duration::from_millis(100)).unwrap();
        if !owned(&b).is_empty() {
            break;
        }
    }
    let mine = owned(&b);
    assert_eq!(
        mine.len(),
        1,
        "b never got a partition while a waited in poll"
    );
    assert!(got.is_empty());
    // A record for a's partition ends a's poll; its assignment is the other partition.
    let other = tps("t", &[0, 1]).difference(&mine).next().unwrap().clone();
    let producer = broker.producer(ProducerConfig::default());
    producer
        .send_blocking(ProducerRecord::new("t", b"x").partition(other.partition))
        .unwrap();
    let (n, a) = waiting.join().unwrap();
    assert_eq!(n, 1);
    assert_eq!(owned(&a), BTreeSet::from([other]));
}

/// A custom assignor with a bug: every member gets every partition.
#[derive(Debug)]
struct Greedy;

impl Assignor for Greedy {
    fn name(&self) -> &str {
        "greedy"
    }

    fn assign(
        &self,
        partitions: &std::collections::BTreeMap<String, i32>,
        members: &[partlog::MemberSubscription],
    ) -> partlog::GroupAssignment {
        let all: Vec<TopicPartition> = partitions
            .iter()
            .flat_map(|(t, n)| (0..*n).map(move |p| TopicPartition::new(t.as_str(), p)))
            .collect();
        members
            .iter()
            .map(|m| (m.member_id.clone(), all.clone()))
            .collect()
    }
}

#[test]
fn a_custom_assignor_is_used_and_its_invalid_answers_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = open(dir.path(), &clock);
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let mut a = broker.consumer(config("g", Arc::new(Greedy)));
    a.subscribe(&["t"]).unwrap();
    a.poll(NO_WAIT).unwrap();
    assert_eq!(owned(&a), tps("t", &[0, 1]));
    assert_eq!(
        broker.describe_group("g").unwrap().assignor.as_deref(),
        Some("greedy")
    );
    let mut b = broker.consumer(config("g", Arc::new(Greedy)));
    b.subscribe(&["t"]).unwrap();
    for c in [&mut b, &mut a] {
        match c.poll(NO_WAIT) {
            Err(Error::InvalidAssignment {
                group, assignor, ..
            }) => assert_eq!((group.as_str(), assignor.as_str()), ("g", "greedy")),
            other => panic!("expected InvalidAssignment, got {other:?}"),
        }
    }
    // Nobody was given a partition someone else owns.
    assert!(owned(&a).is_disjoint(&owned(&b)));
    // A member that offers no assignor in common cannot join.
    let mut c = broker.consumer(config("g", Arc::new(RangeAssignor)));
    c.subscribe(&["t"]).unwrap();
    let err = c.poll(NO_WAIT).unwrap_err();
    assert!(
        matches!(err, Error::InconsistentGroupProtocol { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("greedy"), "{err}");
}

#[test]
fn a_bad_offsets_record_fails_the_open_naming_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    {
        let broker = open(dir.path(), &clock);
        broker
            .reset_group_offsets("h", "missing", OffsetSpec::Earliest)
            .unwrap_err();
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        broker
            .reset_group_offsets("h", "t", OffsetSpec::Earliest)
            .unwrap();
        let producer = broker.producer(ProducerConfig::default());
        // An OffsetCommitKey whose value has version 9.
        let key: &[u8] = &[0, 1, 0, 1, b'h', 0, 1, b't', 0, 0, 0, 0];
        producer
            .send_blocking(
                ProducerRecord::new("__consumer_offsets", &[0, 9])
                    .key(key)
                    .partition(2),
            )
            .unwrap();
        producer.flush().unwrap();
        broker.close().unwrap();
    }
    let err = Broker::open(
        dir.path(),
        BrokerConfig {
            clock: clock.clone(),
            ..BrokerConfig::default()
        },
    )
    .unwrap_err();
    match &err {
        Error::BadOffsetsRecord {
            partition, offset, ..
        } => assert_eq!((partition.as_str(), *offset), ("__consumer_offsets-2", 1)),
        other => panic!("expected BadOffsetsRecord, got {other:?}"),
    }
    assert!(err.to_string().contains("version 9"), "{err}");
}
