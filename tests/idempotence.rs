//! Idempotent appends: a batch resent after a (simulated) timeout is written once and
//! answered with its original offsets, before and after a restart; gaps and old epochs
//! are refused without writing; the producer numbers its batches per partition, and a
//! batch that fails before it is written (too large once compressed) uses up no number.

use std::path::Path;

use partlog::record::ProducerInfo;
use partlog::{
    AppendInfo, BatchBuilder, Broker, BrokerConfig, Codecs, Compression, EncodedBatch, Error, Log,
    LogConfig, ProducerConfig, ProducerRecord, TopicConfig,
};

const TS: i64 = 1_700_000_000_000;

fn batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> EncodedBatch {
    let mut b = BatchBuilder::new(Compression::None).producer(ProducerInfo {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
    });
    for (i, v) in values.iter().enumerate() {
        b.push(TS + i as i64, None, Some(v.as_bytes()), &[]);
    }
    b.build(&Codecs::default()).unwrap()
}

fn values(log: &Log) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        for b in log.read(at, 1 << 20).unwrap() {
            for r in b.records(&Codecs::default()).unwrap() {
                let r = r.unwrap();
                let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                out.push((r.offset, v));
            }
            at = b.next_offset();
        }
    }
    out
}

fn snapshots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_resent_batch_is_written_once_with_its_original_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    log.append(batch(-1, -1, -1, &["plain"])).unwrap();
    let first = log.append(batch(7, 0, 0, &["a", "b", "c"])).unwrap();
    assert_eq!((first.base_offset, first.last_offset), (1, 3));
    // The producer timed out waiting and sends the same batch again.
    let again = log.append(batch(7, 0, 0, &["a", "b", "c"])).unwrap();
    assert_eq!(again, first);
    assert_eq!(log.log_end_offset(), 4);
    let next = log.append(batch(7, 0, 3, &["d"])).unwrap();
    assert_eq!(next.base_offset, 4);
    // An older batch of the last five is still recognised.
    assert_eq!(log.append(batch(7, 0, 0, &["a", "b", "c"])).unwrap(), first);
    assert_eq!(
        values(&log),
        vec![
            (0, "plain".into()),
            (1, "a".into()),
            (2, "b".into()),
            (3, "c".into()),
            (4, "d".into())
        ]
    );
}

#[test]
fn gaps_and_old_epochs_are_refused_without_writing_or_poisoning() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path().join("t-0"), LogConfig::default()).unwrap();
    log.append(batch(3, 0, 0, &["a", "b"])).unwrap();
    match log.append(batch(3, 0, 5, &["x"])) {
        Err(Error::OutOfOrderSequence {
            partition,
            producer_id: 3,
            expected: 2,
            received: 5,
            ..
        }) => assert_eq!(partition, "t-0"),
        other => panic!("expected an out-of-order error, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 2);
    assert!(log.poisoned().is_none());
    // A new epoch starts over at 0 and fences the old one.
    log.append(batch(3, 1, 0, &["c"])).unwrap();
    match log.append(batch(3, 0, 2, &["late"])) {
        Err(Error::ProducerFenced {
            epoch: 0,
            current_epoch: 1,
            ..
        }) => {}
        other => panic!("expected fencing, got {other:?}"),
    }
    assert!(matches!(
        log.append(batch(3, 2, 4, &["y"])),
        Err(Error::OutOfOrderSequence { expected: 0, .. })
    ));
    assert_eq!(
        values(&log),
        vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );
}

#[test]
fn a_duplicate_inside_a_multi_batch_append_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path().join("t-0"), LogConfig::default()).unwrap();
    let first = log.append(batch(1, 0, 0, &["a"])).unwrap();
    let infos = log
        .append_batches(vec![
            batch(2, 0, 0, &["x"]),
            batch(1, 0, 0, &["a"]),
            batch(1, 0, 1, &["b", "c"]),
            batch(1, 0, 3, &["d"]),
        ])
        .unwrap();
    let offsets: Vec<(i64, i64)> = infos
        .iter()
        .map(|i: &AppendInfo| (i.base_offset, i.last_offset))
        .collect();
    assert_eq!(offsets, vec![(1, 1), (0, 0), (2, 3), (4, 4)]);
    assert_eq!(infos[1], first);
    assert_eq!(log.log_end_offset(), 5);
    // A refused batch anywhere refuses the whole call.
    let err = log
        .append_batches(vec![batch(1, 0, 4, &["e"]), batch(1, 0, 9, &["f"])])
        .unwrap_err();
    assert!(matches!(err, Error::OutOfOrderSequence { .. }), "{err}");
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn producer_state_survives_a_clean_restart_through_a_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    log.append(batch(5, 2, 0, &["a", "b"])).unwrap();
    let last = log.append(batch(5, 2, 2, &["c"])).unwrap();
    log.close().unwrap();
    drop(log);
    assert_eq!(snapshots(&dir), vec![format!("{:020}.snapshot", 3)]);
    let bytes = std::fs::read(dir.join(format!("{:020}.snapshot", 3))).unwrap();
    assert_eq!(bytes.len(), 10 + 46, "header and one 46-byte entry");
    assert_eq!(&bytes[0..2], &[0, 1], "version 1");
    assert_eq!(&bytes[6..10], &[0, 0, 0, 1], "one producer");
    assert_eq!(&bytes[10..18], &5i64.to_be_bytes(), "producer id");

    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.append(batch(5, 2, 2, &["c"])).unwrap(), last);
    assert!(matches!(
        log.append(batch(5, 2, 7, &["z"])),
        Err(Error::OutOfOrderSequence { expected: 3, .. })
    ));
    assert!(matches!(
        log.append(batch(5, 1, 3, &["z"])),
        Err(Error::ProducerFenced { .. })
    ));
    assert_eq!(log.append(batch(5, 2, 3, &["d"])).unwrap().base_offset, 3);
}

#[test]
fn producer_state_is_rebuilt_from_the_log_without_a_valid_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let config = LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    };
    let log = Log::open(&dir, config.clone()).unwrap();
    let mut infos = Vec::new();
    for i in 0..10 {
        let v = format!("value-{i:03}-padding-padding-padding");
        infos.push(log.append(batch(9, 0, i, &[&v])).unwrap());
    }
    assert!(log.segment_count() > 2, "rolls wrote snapshots");
    drop(log); // unclean: no snapshot at the log end
    let snaps = snapshots(&dir);
    assert!(!snaps.is_empty() && snaps.len() <= 2, "{snaps:?}");
    // Corrupt the newest snapshot: it is deleted and the state comes from the log.
    let newest = dir.join(snaps.last().unwrap());
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();

    let log = Log::open(&dir, config).unwrap();
    assert!(!newest.exists(), "the corrupt snapshot is deleted");
    let v = "value-009-padding-padding-padding";
    assert_eq!(log.append(batch(9, 0, 9, &[v])).unwrap(), infos[9]);
    assert_eq!(log.log_end_offset(), 10);
    assert!(matches!(
        log.append(batch(9, 0, 11, &["x"])),
        Err(Error::OutOfOrderSequence { expected: 10, .. })
    ));
}

#[test]
fn the_producer_numbers_each_partitions_batches_from_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    let producer = broker.producer(ProducerConfig {
        batch_size: 200,
        ..ProducerConfig::default()
    });
    let other = broker.producer(ProducerConfig::default());
    assert_eq!(producer.producer_id(), None, "no id before the first send");
    other
        .send_blocking(ProducerRecord::new("t", b"other").partition(1))
        .unwrap();
    for i in 0..40 {
        let v = format!("v{i}");
        let h = producer
            .send(ProducerRecord::new("t", v.as_bytes()).partition(i % 2))
            .unwrap();
        drop(h);
    }
    producer.flush().unwrap();
    let (pid, epoch) = producer.producer_id().unwrap();
    assert_eq!(epoch, 0);
    assert_ne!(other.producer_id().unwrap().0, pid);
    for p in 0..2 {
        let log = broker.partition("t", p).unwrap();
        let mut batches = log.read(0, 1 << 20).unwrap();
        batches.retain(|b| b.producer_id() == pid);
        assert!(batches.len() > 1, "several batches");
        let mut expected = 0;
        for b in &batches {
            assert_eq!((b.producer_id(), b.producer_epoch()), (pid, 0));
            assert_eq!(b.base_sequence(), expected);
            expected += b.records_count();
        }
        assert_eq!(expected, 20);
    }
    let plain = broker.producer(ProducerConfig {
        enable_idempotence: false,
        ..ProducerConfig::default()
    });
    assert_eq!(plain.producer_id(), None);
    plain
        .send_blocking(ProducerRecord::new("t", b"x").partition(0))
        .unwrap();
    let log = broker.partition("t", 0).unwrap();
    let last = log.read(log.log_end_offset() - 1, 1 << 20).unwrap();
    assert_eq!(last[0].producer_id(), -1);
    assert_eq!(last[0].base_sequence(), -1);
}

#[test]
fn producer_ids_are_not_reused_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let first = {
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        let p = broker.producer(ProducerConfig::default());
        p.send_blocking(ProducerRecord::new("t", b"a")).unwrap();
        let id = p.producer_id();
        drop(p);
        broker.close().unwrap();
        id.unwrap().0
    };
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    let p = broker.producer(ProducerConfig::default());
    p.send_blocking(ProducerRecord::new("t", b"b")).unwrap();
    assert!(p.producer_id().unwrap().0 > first);
}

/// Bytes that gzip cannot shrink (xorshift), so a compressed batch of them is larger than
/// the same batch uncompressed.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A value whose one-record batch fits `limit` uncompressed (so `send` takes it) but not
/// once gzip has framed it (so the log would refuse it).
fn grows_past(limit: usize) -> Vec<u8> {
    let size = |compression, value: &[u8]| {
        let mut b = BatchBuilder::new(compression);
        b.push(TS, None, Some(value), &[]);
        b.build(&Codecs::default()).unwrap().size()
    };
    (limit - 200..limit)
        .rev()
        .map(incompressible)
        .find(|v| size(Compression::None, v) <= limit && size(Compression::Gzip, v) > limit)
        .expect("a value that only gzip takes past the limit")
}

#[test]
fn a_batch_refused_for_its_compressed_size_uses_no_sequence_number() {
    const LIMIT: usize = 2000;
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    let config = TopicConfig {
        max_message_bytes: LIMIT as u32,
        ..TopicConfig::default()
    };
    broker.create_topic("z", 1, config).unwrap();
    let producer = broker.producer(ProducerConfig {
        compression: Compression::Gzip,
        linger: std::time::Duration::from_secs(3600),
        ..ProducerConfig::default()
    });
    let big = grows_past(LIMIT);
    // The batch's failure, as its handle and `flush` report it.
    let too_large = |e: &Error| {
        let Error::BatchFailed(e) = e else {
            return false;
        };
        matches!(&**e, Error::BatchTooLarge { partition, size, limit: LIMIT, limit_name: "max.message.bytes" }
            if partition == "z-0" && *size > LIMIT)
    };

    // Appended on its own (send_blocking on an idle partition).
    let send_blocking = |v: &[u8]| producer.send_blocking(ProducerRecord::new("z", v));
    assert_eq!(send_blocking(b"a").unwrap().offset, 0);
    let e = send_blocking(&big).unwrap_err();
    assert!(too_large(&e), "{e:?}");
    assert_eq!(send_blocking(b"b").unwrap().offset, 1);
    let e = producer.flush().unwrap_err();
    assert!(
        too_large(&e),
        "flush reports the lone record's failure: {e:?}"
    );
    producer.flush().unwrap();

    // Batched, with batches before and after it: only the large one fails.
    let send = |v: &[u8]| producer.send(ProducerRecord::new("z", v)).unwrap();
    let handles = [send(b"c"), send(&big), send(b"d")];
    let e = producer.flush().unwrap_err();
    assert!(too_large(&e), "flush reports the failure: {e:?}");
    let [c, big_handle, d] = handles;
    assert_eq!(c.wait().unwrap().offset, 2);
    let e = big_handle.wait().unwrap_err();
    assert!(too_large(&e), "{e:?}");
    assert_eq!(d.wait().unwrap().offset, 3);
    assert_eq!(send_blocking(b"e").unwrap().offset, 4);

    // The log holds the five small records, their sequences without a gap.
    let log = broker.partition("z", 0).unwrap();
    let got: Vec<String> = values(log.log()).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, ["a", "b", "c", "d", "e"]);
    let mut expected = 0;
    for b in log.read(0, 1 << 20).unwrap() {
        assert_eq!(b.base_sequence(), expected, "batch at {}", b.base_offset());
        expected += b.records_count();
    }
    assert_eq!(expected, 5);
}
