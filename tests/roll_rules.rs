//! Each of Kafka's segment roll rules (reference §3.5), one at a time.
//!
//! - size: the append that would take the segment past `segment.bytes` rolls; landing on
//!   it exactly does not;
//! - time: an incoming batch whose max timestamp is more than `segment.ms` after the
//!   segment's first batch's max timestamp rolls (equal does not), judged by record
//!   timestamps, not the clock; without timestamps the clock decides; an empty segment
//!   never rolls;
//! - a full offset index, and a full time index (one slot kept for the final entry);
//! - a relative offset that would not fit 31 bits;
//! - `roll_now`.
//!
//! Every case checks `segment_base_offsets()`, the `%020d.log` files in the directory,
//! and that sealed segments' indexes are trimmed with the segment's max timestamp as the
//! last time-index entry.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use partlog::{
    BatchBuilder, Codecs, Compression, EncodedBatch, Error, Log, LogConfig, LogOptions, ManualClock,
};

const T0: i64 = 1_700_000_000_000;

/// A batch of records with these timestamps, each with a value of `value_len` bytes.
fn batch(timestamps: &[i64], value_len: usize) -> EncodedBatch {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; value_len];
    for &ts in timestamps {
        b.push(ts, Some(b"key"), Some(&value), &[]);
    }
    b.build(&Codecs::default()).unwrap()
}

fn open(dir: &Path, config: LogConfig, clock: &Arc<ManualClock>) -> Log {
    let options = LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    };
    Log::open_with(dir, config, options).unwrap()
}

/// The `.log` files in `dir`, sorted.
fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// Checks the segments both through the log and on disk.
fn assert_segments(log: &Log, bases: &[i64]) {
    assert_eq!(log.segment_base_offsets(), bases);
    let names: Vec<String> = bases.iter().map(|b| format!("{b:020}.log")).collect();
    assert_eq!(log_files(log.dir()), names);
}

/// What a sealed segment's index files must hold.
struct Sealed {
    base: i64,
    /// Entries in `.index` and `.timeindex`: the files are trimmed to exactly these.
    entries: (usize, usize),
    /// The last time-index entry: the segment's max timestamp and the last offset of the
    /// batch that holds it.
    last_time_entry: (i64, i64),
}

fn assert_sealed(dir: &Path, s: Sealed) {
    let base = s.base;
    let index = fs::metadata(dir.join(format!("{base:020}.index")))
        .unwrap()
        .len();
    assert_eq!(
        index,
        8 * s.entries.0 as u64,
        "segment {base}: .index trimmed"
    );
    let ti = fs::read(dir.join(format!("{base:020}.timeindex"))).unwrap();
    assert_eq!(
        ti.len(),
        12 * s.entries.1,
        "segment {base}: .timeindex trimmed"
    );
    let last = &ti[ti.len() - 12..];
    let ts = i64::from_be_bytes(last[..8].try_into().unwrap());
    let rel = i32::from_be_bytes(last[8..].try_into().unwrap());
    assert_eq!(
        (ts, base + i64::from(rel)),
        s.last_time_entry,
        "segment {base}: last time-index entry"
    );
}

fn index_entries(dir: &Path, base: i64, ext: &str, size: usize) -> usize {
    fs::metadata(dir.join(format!("{base:020}.{ext}")))
        .unwrap()
        .len() as usize
        / size
}

#[test]
fn landing_exactly_on_segment_bytes_does_not_roll_and_one_byte_over_does() {
    let clock = Arc::new(ManualClock::new(T0));
    let a = batch(&[T0, T0, T0], 100);
    let b = batch(&[T0], 37);
    let (sa, sb) = (a.size() as u32, b.size() as u32);

    // segment.bytes = a + b: both fit, exactly.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("exact-0");
    let cfg = LogConfig {
        segment_bytes: sa + sb,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    log.append(a.clone()).unwrap();
    log.append(b.clone()).unwrap();
    assert_segments(&log, &[0]);
    assert_eq!(log.size_bytes(), u64::from(sa + sb));
    // Any further byte rolls.
    log.append(batch(&[T0], 0)).unwrap();
    assert_segments(&log, &[0, 4]);
    assert_eq!(
        fs::metadata(dir.join(format!("{:020}.log", 0)))
            .unwrap()
            .len(),
        u64::from(sa + sb)
    );
    assert_sealed(
        &dir,
        Sealed {
            base: 0,
            entries: (0, 1),
            last_time_entry: (T0, 2),
        },
    );

    // segment.bytes = a + b - 1: b is one byte too many.
    let dir = tmp.path().join("over-0");
    let cfg = LogConfig {
        segment_bytes: sa + sb - 1,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    log.append(a).unwrap();
    log.append(b).unwrap();
    assert_segments(&log, &[0, 3]);
    assert_sealed(
        &dir,
        Sealed {
            base: 0,
            entries: (0, 1),
            last_time_entry: (T0, 2),
        },
    );
}

#[test]
fn a_batch_of_exactly_segment_bytes_fills_a_segment_and_one_larger_is_refused() {
    let clock = Arc::new(ManualClock::new(T0));
    let big = batch(&[T0], 500);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("big-0");
    let cfg = LogConfig {
        segment_bytes: big.size() as u32,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    log.append(big.clone()).unwrap();
    assert_segments(&log, &[0]);
    log.append(big.clone()).unwrap();
    assert_segments(&log, &[0, 1]);
    let too_big = batch(&[T0], 501);
    assert_eq!(too_big.size(), big.size() + 1);
    match log.append(too_big) {
        Err(Error::BatchTooLarge {
            size, limit_name, ..
        }) => assert_eq!((size, limit_name), (big.size() + 1, "segment.bytes")),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    assert_segments(&log, &[0, 1]);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn time_roll_compares_record_timestamps_with_the_first_batch_max_not_the_clock() {
    let clock = Arc::new(ManualClock::new(T0));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("time-0");
    let cfg = LogConfig {
        segment_ms: 1000,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    // First batch: base timestamp T0, max T0 + 10.
    log.append(batch(&[T0, T0 + 10], 1)).unwrap();
    // max − first max = 1000 = segment.ms: no roll (measured from the base timestamp it
    // would be 1010 and roll).
    log.append(batch(&[T0 + 1010], 1)).unwrap();
    assert_segments(&log, &[0]);
    // The clock moving on does not matter while records carry timestamps.
    clock.advance(1_000_000);
    log.append(batch(&[T0 + 500], 1)).unwrap();
    assert_segments(&log, &[0]);
    // Base timestamp T0 (990 after the first max) but max T0 + 1011: rolls.
    log.append(batch(&[T0, T0 + 1011], 1)).unwrap();
    assert_segments(&log, &[0, 4]);
    assert_sealed(
        &dir,
        Sealed {
            base: 0,
            entries: (0, 1),
            last_time_entry: (T0 + 1010, 2),
        },
    );

    // The new segment measures from its own first batch (max T0 + 1011).
    log.append(batch(&[T0 + 2011], 1)).unwrap();
    assert_segments(&log, &[0, 4]);
    log.append(batch(&[T0 + 2012, T0 + 1500], 1)).unwrap();
    assert_segments(&log, &[0, 4, 7]);
    assert_sealed(
        &dir,
        Sealed {
            base: 4,
            entries: (0, 1),
            last_time_entry: (T0 + 2011, 6),
        },
    );
    assert_eq!(log.log_end_offset(), 9);
}

#[test]
fn an_empty_segment_never_rolls() {
    let clock = Arc::new(ManualClock::new(T0));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("empty-0");
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    // roll_now on an empty segment does nothing.
    log.roll_now().unwrap();
    assert_segments(&log, &[0]);
    // Far beyond segment.ms of the clock and of any timestamp: still the first segment.
    clock.advance(10_000_000);
    log.append(batch(&[T0 + 10_000_000], 1)).unwrap();
    assert_segments(&log, &[0]);
    log.roll_now().unwrap();
    assert_segments(&log, &[0, 1]);
    log.roll_now().unwrap();
    assert_segments(&log, &[0, 1]);
    // A segment created by a roll is empty too: the next batch lands in it, whatever its
    // timestamp.
    clock.advance(10_000_000);
    log.append(batch(&[T0 + 99_000_000], 1)).unwrap();
    assert_segments(&log, &[0, 1]);
    assert_eq!(log.read(1, 1).unwrap()[0].base_offset(), 1);
}

#[test]
fn without_timestamps_the_time_roll_uses_the_clock_since_the_segment_was_created() {
    let clock = Arc::new(ManualClock::new(T0));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clock-0");
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock); // the active segment is created at T0
    log.append(batch(&[-1], 1)).unwrap();
    clock.advance(1000);
    log.append(batch(&[-1], 1)).unwrap();
    // A timestamped batch does not help when the first batch has none: the clock decides.
    log.append(batch(&[T0 + 50_000], 1)).unwrap();
    assert_segments(&log, &[0]);
    clock.advance(1); // 1001 ms after the segment was created
    log.append(batch(&[-1], 1)).unwrap();
    assert_segments(&log, &[0, 3]);

    // The new segment was created at T0 + 1001.
    clock.advance(1000);
    log.append(batch(&[-1, -1], 1)).unwrap();
    assert_segments(&log, &[0, 3]);
    clock.advance(1);
    log.append(batch(&[-1], 1)).unwrap();
    assert_segments(&log, &[0, 3, 6]);
}

#[test]
fn a_full_offset_index_rolls_the_segment() {
    // 48 bytes: 6 offset-index entries, 4 time-index entries. Every batch but a segment's
    // first adds an offset-index entry; with one timestamp throughout, the time index only
    // ever gets one entry, so the offset index is the one that fills.
    let clock = Arc::new(ManualClock::new(T0));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fullidx-0");
    let cfg = LogConfig {
        segment_index_bytes: 48,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    for _ in 0..7 {
        log.append(batch(&[T0], 1)).unwrap();
    }
    assert_segments(&log, &[0]);
    log.append(batch(&[T0], 1)).unwrap(); // the index holds 6 entries: roll
    assert_segments(&log, &[0, 7]);
    for _ in 0..7 {
        log.append(batch(&[T0], 1)).unwrap();
    }
    assert_segments(&log, &[0, 7, 14]);
    for base in [0, 7] {
        assert_sealed(
            &dir,
            Sealed {
                base,
                entries: (6, 1),
                last_time_entry: (T0, base),
            },
        );
    }
}

#[test]
fn a_full_time_index_rolls_the_segment_keeping_a_slot_for_the_final_entry() {
    // 48 bytes: 4 time-index slots, full at 3 entries (one is kept for the final entry);
    // the offset index (6 slots) has room left when the time index fills.
    let clock = Arc::new(ManualClock::new(T0));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fullti-0");
    let cfg = LogConfig {
        segment_index_bytes: 48,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    for i in 0..4 {
        log.append(batch(&[T0 + i], 1)).unwrap();
    }
    assert_segments(&log, &[0]);
    log.append(batch(&[T0 + 4], 1)).unwrap();
    assert_segments(&log, &[0, 4]);
    for i in 5..9 {
        log.append(batch(&[T0 + i], 1)).unwrap();
    }
    assert_segments(&log, &[0, 4, 8]);
    for base in [0, 4] {
        let max = (T0 + base + 3, base + 3);
        assert_sealed(
            &dir,
            Sealed {
                base,
                entries: (3, 3),
                last_time_entry: max,
            },
        );
    }
}

/// A segment `00000000000000000000.log` holding one batch at offset `i32::MAX - 1` (an
/// offset gap, as compaction leaves), so the next offsets approach the 31-bit limit of
/// relative offsets without writing two billion records.
fn log_near_the_relative_offset_limit(tmp: &Path, name: &str) -> Log {
    let dir = tmp.join(name);
    fs::create_dir(&dir).unwrap();
    let mut bytes = batch(&[T0], 1).as_bytes().to_vec();
    // baseOffset is not covered by the CRC; the log stamps it the same way.
    bytes[..8].copy_from_slice(&(i64::from(i32::MAX) - 1).to_be_bytes());
    fs::write(dir.join(format!("{:020}.log", 0)), bytes).unwrap();
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.recovery_report().truncations, vec![]);
    assert_eq!(log.log_end_offset(), i64::from(i32::MAX));
    log
}

#[test]
fn an_offset_too_far_from_the_segment_base_for_31_bits_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let max = i64::from(i32::MAX);

    // Relative offset i32::MAX still fits; i32::MAX + 1 does not.
    let log = log_near_the_relative_offset_limit(tmp.path(), "one-0");
    assert_eq!(log.append(batch(&[T0], 1)).unwrap().base_offset, max);
    assert_segments(&log, &[0]);
    assert_eq!(log.append(batch(&[T0], 1)).unwrap().base_offset, max + 1);
    assert_segments(&log, &[0, max + 1]);

    // The incoming batch's last offset counts: two records at i32::MAX, i32::MAX + 1.
    let log = log_near_the_relative_offset_limit(tmp.path(), "two-0");
    assert_eq!(log.append(batch(&[T0, T0], 1)).unwrap().base_offset, max);
    assert_segments(&log, &[0, max]);
    assert_sealed(
        log.dir(),
        Sealed {
            base: 0,
            entries: (0, 1),
            last_time_entry: (T0, max - 1),
        },
    );
    let back = log.read(max, 1).unwrap();
    assert_eq!(
        (back[0].base_offset(), back[0].last_offset()),
        (max, max + 1)
    );
}

#[test]
fn roll_now_seals_the_active_segment_and_starts_one_at_the_log_end() {
    let clock = Arc::new(ManualClock::new(T0));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("now-0");
    let cfg = LogConfig {
        segment_index_bytes: 4096,
        ..LogConfig::default()
    };
    let log = open(&dir, cfg, &clock);
    log.append(batch(&[T0, T0 + 5], 1)).unwrap(); // offsets 0, 1
    log.append(batch(&[T0 + 30, T0 + 2], 1)).unwrap(); // 2, 3: the max, T0 + 30
    log.append(batch(&[T0 + 20], 1)).unwrap(); // 4
    // The active segment's indexes are preallocated to segment.index.bytes.
    assert_eq!(index_entries(&dir, 0, "index", 1), 4096);
    assert_eq!(index_entries(&dir, 0, "timeindex", 1), 4092);
    log.roll_now().unwrap();
    assert_segments(&log, &[0, 5]);
    // No index entry was due (4096-byte interval), so the sealed time index holds just the
    // final entry: the max timestamp and the last offset of its batch.
    assert_sealed(
        &dir,
        Sealed {
            base: 0,
            entries: (0, 1),
            last_time_entry: (T0 + 30, 3),
        },
    );
    assert_eq!(index_entries(&dir, 5, "index", 1), 4096);

    let info = log.append(batch(&[T0 + 1], 1)).unwrap();
    assert_eq!(info.base_offset, 5);
    assert_segments(&log, &[0, 5]);
    assert_eq!(log.read(5, 1).unwrap()[0].base_offset(), 5);
    log.close().unwrap();
    assert_sealed(
        &dir,
        Sealed {
            base: 5,
            entries: (0, 1),
            last_time_entry: (T0 + 1, 5),
        },
    );
}

#[test]
fn a_timestamp_far_before_the_first_batch_is_handled_without_a_panic() {
    // incoming max − first max does not fit an i64 when the incoming batch's timestamp is
    // near i64::MIN. Kafka's broker refuses such a timestamp; either answer is fine here,
    // as long as the append returns one and the log stays consistent.
    let clock = Arc::new(ManualClock::new(T0));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("past-0");
    let log = open(&dir, LogConfig::default(), &clock);
    log.append(batch(&[T0], 1)).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        log.append(batch(&[i64::MIN + 1], 1))
    }))
    .expect("append panicked");
    match result {
        Ok(info) => {
            assert_eq!(info.base_offset, 1);
            let back = log.read(1, 1).unwrap();
            let r = back[0]
                .records(log.codecs())
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!((r.offset, r.timestamp), (1, i64::MIN + 1));
        }
        Err(_) => assert_eq!(log.log_end_offset(), 1),
    }
    assert_eq!(
        log.append(batch(&[T0 + 1], 1)).unwrap().base_offset,
        log.log_end_offset() - 1
    );
}
