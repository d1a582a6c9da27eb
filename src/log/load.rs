//! Opening a partition log: cleaning up leftover files, checking indexes, and recovery
//! after an unclean shutdown (reference §4).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use super::checkpoint::sync_dir;
use super::sync::SyncState;
use super::{Log, LogConfig, LogOptions, Writer};
use crate::error::{Error, IoContext, Result};
use crate::padded::Padded;
use crate::segment::{self, Scanned, Segment, TruncationReason};

/// What [`Log::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether the log was opened as after a clean shutdown (no batch validated).
    pub clean_shutdown: bool,
    /// Segments whose batches were validated one by one.
    pub segments_recovered: usize,
    /// Bytes of batches validated.
    pub bytes_recovered: u64,
    /// Tails cut from segments.
    pub truncations: Vec<Truncation>,
    /// Segments deleted because an earlier segment lost bytes.
    pub deleted_segments: Vec<PathBuf>,
    /// Indexes rebuilt because they were missing or did not match their log, and why.
    pub rebuilt_indexes: Vec<(PathBuf, String)>,
    /// Leftover files removed (`.deleted`, `.cleaned`, `.swap` of an unfinished rename,
    /// segments replaced by a finished swap, indexes without a log).
    pub removed_files: Vec<PathBuf>,
    /// Cleaner output (`.log.swap`) whose interrupted swap the open completed.
    pub completed_swaps: Vec<PathBuf>,
    /// Zeros cut from the end of the last segment: the space an active segment's file
    /// reserves ahead of its data, which a crash or a drop without close leaves behind.
    /// No readable batch was in them, so they are not among `truncations`. After a power
    /// loss, batches that were appended but not yet fsynced can come back as zeros too
    /// (the file system kept the reserved blocks but not the data), and are counted here.
    pub zero_tail_bytes: u64,
}

/// A tail cut from a segment during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The `.log` file.
    pub path: PathBuf,
    /// Byte position of the first byte removed: the end of the last valid batch.
    pub position: u64,
    /// Number of bytes removed.
    pub bytes: u64,
    /// Why.
    pub reason: TruncationReason,
}

pub(super) fn load(dir: &Path, config: LogConfig, options: LogOptions) -> Result<Log> {
    config.validate()?;
    if !dir.exists() {
        fs::create_dir_all(dir).at(dir)?;
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        sync_dir(parent.unwrap_or(Path::new(".")))?;
    }
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::BadName {
            path: dir.to_path_buf(),
            what: "partition directory",
        })?
        .to_string();
    let mut report = RecoveryReport {
        clean_shutdown: options.clean_shutdown,
        ..RecoveryReport::default()
    };
    super::swap::finish_interrupted(dir, &mut report)?;
    let bases = scan_dir(dir, &mut report)?;
    let index_bytes = config.segment_index_bytes as usize;
    let mut segments = Vec::with_capacity(bases.len());
    let mut suspect = Vec::with_capacity(bases.len());
    for &base in &bases {
        let missing = ["index", "timeindex"]
            .into_iter()
            .find(|ext| !dir.join(segment::file_name(base, ext)).exists());
        segments.push(Arc::new(Segment::open(dir, base)?));
        suspect.push(missing.map(|ext| format!("{ext} file is missing")));
    }

    let next_offset = recover_segments(&config, &options, &mut segments, suspect, &mut report)?;

    let start = options.log_start_offset.max(0);
    let end = next_offset.max(segments.last().map_or(0, |s| s.base_offset()));
    if start > end {
        truncate_fully(dir, &mut segments, &mut report)?;
    }
    let map_bytes = config.segment_bytes as usize;
    if segments.is_empty() {
        segments.push(Arc::new(Segment::create(
            dir,
            start.max(next_offset),
            index_bytes,
            map_bytes,
        )?));
    }
    let first_base = segments[0].base_offset();
    let log_end = next_offset.max(segments.last().map_or(0, |s| s.base_offset()));
    let log_start = start.max(first_base).min(log_end);
    let active = segments.last().cloned().expect("at least one segment");
    active.make_active(index_bytes, map_bytes)?;
    let first_batch_timestamp = first_batch_max_timestamp(&active)?;
    let recovery_point = if options.clean_shutdown {
        log_end
    } else {
        options.recovery_point.min(log_end)
    };
    let now = options.clock.now_ms();
    let producers = super::producer_state::rebuild(dir, &segments, log_end)?;
    let first_unstable = producers.first_unstable_offset().unwrap_or(i64::MAX);
    Ok(Log {
        name,
        dir: dir.to_path_buf(),
        codecs: options.codecs,
        clock: options.clock,
        segments: Padded::new(RwLock::new(segments)),
        writer: Padded::new(Mutex::new(Writer {
            active,
            bytes_since_index: 0,
            first_batch_timestamp,
            created_ms: now,
            unflushed_records: 0,
            producers,
            staged_room: Vec::new(),
            run_room: Vec::new(),
        })),
        log_end_offset: Padded::new(AtomicI64::new(log_end)),
        first_unstable: AtomicI64::new(first_unstable),
        log_start_offset: AtomicI64::new(log_start),
        recovery_point: AtomicI64::new(recovery_point),
        last_flush_ms: AtomicI64::new(now),
        dir_dirty: AtomicBool::new(true),
        poisoned: OnceLock::new(),
        closed: AtomicBool::new(false),
        sync: Padded::new(SyncState::new(recovery_point)),
        recovery: report,
        cleanup: super::compact::CleanupState::new(log_start),
        config,
    })
}

/// Deletes every segment and producer snapshot, as Kafka's loader does when the log start
/// offset checkpoint lies above the log end offset (records deleted by `delete_records`,
/// then the unflushed tail below that point lost in a crash): every record is below the
/// log start, and the log starts again, empty, at the checkpointed start rather than
/// handing out the deleted offsets a second time.
fn truncate_fully(
    dir: &Path,
    segments: &mut Vec<Arc<Segment>>,
    report: &mut RecoveryReport,
) -> Result<()> {
    for seg in segments.drain(..) {
        seg.delete_files()?;
        report.deleted_segments.push(seg.log_path().to_path_buf());
    }
    for offset in super::producer_state::list_snapshots(dir)? {
        let path = super::producer_state::snapshot_path(dir, offset);
        fs::remove_file(&path).at(&path)?;
        report.removed_files.push(path);
    }
    sync_dir(dir)
}

/// Removes leftover files and returns the base offsets of the `.log` files, sorted.
fn scan_dir(dir: &Path, report: &mut RecoveryReport) -> Result<Vec<i64>> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".deleted") || name.ends_with(".cleaned") {
            fs::remove_file(&path).at(&path)?;
            report.removed_files.push(path);
            continue;
        }
        match segment::parse_file_name(name) {
            Some((base, "log")) => logs.push(base),
            Some((base, "index" | "timeindex" | "txnindex")) => indexes.push((base, path)),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            fs::remove_file(&path).at(&path)?;
            report.removed_files.push(path);
        }
    }
    Ok(logs)
}

/// Validates what needs validating and returns the log end offset.
///
/// After an unclean shutdown every segment from the one holding the recovery point on is
/// recovered batch by batch. Any other segment whose indexes are missing or do not match
/// its log is recovered too. The first segment that loses bytes ends the log: every
/// later segment is deleted.
fn recover_segments(
    config: &LogConfig,
    options: &LogOptions,
    segments: &mut Vec<Arc<Segment>>,
    mut suspect: Vec<Option<String>>,
    report: &mut RecoveryReport,
) -> Result<i64> {
    let first_unflushed = if options.clean_shutdown {
        segments.len()
    } else {
        segments
            .partition_point(|s| s.base_offset() <= options.recovery_point)
            .saturating_sub(1)
    };
    let mut next = segments.first().map_or(0, |s| s.base_offset());
    let mut i = 0;
    while i < segments.len() {
        let seg = segments[i].clone();
        let last = i + 1 == segments.len();
        let upper = segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset());
        let mut why = suspect[i].take();
        if why.is_none() && i < first_unflushed {
            why = match checked_next_offset(&seg, last, upper)? {
                Ok(n) => {
                    next = n;
                    None
                }
                Err(reason) => Some(reason),
            };
        }
        if i >= first_unflushed || why.is_some() {
            if let Some(reason) = why {
                report
                    .rebuilt_indexes
                    .push((seg.log_path().to_path_buf(), reason));
            }
            let r = seg.recover(
                next,
                u64::from(config.index_interval_bytes),
                config.segment_index_bytes as usize,
                last,
            )?;
            report.zero_tail_bytes += r.zero_tail;
            report.segments_recovered += 1;
            report.bytes_recovered += r.valid_bytes;
            next = r.next_offset;
            if !last {
                seg.seal()?;
            }
            if let Some((bytes, reason)) = r.truncated {
                report.truncations.push(Truncation {
                    path: seg.log_path().to_path_buf(),
                    position: r.valid_bytes,
                    bytes,
                    reason,
                });
                for later in segments.drain(i + 1..) {
                    later.delete_files()?;
                    report.deleted_segments.push(later.log_path().to_path_buf());
                }
                seg.make_active(
                    config.segment_index_bytes as usize,
                    config.segment_bytes as usize,
                )?;
            }
        }
        i += 1;
    }
    Ok(next)
}

/// The segment's next offset when its indexes check out, or why they do not.
///
/// For a sealed segment the next offset is the next segment's base when the last batch
/// is unknown; the last segment is scanned from its last index entry.
fn checked_next_offset(
    seg: &Segment,
    last: bool,
    upper: i64,
) -> Result<std::result::Result<i64, String>> {
    let next = if last {
        match seg.read_next_offset() {
            Ok(n) => n,
            Err(e) => {
                return Ok(Err(format!(
                    "its log does not end on a batch boundary: {e}"
                )));
            }
        }
    } else {
        upper
    };
    Ok(seg.check_indexes(next)?.map(|()| next))
}

/// `maxTimestamp` of the segment's first batch, for time-based roll.
fn first_batch_max_timestamp(seg: &Segment) -> Result<Option<i64>> {
    let mut scanner = seg.scanner(0);
    Ok(match scanner.next_batch() {
        Scanned::Batch(_, b) => Some(b.max_timestamp()),
        _ => None,
    })
}
