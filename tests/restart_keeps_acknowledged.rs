//! Every acknowledged record survives a restart at the offset it was acknowledged at,
//! with the same key, value, headers and timestamp, whether the broker was closed
//! cleanly, dropped without closing (the next open recovers: no clean-shutdown marker),
//! or its process was killed with SIGKILL while producing. Topic metadata survives too:
//! configs, partitions added later, and deleted topics staying deleted.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use bytes::Bytes;
use partlog::{
    Broker, BrokerConfig, CleanupPolicy, Compression, ConsumerConfig, ConsumerRecord, Error,
    FsyncPolicy, Header, OffsetReset, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
    TimestampType, TopicCompression, TopicConfig, TopicPartition, partition_for_key,
};

const BASE_TS: i64 = 1_700_000_000_000;

/// The record that `id` stands for: keys, values and header values are sometimes null
/// or empty; the `id` header names the record so a reader can tell which one it is.
#[derive(Clone, Debug, PartialEq)]
struct Expected {
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
    timestamp: i64,
}

fn expected(id: &str, n: u64) -> Expected {
    let key = match n % 5 {
        0 => None,
        1 => Some(Bytes::new()),
        _ => Some(Bytes::from(format!("key-{}", n % 41))),
    };
    let value = match n % 7 {
        0 => None,
        1 => Some(Bytes::new()),
        _ => {
            let mut v = format!("value {id} ").into_bytes();
            let len = v.len() + (n * 37 % 500) as usize;
            let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            while v.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Half random, half repeated: compressible, but not to nothing.
                v.push(if v.len() % 2 == 0 { x as u8 } else { b'r' });
            }
            Some(Bytes::from(v))
        }
    };
    let mut headers = vec![Header::new("id", id.to_string())];
    match n % 3 {
        0 => headers.push(Header {
            key: "null".into(),
            value: None,
        }),
        1 => headers.push(Header::new("empty", Bytes::new())),
        _ => {}
    }
    Expected {
        key,
        value,
        headers,
        // Not monotonic: steps back now and then.
        timestamp: BASE_TS + 10 * n as i64 - (n % 4) as i64 * 15,
    }
}

fn send(producer: &Producer, topic: &str, e: &Expected) -> partlog::Result<partlog::SendHandle> {
    let mut r = ProducerRecord::new(topic, b"")
        .value(e.value.as_deref())
        .headers(&e.headers)
        .timestamp(e.timestamp);
    r.key = e.key.as_deref();
    producer.send(r)
}

fn id_of(r: &ConsumerRecord) -> String {
    let h = r.headers.first().expect("every record has an id header");
    assert_eq!(h.key, "id");
    String::from_utf8(h.value.as_deref().unwrap().to_vec()).unwrap()
}

fn check_record(r: &ConsumerRecord, e: &Expected, at: &str) {
    assert_eq!(r.key, e.key, "{at}: key");
    assert_eq!(r.value, e.value, "{at}: value");
    assert_eq!(r.headers, e.headers, "{at}: headers");
    assert_eq!(r.timestamp, e.timestamp, "{at}: timestamp");
    assert_eq!(r.timestamp_type, TimestampType::CreateTime, "{at}");
}

/// Every record of the topic, by (partition, offset), read from the log start to the
/// log end of each partition; offsets must be dense.
fn read_all(broker: &Broker, topic: &str) -> BTreeMap<(i32, i64), ConsumerRecord> {
    let partitions = broker.partition_count(topic).unwrap();
    let mut out = BTreeMap::new();
    for p in 0..partitions {
        let end = broker.partition(topic, p).unwrap().log_end_offset();
        let mut c = broker.consumer(ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        });
        c.assign(&[TopicPartition::new(topic, p)]).unwrap();
        let mut next = 0;
        while next < end {
            let records = c.poll(Duration::from_secs(10)).unwrap();
            assert!(
                !records.is_empty(),
                "{topic}-{p}: nothing at {next}, end {end}"
            );
            for r in records {
                assert_eq!(r.offset, next, "{topic}-{p}: offsets are dense");
                next += 1;
                out.insert((p, r.offset), r);
            }
        }
    }
    out
}

fn restart_topic_config() -> TopicConfig {
    TopicConfig {
        // Small segments and index intervals: the data spans several segments and
        // index entries, so recovery has work to do.
        segment_bytes: 64 << 10,
        index_interval_bytes: 512,
        ..TopicConfig::default()
    }
}

/// Produces `count` records through producers with different codecs; returns each
/// record's id, content and metadata.
fn produce(
    broker: &Broker,
    topic: &str,
    first: u64,
    count: u64,
) -> Vec<(String, Expected, RecordMetadata)> {
    let producers: Vec<Producer> = [Compression::None, Compression::Lz4, Compression::Gzip]
        .into_iter()
        .map(|compression| {
            broker.producer(ProducerConfig {
                compression,
                batch_size: 4096,
                ..ProducerConfig::default()
            })
        })
        .collect();
    let mut pending = Vec::new();
    for n in first..first + count {
        let id = format!("rec-{n}");
        let e = expected(&id, n);
        let handle = send(&producers[(n % 3) as usize], topic, &e).unwrap();
        pending.push((id, e, handle));
    }
    for p in &producers {
        p.flush().unwrap();
    }
    pending
        .into_iter()
        .map(|(id, e, h)| (id, e, h.wait().unwrap()))
        .collect()
}

fn check_acked(broker: &Broker, topic: &str, acked: &[(String, Expected, RecordMetadata)]) {
    let stored = read_all(broker, topic);
    assert_eq!(stored.len(), acked.len(), "records stored vs acknowledged");
    for (id, e, m) in acked {
        let r = stored
            .get(&(m.partition, m.offset))
            .unwrap_or_else(|| panic!("{id} acknowledged at {m:?} is missing"));
        assert_eq!(&id_of(r), id, "record at {m:?}");
        check_record(r, e, id);
        assert_eq!(m.timestamp, e.timestamp, "{id}: metadata timestamp");
        if let Some(key) = e.key.as_deref() {
            assert_eq!(m.partition, partition_for_key(key, 3), "{id}");
        }
    }
}

#[test]
fn a_cleanly_closed_broker_reopens_with_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("r", 3, restart_topic_config()).unwrap();
    let acked = produce(&broker, "r", 0, 3000);
    check_acked(&broker, "r", &acked);
    let ends: Vec<i64> = (0..3)
        .map(|p| broker.partition("r", p).unwrap().log_end_offset())
        .collect();
    assert!(
        broker.partition("r", 0).unwrap().segment_count() > 1,
        "rolls happened"
    );
    broker.close().unwrap();
    drop(broker);

    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    assert!(broker.had_clean_shutdown());
    for p in 0..3 {
        let part = broker.partition("r", p).unwrap();
        assert_eq!(part.log_end_offset(), ends[p as usize], "partition {p}");
        let report = part.log().recovery_report();
        assert!(report.clean_shutdown, "{report:?}");
        assert_eq!(
            report.segments_recovered, 0,
            "a clean open validates nothing"
        );
    }
    check_acked(&broker, "r", &acked);

    // Appends continue at the log end offset.
    let more = produce(&broker, "r", 3000, 300);
    for (_, _, m) in &more {
        assert!(m.offset >= ends[m.partition as usize], "{m:?}");
    }
    let all: Vec<_> = acked.into_iter().chain(more).collect();
    check_acked(&broker, "r", &all);
    broker.close().unwrap();
}

#[test]
fn a_broker_dropped_without_close_recovers_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    for round in 0..3u64 {
        let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
        if round == 0 {
            broker.create_topic("r", 3, restart_topic_config()).unwrap();
        } else {
            assert!(
                !broker.had_clean_shutdown(),
                "round {round}: no marker after a drop"
            );
            for p in 0..3 {
                let report = broker
                    .partition("r", p)
                    .unwrap()
                    .log()
                    .recovery_report()
                    .clone();
                assert!(!report.clean_shutdown, "{report:?}");
                assert!(report.segments_recovered >= 1, "round {round}: {report:?}");
            }
            check_acked(&broker, "r", &acked);
        }
        acked.extend(produce(&broker, "r", round * 2000, 1900));
        // Records still in a producer's batch when it is dropped: the drop appends them
        // ("dropping the last clone flushes what is pending").
        let lingering = broker.producer(ProducerConfig {
            linger: Duration::from_secs(3600),
            ..ProducerConfig::default()
        });
        let pending: Vec<_> = (round * 2000 + 1900..round * 2000 + 2000)
            .map(|n| {
                let id = format!("rec-{n}");
                let e = expected(&id, n);
                let handle = send(&lingering, "r", &e).unwrap();
                (id, e, handle)
            })
            .collect();
        assert!(
            pending.iter().all(|(_, _, h)| !h.is_done()),
            "nothing appended yet"
        );
        drop(lingering);
        for (id, e, handle) in pending {
            let m = handle
                .wait()
                .unwrap_or_else(|err| panic!("{id} pending at the producer's drop: {err}"));
            acked.push((id, e, m));
        }
        // Dropped, not closed: the producers flushed into the log, but nothing wrote
        // checkpoints or the clean-shutdown marker.
        drop(broker);
        assert!(!dir.path().join(".kafka_cleanshutdown").exists());
    }
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    check_acked(&broker, "r", &acked);
    broker.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// SIGKILL while producing.
//
// The test binary runs itself again as the writer (selected by CHILD_ENV, as
// tests/crash_sigkill.rs does). The child produces with `send_blocking` from two threads
// to a topic whose fsync policy is EveryAppend and prints `acked <id> <partition>
// <offset>` once each send returns. The parent kills it after enough acknowledgements,
// reopens, and checks every acknowledged record; the next round's child recovers the
// log the parent checked.

const CHILD_ENV: &str = "PARTLOG_RESTART_CHILD";
const ROUND_ENV: &str = "PARTLOG_RESTART_ROUND";
const SIGKILL_TEST: &str = "a_producer_killed_with_sigkill_loses_no_acknowledged_record";
const DURABLE: &str = "durable";
const THREADS: u64 = 2;
const ACKS_BEFORE_KILL: usize = 300;
const ROUNDS: u64 = 4;

fn durable_config() -> TopicConfig {
    TopicConfig {
        segment_bytes: 64 << 10,
        fsync: FsyncPolicy::EveryAppend,
        ..TopicConfig::default()
    }
}

/// Record number `seq` of `thread` in `round`.
fn durable_record(round: u64, thread: u64, seq: u64) -> (String, Expected) {
    let id = format!("r{round}-t{thread}-s{seq}");
    let n = round * 1_000_000 + thread * 100_000 + seq;
    (id.clone(), expected(&id, n))
}

fn child(dir: &Path, round: u64) {
    let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
    if round == 0 {
        broker.create_topic(DURABLE, 2, durable_config()).unwrap();
    }
    let ends: Vec<String> = (0..2)
        .map(|p| {
            broker
                .partition(DURABLE, p)
                .unwrap()
                .log_end_offset()
                .to_string()
        })
        .collect();
    // libtest printed `test <name> ... ` without a newline: start a line of our own.
    println!("\nready {}", ends.join(" "));
    let producer = broker.producer(ProducerConfig::default());
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let producer = producer.clone();
            std::thread::spawn(move || {
                // Bounded so a child that is never killed still ends.
                for seq in 0..50_000 {
                    let (id, e) = durable_record(round, thread, seq);
                    let mut r = ProducerRecord::new(DURABLE, b"")
                        .value(e.value.as_deref())
                        .headers(&e.headers)
                        .timestamp(e.timestamp);
                    r.key = e.key.as_deref();
                    let m = producer.send_blocking(r).unwrap();
                    println!("acked {id} {} {}", m.partition, m.offset);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn read_lines(stdout: std::process::ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ack {
    partition: i32,
    offset: i64,
}

/// Parses `acked <id> <partition> <offset>`; a line cut by the kill is ignored.
fn parse_ack(line: &str) -> Option<(String, Ack)> {
    let mut f = line.strip_prefix("acked ")?.split(' ');
    let (id, p, o) = (f.next()?, f.next()?, f.next()?);
    Some((
        id.to_string(),
        Ack {
            partition: p.parse().ok()?,
            offset: o.parse().ok()?,
        },
    ))
}

/// Runs one child, kills it after ACKS_BEFORE_KILL acknowledgements (more may come
/// before the kill lands); returns the log end offsets it recovered and every ack.
fn run_child(dir: &Path, round: u64) -> (Vec<i64>, Vec<(String, Ack)>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([SIGKILL_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("re-run the test binary as the writer");
    let lines = read_lines(child.stdout.take().unwrap());
    let mut ready = None;
    let mut acks = Vec::new();
    while acks.len() < ACKS_BEFORE_KILL {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "round {round}: the child stopped after {} acks: {:?}",
                acks.len(),
                child.wait()
            );
        };
        if let Some(ends) = line.strip_prefix("ready ") {
            ready = Some(ends.split(' ').map(|e| e.parse().unwrap()).collect());
        } else if let Some(ack) = parse_ack(&line) {
            acks.push(ack);
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "round {round}: the child was not killed: {status}"
    );
    // The pipe is closed now: the rest of what the child printed.
    for line in lines.iter() {
        if let Some(ack) = parse_ack(&line) {
            acks.push(ack);
        }
    }
    (ready.expect("the child reported ready"), acks)
}

#[test]
fn a_producer_killed_with_sigkill_loses_no_acknowledged_record() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
        child(Path::new(&dir), round);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut acked: HashMap<String, Ack> = HashMap::new();
    let mut ends = vec![0i64, 0];
    for round in 0..ROUNDS {
        let (ready, acks) = run_child(dir, round);
        assert_eq!(
            ready, ends,
            "round {round}: the child recovered what the parent left"
        );
        for (id, ack) in acks {
            assert!(
                acked.insert(id.clone(), ack).is_none(),
                "{id} acknowledged twice"
            );
        }

        let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
        assert!(!broker.had_clean_shutdown(), "round {round}");
        assert_eq!(
            broker.describe_topic(DURABLE).unwrap().config,
            durable_config()
        );
        let stored = read_all(&broker, DURABLE);
        let by_id: HashMap<String, (i32, i64)> =
            stored.iter().map(|(&at, r)| (id_of(r), at)).collect();
        assert_eq!(
            by_id.len(),
            stored.len(),
            "round {round}: a record is stored twice"
        );
        // Every acknowledged record, at its offset, as sent.
        for (id, ack) in &acked {
            let r = stored
                .get(&(ack.partition, ack.offset))
                .unwrap_or_else(|| panic!("round {round}: acknowledged {id} at {ack:?} is lost"));
            assert_eq!(&id_of(r), id, "round {round}: at {ack:?}");
        }
        // Every stored record is one that was sent, byte for byte, in the partition its
        // key hashes to; each thread's records are a prefix of what it sent, at most one
        // beyond its acknowledgements (the send in flight at the kill).
        let mut per_thread: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
        for (&(partition, offset), r) in &stored {
            let id = id_of(r);
            let nums: Vec<u64> = id.split('-').map(|f| f[1..].parse().unwrap()).collect();
            let (_, e) = durable_record(nums[0], nums[1], nums[2]);
            check_record(
                r,
                &e,
                &format!("round {round}: {id} at {partition}/{offset}"),
            );
            if let Some(key) = e.key.as_deref() {
                assert_eq!(partition, partition_for_key(key, 2), "{id}");
            }
            per_thread
                .entry((nums[0], nums[1]))
                .or_default()
                .push(nums[2]);
        }
        for ((r, t), mut seqs) in per_thread {
            seqs.sort_unstable();
            let expected: Vec<u64> = (0..seqs.len() as u64).collect();
            assert_eq!(seqs, expected, "round {round}: thread r{r}-t{t} has gaps");
            let acks = acked
                .keys()
                .filter(|id| id.starts_with(&format!("r{r}-t{t}-")))
                .count();
            assert!(
                seqs.len() == acks || seqs.len() == acks + 1,
                "thread r{r}-t{t}: {} stored, {acks} acknowledged",
                seqs.len()
            );
        }
        ends = (0..2)
            .map(|p| broker.partition(DURABLE, p).unwrap().log_end_offset())
            .collect();
        // Alternate: the next child recovers after a clean close or after a drop.
        if round % 2 == 0 {
            broker.close().unwrap();
        }
    }
    assert!(acked.len() >= ROUNDS as usize * ACKS_BEFORE_KILL);
}

// ---------------------------------------------------------------------------------------
// Topic metadata.

fn configs() -> Vec<(&'static str, i32, TopicConfig)> {
    vec![
        (
            "compacted-lz4",
            2,
            TopicConfig {
                segment_bytes: 1 << 20,
                segment_ms: 60_000,
                segment_index_bytes: 64 << 10,
                index_interval_bytes: 1024,
                retention_ms: 3_600_000,
                retention_bytes: 10 << 20,
                cleanup_policy: CleanupPolicy::Compact,
                compression: TopicCompression::Codec(Compression::Lz4),
                max_message_bytes: 2 << 20,
                timestamp_type: TimestampType::LogAppendTime,
                fsync: FsyncPolicy::EveryRecords(100),
                delete_retention_ms: 1000,
                min_cleanable_dirty_ratio: partlog::Ratio::new(0.25).unwrap(),
                min_compaction_lag_ms: 5,
                max_compaction_lag_ms: 7_200_000,
            },
        ),
        (
            "both-uncompressed",
            1,
            TopicConfig {
                cleanup_policy: CleanupPolicy::CompactDelete,
                compression: TopicCompression::Codec(Compression::None),
                fsync: FsyncPolicy::Interval(Duration::from_millis(250)),
                retention_ms: -1,
                ..TopicConfig::default()
            },
        ),
        (
            "zstd-durable",
            4,
            TopicConfig {
                segment_bytes: 14,
                compression: TopicCompression::Codec(Compression::Zstd),
                fsync: FsyncPolicy::EveryAppend,
                ..TopicConfig::default()
            },
        ),
        (
            "gzip",
            1,
            TopicConfig {
                compression: TopicCompression::Codec(Compression::Gzip),
                ..TopicConfig::default()
            },
        ),
        (
            "snappy",
            1,
            TopicConfig {
                compression: TopicCompression::Codec(Compression::Snappy),
                ..TopicConfig::default()
            },
        ),
        ("defaults", 3, TopicConfig::default()),
    ]
}

#[test]
fn topic_configs_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    for (name, partitions, config) in configs() {
        broker.create_topic(name, partitions, config).unwrap();
    }
    broker.close().unwrap();
    drop(broker);
    for clean in [true, false] {
        let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
        assert_eq!(broker.had_clean_shutdown(), clean);
        let mut names: Vec<&str> = configs().iter().map(|c| c.0).collect();
        names.sort_unstable();
        assert_eq!(broker.topics(), names);
        for (name, partitions, config) in configs() {
            let d = broker.describe_topic(name).unwrap();
            assert_eq!(d.config, config, "{name} (clean: {clean})");
            assert_eq!(d.partitions.len(), partitions as usize, "{name}");
            assert_eq!(
                broker
                    .partition(name, 0)
                    .unwrap()
                    .log()
                    .config()
                    .segment_bytes,
                config.segment_bytes,
                "{name}: the log runs with the stored config"
            );
        }
        drop(broker); // the second round opens after a drop
    }
}

#[test]
fn the_topic_compression_applies_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig {
        compression: TopicCompression::Codec(Compression::Gzip),
        ..TopicConfig::default()
    };
    Broker::open(dir.path(), BrokerConfig::default())
        .unwrap()
        .create_topic("gz", 1, config)
        .unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker
        .producer(ProducerConfig::default()) // asks for no compression
        .send_blocking(ProducerRecord::new("gz", b"compressed by the topic"))
        .unwrap();
    let batch = broker
        .partition("gz", 0)
        .unwrap()
        .read(0, 1 << 20)
        .unwrap()
        .remove(0);
    assert_eq!(batch.compression().unwrap(), Compression::Gzip);
}

#[test]
fn added_partitions_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    let config = TopicConfig {
        segment_bytes: 1 << 20,
        ..TopicConfig::default()
    };
    broker.create_topic("grow", 2, config.clone()).unwrap();
    broker.add_partitions("grow", 5).unwrap();
    let producer = broker.producer(ProducerConfig::default());
    for p in 0..5 {
        let value = format!("partition {p}");
        producer
            .send_blocking(ProducerRecord::new("grow", value.as_bytes()).partition(p))
            .unwrap();
    }
    drop(producer);
    broker.close().unwrap();
    for round in 0..2 {
        let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
        let d = broker.describe_topic("grow").unwrap();
        assert_eq!(d.partitions.len(), 5, "round {round}");
        assert_eq!(d.config, config, "added partitions keep the topic's config");
        for p in 2..5 {
            assert_eq!(
                broker
                    .partition("grow", p)
                    .unwrap()
                    .log()
                    .config()
                    .segment_bytes,
                1 << 20
            );
        }
        let stored = read_all(&broker, "grow");
        for p in 0..5 {
            assert_eq!(
                stored[&(p, 0)].value.as_deref(),
                Some(format!("partition {p}").as_bytes())
            );
        }
        drop(broker); // round 1 opens after a drop
    }
}

#[test]
fn a_deleted_topic_stays_deleted_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("gone", 3, TopicConfig::default())
        .unwrap();
    broker
        .create_topic("kept", 1, TopicConfig::default())
        .unwrap();
    let producer = broker.producer(ProducerConfig::default());
    for p in 0..3 {
        producer
            .send_blocking(ProducerRecord::new("gone", b"doomed").partition(p))
            .unwrap();
    }
    producer
        .send_blocking(ProducerRecord::new("kept", b"kept"))
        .unwrap();
    drop(producer);
    for p in 0..3 {
        assert!(dir.path().join(format!("gone-{p}")).is_dir());
    }
    broker.delete_topic("gone").unwrap();
    for p in 0..3 {
        assert!(
            !dir.path().join(format!("gone-{p}")).exists(),
            "gone-{p} is still on disk"
        );
    }
    assert_eq!(broker.topics(), vec!["kept".to_string()]);
    let err = broker.describe_topic("gone").unwrap_err();
    assert!(matches!(err, Error::UnknownTopic { .. }), "{err:?}");
    broker.close().unwrap();
    drop(broker);

    for clean in [true, false] {
        let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
        assert_eq!(broker.had_clean_shutdown(), clean);
        assert_eq!(broker.topics(), vec!["kept".to_string()]);
        assert!(matches!(
            broker.partition("gone", 0),
            Err(Error::UnknownTopic { .. })
        ));
        assert!(!dir.path().join("gone-0").exists());
        assert_eq!(broker.partition("kept", 0).unwrap().log_end_offset(), 1);
        drop(broker);
    }

    // The name is free again: a new topic of that name starts empty, with its own count.
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("gone", 1, TopicConfig::default())
        .unwrap();
    assert_eq!(broker.partition("gone", 0).unwrap().log_end_offset(), 0);
    broker.close().unwrap();
    drop(broker);
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    assert_eq!(broker.partition_count("gone").unwrap(), 1);
    assert_eq!(broker.partition("gone", 0).unwrap().log_end_offset(), 0);
    broker.close().unwrap();
}

/// Dropping every handle the application holds (broker and producers) without closing
/// must leave the directory free for the next open at once, as `Broker`'s docs promise
/// ("dropping without closing is safe, and the next open recovers"). A producer whose
/// batch was appended by its linger thread must not keep the broker (and the directory's
/// lock) alive behind the application's back.
#[test]
fn a_broker_dropped_with_its_producers_can_be_reopened_at_once() {
    let dir = tempfile::tempdir().unwrap();
    Broker::open(dir.path(), BrokerConfig::default())
        .unwrap()
        .create_topic("t", 1, TopicConfig::default())
        .unwrap();
    for i in 0..200 {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .unwrap_or_else(|e| panic!("open {i}, right after every handle was dropped: {e}"));
        let producer = broker.producer(ProducerConfig {
            // The linger thread appends the batch and completes the handle.
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        });
        let value = format!("record {i}");
        let m = producer
            .send(ProducerRecord::new("t", value.as_bytes()))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(m.offset, i, "every earlier record survived its drop");
        drop(producer);
        drop(broker);
    }
}
