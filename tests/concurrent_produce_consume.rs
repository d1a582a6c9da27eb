//! Producers and consumers on many threads at once lose nothing, duplicate nothing and
//! keep order:
//!
//! - several producer threads (some sharing one `Producer` through clones, some with
//!   their own) write to a topic with several partitions while several consumers, each
//!   subscribed to the whole topic from the earliest offset, read it. The consumers start
//!   before the first record, so they park and are woken by appends; each uses a different
//!   `WaitStrategy`. Every consumer sees every record exactly once, offsets dense and in
//!   order per partition, each producer thread's records in the order it sent them within
//!   a partition, and every key in the partition `partition_for_key` gives it;
//! - many consumers of one partition, each at its own pace (one slow, one starting late),
//!   all see the same sequence, the one the producers' acknowledgements describe;
//! - consumers racing a writer never get records beyond the log end offset (which would
//!   put their position out of range and make the next poll reset it or fail).
//!
//! Record counts: over 2 million in release builds, about 200 thousand in debug builds.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, RecordMetadata, SendHandle, TopicConfig, WaitStrategy, partition_for_key,
};

/// Records per producer thread: 2,004,000 in all in release builds, 204,000 in debug.
const PER_THREAD: u64 = if cfg!(debug_assertions) {
    34_000
} else {
    334_000
};
const PARTITIONS: i32 = 6;
/// Producer threads 0..SHARED share one producer; the rest have one each.
const SHARED: u64 = 4;
const OWN: u64 = 2;
const PRODUCER_THREADS: u64 = SHARED + OWN;
/// This producer thread sends keyless records (the sticky partitioner under contention).
const KEYLESS_THREAD: u64 = PRODUCER_THREADS - 1;
/// This producer thread sends with `send_blocking`: one small batch per record, each
/// append waking the consumers that caught up and parked.
const BLOCKING_THREAD: u64 = PRODUCER_THREADS - 2;
const KEYS: u64 = 1009;
/// A consumer that has not seen everything by then has lost records.
const DEADLINE: Duration = Duration::from_secs(300);
const BASE_TS: i64 = 1_700_000_000_000;

fn key(seq: u64) -> String {
    format!("key-{}", seq % KEYS)
}

/// Value of record `seq` of producer thread `thread`: both numbers, then padding that
/// depends on them, so a record mixed up with another does not decode as either.
fn value(thread: u64, seq: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&thread.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&(thread ^ seq.rotate_left(17)).to_le_bytes()[..(seq % 9) as usize]);
    v
}

fn decode(v: &[u8]) -> (u64, u64) {
    let thread = u64::from_le_bytes(v[..8].try_into().unwrap());
    let seq = u64::from_le_bytes(v[8..16].try_into().unwrap());
    assert_eq!(v, value(thread, seq), "a value that no producer sent");
    (thread, seq)
}

fn timestamp(seq: u64) -> i64 {
    BASE_TS + seq as i64
}

/// Waits for a chunk of sends; checks each landed where its key says and that one
/// thread's offsets in one partition only grow.
fn settle(thread: u64, chunk: &mut Vec<(u64, SendHandle)>, last_offsets: &mut HashMap<i32, i64>) {
    for (seq, h) in chunk.drain(..) {
        let m: RecordMetadata = h.wait().unwrap();
        if thread != KEYLESS_THREAD {
            assert_eq!(
                m.partition,
                partition_for_key(key(seq).as_bytes(), PARTITIONS),
                "thread {thread} seq {seq}"
            );
        }
        let last = last_offsets.entry(m.partition).or_insert(-1);
        assert!(
            m.offset > *last,
            "thread {thread}: seq {seq} acknowledged at {}/{} after offset {last}",
            m.partition,
            m.offset
        );
        *last = m.offset;
        assert_eq!(m.timestamp, timestamp(seq));
    }
}

fn produce(producer: Producer, topic: &'static str, thread: u64, count: u64) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(4096);
        let mut last_offsets = HashMap::new();
        for seq in 0..count {
            let v = value(thread, seq);
            let k = key(seq);
            let mut record = ProducerRecord::new(topic, &v).timestamp(timestamp(seq));
            if thread != KEYLESS_THREAD {
                record = record.key(k.as_bytes());
            }
            if thread == BLOCKING_THREAD {
                let m = producer.send_blocking(record).unwrap();
                assert_eq!(
                    m.partition,
                    partition_for_key(k.as_bytes(), PARTITIONS),
                    "thread {thread} seq {seq}"
                );
                let last = last_offsets.insert(m.partition, m.offset).unwrap_or(-1);
                assert!(
                    m.offset > last,
                    "thread {thread} seq {seq}: offsets go back"
                );
                continue;
            }
            chunk.push((seq, producer.send(record).unwrap()));
            if chunk.len() == chunk.capacity() {
                settle(thread, &mut chunk, &mut last_offsets);
            }
        }
        producer.flush().unwrap();
        settle(thread, &mut chunk, &mut last_offsets);
    })
}

/// What one consumer saw.
struct Seen {
    strategy: WaitStrategy,
    records: u64,
    polls: u64,
    empty_polls: u64,
}

/// Reads the whole topic, checking each record as it comes.
fn consume(mut consumer: Consumer, per_thread: u64, start: Arc<Barrier>) -> Seen {
    let strategy = consumer.config().wait_strategy;
    // Positions are set (to 0, the log is empty) before any record exists.
    assert!(consumer.poll(Duration::ZERO).unwrap().is_empty());
    start.wait();
    let total = per_thread * PRODUCER_THREADS;
    let mut seen = vec![false; total as usize];
    let mut next_offset = vec![0i64; PARTITIONS as usize];
    // Last seq of each producer thread in each partition.
    let mut last_seq: HashMap<(i32, u64), u64> = HashMap::new();
    let mut out = Seen {
        strategy,
        records: 0,
        polls: 0,
        empty_polls: 0,
    };
    let deadline = Instant::now() + DEADLINE;
    while out.records < total {
        assert!(
            Instant::now() < deadline,
            "{strategy:?}: only {} of {total} records arrived",
            out.records
        );
        let records = consumer.poll(Duration::from_secs(5)).unwrap();
        out.polls += 1;
        if records.is_empty() {
            out.empty_polls += 1;
        }
        for r in records {
            let p = r.partition;
            assert_eq!(
                r.offset, next_offset[p as usize],
                "{strategy:?}: partition {p} skipped or repeated an offset"
            );
            next_offset[p as usize] += 1;
            let (thread, seq) = decode(r.value.as_deref().unwrap());
            assert!(
                thread < PRODUCER_THREADS && seq < per_thread,
                "({thread}, {seq})"
            );
            let slot = &mut seen[(thread * per_thread + seq) as usize];
            assert!(!*slot, "{strategy:?}: thread {thread} seq {seq} seen twice");
            *slot = true;
            if let Some(prev) = last_seq.insert((p, thread), seq) {
                assert!(
                    prev < seq,
                    "{strategy:?}: partition {p}: thread {thread} seq {seq} after {prev}"
                );
            }
            if thread == KEYLESS_THREAD {
                assert_eq!(r.key, None);
            } else {
                let k = r.key.as_deref().unwrap();
                assert_eq!(k, key(seq).as_bytes());
                assert_eq!(p, partition_for_key(k, PARTITIONS), "key {k:?}");
            }
            assert_eq!(r.timestamp, timestamp(seq));
            out.records += 1;
        }
    }
    assert!(seen.iter().all(|s| *s), "{strategy:?}: records missing");
    assert!(
        consumer.poll(Duration::ZERO).unwrap().is_empty(),
        "{strategy:?}: records beyond the ones sent"
    );
    out
}

#[test]
fn concurrent_producers_and_consumers_lose_nothing_and_keep_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    let config = TopicConfig {
        // Segments roll while consumers read.
        segment_bytes: 1 << 20,
        ..TopicConfig::default()
    };
    broker.create_topic("events", PARTITIONS, config).unwrap();
    let per_thread = PER_THREAD;

    let strategies = [
        WaitStrategy::Park,
        WaitStrategy::SpinThenPark { spins: 1000 },
        WaitStrategy::BusySpin,
    ];
    let start = Arc::new(Barrier::new(strategies.len() + 1));
    let consumers: Vec<JoinHandle<Seen>> = strategies
        .into_iter()
        .map(|wait_strategy| {
            let mut consumer = broker.consumer(ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                wait_strategy,
                ..ConsumerConfig::default()
            });
            consumer.subscribe(&["events"]).unwrap();
            assert_eq!(consumer.assignment().len(), PARTITIONS as usize);
            let start = start.clone();
            std::thread::spawn(move || consume(consumer, per_thread, start))
        })
        .collect();
    start.wait();

    let shared = broker.producer(ProducerConfig::default());
    let mut producers: Vec<JoinHandle<()>> = (0..SHARED)
        .map(|t| produce(shared.clone(), "events", t, per_thread))
        .collect();
    drop(shared);
    for t in SHARED..PRODUCER_THREADS {
        let own = broker.producer(ProducerConfig::default());
        producers.push(produce(own, "events", t, per_thread));
    }
    for p in producers {
        p.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
    }
    let ends: i64 = (0..PARTITIONS)
        .map(|p| broker.partition("events", p).unwrap().log_end_offset())
        .sum();
    assert_eq!(ends, (per_thread * PRODUCER_THREADS) as i64);
    for c in consumers {
        let seen = c.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        eprintln!(
            "{:?}: {} records in {} polls, {} empty",
            seen.strategy, seen.records, seen.polls, seen.empty_polls
        );
        assert_eq!(seen.records, per_thread * PRODUCER_THREADS);
    }
    assert!(
        broker.partition("events", 0).unwrap().segment_count() > 1,
        "no roll happened"
    );
    broker.close().unwrap();
}

/// (producer thread, seq) of each offset of a partition.
type Sequence = Vec<(u64, u64)>;

#[test]
fn many_consumers_of_one_partition_each_see_the_same_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    let config = TopicConfig {
        segment_bytes: 1 << 20,
        ..TopicConfig::default()
    };
    broker.create_topic("one", 1, config).unwrap();
    let threads = 2u64;
    let per_thread = PER_THREAD;
    let total = per_thread * threads;

    // (name, config, whether it yields after each poll)
    let readers: Vec<(&str, ConsumerConfig, bool)> = vec![
        ("park", ConsumerConfig::default(), false),
        (
            "spin-then-park",
            ConsumerConfig {
                wait_strategy: WaitStrategy::SpinThenPark { spins: 100 },
                ..ConsumerConfig::default()
            },
            false,
        ),
        (
            "busy-spin",
            ConsumerConfig {
                wait_strategy: WaitStrategy::BusySpin,
                max_poll_records: 10_000,
                ..ConsumerConfig::default()
            },
            false,
        ),
        (
            // One record per poll, one batch per fetch, and it lets others run between
            // polls: it falls far behind the writers and the others.
            "slow",
            ConsumerConfig {
                max_poll_records: 1,
                max_partition_fetch_bytes: 1,
                ..ConsumerConfig::default()
            },
            true,
        ),
    ];
    let start = Arc::new(Barrier::new(readers.len() + 1));
    let read_all = move |mut c: Consumer, name: &'static str, slow: bool| -> Sequence {
        let mut out = Vec::with_capacity(total as usize);
        let deadline = Instant::now() + DEADLINE;
        while (out.len() as u64) < total {
            assert!(
                Instant::now() < deadline,
                "{name}: {} of {total}",
                out.len()
            );
            for r in c.poll(Duration::from_secs(5)).unwrap() {
                assert_eq!(r.offset, out.len() as i64, "{name}");
                let (thread, seq) = decode(r.value.as_deref().unwrap());
                assert_eq!(r.timestamp, timestamp(seq), "{name}");
                out.push((thread, seq));
            }
            if slow {
                std::thread::yield_now();
            }
        }
        assert!(
            c.poll(Duration::ZERO).unwrap().is_empty(),
            "{name}: extra records"
        );
        out
    };
    let mut consumers: Vec<(&str, JoinHandle<Sequence>)> = readers
        .into_iter()
        .map(|(name, config, slow)| {
            let mut c = broker.consumer(ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                ..config
            });
            c.subscribe(&["one"]).unwrap();
            let start = start.clone();
            let handle = std::thread::spawn(move || {
                assert!(c.poll(Duration::ZERO).unwrap().is_empty());
                start.wait();
                read_all(c, name, slow)
            });
            (name, handle)
        })
        .collect();
    start.wait();

    let (half_tx, half_rx) = std::sync::mpsc::channel();
    let producers: Vec<JoinHandle<Vec<RecordMetadata>>> = (0..threads)
        .map(|thread| {
            let producer = broker.producer(ProducerConfig::default());
            let half_tx = half_tx.clone();
            std::thread::spawn(move || {
                let mut metadata = Vec::with_capacity(per_thread as usize);
                let mut chunk = Vec::with_capacity(4096);
                for seq in 0..per_thread {
                    let v = value(thread, seq);
                    let record = ProducerRecord::new("one", &v).timestamp(timestamp(seq));
                    chunk.push(producer.send(record).unwrap());
                    if chunk.len() == chunk.capacity() {
                        metadata.extend(chunk.drain(..).map(|h: SendHandle| h.wait().unwrap()));
                    }
                    if seq == per_thread / 2 {
                        half_tx.send(()).unwrap();
                    }
                }
                producer.flush().unwrap();
                metadata.extend(chunk.drain(..).map(|h| h.wait().unwrap()));
                metadata
            })
        })
        .collect();
    // A consumer that joins half way and starts from the beginning.
    for _ in 0..threads {
        half_rx.recv().unwrap();
    }
    let mut late = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    late.subscribe(&["one"]).unwrap();
    consumers.push((
        "late",
        std::thread::spawn(move || read_all(late, "late", false)),
    ));

    // The sequence the acknowledgements describe.
    let mut expected = vec![(u64::MAX, u64::MAX); total as usize];
    for (thread, p) in producers.into_iter().enumerate() {
        for (seq, m) in p
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
            .into_iter()
            .enumerate()
        {
            assert_eq!(m.partition, 0);
            let slot = &mut expected[m.offset as usize];
            assert_eq!(
                *slot,
                (u64::MAX, u64::MAX),
                "offset {} acknowledged twice",
                m.offset
            );
            *slot = (thread as u64, seq as u64);
        }
    }
    assert_eq!(
        broker.partition("one", 0).unwrap().log_end_offset(),
        total as i64
    );
    for (name, c) in consumers {
        let got = c.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        if let Some(i) = (0..total as usize).find(|&i| got[i] != expected[i]) {
            panic!(
                "{name}: offset {i} holds {:?}, acknowledged as {:?}",
                got[i], expected[i]
            );
        }
    }
    broker.close().unwrap();
}

/// A consumer racing the writer must never be handed records beyond the log end offset:
/// its position would then lie outside `log_start..=log_end`, and the next poll would
/// treat it as out of range (with `OffsetReset::None` an error; with earliest or latest a
/// reset that delivers records again). Three busy-spinning readers keep the writer's
/// core contended, so an append is now and then preempted half way.
#[test]
fn consumers_racing_the_writer_never_get_past_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("race", 1, TopicConfig::default())
        .unwrap();
    let count = 4 * PER_THREAD;
    let readers = 6;
    let start = Arc::new(Barrier::new(readers + 1));
    let readers: Vec<JoinHandle<()>> = (0..readers)
        .map(|_| {
            let tp = partlog::TopicPartition::new("race", 0);
            let mut consumer = broker.consumer(ConsumerConfig {
                auto_offset_reset: OffsetReset::None,
                wait_strategy: WaitStrategy::BusySpin,
                ..ConsumerConfig::default()
            });
            consumer.assign(std::slice::from_ref(&tp)).unwrap();
            consumer.seek(&tp, 0).unwrap();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut next = 0i64;
                let deadline = Instant::now() + DEADLINE;
                while next < count as i64 {
                    assert!(Instant::now() < deadline, "{next} of {count}");
                    let records = consumer
                        .poll(Duration::from_secs(5))
                        .unwrap_or_else(|e| panic!("poll at position {next}: {e}"));
                    for r in records {
                        assert_eq!(r.offset, next);
                        next += 1;
                    }
                }
            })
        })
        .collect();
    let producer = broker.producer(ProducerConfig::default());
    start.wait();
    for seq in 0..count {
        let v = value(0, seq);
        producer
            .send_blocking(ProducerRecord::new("race", &v).timestamp(timestamp(seq)))
            .unwrap();
    }
    for r in readers {
        r.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
    }
    broker.close().unwrap();
}
