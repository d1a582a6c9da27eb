//! partlog reads the segment Kafka's own Java code wrote, record for record.

use std::path::PathBuf;

use bytes::Bytes;
use partlog::record::{ControlRecordType, EndTxnMarker};
use partlog::{Codecs, Compression, Log, LogConfig, RecordBatch, TimestampType};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/kafka-golden")
}

/// Copies the golden segment into `<tmp>/golden-0/` so that opening it may write indexes.
fn golden_log() -> (tempfile::TempDir, Log) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("golden-0");
    std::fs::create_dir(&dir).unwrap();
    let name = "00000000000000000000.log";
    std::fs::copy(golden_dir().join(name), dir.join(name)).unwrap();
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    (tmp, log)
}

fn expected_value(i: usize) -> Option<Bytes> {
    if i == 1 {
        return None;
    }
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(48, b'x');
    Some(Bytes::from(v))
}

#[test]
fn every_record_of_the_golden_segment_reads_back_exactly() {
    let (_tmp, log) = golden_log();
    assert_eq!(log.recovery_report().truncations, vec![]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 29));
    let batches = log.read(0, usize::MAX).unwrap();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
        Compression::None,
        Compression::None,
    ];
    assert_eq!(batches.len(), 7);
    let mut next = 0i64;
    for (b, batch) in batches.iter().enumerate() {
        assert_eq!(batch.compression().unwrap(), codecs[b], "batch {b}");
        assert_eq!(batch.partition_leader_epoch(), 7);
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert_eq!(batch.base_offset(), next);
        batch.verify_crc().unwrap();
        let records: Vec<_> = batch
            .records(&Codecs::default())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if b == 6 {
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!((batch.producer_id(), batch.producer_epoch()), (1234, 3));
            assert_eq!(records.len(), 1);
            let r = &records[0];
            assert_eq!(r.offset, 28);
            let kind = ControlRecordType::parse_key(r.key.as_ref().unwrap()).unwrap();
            assert_eq!(kind, ControlRecordType::Abort);
            let marker = EndTxnMarker::parse(r.value.as_ref().unwrap()).unwrap();
            assert_eq!(marker.coordinator_epoch, 42);
            next = 29;
            continue;
        }
        let n = if b == 5 { 3 } else { 5 };
        assert_eq!(records.len(), n, "batch {b}");
        if b == 5 {
            assert!(batch.is_transactional() && !batch.is_control());
            assert_eq!(
                (
                    batch.producer_id(),
                    batch.producer_epoch(),
                    batch.base_sequence()
                ),
                (1234, 3, 0)
            );
        } else {
            assert_eq!(batch.producer_id(), -1);
        }
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, next + i as i64);
            assert_eq!(r.timestamp, 1_700_000_000_000 + 10 * i as i64);
            assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
            assert_eq!(r.value, expected_value(i), "batch {b} record {i}");
            if i == 2 {
                assert_eq!(r.headers.len(), 2);
                assert_eq!(r.headers[0].key, "h1");
                assert_eq!(r.headers[0].value.as_deref(), Some(&b"hv"[..]));
                assert_eq!(r.headers[1].key, "h2");
                assert_eq!(r.headers[1].value, None);
            } else {
                assert!(r.headers.is_empty());
            }
        }
        assert_eq!(
            batch.max_timestamp(),
            1_700_000_000_000 + 10 * (n as i64 - 1)
        );
        next += n as i64;
    }
}

#[test]
fn reads_from_the_middle_return_the_batch_holding_the_offset() {
    let (_tmp, log) = golden_log();
    let batches = log.read(12, 1).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(
        (batches[0].base_offset(), batches[0].last_offset()),
        (10, 14)
    );
    assert!(log.read(29, 1000).unwrap().is_empty());
    let err = log.read(30, 1000).unwrap_err().to_string();
    assert!(err.contains("valid offsets are 0..=29"), "{err}");
}

#[test]
fn lookup_by_timestamp_in_the_golden_segment() {
    let (_tmp, log) = golden_log();
    let found = log
        .offset_for_timestamp(1_700_000_000_015)
        .unwrap()
        .unwrap();
    assert_eq!((found.offset, found.timestamp), (2, 1_700_000_000_020));
    let found = log.offset_for_timestamp(0).unwrap().unwrap();
    assert_eq!(found.offset, 0);
    assert_eq!(log.offset_for_timestamp(1_800_000_000_000).unwrap(), None);
}

#[test]
fn golden_uncompressed_batch_is_bit_identical_when_re_encoded() {
    let raw = std::fs::read(golden_dir().join("00000000000000000000.log")).unwrap();
    let len = i32::from_be_bytes(raw[8..12].try_into().unwrap()) as usize + 12;
    let golden = RecordBatch::from_bytes(Bytes::copy_from_slice(&raw[..len])).unwrap();
    let mut builder = partlog::BatchBuilder::new(Compression::None);
    for r in golden.records(&Codecs::default()).unwrap() {
        let r = r.unwrap();
        builder.push(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    let mut ours = builder
        .build(&Codecs::default())
        .unwrap()
        .as_bytes()
        .to_vec();
    // The producer sends leader epoch -1; Kafka stamped 7. Neither is under the CRC.
    ours[12..16].copy_from_slice(&7i32.to_be_bytes());
    assert_eq!(ours, raw[..len]);
}
