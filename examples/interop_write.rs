//! Writes a Kafka data directory through [`LogDir`] for checking by an independent reader,
//! then reopens it and reads every record back.
//!
//! ```text
//! cargo run --release --example interop_write -- DIR
//! python3 shared/tools/kafka_verify.py DIR --expect-records N
//! ```
//!
//! `DIR` must be missing or empty. The example writes one topic per codec
//! (`interop-none`, `interop-gzip`, `interop-snappy`, `interop-lz4`, `interop-zstd`) and
//! one LogAppendTime topic (`interop-logappend`, codecs mixed batch by batch), two
//! partitions each, a few thousand records per partition. The records cover what a
//! reader of Kafka's format must handle: batches of 1 record and of hundreds, null keys,
//! empty keys, null values (tombstones), empty values, headers with null and empty
//! values, timestamps that step back inside a batch (negative deltas). Segments of 64 KiB
//! make every partition roll several times and fill its offset index.
//!
//! It closes the directory cleanly, reopens it, and checks that every record reads back
//! as written, that the reopen needed no recovery, that lookups by timestamp agree with
//! a scan, and that each partition's indexes hold entries. Any mismatch exits with
//! status 1.
//! The last line printed is `records: N`, the number of data records written, for
//! `kafka_verify.py --expect-records N`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use partlog::{
    BatchBuilder, Codecs, Compression, Header, Log, LogConfig, LogDir, Record, TimestampType,
};

const PARTITIONS: i32 = 2;
const SEGMENT_BYTES: u32 = 64 << 10;
/// A batch is cut before its uncompressed size passes this, so that even an
/// incompressible one fits in a 64 KiB segment.
const MAX_BATCH_BYTES: usize = 48 << 10;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
const LOG_APPEND_TOPIC: &str = "interop-logappend";

type Failure = Box<dyn std::error::Error>;

/// SplitMix64: a small deterministic generator, so every run writes the same records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// Half pseudo-random bytes, half text: compressible, but not to nothing.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            let word = self.next();
            if word & 1 == 0 {
                v.extend_from_slice(&word.to_le_bytes());
            } else {
                v.extend_from_slice(b"partlog!");
            }
        }
        v.truncate(len);
        v
    }
}

/// One partition to write: where, how, and what was appended.
struct Partition {
    topic: String,
    partition: i32,
    config: LogConfig,
    /// Codec of each batch, picked from the batch's index.
    codecs: Vec<Compression>,
    /// How many records to write.
    target: usize,
    /// Every record as it must read back, by offset.
    records: Vec<Record>,
    /// `(base_offset, last_offset)` of each batch, as the appends reported them.
    batches: Vec<(i64, i64)>,
    /// The log's segments at close.
    segment_bases: Vec<i64>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = &args[..] else {
        eprintln!("usage: interop_write DIR   (DIR must be missing or empty)");
        return ExitCode::from(2);
    };
    match run(Path::new(dir)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(mismatches) => {
            eprintln!("interop_write: {mismatches} mismatches on read-back");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("interop_write: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes, closes, reopens and verifies; returns the number of mismatches found.
fn run(dir: &Path) -> Result<usize, Failure> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        return Err(format!("{} is not empty", dir.display()).into());
    }
    let codecs = Codecs::default();
    let mut partitions = plan(&codecs);
    write_all(dir, &codecs, &mut partitions)?;
    let mut mismatches = Vec::new();
    verify_all(dir, &codecs, &partitions, &mut mismatches)?;
    check_index_files(dir, &partitions, &mut mismatches)?;
    for m in mismatches.iter().take(50) {
        eprintln!("MISMATCH {m}");
    }
    let total: usize = partitions.iter().map(|p| p.records.len()).sum();
    if mismatches.is_empty() {
        println!("verified: every record read back as written after a clean reopen");
    } else {
        println!("read-back: {} mismatches", mismatches.len());
    }
    println!("records: {total}");
    Ok(mismatches.len())
}

/// The topics and partitions to write, each with its config and codec rotation.
fn plan(codecs: &Codecs) -> Vec<Partition> {
    let mut out = Vec::new();
    for (t, codec) in Compression::ALL.into_iter().enumerate() {
        if codec != Compression::None && codecs.get(codec).is_none() {
            println!("skipping interop-{codec}: this build has no {codec} codec");
            continue;
        }
        for p in 0..PARTITIONS {
            out.push(partition(format!("interop-{codec}"), p, t, vec![codec]));
        }
    }
    let mixed: Vec<Compression> = Compression::ALL
        .into_iter()
        .filter(|&c| c == Compression::None || codecs.get(c).is_some())
        .collect();
    for p in 0..PARTITIONS {
        let mut part = partition(LOG_APPEND_TOPIC.to_string(), p, 5, mixed.clone());
        part.config.timestamp_type = TimestampType::LogAppendTime;
        out.push(part);
    }
    out
}

fn partition(topic: String, partition: i32, t: usize, codecs: Vec<Compression>) -> Partition {
    Partition {
        topic,
        partition,
        config: LogConfig {
            segment_bytes: SEGMENT_BYTES,
            ..LogConfig::default()
        },
        codecs,
        // Distinct counts per partition, so a record landing in the wrong one shows.
        target: 3000 + 517 * partition as usize + 37 * t,
        records: Vec::new(),
        batches: Vec::new(),
        segment_bases: Vec::new(),
    }
}

fn write_all(dir: &Path, codecs: &Codecs, partitions: &mut [Partition]) -> Result<(), Failure> {
    let log_dir = LogDir::open_with(
        dir,
        codecs.clone(),
        std::sync::Arc::new(partlog::SystemClock),
    )?;
    println!("writing {}", dir.display());
    for (i, part) in partitions.iter_mut().enumerate() {
        let log = log_dir.open_log(&part.topic, part.partition, part.config.clone())?;
        write_partition(&log, codecs, part, 0x5eed + i as u64)?;
        part.segment_bases = log.segment_base_offsets();
        println!(
            "  {}-{}: {} records in {} batches, {} segments, log end offset {}",
            part.topic,
            part.partition,
            part.records.len(),
            part.batches.len(),
            part.segment_bases.len(),
            log.log_end_offset()
        );
    }
    log_dir.close()?;
    let total: usize = partitions.iter().map(|p| p.records.len()).sum();
    println!(
        "wrote {total} records in {} partitions, closed cleanly",
        partitions.len()
    );
    Ok(())
}

/// Appends `part.target` records to `log` in batches of varying size and codec.
fn write_partition(
    log: &Log,
    codecs: &Codecs,
    part: &mut Partition,
    seed: u64,
) -> Result<(), Failure> {
    let target = part.target;
    let mut rng = Rng(seed);
    let mut clock = BASE_TIMESTAMP;
    while part.records.len() < target {
        let want = match rng.range(0, 9) {
            0..=2 => 1,
            3..=6 => rng.range(2, 30),
            _ => rng.range(100, 400),
        } as usize;
        let want = want.min(target - part.records.len());
        let codec = part.codecs[part.batches.len() % part.codecs.len()];
        let mut builder = BatchBuilder::new(codec);
        let mut batch = Vec::with_capacity(want);
        while batch.len() < want {
            let r = random_record(&mut rng, &mut clock, part.records.len() + batch.len(), want);
            let size = builder.record_size(
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
            if !batch.is_empty() && builder.estimated_size() + size > MAX_BATCH_BYTES {
                break;
            }
            builder.push(
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
            batch.push(r);
        }
        let info = log.append(builder.build(codecs)?)?;
        let base = part.records.len() as i64;
        if (info.base_offset, info.last_offset) != (base, base + batch.len() as i64 - 1) {
            return Err(format!(
                "{}: append of {} records at {base} reported offsets {}..={}",
                log.name(),
                batch.len(),
                info.base_offset,
                info.last_offset
            )
            .into());
        }
        for (i, mut r) in batch.into_iter().enumerate() {
            r.offset = base + i as i64;
            if let Some(t) = info.log_append_time {
                r.timestamp = t;
            }
            part.records.push(r);
        }
        part.batches.push((info.base_offset, info.last_offset));
    }
    Ok(())
}

/// Record number `n` of a partition, in a batch of `batch_len` records.
fn random_record(rng: &mut Rng, clock: &mut i64, n: usize, batch_len: usize) -> Record {
    *clock += rng.range(0, 9) as i64;
    // One record in eight steps back in time (a negative delta when not first in batch).
    let timestamp = if rng.one_in(8) {
        *clock - rng.range(1, 500) as i64
    } else {
        *clock
    };
    let key = match rng.range(0, 9) {
        0 | 1 => None,
        2 => Some(Bytes::new()),
        _ => Some(Bytes::from(format!("key-{n}"))),
    };
    // Large values in small batches, small ones in large batches.
    let max_len = if batch_len > 50 { 120 } else { 1500 };
    let value_len = match rng.range(0, 19) {
        0 | 1 => None,
        2 => Some(0),
        3 if batch_len <= 50 => Some(rng.range(2000, 8000)),
        _ => Some(rng.range(1, max_len)),
    };
    let value = value_len.map(|len| Bytes::from(rng.bytes(len as usize)));
    let headers = match rng.range(0, 5) {
        0 | 1 => vec![],
        2 => vec![Header::new("trace", rng.bytes(16))],
        3 => vec![Header {
            key: "gone".into(),
            value: None,
        }],
        4 => vec![
            Header::new("a", Bytes::from_static(b"1")),
            Header {
                key: "b".into(),
                value: None,
            },
            Header::new("empty", Bytes::new()),
        ],
        _ => vec![
            Header::new("dup", Bytes::from_static(b"x")),
            Header::new("dup", Bytes::from_static(b"y")),
        ],
    };
    Record {
        offset: -1,
        timestamp,
        key,
        value,
        headers,
    }
}

/// Reopens the directory and checks every partition against what was written.
fn verify_all(
    dir: &Path,
    codecs: &Codecs,
    partitions: &[Partition],
    mismatches: &mut Vec<String>,
) -> Result<(), Failure> {
    let log_dir = LogDir::open(dir)?;
    if !log_dir.had_clean_shutdown() {
        mismatches.push(format!(
            "{}: reopened without the clean-shutdown marker",
            dir.display()
        ));
    }
    for part in partitions {
        let log = log_dir.open_log(&part.topic, part.partition, part.config.clone())?;
        let before = mismatches.len();
        verify_partition(&log, codecs, part, mismatches)?;
        if part.config.timestamp_type == TimestampType::CreateTime {
            verify_time_lookups(&log, part, mismatches)?;
        }
        println!(
            "  {}: {}",
            log.name(),
            if mismatches.len() == before {
                "ok"
            } else {
                "MISMATCH"
            }
        );
    }
    // Close again so the directory is left trimmed and marked clean for kafka_verify.
    log_dir.close()?;
    Ok(())
}

fn verify_partition(
    log: &Log,
    codecs: &Codecs,
    part: &Partition,
    out: &mut Vec<String>,
) -> Result<(), Failure> {
    let name = log.name().to_string();
    let report = log.recovery_report();
    if !report.clean_shutdown || report.segments_recovered != 0 || !report.truncations.is_empty() {
        out.push(format!(
            "{name}: a clean reopen recovered something: {report:?}"
        ));
    }
    if log.segment_base_offsets() != part.segment_bases {
        out.push(format!(
            "{name}: segments {:?} after reopen, {:?} at close",
            log.segment_base_offsets(),
            part.segment_bases
        ));
    }
    if part.segment_bases.len() < 3 {
        out.push(format!(
            "{name}: only {} segments; the example should roll more",
            part.segment_bases.len()
        ));
    }
    let end = part.records.len() as i64;
    if (log.log_start_offset(), log.log_end_offset()) != (0, end) {
        out.push(format!(
            "{name}: offsets {}..{} after reopen, expected 0..{end}",
            log.log_start_offset(),
            log.log_end_offset()
        ));
        return Ok(());
    }
    let mut next = 0i64;
    let mut batch_no = 0usize;
    while next < end {
        let batches = log.read(next, 256 << 10)?;
        if batches.is_empty() {
            out.push(format!(
                "{name}: read at {next} returned nothing, log end is {end}"
            ));
            return Ok(());
        }
        for batch in batches {
            let expected_bounds = part.batches.get(batch_no).copied();
            let expected_codec = part.codecs[batch_no % part.codecs.len()];
            let at = format!("{name} batch {batch_no} at offset {}", batch.base_offset());
            if Some((batch.base_offset(), batch.last_offset())) != expected_bounds {
                out.push(format!(
                    "{at}: offsets {}..={}, expected {expected_bounds:?}",
                    batch.base_offset(),
                    batch.last_offset()
                ));
                return Ok(());
            }
            if batch.compression()? != expected_codec
                || batch.timestamp_type() != part.config.timestamp_type
            {
                out.push(format!(
                    "{at}: {:?}/{:?}, expected {expected_codec:?}/{:?}",
                    batch.compression(),
                    batch.timestamp_type(),
                    part.config.timestamp_type
                ));
            }
            for record in batch.records(codecs)? {
                let record = record?;
                let expected = &part.records[record.offset as usize];
                if &record != expected {
                    out.push(format!("{at}: read {record:?}, wrote {expected:?}"));
                }
            }
            next = batch.next_offset();
            batch_no += 1;
        }
    }
    if batch_no != part.batches.len() {
        out.push(format!(
            "{name}: read {batch_no} batches, wrote {}",
            part.batches.len()
        ));
    }
    Ok(())
}

/// `offset_for_timestamp(t)` must be the first offset whose record timestamp is ≥ t.
fn verify_time_lookups(log: &Log, part: &Partition, out: &mut Vec<String>) -> Result<(), Failure> {
    let mut rng = Rng(log.log_end_offset() as u64);
    let last = part
        .records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(BASE_TIMESTAMP);
    for _ in 0..64 {
        let t = rng.range((BASE_TIMESTAMP - 1000) as u64, (last + 10) as u64) as i64;
        let expected = part
            .records
            .iter()
            .find(|r| r.timestamp >= t)
            .map(|r| (r.offset, r.timestamp));
        let found = log
            .offset_for_timestamp(t)?
            .map(|f| (f.offset, f.timestamp));
        if found != expected {
            out.push(format!(
                "{}: offset_for_timestamp({t}) = {found:?}, expected {expected:?}",
                log.name()
            ));
        }
    }
    Ok(())
}

/// After the final clean close, every sealed index is trimmed to its entries; each
/// partition's offset indexes together hold entries.
fn check_index_files(
    dir: &Path,
    partitions: &[Partition],
    out: &mut Vec<String>,
) -> Result<(), Failure> {
    let mut summary: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for part in partitions {
        let folder: PathBuf = dir.join(partlog::partition_dir_name(&part.topic, part.partition));
        let (mut index, mut time_index) = (0u64, 0u64);
        for base in &part.segment_bases {
            for (ext, size, count) in [("index", 8, &mut index), ("timeindex", 12, &mut time_index)]
            {
                let path = folder.join(format!("{base:020}.{ext}"));
                let len = fs::metadata(&path)?.len();
                if !len.is_multiple_of(size) {
                    out.push(format!(
                        "{}: {len} bytes, not whole {size}-byte entries",
                        path.display()
                    ));
                }
                *count += len / size;
            }
        }
        if index == 0 || time_index == 0 {
            out.push(format!(
                "{}: {index} index / {time_index} time-index entries",
                folder.display()
            ));
        }
        summary.insert(folder.display().to_string(), (index, time_index));
    }
    for (folder, (index, time_index)) in summary {
        println!("  {folder}: {index} index / {time_index} time-index entries");
    }
    Ok(())
}
