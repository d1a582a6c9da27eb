//! Topic creation, growth and deletion against crashes and I/O errors: a topic that was
//! being created comes back whole with its own config or not at all, and a topic that was
//! being deleted never comes back from the partition directories a crash left.
//!
//! A crash is simulated by the files it leaves: the topic list (`partlog-topics`) and the
//! list of deletions begun (`partlog-deleting`) as `docs/format.md` §8.2 describes them,
//! and the partition directories.

use std::fs;
use std::path::Path;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, CleanupPolicy, ConsumerConfig, OffsetReset, ProducerConfig,
    ProducerRecord, TopicConfig, TopicPartition,
};

fn open(dir: &Path) -> Broker {
    Broker::open(dir, BrokerConfig::default()).unwrap()
}

/// A config that differs from the default in ways a reopen would show.
fn own_config() -> TopicConfig {
    TopicConfig {
        retention_ms: 123_456,
        cleanup_policy: CleanupPolicy::Compact,
        ..TopicConfig::default()
    }
}

fn produce(broker: &Broker, topic: &str, partitions: i32) {
    let p = broker.producer(ProducerConfig::default());
    for partition in 0..partitions {
        let value = format!("{topic}-{partition}");
        p.send_blocking(
            ProducerRecord::new(topic, value.as_bytes())
                .key(b"k")
                .partition(partition),
        )
        .unwrap();
    }
}

fn values(broker: &Broker, topic: &str, partitions: i32) -> Vec<String> {
    let mut c = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    c.assign(&tps).unwrap();
    let mut out = Vec::new();
    loop {
        let records = c.poll(Duration::ZERO).unwrap();
        if records.is_empty() {
            out.sort();
            return out;
        }
        out.extend(
            records
                .into_iter()
                .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()),
        );
    }
}

/// The topic list file without `topic`'s line: the state after `delete_topic` wrote it.
fn unlist(dir: &Path, topic: &str) {
    let path = dir.join("partlog-topics");
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .skip(2)
        .filter(|l| l.split(' ').next() != Some(topic))
        .collect();
    let mut out = format!("0\n{}\n", lines.len());
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    fs::write(path, out).unwrap();
}

fn mark_deleting(dir: &Path, topic: &str) {
    fs::write(dir.join("partlog-deleting"), format!("0\n1\n{topic}\n")).unwrap();
}

#[test]
fn a_crash_inside_delete_topic_finishes_the_deletion_at_the_next_open() {
    for listed in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        {
            let broker = open(dir);
            broker.create_topic("gone", 2, own_config()).unwrap();
            broker.create_topic("kept", 1, own_config()).unwrap();
            produce(&broker, "gone", 2);
            produce(&broker, "kept", 1);
            broker.close().unwrap();
        }
        // The deletion was recorded; the crash came before (listed) or after the topic
        // list was rewritten, and before partition 1's directory was removed.
        mark_deleting(dir, "gone");
        if !listed {
            unlist(dir, "gone");
            fs::remove_dir_all(dir.join("gone-0")).unwrap();
        }
        assert!(dir.join("gone-1").is_dir());
        let broker = open(dir);
        assert_eq!(broker.topics(), ["kept"], "listed: {listed}");
        assert!(!dir.join("gone-0").exists() && !dir.join("gone-1").exists());
        assert!(!dir.join("partlog-deleting").exists());
        assert_eq!(values(&broker, "kept", 1), ["kept-0"]);
        // The name can be used again, empty and with its new config.
        broker
            .create_topic("gone", 1, TopicConfig::default())
            .unwrap();
        assert_eq!(values(&broker, "gone", 1), Vec::<String>::new());
        broker.close().unwrap();
        let broker = open(dir);
        assert_eq!(broker.topics(), ["gone", "kept"]);
        assert_eq!(
            broker.describe_topic("gone").unwrap().config.cleanup_policy,
            CleanupPolicy::Delete
        );
    }
}

#[test]
fn delete_topic_leaves_no_deletion_pending_and_the_topic_stays_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = open(dir);
    broker.create_topic("gone", 3, own_config()).unwrap();
    produce(&broker, "gone", 3);
    broker.delete_topic("gone").unwrap();
    assert!(!dir.join("partlog-deleting").exists());
    assert!((0..3).all(|p| !dir.join(format!("gone-{p}")).exists()));
    drop(broker);
    let broker = open(dir);
    assert_eq!(broker.topics(), Vec::<String>::new());
}

#[test]
fn a_topic_listed_before_its_partitions_exist_is_created_whole_with_its_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let broker = open(dir);
        broker.create_topic("t", 3, own_config()).unwrap();
        produce(&broker, "t", 3);
        broker.close().unwrap();
    }
    // What a crash inside create_topic leaves: the list names the topic, the last
    // partition's directory was not made yet.
    fs::remove_dir_all(dir.join("t-2")).unwrap();
    let broker = open(dir);
    assert_eq!(broker.partition_count("t").unwrap(), 3);
    assert!(dir.join("t-2").is_dir());
    let d = broker.describe_topic("t").unwrap();
    assert_eq!(d.config.retention_ms, 123_456);
    assert_eq!(d.config.cleanup_policy, CleanupPolicy::Compact);
    assert_eq!(values(&broker, "t", 3), ["t-0", "t-1"]);
}

#[test]
fn create_topic_that_fails_on_a_partition_leaves_no_topic_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = open(dir);
    // A plain file where partition 1's directory must go: its log cannot be created.
    fs::write(dir.join("t-1"), b"in the way").unwrap();
    let err = broker.create_topic("t", 3, own_config()).unwrap_err();
    assert!(err.to_string().contains("t-1"), "{err}");
    assert_eq!(broker.topics(), Vec::<String>::new());
    assert!(!dir.join("t-0").exists());
    broker.close().unwrap();
    let broker = open(dir);
    assert_eq!(broker.topics(), Vec::<String>::new());
    // With the obstacle gone, the same create succeeds.
    fs::remove_file(dir.join("t-1")).unwrap();
    broker.create_topic("t", 3, own_config()).unwrap();
    assert_eq!(broker.partition_count("t").unwrap(), 3);
}

#[test]
fn add_partitions_that_fails_halfway_lists_the_partitions_that_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = open(dir);
    broker.create_topic("t", 2, own_config()).unwrap();
    fs::write(dir.join("t-3"), b"in the way").unwrap();
    assert!(broker.add_partitions("t", 4).is_err());
    assert_eq!(broker.partition_count("t").unwrap(), 3);
    broker.close().unwrap();
    let broker = open(dir);
    assert_eq!(broker.partition_count("t").unwrap(), 3);
    assert_eq!(
        broker.describe_topic("t").unwrap().config.cleanup_policy,
        CleanupPolicy::Compact
    );
}

#[test]
fn a_topic_created_again_after_a_delete_does_not_inherit_the_old_offsets_after_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let broker = open(dir);
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        let p = broker.producer(ProducerConfig::default());
        for i in 0..10 {
            p.send_blocking(ProducerRecord::new("t", format!("old-{i}").as_bytes()))
                .unwrap();
        }
        assert_eq!(broker.delete_records("t", 0, 8).unwrap(), 8);
        // The checkpoint files now hold the old topic's start offset, 8.
        broker.flush().unwrap();
        broker.delete_topic("t").unwrap();
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        for i in 0..3 {
            p.send_blocking(ProducerRecord::new("t", format!("new-{i}").as_bytes()))
                .unwrap();
        }
        // A crash: no close, no checkpoint.
        drop(p);
        drop(broker);
    }
    let broker = open(dir);
    let partition = broker.partition("t", 0).unwrap();
    assert_eq!(
        (partition.log_start_offset(), partition.log_end_offset()),
        (0, 3)
    );
    assert_eq!(values(&broker, "t", 1), ["new-0", "new-1", "new-2"]);
}
