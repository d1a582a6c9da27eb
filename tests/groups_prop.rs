//! Property: whatever members do — join (dynamic or static), close, drop, stop polling
//! past `max_poll_interval`, come back — and however partitions are added, each partition
//! has at most one owner among the group's members after every step, in the
//! coordinator's view and in what each member's consumer believes it owns; and once
//! everyone has polled enough, every partition of a subscribed topic is owned.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, ManualClock, OffsetReset, TopicConfig,
    TopicPartition, assignor_by_name,
};
use proptest::prelude::*;

const TOPICS: [&str; 2] = ["a", "b"];
const MAX_POLL_MS: i64 = 1_000;
const SESSION_MS: i64 = 3_000;

#[derive(Clone, Debug)]
enum Op {
    /// A new member subscribing to the topics in the mask (bit 0: a, bit 1: b).
    Join { topics: u8, static_member: bool },
    /// `close()` the n-th live consumer.
    Close(usize),
    /// Drop the n-th live consumer without closing (a crash).
    Drop(usize),
    /// The n-th live consumer stops polling (until the end).
    Stall(usize),
    /// The n-th live consumer polls once.
    Poll(usize),
    /// Every non-stalled consumer polls once.
    PollAll,
    /// Time passes.
    Advance(i64),
    /// A topic grows.
    AddPartitions { topic: usize, more: i32 },
    /// A static member that was dropped comes back (the n-th one dropped).
    Rejoin(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..4, any::<bool>()).prop_map(|(topics, s)| Op::Join { topics, static_member: s }),
        2 => (0usize..16).prop_map(Op::Close),
        2 => (0usize..16).prop_map(Op::Drop),
        1 => (0usize..16).prop_map(Op::Stall),
        4 => (0usize..16).prop_map(Op::Poll),
        3 => Just(Op::PollAll),
        2 => (0i64..2_500).prop_map(Op::Advance),
        1 => (0usize..2, 1i32..4).prop_map(|(topic, more)| Op::AddPartitions { topic, more }),
        1 => (0usize..8).prop_map(Op::Rejoin),
    ]
}

struct Member {
    consumer: Consumer,
    instance: Option<(String, Vec<&'static str>)>,
    stalled: bool,
}

struct World {
    broker: Broker,
    clock: Arc<ManualClock>,
    assignor: &'static str,
    members: Vec<Member>,
    /// Static members dropped without leaving: instance id and topics.
    departed: Vec<(String, Vec<&'static str>)>,
    next_instance: usize,
}

impl World {
    fn consumer(&self, topics: &[&str], instance: Option<&str>) -> Consumer {
        let mut c = self.broker.consumer(ConsumerConfig {
            group_id: Some("g".into()),
            group_instance_id: instance.map(str::to_string),
            partition_assignment_strategy: vec![assignor_by_name(self.assignor).unwrap()],
            max_poll_interval: Duration::from_millis(MAX_POLL_MS as u64),
            session_timeout: Duration::from_millis(SESSION_MS as u64),
            enable_auto_commit: false,
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        });
        c.subscribe(topics).unwrap();
        c
    }

    fn apply(&mut self, op: &Op) {
        let n = self.members.len();
        match *op {
            Op::Join {
                topics,
                static_member,
            } => {
                let topics: Vec<&'static str> = (0..2)
                    .filter(|i| topics & (1 << i) != 0)
                    .map(|i| TOPICS[i])
                    .collect();
                let instance = static_member.then(|| {
                    self.next_instance += 1;
                    format!("s{}", self.next_instance)
                });
                let mut consumer = self.consumer(&topics, instance.as_deref());
                consumer.poll(Duration::ZERO).unwrap();
                self.members.push(Member {
                    consumer,
                    instance: instance.map(|i| (i, topics)),
                    stalled: false,
                });
            }
            Op::Close(i) if n > 0 => {
                let m = self.members.remove(i % n);
                if let Some(inst) = m.instance.clone() {
                    self.departed.push(inst);
                }
                m.consumer.close().unwrap();
            }
            Op::Drop(i) if n > 0 => {
                let m = self.members.remove(i % n);
                if let Some(inst) = m.instance.clone() {
                    self.departed.push(inst);
                }
                drop(m);
            }
            Op::Stall(i) if n > 0 => self.members[i % n].stalled = true,
            Op::Poll(i) if n > 0 => {
                let m = &mut self.members[i % n];
                if !m.stalled {
                    m.consumer.poll(Duration::ZERO).unwrap();
                }
            }
            Op::PollAll => self.poll_all(false),
            Op::Advance(ms) => self.clock.advance(ms),
            Op::AddPartitions { topic, more } => {
                let t = TOPICS[topic];
                let now = self.broker.partition_count(t).unwrap();
                self.broker.add_partitions(t, now + more).unwrap();
            }
            Op::Rejoin(i) if !self.departed.is_empty() => {
                let k = i % self.departed.len();
                let (instance, topics) = self.departed.remove(k);
                let mut consumer = self.consumer(&topics, Some(&instance));
                consumer.poll(Duration::ZERO).unwrap();
                self.members.push(Member {
                    consumer,
                    instance: Some((instance, topics)),
                    stalled: false,
                });
            }
            _ => {}
        }
    }

    fn poll_all(&mut self, everyone: bool) {
        for m in &mut self.members {
            if everyone || !m.stalled {
                m.consumer.poll(Duration::ZERO).unwrap();
            }
        }
    }

    /// The one-owner invariant, from both sides. Returns the coordinator's owners.
    fn check(&self) -> Result<BTreeMap<TopicPartition, String>, TestCaseError> {
        let Ok(d) = self.broker.describe_group("g") else {
            return Ok(BTreeMap::new());
        };
        let mut owners = BTreeMap::new();
        for member in &d.members {
            for tp in &member.assignment {
                let previous = owners.insert(tp.clone(), member.member_id.clone());
                prop_assert!(
                    previous.is_none(),
                    "{tp:?} owned by {previous:?} and {}",
                    member.member_id
                );
            }
        }
        let in_group: BTreeMap<&str, BTreeSet<TopicPartition>> = d
            .members
            .iter()
            .map(|m| (m.member_id.as_str(), m.assignment.iter().cloned().collect()))
            .collect();
        let mut believed = BTreeSet::new();
        for m in &self.members {
            // A member removed from the group (and not polled since) is no longer a live
            // member: what it believes does not count, as with Kafka's zombies.
            let Some(expected) = m.consumer.member_id().and_then(|id| in_group.get(id)) else {
                continue;
            };
            let mine: BTreeSet<TopicPartition> = m.consumer.assignment().into_iter().collect();
            prop_assert_eq!(&mine, expected, "consumer and coordinator disagree");
            for tp in mine {
                prop_assert!(
                    believed.insert(tp.clone()),
                    "two consumers believe they own {:?}",
                    tp
                );
            }
        }
        Ok(owners)
    }
}

fn run(assignor: &'static str, partitions: (i32, i32), ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let broker = Broker::open(
        dir.path(),
        BrokerConfig {
            clock: clock.clone(),
            offsets_topic_partitions: 1,
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    broker
        .create_topic("a", partitions.0, TopicConfig::default())
        .unwrap();
    broker
        .create_topic("b", partitions.1, TopicConfig::default())
        .unwrap();
    let mut world = World {
        broker,
        clock,
        assignor,
        members: Vec::new(),
        departed: Vec::new(),
        next_instance: 0,
    };
    for op in &ops {
        world.apply(op);
        world.check()?;
    }
    // Settle: everyone polls (stalled ones too, which may find they were removed), and
    // static members that left stay away past their session.
    world.clock.advance(SESSION_MS + 1);
    for m in &mut world.members {
        m.stalled = false;
    }
    for _ in 0..8 {
        world.poll_all(true);
        world.check()?;
    }
    let owners = world.check()?;
    let d = world.broker.describe_group("g").ok();
    let topics: BTreeSet<String> = d
        .iter()
        .flat_map(|d| d.members.iter().flat_map(|m| m.topics.clone()))
        .collect();
    for t in &topics {
        for p in 0..world.broker.partition_count(t).unwrap() {
            let tp = TopicPartition::new(t.as_str(), p);
            prop_assert!(owners.contains_key(&tp), "{tp:?} unowned after settling");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn one_owner_at_every_step_and_all_owned_when_settled(
        assignor in prop::sample::select(vec!["range", "roundrobin", "sticky", "cooperative-sticky"]),
        partitions in (1i32..9, 1i32..9),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(assignor, partitions, ops)?;
    }
}
