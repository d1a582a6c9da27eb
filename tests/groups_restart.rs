//! A group resumes at its committed offsets after its process dies.
//!
//! The test binary re-runs itself as a child (selected by `PARTLOG_GROUPS_CHILD`): the
//! child joins group `g`, consumes part of a topic in two rounds, commits after each with
//! `commit_sync` (which returns only once the offsets are fsynced to
//! `__consumer_offsets`), prints what it committed, and waits to be killed with SIGKILL.
//! The parent then opens the directory again (recovering: no clean shutdown), and a new
//! member of `g` must start exactly at the committed offsets, with
//! `auto_offset_reset = None`, so an offset that did not survive would be an error.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, ConsumerConfig, OffsetReset, ProducerConfig, ProducerRecord, TopicConfig,
    TopicPartition,
};

const CHILD_ENV: &str = "PARTLOG_GROUPS_CHILD";
const TEST_NAME: &str = "a_killed_member_resumes_at_its_committed_offsets";
const TOPIC: &str = "jobs";
const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 20;

fn consumer_config(reset: OffsetReset) -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some("g".into()),
        auto_offset_reset: reset,
        enable_auto_commit: false,
        max_poll_records: 7,
        ..ConsumerConfig::default()
    }
}

/// The child: consume 7 + 7 records, committing after each poll, then wait for SIGKILL.
fn child(dir: &Path) {
    let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
    let mut consumer = broker.consumer(consumer_config(OffsetReset::Earliest));
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut out = std::io::stdout().lock();
    // libtest has printed `test <name> ... ` without a newline: start a line of our own.
    writeln!(out).unwrap();
    for _ in 0..2 {
        let records = consumer.poll(Duration::from_secs(5)).unwrap();
        assert_eq!(records.len(), 7);
        consumer.commit_sync().unwrap();
    }
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    for (tp, o) in consumer.committed(&tps).unwrap() {
        writeln!(out, "committed {} {}", tp.partition, o.offset).unwrap();
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_member_resumes_at_its_committed_offsets() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
        broker
            .create_topic(TOPIC, PARTITIONS, TopicConfig::default())
            .unwrap();
        let producer = broker.producer(ProducerConfig::default());
        for p in 0..PARTITIONS {
            for i in 0..PER_PARTITION {
                let value = format!("{p}/{i}");
                producer
                    .send_blocking(ProducerRecord::new(TOPIC, value.as_bytes()).partition(p))
                    .unwrap();
            }
        }
        producer.flush().unwrap();
        broker.close().unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut committed = BTreeMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "done" {
            break;
        }
        if let Some(rest) = line.strip_prefix("committed ") {
            let (p, o) = rest.split_once(' ').unwrap();
            committed.insert(p.parse::<i32>().unwrap(), o.parse::<i64>().unwrap());
        }
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    // 14 records read from partitions in turn: every committed offset is inside the log
    // and together they cover exactly what the child read.
    assert_eq!(committed.values().sum::<i64>(), 14, "{committed:?}");

    let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
    assert!(!broker.had_clean_shutdown());
    let described = broker.describe_group("g").unwrap();
    let loaded: BTreeMap<i32, i64> = described
        .partitions
        .iter()
        .map(|p| (p.partition.partition, p.committed.unwrap()))
        .collect();
    assert_eq!(loaded, committed);
    for p in &described.partitions {
        assert_eq!(p.lag, Some(PER_PARTITION - p.committed.unwrap()));
    }
    // A partition without a commit (if any) would fail with NoOffset under reset None.
    let mut consumer = broker.consumer(consumer_config(if committed.len() as i32 == PARTITIONS {
        OffsetReset::None
    } else {
        OffsetReset::Earliest
    }));
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut first: HashMap<i32, i64> = HashMap::new();
    let mut total = 0;
    while total < PARTITIONS as i64 * PER_PARTITION - 14 {
        let records = consumer.poll(Duration::from_secs(5)).unwrap();
        assert!(!records.is_empty(), "the group stopped before the log end");
        for r in &records {
            first.entry(r.partition).or_insert(r.offset);
            assert_eq!(
                r.value.as_deref(),
                Some(format!("{}/{}", r.partition, r.offset).as_bytes())
            );
        }
        total += records.len() as i64;
    }
    for p in 0..PARTITIONS {
        let start = committed.get(&p).copied().unwrap_or(0);
        if start < PER_PARTITION {
            assert_eq!(first.get(&p), Some(&start), "partition {p}");
        }
    }
}
