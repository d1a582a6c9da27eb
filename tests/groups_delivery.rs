//! Delivery guarantees of a group across rebalances.
//!
//! - Committing positions in `on_partitions_revoked` (auto-commit off): every record is
//!   delivered exactly once, whatever the sequence of joins, closes, polls and partition
//!   additions (members that crash or are removed for not polling lose what they did not
//!   commit, so those belong to the at-least-once case).
//! - Auto-commit: at-least-once. Members that crash (dropped without `close`) or stop
//!   polling past `max_poll_interval` leave records polled since the last interval
//!   commit uncommitted, and the next owner delivers them again; nothing is skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerRebalanceListener, ManualClock,
    OffsetReset, ProducerConfig, ProducerRecord, TopicConfig, TopicPartition, assignor_by_name,
};
use proptest::prelude::*;

const TOPIC: &str = "work";

/// Commits the position of every partition being revoked.
struct CommitOnRevoke;

impl ConsumerRebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> partlog::Result<()> {
        let mut offsets = HashMap::new();
        for tp in partitions {
            offsets.insert(tp.clone(), consumer.position(tp)?);
        }
        consumer.commit_sync_offsets(&offsets)
    }

    /// Lost partitions may be owned by someone else already: nothing to commit.
    fn on_partitions_lost(
        &mut self,
        _: &mut Consumer,
        _: &[TopicPartition],
    ) -> partlog::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Join,
    Close(usize),
    /// Drop without close (auto-commit runs only).
    Crash(usize),
    /// Stop polling until time passes (auto-commit runs only).
    Stall(usize),
    Poll(usize),
    Advance(i64),
    AddPartition,
    Produce(u8),
}

struct Run {
    broker: Broker,
    clock: Arc<ManualClock>,
    assignor: &'static str,
    auto_commit: bool,
    consumers: Vec<(Consumer, bool)>,
    seen: BTreeMap<(i32, i64), u32>,
    produced: u64,
}

impl Run {
    fn new(assignor: &'static str, auto_commit: bool) -> (tempfile::TempDir, Run) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let broker = Broker::open(
            dir.path(),
            BrokerConfig {
                clock: clock.clone(),
                offsets_topic_partitions: 2,
                ..BrokerConfig::default()
            },
        )
        .unwrap();
        broker
            .create_topic(TOPIC, 4, TopicConfig::default())
            .unwrap();
        let mut run = Run {
            broker,
            clock,
            assignor,
            auto_commit,
            consumers: Vec::new(),
            seen: BTreeMap::new(),
            produced: 0,
        };
        run.produce(40);
        (dir, run)
    }

    fn produce(&mut self, n: u64) {
        let producer = self.broker.producer(ProducerConfig::default());
        let partitions = self.broker.partition_count(TOPIC).unwrap();
        for i in 0..n {
            let p = ((self.produced + i) % partitions as u64) as i32;
            producer
                .send_blocking(ProducerRecord::new(TOPIC, b"x").partition(p))
                .unwrap();
        }
        producer.flush().unwrap();
        self.produced += n;
    }

    fn join(&mut self) {
        let mut c = self.broker.consumer(ConsumerConfig {
            group_id: Some("workers".into()),
            partition_assignment_strategy: vec![assignor_by_name(self.assignor).unwrap()],
            enable_auto_commit: self.auto_commit,
            auto_commit_interval: Duration::from_millis(100),
            max_poll_interval: Duration::from_millis(1_000),
            auto_offset_reset: OffsetReset::Earliest,
            max_poll_records: 3,
            ..ConsumerConfig::default()
        });
        if self.auto_commit {
            c.subscribe(&[TOPIC]).unwrap();
        } else {
            c.subscribe_with_listener(&[TOPIC], Box::new(CommitOnRevoke))
                .unwrap();
        }
        self.consumers.push((c, false));
        let last = self.consumers.len() - 1;
        self.poll(last);
    }

    /// Polls once and "processes" the records: counts each delivery.
    fn poll(&mut self, i: usize) {
        let (c, stalled) = &mut self.consumers[i];
        if *stalled {
            return;
        }
        for r in c.poll(Duration::ZERO).unwrap() {
            *self.seen.entry((r.partition, r.offset)).or_default() += 1;
        }
    }

    fn apply(&mut self, op: &Op) {
        let n = self.consumers.len();
        match *op {
            Op::Join => self.join(),
            Op::Close(i) if n > 0 => self.consumers.remove(i % n).0.close().unwrap(),
            Op::Crash(i) if n > 0 && self.auto_commit => drop(self.consumers.remove(i % n)),
            Op::Stall(i) if n > 0 && self.auto_commit => self.consumers[i % n].1 = true,
            Op::Poll(i) if n > 0 => self.poll(i % n),
            Op::Advance(ms) if self.auto_commit => self.clock.advance(ms),
            Op::AddPartition => {
                let now = self.broker.partition_count(TOPIC).unwrap();
                self.broker.add_partitions(TOPIC, now + 1).unwrap();
            }
            Op::Produce(k) => self.produce(u64::from(k)),
            _ => {}
        }
    }

    /// Everyone polls (stalled ones too) until every record was delivered or nothing
    /// moves any more.
    fn drain(&mut self) {
        if self.consumers.is_empty() {
            self.join();
        }
        for c in &mut self.consumers {
            c.1 = false;
        }
        for _ in 0..200 {
            if self.seen.len() as u64 == self.produced {
                break;
            }
            for i in 0..self.consumers.len() {
                self.poll(i);
            }
        }
    }

    fn ends(&self) -> u64 {
        let parts = self.broker.partition_count(TOPIC).unwrap();
        (0..parts)
            .map(|p| self.broker.partition(TOPIC, p).unwrap().log_end_offset() as u64)
            .sum()
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Join),
        2 => (0usize..8).prop_map(Op::Close),
        2 => (0usize..8).prop_map(Op::Crash),
        1 => (0usize..8).prop_map(Op::Stall),
        8 => (0usize..8).prop_map(Op::Poll),
        2 => (0i64..1_500).prop_map(Op::Advance),
        1 => Just(Op::AddPartition),
        2 => (1u8..10).prop_map(Op::Produce),
    ]
}

const ASSIGNORS: [&str; 4] = ["range", "roundrobin", "sticky", "cooperative-sticky"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Commits in the revoke callback: each record exactly once.
    #[test]
    fn commit_on_revoke_delivers_each_record_once(
        assignor in prop::sample::select(ASSIGNORS.to_vec()),
        ops in prop::collection::vec(op(), 1..50),
    ) {
        let (_dir, mut run) = Run::new(assignor, false);
        for op in &ops {
            run.apply(op);
        }
        run.drain();
        prop_assert_eq!(run.ends(), run.produced);
        prop_assert_eq!(run.seen.len() as u64, run.produced, "records skipped");
        let twice: Vec<_> = run.seen.iter().filter(|(_, n)| **n > 1).collect();
        prop_assert!(twice.is_empty(), "delivered more than once: {:?}", twice);
    }

    /// Auto-commit with crashes and stalls: every record at least once.
    #[test]
    fn auto_commit_delivers_each_record_at_least_once(
        assignor in prop::sample::select(ASSIGNORS.to_vec()),
        ops in prop::collection::vec(op(), 1..50),
    ) {
        let (_dir, mut run) = Run::new(assignor, true);
        for op in &ops {
            run.apply(op);
        }
        run.drain();
        prop_assert_eq!(run.seen.len() as u64, run.produced, "records skipped");
    }
}

/// The duplicate auto-commit allows: a crash between interval commits.
#[test]
fn auto_commit_redelivers_what_a_crashed_member_polled_after_its_last_commit() {
    let (_dir, mut run) = Run::new("range", true);
    run.join();
    let first: u32 = run.seen.values().sum();
    assert_eq!(first, 3);
    // The interval passes: the next poll commits the three positions, then polls three more.
    run.clock.advance(100);
    run.poll(0);
    assert_eq!(run.seen.values().sum::<u32>(), 6);
    drop(run.consumers.remove(0));
    run.join();
    run.drain();
    assert_eq!(run.seen.len() as u64, run.produced);
    let twice: Vec<(i32, i64)> = run
        .seen
        .iter()
        .filter(|(_, n)| **n == 2)
        .map(|(k, _)| *k)
        .collect();
    // Exactly the three records polled after the last commit came again.
    assert_eq!(twice.len(), 3, "{twice:?}");
    assert!(run.seen.values().all(|n| *n <= 2));
}
