//! Exactly once through crashes: a consume-transform-produce loop in a child process is
//! killed with SIGKILL at random moments and restarted; at the end, a read_committed
//! reader of the output sees each input record's copy exactly once, and the group's
//! committed offsets are at the end of the input.
//!
//! The test binary runs itself again as the child (selected by `PARTLOG_EOS_CHILD`, the
//! data directory). Each child opens the broker (whose recovery finishes or aborts what
//! the previous child left), initialises the same transactional id (fencing the previous
//! instance), seeks to the group's committed offsets and moves the rest of the input, a
//! few records per transaction, with the input offsets committed in each transaction.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use partlog::{
    Broker, BrokerConfig, ConsumerConfig, IsolationLevel, OffsetReset, ProducerConfig,
    ProducerRecord, TopicConfig, TopicPartition,
};

const CHILD_ENV: &str = "PARTLOG_EOS_CHILD";
const TEST_NAME: &str = "sigkill_during_consume_transform_produce_keeps_exactly_once";
const GROUP: &str = "eos";
const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 1500;
/// Children killed before the last one may finish.
const KILLS: u64 = 15;

fn tps(topic: &str) -> Vec<TopicPartition> {
    (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect()
}

/// The child: moves what is left of `input` to `output`, then prints `done`.
fn child(dir: &Path) {
    let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
    let producer = broker.producer(ProducerConfig {
        transactional_id: Some("eos-app".into()),
        linger: Duration::from_millis(1),
        ..ProducerConfig::default()
    });
    producer.init_transactions().unwrap();
    let mut consumer = broker.consumer(ConsumerConfig {
        group_id: Some(GROUP.into()),
        enable_auto_commit: false,
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records: 7,
        ..ConsumerConfig::default()
    });
    consumer.assign(&tps("input")).unwrap();
    for (tp, committed) in consumer.committed(&tps("input")).unwrap() {
        consumer.seek(&tp, committed.offset).unwrap();
    }
    println!("ready");
    loop {
        let records = consumer.poll(Duration::from_millis(20)).unwrap();
        if records.is_empty() {
            break;
        }
        producer.begin_transaction().unwrap();
        let mut next = HashMap::new();
        for r in &records {
            let value = format!("{}:{}", r.partition, r.offset);
            let out = ProducerRecord::new("output", value.as_bytes()).partition(r.partition);
            drop(producer.send(out).unwrap());
            next.insert(TopicPartition::new("input", r.partition), r.offset + 1);
        }
        producer.send_offsets_to_transaction(&next, GROUP).unwrap();
        producer.commit_transaction().unwrap();
        println!("committed {}", records.len());
    }
    println!("done");
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs a child; kills it `kill_after` after it is ready (or lets it finish). Returns
/// whether it printed `done`.
fn run_child(dir: &Path, kill_after: Option<Duration>) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut done = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(l) if l.ends_with("ready") => break true,
            Ok(l) if l == "done" => {
                done = true;
                break false;
            }
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => break false,
        }
    };
    if ready && let Some(after) = kill_after {
        std::thread::sleep(after);
        let _already_exited = child.kill(); // SIGKILL
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut commits = 0;
    for line in rx.try_iter() {
        done |= line == "done";
        commits += usize::from(line.starts_with("committed"));
    }
    eprintln!("child: ready {ready}, {commits} commits, done {done}, {status}");
    done && status.success()
}

#[test]
fn sigkill_during_consume_transform_produce_keeps_exactly_once() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
        broker
            .create_topic("input", PARTITIONS, TopicConfig::default())
            .unwrap();
        broker
            .create_topic("output", PARTITIONS, TopicConfig::default())
            .unwrap();
        let producer = broker.producer(ProducerConfig::default());
        for p in 0..PARTITIONS {
            for i in 0..PER_PARTITION {
                let v = format!("in-{p}-{i}");
                drop(
                    producer
                        .send(ProducerRecord::new("input", v.as_bytes()).partition(p))
                        .unwrap(),
                );
            }
        }
        producer.flush().unwrap();
        drop(producer);
        broker.close().unwrap();
    }
    let mut killed = 0;
    for round in 0..KILLS {
        let after = Duration::from_millis(5 + mix(round ^ 0xe05) % 120);
        if run_child(dir, Some(after)) {
            break;
        }
        killed += 1;
    }
    assert!(killed >= 3, "only {killed} children were killed mid-way");
    assert!(run_child(dir, None), "the last child finishes the input");

    let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
    let mut reader = broker.consumer(ConsumerConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    reader.assign(&tps("output")).unwrap();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let records = reader.poll(Duration::from_millis(50)).unwrap();
        if records.is_empty() {
            break;
        }
        for r in records {
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            let (p, _) = v.split_once(':').unwrap();
            assert_eq!(
                p.parse::<i32>().unwrap(),
                r.partition,
                "{v} in its partition"
            );
            *copies.entry(v).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION).map(move |o| (format!("{p}:{o}"), 1)))
        .collect();
    let dupes: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicated: {dupes:?}");
    assert_eq!(copies, expected, "each input exactly once");
    let group = broker.consumer(ConsumerConfig {
        group_id: Some(GROUP.into()),
        ..ConsumerConfig::default()
    });
    let committed = group.committed(&tps("input")).unwrap();
    for tp in tps("input") {
        assert_eq!(committed[&tp].offset, PER_PARTITION, "{tp:?}");
    }
    assert!(
        broker.transactions().iter().all(|t| !t.state.is_open()),
        "no transaction left open"
    );
}
