//! `Log::append` of one batch takes a path of its own for the usual batch (no
//! LogAppendTime, not transactional, no duplicate, no roll due). This property test
//! drives two logs with the same random batches, one through `Log::append` and one
//! through `Log::append_batches` with a one-batch list (the general path), and checks
//! that they agree on everything:
//!
//! - each call's result: the same offsets, timestamps and record counts, or the same
//!   error (fenced epochs, sequence gaps, oversized batches);
//! - duplicates answered with their original offsets, by either path;
//! - the log end offset and segment list after each call;
//! - every file of both directories byte for byte (segments, offset and time indexes,
//!   producer snapshots) after the last call, again after `close`, and the records
//!   read back after a reopen.
//!
//! Small segments, indexes and index intervals make rolls (by size, by time, by a
//! full index) and index entries frequent.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use partlog::record::ProducerInfo;
use partlog::{
    AppendInfo, BatchBuilder, Codecs, Compression, EncodedBatch, FsyncPolicy, Log, LogConfig,
    LogOptions, ManualClock, TimestampType,
};
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
enum Op {
    /// A batch without a producer id: `count` records of `len` bytes, `step` ms after
    /// the last batch (`None`: no timestamps).
    Plain {
        count: usize,
        len: usize,
        step: Option<i64>,
    },
    /// An idempotent batch of producer `pid` (1 or 2), with a sequence chosen by `seq`
    /// and an epoch by `epoch` against what the producer sent so far.
    Idempotent {
        pid: i64,
        seq: SeqChoice,
        epoch: EpochChoice,
        count: usize,
        len: usize,
    },
    /// A transactional batch of producer 3 (the general path's, both ways).
    Transactional { count: usize },
    /// The shared clock moves on.
    Advance(i64),
}

#[derive(Clone, Copy, Debug)]
enum SeqChoice {
    /// The next sequence the log expects.
    Next,
    /// One of the producer's earlier batches again (a duplicate while it is one of the
    /// last five; out of order before that).
    Resend(usize),
    /// A gap after the expected sequence.
    Gap(i32),
}

#[derive(Clone, Copy, Debug)]
enum EpochChoice {
    Same,
    /// The next epoch, its sequence starting over at 0.
    Bump,
    /// An epoch below the current one: fenced.
    Stale,
}

fn op() -> impl Strategy<Value = Op> {
    let step = proptest::option::weighted(0.9, 0i64..1_500);
    let seq = prop_oneof![
        8 => Just(SeqChoice::Next),
        2 => (0usize..8).prop_map(SeqChoice::Resend),
        1 => (1i32..3).prop_map(SeqChoice::Gap),
    ];
    let epoch = prop_oneof![
        10 => Just(EpochChoice::Same),
        1 => Just(EpochChoice::Bump),
        1 => Just(EpochChoice::Stale),
    ];
    prop_oneof![
        4 => (1usize..4, 0usize..200, step)
            .prop_map(|(count, len, step)| Op::Plain { count, len, step }),
        8 => (1i64..3, seq, epoch, 1usize..4, 0usize..200).prop_map(
            |(pid, seq, epoch, count, len)| Op::Idempotent { pid, seq, epoch, count, len }
        ),
        1 => (1usize..3).prop_map(|count| Op::Transactional { count }),
        1 => (0i64..3_000).prop_map(Op::Advance),
    ]
}

/// What the test remembers of an idempotent producer: its epoch, the next sequence and
/// the batches it sent (base sequence, record count) in this epoch.
#[derive(Debug, Default)]
struct Sent {
    epoch: i16,
    next: i32,
    batches: Vec<(i32, usize)>,
}

fn build(
    producer: ProducerInfo,
    transactional: bool,
    timestamps: &[i64],
    len: usize,
) -> EncodedBatch {
    let mut b = BatchBuilder::new(Compression::None)
        .producer(producer)
        .transactional(transactional);
    for (i, &ts) in timestamps.iter().enumerate() {
        let value = vec![b'a' + (i % 26) as u8; len];
        b.push(ts, Some(b"k"), Some(&value), &[]);
    }
    b.build(&Codecs::default()).unwrap()
}

fn open(dir: &Path, config: &LogConfig, clock: &Arc<ManualClock>) -> Log {
    let options = LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    };
    Log::open_with(dir, config.clone(), options).unwrap()
}

/// Every file of `dir` by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Every record of `log`: offset, timestamp and value.
fn records(log: &Log) -> Vec<(i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        for b in log.read(at, 1 << 20).unwrap() {
            for r in b.records(&Codecs::default()).unwrap() {
                let r = r.unwrap();
                out.push((r.offset, r.timestamp, r.value.unwrap().to_vec()));
            }
            at = b.next_offset();
        }
    }
    out
}

/// A call's result in a form two logs' can be compared by: the info, or the error's
/// message (which names the variant's details).
fn outcome(r: partlog::Result<AppendInfo>) -> Result<AppendInfo, String> {
    r.map_err(|e| e.to_string())
}

fn config_strategy() -> impl Strategy<Value = LogConfig> {
    (
        600u32..3_000,
        prop_oneof![Just(0u32), 1u32..600],
        prop_oneof![Just(48u32), Just(96u32), Just(10 * 1024 * 1024u32)],
        any::<bool>(),
        prop_oneof![Just(FsyncPolicy::Never), Just(FsyncPolicy::EveryRecords(4))],
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, segment_index_bytes, log_append_time, fsync)| {
                LogConfig {
                    segment_bytes,
                    segment_ms: 2_000,
                    segment_index_bytes,
                    index_interval_bytes,
                    max_message_bytes: 500,
                    timestamp_type: if log_append_time {
                        TimestampType::LogAppendTime
                    } else {
                        TimestampType::CreateTime
                    },
                    fsync,
                    ..LogConfig::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn one_batch_alone_and_in_a_list_write_the_same_log(
        config in config_strategy(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        // The same partition name under two parents, so that errors read alike.
        let (dir_one, dir_list) = (tmp.path().join("one/t-0"), tmp.path().join("list/t-0"));
        let clock = Arc::new(ManualClock::new(T0));
        let one = open(&dir_one, &config, &clock);
        let list = open(&dir_list, &config, &clock);
        let mut ts = T0;
        let mut sent: [Sent; 3] = Default::default();
        let mut txn_seq = 0;
        for op in &ops {
            // The producer, epoch, base sequence and record count of an idempotent batch.
            let mut idempotent = None;
            let batch = match *op {
                Op::Plain { count, len, step } => {
                    let times: Vec<i64> = match step {
                        Some(step) => {
                            ts += step;
                            vec![ts; count]
                        }
                        None => vec![-1; count],
                    };
                    build(ProducerInfo::NONE, false, &times, len)
                }
                Op::Idempotent { pid, seq, epoch, count, len } => {
                    let s = &sent[pid as usize];
                    let (epoch, base, count) = match (epoch, seq) {
                        (EpochChoice::Bump, _) => (s.epoch + 1, 0, count),
                        (EpochChoice::Stale, _) => (s.epoch - 1, 0, count),
                        (EpochChoice::Same, SeqChoice::Next) => (s.epoch, s.next, count),
                        (EpochChoice::Same, SeqChoice::Resend(back)) => {
                            match s.batches.iter().rev().nth(back) {
                                Some(&(first, n)) => (s.epoch, first, n),
                                None => (s.epoch, s.next, count),
                            }
                        }
                        (EpochChoice::Same, SeqChoice::Gap(by)) => (s.epoch, s.next + by, count),
                    };
                    idempotent = Some((pid as usize, epoch, base, count));
                    ts += 1;
                    let producer = ProducerInfo {
                        producer_id: pid,
                        producer_epoch: epoch,
                        base_sequence: base,
                    };
                    build(producer, false, &vec![ts; count], len)
                }
                Op::Transactional { count } => {
                    ts += 1;
                    let producer = ProducerInfo {
                        producer_id: 3,
                        producer_epoch: 0,
                        base_sequence: txn_seq,
                    };
                    txn_seq += count as i32;
                    build(producer, true, &vec![ts; count], 10)
                }
                Op::Advance(ms) => {
                    clock.advance(ms);
                    continue;
                }
            };
            let end_before = one.log_end_offset();
            let a = outcome(one.append(batch.clone()));
            let b = outcome(list.append_batches(vec![batch]).map(|infos| infos[0]));
            prop_assert_eq!(&a, &b, "op {:?}", op);
            prop_assert_eq!(one.log_end_offset(), list.log_end_offset());
            prop_assert_eq!(one.segment_base_offsets(), list.segment_base_offsets());
            // A written batch moves the log end; a duplicate, answered with its original
            // offsets, does not.
            if let (Some((pid, epoch, base, count)), Ok(_)) = (idempotent, &a)
                && one.log_end_offset() > end_before
            {
                let s = &mut sent[pid];
                if epoch != s.epoch {
                    *s = Sent { epoch, ..Sent::default() };
                }
                s.batches.push((base, count));
                s.next = base + count as i32;
            }
        }
        prop_assert_eq!(files(&dir_one), files(&dir_list));
        let read = records(&one);
        prop_assert_eq!(&read, &records(&list));
        one.close().unwrap();
        list.close().unwrap();
        prop_assert_eq!(files(&dir_one), files(&dir_list));
        let reopened = open(&dir_one, &config, &clock);
        prop_assert_eq!(records(&reopened), read);
    }
}
