//! Property tests of the RecordBatch v2 encoder and decoder, for every codec.
//!
//! Round trip: arbitrary records (0..50 of them; null and empty keys and values; values
//! up to 4 KiB, compressible or not; up to 3 headers, some with null values; timestamps
//! out of order with negative deltas; producer id, epoch and sequence; the transactional
//! flag) go through `BatchBuilder::build` → `into_batch()` → `records()` and come back
//! equal; `EncodedBatch::from_raw` accepts the bytes unchanged; appended to a `Log`, read
//! back and reopened, they are still the same. A 1 MiB value does the same outside
//! proptest.
//!
//! Robustness: a flipped bit is caught by the CRC (or lies outside it, where its effect
//! is known), every truncation is refused, and garbage under a valid CRC decodes to an
//! error or to records, never a panic and never more records than the header declares.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use partlog::record::ProducerInfo;
use partlog::{
    BatchBuilder, Codecs, Compression, DecodeError, EncodedBatch, Header, Log, LogConfig, Record,
    RecordBatch,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// One record as the test writes it.
#[derive(Debug, Clone)]
struct Input {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

/// Everything a producer chooses about a batch.
#[derive(Debug, Clone)]
struct BatchInput {
    records: Vec<Input>,
    producer: ProducerInfo,
    transactional: bool,
}

/// `len` incompressible bytes from `seed` (xorshift: cheap to generate, unlike one
/// proptest draw per byte in a debug build).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn bytes_field(max_len: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => vec(any::<u8>(), 0..=32).prop_map(Some),
        1 => (any::<u8>(), 0..=max_len).prop_map(|(b, n)| Some(vec![b; n])),
        1 => (any::<u64>(), 0..=max_len).prop_map(|(seed, n)| Some(noise(seed, n))),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    let value = prop_oneof![
        Just(None),
        vec(any::<u8>(), 0..=16).prop_map(|v| Some(Bytes::from(v))),
    ];
    // Any Unicode scalar values, so keys of 1 to 4 UTF-8 bytes per char.
    let key = vec(any::<char>(), 0..8).prop_map(String::from_iter);
    (key, value).prop_map(|(key, value)| Header { key, value })
}

/// Timestamps around `base`, out of order. With `any_i64` the base may be any i64 (the
/// deltas then wrap, which the format allows).
fn records(base: impl Strategy<Value = i64>) -> impl Strategy<Value = Vec<Input>> {
    let record = (
        -100_000i64..100_000,
        bytes_field(64),
        bytes_field(4096),
        vec(header(), 0..4),
    );
    (base, vec(record, 0..50)).prop_map(|(base, rs)| {
        rs.into_iter()
            .map(|(delta, key, value, headers)| Input {
                timestamp: base.wrapping_add(delta),
                key,
                value,
                headers,
            })
            .collect()
    })
}

fn producer() -> impl Strategy<Value = ProducerInfo> {
    prop_oneof![
        Just(ProducerInfo::NONE),
        (0i64..i64::MAX, 0i16..i16::MAX, 0i32..i32::MAX).prop_map(|(id, epoch, seq)| {
            ProducerInfo {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: seq,
            }
        }),
    ]
}

fn batch_input(base: impl Strategy<Value = i64>) -> impl Strategy<Value = BatchInput> {
    (records(base), producer(), any::<bool>()).prop_map(|(records, producer, transactional)| {
        BatchInput {
            records,
            producer,
            transactional,
        }
    })
}

/// Sane timestamps: around now, give or take decades.
fn sane_base() -> impl Strategy<Value = i64> {
    0i64..4_000_000_000_000
}

/// Any timestamp at all, or a sane one.
fn any_base() -> impl Strategy<Value = i64> {
    prop_oneof![sane_base(), any::<i64>()]
}

fn build(input: &BatchInput, compression: Compression) -> EncodedBatch {
    let mut b = BatchBuilder::new(compression)
        .producer(input.producer)
        .transactional(input.transactional);
    for r in &input.records {
        b.push(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    b.build(&Codecs::default()).unwrap()
}

/// The records `input` should decode to, starting at `base_offset`.
fn expected(input: &BatchInput, base_offset: i64) -> Vec<Record> {
    input
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset: base_offset + i as i64,
            timestamp: r.timestamp,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r.headers.clone(),
        })
        .collect()
}

fn decode(batch: &RecordBatch) -> Result<Vec<Record>, DecodeError> {
    batch.records(&Codecs::default())?.collect()
}

/// The same records through the borrowed view (`Records::next_ref`), copied out.
fn decode_by_ref(batch: &RecordBatch) -> Result<Vec<Record>, DecodeError> {
    let mut records = batch.records(&Codecs::default())?;
    let mut out = Vec::new();
    while let Some(r) = records.next_ref() {
        let r = r?;
        out.push(Record {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(Bytes::copy_from_slice),
            value: r.value.map(Bytes::copy_from_slice),
            headers: r
                .headers
                .map(|(key, value)| Header {
                    key: key.to_string(),
                    value: value.map(Bytes::copy_from_slice),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Checks the header of a built batch against its input.
fn check_header(batch: &RecordBatch, input: &BatchInput, compression: Compression) {
    let n = input.records.len() as i32;
    assert_eq!(batch.as_bytes()[16], 2, "magic");
    assert_eq!(batch.compression(), Ok(compression));
    assert_eq!(batch.records_count(), n);
    assert_eq!(batch.last_offset_delta(), (n - 1).max(0));
    let first = input.records.first().map_or(-1, |r| r.timestamp);
    let max = input
        .records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(-1);
    assert_eq!(
        (batch.base_timestamp(), batch.max_timestamp()),
        (first, max)
    );
    assert_eq!(
        (
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence()
        ),
        (
            input.producer.producer_id,
            input.producer.producer_epoch,
            input.producer.base_sequence
        )
    );
    assert_eq!(batch.is_transactional(), input.transactional);
    assert!(!batch.is_control());
    assert_eq!(batch.verify_crc(), Ok(()));
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn built_batches_decode_to_their_records_for_every_codec(input in batch_input(any_base())) {
        for compression in Compression::ALL {
            let encoded = build(&input, compression);
            let bytes = Bytes::copy_from_slice(encoded.as_bytes());
            let batch = encoded.into_batch();
            check_header(&batch, &input, compression);
            prop_assert_eq!(decode(&batch), Ok(expected(&input, 0)), "{}", compression);
            prop_assert_eq!(decode_by_ref(&batch), Ok(expected(&input, 0)), "{}", compression);
            // The bytes parse on their own, and a producer-built batch passes the checks
            // made on batches from elsewhere, byte for byte (maxTimestamp already right).
            let parsed = RecordBatch::from_bytes(bytes.clone());
            prop_assert_eq!(parsed, Ok(batch));
            match EncodedBatch::from_raw(bytes.clone(), &Codecs::default()) {
                Ok(raw) => {
                    prop_assert!(!input.records.is_empty());
                    prop_assert_eq!(raw.as_bytes(), &bytes[..]);
                }
                Err(e) => prop_assert!(input.records.is_empty(), "{}: {}", compression, e),
            }
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_crc_or_lies_outside_it(
        input in batch_input(sane_base()),
        codec in 0usize..5,
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let compression = Compression::ALL[codec];
        let mut bytes = build(&input, compression).as_bytes().to_vec();
        let pos = at.index(bytes.len());
        bytes[pos] ^= 1 << bit;
        let parsed = RecordBatch::from_bytes(Bytes::from(bytes));
        match pos {
            // baseOffset: not under the CRC; the records move with it.
            0..=7 => {
                let batch = parsed.unwrap();
                let base = batch.base_offset();
                prop_assert_eq!(base, 1i64 << (8 * (7 - pos) + bit as usize));
                prop_assert_eq!(decode(&batch), Ok(expected(&input, base)));
            }
            // batchLength no longer matches the bytes.
            8..=11 => prop_assert!(parsed.is_err()),
            // partitionLeaderEpoch: not under the CRC, and harmless.
            12..=15 => {
                let batch = parsed.unwrap();
                prop_assert_eq!(decode(&batch), Ok(expected(&input, 0)));
            }
            16 => {
                let is_magic_error = matches!(parsed, Err(DecodeError::UnsupportedMagic { .. }));
                prop_assert!(is_magic_error);
            }
            // The CRC and everything it covers.
            _ => {
                let batch = parsed.unwrap();
                let is_crc_error = matches!(decode(&batch), Err(DecodeError::CrcMismatch { .. }));
                prop_assert!(is_crc_error);
                let raw = EncodedBatch::from_raw(batch.as_bytes().clone(), &Codecs::default());
                prop_assert!(raw.is_err());
            }
        }
    }

    #[test]
    fn every_truncation_of_a_batch_is_refused(
        input in batch_input(sane_base()),
        codec in 0usize..5,
    ) {
        let bytes = Bytes::copy_from_slice(build(&input, Compression::ALL[codec]).as_bytes());
        for len in 0..bytes.len() {
            let cut = bytes.slice(..len);
            prop_assert!(RecordBatch::from_bytes(cut.clone()).is_err(), "length {}", len);
            prop_assert!(EncodedBatch::from_raw(cut, &Codecs::default()).is_err());
        }
    }

    #[test]
    fn garbage_under_a_valid_crc_decodes_to_an_error_or_records_never_a_panic(
        input in batch_input(sane_base()),
        codec in 0usize..5,
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = build(&input, Compression::ALL[codec]).as_bytes().to_vec();
        // Overwrite bytes from the attributes on (codec bits included), then fix the CRC
        // so that decoding gets past it.
        for (at, b) in &edits {
            let pos = 21 + at.index(bytes.len() - 21);
            bytes[pos] = *b;
        }
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let bytes = Bytes::from(bytes);
        let batch = RecordBatch::from_bytes(bytes.clone()).unwrap();
        let declared = batch.records_count().max(0) as usize;
        let outcome = catch_unwind(AssertUnwindSafe(|| match batch.records(&Codecs::default()) {
            Err(_) => (0, true),
            Ok(mut records) => {
                let mut ok = 0;
                while let Some(r) = records.next() {
                    match r {
                        Ok(_) => ok += 1,
                        // After an error the iterator ends.
                        Err(_) => return (ok, records.next().is_none()),
                    }
                }
                (ok, true)
            }
        }));
        let (ok, ended) = outcome.map_err(|_| TestCaseError::fail("records() panicked"))?;
        prop_assert!(ended, "the iterator goes on after an error");
        prop_assert!(ok <= declared, "{} records decoded, {} declared", ok, declared);
        // The borrowed view decodes exactly as far, and fails the same way.
        let by_ref = catch_unwind(AssertUnwindSafe(|| decode_by_ref(&batch)))
            .map_err(|_| TestCaseError::fail("next_ref panicked"))?;
        prop_assert_eq!(by_ref, decode(&batch));
        // What from_raw accepts decodes completely.
        let raw = catch_unwind(AssertUnwindSafe(|| EncodedBatch::from_raw(bytes, &Codecs::default())))
            .map_err(|_| TestCaseError::fail("from_raw panicked"))?;
        if let Ok(raw) = raw {
            let batch = raw.into_batch();
            let n = batch.records_count() as usize;
            prop_assert_eq!(decode(&batch).map(|r| r.len()), Ok(n));
        }
    }
}

/// Reads the whole log and checks every batch against what was appended.
fn check_log(log: &Log, want: &[(BatchInput, Compression, i64)]) -> Result<(), TestCaseError> {
    // A read stops at the end of a segment (and far-apart timestamps roll segments).
    let mut batches = Vec::new();
    while batches.last().map_or(0, RecordBatch::next_offset) < log.log_end_offset() {
        let from = batches.last().map_or(0, RecordBatch::next_offset);
        let more = log.read(from, usize::MAX).unwrap();
        prop_assert!(
            !more.is_empty(),
            "read({}) below the log end is empty",
            from
        );
        batches.extend(more);
    }
    prop_assert_eq!(batches.len(), want.len());
    for (batch, (input, compression, base)) in batches.iter().zip(want) {
        prop_assert_eq!(batch.base_offset(), *base);
        prop_assert_eq!(batch.partition_leader_epoch(), 0);
        check_header(batch, input, *compression);
        prop_assert_eq!(decode(batch), Ok(expected(input, *base)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..config() })]

    #[test]
    fn appended_batches_read_back_and_recover_unchanged(
        inputs in vec(batch_input(sane_base()), 5),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("prop-0");
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        let mut want: Vec<(BatchInput, Compression, i64)> = Vec::new();
        for (input, compression) in inputs.iter().zip(Compression::ALL) {
            if input.records.is_empty() {
                continue; // not a producer's batch; see an_empty_batch_is_refused_by_append
            }
            let info = log.append(build(input, compression)).unwrap();
            prop_assert_eq!(info.records as usize, input.records.len());
            prop_assert_eq!(info.last_offset - info.base_offset + 1, i64::from(info.records));
            want.push((input.clone(), compression, info.base_offset));
        }
        check_log(&log, &want)?;
        drop(log);
        // Reopened as after a crash: every batch is validated, nothing is cut.
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        prop_assert_eq!(&log.recovery_report().truncations, &vec![]);
        check_log(&log, &want)?;
    }
}

#[test]
fn a_one_mebibyte_value_round_trips_through_every_codec_and_the_log() {
    // Past every codec's block size (snappy 32 KiB, lz4 64 KiB), compressible or not.
    let input = BatchInput {
        records: vec![
            Input {
                timestamp: 1_700_000_000_000,
                key: Some(b"noise".to_vec()),
                value: Some(noise(42, 1 << 20)),
                headers: vec![Header::new("kind", "incompressible")],
            },
            Input {
                timestamp: 1_699_999_999_000,
                key: None,
                value: Some(b"0123456789abcdef".repeat(1 << 16)),
                headers: vec![],
            },
        ],
        producer: ProducerInfo::NONE,
        transactional: false,
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 4 << 20,
        ..LogConfig::default()
    };
    let log = Log::open(tmp.path().join("big-0"), config).unwrap();
    for compression in Compression::ALL {
        let encoded = build(&input, compression);
        let bytes = Bytes::copy_from_slice(encoded.as_bytes());
        let batch = encoded.clone().into_batch();
        check_header(&batch, &input, compression);
        assert_eq!(decode(&batch), Ok(expected(&input, 0)), "{compression}");
        let raw = EncodedBatch::from_raw(bytes.clone(), &Codecs::default()).unwrap();
        assert_eq!(raw.as_bytes(), &bytes[..], "{compression}");

        let info = log.append(encoded).unwrap();
        let back = log.read(info.base_offset, 1).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].as_bytes().len(), bytes.len(), "{compression}");
        assert_eq!(
            decode(&back[0]),
            Ok(expected(&input, info.base_offset)),
            "{compression}"
        );
    }
}

#[test]
fn an_empty_batch_is_refused_by_append() {
    // Kafka's broker refuses a produced batch with no records (`LogValidator`: count > 0
    // and count == lastOffsetDelta + 1); `from_raw` refuses it too. Appending one must not
    // use up an offset that no record has.
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path().join("empty-0"), LogConfig::default()).unwrap();
    let empty = BatchBuilder::new(Compression::None)
        .build(&Codecs::default())
        .unwrap();
    assert_eq!(empty.records_count(), 0);
    let bytes = Bytes::copy_from_slice(empty.as_bytes());
    assert!(EncodedBatch::from_raw(bytes, &Codecs::default()).is_err());
    let result = log.append(empty);
    assert!(result.is_err(), "append of an empty batch gave {result:?}");
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn offsets_past_i64_max_in_a_batch_header_decode_to_an_error_not_a_panic() {
    // baseOffset is outside the CRC: a batch read from a damaged file can carry any value
    // there. With baseOffset = i64::MAX - 1, records 2 and 3 have no i64 offset.
    let input = BatchInput {
        records: (0..3)
            .map(|i| Input {
                timestamp: 1_700_000_000_000 + i,
                key: None,
                value: Some(vec![b'v']),
                headers: vec![],
            })
            .collect(),
        producer: ProducerInfo::NONE,
        transactional: false,
    };
    let mut bytes = build(&input, Compression::None).as_bytes().to_vec();
    let base = i64::MAX - 1;
    bytes[..8].copy_from_slice(&base.to_be_bytes());
    let batch = RecordBatch::from_bytes(Bytes::from(bytes)).unwrap();
    assert_eq!(batch.verify_crc(), Ok(()));
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        batch
            .records(&Codecs::default())
            .map(|rs| rs.collect::<Vec<_>>())
    }))
    .expect("decoding panicked");
    // Either the batch is refused, or decoding stops with an error before a record whose
    // offset wrapped around (below the base offset) would be returned.
    if let Ok(records) = decoded {
        let offsets: Vec<i64> = records
            .iter()
            .map_while(|r| r.as_ref().ok())
            .map(|r| r.offset)
            .collect();
        assert!(
            offsets.iter().all(|&o| o >= base),
            "wrapped offsets {offsets:?}"
        );
        assert!(records.iter().any(Result::is_err), "{records:?}");
    }
}
