//! Recovery after an unclean shutdown keeps exactly the longest valid prefix of the log.
//!
//! One log of three segments (every codec, null and empty keys and values, headers with
//! null values, out-of-order timestamps) is written and closed once. Each case copies it,
//! damages one `.log` file (a cut at every byte, single bit flips, zero-filled or
//! zero-extended tails), and reopens it with `Log::open`, which validates every batch.
//!
//! What each case checks against an oracle that walks the damaged bytes by the rules of
//! reference §3.4 and §4 (length ≥ 14, whole batch present, magic 2, size ≥ 61, CRC-32C over
//! bytes 21.., offsets not going backwards and fitting the segment):
//! - opening never panics;
//! - the records read back are exactly the records written up to the first bad batch
//!   (offset, timestamp, key, value, headers), with nothing invented;
//! - `recovery_report().truncations` names the damaged file, the end of the last valid
//!   batch and the number of bytes cut, for the right reason, and the file is that long;
//! - segments after a damaged one are deleted and reported;
//! - an append after recovery gets offset = the recovered log end offset, and a second
//!   recovery finds nothing left to cut.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use partlog::{
    BatchBuilder, Codecs, Compression, DecodeError, Header, Log, LogConfig, Record,
    TruncationReason,
};

/// Base of every record timestamp written.
const BASE_TS: i64 = 1_700_000_000_000;
/// Batches written; with `config()` they fill exactly three segments.
const BATCHES: usize = 15;
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Lz4,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Zstd,
];

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1000,
        segment_index_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// The records of batch `b` as written: timestamps out of order within the batch, null
/// and empty keys and values, headers with null and empty values.
fn batch_records(b: usize, base_offset: i64) -> Vec<Record> {
    let n = 1 + b % 4;
    let ts_jitter = [0, -7, 13, 5];
    (0..n)
        .map(|j| {
            let key = match (b + j) % 4 {
                0 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(format!("key-{b}-{j}"))),
            };
            let value = match (b + j) % 5 {
                0 => None,
                1 => Some(Bytes::new()),
                k => Some(Bytes::from(
                    format!("value {b}/{j} ").repeat(3 + 5 * k).into_bytes(),
                )),
            };
            let headers = match j % 3 {
                0 => vec![],
                1 => vec![
                    Header::new("trace", format!("t{b}{j}")),
                    Header {
                        key: "null-valued".into(),
                        value: None,
                    },
                ],
                _ => vec![Header::new("", Bytes::new())],
            };
            Record {
                offset: base_offset + j as i64,
                timestamp: BASE_TS + 100 * b as i64 + ts_jitter[j],
                key,
                value,
                headers,
            }
        })
        .collect()
}

/// One batch as found in a pristine segment file.
#[derive(Debug, Clone)]
struct Span {
    start: usize,
    end: usize,
    base_offset: i64,
    last_offset_delta: i32,
}

#[derive(Debug, Clone)]
struct SegmentFile {
    base_offset: i64,
    name: String,
    bytes: Vec<u8>,
    batches: Vec<Span>,
}

/// The closed log, kept pristine, and what was written to it.
struct Fixture {
    _tmp: tempfile::TempDir,
    pristine: PathBuf,
    work: PathBuf,
    records: Vec<Record>,
    segments: Vec<SegmentFile>,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Splits a pristine segment file into batches by their length fields.
fn spans(bytes: &[u8]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let size = 12 + be_i32(bytes, pos + 8) as usize;
        out.push(Span {
            start: pos,
            end: pos + size,
            base_offset: be_i64(bytes, pos),
            last_offset_delta: be_i32(bytes, pos + 23),
        });
        pos += size;
    }
    assert_eq!(
        pos,
        bytes.len(),
        "a pristine segment ends on a batch boundary"
    );
    out
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine-0");
    let log = Log::open(&pristine, config()).unwrap();
    let codecs = Codecs::default();
    let mut records = Vec::new();
    for b in 0..BATCHES {
        let recs = batch_records(b, log.log_end_offset());
        let mut builder = BatchBuilder::new(CODECS[b % CODECS.len()]);
        for r in &recs {
            builder.push(
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
        }
        let info = log.append(builder.build(&codecs).unwrap()).unwrap();
        assert_eq!(info.base_offset, recs[0].offset);
        records.extend(recs);
    }
    assert_eq!(
        read_all(&log),
        records,
        "the pristine log reads back as written"
    );
    let bases = log.segment_base_offsets();
    assert_eq!(
        bases.len(),
        3,
        "the fixture spans three segments: {bases:?}"
    );
    log.close().unwrap();
    drop(log);

    let segments: Vec<SegmentFile> = bases
        .iter()
        .map(|&base| {
            let name = format!("{base:020}.log");
            let bytes = fs::read(pristine.join(&name)).unwrap();
            let batches = spans(&bytes);
            assert!(
                batches.len() >= 3,
                "segment {name} holds at least 3 batches"
            );
            SegmentFile {
                base_offset: base,
                name,
                bytes,
                batches,
            }
        })
        .collect();
    let work = tmp.path().join("work-0");
    Fixture {
        _tmp: tmp,
        pristine,
        work,
        records,
        segments,
    }
}

/// Every record of the log, reading segment after segment.
fn read_all(log: &Log) -> Vec<Record> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let batches = log.read(next, usize::MAX).unwrap();
        assert!(
            !batches.is_empty(),
            "read({next}) below the log end returned nothing"
        );
        for batch in &batches {
            for r in batch.records(log.codecs()).unwrap() {
                out.push(r.unwrap());
            }
            next = batch.next_offset();
        }
    }
    out
}

/// Why the oracle expects a cut, mirroring `TruncationReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Torn,
    BadLength,
    Magic,
    Crc,
    Order,
}

fn why(reason: &TruncationReason) -> Why {
    match reason {
        TruncationReason::TornTail => Why::Torn,
        TruncationReason::Corrupt(DecodeError::BadLength { .. }) => Why::BadLength,
        TruncationReason::Corrupt(DecodeError::UnsupportedMagic { .. }) => Why::Magic,
        TruncationReason::Corrupt(DecodeError::CrcMismatch { .. }) => Why::Crc,
        TruncationReason::OffsetOrder { .. } => Why::Order,
        other => panic!("unexpected truncation reason {other:?}"),
    }
}

/// What recovery must produce.
#[derive(Debug)]
struct Expect {
    records: Vec<Record>,
    log_end: i64,
    segment_bases: Vec<i64>,
    /// (segment index, position, bytes cut, why).
    truncation: Option<(usize, u64, u64, Why)>,
    deleted: Vec<usize>,
    bytes_recovered: u64,
    /// Zeros cut silently from the end of the last segment (its reserved space).
    zero_tail: u64,
}

/// The oracle: walks every segment (segment `s` replaced by `damaged`) batch by batch as
/// reference §3.4 and §4 say recovery must, and collects the records that survive.
fn oracle(fx: &Fixture, s: usize, damaged: &[u8]) -> Expect {
    let mut records = Vec::new();
    let mut next = 0i64;
    let mut bytes_recovered = 0u64;
    for (i, seg) in fx.segments.iter().enumerate() {
        let bytes: &[u8] = if i == s { damaged } else { &seg.bytes };
        next = next.max(seg.base_offset);
        let mut pos = 0usize;
        let cut = loop {
            if pos == bytes.len() {
                break None;
            }
            let rest = bytes.len() - pos;
            if rest < 12 {
                break Some(Why::Torn);
            }
            let length = be_i32(bytes, pos + 8);
            if length < 14 {
                break Some(Why::BadLength);
            }
            let size = 12 + length as usize;
            if rest < size {
                break Some(Why::Torn);
            }
            if bytes[pos + 16] != 2 {
                break Some(Why::Magic);
            }
            if size < 61 {
                break Some(Why::BadLength);
            }
            let batch = &bytes[pos..pos + size];
            if crc32c::crc32c(&batch[21..]) != be_i32(batch, 17) as u32 {
                break Some(Why::Crc);
            }
            let base = be_i64(batch, 0);
            let delta = be_i32(batch, 23);
            let last = i128::from(base) + i128::from(delta);
            if base < next || delta < 0 || last - i128::from(seg.base_offset) > i32::MAX as i128 {
                break Some(Why::Order);
            }
            // A CRC-valid batch here is one of the batches written, at the same place, with
            // at most its base offset or leader epoch changed (neither is under the CRC).
            let orig = seg
                .batches
                .iter()
                .find(|sp| sp.start == pos && sp.end == pos + size)
                .expect("a CRC-valid batch is a pristine one");
            assert_eq!(batch[16..], seg.bytes[orig.start + 16..orig.end]);
            assert_eq!(delta, orig.last_offset_delta);
            let shift = base - orig.base_offset;
            records.extend(
                fx.records
                    .iter()
                    .filter(|r| {
                        r.offset >= orig.base_offset
                            && r.offset <= orig.base_offset + i64::from(delta)
                    })
                    .map(|r| Record {
                        offset: r.offset + shift,
                        ..r.clone()
                    }),
            );
            next = base + i64::from(delta) + 1;
            pos += size;
        };
        bytes_recovered += pos as u64;
        if cut.is_some() && i + 1 == fx.segments.len() && bytes[pos..].iter().all(|&b| b == 0) {
            // The last segment's file ends in zeros: the space an active segment reserves
            // ahead of its data. Cut, but no batch was there, so no truncation.
            return Expect {
                records,
                log_end: next,
                segment_bases: fx.segments.iter().map(|s| s.base_offset).collect(),
                truncation: None,
                deleted: vec![],
                bytes_recovered,
                zero_tail: (bytes.len() - pos) as u64,
            };
        }
        if let Some(w) = cut {
            let deleted: Vec<usize> = (i + 1..fx.segments.len()).collect();
            return Expect {
                records,
                log_end: next,
                segment_bases: fx.segments[..=i].iter().map(|s| s.base_offset).collect(),
                truncation: Some((i, pos as u64, (bytes.len() - pos) as u64, w)),
                deleted,
                bytes_recovered,
                zero_tail: 0,
            };
        }
    }
    Expect {
        records,
        log_end: next,
        segment_bases: fx.segments.iter().map(|s| s.base_offset).collect(),
        truncation: None,
        deleted: vec![],
        bytes_recovered,
        zero_tail: 0,
    }
}

/// Restores the pristine log into the work directory with segment `s`'s `.log` replaced.
fn stage(fx: &Fixture, s: usize, damaged: &[u8]) {
    if fx.work.exists() {
        fs::remove_dir_all(&fx.work).unwrap();
    }
    fs::create_dir(&fx.work).unwrap();
    for entry in fs::read_dir(&fx.pristine).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name == fx.segments[s].name.as_str() {
            fs::write(fx.work.join(name), damaged).unwrap();
        } else {
            fs::copy(&path, fx.work.join(name)).unwrap();
        }
    }
}

fn open_without_panic(dir: &Path, what: &str) -> Log {
    match catch_unwind(AssertUnwindSafe(|| Log::open(dir, config()))) {
        Ok(Ok(log)) => log,
        Ok(Err(e)) => panic!("{what}: Log::open failed: {e}"),
        Err(_) => panic!("{what}: Log::open panicked"),
    }
}

/// Damages segment `s` to `damaged`, recovers, and checks everything against the oracle.
/// With `reopen`, also appends, reopens and checks the second recovery cuts nothing.
fn check(fx: &Fixture, s: usize, damaged: &[u8], what: &str, reopen: bool) -> Expect {
    let expect = oracle(fx, s, damaged);
    stage(fx, s, damaged);
    let log = open_without_panic(&fx.work, what);
    let report = log.recovery_report().clone();

    let got: Vec<_> = report
        .truncations
        .iter()
        .map(|t| (t.path.clone(), t.position, t.bytes, why(&t.reason)))
        .collect();
    let want: Vec<_> = expect
        .truncation
        .iter()
        .map(|&(i, pos, bytes, w)| (fx.work.join(&fx.segments[i].name), pos, bytes, w))
        .collect();
    assert_eq!(got, want, "{what}: truncations");
    assert_eq!(
        report.zero_tail_bytes, expect.zero_tail,
        "{what}: zero tail"
    );
    if expect.zero_tail > 0 {
        let last = fx.segments.last().unwrap();
        let len = fs::metadata(fx.work.join(&last.name)).unwrap().len();
        let kept: u64 = damaged.len() as u64 - expect.zero_tail;
        assert_eq!(len, kept, "{what}: the zero tail is cut");
    }
    if let Some((i, pos, ..)) = expect.truncation {
        let len = fs::metadata(fx.work.join(&fx.segments[i].name))
            .unwrap()
            .len();
        assert_eq!(len, pos, "{what}: the file is cut to the last valid batch");
    }
    let deleted: Vec<PathBuf> = expect
        .deleted
        .iter()
        .map(|&i| fx.work.join(&fx.segments[i].name))
        .collect();
    assert_eq!(report.deleted_segments, deleted, "{what}: deleted segments");
    for path in &deleted {
        assert!(!path.exists(), "{what}: {} is gone", path.display());
    }
    assert_eq!(
        report.segments_recovered,
        expect.segment_bases.len(),
        "{what}: segments recovered"
    );
    assert_eq!(
        report.bytes_recovered, expect.bytes_recovered,
        "{what}: bytes"
    );
    assert_eq!(log.segment_base_offsets(), expect.segment_bases, "{what}");
    assert_eq!(
        log.log_end_offset(),
        expect.log_end,
        "{what}: log end offset"
    );
    let records = read_all(&log);
    assert_eq!(records.len(), expect.records.len(), "{what}: record count");
    assert_eq!(records, expect.records, "{what}: records");

    // The recovered log takes appends at its end.
    let mut b = BatchBuilder::new(Compression::None);
    b.push(BASE_TS + 99_999, Some(b"after"), Some(b"recovery"), &[]);
    let info = log.append(b.build(&Codecs::default()).unwrap()).unwrap();
    assert_eq!(
        info.base_offset, expect.log_end,
        "{what}: offset of the next append"
    );
    let back = log.read(info.base_offset, 1).unwrap();
    let rec = back[0]
        .records(log.codecs())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.offset, rec.value.as_deref()),
        (expect.log_end, Some(&b"recovery"[..]))
    );
    drop(log);

    if reopen {
        let log = open_without_panic(&fx.work, what);
        assert_eq!(
            log.recovery_report().truncations,
            vec![],
            "{what}: second recovery"
        );
        assert_eq!(
            log.log_end_offset(),
            expect.log_end + 1,
            "{what}: after reopen"
        );
        let mut records = read_all(&log);
        let appended = records.pop().unwrap();
        assert_eq!(appended.offset, expect.log_end);
        assert_eq!(records, expect.records, "{what}: records after reopen");
    }
    expect
}

fn last(fx: &Fixture) -> usize {
    fx.segments.len() - 1
}

#[test]
fn cutting_the_last_segment_at_any_byte_of_its_last_three_batches_keeps_the_whole_batches_before() {
    let fx = fixture();
    let s = last(&fx);
    let seg = &fx.segments[s];
    let from = seg.batches[seg.batches.len() - 3].start;
    let mut kept_counts = std::collections::BTreeSet::new();
    for cut in from..=seg.bytes.len() {
        let what = format!("cut at byte {cut} of {}", seg.name);
        let e = check(&fx, s, &seg.bytes[..cut], &what, cut.is_multiple_of(16));
        // Independently of the oracle: the kept records are those of the batches that
        // end at or before the cut.
        let whole = seg.batches.iter().filter(|sp| sp.end <= cut).count();
        let expected_end = if whole == 0 {
            seg.base_offset
        } else {
            let sp = &seg.batches[whole - 1];
            sp.base_offset + i64::from(sp.last_offset_delta) + 1
        };
        assert_eq!(e.log_end, expected_end, "{what}");
        assert_eq!(e.records.len() as i64, expected_end, "{what}");
        let at_boundary = seg.batches.iter().any(|sp| sp.end == cut) || cut == 0;
        // A torn tail of zeros is indistinguishable from reserved space: cut silently.
        let zero_tail = !at_boundary
            && seg.bytes[seg.batches[whole].start..cut]
                .iter()
                .all(|&b| b == 0);
        assert_eq!(
            e.zero_tail,
            if zero_tail {
                (cut - seg.batches[whole].start) as u64
            } else {
                0
            },
            "{what}"
        );
        match e.truncation {
            None => assert!(at_boundary || zero_tail, "{what}"),
            Some((_, pos, bytes, w)) => {
                assert!(!at_boundary, "{what}");
                assert_eq!(
                    (pos, bytes, w),
                    (
                        seg.batches[whole].start as u64,
                        (cut - seg.batches[whole].start) as u64,
                        Why::Torn
                    )
                );
            }
        }
        kept_counts.insert(e.records.len());
    }
    assert_eq!(
        kept_counts.len(),
        4,
        "four distinct prefixes: {kept_counts:?}"
    );
}

#[test]
fn a_bit_flip_anywhere_in_the_last_segment_cuts_the_log_at_the_damaged_batch() {
    let fx = fixture();
    let s = last(&fx);
    let seg = &fx.segments[s];
    let mut cuts_by_reason = std::collections::BTreeMap::new();
    let last_batch = seg.batches.last().unwrap().clone();
    for pos in 0..seg.bytes.len() {
        // Every bit of the last batch's first 21 bytes (the fields outside the CRC, and the
        // CRC itself); one bit per byte elsewhere.
        let bits: Vec<u8> = if (last_batch.start..last_batch.start + 21).contains(&pos) {
            (0..8).collect()
        } else {
            vec![(pos * 5 % 8) as u8]
        };
        for bit in bits {
            let mut damaged = seg.bytes.clone();
            damaged[pos] ^= 1 << bit;
            let what = format!("bit {bit} of byte {pos} of {}", seg.name);
            let e = check(&fx, s, &damaged, &what, pos.is_multiple_of(64));
            let within = pos - seg.batches.iter().find(|sp| sp.end > pos).unwrap().start;
            // Bytes 12..16 are the leader epoch: outside the CRC and harmless.
            if (12..16).contains(&within) {
                assert_eq!(e.truncation, None, "{what}");
                assert_eq!(e.records, fx.records, "{what}");
            }
            // Bytes 17.. are the CRC and what it covers: always caught.
            if within >= 17 {
                let (_, _, _, w) = e.truncation.expect("a flip under the CRC is caught");
                assert_eq!(w, Why::Crc, "{what}");
            }
            let key = e.truncation.map(|t| format!("{:?}", t.3));
            *cuts_by_reason.entry(key).or_insert(0) += 1;
        }
    }
    // The flips exercised every path: harmless, CRC, length, magic and offset order.
    for key in ["Crc", "Magic", "Order", "Torn", "BadLength"] {
        assert!(
            cuts_by_reason.contains_key(&Some(key.to_string())),
            "no flip was cut for {key}: {cuts_by_reason:?}"
        );
    }
    assert!(cuts_by_reason.contains_key(&None), "{cuts_by_reason:?}");
}

#[test]
fn zero_filled_and_zero_extended_tails_are_cut_back_to_the_last_whole_batch() {
    let fx = fixture();
    let s = last(&fx);
    let seg = &fx.segments[s];
    let len = seg.bytes.len();
    let last_batch = seg.batches.last().unwrap();
    let mut overwrite: Vec<usize> = vec![1, 2, 4, 11, 12, 13, 17, 60, 61, 62, 200];
    overwrite.extend(seg.batches.iter().map(|sp| len - sp.start)); // whole batches
    overwrite.extend(seg.batches.iter().map(|sp| len - sp.start - 5)); // all but 5 bytes
    overwrite.push(len - last_batch.start + 1);
    for n in overwrite.into_iter().filter(|&n| n <= len) {
        let mut damaged = seg.bytes.clone();
        damaged[len - n..].fill(0);
        let what = format!("last {n} bytes of {} zeroed", seg.name);
        let e = check(&fx, s, &damaged, &what, true);
        // The first batch with a changed byte is cut, with all after it.
        let first_changed = (len - n..len).find(|&i| seg.bytes[i] != 0).unwrap();
        let hit = seg
            .batches
            .iter()
            .find(|sp| sp.end > first_changed)
            .unwrap();
        if damaged[hit.start..].iter().all(|&b| b == 0) {
            // Nothing but zeros from the damaged batch on: cut as reserved space.
            assert_eq!(e.truncation, None, "{what}");
            assert_eq!(e.zero_tail, (len - hit.start) as u64, "{what}");
        } else {
            let (_, pos, bytes, _) = e.truncation.expect("a zeroed tail is cut");
            assert_eq!(
                (pos, bytes),
                (hit.start as u64, (len - hit.start) as u64),
                "{what}"
            );
        }
    }
    for n in [1usize, 11, 12, 13, 100, 4096] {
        let mut damaged = seg.bytes.clone();
        damaged.resize(len + n, 0);
        let what = format!("{n} zero bytes appended to {}", seg.name);
        let e = check(&fx, s, &damaged, &what, true);
        // Zeros past the last batch of the last segment are what an active segment's
        // reserved space leaves after a crash: cut, and reported as such.
        assert_eq!((e.truncation, e.zero_tail), (None, n as u64), "{what}");
        assert_eq!(e.records, fx.records, "{what}");
    }
}

#[test]
fn damage_in_a_middle_segment_ends_the_log_there_and_deletes_every_later_segment() {
    let fx = fixture();
    let s = 1;
    let seg = &fx.segments[s];
    let later: Vec<i64> = fx.segments[s + 1..].iter().map(|s| s.base_offset).collect();
    assert!(!later.is_empty());
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for sp in &seg.batches {
        for cut in [sp.start + 1, sp.start + 12, sp.start + 61, sp.end - 1] {
            cases.push((format!("cut at {cut}"), seg.bytes[..cut].to_vec()));
        }
    }
    for pos in (0..seg.bytes.len()).step_by(7) {
        // Flips in baseOffset move offsets instead of cutting (the last-segment test
        // covers them); flips in the leader epoch are harmless.
        let within = pos - seg.batches.iter().find(|sp| sp.end > pos).unwrap().start;
        if within < 8 || (12..16).contains(&within) {
            continue;
        }
        let mut d = seg.bytes.clone();
        d[pos] ^= 1 << (pos % 8);
        cases.push((format!("bit {} of byte {pos} flipped", pos % 8), d));
    }
    for n in [1usize, 12, 100, seg.bytes.len()] {
        let mut d = seg.bytes.clone();
        let len = d.len();
        d[len - n..].fill(0);
        if d != seg.bytes {
            cases.push((format!("last {n} bytes zeroed"), d));
        }
    }
    for (what, damaged) in &cases {
        let what = format!("{what} in middle segment {}", seg.name);
        let e = check(&fx, s, damaged, &what, false);
        let (i, pos, ..) = e.truncation.expect("every case damages a batch");
        assert_eq!(i, s, "{what}: the cut is in the damaged segment");
        assert_eq!(
            e.deleted,
            (s + 1..fx.segments.len()).collect::<Vec<_>>(),
            "{what}"
        );
        assert_eq!(
            e.segment_bases,
            fx.segments[..=s]
                .iter()
                .map(|g| g.base_offset)
                .collect::<Vec<_>>()
        );
        // The log ends at the damage: the end offset of the last whole batch before it.
        let kept = seg.batches.iter().rfind(|sp| sp.end as u64 <= pos);
        let end = kept.map_or(seg.base_offset, |sp| {
            sp.base_offset + i64::from(sp.last_offset_delta) + 1
        });
        assert_eq!(e.log_end, end, "{what}");
        assert_eq!(e.records[..], fx.records[..end as usize], "{what}");
        assert!(e.log_end < later[0], "{what}");
    }
}

#[test]
fn a_crc_valid_batch_whose_offsets_overflow_i64_is_cut_without_a_panic() {
    // baseOffset is outside the CRC, so a disk error there leaves a CRC-valid batch. Here
    // baseOffset + lastOffsetDelta does not fit an i64.
    let fx = fixture();
    let s = last(&fx);
    let seg = &fx.segments[s];
    let sp = seg
        .batches
        .iter()
        .max_by_key(|sp| sp.last_offset_delta)
        .unwrap();
    assert!(sp.last_offset_delta >= 1);
    let mut damaged = seg.bytes.clone();
    damaged[sp.start..sp.start + 8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
    let e = check(&fx, s, &damaged, "baseOffset = i64::MAX - 1", true);
    assert_eq!(
        e.truncation,
        Some((
            s,
            sp.start as u64,
            (seg.bytes.len() - sp.start) as u64,
            Why::Order
        ))
    );
}
