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
    let tp = TopicPartition::new(topic, 0);
    c.assign(std::slice::from_ref(&tp)).unwrap();
    let lso = broker
        .partition(topic, 0)
        .unwrap()
        .log()
        .last_stable_offset();
    let mut out = Vec::new();
    loop {
        // A poll may come back empty where a fetch held only aborted records or
        // markers, so read on until the position reaches the last stable offset.
        let got = c.poll(Duration::ZERO).unwrap();
        if got.is_empty() && c.position(&tp).unwrap() >= lso {
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

/// A small deterministic generator (xorshift), so the interleavings are reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Interleaved transactions of three producers and plain writes on one partition with
/// tiny segments (so markers, data and `.txnindex` entries land in different segments):
/// read_committed sees exactly the committed and plain records, in offset order, now,
/// after a clean reopen, and after a reopen that must rebuild the producer state and
/// the last stable offset from the log (snapshots deleted).
#[test]
fn read_committed_is_exact_across_rolls_producers_and_reopens() {
    for seed in [0x9e37_79b9_7f4a_7c15u64, 7, 12345] {
        let tmp = tempfile::tempdir().unwrap();
        let config = TopicConfig {
            segment_bytes: 300,
            ..TopicConfig::default()
        };
        let mut expected: Vec<String> = Vec::new();
        let mut open_values: Vec<Vec<String>> = vec![Vec::new(); 3];
        {
            let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
            broker.create_topic("t", 1, config.clone()).unwrap();
            let producers: Vec<Producer> = (0..3)
                .map(|i| txn_producer(&broker, &format!("p{i}"), Duration::from_secs(600)))
                .collect();
            let plain = broker.producer(ProducerConfig::default());
            let mut rng = Rng(seed);
            let mut open = [false; 3];
            for step in 0..120 {
                let i = rng.below(4) as usize;
                if i == 3 {
                    let v = format!("plain{step}");
                    send(&plain, "t", &v);
                    plain.flush().unwrap();
                    expected.push(v);
                    continue;
                }
                let p = &producers[i];
                match (open[i], rng.below(4)) {
                    (false, _) => {
                        p.begin_transaction().unwrap();
                        open[i] = true;
                    }
                    (true, 0) => {
                        p.commit_transaction().unwrap();
                        open[i] = false;
                        expected.append(&mut open_values[i]);
                    }
                    (true, 1) => {
                        p.abort_transaction().unwrap();
                        open[i] = false;
                        open_values[i].clear();
                    }
                    _ => {
                        let v = format!("p{i}-{step}");
                        send(p, "t", &v);
                        p.flush().unwrap();
                        open_values[i].push(v);
                    }
                }
                // What is visible is a prefix of the offset order: everything committed
                // below the first open transaction.
                let seen = read_committed(&broker, "t");
                let offsets = offsets_of_values(&broker);
                let lso = broker.partition("t", 0).unwrap().log().last_stable_offset();
                let mut want: Vec<String> = expected
                    .iter()
                    .filter(|v| offsets[*v] < lso)
                    .cloned()
                    .collect();
                want.sort_by_key(|v| offsets[v]);
                assert_eq!(seen, want, "seed {seed} step {step}");
            }
            for (i, p) in producers.iter().enumerate() {
                if open[i] {
                    p.commit_transaction().unwrap();
                    expected.append(&mut open_values[i]);
                }
            }
            let log = broker.partition("t", 0).unwrap().log().clone();
            assert!(log.segment_count() > 5, "seed {seed}: rolls happened");
            assert_eq!(log.last_stable_offset(), log.log_end_offset());
            let offsets = offsets_of_values(&broker);
            let mut want = expected.clone();
            want.sort_by_key(|v| offsets[v]);
            assert_eq!(read_committed(&broker, "t"), want, "seed {seed}");
            expected = want;
        }
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        assert_eq!(
            read_committed(&broker, "t"),
            expected,
            "seed {seed}, reopened"
        );
        drop(broker);
        let dir = tmp.path().join("t-0");
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "snapshot") {
                std::fs::remove_file(path).unwrap();
            }
        }
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        let log = broker.partition("t", 0).unwrap().log().clone();
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
        assert_eq!(
            read_committed(&broker, "t"),
            expected,
            "seed {seed}, rebuilt"
        );
    }
}

/// The offset of every record of `t`-0, by value.
fn offsets_of_values(broker: &Broker) -> std::collections::HashMap<String, i64> {
    let log = broker.partition("t", 0).unwrap().log().clone();
    let mut out = std::collections::HashMap::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        for b in log.read(offset, 1 << 20).unwrap() {
            if !b.is_control() {
                for r in b.records(log.codecs()).unwrap() {
                    let r = r.unwrap();
                    let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                    out.insert(v, r.offset);
                }
            }
            offset = b.next_offset();
        }
    }
    out
}

fn producer_batch(pid: i64, seq: i32, transactional: bool, ts: i64) -> partlog::EncodedBatch {
    let mut b = partlog::BatchBuilder::new(partlog::Compression::None)
        .producer(partlog::record::ProducerInfo {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: seq,
        })
        .transactional(transactional);
    b.push(ts, None, Some(b"v"), &[]);
    b.build(&partlog::Codecs::default()).unwrap()
}

/// Every idempotent `Producer` gets a new producer id, so a partition written by
/// short-lived producers would otherwise keep (and snapshot) every id it ever saw.
#[test]
fn producers_idle_past_the_expiration_are_forgotten_at_roll() {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let t0 = 1_700_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let log = partlog::Log::open_with(
        &dir,
        partlog::LogConfig::default(),
        partlog::LogOptions {
            clock: clock.clone(),
            ..partlog::LogOptions::default()
        },
    )
    .unwrap();
    for pid in 0..50 {
        log.append(producer_batch(pid, 0, false, t0)).unwrap();
    }
    // An open transaction keeps its producer however long it is idle.
    log.append(producer_batch(200, 0, true, t0)).unwrap();
    clock.advance(DAY_MS + 1);
    let recent = log.append(producer_batch(100, 0, false, t0)).unwrap();
    log.roll_now().unwrap();
    let snapshot = dir.join(format!("{:020}.snapshot", log.log_end_offset()));
    assert_eq!(
        std::fs::metadata(&snapshot).unwrap().len(),
        10 + 2 * 46,
        "only producers 100 and 200 are left"
    );
    assert_eq!(log.open_transactions(), vec![(200, 0, 50)]);
    // The recent producer's resend is still answered with its offsets.
    assert_eq!(
        log.append(producer_batch(100, 0, false, t0)).unwrap(),
        recent
    );
    // An expired producer is unknown again: its next sequence is accepted as is.
    let end = log.log_end_offset();
    assert_eq!(
        log.append(producer_batch(3, 9, false, t0))
            .unwrap()
            .base_offset,
        end
    );
}

/// A partition can hold batches of producer ids this broker never handed out (a
/// directory copied from Kafka, or batches appended raw): a new producer must not get
/// one of those ids, or its first batch is taken for a resend of the old producer's and
/// acknowledged without being written.
#[test]
fn a_new_producer_never_gets_an_id_the_partitions_already_know() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        let log = broker.partition("t", 0).unwrap().log().clone();
        // Producers 0..3 of "another broker", one single-record batch each.
        for pid in 0..3 {
            log.append(producer_batch(pid, 0, false, 1_700_000_000_000))
                .unwrap();
        }
    }
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    let p = broker.producer(ProducerConfig::default());
    let sent = p
        .send(ProducerRecord::new("t", &b"new"[..]).partition(0))
        .unwrap();
    p.flush().unwrap();
    let meta = sent.wait().unwrap();
    assert_eq!(meta.offset, 3, "written after the three old records");
    let log = broker.partition("t", 0).unwrap().log().clone();
    assert_eq!(log.log_end_offset(), 4);
    let last = log.read(3, 1 << 20).unwrap();
    assert!(last[0].producer_id() >= 3, "{}", last[0].producer_id());
}

/// A commit failed after PrepareCommit; a new producer's init finishes it with its
/// bumped epoch and fails again half-way. The bumped epoch must be durable before its
/// markers are written, or the reopen's recovery writes markers with the old epoch,
/// which the partitions that got the new one refuse (and the directory does not open).
#[test]
fn a_prepared_commit_finished_by_a_new_epoch_survives_a_failure_and_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (broker, p) = broker_with_failing_partition(tmp.path(), clock);
    assert!(p.commit_transaction().is_err());
    let successor = broker.producer(ProducerConfig {
        transactional_id: Some("tx".into()),
        ..ProducerConfig::default()
    });
    assert!(successor.init_transactions().is_err());
    drop((p, successor));
    drop(broker);
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    let t = &broker.transactions()[0];
    assert_eq!(
        (t.state, t.producer_epoch),
        (TransactionState::CompleteCommit, 1)
    );
    assert_eq!(read_committed(&broker, "a"), vec!["x"]);
    assert_eq!(read_committed(&broker, "b"), vec!["y"]);
}

/// The timeout abort cannot record its decision (the `__transaction_state` write
/// fails): no marker may carry the new epoch then, or the reopen's recovery, which aborts
/// with the recorded (old) epoch, is refused by those partitions.
#[test]
fn no_marker_is_written_for_an_abort_whose_decision_was_not_recorded() {
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
    for t in ["a", "b"] {
        broker.create_topic(t, 1, TopicConfig::default()).unwrap();
    }
    let p = txn_producer(&broker, "tx", Duration::from_secs(10));
    p.begin_transaction().unwrap();
    send(&p, "a", "x");
    send(&p, "b", "y");
    p.flush().unwrap();
    let state = broker.partition("__transaction_state", 0).unwrap();
    state.log().close().unwrap();
    for _ in 0..2 {
        clock.advance(11_000);
        // The broker's timeout thread may try first; every attempt fails.
        let _failed = broker.abort_expired_transactions();
    }
    for t in ["a", "b"] {
        let log = broker.partition(t, 0).unwrap().log().clone();
        assert_eq!(log.log_end_offset(), 1, "{t}: no marker");
    }
    assert!(p.commit_transaction().is_err(), "the producer is fenced");
    drop(p);
    drop(broker);
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    assert_eq!(
        broker.transactions()[0].state,
        TransactionState::CompleteAbort
    );
    assert_eq!(read_committed(&broker, "a"), Vec::<String>::new());
    assert_eq!(read_committed(&broker, "b"), Vec::<String>::new());
}

/// Records sent by another thread while a transaction commits either join it (flushed
/// before the COMMIT marker) or are refused; none lands after the marker, where it
/// would open a transaction the coordinator never heard of and hold the last stable
/// offset back for good.
#[test]
fn sends_racing_a_commit_join_it_or_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("race", 1, TopicConfig::default())
        .unwrap();
    let p = txn_producer(&broker, "racer", Duration::from_secs(60));
    let mut total = 0;
    for round in 0..20 {
        p.begin_transaction().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = {
            let (p, stop) = (p.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut accepted = 0u32;
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Acquire) {
                        return accepted;
                    }
                    let value = format!("{round}-{i}");
                    match p.send(ProducerRecord::new("race", value.as_bytes()).partition(0)) {
                        Ok(h) => {
                            drop(h);
                            accepted += 1;
                        }
                        Err(Error::InvalidTxnState { .. }) => return accepted,
                        Err(e) => panic!("unexpected send error: {e}"),
                    }
                }
                unreachable!()
            })
        };
        std::thread::sleep(Duration::from_micros(200 * (round % 5)));
        p.commit_transaction().unwrap();
        // Sends after the commit must fail; give the sender a moment to try some.
        std::thread::sleep(Duration::from_millis(2));
        stop.store(true, std::sync::atomic::Ordering::Release);
        let accepted = sender.join().unwrap();
        total += accepted as usize;
        let log = broker.partition("race", 0).unwrap().log().clone();
        assert_eq!(
            log.last_stable_offset(),
            log.log_end_offset(),
            "round {round}: {accepted} records accepted; nothing may stay open after the commit"
        );
    }
    // Every accepted record committed, once.
    let committed = read_committed(&broker, "race");
    assert_eq!(committed.len(), total);
    let distinct: std::collections::HashSet<_> = committed.iter().collect();
    assert_eq!(distinct.len(), total);
}
