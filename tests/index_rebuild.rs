//! A damaged or missing `.index` / `.timeindex` never changes what the log answers.
//!
//! A log of many small batches (dense indexes: `index.interval.bytes` = 256) over three
//! segments is closed cleanly through `LogDir`, so that reopening trusts the indexes and
//! scans no batch. Each case then damages one index file of a sealed segment or of the
//! active one — deleted, truncated, scrambled, zero-extended as a crash would leave a
//! preallocated file — and reopens cleanly. Every `read(offset, 1)` and
//! `offset_for_timestamp(t)` must give the answer it gave before the damage; an index that
//! cannot be trusted must be rebuilt (named in `recovery_report().rebuilt_indexes`), and
//! the rebuilt files must be the ones the appends wrote.

use std::fs;
use std::path::{Path, PathBuf};

use partlog::{BatchBuilder, Codecs, Compression, Log, LogConfig, LogDir, Record, TimestampOffset};

const TOPIC: &str = "idx";
const T0: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 9000,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Timestamps of batch `i`: rising by 10 per batch, but every 5th batch repeats the
/// previous batch's time and every 7th lies 25 ms in the past; within a batch the
/// records are out of order.
fn batch_timestamps(i: i64) -> Vec<i64> {
    let mut base = T0 + 10 * i;
    if i % 5 == 4 {
        base -= 10;
    }
    if i % 7 == 6 {
        base -= 25;
    }
    let n = 1 + (i % 3) as usize;
    [0, -3, 4][..n].iter().map(|d| base + d).collect()
}

/// The answers the log gave before any damage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answers {
    /// For every offset: (base offset, last offset) of the first batch `read(offset, 1)` returns.
    reads: Vec<(i64, i64)>,
    /// `offset_for_timestamp(t)` for every `t` in `times`.
    times: Vec<Option<TimestampOffset>>,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    pristine: PathBuf,
    work: PathBuf,
    bases: Vec<i64>,
    times: Vec<i64>,
    answers: Answers,
}

fn partition(data: &Path) -> PathBuf {
    data.join(format!("{TOPIC}-0"))
}

fn file(data: &Path, base: i64, ext: &str) -> PathBuf {
    partition(data).join(format!("{base:020}.{ext}"))
}

fn answers(log: &Log, times: &[i64]) -> Answers {
    let reads = (0..log.log_end_offset())
        .map(|o| {
            let batches = log.read(o, 1).unwrap();
            assert_eq!(batches.len(), 1, "read({o}, 1) returns one batch");
            (batches[0].base_offset(), batches[0].last_offset())
        })
        .collect();
    let times = times
        .iter()
        .map(|&t| log.offset_for_timestamp(t).unwrap())
        .collect();
    Answers { reads, times }
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let dir = LogDir::open(&pristine).unwrap();
    let log = dir.open_log(TOPIC, 0, config()).unwrap();
    let codecs = Codecs::default();
    let mut written: Vec<Record> = Vec::new();
    for i in 0..180i64 {
        let compression = if i % 4 == 3 {
            Compression::Gzip
        } else {
            Compression::None
        };
        let mut b = BatchBuilder::new(compression);
        for (j, &ts) in batch_timestamps(i).iter().enumerate() {
            let key = format!("key-{i}-{j}");
            let value = format!("value-{i}-{j}-").repeat(1 + (i as usize + j) % 3);
            b.push(ts, Some(key.as_bytes()), Some(value.as_bytes()), &[]);
            written.push(Record {
                offset: log.log_end_offset() + j as i64,
                timestamp: ts,
                key: Some(key.into()),
                value: Some(value.into()),
                headers: vec![],
            });
        }
        log.append(b.build(&codecs).unwrap()).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3, "the fixture spans 3+ segments: {bases:?}");

    let max_ts = written.iter().map(|r| r.timestamp).max().unwrap();
    let times: Vec<i64> = (T0 - 5..=max_ts + 5).collect();
    let answers = answers(&log, &times);
    // The answers are right to begin with: a batch holding the offset, and the first
    // record (by offset) whose timestamp is at least t.
    for (o, &(base, last)) in answers.reads.iter().enumerate() {
        assert!(
            base <= o as i64 && o as i64 <= last,
            "read({o}) gave {base}..={last}"
        );
    }
    for (&t, got) in times.iter().zip(&answers.times) {
        let want = written
            .iter()
            .find(|r| r.timestamp >= t)
            .map(|r| TimestampOffset {
                offset: r.offset,
                timestamp: r.timestamp,
            });
        assert_eq!(*got, want, "offset_for_timestamp({t})");
    }
    dir.close().unwrap();
    drop((log, dir));
    for &base in &bases {
        let entries = fs::metadata(file(&pristine, base, "index")).unwrap().len() / 8;
        assert!(
            entries >= 10,
            "segment {base} has a dense offset index ({entries}) {bases:?}"
        );
    }
    Fixture {
        work: tmp.path().join("work"),
        _tmp: tmp,
        pristine,
        bases,
        times,
        answers,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A small deterministic generator for scrambled bytes.
fn scramble(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    DeleteIndex,
    DeleteTimeIndex,
    TruncateIndexToZero,
    TruncateIndexToTornEntry,
    TruncateIndexToHalf,
    ScrambleIndex,
    ScrambleTimeIndex,
    ZeroExtendIndex,
    ZeroExtendTimeIndex,
    TruncateTimeIndexToZero,
}

impl Damage {
    const ALL: [Damage; 10] = [
        Damage::DeleteIndex,
        Damage::DeleteTimeIndex,
        Damage::TruncateIndexToZero,
        Damage::TruncateIndexToTornEntry,
        Damage::TruncateIndexToHalf,
        Damage::ScrambleIndex,
        Damage::ScrambleTimeIndex,
        Damage::ZeroExtendIndex,
        Damage::ZeroExtendTimeIndex,
        Damage::TruncateTimeIndexToZero,
    ];

    /// Whether the damaged file can no longer be trusted, so it must be rebuilt. An
    /// offset index cut to whole entries is still correct, only sparser.
    fn unusable(self) -> bool {
        !matches!(
            self,
            Damage::TruncateIndexToZero | Damage::TruncateIndexToHalf
        )
    }

    fn apply(self, data: &Path, base: i64) {
        let index = file(data, base, "index");
        let time_index = file(data, base, "timeindex");
        let set_len = |p: &Path, len: u64| {
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len)
                .unwrap()
        };
        let len = |p: &Path| fs::metadata(p).unwrap().len();
        match self {
            Damage::DeleteIndex => fs::remove_file(index).unwrap(),
            Damage::DeleteTimeIndex => fs::remove_file(time_index).unwrap(),
            Damage::TruncateIndexToZero => set_len(&index, 0),
            Damage::TruncateIndexToTornEntry => set_len(&index, len(&index) - 3),
            Damage::TruncateIndexToHalf => set_len(&index, len(&index) / 16 * 8),
            Damage::ScrambleIndex => {
                fs::write(&index, scramble(len(&index) as usize, 7 + base as u64)).unwrap()
            }
            Damage::ScrambleTimeIndex => {
                let n = len(&time_index) as usize;
                fs::write(&time_index, scramble(n, 11 + base as u64)).unwrap()
            }
            // A crash leaves the preallocated file at its full size, zeros past the entries.
            Damage::ZeroExtendIndex => set_len(&index, 10 << 20),
            Damage::ZeroExtendTimeIndex => set_len(&time_index, 10 << 20),
            Damage::TruncateTimeIndexToZero => set_len(&time_index, 0),
        }
    }
}

/// Copies the pristine data directory, damages segment `base`, reopens it cleanly and
/// checks the report and every answer.
fn check(fx: &Fixture, base: i64, damage: Damage) {
    let what = format!("{damage:?} on segment {base}");
    if fx.work.exists() {
        fs::remove_dir_all(&fx.work).unwrap();
    }
    copy_dir(&fx.pristine, &fx.work);
    damage.apply(&fx.work, base);

    let dir = LogDir::open(&fx.work).unwrap();
    assert!(dir.had_clean_shutdown(), "{what}");
    let log = dir.open_log(TOPIC, 0, config()).unwrap();
    let report = log.recovery_report().clone();
    assert!(report.clean_shutdown, "{what}");
    assert_eq!(report.truncations, vec![], "{what}: nothing is cut");
    assert_eq!(report.deleted_segments, Vec::<PathBuf>::new(), "{what}");
    let rebuilt: Vec<&PathBuf> = report.rebuilt_indexes.iter().map(|(p, _)| p).collect();
    let log_path = file(&fx.work, base, "log");
    if damage.unusable() {
        assert_eq!(
            rebuilt,
            vec![&log_path],
            "{what}: {:?}",
            report.rebuilt_indexes
        );
        assert_eq!(
            report.segments_recovered, 1,
            "{what}: only that segment is scanned"
        );
    } else {
        assert!(
            rebuilt.iter().all(|p| **p == log_path),
            "{what}: no other segment is touched: {:?}",
            report.rebuilt_indexes
        );
    }
    assert_eq!(log.segment_base_offsets(), fx.bases, "{what}");

    let got = answers(&log, &fx.times);
    assert_eq!(got.reads, fx.answers.reads, "{what}: read(offset, 1)");
    for ((t, g), w) in fx.times.iter().zip(&got.times).zip(&fx.answers.times) {
        assert_eq!(g, w, "{what}: offset_for_timestamp({t})");
    }

    dir.close().unwrap();
    if damage.unusable() {
        // Rebuilt by recovery's per-batch rule, the files equal those the appends wrote.
        for ext in ["index", "timeindex"] {
            assert_eq!(
                fs::read(file(&fx.work, base, ext)).unwrap(),
                fs::read(file(&fx.pristine, base, ext)).unwrap(),
                "{what}: rebuilt .{ext}"
            );
        }
    }
}

#[test]
fn a_clean_reopen_with_intact_indexes_scans_nothing_and_answers_the_same() {
    let fx = fixture();
    copy_dir(&fx.pristine, &fx.work);
    let dir = LogDir::open(&fx.work).unwrap();
    let log = dir.open_log(TOPIC, 0, config()).unwrap();
    let report = log.recovery_report();
    assert!(report.clean_shutdown);
    assert_eq!(report.segments_recovered, 0);
    assert_eq!(report.bytes_recovered, 0);
    assert_eq!(report.rebuilt_indexes, vec![]);
    assert_eq!(report.truncations, vec![]);
    assert_eq!(log.segment_base_offsets(), fx.bases);
    assert_eq!(answers(&log, &fx.times), fx.answers);
}

#[test]
fn damaged_indexes_of_a_sealed_segment_are_rebuilt_or_harmless() {
    let fx = fixture();
    for damage in Damage::ALL {
        check(&fx, fx.bases[0], damage);
    }
}

#[test]
fn damaged_indexes_of_a_middle_segment_are_rebuilt_or_harmless() {
    let fx = fixture();
    for damage in Damage::ALL {
        check(&fx, fx.bases[1], damage);
    }
}

#[test]
fn damaged_indexes_of_the_active_segment_are_rebuilt_or_harmless() {
    let fx = fixture();
    for damage in Damage::ALL {
        check(&fx, *fx.bases.last().unwrap(), damage);
    }
}

#[test]
fn a_time_index_cut_to_whole_entries_still_answers_every_timestamp() {
    // A `.timeindex` cut short loses its final entry, the segment's max timestamp, which
    // the log uses to choose the segment to search.
    let fx = fixture();
    for &base in [fx.bases[0], *fx.bases.last().unwrap()].iter() {
        let what = format!(".timeindex of {base} cut to half its entries");
        if fx.work.exists() {
            fs::remove_dir_all(&fx.work).unwrap();
        }
        copy_dir(&fx.pristine, &fx.work);
        let p = file(&fx.work, base, "timeindex");
        let entries = fs::metadata(&p).unwrap().len() / 12;
        assert!(entries >= 4, "{what}");
        let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(entries / 2 * 12).unwrap();
        drop(f);
        let dir = LogDir::open(&fx.work).unwrap();
        let log = dir.open_log(TOPIC, 0, config()).unwrap();
        let got = answers(&log, &fx.times);
        for ((t, g), w) in fx.times.iter().zip(&got.times).zip(&fx.answers.times) {
            assert_eq!(g, w, "{what}: offset_for_timestamp({t})");
        }
    }
}

#[test]
fn batches_without_timestamps_leave_the_time_index_valid() {
    // Records with timestamp -1 (Kafka's NO_TIMESTAMP) followed by timestamped ones, with an
    // index entry after every batch. Kafka adds no time-index entry while the segment has
    // no timestamp (`TimeIndex.maybeAppend` needs timestamp > the last, starting from -1).
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let dir = LogDir::open(tmp.path()).unwrap();
    let log = dir.open_log(TOPIC, 0, cfg.clone()).unwrap();
    let codecs = Codecs::default();
    for i in 0..10i64 {
        let mut b = BatchBuilder::new(Compression::None);
        let ts = if i < 5 { -1 } else { T0 + i };
        b.push(ts, None, Some(b"v"), &[]);
        log.append(b.build(&codecs).unwrap()).unwrap();
    }
    let want = Some(TimestampOffset {
        offset: 7,
        timestamp: T0 + 7,
    });
    assert_eq!(log.offset_for_timestamp(T0 + 7).unwrap(), want);
    dir.close().unwrap();
    drop((log, dir)); // releases the data directory's lock

    // Every entry on disk points inside the segment (offsets 0..10).
    let ti = fs::read(file(tmp.path(), 0, "timeindex")).unwrap();
    assert_eq!(ti.len() % 12, 0);
    for e in ti.chunks(12) {
        let ts = i64::from_be_bytes(e[..8].try_into().unwrap());
        let rel = u32::from_be_bytes(e[8..].try_into().unwrap());
        assert!(ts >= T0 && rel < 10, "time index entry ({ts}, {rel})");
    }

    let dir = LogDir::open(tmp.path()).unwrap();
    let log = dir.open_log(TOPIC, 0, cfg).unwrap();
    assert_eq!(log.recovery_report().rebuilt_indexes, vec![]);
    assert_eq!(log.recovery_report().segments_recovered, 0);
    assert_eq!(log.offset_for_timestamp(T0 + 7).unwrap(), want);
}
